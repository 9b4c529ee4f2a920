use super::*;
use crate::bolt3::ChannelType;
use crate::event::Event;
use crate::sim::{SimChannel, SimSetup};
use crate::types::HtlcDirection;

fn updates(events: Vec<Event>) -> Vec<ChannelUpdate> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::ChannelUpdate(u) => Some(u),
            _ => None,
        })
        .collect()
}

fn apply_all(mut data: Option<ChannelData>, ups: &[ChannelUpdate]) -> Option<ChannelData> {
    for u in ups {
        data = apply_update(data.as_ref(), u)
            .unwrap_or_else(|e| panic!("{u:?}: {e}"))
            .0;
    }
    data
}

fn busy_channel(channel_type: ChannelType) -> (SimChannel, Option<ChannelData>) {
    let (mut sim, open) = SimChannel::open(SimSetup::new(3, channel_type)).unwrap();
    let mut data = apply_all(None, &updates(open));
    for i in 0..3u32 {
        sim.add_htlc(HtlcDirection::Outgoing, 20_000_000 + u64::from(i), 600 + i)
            .unwrap();
        sim.add_htlc(HtlcDirection::Incoming, 30_000_000, 610 + i)
            .unwrap();
        sim.add_htlc(HtlcDirection::Incoming, 2_000, 620).unwrap(); // dust
        data = apply_all(data, &updates(sim.commit().unwrap()));
    }
    (sim, data)
}

#[test]
fn sim_updates_apply_and_txids_match_the_sim_transactions() {
    for channel_type in [
        ChannelType::StaticRemoteKey,
        ChannelType::AnchorsZeroFeeHtlc,
    ] {
        let (sim, data) = busy_channel(channel_type);
        let data = data.unwrap();
        let c = &data.commitments;
        let local = c.local.as_ref().unwrap();
        assert_eq!(local.commitment.number, 3);
        let tx = sim.commitment_tx(Party::Local, 3).unwrap();
        assert_eq!(local.commitment.txids, vec![tx.compute_txid()]);
        let remote = c.remote_current.as_ref().unwrap();
        assert_eq!(
            remote.txids,
            vec![sim.commitment_tx(Party::Remote, 3).unwrap().compute_txid()]
        );
        assert_eq!(c.remote_pending, None);
        assert_eq!(c.local_revoked_through, Some(2));
        assert_eq!(
            c.remote_secrets.get_by_commitment_number(2),
            Some(sim.per_commitment_secret(Party::Remote, 2).unwrap())
        );
    }
}

#[test]
fn a_repeated_update_is_a_no_op_and_a_gap_is_refused() {
    let (mut sim, data) = busy_channel(ChannelType::AnchorsZeroFeeHtlc);
    let ups = updates(sim.commit().unwrap());
    let (after_first, _) = apply_update(data.as_ref(), &ups[0]).unwrap();
    let (again, applied) = apply_update(after_first.as_ref(), &ups[0]).unwrap();
    assert_eq!(applied, Applied::Repeat);
    assert_eq!(again, after_first);
    let err = apply_update(after_first.as_ref(), &ups[2]).unwrap_err();
    assert_eq!(
        err,
        UpdateError::Gap {
            expected: ups[1].update_id,
            got: ups[2].update_id
        }
    );
}

#[test]
fn a_local_commitment_with_a_forged_signature_is_refused() {
    let (mut sim, data) = busy_channel(ChannelType::StaticRemoteKey);
    let mut ups = updates(sim.commit().unwrap());
    let data = apply_all(data, &ups[..1]);
    let ChannelChange::LocalCommitment(c) = &mut ups[1].change else {
        panic!("second is ours")
    };
    let mut forged = c.clone();
    forged.commitment_signature = forged.htlc_signatures[0];
    ups[1].change = ChannelChange::LocalCommitment(forged);
    assert!(matches!(
        apply_update(data.as_ref(), &ups[1]),
        Err(UpdateError::BadCommitmentSignature)
    ));
}

