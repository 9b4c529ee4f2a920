use super::*;
use crate::bolt3::commitment::{decode_commitment_number, OutputKind};
use crate::bolt3::keys;
use bitcoin::ScriptBuf;

fn channel(channel_type: ChannelType) -> (SimChannel, Vec<Event>) {
    SimChannel::open(SimSetup::new(1, channel_type)).unwrap()
}

fn update_ids(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelUpdate(u) => Some(u.update_id),
            _ => None,
        })
        .collect()
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            Event::ChannelUpdate(u) => match u.change {
                ChannelChange::Registered(_) => "registered",
                ChannelChange::LocalCommitment(_) => "local_commitment",
                ChannelChange::RemoteCommitment(_) => "remote_commitment",
                ChannelChange::LocalCommitmentRevoked { .. } => "local_revoked",
                ChannelChange::RevocationSecret { .. } => "revocation_secret",
                _ => "other",
            },
            _ => "not an update",
        })
        .collect()
}

#[test]
fn opening_emits_registration_then_both_initial_commitments() {
    let (_, events) = channel(ChannelType::AnchorsZeroFeeHtlc);
    assert_eq!(
        kinds(&events),
        ["registered", "remote_commitment", "local_commitment"]
    );
    assert_eq!(update_ids(&events), [0, 1, 2]);
}

