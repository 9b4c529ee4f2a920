//! Batching on real claims: compatible inputs share one transaction, incompatible ones never
//! do; a spend by someone else re-plans the rest; a rejection isolates the bad input; a contested
//! batch unconfirmed too long is split; fee shares add up; nothing is offered before it is final.

use bitcoin::Txid;

use super::*;

/// A sim channel with `n` incoming HTLCs (we hold every preimage) and one outgoing HTLC,
/// committed (commitment 1).
fn wide_channel(channel_type: ChannelType, n: u64) -> SimChannel {
    let (mut sim, _) = SimChannel::open(SimSetup::new(5, channel_type)).unwrap();
    for i in 0..n {
        sim.add_htlc(
            HtlcDirection::Incoming,
            30_000_000 + i * 1_000_000,
            INCOMING_EXPIRY,
        )
        .unwrap();
    }
    sim.add_htlc(HtlcDirection::Outgoing, 40_000_000, OUTGOING_EXPIRY)
        .unwrap();
    sim.commit().unwrap();
    sim
}

/// The distinct transactions broadcast, by txid, with the tip they were first offered at.
fn txs(h: &Harness) -> BTreeMap<Txid, (Height, Transaction)> {
    let mut out = BTreeMap::new();
    for s in &h.broadcasts {
        out.entry(s.tx.compute_txid())
            .or_insert((s.tip, s.tx.clone()));
    }
    out
}

fn preimage_requests(sim: &SimChannel) -> Vec<SweepRequest> {
    requests(sim)
        .into_iter()
        .filter(|r| is_preimage(&r.path))
        .collect()
}

#[test]
fn compatible_inputs_share_one_transaction_and_contested_ones_never_mix_with_ours() {
    let mut h = Harness::new(wide_channel(ChannelType::AnchorsZeroFeeHtlc, 4));
    let preimages = preimage_requests(&h.sim);
    assert_eq!(preimages.len(), 4);
    let to_remote = request_of(&h.sim, is_to_remote);
    for r in preimages.iter().chain([&to_remote]) {
        h.request(r.clone());
    }
    h.block(CONF);
    let sent = txs(&h);
    assert_eq!(
        sent.len(),
        2,
        "one batch of contested inputs, our balance alone"
    );
    let batch = latest(&h, &preimages[0].outpoint);
    assert_eq!(batch.input.len(), 4);
    for r in &preimages {
        assert!(batch.input.iter().any(|i| i.previous_output == r.outpoint));
    }
    assert_eq!(latest(&h, &to_remote.outpoint).input.len(), 1);
    // One timeline entry per input, saying it is batched and why the rate is what it is.
    let timeline = h.timeline();
    assert_eq!(
        timeline
            .iter()
            .filter(|t| t.contains("in a batch of 4 inputs") && t.contains("rate set by"))
            .count(),
        4,
        "{timeline:#?}"
    );
    // The fee shares add up to the fee, each within its input's budget (checked on broadcast).
    let paid: u64 = preimages
        .iter()
        .map(|r| h.sweeper.fees_paid(&r.outpoint).unwrap())
        .sum();
    assert_eq!(paid, h.fee_of(&batch));
}

#[test]
fn inputs_with_distant_deadlines_are_not_batched() {
    let mut h = Harness::new(wide_channel(ChannelType::AnchorsZeroFeeHtlc, 3));
    let mut preimages = preimage_requests(&h.sim);
    preimages[2].deadline = preimages[0].deadline + 100;
    for r in &preimages {
        h.request(r.clone());
    }
    h.block(CONF);
    assert_eq!(latest(&h, &preimages[0].outpoint).input.len(), 2);
    assert_eq!(latest(&h, &preimages[2].outpoint).input.len(), 1);
}

#[test]
fn inputs_whose_deadlines_differ_by_exactly_the_window_share_a_batch_and_one_more_block_splits_them(
) {
    let window = SweeperPolicy::default().batch_deadline_window;
    // The inputs of the first and the third claim's transactions, the third's deadline `apart`
    // blocks after the other two's.
    let batched = |apart: u32| {
        let mut h = Harness::new(wide_channel(ChannelType::AnchorsZeroFeeHtlc, 3));
        let mut preimages = preimage_requests(&h.sim);
        preimages[2].deadline = preimages[0].deadline + apart;
        for r in &preimages {
            h.request(r.clone());
        }
        h.block(CONF);
        let inputs = |r: &SweepRequest| latest(&h, &r.outpoint).input.len();
        (inputs(&preimages[0]), inputs(&preimages[2]))
    };
    assert_eq!(batched(window), (3, 3));
    assert_eq!(batched(window + 1), (2, 1));
}