#[test]
fn a_local_commitment_whose_outputs_do_not_rebuild_is_refused() {
    let (mut sim, data) = busy_channel(ChannelType::AnchorsZeroFeeHtlc);
    sim.add_htlc(HtlcDirection::Incoming, 5_000_000, 700)
        .unwrap();
    let mut ups = updates(sim.commit().unwrap());
    let data = apply_all(data, &ups[..1]);
    let ChannelChange::LocalCommitment(c) = ups[1].change.clone() else {
        panic!("second is ours")
    };
    let mut wrong = c.clone();
    wrong.to_local_msat += 1_000; // one sat moved to us that the peer never signed
    wrong.to_remote_msat -= 1_000;
    ups[1].change = ChannelChange::LocalCommitment(wrong.clone());
    let r = apply_update(data.as_ref(), &ups[1]);
    assert!(
        matches!(r, Err(UpdateError::BadCommitmentSignature)),
        "{r:?}"
    );
    wrong = c.clone();
    let h = wrong
        .htlcs
        .iter_mut()
        .find(|h| h.output_index.is_some())
        .unwrap();
    h.output_index = h.output_index.map(|i| i + 1);
    ups[1].change = ChannelChange::LocalCommitment(wrong);
    assert!(matches!(
        apply_update(data.as_ref(), &ups[1]),
        Err(UpdateError::OutputIndexMismatch { .. })
    ));
}

#[test]
fn a_revocation_secret_that_does_not_match_the_point_is_refused() {
    let (mut sim, data) = busy_channel(ChannelType::StaticRemoteKey);
    let mut ups = updates(sim.commit().unwrap());
    let data = apply_all(data, &ups[..3]);
    let ChannelChange::RevocationSecret { secret, .. } = &mut ups[3].change else {
        panic!("fourth is theirs")
    };
    secret[0] ^= 1;
    assert!(matches!(
        apply_update(data.as_ref(), &ups[3]),
        Err(UpdateError::SecretDoesNotMatchPoint { .. })
    ));
}

#[test]
fn revoking_our_commitment_before_receiving_the_next_is_refused() {
    let (sim, data) = busy_channel(ChannelType::StaticRemoteKey);
    let data = data.unwrap();
    let up = ChannelUpdate {
        channel: sim.channel_id,
        update_id: data.last_update_id + 1,
        change: ChannelChange::LocalCommitmentRevoked {
            commitment_number: 3,
        },
    };
    assert!(matches!(
        apply_update(Some(&data), &up),
        Err(UpdateError::UnexpectedRevocation { .. })
    ));
}

#[test]
fn updates_before_registration_are_refused() {
    let (mut sim, _) = busy_channel(ChannelType::StaticRemoteKey);
    let ups = updates(sim.commit().unwrap());
    assert_eq!(apply_update(None, &ups[0]), Err(UpdateError::NotRegistered));
}

/// A splice's funding set with a new (not yet confirmed) output listed before the one our latest
/// commitment is signed on.
fn splice(data: &ChannelData, funding: Vec<FundingOutput>) -> ChannelUpdate {
    ChannelUpdate {
        channel: data.info.id,
        update_id: data.last_update_id + 1,
        change: ChannelChange::FundingChanged { funding },
    }
}

fn new_funding_output() -> FundingOutput {
    use bitcoin::hashes::Hash as _;
    FundingOutput {
        outpoint: bitcoin::OutPoint {
            txid: bitcoin::Txid::from_byte_array([0xa7; 32]),
            vout: 0,
        },
        value_sat: 1_000_000,
    }
}

#[test]
fn a_splice_listing_a_new_funding_output_first_keeps_our_commitment_on_its_own_output() {
    // Found by fuzzing (fuzz/artifacts-found/event_trace-splice-reorders-funding): the local
    // commitment's funding output was kept as a position in the set, so a set listing a new
    // output first made a force close sign and broadcast our commitment on an output that no
    // transaction created.
    let (sim, data) = busy_channel(ChannelType::AnchorsZeroFeeHtlc);
    let data = data.unwrap();
    let up = splice(&data, vec![new_funding_output(), sim.funding]);
    let (next, _) = apply_update(Some(&data), &up).unwrap();
    let next = next.unwrap();
    let local = next.commitments.local.as_ref().unwrap();
    assert_eq!(next.info.funding[local.funding_index], sim.funding);
}

