//! Zero-fee commitment channels (`zero_fee_commitments`, BOLT PR 1228) end to end in the core:
//! our version-3 commitment, which pays no fee, goes out only as a package with a version-3 CPFP
//! child spending its shared pay-to-anchor output; its zero-fee HTLC transactions are funded by
//! the wallet; on the peer's commitment and on a revoked one every output of ours is claimed.
//! Every transaction is checked by Bitcoin Core's script interpreter and the policy checks
//! (standardness, finality, and for packages the TRUC and ephemeral dust rules).

use bitcoin::{OutPoint, Transaction, TxOut};
use contractcourt_core::action::Action;
use contractcourt_core::bolt3::scripts::{
    funding_script, to_remote_script_pubkey, PAY_TO_ANCHOR_SCRIPT,
};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::ledger::{OutputEntry, OutputStatus};
use contractcourt_core::channel::ArbState;
use contractcourt_core::event::{Event, ForceCloseReason, MempoolRemovalReason};
use contractcourt_core::policy::truc::TRUC_CHILD_MAX_VSIZE;
use contractcourt_core::policy::{check_final, check_package_fee, check_standard, PolicyConfig};
use contractcourt_core::sim::{SimHtlc, SimSetup};
use contractcourt_core::testkit::verify_with_bitcoin_core;
use contractcourt_core::types::{ChannelId, HtlcDirection, Party};
use contractcourt_tests::checks::{
    check_broadcasts, claims_of, commit_htlcs, incoming_with_preimages, sweeping_config,
    uniform_fees, Outputs,
};
use contractcourt_tests::{Harness, START_HEIGHT};

const ZFC: ChannelType = ChannelType::ZeroFeeCommitments;

/// A zero-fee commitment channel with an outgoing HTLC expiring at `expiry` and an incoming one
/// (preimage known) expiring 100 blocks later; the wallet holds 4 coins.
fn zfc_channel(seed: u64, expiry: u32) -> (Harness, ChannelId, SimHtlc) {
    let mut h = Harness::new(sweeping_config());
    h.fund_wallet(4, 200_000);
    let id = h.open(SimSetup::new(seed, ZFC));
    let inc = commit_htlcs(
        &mut h,
        id,
        &[(90_000_000, expiry)],
        &[(60_000_000, expiry + 100)],
    )
    .remove(0);
    (h, id, inc)
}

/// The packages broadcast since transcript position `from`, as (parent, child).
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

/// The shared anchor of `commitment`.
fn shared_anchor(commitment: &Transaction) -> OutPoint {
    let vout = commitment
        .output
        .iter()
        .position(|o| o.script_pubkey.as_bytes() == PAY_TO_ANCHOR_SCRIPT)
        .expect("one pay-to-anchor output");
    OutPoint {
        txid: commitment.compute_txid(),
        vout: vout as u32,
    }
}

/// The channel's funding output (the sim's funding transaction is not in a block).
fn funding_txout(h: &Harness, id: ChannelId) -> TxOut {
    let sim = h.sim(id);
    TxOut {
        value: bitcoin::Amount::from_sat(sim.setup().funding_sat),
        script_pubkey: funding_script(
            &sim.local.basepoints().funding_pubkey,
            &sim.remote.basepoints().funding_pubkey,
        )
        .to_p2wsh(),
    }
}

/// A package passes Bitcoin Core's interpreter (parent against the funding output, child against
/// the parent and the wallet's coins), every standardness rule but the parent's own fee rate, the
/// package rules (fee, TRUC topology and sizes, ephemeral dust) and finality; returns the child's
/// fee.
fn check_zero_fee_package(
    h: &Harness,
    id: ChannelId,
    (parent, child): &(Transaction, Transaction),
) -> u64 {
    let outputs = Outputs::from(h, std::slice::from_ref(parent));
    let parent_prevouts = vec![funding_txout(h, id)];
    let (child_prevouts, heights) = outputs.prevouts(child);
    verify_with_bitcoin_core(parent, &parent_prevouts).unwrap();
    verify_with_bitcoin_core(child, &child_prevouts).unwrap();
    assert_eq!((parent.version.0, child.version.0), (3, 3));
    assert_eq!(child.input[0].previous_output, shared_anchor(parent));
    assert!(child.input[0].witness.is_empty(), "p2a: empty witness");
    assert!(child.vsize() as u64 <= TRUC_CHILD_MAX_VSIZE);
    let policy = PolicyConfig::default();
    check_package_fee(
        &[(parent, &parent_prevouts[..]), (child, &child_prevouts[..])],
        &policy,
    )
    .unwrap_or_else(|e| panic!("package refused: {e}"));
    check_final(child, h.height() + 1, &heights).unwrap();
    let ins: u64 = child_prevouts.iter().map(|o| o.value.to_sat()).sum();
    let outs: u64 = child.output.iter().map(|o| o.value.to_sat()).sum();
    ins - outs
}

