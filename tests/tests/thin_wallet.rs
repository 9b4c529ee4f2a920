//! A thin fee wallet through a fee spike that ends: twenty channels close in one block while fees
//! are at 150 sat/vB and the wallet holds three 55,000-sat coins. The wallet funds what it can at
//! the spike — the nearest deadlines first — and once the market is back at 5 sat/vB every claim
//! it could not fund is asked again at the new price, funded from the change of the first ones,
//! and confirms before its deadline. Every transaction is checked by Bitcoin Core's interpreter
//! and the policy check.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::{OutPoint, Transaction, Txid};
use contractcourt_core::action::{Action, Outcome, Report, Resolution};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::event::{Event, ForceCloseReason};
use contractcourt_core::policy::{check_final, check_standard, PolicyConfig};
use contractcourt_core::sim::SimSetup;
use contractcourt_core::testkit::verify_with_bitcoin_core;
use contractcourt_core::types::{ChannelId, Party};
use contractcourt_tests::checks::{
    incoming_with_preimages, sweeping_config, uniform_fees, Outputs,
};
use contractcourt_tests::{Harness, START_HEIGHT};

const CHANNELS: u32 = 20;
const HTLC_MSAT: u64 = 110_000_000;
/// The first HTLC's expiry; channel `i`'s HTLC expires `i` blocks later.
const FIRST_EXPIRY: u32 = START_HEIGHT + 80;
/// How many blocks the spike lasts after the closes confirm.
const SPIKE_BLOCKS: u32 = 4;

/// One closed channel: its incoming HTLC (preimage known) on our confirmed commitment.
struct Closed {
    channel: ChannelId,
    channel_type: ChannelType,
    expiry: u32,
    commitment: Transaction,
    /// The HTLC output on our commitment.
    htlc: OutPoint,
}

/// Check every broadcast since `from` except our commitments (they spend funding outputs this
/// harness never mines): Bitcoin Core's interpreter, the standardness rules, finality at the
/// next block.
fn check_claims(h: &Harness, from: usize, commitments: &[Transaction]) {
    let ours: BTreeSet<Txid> = commitments.iter().map(Transaction::compute_txid).collect();
    let outputs = Outputs::from(h, commitments);
    let next = h.height() + 1;
    for tx in h.broadcasts[from..]
        .iter()
        .filter(|t| !ours.contains(&t.compute_txid()))
    {
        let (prevouts, heights) = outputs.prevouts(tx);
        verify_with_bitcoin_core(tx, &prevouts)
            .unwrap_or_else(|e| panic!("{}: {e:?}", tx.compute_txid()));
        check_standard(tx, &prevouts, &PolicyConfig::default())
            .unwrap_or_else(|e| panic!("{}: {e}", tx.compute_txid()));
        check_final(tx, next, &heights)
            .unwrap_or_else(|e| panic!("{} not final at {next}: {e}", tx.compute_txid()));
    }
}

/// What a miner takes from everything broadcast since `from`, newest first: each transaction
/// whose every input exists on chain and is not spent (on chain or by a newer one taken).
fn minable(h: &Harness, from: usize) -> Vec<Transaction> {
    let mut created: BTreeSet<Txid> = BTreeSet::new();
    let mut spent: BTreeSet<OutPoint> = BTreeSet::new();
    for b in &h.blocks {
        for tx in &b.txs {
            created.insert(tx.compute_txid());
            spent.extend(tx.input.iter().map(|i| i.previous_output));
        }
    }
    let mut block: Vec<Transaction> = Vec::new();
    for tx in h.broadcasts[from..].iter().rev() {
        let ok = tx.input.iter().all(|i| {
            created.contains(&i.previous_output.txid) && !spent.contains(&i.previous_output)
        });
        if ok {
            spent.extend(tx.input.iter().map(|i| i.previous_output));
            block.push(tx.clone());
        }
    }
    block
}

/// The HTLC-claim transactions (spending an HTLC output of ours) among `txs`, by HTLC output.
fn htlc_claims_in(closed: &[Closed], txs: &[Transaction]) -> BTreeMap<OutPoint, Transaction> {
    let htlcs: BTreeSet<OutPoint> = closed.iter().map(|c| c.htlc).collect();
    txs.iter()
        .filter(|t| htlcs.contains(&t.input[0].previous_output))
        .map(|t| (t.input[0].previous_output, t.clone()))
        .collect()
}