#[test]
fn a_splice_that_drops_the_output_our_commitment_is_signed_on_is_refused() {
    let (sim, data) = busy_channel(ChannelType::StaticRemoteKey);
    let data = data.unwrap();
    let up = splice(&data, vec![new_funding_output()]);
    assert_eq!(
        apply_update(Some(&data), &up).unwrap_err(),
        UpdateError::SignedFundingRemoved {
            outpoint: sim.funding.outpoint
        }
    );
}

/// A zero-fee commitment channel's open events with `max` as both sides' `max_accepted_htlcs`.
fn zero_fee_open(max: Option<crate::event::MaxAcceptedHtlcs>) -> (SimChannel, Vec<ChannelUpdate>) {
    let (sim, open) = SimChannel::open(SimSetup::new(19, ChannelType::ZeroFeeCommitments)).unwrap();
    let mut ups = updates(open);
    if let ChannelChange::Registered(r) = &mut ups[0].change {
        r.max_accepted_htlcs = max;
    }
    (sim, ups)
}

fn limits(local: u16, remote: u16) -> Option<crate::event::MaxAcceptedHtlcs> {
    Some(crate::event::MaxAcceptedHtlcs { local, remote })
}

/// Issue 19 (BOLT 2 `open_channel`: the receiver fails the channel if `zero_fee_commitments`
/// and `max_accepted_htlcs` is greater than 114; 483 for other types): a registration above
/// the limit is refused with a typed error and registers nothing.
#[test]
fn a_zero_fee_registration_above_114_max_accepted_htlcs_is_refused() {
    for (max, party, value) in [
        (limits(115, 30), Party::Local, 115),
        (limits(30, 483), Party::Remote, 483),
    ] {
        let (_, ups) = zero_fee_open(max);
        assert_eq!(
            apply_update(None, &ups[0]),
            Err(UpdateError::MaxAcceptedHtlcsAboveLimit {
                party,
                value,
                limit: 114
            })
        );
    }
    let (_, ups) = zero_fee_open(limits(114, 114));
    let data = apply_all(None, &ups).unwrap();
    assert_eq!(data.info.max_accepted_htlcs, limits(114, 114));
    // The same numbers on an anchors channel are within BOLT 2's 483.
    let (_, open) = SimChannel::open(SimSetup::new(19, ChannelType::AnchorsZeroFeeHtlc)).unwrap();
    let mut ups = updates(open);
    if let ChannelChange::Registered(r) = &mut ups[0].change {
        r.max_accepted_htlcs = limits(115, 483);
    }
    assert!(apply_update(None, &ups[0]).is_ok());
    if let ChannelChange::Registered(r) = &mut ups[0].change {
        r.max_accepted_htlcs = limits(484, 483);
    }
    assert!(matches!(
        apply_update(None, &ups[0]),
        Err(UpdateError::MaxAcceptedHtlcsAboveLimit { limit: 483, .. })
    ));
}

/// The first refusal among `ups` applied in order to `data`, and the data as it stood then.
fn first_refusal(
    mut data: Option<ChannelData>,
    ups: &[ChannelUpdate],
) -> (Option<ChannelData>, Option<UpdateError>) {
    for u in ups {
        match apply_update(data.as_ref(), u) {
            Ok((next, _)) => data = next,
            Err(e) => return (data, Some(e)),
        }
    }
    (data, None)
}

