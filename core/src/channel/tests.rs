//! A channel arbitrator alone, on `sim` channels: what it finds by script on a commitment it
//! cannot rebuild, and how it reads the answers to its own rebroadcasts.

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Transaction, Txid};

use super::cooperative::ReorgedCooperative;
use super::updates::{apply_update, ChannelData};
use super::upstream::revoked_outgoing_lost;
use super::ChannelArbitrator;
use super::ConfirmedClose;
use crate::action::{Action, CloseKind, CloseTrigger};
use crate::bolt3::{scripts, ChannelType};
use crate::event::{BroadcastOutcome, Event, IncomingLeg};
use crate::node::NodeState;
use crate::resolver::ResolverKind;
use crate::sim::{SimChannel, SimSetup};
use crate::types::{ChannelId, ClaimId, HtlcDirection, HtlcKey, Party, RawTx};

/// A channel with an HTLC each way committed, its arbitrator and the sim behind it.
fn channel(channel_type: ChannelType) -> (SimChannel, ChannelArbitrator) {
    let (mut sim, mut events) = SimChannel::open(SimSetup::new(11, channel_type)).expect("opens");
    sim.add_htlc(HtlcDirection::Outgoing, 20_000_000, 600)
        .expect("adds");
    sim.add_htlc(HtlcDirection::Incoming, 30_000_000, 610)
        .expect("adds");
    events.extend(sim.commit().expect("commits"));
    let mut data: Option<ChannelData> = None;
    for e in events {
        if let Event::ChannelUpdate(u) = e {
            data = apply_update(data.as_ref(), &u).expect("valid update").0;
        }
    }
    (sim, ChannelArbitrator::new(data.expect("a channel")))
}

/// The outputs of `tx` paying `script_pubkey`.
fn paying(tx: &Transaction, script_pubkey: &bitcoin::ScriptBuf) -> Vec<u32> {
    (0u32..)
        .zip(&tx.output)
        .filter(|(_, o)| o.script_pubkey == *script_pubkey)
        .map(|(vout, _)| vout)
        .collect()
}

#[test]
fn on_a_commitment_it_cannot_rebuild_it_finds_exactly_our_to_remote_and_our_anchor() {
    for channel_type in [
        ChannelType::StaticRemoteKey,
        ChannelType::AnchorsZeroFeeHtlc,
    ] {
        let (sim, ch) = channel(channel_type);
        let n = sim.remote_commitment_number();
        let theirs = sim
            .commitment_tx(Party::Remote, n)
            .expect("their commitment");
        let info = &ch.data.info;
        let to_remote = scripts::to_remote_script_pubkey(
            channel_type,
            &info.local_basepoints.payment_basepoint,
        );
        let found = ch.own_outputs_by_script(&theirs, theirs.compute_txid(), 700);
        let sweeps: Vec<u32> = found
            .iter()
            .filter(|r| r.kind == ResolverKind::CommitSweep { mature_at: 701 })
            .map(|r| r.outpoint.vout)
            .collect();
        assert_eq!(sweeps, paying(&theirs, &to_remote), "{channel_type:?}");
        assert_eq!(sweeps.len(), 1);
        let anchors: Vec<u32> = found
            .iter()
            .filter(|r| r.kind == ResolverKind::Anchor)
            .map(|r| r.outpoint.vout)
            .collect();
        let anchor = scripts::anchor_script(&info.local_basepoints.funding_pubkey).to_p2wsh();
        assert_eq!(anchors, paying(&theirs, &anchor), "{channel_type:?}");
        assert_eq!(anchors.len(), usize::from(channel_type.has_anchors()));
        assert_eq!(
            found.len(),
            sweeps.len() + anchors.len(),
            "nothing else: {found:?}"
        );
    }
}

