//! What happens on-chain after a close, as far as arbitration decides it: preimages learned from
//! the peer's spends travel upstream at once, timeouts fail upstream only once reorg-safe, the
//! cut-loss rule, idempotent force closes, updates resent after a crash, and the largest channel.

use contractcourt_core::action::{Action, FailReason, Outcome, Report};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::Config;
use contractcourt_core::channel::ArbState;
use contractcourt_core::event::{Event, ForceCloseReason, IncomingLeg, PreimageSource};
use contractcourt_core::resolver::ResolverKind;
use contractcourt_core::sim::SimSetup;
use contractcourt_core::types::{ChannelId, HtlcDirection, HtlcKey, Party};
use contractcourt_tests::checks::{fails, settles};
use contractcourt_tests::{Harness, START_HEIGHT};

fn upstream(n: u64) -> HtlcKey {
    HtlcKey {
        channel: ChannelId([7; 32]),
        htlc_id: n,
        direction: HtlcDirection::Incoming,
    }
}

/// A channel with one forwarded outgoing HTLC, closed by the peer's current commitment.
fn remote_close_with_forward(
    channel_type: ChannelType,
    expiry: u32,
) -> (Harness, ChannelId, contractcourt_core::sim::SimHtlc) {
    let mut h = Harness::new(Config::default());
    let id = h.open(SimSetup::new(21, channel_type));
    let mut out = None;
    h.with_sim(id, |sim| {
        out = Some(
            sim.add_htlc(HtlcDirection::Outgoing, 60_000_000, expiry)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    let out = out.unwrap();
    h.feed(Event::CircuitAdded {
        outgoing: out.key,
        incoming: IncomingLeg {
            htlc: upstream(1),
            cltv_expiry: expiry + 40,
            amount_msat: 60_010_000,
        },
    });
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    h.mine(vec![theirs]);
    (h, id, out)
}

#[test]
fn the_peers_preimage_claim_settles_upstream_at_once_from_the_mempool_or_a_block() {
    for via_mempool in [false, true] {
        let (mut h, id, out) =
            remote_close_with_forward(ChannelType::AnchorsZeroFeeHtlc, START_HEIGHT + 50);
        // The peer claims our outgoing HTLC from its own commitment with the preimage: that is
        // its second-level HTLC-success transaction.
        let claim = h.sim(id).htlc_tx(Party::Remote, 1, out.key).unwrap();
        let actions = h.see_or_mine(&claim, via_mempool);
        assert_eq!(
            settles(&actions),
            vec![upstream(1)],
            "the preimage goes upstream at once (mempool: {via_mempool})"
        );
        assert!(h
            .arb
            .node()
            .preimage_for(&out.key, &out.payment_hash())
            .is_some());
        // Never failed afterwards, even when the claim confirms and is deep.
        if via_mempool {
            h.mine(vec![claim]);
        }
        h.mine_empty(10);
        assert!(fails(&h.transcript).is_empty());
        h.check_crash_anywhere();
    }
}

#[test]
fn our_timeout_fails_upstream_only_once_reorg_safe_and_a_reorg_before_that_undoes_it() {
    let config = Config::default();
    let expiry = START_HEIGHT + 5;
    let mut h = Harness::new(config.clone());
    let id = h.open(SimSetup::new(22, ChannelType::StaticRemoteKey));
    let mut out = None;
    h.with_sim(id, |sim| {
        out = Some(
            sim.add_htlc(HtlcDirection::Outgoing, 60_000_000, expiry)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    let out = out.unwrap();
    h.feed(Event::CircuitAdded {
        outgoing: out.key,
        incoming: IncomingLeg {
            htlc: upstream(2),
            cltv_expiry: expiry + 60,
            amount_msat: 60_010_000,
        },
    });
    let ours = h.sim(id).commitment_tx(Party::Local, 1).unwrap();
    let timeout = h.sim(id).htlc_tx(Party::Local, 1, out.key).unwrap();
    h.mine(vec![ours]);
    h.mine_empty(expiry - h.height());
    h.mine(vec![timeout.clone()]);
    let depth = config.close.reorg_safety_depth;
    h.mine_empty(depth - 2);
    assert!(fails(&h.transcript).is_empty(), "not yet reorg-safe");
    // A reorg takes the timeout out; it confirms again one block later.
    h.disconnect_tip();
    h.disconnect_tip();
    h.mine_salted(vec![], 9);
    h.mine_salted(vec![], 9);
    let ch = h.arb.channel(&id).unwrap();
    assert!(ch
        .resolvers
        .values()
        .any(|r| matches!(r.kind, ResolverKind::OutgoingHtlc { .. })
            && matches!(r.stage, contractcourt_core::resolver::Stage::Spent { .. })));
    h.mine_empty(depth);
    let failed = fails(&h.transcript);
    assert_eq!(
        failed,
        vec![(
            upstream(2),
            FailReason::OutgoingTimedOut { outgoing: out.key }
        )]
    );
    let timed_out = h
        .reports()
        .into_iter()
        .any(|r| matches!(r, Report::Resolution(res) if res.outcome == Outcome::TimedOut));
    assert!(timed_out);
    h.check_crash_anywhere();
}

#[test]
fn cut_loss_fails_the_incoming_leg_before_it_expires_and_reports_a_possible_loss() {
    let config = Config::default();
    let cut = config.close.cut_loss_blocks.unwrap();
    let expiry = START_HEIGHT + 20;
    let (mut h, _id, out) = remote_close_with_forward(ChannelType::AnchorsZeroFeeHtlc, expiry);
    let incoming_expiry = expiry + 40;
    h.mine_empty(incoming_expiry - cut - 1 - h.height());
    assert!(fails(&h.transcript).is_empty());
    h.mine_empty(1);
    assert_eq!(h.height(), incoming_expiry - cut);
    assert_eq!(
        fails(&h.transcript),
        vec![(
            upstream(1),
            FailReason::CutLoss {
                outgoing: out.key,
                incoming_expiry
            }
        )]
    );
    assert!(h
        .reports()
        .into_iter()
        .any(|r| matches!(r, Report::Loss { htlc, .. } if *htlc == out.key)));
}

#[test]
fn a_second_force_close_request_rebroadcasts_instead_of_refusing() {
    let mut h = Harness::new(Config::default());
    let id = h.open(SimSetup::new(23, ChannelType::StaticRemoteKey));
    let first = h.feed(Event::ForceCloseRequested {
        channel: id,
        reason: ForceCloseReason::User,
    });
    h.answer(&first);
    let again = h.feed(Event::ForceCloseRequested {
        channel: id,
        reason: ForceCloseReason::User,
    });
    let ours = h.broadcasts[0].compute_txid();
    assert!(
        again
            .iter()
            .any(|a| matches!(a, Action::Broadcast { tx, .. } if tx.compute_txid() == ours)),
        "{again:?}"
    );
    assert_eq!(
        h.arb.channel(&id).unwrap().state(),
        ArbState::CommitmentBroadcasted
    );
}

#[test]
fn an_update_resent_after_a_crash_before_its_acknowledgement_is_acknowledged_again() {
    let mut h = Harness::new(Config::default());
    let id = h.open(SimSetup::new(24, ChannelType::AnchorsZeroFeeHtlc));
    let events = h.sims.get_mut(&id).unwrap().commit().unwrap();
    let first = h.feed(events[0].clone());
    assert!(matches!(first.first(), Some(Action::Persist(_))));
    assert!(matches!(first.last(), Some(Action::UpdatePersisted { .. })));
    // The node crashed before it saw UpdatePersisted; the engine restarts from its store and
    // the node sends the same update again.
    let mut restarted =
        contractcourt_core::chain::ChainArbitrator::from_records(h.config, &h.store.records)
            .unwrap();
    let again = restarted.step(&events[0]).unwrap();
    let Event::ChannelUpdate(u) = &events[0] else {
        unreachable!()
    };
    assert_eq!(
        again,
        vec![Action::UpdatePersisted {
            channel: id,
            update_id: u.update_id
        }]
    );
    assert!(restarted == h.arb);
}

#[test]
fn a_close_with_483_htlcs_each_way_plans_a_resolver_for_every_untrimmed_htlc() {
    let mut h = Harness::new(Config::default());
    let mut setup = SimSetup::new(25, ChannelType::AnchorsZeroFeeHtlc);
    setup.funding_sat = 16_777_215;
    setup.local_balance_msat = 8_000_000_000;
    setup.feerate_per_kw = 253;
    let id = h.open(setup);
    h.with_sim(id, |sim| {
        for i in 0..483u32 {
            sim.add_htlc(
                HtlcDirection::Outgoing,
                5_000_000 + u64::from(i),
                START_HEIGHT + 200 + i % 50,
            )
            .unwrap();
            sim.add_htlc(
                HtlcDirection::Incoming,
                5_000_000 + u64::from(i),
                START_HEIGHT + 200 + i % 50,
            )
            .unwrap();
        }
        sim.commit().unwrap()
    });
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    assert_eq!(theirs.output.len(), 966 + 4);
    h.mine(vec![theirs]);
    let ch = h.arb.channel(&id).unwrap();
    let outgoing = ch
        .resolvers
        .values()
        .filter(|r| matches!(r.kind, ResolverKind::OutgoingHtlc { .. }))
        .count();
    let incoming = ch
        .resolvers
        .values()
        .filter(|r| matches!(r.kind, ResolverKind::IncomingHtlc { .. }))
        .count();
    assert_eq!((outgoing, incoming), (483, 483));
}

#[test]
fn a_closed_channel_with_nothing_due_is_not_woken_every_block() {
    let config = Config::default();
    let expiry = START_HEIGHT + 500;
    let (mut h, id, _) = remote_close_with_forward(ChannelType::StaticRemoteKey, expiry);
    h.mine_empty(config.close.reorg_safety_depth + 5);
    // Nothing spends its outputs here: after the reorg-safe decisions the only wakeup left is
    // the cut-loss height of the forwarded HTLC (its incoming leg expires at expiry + 40).
    let cut = config.close.cut_loss_blocks.unwrap();
    assert_eq!(h.arb.next_wakeup(&id), Some(expiry + 40 - cut));
}

#[test]
fn a_preimage_revealed_after_a_cut_loss_fail_is_reported_as_a_loss_and_never_settled() {
    let config = Config::default();
    let cut = config.close.cut_loss_blocks.unwrap();
    let expiry = START_HEIGHT + 20;
    let (mut h, id, out) = remote_close_with_forward(ChannelType::AnchorsZeroFeeHtlc, expiry);
    h.mine_empty(expiry + 40 - cut - h.height());
    assert_eq!(
        fails(&h.transcript).len(),
        1,
        "cut loss failed the incoming leg"
    );
    // The peer claims with the preimage anyway.
    let claim = h.sim(id).htlc_tx(Party::Remote, 1, out.key).unwrap();
    let actions = h.mine(vec![claim]);
    assert!(
        settles(&actions).is_empty(),
        "a fail already sent is never followed by a settle"
    );
    let losses = actions
        .iter()
        .filter(|a| matches!(a, Action::Report(Report::Loss { htlc, .. }) if *htlc == upstream(1)))
        .count();
    assert_eq!(losses, 1);
    h.mine_empty(3);
    let all_losses = h
        .transcript
        .iter()
        .filter(|a| matches!(a, Action::Report(Report::Loss { htlc, .. }) if *htlc == upstream(1)))
        .count();
    assert_eq!(all_losses, 1, "reported once");
    h.check_crash_anywhere();
}

/// Issue 23 §2: the peer's HTLC-success seen in the mempool settles the incoming leg at once,
/// and that decision ends the cut-loss wake-up the channel had planned for the leg. The
/// harness checks after every event that loading the store gives back the in-memory state: the
/// channel's wake-up index entry must follow the settle (it used to keep the cut-loss height,
/// which a reload does not have).
#[test]
fn a_preimage_seen_in_the_mempool_ends_the_cut_loss_wakeup_in_memory_as_in_the_store() {
    let config = Config::default();
    let expiry = START_HEIGHT + 500;
    let (mut h, id, out) = remote_close_with_forward(ChannelType::StaticRemoteKey, expiry);
    h.mine_empty(config.close.reorg_safety_depth + 5);
    let cut = config.close.cut_loss_blocks.unwrap();
    assert_eq!(h.arb.next_wakeup(&id), Some(expiry + 40 - cut));
    let claim = h.sim(id).htlc_tx(Party::Remote, 1, out.key).unwrap();
    let actions = h.see_in_mempool(&claim);
    assert_eq!(settles(&actions), vec![upstream(1)]);
    assert_ne!(
        h.arb.next_wakeup(&id),
        Some(expiry + 40 - cut),
        "the leg is settled: no cut-loss wake-up is left for it"
    );
    // Replaced in the mempool, then confirmed: nothing changes upstream.
    h.feed(Event::MempoolRemoved {
        txid: claim.compute_txid(),
        reason: contractcourt_core::event::MempoolRemovalReason::Replaced { by: None },
    });
    h.mine(vec![claim]);
    h.mine_empty(3);
    assert!(fails(&h.transcript).is_empty());
    h.check_crash_anywhere();
}

/// Issue 24 (found by `event_trace`, `fuzz/corpus/event_trace/reload-mismatch-wakeup-tip`): our
/// commitment confirms with an incoming HTLC, updates then fail the HTLC off-chain (no live
/// commitment carries it any more), and its preimage arrives by invoice. The close's resolver
/// for that HTLC can use the preimage (a second-level claim of our commitment starts at the
/// close height once the preimage is known), so the channel's wake-up moves to the close height —
/// in memory as after a reload (the harness checks after every event that loading the store
/// gives back the in-memory state). The channel used to be found for a preimage only through
/// the HTLCs of its live commitments, so it was not reindexed and kept its old wake-up (the
/// close's reorg-safety height).
#[test]
fn a_preimage_of_an_htlc_only_on_the_confirmed_close_moves_its_channels_wakeup() {
    let config = Config::default();
    let mut h = Harness::new(config.clone());
    let id = h.open(SimSetup::new(24, ChannelType::StaticRemoteKey));
    let mut incoming = None;
    h.with_sim(id, |sim| {
        incoming = Some(
            sim.add_htlc(HtlcDirection::Incoming, 5_000_000, START_HEIGHT + 41)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    let incoming = incoming.unwrap();
    let n = h.sim(id).local_commitment_number();
    let ours = h.sim(id).commitment_tx(Party::Local, n).unwrap();
    h.mine(vec![ours]);
    let close_height = h.height();
    h.with_sim(id, |sim| {
        sim.fail_htlc(incoming.key).unwrap();
        sim.commit().unwrap()
    });
    h.mine_empty(2);
    assert_eq!(
        h.arb.next_wakeup(&id),
        Some(close_height + config.close.reorg_safety_depth - 1),
        "before the preimage: the close's reorg-safety height"
    );
    h.feed(Event::PreimageLearned {
        preimage: incoming.preimage,
        source: PreimageSource::Invoice { htlc: incoming.key },
    });
    assert_eq!(h.arb.next_wakeup(&id), Some(close_height));
}