#[test]
fn a_request_update_that_moves_only_the_deadline_keeps_the_batch_in_the_mempool_unchanged() {
    let mut h = Harness::new(wide_channel(ChannelType::AnchorsZeroFeeHtlc, 3));
    let mut preimages = preimage_requests(&h.sim);
    for r in &preimages {
        h.request(r.clone());
    }
    h.block(CONF);
    let batch = latest(&h, &preimages[0].outpoint);
    assert_eq!(batch.input.len(), 3);
    // The resolver learns a nearer deadline (still within the batching window): the claim
    // transaction it decides is the same, so the batch is neither re-planned nor outbid.
    preimages[1].deadline -= 1;
    assert!(h.request(preimages[1].clone()), "the update is taken");
    h.block(CONF + 1);
    assert_eq!(
        txs(&h).len(),
        1,
        "no new transaction at unchanged fees: {:#?}",
        h.timeline()
    );
    assert_eq!(
        latest(&h, &preimages[1].outpoint).compute_txid(),
        batch.compute_txid()
    );
}

#[test]
fn an_input_spent_by_someone_else_is_removed_and_the_rest_re_planned_without_outbidding_the_batch()
{
    let mut h = Harness::new(wide_channel(ChannelType::StaticRemoteKey, 3));
    let preimages = preimage_requests(&h.sim);
    for r in &preimages {
        h.request(r.clone());
    }
    h.block(CONF);
    let first = latest(&h, &preimages[0].outpoint);
    assert_eq!(first.input.len(), 3);
    // The peer takes one HTLC (say by timeout after a long outage).
    let theirs = Txid::from_byte_array([0xee; 32]);
    h.sweeper.on_spent(&preimages[1].outpoint, theirs, CONF + 1);
    assert_eq!(h.sweeper.fees_paid(&preimages[1].outpoint), Some(0));
    h.block(CONF + 1);
    let next = latest(&h, &preimages[0].outpoint);
    assert_eq!(next.input.len(), 2, "the rest, in one new transaction");
    assert!(next
        .input
        .iter()
        .all(|i| i.previous_output != preimages[1].outpoint));
    assert_eq!(
        next.compute_txid(),
        latest(&h, &preimages[2].outpoint).compute_txid()
    );
    // A confirmed transaction took the batch out of every mempool: the rest need not outbid it
    // (BIP 125), so they pay the market's rate, not the batch's plus the incremental relay fee.
    let rate = |tx: &Transaction| h.fee_of(tx) * 1000 / tx.vsize() as u64;
    assert!(
        rate(&next) < rate(&first) + 1000,
        "the rest pay {} sat/kvB after a batch at {}: outbidding a batch no mempool holds",
        rate(&next),
        rate(&first)
    );
    // Our batch confirms: both claims are spent by us, their shares add up to its fee.
    for r in [&preimages[0], &preimages[2]] {
        h.sweeper
            .on_spent(&r.outpoint, next.compute_txid(), CONF + 2);
    }
    let paid: u64 = [&preimages[0], &preimages[2]]
        .iter()
        .map(|r| h.sweeper.fees_paid(&r.outpoint).unwrap())
        .sum();
    assert_eq!(paid, h.fee_of(&next));
    assert!(h.sweeper.is_idle());
}

