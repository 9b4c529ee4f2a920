//! Anchors channels end to end in the core: the zero-fee HTLC transactions of our commitment
//! funded by the wallet (HTLC input 0 at output 0, wallet inputs and change appended), the CPFP
//! child paying for an unconfirmed commitment through our anchor, and the anchor itself swept
//! only when it pays for itself — every transaction checked by Bitcoin Core's interpreter.

use std::collections::BTreeSet;

use bitcoin::{OutPoint, Transaction, Txid};
use contractcourt_core::action::{Action, Outcome, Report, Resolution};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::ledger::OutputStatus;
use contractcourt_core::channel::ArbState;
use contractcourt_core::event::{Event, ForceCloseReason, MempoolRemovalReason};
use contractcourt_core::policy::{check_final, check_standard, PolicyConfig};
use contractcourt_core::sim::{SimHtlc, SimSetup};
use contractcourt_core::testkit::verify_with_bitcoin_core;
use contractcourt_core::types::{ChannelId, Party, RawTx};
use contractcourt_tests::checks::{
    check_broadcasts, claims_of, commit_htlcs, sweeping_config, uniform_fees, Outputs,
};
use contractcourt_tests::{Harness, START_HEIGHT};

const HTLC_MSAT: u64 = 90_000_000;

/// An anchors channel with an outgoing HTLC expiring at `expiry` and an incoming one (preimage
/// known) expiring 100 blocks later; the wallet holds 4 coins.
fn anchors_channel(seed: u64, expiry: u32) -> (Harness, ChannelId, SimHtlc) {
    let mut h = Harness::new(sweeping_config());
    h.fund_wallet(4, 200_000);
    let id = h.open(SimSetup::new(seed, ChannelType::AnchorsZeroFeeHtlc));
    let inc = commit_htlcs(
        &mut h,
        id,
        &[(HTLC_MSAT, expiry)],
        &[(60_000_000, expiry + 100)],
    )
    .remove(0);
    (h, id, inc)
}

/// Force close and return our signed commitment (number `number`) as broadcast.
fn force_close(h: &mut Harness, id: ChannelId, number: u64) -> Transaction {
    let txid = h
        .sim(id)
        .commitment_tx(Party::Local, number)
        .unwrap()
        .compute_txid();
    let actions = h.feed(Event::ForceCloseRequested {
        channel: id,
        reason: ForceCloseReason::User,
    });
    h.answer(&actions);
    h.broadcasts
        .iter()
        .find(|t| t.compute_txid() == txid)
        .cloned()
        .expect("our commitment broadcast")
}

/// The fee a transaction pays, from the outputs it spends.
fn fee_of(h: &Harness, tx: &Transaction) -> u64 {
    let (prevouts, _) = Outputs::from(h, &[]).prevouts(tx);
    let inputs: u64 = prevouts.iter().map(|o| o.value.to_sat()).sum();
    let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    inputs - outputs
}

fn is_funded_htlc_tx(h: &Harness, tx: &Transaction, commitment: Txid) -> bool {
    tx.input[0].previous_output.txid == commitment
        && tx.input.len() >= 2
        && tx.input[1..].iter().all(|i| {
            h.blocks.iter().any(|b| {
                b.txs
                    .iter()
                    .any(|t| t.compute_txid() == i.previous_output.txid)
            })
        })
}

