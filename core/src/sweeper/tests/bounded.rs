//! A bounded sweeper: a finished claim leaves once its spend is final and its record is deleted;
//! a block examines only the claims its schedule wakes.

use super::*;

const SAFETY: u32 = 6;

#[test]
fn a_spent_claim_leaves_exactly_when_its_spend_is_final_and_its_record_is_deleted() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let req = request_of(&h.sim, is_to_remote);
    h.request(req.clone());
    h.block(CONF);
    let ours = h.broadcasts_of(&req.outpoint)[0].tx.compute_txid();
    let id = h.sweeper.claim_for(&req.outpoint).unwrap();
    h.sweeper.on_spent(&req.outpoint, ours, CONF + 1);
    h.sweeper.take_changed();
    // Confirmed at CONF + 1: SAFETY deep at tip CONF + SAFETY.
    for tip in CONF + 1..CONF + SAFETY {
        h.sweeper.drop_finished(tip, SAFETY);
        assert!(
            h.sweeper.owns(id),
            "dropped at tip {tip}, before its spend is final"
        );
    }
    assert!(h.sweeper.take_changed().is_empty());
    h.sweeper.drop_finished(CONF + SAFETY, SAFETY);
    assert!(!h.sweeper.owns(id));
    assert!(h.sweeper.claims().is_empty());
    assert_eq!(h.sweeper.claim_for(&req.outpoint), None);
    assert_eq!(
        h.sweeper.take_changed(),
        BTreeSet::from([id]),
        "its record is deleted"
    );
    // Gone for good: a disconnect of an earlier block cannot revive it.
    h.sweeper.on_disconnect(CONF + 1);
    assert!(h.sweeper.claims().is_empty());
    assert!(h.sweeper.is_idle());
}

#[test]
fn a_spend_disconnected_before_it_is_final_keeps_the_claim_and_its_schedule() {
    let mut h = Harness::new(channel(ChannelType::AnchorsZeroFeeHtlc, 50_000_000));
    let req = request_of(&h.sim, is_preimage);
    h.request(req.clone());
    h.block(CONF);
    let id = h.sweeper.claim_for(&req.outpoint).unwrap();
    let theirs = Txid::from_byte_array([0xee; 32]);
    h.sweeper.on_spent(&req.outpoint, theirs, CONF + 1);
    h.sweeper.on_disconnect(CONF + 1);
    assert_eq!(h.sweeper.claims()[&id].state, ClaimState::Active);
    // Its old spend no longer counts: it stays however deep that spend would be now.
    h.sweeper.drop_finished(CONF + 40, SAFETY);
    assert!(h.sweeper.owns(id));
    // Spent again later: it leaves when that spend is final.
    h.sweeper.on_spent(&req.outpoint, theirs, CONF + 3);
    h.sweeper.drop_finished(CONF + 3 + SAFETY - 2, SAFETY);
    assert!(h.sweeper.owns(id));
    h.sweeper.drop_finished(CONF + 3 + SAFETY - 1, SAFETY);
    assert!(!h.sweeper.owns(id));
}

#[test]
fn a_claim_waiting_for_maturity_sleeps_until_then_and_is_claimed_at_once() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let req = request_of(&h.sim, is_to_local);
    assert!(req.mature_at > CONF + 10, "a to_local waits for its delay");
    h.request(req.clone());
    let id = h.sweeper.claim_for(&req.outpoint).unwrap();
    assert!(h.block(CONF).is_empty());
    assert!(
        !h.sweeper.schedule.awake().contains(&id),
        "not examined while immature"
    );
    assert!(h.sweeper.schedule.any_maturing());
    assert!(
        !h.sweeper.is_idle(),
        "a claim waiting for maturity is not idle"
    );
    // The block before maturity: nothing; at maturity (offered for block `mature_at`): claimed.
    assert!(h.block(req.mature_at - 2).is_empty());
    let actions = h.block(req.mature_at - 1);
    assert!(broadcasts(&actions) >= 1, "{actions:?}");
    assert!(h.sweeper.schedule.awake().contains(&id));
}

#[test]
fn a_reloaded_sweeper_rebuilds_its_schedule_from_its_claims() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let spent = request_of(&h.sim, is_to_remote);
    let waiting = request_of(&h.sim, is_to_local);
    h.request(spent.clone());
    h.request(waiting.clone());
    h.block(CONF);
    let theirs = Txid::from_byte_array([0xee; 32]);
    h.sweeper.on_spent(&spent.outpoint, theirs, CONF + 1);
    let json = serde_json::to_string(&h.sweeper).unwrap();
    let mut loaded: Sweeper = serde_json::from_str(&json).unwrap();
    loaded.drop_finished(CONF + SAFETY, SAFETY);
    assert_eq!(loaded.claim_for(&spent.outpoint), None);
    assert!(loaded.claim_for(&waiting.outpoint).is_some());
    assert!(!loaded.is_idle());
}
