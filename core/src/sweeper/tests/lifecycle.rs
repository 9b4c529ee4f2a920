//! Requests, cancels, spends, reorgs, restarts and superseded answers.

use super::*;

#[test]
fn the_same_request_twice_changes_nothing_and_an_update_is_applied() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let mut req = request_of(&h.sim, is_to_remote);
    assert!(h.request(req.clone()));
    h.sweeper.take_changed();
    assert!(!h.request(req.clone()));
    assert!(h.sweeper.take_changed().is_empty());
    assert_eq!(h.sweeper.claims().len(), 1);
    assert_eq!(h.node.next_claim, 1, "one claim id allocated");
    let id = h.sweeper.claim_for(&req.outpoint).unwrap();
    assert!(h.sweeper.owns(id));
    req.deadline += 10;
    req.budget_sat += 1;
    assert!(h.request(req.clone()));
    assert_eq!(h.sweeper.take_changed(), BTreeSet::from([id]));
    assert_eq!(h.sweeper.claims()[&id].request, req);
    assert_eq!(h.node.next_claim, 1);
}

#[test]
fn cancel_forgets_the_claim() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let req = request_of(&h.sim, is_to_remote);
    h.request(req.clone());
    h.block(CONF);
    let id = h.sweeper.claim_for(&req.outpoint).unwrap();
    h.sweeper.take_changed();
    assert!(h.sweeper.cancel(&req.outpoint));
    assert!(!h.sweeper.cancel(&req.outpoint));
    assert_eq!(h.sweeper.take_changed(), BTreeSet::from([id]));
    assert!(!h.sweeper.owns(id));
    assert!(h.block(CONF + 1).is_empty());
    assert!(h.sweeper.is_idle());
}

#[test]
fn a_spend_by_someone_else_stops_the_claim_and_its_disconnect_resumes_it() {
    let mut h = Harness::new(channel(ChannelType::AnchorsZeroFeeHtlc, 50_000_000));
    let req = request_of(&h.sim, is_preimage);
    h.request(req.clone());
    h.block(CONF);
    h.block(CONF + 1);
    assert!(!h.sweeper.is_idle());
    let theirs = Txid::from_byte_array([0xee; 32]);
    h.sweeper.on_spent(&req.outpoint, theirs, CONF + 2);
    let id = h.sweeper.claim_for(&req.outpoint).unwrap();
    assert_eq!(
        h.sweeper.claims()[&id].state,
        ClaimState::Spent {
            txid: theirs,
            height: CONF + 2,
            ours: false
        }
    );
    assert_eq!(h.sweeper.fees_paid(&req.outpoint), Some(0));
    assert!(h.sweeper.is_idle());
    for tip in CONF + 2..CONF + 5 {
        assert!(
            h.block(tip).is_empty(),
            "acted after the spend at tip {tip}"
        );
    }
    // A disconnect above the spend changes nothing; of the spend's block, resumes the claim.
    h.sweeper.on_disconnect(CONF + 3);
    assert!(h.sweeper.is_idle());
    h.sweeper.on_disconnect(CONF + 2);
    assert!(!h.sweeper.is_idle());
    let actions = h.block(CONF + 1);
    assert!(broadcasts(&actions) >= 1, "{actions:?}");
}

#[test]
fn our_confirmed_attempt_reports_its_fee_even_if_it_was_replaced() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let req = request_of(&h.sim, is_to_remote);
    h.request(req.clone());
    h.block(CONF);
    let first = h.broadcasts_of(&req.outpoint)[0].tx.clone();
    h.fees = Some(fees(50));
    h.block(CONF + 1);
    let latest = h.broadcasts_of(&req.outpoint).last().unwrap().tx.clone();
    assert_ne!(first.compute_txid(), latest.compute_txid());
    assert_eq!(h.sweeper.fees_paid(&req.outpoint), Some(h.fee_of(&latest)));
    // The first attempt confirmed after all (a miner had it): its fee is what we paid.
    h.sweeper
        .on_spent(&req.outpoint, first.compute_txid(), CONF + 2);
    assert_eq!(h.sweeper.fees_paid(&req.outpoint), Some(h.fee_of(&first)));
    let id = h.sweeper.claim_for(&req.outpoint).unwrap();
    assert!(matches!(
        h.sweeper.claims()[&id].state,
        ClaimState::Spent { ours: true, .. }
    ));
}

#[test]
fn restart_re_emits_the_pending_sign_request() {
    let mut h = Harness::new(channel(ChannelType::AnchorsZeroFeeHtlc, 50_000_000));
    let req = request_of(&h.sim, is_to_local);
    h.request(req.clone());
    h.auto_sign = false;
    h.block(req.mature_at - 1);
    let pending = h.unsigned.pop().unwrap();
    let json = serde_json::to_string(h.sweeper.claims()).unwrap();
    let claims: BTreeMap<ClaimId, SweepClaim> = serde_json::from_str(&json).unwrap();
    let mut restarted = Sweeper::from_claims(claims);
    // The tip is the chain arbitrator's, restored with it on load.
    restarted.set_tip(h.sweeper.tip);
    assert_eq!(restarted, h.sweeper);
    assert_eq!(
        restarted.claim_for(&req.outpoint),
        h.sweeper.claim_for(&req.outpoint)
    );
    assert_eq!(
        restarted.pending_after_restart(Some(req.mature_at - 1)),
        vec![Action::Sign(pending.clone())]
    );
    // Answered after the restart, it goes out.
    h.sweeper = restarted;
    let outcome = h.sim.local.sign(&pending);
    let actions = h.sweeper.on_signed(pending.request, &outcome);
    assert_eq!(broadcasts(&h.run(actions, req.mature_at - 1)), 1);
}