#[test]
fn zero_fee_htlc_transactions_are_funded_by_the_wallet_and_accepted_by_bitcoin_core() {
    let expiry = START_HEIGHT + 20;
    let (mut h, id, _inc) = anchors_channel(41, expiry);
    let commitment = force_close(&mut h, id, 1);
    let commit_txid = commitment.compute_txid();
    let from = h.broadcasts.len();
    h.mine(vec![commitment.clone()]);

    // HTLC-success at once: the peer's SIGHASH_SINGLE|ANYONECANPAY signature lets the wallet add
    // an input and change; HTLC input 0 still pays output 0 in full.
    check_broadcasts(&h, from, &[]);
    let success = claims_of(&h, from, commit_txid);
    assert_eq!(success.len(), 1, "only the HTLC-success before the expiry");
    let success = success[0].clone();
    assert!(is_funded_htlc_tx(&h, &success, commit_txid));
    let htlc_out = &commitment.output[success.input[0].previous_output.vout as usize];
    assert_eq!(
        success.output[0].value, htlc_out.value,
        "zero-fee: input 0 pays output 0"
    );
    assert_eq!(success.input[0].witness.len(), 5);
    let success_fee = fee_of(&h, &success);
    assert!(
        success_fee >= success.weight().to_wu() / 4 * 2 - 2,
        "pays ~2 sat/vB: {success_fee}"
    );
    h.mine(vec![success.clone()]);

    // HTLC-timeout: offered for block expiry + 1, not before, funded the same way.
    while h.height() < expiry - 1 {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        assert!(claims_of(&h, from, commit_txid)
            .iter()
            .all(|t| t.lock_time.to_consensus_u32() != expiry));
    }
    let from = h.broadcasts.len();
    h.mine(Vec::new());
    check_broadcasts(&h, from, &[]);
    let timeout: Vec<Transaction> = claims_of(&h, from, commit_txid)
        .into_iter()
        .filter(|t| t.lock_time.to_consensus_u32() == expiry)
        .collect();
    assert_eq!(timeout.len(), 1);
    assert!(is_funded_htlc_tx(&h, &timeout[0], commit_txid));
    assert_eq!(
        timeout[0].input[0].sequence.0, 1,
        "anchors: CSV 1 on the HTLC input"
    );
    let timeout_fee = fee_of(&h, &timeout[0]);
    h.mine(timeout.clone());
    h.mine_empty(6);

    // The ledger counts the wallet's fee for each HTLC transaction.
    let ledger = h.arb.ledger();
    let fees: Vec<u64> = ledger.channels[0]
        .outputs
        .iter()
        .filter(|e| matches!(e.status, OutputStatus::SecondLevel { .. }))
        .map(|e| e.fees_paid_sat)
        .collect();
    let mut expected = vec![success_fee, timeout_fee];
    let mut got = fees.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    // The wallet got its inputs back once the claims were final.
    let released = h
        .transcript
        .iter()
        .filter(|a| matches!(a, Action::ReleaseInputs { .. }))
        .count();
    assert_eq!(released, 2);
    h.check_golden(
        "anchors_local_close_zero_fee_htlc_txs",
        "Anchors, our commitment: the HTLC-success at once and the HTLC-timeout after expiry, \
         each a zero-fee HTLC transaction funded by the wallet; inputs released once final.",
    );
    h.check_crash_anywhere();
}

/// The packages broadcast since `from`, as (parent, child).
fn packages(h: &Harness, from: usize) -> Vec<(Transaction, Transaction)> {
    h.transcript[from..]
        .iter()
        .filter_map(|a| match a {
            Action::BroadcastPackage { parent, child, .. } => {
                Some((parent.0.clone(), child.0.clone()))
            }
            _ => None,
        })
        .collect()
}

fn weight(tx: &Transaction) -> u64 {
    tx.weight().to_wu()
}

/// A package pays at least `sat_per_vb` over parent and child together (less a rounding vbyte),
/// the child spends `anchor` first and wallet coins after it, and Bitcoin Core accepts the child.
fn check_package(
    h: &Harness,
    id: ChannelId,
    (parent, child): &(Transaction, Transaction),
    anchor: OutPoint,
    sat_per_vb: u64,
) -> u64 {
    assert_eq!(
        child.input[0].previous_output, anchor,
        "the child spends our anchor first"
    );
    assert!(child.input.len() >= 2, "wallet inputs pay the fee");
    let outputs = Outputs::from(h, std::slice::from_ref(parent));
    let (prevouts, _) = outputs.prevouts(child);
    verify_with_bitcoin_core(child, &prevouts).unwrap_or_else(|e| panic!("child: {e:?}"));
    check_standard(child, &prevouts, &PolicyConfig::default())
        .unwrap_or_else(|e| panic!("child not standard: {e}"));
    let heights: Vec<Option<u32>> = child
        .input
        .iter()
        .map(|i| (i.previous_output.txid != parent.compute_txid()).then_some(START_HEIGHT))
        .collect();
    check_final(child, h.height() + 1, &heights)
        .unwrap_or_else(|e| panic!("child not final at {}: {e}", h.height() + 1));
    let child_fee = prevouts.iter().map(|o| o.value.to_sat()).sum::<u64>()
        - child.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
    let parent_fee =
        h.sim(id).setup().funding_sat - parent.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
    let vsize = (weight(parent) + weight(child)).div_ceil(4);
    assert!(
        parent_fee + child_fee >= (vsize - 1) * sat_per_vb,
        "package pays {} sat for {vsize} vB, below {sat_per_vb} sat/vB",
        parent_fee + child_fee
    );
    child_fee
}