#[test]
fn our_zero_fee_commitment_goes_out_only_as_a_package_with_a_truc_child_through_the_p2a() {
    let expiry = START_HEIGHT + 40;
    let (mut h, id, _inc) = zfc_channel(71, expiry);
    h.feed(uniform_fees(20));
    let commitment = h.sim(id).commitment_tx(Party::Local, 1).unwrap();
    assert_eq!(commitment.version.0, 3);
    let from = h.transcript.len();
    let actions = h.feed(Event::ForceCloseRequested {
        channel: id,
        reason: ForceCloseReason::User,
    });
    h.answer(&actions);
    h.mine(Vec::new());
    // Never alone: a mempool refuses a transaction paying no fee.
    assert!(!h.transcript[from..].iter().any(
        |a| matches!(a, Action::Broadcast { tx, .. } if tx.compute_txid() == commitment.compute_txid())
    ));
    let sent = packages(&h, from);
    assert!(sent.len() >= 2, "package at once and again next block");
    for p in &sent {
        assert_eq!(p.0.compute_txid(), commitment.compute_txid());
        check_zero_fee_package(&h, id, p);
    }
    let (parent, child) = sent.last().unwrap().clone();
    // A child that pays nothing, or a version-2 child, is refused.
    let mut v2 = child.clone();
    v2.version = bitcoin::transaction::Version::TWO;
    let outputs = Outputs::from(&h, std::slice::from_ref(&parent));
    let pp = vec![funding_txout(&h, id)];
    let (cp, _) = outputs.prevouts(&v2);
    assert!(check_package_fee(
        &[(&parent, &pp[..]), (&v2, &cp[..])],
        &PolicyConfig::default()
    )
    .is_err());
    assert!(
        check_standard(&parent, &pp, &PolicyConfig::default()).is_err(),
        "not alone"
    );

    h.mine(vec![parent.clone(), child.clone()]);
    // The HTLC-success at once: a version-3 zero-fee HTLC transaction, nSequence 0, funded by
    // the wallet; the shared anchor was spent by our child.
    let from = h.broadcasts.len();
    h.mine(Vec::new());
    check_broadcasts(&h, from, &[]);
    let claims = claims_of(&h, from, commitment.compute_txid());
    let success: Vec<_> = claims.iter().filter(|t| t.version.0 == 3).collect();
    assert_eq!(success.len(), 1, "{claims:?}");
    assert_eq!(success[0].input[0].sequence.0, 0);
    assert!(success[0].input.len() >= 2, "wallet inputs pay its fee");
    let htlc_out: &TxOut = &commitment.output[success[0].input[0].previous_output.vout as usize];
    assert_eq!(success[0].output[0].value, htlc_out.value);
    h.mine(vec![success[0].clone()]);
    // Run to full resolution.
    for _ in 0..400 {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(&h, from, &[]);
        let txs: Vec<Transaction> = h.broadcasts[from..].to_vec();
        h.mine(txs);
        if h.arb.channel(&id).unwrap().state() == ArbState::FullyResolved {
            break;
        }
    }
    assert_eq!(h.arb.channel(&id).unwrap().state(), ArbState::FullyResolved);
    h.check_golden(
        "zero_fee_local_close",
        "Zero-fee commitments, our commitment: never broadcast alone, it goes out with a \
         version-3 CPFP child spending its shared pay-to-anchor output; the HTLC-success and \
         HTLC-timeout are version-3 zero-fee HTLC transactions funded by the wallet.",
    );
    h.check_crash_anywhere();
}