#[test]
fn a_batch_rejected_for_one_bad_input_is_split_and_the_others_still_go_out() {
    let mut h = Harness::new(wide_channel(ChannelType::AnchorsZeroFeeHtlc, 3));
    let preimages = preimage_requests(&h.sim);
    for r in &preimages {
        h.request(r.clone());
    }
    let bad = preimages[1].outpoint;
    h.reject_spending.insert(
        bad,
        "non-mandatory-script-verify-flag (Signature must be zero for failed CHECK(MULTI)SIG \
         operation)"
            .into(),
    );
    h.block(CONF);
    assert_eq!(latest(&h, &bad).input.len(), 3);
    // The alert names the cause the node gave: a script error, not a conflict.
    assert!(
        h.alerts().iter().any(|a| a
            .message
            .contains("rejected for a script or policy error: non-mandatory-script-verify-flag")
            && a.message
                .contains("splitting it into one transaction per input")),
        "{:#?}",
        h.alerts()
    );
    h.block(CONF + 1);
    for r in &preimages {
        let tx = latest(&h, &r.outpoint);
        assert_eq!(tx.input.len(), 1, "isolated");
    }
    // The good ones were accepted alone; the bad one keeps failing on its own, reported once.
    let id = h.sweeper.claim_for(&preimages[0].outpoint).unwrap();
    let claim = &h.sweeper.claims()[&id];
    assert!(claim.alone);
    assert_eq!(
        claim.current().unwrap().broadcast,
        BroadcastStatus::Accepted
    );
    let before = h.alerts().len();
    h.block(CONF + 2);
    h.block(CONF + 3);
    assert_eq!(
        h.alerts().len(),
        before,
        "the lone failure is not re-reported"
    );
    assert_eq!(
        txs(&h).values().filter(|(_, t)| t.input.len() > 1).count(),
        1
    );
}

#[test]
fn a_batch_the_node_never_answered_is_not_split_nor_alerted_and_is_sent_again_next_block() {
    let mut h = Harness::new(wide_channel(ChannelType::AnchorsZeroFeeHtlc, 3));
    let preimages = preimage_requests(&h.sim);
    for r in &preimages {
        h.request(r.clone());
    }
    // The client's own error, which the rejection table does not know (as a rejection it would
    // be `Invalid`, and a batch refused as invalid is split).
    let outage = "JSON-RPC error: transport error: Couldn't connect to host: Connection refused";
    assert_eq!(classify_rejection(outage), Rejection::Invalid);
    h.undelivered = Some(outage.into());
    h.block(CONF);
    let batch = latest(&h, &preimages[0].outpoint);
    assert_eq!(batch.input.len(), 3);
    let id = h.sweeper.claim_for(&preimages[0].outpoint).unwrap();
    let claim = h.sweeper.claims()[&id].clone();
    assert_eq!(claim.current().unwrap().broadcast, BroadcastStatus::Sent);
    assert_eq!(claim.refused_rate, None, "not counted as a refusal");
    assert!(claim.last_problem.is_none());
    h.block(CONF + 1);
    assert!(h.alerts().is_empty(), "{:?}", h.alerts());
    // Sent again at the next block, still one batch of three, never split.
    let again: Vec<&Seen> = h.broadcasts.iter().filter(|s| s.tip == CONF + 1).collect();
    assert!(!again.is_empty());
    assert!(again.iter().all(|s| s.tx.input.len() == 3), "not split");
    assert!(h.sweeper.claims()[&id].members.len() == 2);
    // The node is back: the batch is accepted whole.
    h.undelivered = None;
    h.block(CONF + 2);
    let now = latest(&h, &preimages[0].outpoint);
    assert_eq!(now.input.len(), 3);
    assert_eq!(
        h.sweeper.claims()[&id].current().unwrap().broadcast,
        BroadcastStatus::Accepted
    );
    assert!(h.alerts().is_empty(), "{:?}", h.alerts());
    assert!(txs(&h).values().all(|(_, t)| t.input.len() == 3));
}