/// The outpoint of our anchor on `commitment` (the anchor keyed with our funding key).
fn our_anchor(h: &Harness, id: ChannelId, commitment: &Transaction) -> OutPoint {
    let funding = h.sim(id).local.basepoints().funding_pubkey;
    let script = contractcourt_core::bolt3::scripts::anchor_script(&funding).to_p2wsh();
    let vout = commitment
        .output
        .iter()
        .position(|o| o.script_pubkey == script)
        .expect("our anchor");
    OutPoint {
        txid: commitment.compute_txid(),
        vout: vout as u32,
    }
}

#[test]
fn a_commitment_too_cheap_for_its_htlcs_is_paid_for_by_a_cpfp_child_through_our_anchor() {
    let expiry = START_HEIGHT + 40;
    let (mut h, id, _inc) = anchors_channel(42, expiry);
    h.feed(uniform_fees(50));
    let from = h.transcript.len();
    let commitment = force_close(&mut h, id, 1);
    let anchor = our_anchor(&h, id, &commitment);
    // The package goes out with our commitment's first broadcast, and again every block.
    assert_eq!(packages(&h, from).len(), 1, "commitment and child at once");
    h.mine(Vec::new());
    let sent = packages(&h, from);
    assert!(sent.len() >= 2, "rebroadcast at the next block");
    for p in &sent {
        assert_eq!(p.0.compute_txid(), commitment.compute_txid());
        check_package(&h, id, p, anchor, 50);
    }
    let last = sent.last().unwrap();
    let (parent, child) = last;
    let child_fee = check_package(&h, id, last, anchor, 50);
    // Budget: half of what the claims of the HTLCs at stake (90k + 60k sat) may not spend.
    assert!(child_fee <= 37_500);

    // Parent and child confirm together: the anchor is ours, its fee the CPFP's.
    h.mine(vec![parent.clone(), child.clone()]);
    h.mine_empty(6);
    let ledger = h.arb.ledger();
    let entry = ledger.channels[0]
        .outputs
        .iter()
        .find(|e| e.outpoint == anchor)
        .expect("anchor in the ledger");
    assert!(
        matches!(entry.status, OutputStatus::Recovered { .. }),
        "{:?}",
        entry.status
    );
    assert_eq!(entry.fees_paid_sat, child_fee);
    assert!(h
        .transcript
        .iter()
        .any(|a| matches!(a, Action::ReleaseInputs { claim } if *claim == h.arb.channel(&id).unwrap().cpfp.as_ref().unwrap().claim)));
    h.check_golden(
        "anchors_cpfp_local_commitment",
        "Anchors, fees spike to 50 sat/vB: our commitment is paid for by a CPFP child through our \
         anchor, broadcast as a package; both confirm and the anchor counts the child's fee.",
    );
    h.check_crash_anywhere();
}

#[test]
fn no_cpfp_while_no_htlc_is_at_stake_and_the_commitment_pays_enough_on_its_own() {
    let mut h = Harness::new(sweeping_config());
    h.fund_wallet(4, 200_000);
    let id = h.open(SimSetup::new(43, ChannelType::AnchorsZeroFeeHtlc));
    h.feed(uniform_fees(3));
    force_close(&mut h, id, 0);
    let from = h.transcript.len();
    h.mine_empty(10);
    assert!(packages(&h, from).is_empty());
    assert!(!h.transcript[from..]
        .iter()
        .any(|a| matches!(a, Action::FundFromWallet(_))));
}

