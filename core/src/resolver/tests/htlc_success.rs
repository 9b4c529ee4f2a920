//! Incoming contest → HTLC success (a preimage), the contest's end without a spend (the expiry,
//! reorg-safe), and their undo — each driven through `Resolver::step` alone.

use super::fixture::{pays, sig, spend, spent, Fixture, CLOSE_AT, IN_EXPIRY, SAFETY};
use crate::bolt3::ChannelType;
use crate::event::PreimageSource;
use crate::resolver::{Machine, ResolverAction, ResolverInput, SecondLevelClaim, Stage, Taken};
use crate::types::{ClaimId, HtlcDirection, Party};

fn learn(f: &mut Fixture) {
    let key = f.incoming.key;
    f.node
        .learn(f.incoming.preimage, &PreimageSource::Invoice { htlc: key });
}

#[test]
fn without_a_preimage_the_incoming_htlc_is_the_peers_once_its_expiry_is_reorg_safe() {
    let f = Fixture::new(ChannelType::StaticRemoteKey);
    let ctx = f.ctx(Party::Remote);
    let mut r = f.htlc_resolver(Party::Remote, HtlcDirection::Incoming);
    assert_eq!(
        r.machine(IN_EXPIRY + 100, &f.node),
        Machine::IncomingContest
    );
    assert_eq!(
        r.sweep_request(&ctx),
        None,
        "nothing to claim without the preimage"
    );
    // The block cltv_expiry + 1 is the first the peer's timeout can be in; final SAFETY deep.
    let safe = IN_EXPIRY + SAFETY;
    assert!(r
        .step(ResolverInput::Block { tip: safe - 1 }, &ctx)
        .actions
        .is_empty());
    assert_eq!(
        r.step(ResolverInput::Block { tip: safe }, &ctx).actions,
        vec![ResolverAction::SettledUnspent]
    );
    assert_eq!(r.stage, Stage::Expired { height: safe });
    assert!(r.is_resolved());
    // A reorg of that block undoes it.
    r.step(ResolverInput::Disconnect { height: safe }, &ctx);
    assert_eq!(r.stage, Stage::Active);
}

#[test]
fn a_preimage_hands_the_contest_off_to_the_success_claim_on_the_peers_commitment() {
    let mut f = Fixture::new(ChannelType::StaticRemoteKey);
    learn(&mut f);
    let ctx = f.ctx(Party::Remote);
    let r = f.htlc_resolver(Party::Remote, HtlcDirection::Incoming);
    assert_eq!(r.machine(CLOSE_AT, &f.node), Machine::HtlcSuccess);
    let (_, value, script) = f.htlc_output(Party::Remote, HtlcDirection::Incoming);
    let req = r.sweep_request(&ctx).expect("a preimage claim");
    assert_eq!(req.preimage, Some(f.incoming.preimage));
    assert_eq!(req.script, script);
    assert_eq!(req.mature_at, CLOSE_AT + 1);
    assert_eq!(req.deadline, IN_EXPIRY, "before the peer may time it out");
    assert_eq!(req.budget_sat, value / 2);
    // With the preimage the expiry no longer ends it.
    let mut r = r;
    assert!(r
        .step(
            ResolverInput::Block {
                tip: IN_EXPIRY + SAFETY
            },
            &ctx
        )
        .actions
        .is_empty());
    assert_eq!(r.stage, Stage::Active);
}

#[test]
fn on_our_commitment_a_preimage_makes_the_htlc_success_due_at_once_but_only_once() {
    let mut f = Fixture::new(ChannelType::StaticRemoteKey);
    let mut r = f.htlc_resolver(Party::Local, HtlcDirection::Incoming);
    {
        let ctx = f.ctx(Party::Local);
        assert!(r
            .step(ResolverInput::Preimage { tip: CLOSE_AT }, &ctx)
            .actions
            .is_empty());
    }
    learn(&mut f);
    let ctx = f.ctx(Party::Local);
    assert_eq!(
        r.step(ResolverInput::Preimage { tip: CLOSE_AT }, &ctx)
            .actions,
        vec![ResolverAction::SecondLevelDue]
    );
    // Started: the next preimage leaves it to the block, which rebroadcasts it.
    r.second_level = Some(SecondLevelClaim {
        claim: ClaimId(1),
        attempt: 0,
        signed: None,
        funded: None,
    });
    assert!(r
        .step(ResolverInput::Preimage { tip: CLOSE_AT }, &ctx)
        .actions
        .is_empty());
    assert_eq!(
        r.step(ResolverInput::Block { tip: CLOSE_AT + 1 }, &ctx)
            .actions,
        vec![ResolverAction::SecondLevelDue]
    );
}

#[test]
fn our_confirmed_htlc_success_is_ours_and_hands_off_while_the_peers_timeout_is_theirs() {
    let mut f = Fixture::new(ChannelType::StaticRemoteKey);
    learn(&mut f);
    let ctx = f.ctx(Party::Local);
    let (outpoint, value, script) = f.htlc_output(Party::Local, HtlcDirection::Incoming);
    // HTLC-success: 0 <remotesig> <localsig> <preimage> <script>, paying our to_local.
    let ours = spend(
        outpoint,
        vec![
            vec![],
            sig(),
            sig(),
            f.incoming.preimage.0.to_vec(),
            script.to_bytes(),
        ],
        vec![pays(&f.to_local, value - 800)],
    );
    let mut r = f.htlc_resolver(Party::Local, HtlcDirection::Incoming);
    let step = spent(&mut r, &ours, CLOSE_AT + 2, &ctx);
    assert!(step.hand_off.is_some());
    assert!(matches!(r.stage, Stage::Spent { by_us: true, .. }));

    // The peer's timeout of the same output: <remotehtlcsig> <> <script> after the expiry.
    let theirs = spend(outpoint, vec![sig(), vec![], script.to_bytes()], vec![]);
    let mut r = f.htlc_resolver(Party::Local, HtlcDirection::Incoming);
    let step = spent(&mut r, &theirs, IN_EXPIRY + 1, &ctx);
    assert_eq!(step.hand_off, None);
    assert!(matches!(
        r.stage,
        Stage::Spent {
            by_us: false,
            taken: Some(Taken::PeerTimeout),
            ..
        }
    ));
}
