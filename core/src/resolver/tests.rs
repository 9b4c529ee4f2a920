//! The resolver's own life cycle: spent, reorg-safe, undone by a disconnect; and each machine
//! driven through its step alone (one file per machine, `tests/`).

mod anchor;
mod commit_sweep;
mod fixture;
mod htlc_success;
mod htlc_timeout;
mod justice;
mod wakeup;

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};

use super::{depth, Resolver, ResolverKind, Stage};

const SAFETY: u32 = 6;

fn resolver() -> Resolver {
    let outpoint = OutPoint {
        txid: Txid::from_byte_array([1; 32]),
        vout: 0,
    };
    Resolver::new(
        outpoint,
        10_000,
        ResolverKind::CommitSweep { mature_at: 100 },
    )
}

fn txid() -> Txid {
    Txid::from_byte_array([2; 32])
}

#[test]
fn depth_counts_the_block_of_the_transaction_itself() {
    assert_eq!(depth(100, 100), 1);
    assert_eq!(depth(100, 105), 6);
    assert_eq!(depth(101, 100), 0, "not yet in the chain of that tip");
}

#[test]
fn a_spend_is_final_exactly_at_the_safety_depth_and_wakes_the_resolver_then() {
    let mut r = resolver();
    assert!(!r.is_resolved());
    assert_eq!(
        r.next_wakeup(SAFETY),
        None,
        "an active resolver waits for events"
    );
    r.on_spend(txid(), 200, true, None);
    assert_eq!(
        r.stage,
        Stage::Spent {
            txid: txid(),
            height: 200,
            by_us: true,
            taken: None,
        }
    );
    assert!(!r.is_resolved());
    assert_eq!(
        r.next_wakeup(SAFETY),
        Some(205),
        "the block where it is 6 deep"
    );
    assert!(!r.on_block(204, SAFETY), "5 deep is not final");
    assert!(matches!(r.stage, Stage::Spent { .. }));
    assert!(r.on_block(205, SAFETY), "6 deep: final now");
    assert!(r.is_resolved());
    assert_eq!(r.next_wakeup(SAFETY), None);
    assert!(!r.on_block(206, SAFETY), "final only once");
}

#[test]
fn a_later_spend_does_not_replace_the_first() {
    let mut r = resolver();
    r.on_spend(txid(), 200, false, None);
    r.on_spend(Txid::from_byte_array([3; 32]), 201, true, None);
    assert_eq!(
        r.stage,
        Stage::Spent {
            txid: txid(),
            height: 200,
            by_us: false,
            taken: None,
        }
    );
}

#[test]
fn a_disconnect_at_or_below_the_spend_undoes_it_and_one_above_does_not() {
    let mut r = resolver();
    r.on_spend(txid(), 200, true, None);
    r.on_disconnect(201);
    assert!(matches!(r.stage, Stage::Spent { height: 200, .. }));
    r.on_disconnect(200);
    assert_eq!(r.stage, Stage::Active);
    // Even a final spend is undone by a reorg that deep (beyond the safety depth).
    r.on_spend(txid(), 200, true, None);
    assert!(r.on_block(205, SAFETY));
    r.on_disconnect(199);
    assert_eq!(r.stage, Stage::Active);
}

#[test]
fn an_abandoned_output_is_resolved_and_never_wakes() {
    let mut r = resolver();
    r.stage = Stage::Abandoned { height: 300 };
    assert!(r.is_resolved());
    assert_eq!(r.next_wakeup(SAFETY), None);
    r.on_disconnect(250);
    assert_eq!(
        r.stage,
        Stage::Abandoned { height: 300 },
        "only spends are undone"
    );
}