#[test]
fn a_conflicting_input_splits_the_batch_and_a_fee_refusal_bumps_it() {
    assert_eq!(
        classify_rejection("bad-txns-inputs-missingorspent"),
        Rejection::InputConflict
    );
    assert_eq!(
        classify_rejection("txn-mempool-conflict"),
        Rejection::InputConflict
    );
    assert_eq!(
        classify_rejection("insufficient fee, rejecting replacement"),
        Rejection::FeeTooLow
    );
    assert_eq!(classify_rejection("non-BIP68-final"), Rejection::NotFinal);
    assert_eq!(classify_rejection("scriptpubkey"), Rejection::Invalid);
    // Bitcoin Core's RPC text for a missing input (no reject reason): a conflict, not a script
    // error that would split the batch for nothing.
    assert_eq!(
        classify_rejection("Inputs missing or spent"),
        Rejection::InputConflict
    );
    // A pin with too many descendants to evict.
    assert_eq!(
        classify_rejection("too many potential replacements, rejecting replacement 5e3c…; too many potential replacements (101 > 100)"),
        Rejection::InputConflict
    );

    let mut h = Harness::new(wide_channel(ChannelType::StaticRemoteKey, 2));
    let preimages = preimage_requests(&h.sim);
    for r in &preimages {
        h.request(r.clone());
    }
    h.reject_with = Some("mempool min fee not met".into());
    h.block(CONF);
    let first = latest(&h, &preimages[0].outpoint);
    h.reject_with = None;
    h.block(CONF + 1);
    let bumped = latest(&h, &preimages[0].outpoint);
    assert_eq!(bumped.input.len(), 2, "a fee refusal keeps the batch");
    assert!(h.fee_of(&bumped) > h.fee_of(&first));
    h.reject_with = Some("txn-mempool-conflict".into());
    h.block(CONF + 2);
    assert!(
        h.alerts().iter().any(|a| a
            .message
            .contains("rejected for a missing or conflicting input: txn-mempool-conflict")),
        "{:#?}",
        h.alerts()
    );
    h.reject_with = None;
    h.block(CONF + 3);
    for r in &preimages {
        assert_eq!(latest(&h, &r.outpoint).input.len(), 1);
    }
}

#[test]
fn a_contested_batch_unconfirmed_for_split_after_blocks_is_split() {
    let mut h = Harness::new(wide_channel(ChannelType::StaticRemoteKey, 3));
    let preimages = preimage_requests(&h.sim);
    for r in &preimages {
        h.request(r.clone());
    }
    let after = h.policy.split_after_blocks;
    for tip in CONF..CONF + after {
        h.block(tip);
        assert_eq!(
            latest(&h, &preimages[0].outpoint).input.len(),
            3,
            "at {tip}"
        );
    }
    h.block(CONF + after);
    for r in &preimages {
        assert_eq!(latest(&h, &r.outpoint).input.len(), 1);
    }
    assert!(h
        .timeline()
        .iter()
        .any(|t| t.starts_with("batch split: unconfirmed for 4 blocks")));
    // The parts never merge again, and each must outbid the batch it replaces.
    let batch_rate = {
        let (_, tx) = txs(&h)
            .into_values()
            .find(|(_, t)| t.input.len() == 3)
            .unwrap();
        h.fee_of(&tx) * 1000 / tx.vsize() as u64
    };
    for tip in CONF + after + 1..CONF + after + 4 {
        h.block(tip);
    }
    for r in &preimages {
        let tx = latest(&h, &r.outpoint);
        assert_eq!(tx.input.len(), 1);
        assert!(h.fee_of(&tx) * 1000 / tx.vsize() as u64 > batch_rate);
    }
}

#[test]
fn a_fee_spike_bumps_a_batch_with_a_valid_replacement_within_the_budgets() {
    let mut h = Harness::new(wide_channel(ChannelType::AnchorsZeroFeeHtlc, 3));
    let preimages = preimage_requests(&h.sim);
    for r in &preimages {
        h.request(r.clone());
    }
    h.block(CONF);
    let before = latest(&h, &preimages[0].outpoint);
    h.fees = Some(fees(50));
    h.block(CONF + 1);
    let after = latest(&h, &preimages[0].outpoint);
    assert_ne!(before.compute_txid(), after.compute_txid());
    assert_eq!(after.input.len(), 3);
    // BIP 125 rules 3 and 4: more absolute fee, by at least the incremental relay fee.
    assert!(h.fee_of(&after) >= h.fee_of(&before) + after.vsize() as u64);
    let budget: u64 = preimages.iter().map(|r| r.budget_sat).sum();
    assert!(h.fee_of(&after) <= budget);
}

