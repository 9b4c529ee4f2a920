//! Justice on a revoked commitment: the revocation claim, the hand-off to the peer's
//! second-level output (still ours by revocation) and its undo — driven through
//! `Resolver::step` alone.

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};

use super::fixture::{pays, sig, spend, spent, Fixture, CLOSE_AT, SAFETY};
use crate::bolt3::scripts;
use crate::bolt3::witness::ClaimPath;
use crate::bolt3::ChannelType;
use crate::resolver::{
    Justice, Resolver, ResolverAction, ResolverInput, ResolverKind, Stage, Taken,
};
use crate::types::{HtlcDirection, Party};

fn key(b: u8) -> PublicKey {
    PublicKey::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[b; 32]).expect("key"),
    )
}

/// The fixture with the peer's commitment standing in for a revoked one: the justice facts are
/// a revealed secret and the peer's revocable `to_local` script.
fn breach() -> Fixture {
    let mut f = Fixture::new(ChannelType::StaticRemoteKey);
    let delay = f.data.info.remote_to_self_delay;
    f.justice = Some(Justice {
        secret: [4; 32],
        to_local: scripts::to_local_script(&key(1), delay, &key(2)),
        revocation_pubkey: key(1),
        rebuilt: None,
        record: None,
    });
    f
}

fn revoked_htlc(f: &Fixture) -> Resolver {
    let (outpoint, value, _) = f.htlc_output(Party::Remote, HtlcDirection::Incoming);
    Resolver::new(
        outpoint,
        value,
        ResolverKind::Breach {
            commitment_number: 1,
        },
    )
}

#[test]
fn an_htlc_output_waits_for_the_revoked_log_before_it_can_be_claimed() {
    let f = breach();
    let ctx = f.ctx(Party::Remote);
    assert_eq!(revoked_htlc(&f).sweep_request(&ctx), None);
}

#[test]
fn the_peers_second_level_transaction_hands_off_to_justice_on_its_output_until_its_csv_runs_out() {
    let f = breach();
    let ctx = f.ctx(Party::Remote);
    let justice = f.justice.as_ref().expect("justice facts");
    let mut r = revoked_htlc(&f);
    let (_, value, script) = f.htlc_output(Party::Remote, HtlcDirection::Incoming);
    // The peer's HTLC-timeout: 0 <sig> <sig> <> <script>, paying its revocable to_local.
    let tx = spend(
        r.outpoint,
        vec![vec![], sig(), sig(), vec![], script.to_bytes()],
        vec![pays(&justice.to_local, value - 600)],
    );
    let at = CLOSE_AT + 4;
    let step = spent(&mut r, &tx, at, &ctx);
    assert!(matches!(
        r.stage,
        Stage::Spent {
            by_us: false,
            taken: Some(Taken::PeerSecondLevelRevoked),
            ..
        }
    ));
    let mut next = step.hand_off.expect("justice on the second-level output");
    assert_eq!(
        next.kind,
        ResolverKind::Breach {
            commitment_number: 1
        }
    );
    assert_eq!(next.created_at, Some(at));
    let delay = u32::from(f.data.info.remote_to_self_delay);
    let req = next.sweep_request(&ctx).expect("a justice claim");
    assert!(matches!(req.path, ClaimPath::ToLocalRevocation { .. }));
    assert_eq!(req.mature_at, at + 1);
    assert_eq!(
        req.deadline,
        at + delay - 1,
        "before the peer's delayed spend is final"
    );
    assert_eq!(req.budget_sat, value - 600, "the whole output");
    assert_eq!(req.script, justice.to_local);

    // A reorg of the second-level transaction's block undoes the hand-off.
    assert!(
        next.step(ResolverInput::Disconnect { height: at }, &ctx)
            .gone
    );
    r.step(ResolverInput::Disconnect { height: at }, &ctx);
    assert_eq!(r.stage, Stage::Active);
}

#[test]
fn on_the_peers_second_level_output_our_revocation_spend_is_ours_and_its_delayed_spend_theirs() {
    let f = breach();
    let ctx = f.ctx(Party::Remote);
    let justice = f.justice.as_ref().expect("justice facts");
    let (_, value, _) = f.htlc_output(Party::Remote, HtlcDirection::Incoming);
    let at = CLOSE_AT + 4;
    let mut next = Resolver::new(
        bitcoin::OutPoint {
            txid: bitcoin::hashes::Hash::all_zeros(),
            vout: 0,
        },
        value - 600,
        ResolverKind::Breach {
            commitment_number: 1,
        },
    );
    next.created_at = Some(at);
    let delay = u32::from(f.data.info.remote_to_self_delay);
    // The peer's delayed sweep of it, after its CSV, is the peer's; our revocation spend is ours.
    let theirs = spend(
        next.outpoint,
        vec![sig(), vec![], justice.to_local.to_bytes()],
        vec![],
    );
    let mut lost = next.clone();
    spent(&mut lost, &theirs, at + delay, &ctx);
    assert!(matches!(
        lost.stage,
        Stage::Spent {
            taken: Some(Taken::PeerDelayed),
            ..
        }
    ));
    let ours = spend(
        next.outpoint,
        vec![sig(), vec![1], justice.to_local.to_bytes()],
        vec![],
    );
    let mut won = next.clone();
    spent(&mut won, &ours, at + 2, &ctx);
    assert!(matches!(won.stage, Stage::Spent { by_us: true, .. }));
    assert_eq!(
        won.step(
            ResolverInput::Block {
                tip: at + 1 + SAFETY
            },
            &ctx
        )
        .actions,
        vec![ResolverAction::Final]
    );
}

#[test]
fn a_second_level_output_spent_again_does_not_hand_off_twice() {
    let f = breach();
    let ctx = f.ctx(Party::Remote);
    let justice = f.justice.as_ref().expect("justice facts");
    let (_, value, _) = f.htlc_output(Party::Remote, HtlcDirection::Incoming);
    let mut second = Resolver::new(
        bitcoin::OutPoint {
            txid: bitcoin::hashes::Hash::all_zeros(),
            vout: 0,
        },
        value,
        ResolverKind::Breach {
            commitment_number: 1,
        },
    );
    second.created_at = Some(CLOSE_AT + 1);
    let tx = spend(
        second.outpoint,
        vec![sig(), vec![], justice.to_local.to_bytes()],
        vec![pays(&justice.to_local, value - 600)],
    );
    let step = spent(&mut second, &tx, CLOSE_AT + 3, &ctx);
    assert_eq!(
        step.hand_off, None,
        "already a second-level output: its spend ends it"
    );
}
