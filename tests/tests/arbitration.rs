//! Arbitration scenarios: when a channel goes to chain, how each kind of close is recognised,
//! what is planned for every output, and that each step is durable. Channels and closing
//! transactions come from `sim`; every trace is checked against a golden file and replayed.

use bitcoin::{Amount, TxOut};
use contractcourt_core::action::{Action, CloseKind, CloseTrigger, FailReason, Report};
use contractcourt_core::bolt3::{scripts, ChannelType};
use contractcourt_core::chain::{Config, StepError};
use contractcourt_core::channel::ArbState;
use contractcourt_core::event::{
    ChannelChange, ChannelUpdate, Event, ForceCloseReason, FundingOutput, IncomingLeg,
    PreimageSource,
};
use contractcourt_core::resolver::ResolverKind;
use contractcourt_core::sim::{SimChannel, SimSetup};
use contractcourt_core::testkit::verify_with_bitcoin_core;
use contractcourt_core::types::{ChannelId, HtlcDirection, HtlcKey, Party};
use contractcourt_tests::{Harness, START_HEIGHT};

fn funding_prevout(sim: &SimChannel) -> TxOut {
    let l = sim.local.basepoints();
    let r = sim.remote.basepoints();
    TxOut {
        value: Amount::from_sat(sim.funding.value_sat),
        script_pubkey: scripts::funding_script(&l.funding_pubkey, &r.funding_pubkey).to_p2wsh(),
    }
}