#[test]
fn an_uneconomical_input_is_left_out_and_a_poor_timeout_claim_is_forced() {
    let mut h = Harness::new(wide_channel(ChannelType::StaticRemoteKey, 2));
    let mut preimages = preimage_requests(&h.sim);
    preimages[1].budget_sat = 50; // cannot pay the relay fee
    for r in &preimages {
        h.request(r.clone());
    }
    let mut timeout = request_of(&h.sim, is_timeout);
    timeout.budget_sat = 50;
    h.request(timeout.clone());
    h.block(CONF);
    assert!(h.broadcasts_of(&preimages[1].outpoint).is_empty());
    assert_eq!(latest(&h, &preimages[0].outpoint).input.len(), 1);
    assert!(h
        .alerts()
        .iter()
        .any(|a| a.message.contains("uneconomical")));
    // The timeout claim is forced at the relay fee once mature, reported.
    h.block(OUTGOING_EXPIRY);
    let forced = latest(&h, &timeout.outpoint);
    assert!(h.fee_of(&forced) > timeout.budget_sat);
    assert!(h
        .alerts()
        .iter()
        .any(|a| a.message.starts_with("forcing the timeout claim")));
    // Not forced when configured to leave it to cut-loss: reported, never dropped.
    let mut h = Harness::new(wide_channel(ChannelType::StaticRemoteKey, 1));
    h.policy.force_timeout_claims = false;
    let mut timeout = request_of(&h.sim, is_timeout);
    timeout.budget_sat = 50;
    h.request(timeout.clone());
    h.block(OUTGOING_EXPIRY);
    assert!(h.broadcasts_of(&timeout.outpoint).is_empty());
    assert!(h
        .alerts()
        .iter()
        .any(|a| a.message.contains("left to the cut-loss rule")));
    assert!(h.sweeper.claim_for(&timeout.outpoint).is_some());
}

#[test]
fn after_a_reorg_and_a_restart_nothing_is_offered_before_it_is_final() {
    let mut h = Harness::new(wide_channel(ChannelType::StaticRemoteKey, 2));
    for r in preimage_requests(&h.sim) {
        h.request(r);
    }
    h.block(CONF + 5);
    assert!(!h.broadcasts.is_empty());
    // A reorg back to CONF + 3, then a restart.
    h.sweeper.on_disconnect(CONF + 5);
    h.sweeper.on_disconnect(CONF + 4);
    let json = serde_json::to_string(&h.sweeper).unwrap();
    let mut restarted: Sweeper = serde_json::from_str(&json).unwrap();
    // The tip is the chain arbitrator's, restored with it on load.
    restarted.set_tip(h.sweeper.tip);
    assert_eq!(restarted, h.sweeper);
    assert!(broadcasts(&restarted.pending_after_restart(Some(CONF + 3))).eq(&0));
    assert_eq!(
        broadcasts(&restarted.pending_after_restart(Some(CONF + 5))),
        1
    );
    // A late signature after the reorg is stored, not broadcast until final.
    let mut h = Harness::new(wide_channel(ChannelType::StaticRemoteKey, 2));
    for r in preimage_requests(&h.sim) {
        h.request(r);
    }
    h.auto_sign = false;
    h.block(CONF + 5);
    let pending = h.unsigned.pop().unwrap();
    h.sweeper.on_disconnect(CONF + 5);
    let outcome = h.sim.local.sign(&pending);
    assert_eq!(
        broadcasts(&h.sweeper.on_signed(pending.request, &outcome)),
        0
    );
    h.auto_sign = true;
    assert_eq!(
        broadcasts(&h.block(CONF + 4)),
        0,
        "not final in block CONF + 5"
    );
    assert_eq!(broadcasts(&h.block(CONF + 5)), 1, "final in block CONF + 6");
}

#[test]
fn the_batched_sweeper_round_trips_through_json_with_its_plans() {
    let mut h = Harness::new(wide_channel(ChannelType::AnchorsZeroFeeHtlc, 3));
    for r in requests(&h.sim) {
        h.request(r);
    }
    for tip in CONF..CONF + 8 {
        h.block(tip);
    }
    let json = serde_json::to_string(&h.sweeper).unwrap();
    let mut back: Sweeper = serde_json::from_str(&json).unwrap();
    // The tip is the chain arbitrator's, restored with it on load.
    back.set_tip(h.sweeper.tip);
    assert_eq!(back, h.sweeper);
    let mut a = back.clone();
    let mut b = h.sweeper.clone();
    let (fa, fb) = (Some(fees(3)), Some(fees(3)));
    assert_eq!(
        a.on_block(CONF + 8, fa.as_ref(), &h.cfg, &h.policy),
        b.on_block(CONF + 8, fb.as_ref(), &h.cfg, &h.policy)
    );
}
