//! The anchor after the close: swept only when it pays for itself, otherwise left once the close
//! is reorg-safe; anyone's after 16 blocks — driven through `Resolver::step` alone.

use super::fixture::{spend, spent, Fixture, CLOSE_AT, SAFETY};
use crate::action::Outcome;
use crate::bolt3::commitment::OutputKind;
use crate::bolt3::scripts;
use crate::bolt3::ChannelType;
use crate::resolver::{Resolver, ResolverAction, ResolverInput, ResolverKind, Stage, Taken};
use crate::types::Party;

fn our_anchor(f: &Fixture) -> Resolver {
    let (outpoint, value, _) = f.output(Party::Local, |k| matches!(k, OutputKind::LocalAnchor));
    Resolver::new(outpoint, value, ResolverKind::Anchor)
}

#[test]
fn an_anchor_that_cannot_pay_for_itself_is_left_once_the_close_is_reorg_safe() {
    let mut f = Fixture::new(ChannelType::AnchorsZeroFeeHtlc);
    f.destination = None; // no sweep destination: nothing can pay for it
    let ctx = f.ctx(Party::Local);
    let mut r = our_anchor(&f);
    assert_eq!(r.sweep_request(&ctx), None);
    let safe = CLOSE_AT + SAFETY - 1;
    assert!(r
        .step(ResolverInput::Block { tip: safe - 1 }, &ctx)
        .actions
        .is_empty());
    assert_eq!(
        r.step(ResolverInput::Block { tip: safe }, &ctx).actions,
        vec![ResolverAction::SettledUnspent]
    );
    assert_eq!(r.outcome(), Some(Outcome::Uneconomical));
}

#[test]
fn an_anchor_that_pays_for_itself_is_claimed_before_anyone_may_take_it() {
    let f = Fixture::new(ChannelType::AnchorsZeroFeeHtlc);
    let ctx = f.ctx(Party::Local);
    let mut r = our_anchor(&f);
    // 330 sat cannot pay for its sweep at 1 sat/vB and stay above dust.
    assert_eq!(r.sweep_request(&ctx), None);
    r.value_sat = 50_000;
    let req = r.sweep_request(&ctx).expect("worth sweeping");
    assert_eq!(req.mature_at, CLOSE_AT + 1);
    assert_eq!(
        req.deadline,
        CLOSE_AT + 15,
        "anyone's from close + 16 (BIP 68)"
    );
    assert_eq!(req.budget_sat, 50_000);
}

#[test]
fn an_anchor_spent_by_the_anyone_can_spend_path_is_a_third_partys() {
    let f = Fixture::new(ChannelType::AnchorsZeroFeeHtlc);
    let ctx = f.ctx(Party::Local);
    let mut r = our_anchor(&f);
    let script = scripts::anchor_script(&f.data.info.local_basepoints.funding_pubkey);
    let tx = spend(r.outpoint, vec![vec![], script.to_bytes()], vec![]);
    spent(&mut r, &tx, CLOSE_AT + 16, &ctx);
    assert!(matches!(
        r.stage,
        Stage::Spent {
            by_us: false,
            taken: Some(Taken::ThirdParty),
            ..
        }
    ));
    assert_eq!(r.outcome(), Some(Outcome::ThirdParty));
}

#[test]
fn a_witness_of_no_known_path_is_reported_as_an_unknown_spend() {
    let f = Fixture::new(ChannelType::AnchorsZeroFeeHtlc);
    let ctx = f.ctx(Party::Local);
    let mut r = our_anchor(&f);
    let tx = spend(r.outpoint, vec![vec![7; 3]], vec![]);
    let step = spent(&mut r, &tx, CLOSE_AT + 2, &ctx);
    assert!(matches!(
        step.actions.as_slice(),
        [ResolverAction::UnknownSpend { input: 0, .. }]
    ));
    assert_eq!(r.outcome(), Some(Outcome::UnknownSpend));
}

#[test]
fn an_anchor_left_as_uneconomical_and_later_taken_by_a_third_party_is_recorded_as_theirs() {
    let mut f = Fixture::new(ChannelType::AnchorsZeroFeeHtlc);
    f.destination = None;
    let ctx = f.ctx(Party::Local);
    let mut r = our_anchor(&f);
    let safe = CLOSE_AT + SAFETY - 1;
    r.step(ResolverInput::Block { tip: safe }, &ctx);
    assert_eq!(r.outcome(), Some(Outcome::Uneconomical));
    let script = scripts::anchor_script(&f.data.info.local_basepoints.funding_pubkey);
    let tx = spend(r.outpoint, vec![vec![], script.to_bytes()], vec![]);
    let at = CLOSE_AT + 16;
    spent(&mut r, &tx, at, &ctx);
    assert_eq!(r.outcome(), Some(Outcome::ThirdParty));
    assert_eq!(
        r.step(
            ResolverInput::Block {
                tip: at + SAFETY - 1
            },
            &ctx
        )
        .actions,
        vec![ResolverAction::Final]
    );
}
