//! `Resolver::machine_wakeup`: the height at which a resolver's machine acts next, beside the
//! finality of a spend. The channel is woken only at these heights (and every block while it
//! rebroadcasts), so a wake-up missing here is a claim never started, and one too many is a
//! channel stepped for nothing.

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};

use crate::bolt3::PaymentPreimage;
use crate::event::PreimageSource;
use crate::node::NodeState;
use crate::resolver::{Resolver, ResolverKind, SecondLevelClaim, Stage};
use crate::types::{ChannelId, ClaimId, Height, HtlcDirection, HtlcKey};

const SAFETY: u32 = 6;
const CLOSE_AT: Height = 500;
const EXPIRY: Height = 600;
const PREIMAGE: PaymentPreimage = PaymentPreimage([7; 32]);

fn key(direction: HtlcDirection) -> HtlcKey {
    HtlcKey {
        channel: ChannelId([3; 32]),
        htlc_id: 1,
        direction,
    }
}

fn outgoing() -> Resolver {
    let kind = ResolverKind::OutgoingHtlc {
        htlc: key(HtlcDirection::Outgoing),
        payment_hash: PREIMAGE.payment_hash(),
        cltv_expiry: EXPIRY,
        deadline: EXPIRY + 40,
    };
    resolver(kind)
}

fn incoming() -> Resolver {
    let kind = ResolverKind::IncomingHtlc {
        htlc: key(HtlcDirection::Incoming),
        payment_hash: PREIMAGE.payment_hash(),
        cltv_expiry: EXPIRY,
    };
    resolver(kind)
}

fn resolver(kind: ResolverKind) -> Resolver {
    let outpoint = OutPoint {
        txid: Txid::from_byte_array([1; 32]),
        vout: 2,
    };
    Resolver::new(outpoint, 20_000, kind)
}

/// A node that knows the HTLCs' preimage (learned from the chain: usable for any HTLC).
fn knowing() -> NodeState {
    let mut node = NodeState::default();
    let source = PreimageSource::Chain {
        txid: Txid::from_byte_array([9; 32]),
        height: CLOSE_AT,
    };
    assert!(node.learn(PREIMAGE, &source));
    node
}

fn wakeup(r: &Resolver, node: &NodeState, on_our_commitment: bool) -> Option<Height> {
    r.machine_wakeup(node, on_our_commitment, CLOSE_AT, SAFETY)
}

fn started(mut r: Resolver) -> Resolver {
    r.second_level = Some(SecondLevelClaim {
        claim: ClaimId(1),
        attempt: 0,
        signed: None,
        funded: None,
    });
    r
}

#[test]
fn an_outgoing_htlc_on_our_commitment_wakes_at_its_expiry_to_start_its_htlc_timeout() {
    let none = NodeState::default();
    assert_eq!(wakeup(&outgoing(), &none, true), Some(EXPIRY));
    // A preimage changes nothing for an outgoing HTLC: only the timeout path is ours.
    assert_eq!(wakeup(&outgoing(), &knowing(), true), Some(EXPIRY));
}

#[test]
fn an_outgoing_htlc_on_their_commitment_has_no_machine_wakeup_its_claim_is_the_sweepers() {
    assert_eq!(wakeup(&outgoing(), &NodeState::default(), false), None);
}

#[test]
fn a_second_level_claim_already_started_or_an_output_no_longer_ours_is_not_woken_again() {
    let none = NodeState::default();
    assert_eq!(wakeup(&started(outgoing()), &none, true), None);
    assert_eq!(wakeup(&started(incoming()), &knowing(), true), None);
    let mut spent = outgoing();
    spent.stage = Stage::Spent {
        txid: Txid::from_byte_array([4; 32]),
        height: 550,
        by_us: false,
        taken: None,
    };
    assert_eq!(wakeup(&spent, &none, true), None);
}

#[test]
fn an_incoming_htlc_without_its_preimage_wakes_when_its_expiry_is_reorg_safe() {
    let none = NodeState::default();
    // On either commitment: the contest ends when the peer's timeout can no longer be undone.
    assert_eq!(wakeup(&incoming(), &none, false), Some(EXPIRY + SAFETY));
    assert_eq!(wakeup(&incoming(), &none, true), Some(EXPIRY + SAFETY));
}

#[test]
fn an_incoming_htlc_with_its_preimage_on_our_commitment_wakes_at_once_for_its_htlc_success() {
    assert_eq!(wakeup(&incoming(), &knowing(), true), Some(CLOSE_AT));
}

#[test]
fn an_incoming_htlc_with_its_preimage_on_their_commitment_has_no_contest_to_end() {
    assert_eq!(wakeup(&incoming(), &knowing(), false), None);
}

#[test]
fn an_invoice_preimage_for_another_htlc_is_no_preimage_for_this_one() {
    let mut node = NodeState::default();
    let other = HtlcKey {
        htlc_id: 2,
        ..key(HtlcDirection::Incoming)
    };
    assert!(node.learn(PREIMAGE, &PreimageSource::Invoice { htlc: other }));
    assert_eq!(wakeup(&incoming(), &node, true), Some(EXPIRY + SAFETY));
}

#[test]
fn outputs_without_a_machine_wakeup_return_none() {
    let none = NodeState::default();
    let sweep = resolver(ResolverKind::CommitSweep { mature_at: 510 });
    assert_eq!(wakeup(&sweep, &none, true), None);
    assert_eq!(wakeup(&resolver(ResolverKind::Anchor), &none, true), None);
    let breach = resolver(ResolverKind::Breach {
        commitment_number: 3,
    });
    assert_eq!(wakeup(&breach, &none, false), None);
}