#[test]
fn restart_re_emits_the_broadcast_of_the_signed_claim() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let req = request_of(&h.sim, is_timeout);
    h.request(req.clone());
    h.block(OUTGOING_EXPIRY);
    let sent = h.broadcasts_of(&req.outpoint)[0].clone();
    let json = serde_json::to_string(&h.sweeper).unwrap();
    let mut restarted: Sweeper = serde_json::from_str(&json).unwrap();
    // The tip is the chain arbitrator's, restored with it on load.
    restarted.set_tip(h.sweeper.tip);
    assert_eq!(restarted, h.sweeper);
    assert_eq!(
        restarted.pending_after_restart(Some(OUTGOING_EXPIRY)),
        vec![Action::Broadcast {
            request: sent.request,
            tx: RawTx(sent.tx)
        }]
    );
}

#[test]
fn superseded_signatures_are_dropped() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let req = request_of(&h.sim, is_to_remote);
    h.request(req.clone());
    h.auto_sign = false;
    h.block(CONF);
    let old = h.unsigned.pop().unwrap();
    // The signer is slow; the fees spike and a new attempt supersedes the unsigned one.
    h.fees = Some(fees(50));
    h.block(CONF + 1);
    let new = h.unsigned.pop().unwrap();
    assert_eq!(new.request.attempt, old.request.attempt + 1);
    let late = h.sim.local.sign(&old);
    assert!(h.sweeper.on_signed(old.request, &late).is_empty());
    assert!(h
        .sweeper
        .on_broadcast_result(old.request, &BroadcastOutcome::Accepted)
        .is_empty());
    let outcome = h.sim.local.sign(&new);
    let actions = h.sweeper.on_signed(new.request, &outcome);
    assert_eq!(broadcasts(&h.run(actions, CONF + 1)), 1);
    assert_eq!(h.broadcasts[0].request, new.request);
    // A duplicate answer does nothing.
    assert!(h.sweeper.on_signed(new.request, &outcome).is_empty());
}

#[test]
fn a_slow_signer_is_asked_again_each_block() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let mut req = request_of(&h.sim, is_to_remote);
    req.budget_sat = 300; // a flat line: no bump to supersede the request
    h.request(req.clone());
    h.auto_sign = false;
    h.block(CONF);
    h.block(CONF + 1);
    assert_eq!(h.unsigned.len(), 2);
    assert_eq!(h.unsigned[0], h.unsigned[1]);
}

#[test]
fn the_sweeper_round_trips_through_json() {
    let mut h = Harness::new(channel(ChannelType::AnchorsZeroFeeHtlc, 50_000_000));
    for req in requests(&h.sim) {
        h.request(req);
    }
    for tip in CONF..CONF + 30 {
        h.block(tip);
    }
    let json = serde_json::to_string(&h.sweeper).unwrap();
    let mut back: Sweeper = serde_json::from_str(&json).unwrap();
    // The tip is the chain arbitrator's, restored with it on load.
    back.set_tip(h.sweeper.tip);
    assert_eq!(back, h.sweeper);
    for req in requests(&h.sim) {
        assert_eq!(
            back.claim_for(&req.outpoint),
            h.sweeper.claim_for(&req.outpoint)
        );
    }
    let tip = Some(CONF + 29);
    assert_eq!(
        back.pending_after_restart(tip),
        h.sweeper.pending_after_restart(tip)
    );
}

/// A claim that becomes possible mid-block (a preimage just learned) goes out in that step,
/// not a block later; one already out is left to the next block, and an outpoint without a
/// claim is ignored.
#[test]
fn claim_now_sends_a_new_claim_at_once_and_leaves_one_already_out_alone() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let req = request_of(&h.sim, is_preimage);
    h.request(req.clone());
    let unknown = OutPoint {
        txid: Txid::from_byte_array([0xab; 32]),
        vout: 0,
    };
    let both = BTreeSet::from([req.outpoint, unknown]);
    let now = h
        .sweeper
        .claim_now(&both, CONF, h.fees.as_ref(), &h.cfg, &h.policy);
    h.run(now, CONF);
    let spent: Vec<OutPoint> = h
        .broadcasts
        .iter()
        .flat_map(|b| b.tx.input.iter().map(|i| i.previous_output))
        .collect();
    assert!(spent.contains(&req.outpoint), "claimed in the same step");
    assert!(!spent.contains(&unknown));
    let again = h
        .sweeper
        .claim_now(&both, CONF, h.fees.as_ref(), &h.cfg, &h.policy);
    assert!(
        again.is_empty(),
        "already out: left to the next block, {again:?}"
    );
}
