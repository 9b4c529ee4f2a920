//! Outgoing contest → HTLC timeout, and HTLC timeout → commitment sweep of our second-level
//! output, each driven through `Resolver::step` alone; and the undo of each by a reorg.

use bitcoin::OutPoint;

use super::fixture::{
    pays, sig, spend, spent, Fixture, CLOSE_AT, OUT_DEADLINE, OUT_EXPIRY, SAFETY,
};
use crate::action::SweepRequest;
use crate::bolt3::witness::ClaimPath;
use crate::bolt3::ChannelType;
use crate::resolver::{Machine, ResolverAction, ResolverInput, ResolverKind, Stage, Taken};
use crate::types::{HtlcDirection, Party};

fn block(tip: u32) -> ResolverInput<'static> {
    ResolverInput::Block { tip }
}

#[test]
fn the_contest_hands_off_to_the_timeout_at_the_expiry_and_a_reorg_below_it_hands_it_back() {
    let f = Fixture::new(ChannelType::StaticRemoteKey);
    let r = f.htlc_resolver(Party::Local, HtlcDirection::Outgoing);
    assert_eq!(r.machine(OUT_EXPIRY - 1, &f.node), Machine::OutgoingContest);
    // Our HTLC-timeout transaction (nLockTime = cltv_expiry) can confirm in the next block.
    assert_eq!(r.machine(OUT_EXPIRY, &f.node), Machine::HtlcTimeout);
    // A reorg back below the expiry: the contest again.
    assert_eq!(r.machine(OUT_EXPIRY - 1, &f.node), Machine::OutgoingContest);
}

#[test]
fn on_our_commitment_the_second_level_timeout_is_due_from_the_expiry_every_block_until_spent() {
    let f = Fixture::new(ChannelType::StaticRemoteKey);
    let ctx = f.ctx(Party::Local);
    let mut r = f.htlc_resolver(Party::Local, HtlcDirection::Outgoing);
    assert!(
        r.step(block(OUT_EXPIRY - 1), &ctx).actions.is_empty(),
        "still contested"
    );
    for tip in [OUT_EXPIRY, OUT_EXPIRY + 1] {
        assert_eq!(
            r.step(block(tip), &ctx).actions,
            vec![ResolverAction::SecondLevelDue]
        );
    }
    // No sweep request of its own: the pre-signed transaction claims it.
    assert_eq!(r.sweep_request(&ctx), None);
}

#[test]
fn our_confirmed_htlc_timeout_hands_off_to_a_sweep_after_our_delay_and_its_disconnect_undoes_it() {
    let f = Fixture::new(ChannelType::StaticRemoteKey);
    let ctx = f.ctx(Party::Local);
    let mut r = f.htlc_resolver(Party::Local, HtlcDirection::Outgoing);
    let (outpoint, value, script) = f.htlc_output(Party::Local, HtlcDirection::Outgoing);
    // An HTLC-timeout witness: 0 <remotesig> <localsig> <> <script>, paying our to_local.
    let tx = spend(
        outpoint,
        vec![vec![], sig(), sig(), vec![], script.to_bytes()],
        vec![pays(&f.to_local, value - 700)],
    );
    let at = OUT_EXPIRY + 1;
    let step = spent(&mut r, &tx, at, &ctx);
    let next = step.hand_off.expect("a successor");
    let delay = u32::from(f.data.info.local_to_self_delay);
    assert_eq!(
        next.outpoint,
        OutPoint {
            txid: tx.compute_txid(),
            vout: 0
        }
    );
    assert_eq!(next.value_sat, value - 700);
    assert_eq!(
        next.kind,
        ResolverKind::CommitSweep {
            mature_at: at + delay
        }
    );
    assert_eq!(next.created_at, Some(at));
    assert!(matches!(
        r.stage,
        Stage::Spent {
            by_us: true,
            taken: None,
            ..
        }
    ));
    // The successor sweeps our to_local script by its delayed path once mature.
    let sweep = next.sweep_request(&ctx).expect("a sweep");
    assert_eq!(sweep.mature_at, at + delay);
    assert!(matches!(sweep.path, ClaimPath::ToLocalDelayed { .. }));
    assert_eq!(sweep.txout.script_pubkey, f.to_local.to_p2wsh());

    // The block of the HTLC-timeout is disconnected: the successor is gone, the HTLC contested
    // (or timed out) again.
    let mut successor = next;
    assert!(
        successor
            .step(ResolverInput::Disconnect { height: at }, &ctx)
            .gone
    );
    assert!(!r.step(ResolverInput::Disconnect { height: at }, &ctx).gone);
    assert_eq!(r.stage, Stage::Active);
}

#[test]
fn the_peers_preimage_claim_on_our_commitment_is_judged_the_peers_and_final_at_the_safety_depth() {
    let f = Fixture::new(ChannelType::StaticRemoteKey);
    let ctx = f.ctx(Party::Local);
    let mut r = f.htlc_resolver(Party::Local, HtlcDirection::Outgoing);
    let (outpoint, _, script) = f.htlc_output(Party::Local, HtlcDirection::Outgoing);
    // <remotehtlcsig> <payment_preimage> <script>
    let tx = spend(
        outpoint,
        vec![sig(), f.outgoing.preimage.0.to_vec(), script.to_bytes()],
        vec![],
    );
    let at = CLOSE_AT + 3;
    let step = spent(&mut r, &tx, at, &ctx);
    assert_eq!(step.hand_off, None);
    assert!(matches!(
        r.stage,
        Stage::Spent {
            by_us: false,
            taken: Some(Taken::PeerPreimage),
            ..
        }
    ));
    assert!(r.step(block(at + SAFETY - 2), &ctx).actions.is_empty());
    assert_eq!(
        r.step(block(at + SAFETY - 1), &ctx).actions,
        vec![ResolverAction::Final]
    );
    assert!(r.is_resolved());
}

#[test]
fn on_the_peers_commitment_the_timeout_is_asked_of_the_sweeper_at_once_mature_after_the_expiry() {
    let f = Fixture::new(ChannelType::StaticRemoteKey);
    let ctx = f.ctx(Party::Remote);
    let r = f.htlc_resolver(Party::Remote, HtlcDirection::Outgoing);
    let (outpoint, value, script) = f.htlc_output(Party::Remote, HtlcDirection::Outgoing);
    let req: SweepRequest = r.sweep_request(&ctx).expect("a claim");
    assert_eq!(req.outpoint, outpoint);
    assert_eq!(req.txout.value.to_sat(), value);
    assert_eq!(req.script, script);
    assert_eq!(
        req.mature_at,
        OUT_EXPIRY + 1,
        "nLockTime = cltv_expiry is final a block later"
    );
    assert_eq!(req.deadline, OUT_DEADLINE, "the incoming leg's expiry");
    assert_eq!(req.budget_sat, value / 2, "half the HTLC by default");
    assert_eq!(req.preimage, None);
    assert!(req.contestable);
    // Never a second-level transaction on the peer's commitment.
    let mut r = r;
    assert!(r.step(block(OUT_EXPIRY + 5), &ctx).actions.is_empty());
}