/// Twenty channels of `types` (round robin), each with an incoming HTLC of 110,000 sat whose
/// preimage we know, expiring 80 + i blocks out; a wallet of three 55,000-sat coins; fees spike
/// to 150 sat/vB, every channel is force-closed and all twenty commitments confirm in one block
/// (with whatever CPFP children the wallet could fund). Returns the harness, the closes, and the
/// index of the first broadcast after the force closes.
fn twenty_closes_in_a_spike(types: &[ChannelType]) -> (Harness, Vec<Closed>, usize) {
    let mut h = Harness::new(sweeping_config());
    h.fund_wallet(3, 55_000);
    let mut opened = Vec::new();
    for i in 0..CHANNELS {
        let channel_type = types[i as usize % types.len()];
        let id = h.open(SimSetup::new(700 + u64::from(i), channel_type));
        let expiry = FIRST_EXPIRY + i;
        incoming_with_preimages(&mut h, id, &[HTLC_MSAT], expiry);
        opened.push((id, channel_type, expiry));
    }
    let actions = h.feed(uniform_fees(5));
    h.answer(&actions);
    let from = h.broadcasts.len();
    for (id, _, _) in &opened {
        let actions = h.feed(Event::ForceCloseRequested {
            channel: *id,
            reason: ForceCloseReason::User,
        });
        h.answer(&actions);
    }
    // The commitments pay enough at 5 sat/vB: no CPFP child is made. Then fees spike, as the
    // twenty commitments confirm.
    let actions = h.feed(uniform_fees(150));
    h.answer(&actions);
    let mut closed = Vec::new();
    for (id, channel_type, expiry) in opened {
        let txid = h
            .sim(id)
            .commitment_tx(Party::Local, 1)
            .unwrap()
            .compute_txid();
        let commitment = h.broadcasts[from..]
            .iter()
            .find(|t| t.compute_txid() == txid)
            .cloned()
            .expect("our commitment broadcast");
        let amount = bitcoin::Amount::from_sat(HTLC_MSAT / 1000);
        let vout = commitment
            .output
            .iter()
            .position(|o| o.value == amount)
            .expect("the HTLC output");
        closed.push(Closed {
            channel: id,
            channel_type,
            expiry,
            htlc: OutPoint {
                txid,
                vout: u32::try_from(vout).unwrap(),
            },
            commitment,
        });
    }
    let commitments: Vec<Transaction> = closed.iter().map(|c| c.commitment.clone()).collect();
    check_claims(&h, from, &commitments);
    // The CPFP children the wallet could fund, spending our anchors.
    let children: Vec<Transaction> = {
        let ours: BTreeSet<Txid> = commitments.iter().map(Transaction::compute_txid).collect();
        let mut newest: BTreeMap<OutPoint, Transaction> = BTreeMap::new();
        for t in &h.broadcasts[from..] {
            if ours.contains(&t.input[0].previous_output.txid) {
                newest.insert(t.input[0].previous_output, t.clone());
            }
        }
        newest.into_values().collect()
    };
    let mut block = commitments;
    block.extend(children);
    let after = h.broadcasts.len();
    h.mine(block);
    (h, closed, after)
}

/// Mine until every HTLC claim confirmed or the last deadline passed, the spike ending
/// [`SPIKE_BLOCKS`] after the closes; every broadcast checked. Returns each HTLC output's claim
/// and the height it confirmed at.
fn mine_through_the_spike(
    h: &mut Harness,
    closed: &[Closed],
    mut from: usize,
) -> BTreeMap<OutPoint, (Transaction, u32)> {
    let close_height = h.height();
    let commitments: Vec<Transaction> = closed.iter().map(|c| c.commitment.clone()).collect();
    let mut confirmed = BTreeMap::new();
    let last = closed.iter().map(|c| c.expiry).max().unwrap();
    while confirmed.len() < closed.len() && h.height() < last {
        check_claims(h, from, &commitments);
        if h.height() == close_height + SPIKE_BLOCKS {
            let actions = h.feed(uniform_fees(5));
            h.answer(&actions);
        }
        let block = minable(h, from);
        let next = h.height() + 1;
        for (htlc, tx) in htlc_claims_in(closed, &block) {
            confirmed.insert(htlc, (tx, next));
        }
        from = h.broadcasts.len();
        h.mine(block);
    }
    check_claims(h, from, &commitments);
    confirmed
}

