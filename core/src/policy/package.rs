//! Package relay: a child with its unconfirmed parents (a zero-fee HTLC transaction or a
//! low-fee commitment plus a fee-paying child) accepted together by their combined fee rate.

use std::collections::BTreeSet;

use bitcoin::{Transaction, TxOut, Txid};

use super::standard::{check_fee_rate, check_standard_except_fee_rate, fee_for_vsize};
use super::truc::{check_ephemeral_spends, check_package_truc};
use super::{PolicyConfig, PolicyError};

/// The most transactions in a package.
pub const MAX_PACKAGE_COUNT: usize = 25;
/// The heaviest package (weight units; 101 kvB).
pub const MAX_PACKAGE_WEIGHT: u64 = 404_000;

/// Whether a package would be accepted: `txs` is a child with its parents, parents first, each
/// with the prevouts of its inputs (a child's prevouts include its parents' outputs).
///
/// Every transaction must pass every rule of [`super::check_standard`] except its own fee rate.
/// The package must be a child with its parents: every transaction before the last is spent by
/// the last, no parent spends another, no transaction appears twice (a single transaction is a
/// package of one). At most [`MAX_PACKAGE_COUNT`] transactions weighing at most
/// [`MAX_PACKAGE_WEIGHT`] together. The TRUC rules hold within the package
/// ([`check_package_truc`]: a version-3 child of at most 1,000 vB with one version-3 parent, no
/// sibling, no version mixing) and every dust output of a parent (ephemeral dust, allowed only
/// in a parent paying no fee) is spent by the child ([`check_ephemeral_spends`]); breaking one
/// is a [`PolicyError::PackageMember`] naming the transaction.
///
/// Fees are evaluated as Bitcoin Core does: each transaction, in order, is first tried alone —
/// it enters the mempool if it pays the minimum relay fee for its own size and all its parents in
/// the package did. The rest (a low-fee parent, and a child of such a parent) must together pay
/// the minimum relay fee for their total virtual size. So a zero-fee parent is carried by its
/// child, but a child cannot lean on a parent that already pays for itself.
pub fn check_package_fee(
    txs: &[(&Transaction, &[TxOut])],
    config: &PolicyConfig,
) -> Result<(), PolicyError> {
    let Some(((child, _), parents)) = txs.split_last() else {
        return Err(PolicyError::PackageEmpty);
    };
    if txs.len() > MAX_PACKAGE_COUNT {
        return Err(PolicyError::PackageTooManyTransactions {
            count: txs.len(),
            max: MAX_PACKAGE_COUNT,
        });
    }
    let weight: u64 = txs.iter().map(|(tx, _)| tx.weight().to_wu()).sum();
    if weight > MAX_PACKAGE_WEIGHT {
        return Err(PolicyError::PackageTooHeavy {
            weight,
            max: MAX_PACKAGE_WEIGHT,
        });
    }

    let txids: Vec<Txid> = txs.iter().map(|(tx, _)| tx.compute_txid()).collect();
    let parent_txids: BTreeSet<Txid> = txids[..parents.len()].iter().copied().collect();
    if parent_txids.len() != parents.len() || parent_txids.contains(&txids[parents.len()]) {
        let index = first_duplicate(&txids);
        return Err(PolicyError::PackageNotChildWithParents { index });
    }
    let spent_by = |tx: &Transaction| -> BTreeSet<Txid> {
        tx.input.iter().map(|i| i.previous_output.txid).collect()
    };
    let child_spends = spent_by(child);
    for (index, ((parent, _), txid)) in parents.iter().zip(&txids).enumerate() {
        let spends_parent = spent_by(parent).iter().any(|t| parent_txids.contains(t));
        if !child_spends.contains(txid) || spends_parent {
            return Err(PolicyError::PackageNotChildWithParents { index });
        }
    }

    let members: Vec<&Transaction> = txs.iter().map(|(tx, _)| *tx).collect();
    check_package_truc(&members).map_err(|(index, v)| PolicyError::PackageMember {
        index,
        error: Box::new(PolicyError::Truc(v)),
    })?;

    // Each transaction alone first; a low-fee one (and the child of one) is deferred.
    let mut deferred_fee = 0u64;
    let mut deferred_vsize = 0u64;
    let mut any_parent_deferred = false;
    for (index, (tx, prevouts)) in txs.iter().enumerate() {
        let fee_sat = check_standard_except_fee_rate(tx, prevouts, config).map_err(|error| {
            PolicyError::PackageMember {
                index,
                error: Box::new(error),
            }
        })?;
        let vsize = tx.vsize() as u64;
        let is_child = index == parents.len();
        let alone = check_fee_rate(fee_sat, vsize, config).is_ok();
        if !alone || (is_child && any_parent_deferred) {
            any_parent_deferred |= !is_child;
            deferred_fee = deferred_fee.saturating_add(fee_sat);
            deferred_vsize += vsize;
        }
    }
    check_ephemeral_spends(&members, config.dust_relay_fee_sat_per_kvb).map_err(|index| {
        PolicyError::PackageMember {
            index,
            error: Box::new(PolicyError::MissingEphemeralSpends),
        }
    })?;
    if deferred_vsize > 0 {
        let min_fee_sat = fee_for_vsize(deferred_vsize, config.min_relay_fee_sat_per_kvb);
        if deferred_fee < min_fee_sat {
            return Err(PolicyError::PackageFeeBelowMinRelay {
                fee_sat: deferred_fee,
                min_fee_sat,
                vsize: deferred_vsize,
            });
        }
    }
    Ok(())
}

