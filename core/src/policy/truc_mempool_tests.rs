//! TRUC against mempool parents (Core 29 `SingleTRUCChecks`), sibling eviction, and Core's
//! wordings, each row's expected text taken from `policy/truc_policy.cpp` and
//! `policy/ephemeral_policy.cpp` / `validation.cpp`.

use bitcoin::transaction::Version;
use bitcoin::{OutPoint, Transaction, Witness};

use super::*;
use crate::policy::testutil::*;

/// A version-`version` transaction spending output `vout` of each of `parents` (none: a dummy
/// confirmed coin).
fn tx(version: i32, parents: &[(&Transaction, u32)], tag: u8) -> Transaction {
    let mut t = spend(&[Witness::new()]);
    t.version = Version(version);
    t.output[0].value = bitcoin::Amount::from_sat(10_000 + u64::from(tag));
    t.input.clear();
    for (p, vout) in parents {
        let mut input = spend(&[Witness::new()]).input.remove(0);
        input.previous_output = OutPoint {
            txid: p.compute_txid(),
            vout: *vout,
        };
        t.input.push(input);
    }
    if t.input.is_empty() {
        t.input = spend(&[Witness::new()]).input;
    }
    t
}

fn parent_of<'a>(
    tx: &'a Transaction,
    ancestor_count: usize,
    descendants: &[(&Transaction, usize)],
) -> MempoolParent<'a> {
    MempoolParent {
        tx,
        ancestor_count,
        descendants: descendants
            .iter()
            .map(|(d, n)| (d.compute_txid(), *n))
            .collect(),
    }
}

fn ids(t: &Transaction) -> String {
    format!("{} (wtxid={})", t.compute_txid(), t.compute_wtxid())
}

const NONE: &BTreeSet<Txid> = &BTreeSet::new();

#[test]
fn a_truc_parent_in_the_mempool_takes_one_child_and_offers_its_sibling_for_eviction() {
    let parent = tx(3, &[], 0);
    let first = tx(3, &[(&parent, 0)], 1);
    let second = tx(3, &[(&parent, 1)], 2);
    // Childless parent: the first child enters.
    let alone = [parent_of(&parent, 1, &[])];
    assert_eq!(check_truc_with_mempool(&first, 150, &alone, NONE), Ok(()));
    // With the first child in the mempool, a second is refused — naming the parent, as Core
    // does — and the first is offered for sibling eviction.
    let with_child = [parent_of(&parent, 1, &[(&first, 2)])];
    let refused = check_truc_with_mempool(&second, 150, &with_child, NONE).unwrap_err();
    assert_eq!(refused.violation, TrucViolation::TooManyDescendants);
    assert_eq!(refused.sibling, Some(first.compute_txid()));
    assert_eq!(
        refused.reason(),
        format!(
            "TRUC-violation, tx {} would exceed descendant count limit",
            ids(&parent)
        )
    );
    // A second child that spends the first child's input replaces it directly: the
    // replacement rules decide, not TRUC.
    let conflicts = BTreeSet::from([first.compute_txid()]);
    assert_eq!(
        check_truc_with_mempool(&second, 150, &with_child, &conflicts),
        Ok(())
    );
    // Two children already (possible after a reorg), or a child with a child of its own: no
    // sibling eviction, a plain refusal.
    let third = tx(3, &[(&parent, 2)], 3);
    let crowded = [parent_of(&parent, 1, &[(&first, 2), (&third, 2)])];
    let r = check_truc_with_mempool(&second, 150, &crowded, NONE).unwrap_err();
    assert_eq!(
        (r.violation, r.sibling),
        (TrucViolation::TooManyDescendants, None)
    );
}

