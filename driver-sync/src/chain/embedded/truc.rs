//! The mempool's TRUC (version 3) and ephemeral dust rules against parents already in it, as
//! Bitcoin Core 29 applies them to a transaction submitted alone: `SingleTRUCChecks` with
//! sibling eviction ([`contractcourt_core::policy::truc_mempool`]) and `CheckEphemeralSpends`
//! against mempool parents; `PackageTRUCChecks` for a package whose members have mempool
//! parents; and Core's wordings of the package rules' TRUC and ephemeral dust refusals.

use std::collections::BTreeSet;

use bitcoin::{Transaction, TxOut, Txid};
use contractcourt_core::policy::truc::{dust_outputs, TrucViolation, TRUC_VERSION};
use contractcourt_core::policy::truc_mempool::{
    check_truc_with_mempool, missing_ephemeral_spends_reason, truc_details, MempoolParent,
    MISSING_EPHEMERAL_SPENDS_REASON,
};
use contractcourt_core::policy::{dust_threshold, PolicyError};

use super::{EmbeddedChain, MempoolReject};

/// Core's details of a missing ephemeral spend (the text after the reject reason).
fn missing_spends(child: &Transaction) -> MempoolReject {
    let reason = missing_ephemeral_spends_reason(child);
    let details = reason
        .strip_prefix(MISSING_EPHEMERAL_SPENDS_REASON)
        .and_then(|d| d.strip_prefix(", "))
        .unwrap_or(&reason)
        .to_owned();
    MempoolReject::MissingEphemeralSpends { details }
}

/// A standardness refusal in Core's words where Core words it apart: a TRUC size rule as
/// `TRUC-violation`, one dust output in a transaction paying a fee as `dust, tx with dust output
/// must be 0-fee`.
pub(super) fn standard_refusal(
    e: PolicyError,
    tx: &Transaction,
    prevouts: &[TxOut],
    dust_relay_fee_sat_per_kvb: u64,
) -> MempoolReject {
    match e {
        PolicyError::Truc(violation) => MempoolReject::Truc {
            details: truc_details(&violation, tx, None),
            violation,
        },
        PolicyError::Dust { .. }
            if dust_outputs(tx, dust_relay_fee_sat_per_kvb).len() == 1
                && pays_a_fee(tx, prevouts) =>
        {
            MempoolReject::DustNotZeroFee
        }
        other => MempoolReject::Policy(other),
    }
}

fn pays_a_fee(tx: &Transaction, prevouts: &[TxOut]) -> bool {
    let inputs: u64 = prevouts.iter().map(|o| o.value.to_sat()).sum();
    let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    inputs > outputs
}

/// A package refusal in Core's words: a member's TRUC or ephemeral dust rule names the member
/// (`index` in `package`) and the parent it concerns.
pub(super) fn package_refusal(e: PolicyError, package: &[&Transaction]) -> MempoolReject {
    let PolicyError::PackageMember { index, error } = e else {
        return MempoolReject::Policy(e);
    };
    let (Some(tx), parent) = (package.get(index), package.first().filter(|_| index > 0)) else {
        return MempoolReject::Policy(PolicyError::PackageMember { index, error });
    };
    let reject = match *error {
        PolicyError::Truc(violation) => MempoolReject::Truc {
            details: truc_details(&violation, tx, parent.copied()),
            violation,
        },
        PolicyError::MissingEphemeralSpends => missing_spends(tx),
        other => MempoolReject::Policy(other),
    };
    MempoolReject::PackageMember {
        index,
        reject: Box::new(reject),
    }
}

impl EmbeddedChain {
    /// Core's `SingleTRUCChecks` of `tx` against its mempool `parents`, with the mempool
    /// transactions it conflicts with directly: `Ok(Some(sibling))` when the parent's one child
    /// is to be considered for eviction (the replacement rules then decide; only with
    /// `sibling_eviction`, else that is a refusal), `Ok(None)` when nothing stands in the way.
    pub(super) fn truc_with_mempool(
        &self,
        tx: &Transaction,
        vsize: u64,
        parents: &BTreeSet<Txid>,
        conflicts: &BTreeSet<Txid>,
        sibling_eviction: bool,
    ) -> Result<Option<Txid>, MempoolReject> {
        let entries: Vec<_> = parents.iter().filter_map(|p| self.mempool.get(p)).collect();
        let infos: Vec<MempoolParent<'_>> = entries
            .iter()
            .map(|e| {
                let mut below = self.mempool.with_descendants(&BTreeSet::from([e.txid]));
                below.remove(&e.txid);
                MempoolParent {
                    tx: &e.tx,
                    ancestor_count: self.mempool.with_ancestors(e.txid).len(),
                    descendants: below
                        .into_iter()
                        .map(|d| (d, self.mempool.with_ancestors(d).len()))
                        .collect(),
                }
            })
            .collect();
        match check_truc_with_mempool(tx, vsize, &infos, conflicts) {
            Ok(()) => Ok(None),
            Err(r) if sibling_eviction && r.sibling.is_some() => Ok(r.sibling),
            Err(r) => Err(MempoolReject::Truc {
                violation: r.violation,
                details: r.details,
            }),
        }
    }

    /// Core's `CheckEphemeralSpends` of `tx` against its mempool `parents`: every dust output
    /// of each must be spent by `tx`.
    pub(super) fn ephemeral_spends_with_mempool(
        &self,
        tx: &Transaction,
        parents: &BTreeSet<Txid>,
    ) -> Result<(), MempoolReject> {
        let dust_fee = self.config.policy.dust_relay_fee_sat_per_kvb;
        for parent in parents.iter().filter_map(|p| self.mempool.get(p)) {
            let unspent = parent.tx.output.iter().zip(0u32..).any(|(o, vout)| {
                o.value.to_sat() < dust_threshold(&o.script_pubkey, dust_fee)
                    && !tx.input.iter().any(|i| {
                        i.previous_output.txid == parent.txid && i.previous_output.vout == vout
                    })
            });
            if unspent {
                return Err(missing_spends(tx));
            }
        }
        Ok(())
    }
}

/// Core 29's `PackageTRUCChecks` (`policy/truc_policy.cpp`) of a parent-and-child package whose
/// members have parents in the mempool (`parent_in_mempool`, `child_in_mempool`; the rules
/// within the package are the core's `check_package_fee`). A version-3 transaction has at most
/// one unconfirmed parent in all: a version-3 package parent with a mempool parent cannot have
/// the package's child (refused on the parent, naming the child: "can't have both a parent and
/// an in-package child"), and a version-3 child of the package parent cannot have a mempool
/// parent too.
pub(super) fn package_truc_checks(
    parent: &Transaction,
    parent_in_mempool: &BTreeSet<Txid>,
    child: &Transaction,
    child_in_mempool: &BTreeSet<Txid>,
) -> Result<(), MempoolReject> {
    let parent_txid = parent.compute_txid();
    let spends_parent = child
        .input
        .iter()
        .any(|i| i.previous_output.txid == parent_txid);
    let too_many = |index: usize| MempoolReject::PackageMember {
        index,
        reject: Box::new(MempoolReject::Truc {
            details: truc_details(&TrucViolation::TooManyAncestors, child, None),
            violation: TrucViolation::TooManyAncestors,
        }),
    };
    if !spends_parent {
        return Ok(());
    }
    if parent.version.0 == TRUC_VERSION && !parent_in_mempool.is_empty() {
        return Err(too_many(0));
    }
    if child.version.0 == TRUC_VERSION && !child_in_mempool.is_empty() {
        return Err(too_many(1));
    }
    Ok(())
}