/// The index of the first transaction whose txid appeared earlier.
fn first_duplicate(txids: &[Txid]) -> usize {
    let mut seen = BTreeSet::new();
    txids
        .iter()
        .position(|t| !seen.insert(*t))
        .unwrap_or(txids.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testutil::*;
    use bitcoin::{Amount, OutPoint, ScriptBuf, Witness};

    const PARENT_IN: u64 = 100_000;

    /// A parent paying `parent_fee`, spending a to_local output into one P2WPKH output, and a
    /// child spending that output plus a P2WPKH coin, paying `child_fee`.
    fn package(
        parent_fee: u64,
        child_fee: u64,
    ) -> (Transaction, Vec<TxOut>, Transaction, Vec<TxOut>) {
        let script = to_local_script(144);
        let mut parent = spend(&[witness(&[&sig(), &[1]], &script)]);
        parent.output[0].value = Amount::from_sat(PARENT_IN - parent_fee);
        let parent_prevouts = vec![p2wsh_prevout(&script, PARENT_IN)];

        let mut child = spend(&[Witness::new(), Witness::new()]);
        child.input[0].previous_output = OutPoint {
            txid: parent.compute_txid(),
            vout: 0,
        };
        for input in &mut child.input {
            input.witness = Witness::from_slice(&[sig(), key().serialize().to_vec()]);
        }
        let wallet_coin = TxOut {
            value: Amount::from_sat(50_000),
            script_pubkey: p2wpkh_script(),
        };
        let child_prevouts = vec![parent.output[0].clone(), wallet_coin];
        let total_in: u64 = child_prevouts.iter().map(|o| o.value.to_sat()).sum();
        child.output[0].value = Amount::from_sat(total_in - child_fee);
        (parent, parent_prevouts, child, child_prevouts)
    }

    fn vsizes() -> (u64, u64) {
        let (p, _, c, _) = package(0, 0);
        (p.vsize() as u64, c.vsize() as u64)
    }

    #[test]
    fn zero_fee_parent_is_carried_by_a_child_paying_for_both() {
        let (pv, cv) = vsizes();
        let (p, pp, c, cp) = package(0, pv + cv);
        let config = PolicyConfig::default();
        // The parent alone is below the minimum relay fee...
        assert!(matches!(
            super::super::check_standard(&p, &pp, &config),
            Err(PolicyError::FeeBelowMinRelay { .. })
        ));
        // ...but the package is not.
        assert_eq!(check_package_fee(&[(&p, &pp), (&c, &cp)], &config), Ok(()));
    }

    #[test]
    fn package_one_sat_short_of_the_combined_minimum_is_refused() {
        let (pv, cv) = vsizes();
        let (p, pp, c, cp) = package(0, pv + cv - 1);
        assert_eq!(
            check_package_fee(&[(&p, &pp), (&c, &cp)], &PolicyConfig::default()),
            Err(PolicyError::PackageFeeBelowMinRelay {
                fee_sat: pv + cv - 1,
                min_fee_sat: pv + cv,
                vsize: pv + cv
            })
        );
    }

    #[test]
    fn a_zero_fee_child_cannot_lean_on_a_parent_that_pays_for_itself() {
        let (pv, cv) = vsizes();
        let (p, pp, c, cp) = package(pv + cv, 0);
        assert_eq!(
            check_package_fee(&[(&p, &pp), (&c, &cp)], &PolicyConfig::default()),
            Err(PolicyError::PackageFeeBelowMinRelay {
                fee_sat: 0,
                min_fee_sat: cv,
                vsize: cv
            })
        );
        // Both paying for themselves is fine.
        let (p, pp, c, cp) = package(pv, cv);
        assert_eq!(
            check_package_fee(&[(&p, &pp), (&c, &cp)], &PolicyConfig::default()),
            Ok(())
        );
    }

    #[test]
    fn members_must_still_be_standard_and_the_topology_child_with_parents() {
        let (pv, cv) = vsizes();
        let (p, pp, c, cp) = package(0, pv + cv);
        let config = PolicyConfig::default();
        // A dust output in the parent.
        let mut dusty = p.clone();
        dusty.output[0].script_pubkey = ScriptBuf::new_p2wsh(&to_local_script(1).wscript_hash());
        dusty.output[0].value = Amount::from_sat(329);
        let mut c2 = c.clone();
        c2.input[0].previous_output.txid = dusty.compute_txid();
        let err = check_package_fee(&[(&dusty, &pp), (&c2, &cp)], &config).unwrap_err();
        assert!(
            matches!(&err, PolicyError::PackageMember { index: 0, error } if matches!(**error, PolicyError::Dust { .. })),
            "{err}"
        );
        // Child first: the child does not spend the "parent".
        assert_eq!(
            check_package_fee(&[(&c, &cp), (&p, &pp)], &config),
            Err(PolicyError::PackageNotChildWithParents { index: 0 })
        );
        // The same parent twice.
        assert_eq!(
            check_package_fee(&[(&p, &pp), (&p, &pp), (&c, &cp)], &config),
            Err(PolicyError::PackageNotChildWithParents { index: 1 })
        );
        assert_eq!(
            check_package_fee(&[], &config),
            Err(PolicyError::PackageEmpty)
        );
        // A package of one is the transaction's own fee rate.
        assert!(check_package_fee(&[(&p, &pp)], &config).is_err());
        assert_eq!(check_package_fee(&[(&c, &cp)], &config), Ok(()));
    }
}