#[test]
fn a_truc_child_of_a_mempool_parent_keeps_the_ancestor_size_and_version_rules() {
    let grandparent = tx(3, &[], 0);
    let parent = tx(3, &[(&grandparent, 0)], 1);
    let child = tx(3, &[(&parent, 0)], 2);
    // The parent has an unconfirmed parent of its own: one ancestor too many.
    let r = check_truc_with_mempool(&child, 150, &[parent_of(&parent, 2, &[])], NONE);
    assert_eq!(
        r.map_err(|r| r.reason()),
        Err(format!(
            "TRUC-violation, tx {} would have too many ancestors",
            ids(&child)
        ))
    );
    // Two mempool parents.
    let other = tx(3, &[], 3);
    let two = tx(3, &[(&grandparent, 1), (&other, 0)], 4);
    let parents = [parent_of(&grandparent, 1, &[]), parent_of(&other, 1, &[])];
    assert_eq!(
        check_truc_with_mempool(&two, 150, &parents, NONE).map_err(|r| r.violation),
        Err(TrucViolation::TooManyAncestors)
    );
    // A child above 1,000 vB; the same size with no unconfirmed parent is fine.
    let p = [parent_of(&grandparent, 1, &[])];
    assert_eq!(
        check_truc_with_mempool(&child, 1_001, &p, NONE).map_err(|r| r.reason()),
        Err(format!(
            "TRUC-violation, version=3 child tx {} is too big: 1001 > 1000 virtual bytes",
            ids(&child)
        ))
    );
    assert_eq!(check_truc_with_mempool(&child, 1_001, &[], NONE), Ok(()));
    assert_eq!(
        check_truc_with_mempool(&child, 10_001, &[], NONE).map_err(|r| r.reason()),
        Err(format!(
            "TRUC-violation, version=3 tx {} is too big: 10001 > 10000 virtual bytes",
            ids(&child)
        ))
    );
    // Versions do not mix unconfirmed, either way.
    let v2_parent = tx(2, &[], 5);
    let v3_child = tx(3, &[(&v2_parent, 0)], 6);
    assert_eq!(
        check_truc_with_mempool(&v3_child, 150, &[parent_of(&v2_parent, 1, &[])], NONE)
            .map_err(|r| r.reason()),
        Err(format!(
            "TRUC-violation, version=3 tx {} cannot spend from non-version=3 tx {}",
            ids(&v3_child),
            ids(&v2_parent)
        ))
    );
    let v2_child = tx(2, &[(&grandparent, 0)], 7);
    assert_eq!(
        check_truc_with_mempool(&v2_child, 150, &p, NONE).map_err(|r| r.reason()),
        Err(format!(
            "TRUC-violation, non-version=3 tx {} cannot spend from version=3 tx {}",
            ids(&v2_child),
            ids(&grandparent)
        ))
    );
    // A version-2 transaction with version-2 parents is none of TRUC's business.
    assert_eq!(
        check_truc_with_mempool(&tx(2, &[(&v2_parent, 1)], 8), 99_999, &[], NONE),
        Ok(())
    );
}

/// Core's wordings, row by row from `truc_policy.cpp` (`%s (wtxid=%s)` is the txid and wtxid),
/// `ephemeral_policy.cpp` and `validation.cpp`.
#[test]
fn truc_and_ephemeral_dust_refusals_use_bitcoin_core_wordings() {
    let parent = tx(3, &[], 0);
    let child = tx(3, &[(&parent, 0)], 1);
    let (c, p) = (ids(&child), ids(&parent));
    let rows: [(TrucViolation, String); 6] = [
        (
            TrucViolation::TooBig { vsize: 10_001 },
            format!("version=3 tx {c} is too big: 10001 > 10000 virtual bytes"),
        ),
        (
            TrucViolation::ChildTooBig { vsize: 1_001 },
            format!("version=3 child tx {c} is too big: 1001 > 1000 virtual bytes"),
        ),
        (
            TrucViolation::TooManyAncestors,
            format!("tx {c} would have too many ancestors"),
        ),
        (
            TrucViolation::TooManyDescendants,
            format!("tx {p} would exceed descendant count limit"),
        ),
        (
            TrucViolation::SpendsNonTruc,
            format!("version=3 tx {c} cannot spend from non-version=3 tx {p}"),
        ),
        (
            TrucViolation::NonTrucSpendsTruc,
            format!("non-version=3 tx {c} cannot spend from version=3 tx {p}"),
        ),
    ];
    for (violation, expected) in rows {
        assert_eq!(truc_details(&violation, &child, Some(&parent)), expected);
    }
    assert_eq!(
        missing_ephemeral_spends_reason(&child),
        format!("missing-ephemeral-spends, tx {c} did not spend parent's ephemeral dust")
    );
    assert_eq!(DUST_NOT_ZERO_FEE, "dust, tx with dust output must be 0-fee");
    // Every one of them is classed a TRUC refusal by the reject table.
    for reason in [
        format!("TRUC-violation, tx {p} would exceed descendant count limit"),
        missing_ephemeral_spends_reason(&child),
        DUST_NOT_ZERO_FEE.to_string(),
    ] {
        assert_eq!(
            crate::policy::classify_reject(&reason),
            crate::policy::RejectClass::Truc,
            "{reason}"
        );
    }
}