/// Our `to_remote` on the peer's commitment `theirs`: P2WPKH to our payment basepoint.
fn our_to_remote(h: &Harness, id: ChannelId, theirs: &Transaction) -> OutPoint {
    let ours = h.sim(id).local.basepoints().payment_basepoint;
    let script = to_remote_script_pubkey(ZFC, &ours);
    assert!(script.is_p2wpkh(), "no CSV: a plain P2WPKH output");
    let vout = theirs
        .output
        .iter()
        .position(|o| o.script_pubkey == script)
        .expect("our to_remote");
    OutPoint {
        txid: theirs.compute_txid(),
        vout: vout as u32,
    }
}

/// The sweep destination of [`sweeping_config`].
fn destination() -> bitcoin::ScriptBuf {
    sweeping_config().sweep_to.expect("a sweeper").destination
}

/// Issue 19: when our `to_remote` on the peer's zero-fee commitment cannot pay the child's fee
/// at the target rate (6,000 sat against about 8,500 sat for parent and child at 20 sat/vB),
/// the wallet funds the child as before: the anchor and wallet inputs, our `to_remote` left for
/// its sweep.
#[test]
fn the_peers_zero_fee_commitment_is_bumped_by_the_wallet_when_our_to_remote_cannot_pay() {
    let mut h = Harness::new(sweeping_config());
    h.fund_wallet(4, 200_000);
    let mut setup = SimSetup::new(73, ZFC);
    setup.funder = Party::Remote;
    setup.local_balance_msat = 6_000_000;
    let id = h.open(setup);
    incoming_with_preimages(&mut h, id, &[60_000_000], START_HEIGHT + 100);
    h.feed(uniform_fees(20));
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    let to_remote = our_to_remote(&h, id, &theirs);
    assert_eq!(theirs.output[to_remote.vout as usize].value.to_sat(), 6_000);
    h.feed(Event::MempoolTx {
        tx: contractcourt_core::types::RawTx(theirs.clone()),
        fee_sat: 0,
        vsize: theirs.vsize() as u64,
    });
    let from = h.transcript.len();
    h.mine(Vec::new());
    assert!(h.transcript[from..]
        .iter()
        .any(|a| matches!(a, Action::FundFromWallet(_))));
    let sent = packages(&h, from);
    assert_eq!(sent.len(), 1);
    let fee = check_zero_fee_package(&h, id, &sent[0]);
    assert!(
        fee > 6_000,
        "more than our to_remote could have paid: {fee}"
    );
    let child = &sent[0].1;
    assert!(child.input.iter().all(|i| i.previous_output != to_remote));
    assert!(child.input.len() >= 2, "the anchor and a wallet input");
}

/// A third party's spend of the shared anchor of `commitment` (anyone may: an empty witness),
/// burning it to fees.
fn third_party_anchor_spend(commitment: &Transaction) -> Transaction {
    Transaction {
        version: bitcoin::transaction::Version(3),
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: shared_anchor(commitment),
            ..bitcoin::TxIn::default()
        }],
        output: vec![TxOut {
            value: bitcoin::Amount::ZERO,
            script_pubkey: bitcoin::ScriptBuf::new_op_return([0x5a; 4]),
        }],
    }
}