#[test]
fn the_peers_commitment_in_the_mempool_is_paid_for_through_our_anchor_on_it() {
    let expiry = START_HEIGHT + 40;
    let (mut h, id, _inc) = anchors_channel(44, expiry);
    h.feed(uniform_fees(40));
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    let anchor = our_anchor(&h, id, &theirs);
    h.feed(Event::MempoolTx {
        tx: RawTx(theirs.clone()),
        fee_sat: 1_000,
        vsize: theirs.vsize() as u64,
    });
    let from = h.transcript.len();
    h.mine(Vec::new());
    let sent = packages(&h, from);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.compute_txid(), theirs.compute_txid());
    check_package(&h, id, &sent[0], anchor, 40);

    // It leaves the mempool (replaced, say): the child is no longer offered.
    h.feed(Event::MempoolRemoved {
        txid: theirs.compute_txid(),
        reason: MempoolRemovalReason::Conflict,
    });
    let from = h.transcript.len();
    h.mine(Vec::new());
    assert!(packages(&h, from).is_empty());
}

#[test]
fn an_anchor_not_worth_sweeping_is_left_once_the_close_is_final_and_the_channel_fully_resolves() {
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(45, ChannelType::AnchorsZeroFeeHtlc));
    let theirs = h.sim(id).commitment_tx(Party::Remote, 0).unwrap();
    let anchor = our_anchor(&h, id, &theirs);
    h.mine(vec![theirs.clone()]);
    // Our to_remote is swept after its 1-block CSV; then everything settles.
    let mut sweeps = Vec::new();
    for _ in 0..3 {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(&h, from, &[]);
        sweeps.extend(claims_of(&h, from, theirs.compute_txid()));
    }
    assert!(
        sweeps.iter().all(|t| t.input[0].previous_output != anchor),
        "the anchor is never swept"
    );
    h.mine(vec![sweeps.last().cloned().expect("to_remote swept")]);
    h.mine_empty(6);
    let ch = h.arb.channel(&id).unwrap();
    assert_eq!(ch.state(), ArbState::FullyResolved);
    let reports: Vec<&Resolution> = h
        .reports()
        .into_iter()
        .filter_map(|r| match r {
            Report::Resolution(x) if x.outpoint == anchor => Some(x),
            _ => None,
        })
        .collect();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, Outcome::Uneconomical);
    let ledger = h.arb.ledger();
    assert_eq!(ledger.totals.uneconomical_sat, 330);
    h.check_golden(
        "anchors_remote_close_anchor_left",
        "Anchors, the peer's commitment confirms: our to_remote is swept after its 1-block CSV; \
         our 330-sat anchor does not pay for itself and is left once the close is final.",
    );
    h.check_crash_anywhere();
}

#[test]
fn on_the_peers_anchors_commitment_every_output_of_ours_is_claimed_with_csv_1_and_the_channel_resolves(
) {
    let expiry = START_HEIGHT + 30;
    let (mut h, id, _inc) = anchors_channel(46, expiry);
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    let close = theirs.compute_txid();
    let anchor = our_anchor(&h, id, &theirs);
    let from = h.broadcasts.len();
    h.mine(vec![theirs.clone()]);
    // to_remote and the incoming HTLC's preimage claim, each with the anchors' 1-block CSV.
    check_broadcasts(&h, from, &[]);
    let first = claims_of(&h, from, close);
    assert_eq!(first.len(), 2, "to_remote and the preimage claim");
    assert!(first.iter().all(|t| t.input[0].sequence.0 == 1));
    h.mine(first);
    // The outgoing HTLC: its timeout claim is offered for block expiry + 1, CSV 1 too.
    let mut timeout = Vec::new();
    while h.height() < expiry {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(&h, from, &[]);
        timeout = claims_of(&h, from, close);
        if h.height() < expiry {
            assert!(timeout.is_empty(), "no timeout claim before expiry");
        }
    }
    assert_eq!(timeout.len(), 1);
    assert_eq!(timeout[0].lock_time.to_consensus_u32(), expiry);
    assert_eq!(timeout[0].input[0].sequence.0, 1);
    h.mine(timeout);
    h.mine_empty(6);
    let ch = h.arb.channel(&id).unwrap();
    assert_eq!(ch.state(), ArbState::FullyResolved);
    assert!(matches!(
        ch.resolvers[&anchor].stage,
        contractcourt_core::resolver::Stage::Abandoned { .. }
    ));
}

