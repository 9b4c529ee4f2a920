//! The commitment sweep: our balance, claimed by our key alone, judged from the spend's witness,
//! final at the safety depth, undone by a reorg — driven through `Resolver::step` alone.

use super::fixture::{sig, spend, spent, Fixture, CLOSE_AT, SAFETY};
use crate::action::Outcome;
use crate::bolt3::commitment::OutputKind;
use crate::bolt3::witness::ClaimPath;
use crate::bolt3::ChannelType;
use crate::resolver::{
    Machine, Resolver, ResolverAction, ResolverInput, ResolverKind, Stage, Taken,
};
use crate::types::Party;
use bitcoin::hashes::Hash;

fn our_to_local(f: &Fixture) -> Resolver {
    let (outpoint, value, _) = f.output(Party::Local, |k| matches!(k, OutputKind::ToLocal));
    let delay = u32::from(f.data.info.local_to_self_delay);
    Resolver::new(
        outpoint,
        value,
        ResolverKind::CommitSweep {
            mature_at: CLOSE_AT + delay,
        },
    )
}

#[test]
fn our_to_local_is_swept_by_the_delayed_path_after_our_delay_within_the_balance_budget() {
    let f = Fixture::new(ChannelType::StaticRemoteKey);
    let ctx = f.ctx(Party::Local);
    let r = our_to_local(&f);
    assert_eq!(r.machine(CLOSE_AT, &f.node), Machine::CommitSweep);
    let delay = u32::from(f.data.info.local_to_self_delay);
    let req = r.sweep_request(&ctx).expect("a sweep");
    assert_eq!(req.mature_at, CLOSE_AT + delay);
    assert_eq!(
        req.deadline,
        CLOSE_AT + delay + f.policy.balance_deadline_blocks
    );
    assert_eq!(req.budget_sat, r.value_sat * 5 / 100);
    assert_eq!(req.script, f.to_local);
    assert!(!req.contestable, "only our key spends it");
    assert!(matches!(req.path, ClaimPath::ToLocalDelayed { .. }));
}

#[test]
fn an_output_spent_or_given_up_asks_the_sweeper_for_nothing() {
    let f = Fixture::new(ChannelType::StaticRemoteKey);
    let ctx = f.ctx(Party::Local);
    let mut r = our_to_local(&f);
    assert!(r.sweep_request(&ctx).is_some(), "active: claimed");
    r.stage = Stage::Spent {
        txid: bitcoin::Txid::from_byte_array([5; 32]),
        height: CLOSE_AT + 10,
        by_us: true,
        taken: None,
    };
    assert_eq!(r.sweep_request(&ctx), None, "spent: nothing left to claim");
    r.stage = Stage::Abandoned {
        height: CLOSE_AT + 10,
    };
    assert_eq!(r.sweep_request(&ctx), None, "given up: not claimed again");
}

#[test]
fn our_to_remote_on_the_peers_commitment_is_swept_from_the_next_block_with_our_payment_key() {
    let f = Fixture::new(ChannelType::StaticRemoteKey);
    let ctx = f.ctx(Party::Remote);
    let (outpoint, value, _) = f.output(Party::Remote, |k| matches!(k, OutputKind::ToRemote));
    let r = Resolver::new(
        outpoint,
        value,
        ResolverKind::CommitSweep {
            mature_at: CLOSE_AT + 1,
        },
    );
    let req = r.sweep_request(&ctx).expect("a sweep");
    assert!(matches!(req.path, ClaimPath::ToRemote { .. }));
    assert_eq!(req.mature_at, CLOSE_AT + 1);
    assert_eq!(
        req.witness_pubkey,
        Some(f.data.info.local_basepoints.payment_basepoint),
        "static remote key: P2WPKH of our untweaked payment key"
    );
}

#[test]
fn a_delayed_spend_is_ours_a_revocation_spend_the_peers_and_a_disconnect_undoes_either() {
    let f = Fixture::new(ChannelType::StaticRemoteKey);
    let ctx = f.ctx(Party::Local);
    let delay = f.data.info.local_to_self_delay;
    for (selector, ours) in [(vec![], true), (vec![1], false)] {
        let mut r = our_to_local(&f);
        let tx = spend(
            r.outpoint,
            vec![sig(), selector, f.to_local.to_bytes()],
            vec![],
        );
        let at = CLOSE_AT + u32::from(delay);
        let step = spent(&mut r, &tx, at, &ctx);
        assert_eq!(step.hand_off, None, "a balance never hands off");
        let want = if ours {
            Outcome::Claimed
        } else {
            Outcome::LostToPeer
        };
        assert_eq!(r.outcome(), Some(want));
        if !ours {
            assert!(matches!(
                r.stage,
                Stage::Spent {
                    taken: Some(Taken::PeerRevocation),
                    ..
                }
            ));
        }
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
        r.step(ResolverInput::Disconnect { height: at }, &ctx);
        assert_eq!(r.stage, Stage::Active, "the spend was reorged out");
    }
}