/// Every HTLC claim confirmed before its deadline, by us (input 0 our HTLC output, output 0
/// paying its full value for a zero-fee HTLC transaction), and no HTLC was reported lost.
fn every_claim_confirmed_before_its_deadline(
    h: &Harness,
    closed: &[Closed],
    confirmed: &BTreeMap<OutPoint, (Transaction, u32)>,
) {
    for c in closed {
        let Some((tx, height)) = confirmed.get(&c.htlc) else {
            panic!(
                "{:?} channel {}: the HTLC expiring at {} was never claimed",
                c.channel_type, c.channel, c.expiry
            );
        };
        assert!(
            *height < c.expiry,
            "{:?} channel {}: claimed at {height}, not before its deadline {}",
            c.channel_type,
            c.channel,
            c.expiry
        );
        if c.channel_type == ChannelType::AnchorsZeroFeeHtlc {
            assert!(tx.input.len() >= 2, "a wallet input pays its fee");
            assert_eq!(
                tx.output[0].value.to_sat(),
                HTLC_MSAT / 1000,
                "zero-fee: HTLC input 0 pays output 0 in full"
            );
        }
    }
    let lost = h.reports().into_iter().any(|r| {
        matches!(
            r,
            Report::Resolution(Resolution {
                outcome: Outcome::LostToPeer | Outcome::TimedOut,
                ..
            })
        )
    });
    assert!(!lost, "no HTLC lost");
}

/// The claims funded in the block the closes confirmed (at the spike): the wallet had too little
/// for all of them, and they are the nearest deadlines.
fn funded_at_the_spike_are_the_nearest_deadlines(h: &Harness, closed: &[Closed], from: usize) {
    let anchors: Vec<&Closed> = closed
        .iter()
        .filter(|c| c.channel_type == ChannelType::AnchorsZeroFeeHtlc)
        .collect();
    let funded: BTreeSet<OutPoint> = htlc_claims_in(closed, &h.broadcasts[from..])
        .into_keys()
        .filter(|o| anchors.iter().any(|c| c.htlc == *o))
        .collect();
    assert!(
        !funded.is_empty() && funded.len() < anchors.len(),
        "the wallet funds some but not all at the spike: {}",
        funded.len()
    );
    let mut by_deadline: Vec<&&Closed> = anchors.iter().collect();
    by_deadline.sort_by_key(|c| c.expiry);
    let nearest: BTreeSet<OutPoint> = by_deadline
        .iter()
        .take(funded.len())
        .map(|c| c.htlc)
        .collect();
    assert_eq!(funded, nearest, "the nearest deadlines are funded first");
}

/// How many funding requests the wallet was asked after the spike ended.
fn funding_requests_after(h: &Harness, from: usize) -> usize {
    h.transcript[from..]
        .iter()
        .filter(|a| matches!(a, Action::FundFromWallet(_)))
        .count()
}

#[test]
fn anchors_claims_the_thin_wallet_could_not_fund_at_a_spike_are_funded_when_it_ends_and_all_confirm_before_their_deadlines(
) {
    let (mut h, closed, from) = twenty_closes_in_a_spike(&[ChannelType::AnchorsZeroFeeHtlc]);
    funded_at_the_spike_are_the_nearest_deadlines(&h, &closed, from);
    let transcript_at_close = h.transcript.len();
    let confirmed = mine_through_the_spike(&mut h, &closed, from);
    every_claim_confirmed_before_its_deadline(&h, &closed, &confirmed);
    assert!(funding_requests_after(&h, transcript_at_close) > 0);
}

#[test]
fn static_remote_key_and_anchors_channels_closing_together_in_a_spike_that_ends_all_claim_before_their_deadlines(
) {
    let (mut h, closed, from) = twenty_closes_in_a_spike(&[
        ChannelType::StaticRemoteKey,
        ChannelType::AnchorsZeroFeeHtlc,
    ]);
    // The static_remote_key HTLC-success transactions carry their own pre-signed fee: no wallet
    // is asked for them, and they go out at once.
    let static_claims = htlc_claims_in(&closed, &h.broadcasts[from..]);
    for c in closed
        .iter()
        .filter(|c| c.channel_type == ChannelType::StaticRemoteKey)
    {
        let tx = static_claims.get(&c.htlc).expect("broadcast at once");
        assert_eq!(tx.input.len(), 1, "no wallet input");
    }
    let asked_for_static = h.transcript.iter().any(|a| match a {
        Action::FundFromWallet(r) => closed.iter().any(|c| {
            c.channel_type == ChannelType::StaticRemoteKey
                && r.template.input.iter().any(|i| i.previous_output == c.htlc)
        }),
        _ => false,
    });
    assert!(!asked_for_static);
    funded_at_the_spike_are_the_nearest_deadlines(&h, &closed, from);
    let confirmed = mine_through_the_spike(&mut h, &closed, from);
    every_claim_confirmed_before_its_deadline(&h, &closed, &confirmed);
}
