//! TRUC (version 3, BIP 431) and ephemeral dust: the relay rules that zero-fee commitments
//! (BOLT PR 1228) rely on, as Bitcoin Core 29 applies them (`policy/truc_policy.cpp`,
//! `policy/ephemeral_policy.cpp`, `IsStandardTx` in `policy/policy.cpp`).
//!
//! - A version-3 transaction weighs at most 10,000 vB; one with an unconfirmed version-3 parent at
//!   most 1,000 vB. It has at most one unconfirmed ancestor, and a version-3 transaction at
//!   most one unconfirmed descendant. A version-3 transaction spends no unconfirmed
//!   non-version-3 transaction, and the reverse.
//! - A transaction may carry one dust output ("ephemeral dust") only if it pays no fee; while it
//!   is unconfirmed every child must spend that output.
//!
//! Only packages (a child with its parents, all unconfirmed) are checked here: the mempool's own
//! unconfirmed transactions are the caller's. Sibling eviction is not modelled.

use std::collections::BTreeSet;

use bitcoin::{Transaction, Txid};
use serde::{Deserialize, Serialize};

/// The TRUC `nVersion`.
pub const TRUC_VERSION: i32 = 3;
/// The largest version-3 transaction (virtual bytes).
pub const TRUC_MAX_VSIZE: u64 = 10_000;
/// The largest version-3 transaction with an unconfirmed parent (virtual bytes).
pub const TRUC_CHILD_MAX_VSIZE: u64 = 1_000;
/// The most dust outputs a standard transaction may carry (Core 29 `MAX_DUST_OUTPUTS_PER_TX`).
pub const MAX_DUST_OUTPUTS_PER_TX: usize = 1;

/// A TRUC rule broken; Bitcoin Core refuses each as `TRUC-violation`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrucViolation {
    /// A version-3 transaction over [`TRUC_MAX_VSIZE`].
    TooBig {
        /// Its virtual size.
        vsize: u64,
    },
    /// A version-3 transaction with an unconfirmed parent over [`TRUC_CHILD_MAX_VSIZE`].
    ChildTooBig {
        /// Its virtual size.
        vsize: u64,
    },
    /// A version-3 transaction with more than one unconfirmed ancestor.
    TooManyAncestors,
    /// A version-3 parent with more than one unconfirmed child.
    TooManyDescendants,
    /// A version-3 transaction spending an unconfirmed transaction of another version.
    SpendsNonTruc,
    /// A transaction of another version spending an unconfirmed version-3 transaction.
    NonTrucSpendsTruc,
}

impl std::fmt::Display for TrucViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrucViolation::TooBig { vsize } => write!(
                f,
                "version=3 tx is too big: {vsize} > {TRUC_MAX_VSIZE} virtual bytes"
            ),
            TrucViolation::ChildTooBig { vsize } => write!(
                f,
                "version=3 child tx is too big: {vsize} > {TRUC_CHILD_MAX_VSIZE} virtual bytes"
            ),
            TrucViolation::TooManyAncestors => f.write_str("tx would have too many ancestors"),
            TrucViolation::TooManyDescendants => {
                f.write_str("tx would exceed descendant count limit")
            }
            TrucViolation::SpendsNonTruc => {
                f.write_str("version=3 tx cannot spend from non-version=3 tx")
            }
            TrucViolation::NonTrucSpendsTruc => {
                f.write_str("non-version=3 tx cannot spend from version=3 tx")
            }
        }
    }
}

/// The rule every transaction meets on its own: a version-3 transaction is at most
/// [`TRUC_MAX_VSIZE`].
pub fn check_truc_size(tx: &Transaction) -> Result<(), TrucViolation> {
    let vsize = tx.vsize() as u64;
    if tx.version.0 == TRUC_VERSION && vsize > TRUC_MAX_VSIZE {
        return Err(TrucViolation::TooBig { vsize });
    }
    Ok(())
}

/// The indices of the transactions of `package` before `index` that `package[index]` spends.
fn in_package_parents(package: &[&Transaction], txids: &[Txid], index: usize) -> Vec<usize> {
    let spent: BTreeSet<Txid> = package[index]
        .input
        .iter()
        .map(|i| i.previous_output.txid)
        .collect();
    (0..index).filter(|i| spent.contains(&txids[*i])).collect()
}

/// The TRUC rules within a package (parents before children, every transaction unconfirmed):
/// `Err((index, violation))` names the first transaction that breaks one.
pub fn check_package_truc(package: &[&Transaction]) -> Result<(), (usize, TrucViolation)> {
    let txids: Vec<Txid> = package.iter().map(|tx| tx.compute_txid()).collect();
    for (index, tx) in package.iter().enumerate() {
        check_truc_size(tx).map_err(|v| (index, v))?;
        let parents = in_package_parents(package, &txids, index);
        let truc = tx.version.0 == TRUC_VERSION;
        if !truc {
            if parents
                .iter()
                .any(|p| package[*p].version.0 == TRUC_VERSION)
            {
                return Err((index, TrucViolation::NonTrucSpendsTruc));
            }
            continue;
        }
        let [parent] = parents.as_slice() else {
            if parents.len() > 1 {
                return Err((index, TrucViolation::TooManyAncestors));
            }
            continue;
        };
        let vsize = tx.vsize() as u64;
        if vsize > TRUC_CHILD_MAX_VSIZE {
            return Err((index, TrucViolation::ChildTooBig { vsize }));
        }
        if package[*parent].version.0 != TRUC_VERSION {
            return Err((index, TrucViolation::SpendsNonTruc));
        }
        if !in_package_parents(package, &txids, *parent).is_empty() {
            return Err((index, TrucViolation::TooManyAncestors));
        }
        let siblings = package
            .iter()
            .enumerate()
            .filter(|(i, other)| {
                *i != index
                    && other
                        .input
                        .iter()
                        .any(|input| input.previous_output.txid == txids[*parent])
            })
            .count();
        if siblings > 0 {
            return Err((index, TrucViolation::TooManyDescendants));
        }
    }
    Ok(())
}

/// The dust outputs of `tx` (indices) at `dust_relay_fee_sat_per_kvb`.
pub fn dust_outputs(tx: &Transaction, dust_relay_fee_sat_per_kvb: u64) -> Vec<u32> {
    (0u32..)
        .zip(&tx.output)
        .filter(|(_, o)| {
            o.value.to_sat() < super::dust_threshold(&o.script_pubkey, dust_relay_fee_sat_per_kvb)
        })
        .map(|(i, _)| i)
        .collect()
}

/// Ephemeral dust within a package (parents before children): every transaction spends every
/// dust output of each in-package parent it spends. `Err(index)` names the first child that
/// leaves a parent's dust unspent (Core: `missing-ephemeral-spends`).
pub fn check_ephemeral_spends(
    package: &[&Transaction],
    dust_relay_fee_sat_per_kvb: u64,
) -> Result<(), usize> {
    let txids: Vec<Txid> = package.iter().map(|tx| tx.compute_txid()).collect();
    for (index, tx) in package.iter().enumerate() {
        for parent in in_package_parents(package, &txids, index) {
            let unspent = dust_outputs(package[parent], dust_relay_fee_sat_per_kvb)
                .into_iter()
                .any(|vout| {
                    !tx.input.iter().any(|i| {
                        i.previous_output.txid == txids[parent] && i.previous_output.vout == vout
                    })
                });
            if unspent {
                return Err(index);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "truc_tests.rs"]
mod tests;