/// Issue 20, finding c: a CPFP at its deadline pays its whole budget at once; budgeted on the
/// whole value of the HTLCs at stake, it took a thin wallet whole and left the wallet-funded
/// HTLC-timeouts after it unfunded — eight outgoing HTLCs stuck for good. Budgeted on what the
/// HTLCs' own claims may not spend, it leaves them enough.
#[test]
fn a_cpfp_at_its_deadline_leaves_a_thin_wallet_enough_to_fund_every_htlc_timeout_after_it() {
    const OUTGOING_MSAT: u64 = 20_000_000;
    const INCOMING_MSAT: u64 = 40_000_000;
    let mut h = Harness::new(sweeping_config());
    // 120,000 sat: less than half the 200,000 sat at stake.
    h.fund_wallet(4, 30_000);
    let id = h.open(SimSetup::new(47, ChannelType::AnchorsZeroFeeHtlc));
    let expiry = START_HEIGHT + 30;
    // The incoming HTLC expires at the next block: the CPFP's deadline is the next block.
    commit_htlcs(
        &mut h,
        id,
        &[(OUTGOING_MSAT, expiry); 8],
        &[(INCOMING_MSAT, START_HEIGHT + 1)],
    );
    h.feed(uniform_fees(20));
    let from = h.transcript.len();
    let commitment = force_close(&mut h, id, 1);
    let close = commitment.compute_txid();
    let anchor = our_anchor(&h, id, &commitment);
    let sent = packages(&h, from);
    let package = sent
        .last()
        .expect("a CPFP child for our commitment")
        .clone();
    let child_fee = check_package(&h, id, &package, anchor, 20);
    // 200,000 sat at stake; their claims may spend half, the CPFP half of the other half.
    assert!(child_fee <= 50_000, "the CPFP paid {child_fee} sat");
    let from = h.broadcasts.len();
    h.mine(vec![package.0.clone(), package.1.clone()]);
    let outgoing: Vec<OutPoint> = commitment
        .output
        .iter()
        .enumerate()
        .filter(|(_, o)| o.value.to_sat() == OUTGOING_MSAT / 1000)
        .map(|(vout, _)| OutPoint {
            txid: close,
            vout: vout as u32,
        })
        .collect();
    assert_eq!(outgoing.len(), 8);
    // Every claim confirms at the next block; the wallet's few coins fund one claim after
    // another, each from the change of the one before.
    while h.height() < expiry + 20 {
        let mined: BTreeSet<Txid> = h
            .blocks
            .iter()
            .flat_map(|b| b.txs.iter().map(|t| t.compute_txid()))
            .collect();
        let latest: BTreeSet<Txid> = claims_of(&h, from, close)
            .iter()
            .map(Transaction::compute_txid)
            .collect();
        let mut block: Vec<Transaction> = Vec::new();
        for t in &h.broadcasts[from..] {
            let txid = t.compute_txid();
            if latest.contains(&txid) && !mined.contains(&txid) && !block.contains(t) {
                block.push(t.clone());
            }
        }
        h.mine(block);
    }
    check_broadcasts(&h, from, std::slice::from_ref(&package.0));
    let ledger = h.arb.ledger();
    for op in &outgoing {
        let entry = ledger.channels[0]
            .outputs
            .iter()
            .find(|e| e.outpoint == *op)
            .expect("in the ledger");
        assert!(
            matches!(entry.status, OutputStatus::SecondLevel { .. }) && entry.fees_paid_sat > 0,
            "{op}: {:?}, {} sat of fees",
            entry.status,
            entry.fees_paid_sat
        );
    }
}
