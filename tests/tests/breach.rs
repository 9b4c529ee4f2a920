//! Breach end to end in the core: the peer's revoked commitment confirms and every output on it
//! is claimed by revocation — their `to_local`, each HTLC, and the output of any second-level
//! transaction the peer gets in first — with justice transactions Bitcoin Core's interpreter
//! accepts, for both channel types; our `to_remote` is swept as usual.

use std::collections::BTreeMap;

use bitcoin::{Transaction, Txid};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::ledger::OutputStatus;
use contractcourt_core::resolver::ResolverKind;
use contractcourt_core::sim::{SimHtlc, SimSetup};
use contractcourt_core::types::{ChannelId, HtlcDirection, Party};
use contractcourt_tests::checks::{check_broadcasts, claimed_outputs, claims_of, sweeping_config};
use contractcourt_tests::{Harness, START_HEIGHT};

/// A channel whose commitment 1 of the peer's (with an outgoing and an incoming HTLC) has been
/// revoked by commitment 2; returns the revoked transaction and the HTLCs.
fn revoked_channel(
    seed: u64,
    channel_type: ChannelType,
) -> (Harness, ChannelId, Transaction, Vec<SimHtlc>) {
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(seed, channel_type));
    let mut htlcs = Vec::new();
    h.with_sim(id, |sim| {
        htlcs.push(
            sim.add_htlc(HtlcDirection::Outgoing, 40_000_000, START_HEIGHT + 100)
                .unwrap(),
        );
        htlcs.push(
            sim.add_htlc(HtlcDirection::Incoming, 25_000_000, START_HEIGHT + 100)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    let revoked = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    h.with_sim(id, |sim| sim.commit().unwrap());
    (h, id, revoked, htlcs)
}

fn breach_resolvers(h: &Harness, id: ChannelId) -> usize {
    h.arb
        .channel(&id)
        .unwrap()
        .resolvers
        .values()
        .filter(|r| matches!(r.kind, ResolverKind::Breach { .. }))
        .count()
}

/// Mine until every claimable output of `parent` (`expected` of them) is claimed; return the
/// latest transaction of each, one per transaction (a batch claims several outputs).
fn justice(h: &mut Harness, parent: Txid, expected: usize) -> Vec<Transaction> {
    let from = h.broadcasts.len();
    for _ in 0..3 {
        let before = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(h, before, &[]);
        if claimed_outputs(h, from, parent).len() >= expected {
            break;
        }
    }
    let claimed = claimed_outputs(h, from, parent);
    assert_eq!(claimed.len(), expected, "outputs of {parent} claimed");
    unique(claimed.into_values())
}

/// Transactions, each once, in txid order.
fn unique(txs: impl IntoIterator<Item = Transaction>) -> Vec<Transaction> {
    let by_txid: BTreeMap<Txid, Transaction> =
        txs.into_iter().map(|t| (t.compute_txid(), t)).collect();
    by_txid.into_values().collect()
}

/// Whether every input of `tx` spends by revocation a `to_local`-style or HTLC output (`<sig> 1
/// <script>` or `<sig> <revocationpubkey> <script>`: three witness items).
fn all_by_revocation(tx: &Transaction) -> bool {
    tx.input.iter().all(|i| i.witness.len() == 3)
}

#[test]
fn a_revoked_commitment_is_punished_every_output_claimed_by_revocation_for_both_channel_types() {
    for (seed, channel_type) in [
        (61, ChannelType::StaticRemoteKey),
        (62, ChannelType::AnchorsZeroFeeHtlc),
    ] {
        let (mut h, id, revoked, _) = revoked_channel(seed, channel_type);
        let txid = revoked.compute_txid();
        h.mine(vec![revoked.clone()]);
        assert_eq!(breach_resolvers(&h, id), 3, "their to_local and both HTLCs");
        // Their to_local, both HTLCs by revocation, and our to_remote: all accepted by Bitcoin
        // Core against the revoked commitment's outputs, final when offered.
        let claims = justice(&mut h, txid, 4);
        // One justice transaction for the three revocable outputs, our to_remote on its own
        // (only we can spend it: never batched with outputs the peer can contest).
        assert_eq!(claims.len(), 2, "{channel_type:?}");
        let justice_tx = claims.iter().find(|t| t.input.len() == 3).unwrap();
        assert!(all_by_revocation(justice_tx));
        h.mine(claims);
        h.mine_empty(6);

        // Everything on the revoked commitment is ours except the anchors: the recovered amount
        // is the channel value less the commitment fee and the anchors.
        let ledger = h.arb.ledger();
        let anchors = if channel_type.has_anchors() {
            2 * 330
        } else {
            0
        };
        let commitment_out: u64 = revoked.output.iter().map(|o| o.value.to_sat()).sum();
        assert_eq!(
            ledger.totals.recovered_sat,
            commitment_out - anchors,
            "{channel_type:?}"
        );
        assert_eq!(ledger.totals.taken_by_peer_sat, 0);
        assert!(ledger.totals.fees_sat > 0);
        if channel_type == ChannelType::StaticRemoteKey {
            h.check_golden(
                "breach_justice_static",
                "the peer's revoked commitment with two HTLCs confirms: their to_local and both \
                 HTLC outputs are claimed by revocation, our to_remote swept",
            );
            h.check_crash_anywhere();
        }
    }
}

#[test]
fn the_peers_second_level_transaction_on_a_revoked_commitment_is_claimed_by_revocation_too() {
    let (mut h, id, revoked, htlcs) = revoked_channel(63, ChannelType::StaticRemoteKey);
    let txid = revoked.compute_txid();
    // The peer gets its HTLC-success (it knows the preimage of our outgoing HTLC) into the
    // same block as its revoked commitment: it won the race for that output.
    let outgoing = htlcs[0].key;
    let success = h.sim(id).htlc_tx(Party::Remote, 1, outgoing).unwrap();
    let success_txid = success.compute_txid();
    h.mine(vec![revoked.clone(), success.clone()]);
    assert_eq!(
        breach_resolvers(&h, id),
        4,
        "their to_local, both HTLC outputs and the second-level output"
    );
    // The second-level output is ours by revocation, before its CSV delay runs out.
    let second = justice(&mut h, success_txid, 1);
    assert!(all_by_revocation(&second[0]), "<revocation sig> 1 <script>");
    let rest = claimed_outputs(&h, 0, txid).into_values();
    h.mine(unique(second.into_iter().chain(rest)));
    h.mine_empty(6);
    let ledger = h.arb.ledger();
    let entries = &ledger.channels[0].outputs;
    assert!(
        entries.iter().all(|e| matches!(
            e.status,
            OutputStatus::Recovered { .. } | OutputStatus::SecondLevel { .. }
        )),
        "{entries:#?}"
    );
    // The preimage the peer revealed is learned (B05-REV-09): there is no upstream leg here,
    // but it is known now and would settle one.
    assert!(h
        .arb
        .node()
        .preimage_for(&outgoing, &htlcs[0].payment_hash())
        .is_some());
    let commitment_out: u64 = revoked.output.iter().map(|o| o.value.to_sat()).sum();
    let second_level_fee =
        htlcs[0].amount_msat / 1000 - success.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
    assert_eq!(
        ledger.totals.recovered_sat,
        commitment_out - second_level_fee,
        "the peer kept only what its own second-level transaction burnt in fees"
    );
    h.check_golden(
        "breach_second_level_race",
        "the peer's revoked commitment confirms together with its HTLC-success: the second-level \
         output is claimed by revocation, everything else as usual",
    );
    h.check_crash_anywhere();
}

#[test]
fn a_revoked_commitment_reorged_out_stops_the_justice_claims_and_they_resume_when_it_returns() {
    let (mut h, id, revoked, _) = revoked_channel(64, ChannelType::StaticRemoteKey);
    let txid = revoked.compute_txid();
    h.mine(vec![revoked.clone()]);
    justice(&mut h, txid, 4);
    // Reorg: the block with the revoked commitment goes away, a fork without it comes.
    for _ in 0..3 {
        h.disconnect_tip();
    }
    h.mine_empty_salted(4, 7);
    assert_eq!(breach_resolvers(&h, id), 0);
    let from = h.broadcasts.len();
    h.mine_empty_salted(1, 7);
    assert!(
        claims_of(&h, from, txid).is_empty(),
        "no justice transaction for a commitment not on the chain"
    );
    // It confirms again on the new chain: punished again.
    h.mine_salted(vec![revoked], 7);
    assert_eq!(breach_resolvers(&h, id), 3);
    justice(&mut h, txid, 4);
    h.check_crash_anywhere();
}

#[test]
fn ten_htlcs_each_way_and_the_peers_batched_second_level_transactions_are_all_punished() {
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(65, ChannelType::AnchorsZeroFeeHtlc));
    let mut outgoing = Vec::new();
    h.with_sim(id, |sim| {
        for i in 0..10u64 {
            outgoing.push(
                sim.add_htlc(
                    HtlcDirection::Outgoing,
                    5_000_000 + i * 100_000,
                    START_HEIGHT + 200,
                )
                .unwrap(),
            );
            sim.add_htlc(
                HtlcDirection::Incoming,
                4_000_000 + i * 100_000,
                START_HEIGHT + 200,
            )
            .unwrap();
        }
        sim.commit().unwrap()
    });
    let revoked = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    h.with_sim(id, |sim| sim.commit().unwrap());
    // Under anchors the peer may batch its HTLC-success transactions (SIGHASH_SINGLE|ANYONECANPAY
    // on our side of them): two HTLCs in one transaction, input i paying output i.
    let a = h
        .sim(id)
        .htlc_tx(Party::Remote, 1, outgoing[0].key)
        .unwrap();
    let b = h
        .sim(id)
        .htlc_tx(Party::Remote, 1, outgoing[1].key)
        .unwrap();
    let mut batched = a.clone();
    batched.input.push(b.input[0].clone());
    batched.output.push(b.output[0].clone());
    let batched_txid = batched.compute_txid();
    h.mine(vec![revoked.clone(), batched]);
    assert_eq!(
        breach_resolvers(&h, id),
        1 + 20 + 2,
        "their to_local, 20 HTLC outputs and both batched second-level outputs"
    );
    let second = justice(&mut h, batched_txid, 2);
    let vouts: Vec<u32> = second
        .iter()
        .flat_map(|t| &t.input)
        .filter(|i| i.previous_output.txid == batched_txid)
        .map(|i| i.previous_output.vout)
        .collect();
    assert_eq!(
        vouts,
        [0, 1],
        "each output of the batch claimed by outpoint"
    );
    // 1 to_local + 18 HTLC outputs still on the commitment + our to_remote.
    let rest = justice(&mut h, revoked.compute_txid(), 20);
    // All 21 revocable outputs (their deadlines equal) in one justice transaction, our
    // to_remote alone.
    let all = unique(second.into_iter().chain(rest));
    assert_eq!(all.len(), 2);
    assert!(all
        .iter()
        .any(|t| t.input.len() == 21 && all_by_revocation(t)));
    h.mine(all);
    h.mine_empty(6);
    let ledger = h.arb.ledger();
    assert_eq!(ledger.totals.taken_by_peer_sat, 0);
    assert_eq!(ledger.totals.claiming_sat + ledger.totals.contested_sat, 0);
}

/// The single justice transaction built for the revoked commitment's three revocable outputs.
fn justice_batch(h: &mut Harness, txid: Txid) -> Transaction {
    let claims = justice(h, txid, 4);
    let batch = claims
        .iter()
        .find(|t| t.input.len() > 1)
        .cloned()
        .expect("one justice transaction");
    assert_eq!(batch.input.len(), 3);
    assert!(all_by_revocation(&batch));
    batch
}

#[test]
fn the_justice_tx_is_stuck_and_gets_split() {
    let (mut h, _, revoked, _) = revoked_channel(66, ChannelType::StaticRemoteKey);
    let txid = revoked.compute_txid();
    h.mine(vec![revoked.clone()]);
    let batch = justice_batch(&mut h, txid);
    let built = h.height();
    // The peer pins it (a low-fee child on one of its outputs' conflicts): it never confirms.
    // After `split_after_blocks` (4, as lnd) each input is claimed on its own.
    let split_after = h.arb.config().sweeper.split_after_blocks;
    while h.height() < built + split_after - 1 {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(&h, from, &[]);
        let latest = claimed_outputs(&h, from, txid);
        assert!(
            batch
                .input
                .iter()
                .all(|i| latest[&i.previous_output].input.len() == 3),
            "still one justice transaction at {}",
            h.height()
        );
    }
    let from = h.broadcasts.len();
    h.mine(Vec::new());
    check_broadcasts(&h, from, &[]);
    let parts = claimed_outputs(&h, from, txid);
    for i in &batch.input {
        let part = &parts[&i.previous_output];
        assert_eq!(part.input.len(), 1, "each input alone");
        assert!(all_by_revocation(part));
    }
    let split_reports = h
        .reports()
        .into_iter()
        .filter(|r| {
            matches!(r, contractcourt_core::action::Report::Timeline { stage, .. }
                if stage.starts_with("batch split: unconfirmed for 4 blocks"))
        })
        .count();
    assert_eq!(split_reports, 3, "reported for each input");
    // The parts confirm independently: everything is recovered.
    let rest = claimed_outputs(&h, 0, txid).into_values();
    h.mine(unique(rest));
    h.mine_empty(6);
    let ledger = h.arb.ledger();
    assert_eq!(ledger.totals.taken_by_peer_sat, 0);
    assert_eq!(ledger.totals.claiming_sat + ledger.totals.contested_sat, 0);
    let commitment_out: u64 = revoked.output.iter().map(|o| o.value.to_sat()).sum();
    assert_eq!(ledger.totals.recovered_sat, commitment_out);
    h.check_crash_anywhere();
}

#[test]
fn the_peer_spends_one_input_first() {
    let (mut h, id, revoked, htlcs) = revoked_channel(67, ChannelType::StaticRemoteKey);
    let txid = revoked.compute_txid();
    h.mine(vec![revoked.clone()]);
    let batch = justice_batch(&mut h, txid);
    // Before our justice transaction confirms, the peer gets its HTLC-success for our outgoing
    // HTLC in: one input of the batch is gone.
    let outgoing = htlcs[0].key;
    let success = h.sim(id).htlc_tx(Party::Remote, 1, outgoing).unwrap();
    let taken = success.input[0].previous_output;
    assert!(batch.input.iter().any(|i| i.previous_output == taken));
    let from = h.broadcasts.len();
    h.mine(vec![success.clone()]);
    check_broadcasts(&h, from, std::slice::from_ref(&success));
    // The rest is re-planned at once, without the spent input, and the second-level output
    // (ours by revocation until its CSV delay runs out) joins it: one justice transaction.
    let success_txid = success.compute_txid();
    let latest = claimed_outputs(&h, from, txid);
    let second = claimed_outputs(&h, from, success_txid);
    assert_eq!(second.len(), 1, "the second-level output claimed");
    let rebuilt = second.values().next().unwrap().clone();
    assert!(all_by_revocation(&rebuilt));
    assert!(rebuilt.input.iter().all(|i| i.previous_output != taken));
    assert_eq!(
        rebuilt.input.len(),
        3,
        "to_local, the incoming HTLC, the second-level output"
    );
    for i in batch.input.iter().filter(|i| i.previous_output != taken) {
        assert_eq!(
            latest[&i.previous_output].compute_txid(),
            rebuilt.compute_txid()
        );
    }
    let to_remote = claimed_outputs(&h, 0, txid)
        .into_values()
        .filter(|t| !all_by_revocation(t));
    h.mine(unique(to_remote.chain([rebuilt])));
    h.mine_empty(6);
    let ledger = h.arb.ledger();
    assert_eq!(ledger.totals.taken_by_peer_sat, 0);
    assert_eq!(ledger.totals.claiming_sat + ledger.totals.contested_sat, 0);
    let commitment_out: u64 = revoked.output.iter().map(|o| o.value.to_sat()).sum();
    let second_level_fee =
        htlcs[0].amount_msat / 1000 - success.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
    assert_eq!(
        ledger.totals.recovered_sat,
        commitment_out - second_level_fee
    );
    h.check_crash_anywhere();
}