/// Issue 19: a zero-fee commitment carrying more HTLCs one way than the receiver accepts — its
/// registered `max_accepted_htlcs`, else 114 — is refused with a typed error and the channel
/// keeps what it had.
#[test]
fn a_zero_fee_commitment_with_more_htlcs_than_accepted_is_refused() {
    // Registered limits: 2 incoming (ours), 3 outgoing (the peer's).
    let (mut sim, ups) = zero_fee_open(limits(2, 3));
    let data = apply_all(None, &ups);
    for _ in 0..3 {
        sim.add_htlc(HtlcDirection::Outgoing, 20_000_000, 600)
            .unwrap();
    }
    let data = apply_all(data, &updates(sim.commit().unwrap()));
    for _ in 0..3 {
        sim.add_htlc(HtlcDirection::Incoming, 30_000_000, 610)
            .unwrap();
    }
    let (kept, refused) = first_refusal(data.clone(), &updates(sim.commit().unwrap()));
    assert_eq!(kept, data, "nothing changed");
    assert!(
        matches!(
            refused,
            Some(UpdateError::TooManyHtlcs {
                direction: HtlcDirection::Incoming,
                count: 3,
                max: 2,
                ..
            })
        ),
        "{refused:?}"
    );
    // Unregistered limits: 114 each way (dust HTLCs count too).
    for (count, refused) in [(114usize, false), (115, true)] {
        let (mut sim, ups) = zero_fee_open(None);
        let data = apply_all(None, &ups);
        for _ in 0..count {
            sim.add_htlc(HtlcDirection::Incoming, 2_000, 620).unwrap();
        }
        let (_, e) = first_refusal(data, &updates(sim.commit().unwrap()));
        let expected = refused.then_some(UpdateError::TooManyHtlcs {
            holder: Party::Remote,
            direction: HtlcDirection::Incoming,
            count,
            max: 114,
        });
        assert_eq!(e, expected, "{count} htlcs");
    }
}

/// Issue 21: simple taproot channels have their transactions in bolt3 but no classification,
/// resolvers, breach handling or sweeping yet, so registering one is refused with a typed error
/// (nothing registered) rather than half-handled; the same registration as anchors goes through.
#[test]
fn a_simple_taproot_registration_is_refused_until_the_engine_resolves_it() {
    let (_, open) = SimChannel::open(SimSetup::new(21, ChannelType::AnchorsZeroFeeHtlc)).unwrap();
    let mut ups = updates(open);
    assert!(apply_update(None, &ups[0]).is_ok());
    if let ChannelChange::Registered(r) = &mut ups[0].change {
        r.channel_type = ChannelType::SimpleTaproot;
    }
    let refused = apply_update(None, &ups[0]).unwrap_err();
    assert_eq!(
        refused,
        UpdateError::ChannelTypeNotResolved(UnsupportedChannelType {
            channel_type: ChannelType::SimpleTaproot
        })
    );
    assert!(refused
        .to_string()
        .contains("simple taproot channels are not resolved yet"));
    // The simulated node refuses to open one too.
    let sim = SimChannel::open(SimSetup::new(21, ChannelType::SimpleTaproot));
    assert!(matches!(
        sim.map(|_| ()),
        Err(crate::sim::SimError::ChannelTypeNotResolved(_))
    ));
}

/// One pending commitment of the peer's at a time: a second one before the first is revoked is
/// refused, and the error names the number that would come after the pending one.
#[test]
fn a_second_pending_commitment_of_the_peers_is_refused_naming_the_number_after_the_pending_one() {
    let (mut sim, data) = busy_channel(ChannelType::StaticRemoteKey);
    sim.add_htlc(HtlcDirection::Outgoing, 25_000_000, 640)
        .unwrap();
    let proposed = updates(sim.propose().unwrap());
    let data = apply_all(data, &proposed).unwrap();
    let pending = data
        .commitments
        .remote_pending
        .as_ref()
        .expect("a pending commitment")
        .number;
    let again = proposed
        .iter()
        .find(|u| matches!(u.change, ChannelChange::RemoteCommitment(_)))
        .expect("the peer's next commitment");
    let again = ChannelUpdate {
        update_id: data.last_update_id + 1,
        ..again.clone()
    };
    match apply_update(Some(&data), &again) {
        Err(UpdateError::UnexpectedCommitmentNumber {
            holder: Party::Remote,
            expected,
            got,
        }) => {
            assert_eq!(expected, pending + 1);
            assert_eq!(got, pending);
        }
        other => panic!("{other:?}"),
    }
}