#[test]
fn an_update_follows_the_protocol_order_with_consecutive_update_ids() {
    let (mut sim, open) = channel(ChannelType::StaticRemoteKey);
    sim.add_htlc(HtlcDirection::Outgoing, 50_000_000, 700)
        .unwrap();
    let events = sim.commit().unwrap();
    assert_eq!(
        kinds(&events),
        [
            "remote_commitment",
            "local_commitment",
            "local_revoked",
            "revocation_secret"
        ]
    );
    let ids: Vec<u64> = update_ids(&open)
        .into_iter()
        .chain(update_ids(&events))
        .collect();
    assert_eq!(ids, (0..ids.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        (
            sim.local_commitment_number(),
            sim.remote_commitment_number()
        ),
        (1, 1)
    );
}

#[test]
fn propose_leaves_the_peer_with_a_pending_commitment_until_complete() {
    let (mut sim, _) = channel(ChannelType::AnchorsZeroFeeHtlc);
    sim.add_htlc(HtlcDirection::Incoming, 20_000_000, 650)
        .unwrap();
    sim.propose().unwrap();
    assert_eq!(
        (sim.remote_commitment_number(), sim.remote_pending_number()),
        (0, Some(1))
    );
    // Both the current and the pending remote commitment can be broadcast.
    let current = sim.commitment_tx(Party::Remote, 0).unwrap();
    let pending = sim.commitment_tx(Party::Remote, 1).unwrap();
    assert_ne!(current.compute_txid(), pending.compute_txid());
    assert!(matches!(sim.propose(), Err(SimError::OutOfOrder(_))));
    sim.complete().unwrap();
    assert_eq!(
        (sim.remote_commitment_number(), sim.remote_pending_number()),
        (1, None)
    );
    assert!(matches!(sim.complete(), Err(SimError::OutOfOrder(_))));
}

#[test]
fn revealed_secret_matches_the_point_the_revoked_commitment_used() {
    let (mut sim, _) = channel(ChannelType::StaticRemoteKey);
    sim.add_htlc(HtlcDirection::Outgoing, 10_000_000, 600)
        .unwrap();
    let events = sim.commit().unwrap();
    let secret = events
        .iter()
        .find_map(|e| match e {
            Event::ChannelUpdate(ChannelUpdate {
                change:
                    ChannelChange::RevocationSecret {
                        commitment_number: 0,
                        secret,
                    },
                ..
            }) => Some(*secret),
            _ => None,
        })
        .unwrap();
    let point = keys::per_commitment_point(&secret).unwrap();
    assert_eq!(
        point,
        sim.commitment_spec(Party::Remote, 0)
            .unwrap()
            .keys
            .per_commitment_point
    );
}

#[test]
fn settle_and_fail_move_htlc_amounts_to_the_right_side_conserving_value() {
    let (mut sim, _) = channel(ChannelType::StaticRemoteKey);
    let out = sim
        .add_htlc(HtlcDirection::Outgoing, 30_000_000, 700)
        .unwrap();
    let inc = sim
        .add_htlc(HtlcDirection::Incoming, 40_000_000, 700)
        .unwrap();
    sim.commit().unwrap();
    let before = sim.state(Party::Local, 1).unwrap().clone();
    assert_eq!(before.local_msat, 570_000_000);
    assert_eq!(before.remote_msat, 360_000_000);
    sim.settle_htlc(out.key).unwrap(); // the peer receives it
    sim.fail_htlc(inc.key).unwrap(); // returns to the peer
    sim.commit().unwrap();
    let after = sim.state(Party::Local, 2).unwrap();
    assert!(after.htlcs.is_empty());
    assert_eq!(after.local_msat, 570_000_000);
    assert_eq!(after.remote_msat, 430_000_000);
    assert_eq!(after.local_msat + after.remote_msat, 1_000_000_000);
}

#[test]
fn bad_operations_are_typed_errors_and_change_nothing() {
    let (mut sim, _) = channel(ChannelType::StaticRemoteKey);
    let before = sim.clone();
    assert!(matches!(
        sim.add_htlc(HtlcDirection::Outgoing, 600_000_001, 700),
        Err(SimError::InsufficientBalance {
            offerer: Party::Local,
            ..
        })
    ));
    let ghost = HtlcKey {
        channel: sim.channel_id,
        htlc_id: 9,
        direction: HtlcDirection::Incoming,
    };
    assert_eq!(sim.settle_htlc(ghost), Err(SimError::UnknownHtlc(ghost)));
    assert!(matches!(
        sim.htlc_tx(Party::Local, 0, ghost),
        Err(SimError::UnknownHtlc(_))
    ));
    assert!(matches!(
        sim.commitment_tx(Party::Remote, 5),
        Err(SimError::UnknownCommitment { .. })
    ));
    assert_eq!(sim, before);
}

#[test]
fn every_commitment_carries_its_obscured_number_and_its_htlcs() {
    for channel_type in [
        ChannelType::StaticRemoteKey,
        ChannelType::AnchorsZeroFeeHtlc,
    ] {
        let (mut sim, _) = channel(channel_type);
        sim.add_htlc(HtlcDirection::Outgoing, 5_000_000, 700)
            .unwrap();
        sim.add_htlc(HtlcDirection::Incoming, 6_000_000, 710)
            .unwrap();
        sim.add_htlc(HtlcDirection::Incoming, 1_000, 720).unwrap(); // dust: trimmed
        sim.commit().unwrap();
        for holder in [Party::Local, Party::Remote] {
            let tx = sim.commitment_tx(holder, 1).unwrap();
            assert_eq!(
                decode_commitment_number(&tx, sim.obscuring_factor()),
                Some(1)
            );
            let built = sim.built_commitment(holder, 1).unwrap();
            let htlc_outputs = built
                .outputs
                .iter()
                .filter(|o| {
                    matches!(
                        o.kind,
                        OutputKind::OfferedHtlc { .. } | OutputKind::ReceivedHtlc { .. }
                    )
                })
                .count();
            assert_eq!(htlc_outputs, 2, "{channel_type:?} {holder:?}");
            assert_eq!(built.trimmed_htlcs.len(), 1);
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_channel_and_another_seed_another() {
    let a = SimChannel::open(SimSetup::new(7, ChannelType::AnchorsZeroFeeHtlc)).unwrap();
    let b = SimChannel::open(SimSetup::new(7, ChannelType::AnchorsZeroFeeHtlc)).unwrap();
    let c = SimChannel::open(SimSetup::new(8, ChannelType::AnchorsZeroFeeHtlc)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.0.channel_id, c.0.channel_id);
}

#[test]
fn a_node_restored_from_a_backup_numbers_its_next_update_after_the_backup() {
    let (mut c, opening) = channel(ChannelType::StaticRemoteKey);
    let backup = c.next_update_id();
    assert_eq!(update_ids(&opening).last().copied(), backup.checked_sub(1));
    c.add_htlc(HtlcDirection::Incoming, 10_000_000, 500)
        .unwrap();
    let lost = c.commit().unwrap();
    assert!(!lost.is_empty());
    c.restore_update_numbering(backup);
    // The restored node's next event follows its backup's last, not the lost updates.
    let event = c.data_loss_detected().unwrap();
    assert_eq!(update_ids(std::slice::from_ref(&event)), vec![backup]);
    // And it carries the peer's real state: its next number and its current point.
    let current = c.remote_commitment_number();
    assert_eq!(current, 1);
    match event {
        Event::ChannelUpdate(ChannelUpdate {
            change:
                ChannelChange::DataLossDetected {
                    remote_next_commitment_number,
                    remote_per_commitment_point,
                },
            ..
        }) => {
            assert_eq!(remote_next_commitment_number, current + 1);
            assert_eq!(
                remote_per_commitment_point,
                Some(c.remote.per_commitment_point(current).unwrap())
            );
        }
        other => panic!("not a data loss: {other:?}"),
    }
}

#[test]
fn shutdown_emits_both_scripts_as_the_next_update() {
    let (mut c, opening) = channel(ChannelType::StaticRemoteKey);
    let local = ScriptBuf::from_bytes(vec![0x00, 0x14, 1]);
    let remote = ScriptBuf::from_bytes(vec![0x00, 0x14, 2]);
    let event = c.shutdown(local.clone(), remote.clone());
    let next = update_ids(&opening).last().copied().unwrap() + 1;
    assert_eq!(update_ids(std::slice::from_ref(&event)), vec![next]);
    match event {
        Event::ChannelUpdate(ChannelUpdate {
            change:
                ChannelChange::ShutdownScripts {
                    local: l,
                    remote: r,
                },
            ..
        }) => assert_eq!((l, r), (local, remote)),
        other => panic!("not shutdown scripts: {other:?}"),
    }
}
