//! A cooperative close a reorg takes off the chain is rebroadcast every block until a close
//! confirms again: both sides signed it, and without it the channel would stay open on a chain
//! where both agreed to close it (found by the model check: a force close requested while the
//! cooperative close was confirmed, then a reorg of it, left the channel open for good).

use bitcoin::hashes::Hash;
use bitcoin::{ScriptBuf, Transaction, Txid};
use contractcourt_core::action::{Action, CloseKind};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::channel::ArbState;
use contractcourt_core::event::{Event, ForceCloseReason};
use contractcourt_core::sim::SimSetup;
use contractcourt_tests::checks::sweeping_config;
use contractcourt_tests::Harness;

/// The transactions broadcast by `actions`.
fn broadcast_txids(actions: &[Action]) -> Vec<Txid> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast { tx, .. } => Some(tx.compute_txid()),
            Action::BroadcastPackage { parent, .. } => Some(parent.compute_txid()),
            _ => None,
        })
        .collect()
}

/// A channel of `channel_type` closed cooperatively — with both shutdown scripts told to the
/// engine (`known`), else an unknown close — reorged out and confirmed again.
fn cooperative_close_reorged_out(channel_type: ChannelType, seed: u64, known: bool) {
    let mut h = Harness::new(sweeping_config());
    h.fund_wallet(4, 200_000);
    let id = h.open(SimSetup::new(seed, channel_type));
    let ours = sweeping_config().sweep_to.expect("a sweeper").destination;
    let theirs = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0x22; 20]));
    if known {
        let (o, t) = (ours.clone(), theirs.clone());
        h.with_sim(id, |sim| vec![sim.shutdown(o, t)]);
    }
    let kind = if known {
        CloseKind::Cooperative
    } else {
        CloseKind::Unknown
    };
    let coop: Transaction = h
        .sim(id)
        .cooperative_close_tx(ours, theirs, 1_000)
        .expect("a cooperative close");
    let txid = coop.compute_txid();
    let actions = h.mine(vec![coop.clone()]);
    h.answer(&actions);
    assert_eq!(
        h.arb
            .channel(&id)
            .and_then(|c| c.close.as_ref())
            .map(|c| c.kind.clone()),
        Some(kind)
    );
    // Asked to force close while the cooperative close is confirmed: nothing to do.
    let actions = h.feed(Event::ForceCloseRequested {
        channel: id,
        reason: ForceCloseReason::User,
    });
    assert!(broadcast_txids(&actions).is_empty(), "{channel_type:?}");
    h.answer(&actions);

    // The block is reorged out: the cooperative close goes out again at once, and every block
    // after, our commitment never.
    let actions = h.disconnect_tip();
    assert_eq!(broadcast_txids(&actions), vec![txid], "{channel_type:?}");
    h.answer(&actions);
    assert_eq!(
        h.arb.channel(&id).map(|c| c.state()),
        Some(ArbState::Default)
    );
    for _ in 0..3 {
        let actions = h.mine(Vec::new());
        assert_eq!(broadcast_txids(&actions), vec![txid], "{channel_type:?}");
        h.answer(&actions);
    }
    // It confirms again: no more rebroadcasts.
    let actions = h.mine(vec![coop]);
    h.answer(&actions);
    assert_eq!(
        h.arb
            .channel(&id)
            .and_then(|c| c.close.as_ref())
            .map(|c| c.txid),
        Some(txid)
    );
    let actions = h.mine(Vec::new());
    assert!(broadcast_txids(&actions).is_empty(), "{channel_type:?}");
    h.answer(&actions);
    h.check_crash_anywhere();
}

#[test]
fn a_cooperative_close_a_reorg_drops_is_rebroadcast_every_block_until_it_confirms_again() {
    for known in [true, false] {
        cooperative_close_reorged_out(ChannelType::StaticRemoteKey, 901, known);
        cooperative_close_reorged_out(ChannelType::AnchorsZeroFeeHtlc, 902, known);
        cooperative_close_reorged_out(ChannelType::ZeroFeeCommitments, 903, known);
    }
}
