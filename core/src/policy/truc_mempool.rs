//! TRUC against a parent already in a mempool, sibling eviction, and Bitcoin Core's wordings of
//! every TRUC and ephemeral dust refusal.
//!
//! [`check_truc_with_mempool`] is Bitcoin Core 29's `SingleTRUCChecks`
//! (`policy/truc_policy.cpp`) for a transaction submitted alone: version inheritance against
//! each mempool parent; for a version-3 transaction, at most 10,000 vB, one unconfirmed
//! ancestor (a mempool parent with no mempool parent of its own), at most 1,000 vB with one; and
//! the parent's only child. A parent that already has a child refuses a second one — unless the
//! new one replaces that child by spending one of its inputs (a direct conflict, left to the
//! replacement rules), or the child is alone and childless, when Core considers evicting it
//! ("sibling eviction", `validation.cpp` `PreChecks`): the caller then treats the sibling as a
//! conflict and applies the replacement rules (a higher fee rate than the sibling's, and at least
//! its fee plus the incremental relay fee for its own size), worded `insufficient fee
//! (including sibling eviction)`.
//!
//! The wordings are Core's `TxValidationState` strings — reject reason, a comma, the details —
//! as `sendrawtransaction` and `submitpackage` print them.

use std::collections::BTreeSet;

use bitcoin::{Transaction, Txid};

use super::truc::{TrucViolation, TRUC_CHILD_MAX_VSIZE, TRUC_MAX_VSIZE, TRUC_VERSION};

/// Core's reject reason of every TRUC refusal.
pub const TRUC_REJECT_REASON: &str = "TRUC-violation";
/// Core's reject reason of a child leaving its parent's ephemeral dust unspent.
pub const MISSING_EPHEMERAL_SPENDS_REASON: &str = "missing-ephemeral-spends";
/// Core's refusal of a transaction with a dust output that pays a fee
/// (`ephemeral_policy.cpp` `PreCheckEphemeralTx`).
pub const DUST_NOT_ZERO_FEE: &str = "dust, tx with dust output must be 0-fee";

/// A mempool parent of the transaction checked, as Core's `SingleTRUCChecks` sees it.
#[derive(Clone, Debug)]
pub struct MempoolParent<'a> {
    /// The parent.
    pub tx: &'a Transaction,
    /// Its ancestors in the mempool, itself included (Core's `GetAncestorCount`).
    pub ancestor_count: usize,
    /// Its descendants in the mempool (itself excluded), each with its ancestor count (itself
    /// included).
    pub descendants: Vec<(Txid, usize)>,
}

/// A TRUC refusal: the rule, Core's details, and the sibling Core would consider evicting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrucRefusal {
    /// The rule broken.
    pub violation: TrucViolation,
    /// Core's details (the text after `TRUC-violation, `).
    pub details: String,
    /// For a parent's second child: its one existing child, when that child has no other
    /// ancestor and no descendant — Core then tries sibling eviction instead of refusing.
    pub sibling: Option<Txid>,
}

impl TrucRefusal {
    /// Core's whole wording: `TRUC-violation, <details>`.
    pub fn reason(&self) -> String {
        format!("{TRUC_REJECT_REASON}, {}", self.details)
    }
}

fn ids(tx: &Transaction) -> String {
    format!("{} (wtxid={})", tx.compute_txid(), tx.compute_wtxid())
}

/// Core's details of `violation` by `tx` (`parent`: the unconfirmed parent it concerns, when the
/// rule names one), as `truc_policy.cpp` words them.
pub fn truc_details(
    violation: &TrucViolation,
    tx: &Transaction,
    parent: Option<&Transaction>,
) -> String {
    let parent_ids = parent.map_or_else(|| ids(tx), ids);
    match violation {
        TrucViolation::TooBig { vsize } => format!(
            "version=3 tx {} is too big: {vsize} > {TRUC_MAX_VSIZE} virtual bytes",
            ids(tx)
        ),
        TrucViolation::ChildTooBig { vsize } => format!(
            "version=3 child tx {} is too big: {vsize} > {TRUC_CHILD_MAX_VSIZE} virtual bytes",
            ids(tx)
        ),
        TrucViolation::TooManyAncestors => format!("tx {} would have too many ancestors", ids(tx)),
        TrucViolation::TooManyDescendants => {
            format!("tx {parent_ids} would exceed descendant count limit")
        }
        TrucViolation::SpendsNonTruc => format!(
            "version=3 tx {} cannot spend from non-version=3 tx {parent_ids}",
            ids(tx)
        ),
        TrucViolation::NonTrucSpendsTruc => format!(
            "non-version=3 tx {} cannot spend from version=3 tx {parent_ids}",
            ids(tx)
        ),
    }
}

/// Core's whole wording of a child that leaves its parent's ephemeral dust unspent.
pub fn missing_ephemeral_spends_reason(child: &Transaction) -> String {
    format!(
        "{MISSING_EPHEMERAL_SPENDS_REASON}, tx {} did not spend parent's ephemeral dust",
        ids(child)
    )
}

fn refusal(
    violation: TrucViolation,
    tx: &Transaction,
    parent: Option<&Transaction>,
) -> TrucRefusal {
    TrucRefusal {
        details: truc_details(&violation, tx, parent),
        violation,
        sibling: None,
    }
}

/// Core 29's `SingleTRUCChecks` for `tx` of `vsize` submitted alone, with its `parents` in the
/// mempool and the mempool transactions it conflicts with directly (see the
/// [module documentation](self)).
pub fn check_truc_with_mempool(
    tx: &Transaction,
    vsize: u64,
    parents: &[MempoolParent<'_>],
    direct_conflicts: &BTreeSet<Txid>,
) -> Result<(), TrucRefusal> {
    let truc = tx.version.0 == TRUC_VERSION;
    for p in parents {
        let parent_truc = p.tx.version.0 == TRUC_VERSION;
        if parent_truc && !truc {
            return Err(refusal(TrucViolation::NonTrucSpendsTruc, tx, Some(p.tx)));
        }
        if truc && !parent_truc {
            return Err(refusal(TrucViolation::SpendsNonTruc, tx, Some(p.tx)));
        }
    }
    if !truc {
        return Ok(());
    }
    if vsize > TRUC_MAX_VSIZE {
        return Err(refusal(TrucViolation::TooBig { vsize }, tx, None));
    }
    let [parent] = parents else {
        return match parents {
            [] => Ok(()),
            _ => Err(refusal(TrucViolation::TooManyAncestors, tx, None)),
        };
    };
    if parent.ancestor_count + 1 > 2 {
        return Err(refusal(TrucViolation::TooManyAncestors, tx, None));
    }
    if vsize > TRUC_CHILD_MAX_VSIZE {
        return Err(refusal(TrucViolation::ChildTooBig { vsize }, tx, None));
    }
    let replaced = parent
        .descendants
        .iter()
        .any(|(txid, _)| direct_conflicts.contains(txid));
    if parent.descendants.is_empty() || replaced {
        return Ok(());
    }
    let mut r = refusal(TrucViolation::TooManyDescendants, tx, Some(parent.tx));
    if let [(sibling, 2)] = parent.descendants.as_slice() {
        r.sibling = Some(*sibling);
    }
    Err(r)
}

#[cfg(test)]
#[path = "truc_mempool_tests.rs"]
mod tests;