fn close_summaries(h: &Harness) -> Vec<contractcourt_core::action::CloseSummary> {
    h.reports()
        .into_iter()
        .filter_map(|r| match r {
            Report::CloseSummary(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn signs(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Sign(_)))
        .count()
}

fn state(h: &Harness, id: ChannelId) -> ArbState {
    h.arb
        .channel(&id)
        .map(|c| c.state())
        .unwrap_or_else(|| panic!("channel {id} archived or unknown"))
}

#[test]
fn outgoing_htlc_deadline_forces_our_close_and_plans_every_output() {
    let mut h = Harness::new(Config::default());
    let id = h.open(SimSetup::new(1, ChannelType::AnchorsZeroFeeHtlc));
    let expiry = START_HEIGHT + 10;
    let mut out = None;
    h.with_sim(id, |sim| {
        out = Some(
            sim.add_htlc(HtlcDirection::Outgoing, 50_000_000, expiry)
                .unwrap(),
        );
        sim.add_htlc(HtlcDirection::Incoming, 30_000_000, expiry + 20)
            .unwrap();
        sim.commit().unwrap()
    });
    let out = out.unwrap();
    h.feed(Event::CircuitAdded {
        outgoing: out.key,
        incoming: IncomingLeg {
            htlc: HtlcKey {
                channel: ChannelId([9; 32]),
                htlc_id: 4,
                direction: HtlcDirection::Incoming,
            },
            cltv_expiry: expiry + 40,
            amount_msat: 50_001_000,
        },
    });
    while h.height() < expiry - 1 {
        let actions = h.mine(Vec::new());
        assert_eq!(
            signs(&actions),
            0,
            "no close before the deadline, at {}",
            h.height()
        );
    }
    assert_eq!(state(&h, id), ArbState::Default);
    let actions = h.mine(Vec::new());
    assert_eq!(h.height(), expiry);
    assert_eq!(
        signs(&actions),
        1,
        "our commitment is signed at the HTLC's expiry"
    );
    assert_eq!(state(&h, id), ArbState::CommitmentBroadcasted);

    // What we broadcast is our latest commitment, and Bitcoin Core accepts its signatures.
    let sim = h.sim(id).clone();
    let ours = h.broadcasts.last().unwrap().clone();
    assert_eq!(
        ours.compute_txid(),
        sim.commitment_tx(Party::Local, 1).unwrap().compute_txid()
    );
    verify_with_bitcoin_core(&ours, &[funding_prevout(&sim)]).unwrap();

    // Rebroadcast every block until it confirms.
    let again = h.mine(Vec::new());
    assert!(again.iter().any(
        |a| matches!(a, Action::Broadcast { tx, .. } if tx.compute_txid() == ours.compute_txid())
    ));

    h.mine(vec![ours.clone()]);
    let close_height = h.height();
    let summary = close_summaries(&h).pop().unwrap();
    assert_eq!(
        summary.close,
        CloseKind::Local {
            commitment_number: 1
        }
    );
    assert!(
        matches!(summary.trigger, CloseTrigger::HtlcDeadline { htlc, deadline, height } if htlc == out.key && deadline == expiry + 40 && height == expiry)
    );
    let ch = h.arb.channel(&id).unwrap();
    assert_eq!(ch.state(), ArbState::WaitingFullResolution);
    let kinds: Vec<&ResolverKind> = ch.resolvers.values().map(|r| &r.kind).collect();
    let delay = u32::from(sim.setup().local_to_self_delay);
    assert!(kinds.iter().any(|k| matches!(k, ResolverKind::CommitSweep { mature_at } if *mature_at == close_height + delay)));
    assert!(kinds.iter().any(|k| matches!(k, ResolverKind::OutgoingHtlc { htlc, deadline, .. } if *htlc == out.key && *deadline == expiry + 40)));
    assert!(kinds
        .iter()
        .any(|k| matches!(k, ResolverKind::IncomingHtlc { .. })));
    assert!(kinds.iter().any(|k| matches!(k, ResolverKind::Anchor)));
    assert_eq!(
        kinds.len(),
        4,
        "to_local, two HTLCs and our anchor; the peer's outputs are not ours"
    );
    h.check_golden(
        "outgoing_deadline_local_close",
        "an outgoing HTLC reaches its expiry: we force close and plan every output",
    );
    h.check_crash_anywhere();
}

#[test]
fn incoming_htlc_with_preimage_forces_close_delta_blocks_before_expiry() {
    let config = Config::default();
    let delta = config.deadlines.incoming_broadcast_delta;
    let mut h = Harness::new(config.clone());
    let id = h.open(SimSetup::new(2, ChannelType::StaticRemoteKey));
    let expiry = START_HEIGHT + delta + 5;
    let mut inc = None;
    h.with_sim(id, |sim| {
        inc = Some(
            sim.add_htlc(HtlcDirection::Incoming, 70_000_000, expiry)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    let inc = inc.unwrap();
    h.mine_empty(expiry - delta - h.height() + 3);
    assert_eq!(
        state(&h, id),
        ArbState::Default,
        "without the preimage there is nothing to claim"
    );
    let actions = h.feed(Event::PreimageLearned {
        preimage: inc.preimage,
        source: PreimageSource::Invoice { htlc: inc.key },
    });
    assert_eq!(
        signs(&actions),
        1,
        "past the incoming deadline with the preimage: close at once"
    );
    h.answer(&actions);
    assert_eq!(state(&h, id), ArbState::CommitmentBroadcasted);
    h.check_golden(
        "incoming_preimage_deadline",
        "an incoming HTLC whose preimage we learn past its deadline",
    );
}

#[test]
fn remote_close_on_current_and_pending_commitment_is_recognised() {
    for pending in [false, true] {
        let mut h = Harness::new(Config::default());
        let id = h.open(SimSetup::new(3, ChannelType::AnchorsZeroFeeHtlc));
        h.with_sim(id, |sim| {
            sim.add_htlc(HtlcDirection::Outgoing, 40_000_000, START_HEIGHT + 100)
                .unwrap();
            sim.commit().unwrap()
        });
        let n = if pending {
            h.with_sim(id, |sim| {
                sim.add_htlc(HtlcDirection::Incoming, 20_000_000, START_HEIGHT + 120)
                    .unwrap();
                sim.propose().unwrap()
            });
            h.sim(id).remote_pending_number().unwrap()
        } else {
            h.sim(id).remote_commitment_number()
        };
        let theirs = h.sim(id).commitment_tx(Party::Remote, n).unwrap();
        h.mine(vec![theirs]);
        let summary = close_summaries(&h).pop().unwrap();
        assert_eq!(
            summary.close,
            CloseKind::Remote {
                commitment_number: n,
                pending
            }
        );
        assert_eq!(summary.trigger, CloseTrigger::Peer);
        let ch = h.arb.channel(&id).unwrap();
        let htlcs = ch
            .resolvers
            .values()
            .filter(|r| {
                matches!(
                    r.kind,
                    ResolverKind::OutgoingHtlc { .. } | ResolverKind::IncomingHtlc { .. }
                )
            })
            .count();
        assert_eq!(htlcs, if pending { 2 } else { 1 });
        assert!(ch.resolvers.values().any(|r| matches!(r.kind, ResolverKind::CommitSweep { mature_at } if mature_at == h.height() + 1)));
        assert!(
            h.broadcasts.is_empty(),
            "we never broadcast when the peer closed"
        );
        let name = if pending {
            "remote_close_pending"
        } else {
            "remote_close_current"
        };
        h.check_golden(name, "the peer's commitment confirms");
        h.check_crash_anywhere();
    }
}

#[test]
fn cooperative_close_resolves_after_reorg_safety_depth_and_is_archived_later() {
    let config = Config::default();
    let mut h = Harness::new(config.clone());
    let id = h.open(SimSetup::new(4, ChannelType::StaticRemoteKey));
    let (local, remote) = (
        bitcoin::ScriptBuf::from_bytes(vec![0x51]),
        bitcoin::ScriptBuf::from_bytes(vec![0x52]),
    );
    let update_id = h.arb.channel(&id).unwrap().data.last_update_id + 1;
    h.feed(Event::ChannelUpdate(ChannelUpdate {
        channel: id,
        update_id,
        change: ChannelChange::ShutdownScripts {
            local: local.clone(),
            remote: remote.clone(),
        },
    }));
    let coop = h
        .sim(id)
        .cooperative_close_tx(local.clone(), remote, 500)
        .unwrap();
    let paid_to_us: u64 = coop
        .output
        .iter()
        .filter(|o| o.script_pubkey == local)
        .map(|o| o.value.to_sat())
        .sum();
    assert!(paid_to_us > 0, "the sim channel has a balance of ours");
    h.mine(vec![coop]);
    let summary = close_summaries(&h).pop().unwrap();
    assert_eq!(summary.close, CloseKind::Cooperative);
    assert_eq!(
        summary.our_balance_sat, paid_to_us,
        "our balance is what the close paid our shutdown script"
    );
    assert_eq!(state(&h, id), ArbState::ContractClosed);
    h.mine_empty(config.close.reorg_safety_depth - 2);
    assert_eq!(state(&h, id), ArbState::ContractClosed);
    h.mine_empty(1);
    assert_eq!(state(&h, id), ArbState::FullyResolved);
    h.mine_empty(config.close.archive_depth - 1);
    assert!(
        h.arb.channel(&id).is_none(),
        "archived once the resolution is archive_depth deep"
    );
    assert!(
        h.store
            .records
            .keys()
            .all(|k| !k.to_string().contains(&id.to_string())),
        "its records are deleted"
    );
    h.check_golden(
        "cooperative_close",
        "a cooperative close: reorg-safe, then archived",
    );
    h.check_crash_anywhere();
}

#[test]
fn revoked_commitment_is_a_breach_with_every_output_ours() {
    let mut h = Harness::new(Config::default());
    let id = h.open(SimSetup::new(5, ChannelType::AnchorsZeroFeeHtlc));
    h.with_sim(id, |sim| {
        sim.add_htlc(HtlcDirection::Outgoing, 40_000_000, START_HEIGHT + 100)
            .unwrap();
        sim.add_htlc(HtlcDirection::Incoming, 25_000_000, START_HEIGHT + 100)
            .unwrap();
        sim.commit().unwrap()
    });
    let revoked = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    h.with_sim(id, |sim| sim.commit().unwrap());
    h.mine(vec![revoked.clone()]);
    assert_eq!(
        close_summaries(&h).pop().unwrap().close,
        CloseKind::Breach {
            commitment_number: 1
        }
    );
    let ch = h.arb.channel(&id).unwrap();
    let breach = ch
        .resolvers
        .values()
        .filter(|r| {
            matches!(
                r.kind,
                ResolverKind::Breach {
                    commitment_number: 1
                }
            )
        })
        .count();
    assert_eq!(breach, 3, "their to_local and both HTLCs");
    assert!(
        ch.resolvers
            .values()
            .any(|r| matches!(r.kind, ResolverKind::CommitSweep { .. })),
        "our to_remote"
    );
    assert!(
        h.store.log.contains_key(&(id, 1)),
        "the revoked commitment's HTLC data is in the append-only log"
    );
    h.check_golden(
        "breach_handoff",
        "a revoked commitment of the peer's confirms",
    );
    h.check_crash_anywhere();
}

#[test]
fn after_data_loss_our_commitment_is_never_broadcast_and_the_future_close_sweeps_to_remote() {
    let mut h = Harness::new(Config::default());
    let id = h.open(SimSetup::new(6, ChannelType::StaticRemoteKey));
    h.with_sim(id, |sim| {
        sim.add_htlc(HtlcDirection::Incoming, 10_000_000, START_HEIGHT + 300)
            .unwrap();
        sim.commit().unwrap()
    });
    // The sim moves on twice; the engine never hears of it (we lost that data).
    let sim = h.sims.get_mut(&id).unwrap();
    sim.add_htlc(HtlcDirection::Outgoing, 10_000_000, START_HEIGHT + 300)
        .unwrap();
    sim.commit().unwrap();
    sim.update_fee(3000);
    sim.commit().unwrap();
    let future = sim.commitment_tx(Party::Remote, 3).unwrap();
    let update_id = h.arb.channel(&id).unwrap().data.last_update_id + 1;
    h.feed(Event::ChannelUpdate(ChannelUpdate {
        channel: id,
        update_id,
        change: ChannelChange::DataLossDetected {
            remote_next_commitment_number: 4,
            remote_per_commitment_point: None,
        },
    }));
    let actions = h.feed(Event::ForceCloseRequested {
        channel: id,
        reason: ForceCloseReason::User,
    });
    assert_eq!(
        signs(&actions),
        0,
        "never sign a commitment that may be revoked"
    );
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Report(Report::Alert(_)))));
    h.mine(vec![future]);
    let summary = close_summaries(&h).pop().unwrap();
    assert_eq!(
        summary.close,
        CloseKind::FutureRemote {
            commitment_number: 3
        }
    );
    assert_eq!(summary.trigger, CloseTrigger::DataLoss);
    let ch = h.arb.channel(&id).unwrap();
    assert_eq!(ch.resolvers.len(), 1);
    assert!(matches!(
        ch.resolvers.values().next().unwrap().kind,
        ResolverKind::CommitSweep { .. }
    ));
    assert!(h.broadcasts.is_empty());
    h.check_golden(
        "future_commitment_after_data_loss",
        "we lost data: never broadcast ours; sweep to_remote from the peer's future commitment",
    );
    h.check_crash_anywhere();
}

#[test]
fn reorg_replacing_our_commitment_with_the_peers_replans_from_the_new_chain() {
    let mut h = Harness::new(Config::default());
    let id = h.open(SimSetup::new(7, ChannelType::AnchorsZeroFeeHtlc));
    h.with_sim(id, |sim| {
        sim.add_htlc(HtlcDirection::Outgoing, 40_000_000, START_HEIGHT + 200)
            .unwrap();
        sim.commit().unwrap()
    });
    let actions = h.feed(Event::ForceCloseRequested {
        channel: id,
        reason: ForceCloseReason::User,
    });
    h.answer(&actions);
    let ours = h.broadcasts.last().unwrap().clone();
    h.mine(vec![ours.clone()]);
    h.mine_empty(2);
    assert_eq!(
        close_summaries(&h).pop().unwrap().close,
        CloseKind::Local {
            commitment_number: 1
        }
    );
    for _ in 0..3 {
        h.disconnect_tip();
    }
    assert_eq!(
        state(&h, id),
        ArbState::CommitmentBroadcasted,
        "back to waiting for a close"
    );
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    h.mine_salted(vec![theirs.clone()], 1);
    let summary = close_summaries(&h).pop().unwrap();
    assert_eq!(
        summary.close,
        CloseKind::Remote {
            commitment_number: 1,
            pending: false
        }
    );
    let ch = h.arb.channel(&id).unwrap();
    assert!(
        ch.resolvers.keys().all(|o| o.txid == theirs.compute_txid()),
        "every resolver is on the new chain's close"
    );
    h.check_golden(
        "reorg_local_to_remote",
        "our confirmed commitment is reorged out and the peer's confirms",
    );
    h.check_crash_anywhere();
}

#[test]
fn dangling_and_dust_outgoing_htlcs_are_failed_upstream_once_the_close_is_reorg_safe() {
    let config = Config::default();
    let mut h = Harness::new(config.clone());
    let id = h.open(SimSetup::new(8, ChannelType::StaticRemoteKey));
    let upstream = |n: u64| HtlcKey {
        channel: ChannelId([7; 32]),
        htlc_id: n,
        direction: HtlcDirection::Incoming,
    };
    let (mut dust, mut dangling, mut incoming_dust) = (None, None, None);
    h.with_sim(id, |sim| {
        dust = Some(
            sim.add_htlc(HtlcDirection::Outgoing, 200_000, START_HEIGHT + 300)
                .unwrap(),
        );
        incoming_dust = Some(
            sim.add_htlc(HtlcDirection::Incoming, 150_000, START_HEIGHT + 300)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    h.with_sim(id, |sim| {
        dangling = Some(
            sim.add_htlc(HtlcDirection::Outgoing, 30_000_000, START_HEIGHT + 300)
                .unwrap(),
        );
        sim.propose().unwrap() // only on the peer's pending commitment
    });
    let (dust, dangling) = (dust.unwrap(), dangling.unwrap());
    for (n, htlc) in [(1, &dust), (2, &dangling)] {
        h.feed(Event::CircuitAdded {
            outgoing: htlc.key,
            incoming: IncomingLeg {
                htlc: upstream(n),
                cltv_expiry: START_HEIGHT + 340,
                amount_msat: htlc.amount_msat,
            },
        });
    }
    // The peer's *current* commitment confirms: the dust HTLC is trimmed on it, the dangling one absent.
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    h.mine(vec![theirs]);
    let fails = |h: &Harness| {
        h.transcript
            .iter()
            .filter(|a| matches!(a, Action::FailUpstream { .. }))
            .count()
    };
    h.mine_empty(config.close.reorg_safety_depth - 2);
    assert_eq!(
        fails(&h),
        0,
        "nothing is failed upstream before the close is reorg-safe"
    );
    h.mine_empty(1);
    let failed: Vec<(HtlcKey, FailReason)> = h
        .transcript
        .iter()
        .filter_map(|a| match a {
            Action::FailUpstream { htlc, reason } => Some((*htlc, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 3);
    assert!(failed.contains(&(upstream(1), FailReason::OutgoingDust { outgoing: dust.key })));
    assert!(
        failed.contains(&(incoming_dust.unwrap().key, FailReason::IncomingDust)),
        "incoming dust is final-failed"
    );
    assert!(failed.contains(&(
        upstream(2),
        FailReason::OutgoingNotOnChain {
            outgoing: dangling.key
        }
    )));
    h.check_golden(
        "dust_and_dangling",
        "dust and dangling outgoing HTLCs fail upstream once the close is reorg-safe",
    );
    h.check_crash_anywhere();
}

#[test]
fn an_update_gap_and_a_block_that_does_not_connect_are_refused_without_change() {
    let mut h = Harness::new(Config::default());
    let id = h.open(SimSetup::new(9, ChannelType::StaticRemoteKey));
    let last = h.arb.channel(&id).unwrap().data.last_update_id;
    let gap = h.try_feed(Event::ChannelUpdate(ChannelUpdate {
        channel: id,
        update_id: last + 2,
        change: ChannelChange::LocalCommitmentRevoked {
            commitment_number: 0,
        },
    }));
    assert!(matches!(gap, Err(StepError::Update { .. })), "{gap:?}");
    let tip = h.blocks.last().unwrap().clone();
    let stray = contractcourt_core::event::Block {
        height: tip.height + 1,
        hash: bitcoin::BlockHash::from_byte_array([1; 32]),
        prev_hash: bitcoin::BlockHash::from_byte_array([2; 32]),
        time: 0,
        txs: vec![],
    };
    assert!(matches!(
        h.try_feed(Event::BlockConnected(stray)),
        Err(StepError::BlockDoesNotConnect { .. })
    ));
    // A repeated update is a no-op that is acknowledged again.
    let repeat = h.feed(Event::ChannelUpdate(ChannelUpdate {
        channel: id,
        update_id: last,
        change: ChannelChange::LocalCommitmentRevoked {
            commitment_number: 0,
        },
    }));
    assert_eq!(
        repeat,
        vec![Action::UpdatePersisted {
            channel: id,
            update_id: last
        }]
    );
    h.check_golden(
        "refusals",
        "an update gap and a block that does not connect are refused",
    );
}

use bitcoin::hashes::Hash;

#[test]
fn a_commitment_and_a_spend_of_its_output_in_the_same_block_are_both_seen() {
    let mut h = Harness::new(Config::default());
    let id = h.open(SimSetup::new(10, ChannelType::StaticRemoteKey));
    let mut out = None;
    h.with_sim(id, |sim| {
        out = Some(
            sim.add_htlc(HtlcDirection::Outgoing, 40_000_000, START_HEIGHT + 90)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    let out = out.unwrap();
    let upstream = HtlcKey {
        channel: ChannelId([7; 32]),
        htlc_id: 1,
        direction: HtlcDirection::Incoming,
    };
    h.feed(Event::CircuitAdded {
        outgoing: out.key,
        incoming: IncomingLeg {
            htlc: upstream,
            cltv_expiry: START_HEIGHT + 130,
            amount_msat: 40_001_000,
        },
    });
    // The peer's commitment and its HTLC-success (static remote key: no CSV) in one block.
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    let success = h.sim(id).htlc_tx(Party::Remote, 1, out.key).unwrap();
    let actions = h.mine(vec![theirs, success]);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::SettleUpstream { htlc, .. } if *htlc == upstream)),
        "the child in the same block revealed the preimage"
    );
    h.check_crash_anywhere();
}

#[test]
fn after_a_restart_the_engine_asks_for_missed_blocks_from_a_locator_of_recent_hashes() {
    let mut h = Harness::new(Config::default());
    h.open(SimSetup::new(11, ChannelType::StaticRemoteKey));
    h.mine_empty(40);
    let tip = h.arb.tip();
    let actions = h.feed(Event::Resumed { tip });
    let Some(Action::SyncFrom { locator }) = actions
        .iter()
        .find(|a| matches!(a, Action::SyncFrom { .. }))
    else {
        panic!("no SyncFrom in {actions:?}")
    };
    assert_eq!(locator.first().copied(), tip, "newest first");
    assert!(
        locator.windows(2).all(|w| w[0].height > w[1].height),
        "strictly older as it goes"
    );
    let chain: Vec<_> = h.blocks.iter().map(|b| (b.height, b.hash)).collect();
    assert!(
        locator.iter().all(|b| chain.contains(&(b.height, b.hash))),
        "every entry is on our chain"
    );
    assert_eq!(
        locator.last().map(|b| b.height),
        Some(START_HEIGHT),
        "reaches back to the oldest block kept"
    );
    assert!(
        locator.len() < 25,
        "sparse: {} entries for 41 blocks",
        locator.len()
    );
}

#[test]
fn a_close_seen_in_the_mempool_is_reported_before_it_confirms() {
    let mut h = Harness::new(Config::default());
    let id = h.open(SimSetup::new(12, ChannelType::AnchorsZeroFeeHtlc));
    let theirs = h.sim(id).commitment_tx(Party::Remote, 0).unwrap();
    let actions = h.feed(Event::MempoolTx {
        tx: contractcourt_core::types::RawTx(theirs.clone()),
        fee_sat: 0,
        vsize: theirs.vsize() as u64,
    });
    assert!(actions.iter().any(|a| matches!(a, Action::Report(Report::Timeline { stage, .. }) if stage.contains("mempool") && stage.contains("Remote"))), "{actions:?}");
    assert_eq!(
        state(&h, id),
        ArbState::Default,
        "acted on only when it confirms"
    );
}

#[test]
fn with_several_channels_a_reorged_close_leaves_no_stale_records() {
    let mut h = Harness::new(Config::default());
    let a = h.open(SimSetup::new(13, ChannelType::StaticRemoteKey));
    let b = h.open(SimSetup::new(14, ChannelType::StaticRemoteKey));
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    for id in [low, high] {
        h.with_sim(id, |sim| {
            sim.add_htlc(HtlcDirection::Outgoing, 40_000_000, START_HEIGHT + 300)
                .unwrap();
            sim.commit().unwrap()
        });
    }
    // The channel with the lower id closes, then the close is reorged out: its resolver
    // records must go (the durability check after every step compares the store with memory).
    let theirs = h.sim(low).commitment_tx(Party::Remote, 1).unwrap();
    h.mine(vec![theirs]);
    assert!(!h.arb.channel(&low).unwrap().resolvers.is_empty());
    h.disconnect_tip();
    assert!(h.arb.channel(&low).unwrap().resolvers.is_empty());
    let resolver_records = h
        .store
        .records
        .keys()
        .filter(|k| matches!(k, contractcourt_core::action::RecordKey::Resolver { .. }))
        .count();
    assert_eq!(resolver_records, 0);
}

/// Found by `event_trace_async` while fuzzing for issue 24: two channels each listed the same
/// extra funding output (a splice). The outpoint index maps an output to one channel, the last
/// one indexed: in memory the channel updated last, after a reload the one last in id order —
/// the store did not load back as the in-memory state. An output belongs to one channel: an
/// update naming a funding output another channel watches is refused and changes nothing.
#[test]
fn a_funding_output_another_channel_watches_is_refused() {
    let mut h = Harness::new(Config::default());
    let a = h.open(SimSetup::new(31, ChannelType::StaticRemoteKey));
    let b = h.open(SimSetup::new(32, ChannelType::StaticRemoteKey));
    let shared = FundingOutput {
        outpoint: bitcoin::OutPoint {
            txid: Hash::from_byte_array([0x47; 32]),
            vout: 1,
        },
        value_sat: 1_000_000,
    };
    let splice = |h: &Harness, id: ChannelId| {
        let ch = h.arb.channel(&id).unwrap();
        Event::ChannelUpdate(ChannelUpdate {
            channel: id,
            update_id: ch.data.last_update_id + 1,
            change: ChannelChange::FundingChanged {
                funding: vec![ch.data.info.funding[0], shared],
            },
        })
    };
    let event = splice(&h, a);
    h.feed(event);
    let event = splice(&h, b);
    match h.try_feed(event) {
        Err(StepError::FundingInUse { outpoint, by }) => {
            assert_eq!((outpoint, by), (shared.outpoint, a))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The first channel keeps the output; the second never got it.
    let own = h.arb.channel(&a).unwrap().data.info.funding.clone();
    assert!(own.contains(&shared));
    let b_funding = h.arb.channel(&b).unwrap().data.info.funding.clone();
    assert!(!b_funding.contains(&shared));
}

#[test]
fn a_restart_whose_chain_source_is_behind_the_engine_is_reported_and_one_at_the_tip_is_not() {
    let mut h = Harness::new(Config::default());
    h.open(SimSetup::new(12, ChannelType::StaticRemoteKey));
    h.mine_empty(20);
    let behind = |actions: &[Action]| {
        actions.iter().any(|a| {
            matches!(a, Action::Report(Report::Alert(al))
                if al.kind == contractcourt_core::action::AlertKind::ChainSourceBehind)
        })
    };
    let tip = h.arb.tip();
    assert!(
        !behind(&h.feed(Event::Resumed { tip })),
        "the source is at our tip"
    );
    assert!(
        !behind(&h.feed(Event::Resumed { tip: None })),
        "a source with no tip yet"
    );
    let older = h.blocks[h.blocks.len() - 6].clone();
    let source = Some(contractcourt_core::types::BlockRef {
        height: older.height,
        hash: older.hash,
    });
    let actions = h.feed(Event::Resumed { tip: source });
    assert!(behind(&actions), "{actions:?}");
    // The engine still asks for what it missed from its own locator.
    assert!(actions.iter().any(|a| matches!(a, Action::SyncFrom { .. })));
}