#[test]
fn the_peers_zero_fee_commitment_is_bumped_through_its_p2a_and_every_output_of_ours_is_claimed() {
    let expiry = START_HEIGHT + 30;
    let (mut h, id, _inc) = zfc_channel(72, expiry);
    h.feed(uniform_fees(20));
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    assert_eq!(theirs.version.0, 3);
    // Seen in the mempool (with whatever child the peer gave it): we pay for it through the
    // shared anchor, which is ours to spend on their commitment too.
    h.feed(Event::MempoolTx {
        tx: contractcourt_core::types::RawTx(theirs.clone()),
        fee_sat: 0,
        vsize: theirs.vsize() as u64,
    });
    let from = h.transcript.len();
    h.mine(Vec::new());
    let sent = packages(&h, from);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.compute_txid(), theirs.compute_txid());
    check_zero_fee_package(&h, id, &sent[0]);
    // Our to_remote on it (P2WPKH, no CSV) pays the child's fee on its own: the child spends the
    // shared anchor and our to_remote into the sweep destination, and the wallet is not asked.
    let child = &sent[0].1;
    assert_eq!(
        child
            .input
            .iter()
            .map(|i| i.previous_output)
            .collect::<Vec<_>>(),
        [shared_anchor(&theirs), our_to_remote(&h, id, &theirs)]
    );
    assert_eq!(child.output.len(), 1);
    assert_eq!(child.output[0].script_pubkey, destination());
    assert!(
        !h.transcript[from..]
            .iter()
            .any(|a| matches!(a, Action::FundFromWallet(_))),
        "no wallet funding"
    );

    // It confirms with someone else's child on the anchor: a third party's take, not a loss.
    let close = theirs.compute_txid();
    let anchor = shared_anchor(&theirs);
    let from = h.broadcasts.len();
    h.mine(vec![theirs.clone(), third_party_anchor_spend(&theirs)]);
    check_broadcasts(&h, from, &[]);
    let first = claims_of(&h, from, close);
    assert_eq!(
        first.len(),
        2,
        "to_remote and the preimage claim: {first:?}"
    );
    assert!(first.iter().all(|t| t.input[0].sequence.0 != 1), "no CSV 1");
    h.mine(first);
    let mut timeout = Vec::new();
    while h.height() < expiry {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(&h, from, &[]);
        timeout = claims_of(&h, from, close);
    }
    assert_eq!(timeout.len(), 1);
    assert_eq!(timeout[0].lock_time.to_consensus_u32(), expiry);
    h.mine(timeout);
    h.mine_empty(6);
    let ch = h.arb.channel(&id).unwrap();
    assert_eq!(ch.state(), ArbState::FullyResolved);
    let ledger = h.arb.ledger();
    let entry = ledger.channels[0]
        .outputs
        .iter()
        .find(|e| e.outpoint == anchor)
        .expect("the shared anchor in the ledger");
    assert!(
        matches!(entry.status, OutputStatus::TakenByThirdParty { .. }),
        "{:?}",
        entry.status
    );
    h.check_golden(
        "zero_fee_remote_close",
        "Zero-fee commitments, the peer's commitment: seen in the mempool, we pay for it with a \
         version-3 child through its pay-to-anchor output, funded by our to_remote on it (no \
         wallet input); it confirms with a third party's child \
         (an expected take, not a loss); our to_remote and HTLCs are claimed without CSV.",
    );
    h.check_crash_anywhere();
}

#[test]
fn a_revoked_zero_fee_commitment_is_punished() {
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(73, ZFC));
    h.with_sim(id, |sim| {
        sim.add_htlc(HtlcDirection::Outgoing, 40_000_000, START_HEIGHT + 100)
            .unwrap();
        sim.add_htlc(HtlcDirection::Incoming, 25_000_000, START_HEIGHT + 100)
            .unwrap();
        sim.commit().unwrap()
    });
    let revoked = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    h.with_sim(id, |sim| sim.commit().unwrap());
    let txid = revoked.compute_txid();
    h.mine(vec![revoked.clone()]);
    let from = h.broadcasts.len();
    for _ in 0..3 {
        let before = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(&h, before, &[]);
    }
    // Their to_local, both HTLCs and our to_remote: every output but the shared anchor.
    let claimed: std::collections::BTreeSet<OutPoint> = h.broadcasts[from..]
        .iter()
        .flat_map(|t| t.input.iter().map(|i| i.previous_output))
        .filter(|o| o.txid == txid)
        .collect();
    assert_eq!(claimed.len(), revoked.output.len() - 1, "{claimed:?}");
    assert!(!claimed.contains(&shared_anchor(&revoked)));
    let txs: Vec<Transaction> = h.broadcasts[from..].to_vec();
    let mut latest = std::collections::BTreeMap::new();
    for t in txs {
        for i in &t.input {
            latest.insert(i.previous_output, t.clone());
        }
    }
    let mut unique: Vec<Transaction> = Vec::new();
    for t in latest.into_values() {
        if !unique.iter().any(|u| u.compute_txid() == t.compute_txid()) {
            unique.push(t);
        }
    }
    h.mine(unique);
    h.mine_empty(7);
    assert_eq!(h.arb.channel(&id).unwrap().state(), ArbState::FullyResolved);
    h.check_golden(
        "zero_fee_breach",
        "Zero-fee commitments, the peer's revoked commitment confirms: their to_local and both \
         HTLCs are claimed by revocation and our to_remote swept; the shared anchor, worth less \
         than its own sweep, is left.",
    );
    h.check_crash_anywhere();
}