#[test]
fn a_refused_rebroadcast_of_a_reorged_cooperative_close_is_reported_and_other_claims_are_not_its() {
    let (sim, mut ch) = channel(ChannelType::StaticRemoteKey);
    let n = sim.local_commitment_number();
    let tx = sim.commitment_tx(Party::Local, n).expect("a transaction");
    let refused = BroadcastOutcome::Rejected {
        reason: "bad-txns-inputs-missingorspent".to_string(),
    };
    assert_eq!(ch.on_reorged_cooperative_result(ClaimId(4), &refused), None);
    ch.reorged_cooperative = Some(ReorgedCooperative {
        claim: ClaimId(4),
        tx: RawTx(tx),
    });
    let ours = ch
        .on_reorged_cooperative_result(ClaimId(4), &refused)
        .expect("its own claim");
    assert!(
        matches!(ours.as_slice(), [Action::Report(_)]),
        "reported: {ours:?}"
    );
    let known = BroadcastOutcome::Rejected {
        reason: "txn-already-known".to_string(),
    };
    assert_eq!(
        ch.on_reorged_cooperative_result(ClaimId(4), &known),
        Some(Vec::new())
    );
    assert_eq!(
        ch.on_reorged_cooperative_result(ClaimId(5), &refused),
        None,
        "another claim's answer is not its own"
    );
}

#[test]
fn only_a_child_of_one_of_our_cpfp_claims_is_our_cpfp() {
    let (_, mut ch) = channel(ChannelType::AnchorsZeroFeeHtlc);
    let child = Txid::from_byte_array([3; 32]);
    assert!(!ch.is_our_cpfp(&child), "no CPFP yet");
    ch.retired_cpfp.insert(child, 500);
    assert!(ch.is_our_cpfp(&child), "a child of a claim given up");
    assert!(!ch.is_our_cpfp(&Txid::from_byte_array([4; 32])));
}

/// The peer's commitment of `sim` as a confirmed close of `kind` at height 700.
fn closed_by(sim: &SimChannel, ch: &ChannelArbitrator, kind: CloseKind) -> ConfirmedClose {
    let n = sim.remote_commitment_number();
    let tx = sim
        .commitment_tx(Party::Remote, n)
        .expect("their commitment");
    ConfirmedClose {
        kind,
        trigger: CloseTrigger::Peer,
        txid: tx.compute_txid(),
        tx: RawTx(tx),
        height: 700,
        funding: ch.data.info.funding[0],
        settled_upstream: false,
        rebuilt: Default::default(),
    }
}

/// An outgoing HTLC of a revoked commitment, resolved without a preimage, fails its incoming
/// leg — only an output of the revoked commitment itself, never an output of another
/// transaction (a second-level one) that happens to share its index.
#[test]
fn a_revoked_outgoing_htlc_resolved_fails_its_incoming_leg_and_nothing_else_does() {
    let (sim, ch) = channel(ChannelType::StaticRemoteKey);
    let revoked = ch.data.commitments.remote_current.clone().expect("theirs");
    let out = revoked
        .htlcs
        .iter()
        .find(|h| h.direction == HtlcDirection::Outgoing)
        .expect("our outgoing HTLC")
        .clone();
    let vout = out.output_index.expect("not dust");
    let outgoing = HtlcKey {
        channel: ch.data.info.id,
        htlc_id: out.htlc_id,
        direction: HtlcDirection::Outgoing,
    };
    let upstream = HtlcKey {
        channel: ChannelId([9; 32]),
        htlc_id: 1,
        direction: HtlcDirection::Incoming,
    };
    let node = || {
        let mut node = NodeState::default();
        node.circuits.insert(
            outgoing,
            IncomingLeg {
                htlc: upstream,
                cltv_expiry: 650,
                amount_msat: out.amount_msat + 1_000,
            },
        );
        node
    };
    let breach = closed_by(
        &sim,
        &ch,
        CloseKind::Breach {
            commitment_number: revoked.number,
        },
    );
    let on_close = OutPoint {
        txid: breach.txid,
        vout,
    };
    let elsewhere = OutPoint {
        txid: Txid::from_byte_array([8; 32]),
        vout,
    };
    let id = ch.data.info.id;
    let fails = |a: Option<Action>| matches!(a, Some(Action::FailUpstream { htlc, .. }) if htlc == upstream);
    assert!(fails(revoked_outgoing_lost(
        Some(&revoked),
        &breach,
        on_close,
        id,
        &mut node()
    )));
    assert_eq!(
        revoked_outgoing_lost(Some(&revoked), &breach, elsewhere, id, &mut node()),
        None,
        "an output of another transaction"
    );
    let not_a_breach = closed_by(
        &sim,
        &ch,
        CloseKind::Remote {
            commitment_number: revoked.number,
            pending: false,
        },
    );
    assert_eq!(
        revoked_outgoing_lost(Some(&revoked), &not_a_breach, on_close, id, &mut node()),
        None,
        "not a revoked commitment"
    );
}