/// The ledger's row for `outpoint`.
fn ledger_entry(h: &Harness, outpoint: OutPoint) -> OutputEntry {
    let ledger = h.arb.ledger();
    let rows = ledger.channels.into_iter().flat_map(|c| c.outputs);
    rows.into_iter()
        .find(|e| e.outpoint == outpoint)
        .expect("the output in the ledger")
}

/// A CPFP child stays ours after the engine moved to another parent and back. Our commitment
/// goes out with a child; the peer's commitment enters the mempool and the engine pays for that
/// one instead; it leaves the mempool and the engine pays for ours again, with a new claim. The
/// first child, still in some mempool, confirms with our commitment: the shared anchor is ours
/// and the child's fee is counted, not a third party's take (model finding, zero-fee generator).
#[test]
fn a_child_of_a_cpfp_given_up_for_another_parent_that_confirms_is_ours_and_its_fee_counted() {
    let expiry = START_HEIGHT + 12;
    let (mut h, id, _inc) = zfc_channel(73, expiry);
    h.feed(uniform_fees(20));
    let ours = h.sim(id).commitment_tx(Party::Local, 1).unwrap();
    let from = h.transcript.len();
    let actions = h.feed(Event::ForceCloseRequested {
        channel: id,
        reason: ForceCloseReason::User,
    });
    h.answer(&actions);
    // Not mined for a few blocks: its child is bumped as the HTLC's deadline nears.
    h.mine_empty(3);
    let first = packages(&h, from);
    assert!(first
        .iter()
        .all(|(p, _)| p.compute_txid() == ours.compute_txid()));
    let (_, newest) = first.last().expect("our package");
    assert_ne!(
        first[0].1.compute_txid(),
        newest.compute_txid(),
        "bumped: the newest child is not the first"
    );
    let first_fee = check_zero_fee_package(&h, id, first.last().unwrap());
    let first_child = newest.clone();

    // The peer's commitment enters the mempool: the next child pays for it.
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    h.see_in_mempool(&theirs);
    let from = h.transcript.len();
    h.mine(Vec::new());
    let sent = packages(&h, from);
    assert!(
        sent.iter()
            .any(|(p, _)| p.compute_txid() == theirs.compute_txid()),
        "a child for the peer's commitment: {sent:?}"
    );
    // It leaves the mempool: ours is the parent again, under a new claim.
    h.feed(Event::MempoolRemoved {
        txid: theirs.compute_txid(),
        reason: MempoolRemovalReason::Evicted,
    });
    let from = h.transcript.len();
    h.mine(Vec::new());
    let again = packages(&h, from);
    assert!(
        again
            .iter()
            .any(|(p, _)| p.compute_txid() == ours.compute_txid()),
        "our package again: {again:?}"
    );

    // The first child confirms with our commitment.
    h.mine(vec![ours.clone(), first_child.clone()]);
    let anchor = shared_anchor(&ours);
    let entry = ledger_entry(&h, anchor);
    assert_eq!(
        entry.status,
        OutputStatus::Confirming {
            txid: first_child.compute_txid(),
            final_at: h.height() + 5,
        },
        "spent by our child"
    );
    assert_eq!(entry.fees_paid_sat, first_fee, "the first child's fee");
    h.mine_empty(6);
    let entry = ledger_entry(&h, anchor);
    assert_eq!(
        entry.status,
        OutputStatus::Recovered {
            txid: first_child.compute_txid()
        },
        "ours, not a third party's take"
    );
    assert_eq!(entry.fees_paid_sat, first_fee);
    h.check_durable();
    h.check_crash_anywhere();
}
