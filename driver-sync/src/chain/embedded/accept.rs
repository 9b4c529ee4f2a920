//! Mempool acceptance: what may enter, replacements, packages, and rebuilding the mempool
//! after the chain changes.
//!
//! A transaction enters only if Bitcoin Core's context-free checks pass, every input exists
//! (unspent in the chain, or an output of a mempool transaction), coinbase inputs are mature,
//! it is final at the next block height (`nLockTime`, BIP 68: the core's
//! [`policy::check_final`]), it is standard and pays the minimum relay fee
//! ([`policy::check_standard`]), every input verifies under Bitcoin Core's script interpreter
//! (the kernel, all consensus flags) and, if it conflicts with mempool transactions, it pays
//! for replacing them. It also meets the TRUC and ephemeral dust rules against its mempool
//! parents ([`super::truc`]): submitted alone, a version-3 parent's second child is refused, or
//! evicts the first by the replacement rules (sibling eviction); a package member is refused
//! (no sibling eviction), and a version-3 package counts its members' mempool parents among
//! their unconfirmed ancestors.

use std::collections::BTreeSet;

use bitcoin::{OutPoint, Transaction, TxOut, Txid};
use contractcourt_core::event::MempoolRemovalReason;
use contractcourt_core::policy::{self, PolicyError};
use contractcourt_core::types::Height;

use super::mempool::{MempoolChange, MempoolTx};
use super::mining::COINBASE_MATURITY;
use super::utxo::Overlay;
use super::{script, truc, EmbeddedChain, MempoolReject, TxFault};

/// How a transaction is being admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Submitted on its own: every rule, replacements allowed.
    Single,
    /// A member of a package: its own fee rate is not checked (the package's is), no
    /// replacements.
    PackageMember,
    /// Re-admitted after a block (an old mempool entry, or back from a disconnected block): its
    /// fee rate is not checked again, no replacements.
    Rebuild,
}

/// A transaction that passed every check but replacement.
pub(super) struct Checked {
    pub(super) entry: MempoolTx,
    pub(super) prevouts: Vec<TxOut>,
    /// Mempool transactions spending the same outpoints.
    conflicts: BTreeSet<Txid>,
    /// Mempool transactions whose outputs it spends.
    parents: BTreeSet<Txid>,
    /// A TRUC sibling it would evict (counted among the conflicts).
    sibling: Option<Txid>,
}

/// Accepted package members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackageAccepted {
    /// The parent's txid.
    pub parent: Txid,
    /// The child's txid.
    pub child: Txid,
}

fn classify_final(e: PolicyError) -> MempoolReject {
    match e {
        PolicyError::RelativeLockNotReached { .. }
        | PolicyError::RelativeTimeLockUnsupported { .. } => MempoolReject::Bip68NotMet(e),
        other => MempoolReject::NonFinal(other),
    }
}

fn member(index: usize) -> impl Fn(MempoolReject) -> MempoolReject {
    move |reject| MempoolReject::PackageMember {
        index,
        reject: Box::new(reject),
    }
}

/// Inputs minus outputs, or why not.
fn fee_of(tx: &Transaction, prevouts: &[TxOut]) -> Result<u64, MempoolReject> {
    let out_of_range = || MempoolReject::Invalid {
        reason: "value out of range".to_owned(),
    };
    let inputs_sat = prevouts
        .iter()
        .try_fold(0u64, |s, o| s.checked_add(o.value.to_sat()))
        .ok_or_else(out_of_range)?;
    let outputs_sat = tx
        .output
        .iter()
        .try_fold(0u64, |s, o| s.checked_add(o.value.to_sat()))
        .ok_or_else(out_of_range)?;
    inputs_sat
        .checked_sub(outputs_sat)
        .ok_or(MempoolReject::InputsBelowOutputs {
            inputs_sat,
            outputs_sat,
        })
}

impl EmbeddedChain {
    /// Every check but replacement, for a transaction offered at the next block height.
    /// `pending_parent` is a package parent not yet in the mempool whose outputs count as
    /// unconfirmed.
    pub(super) fn check_tx(
        &self,
        tx: &Transaction,
        pending_parent: Option<&Transaction>,
        mode: Mode,
    ) -> Result<Checked, MempoolReject> {
        let txid = tx.compute_txid();
        if self.mempool.get(&txid).is_some() {
            return Err(MempoolReject::AlreadyKnown { txid });
        }
        if let Some(&height) = self.tx_heights.get(&txid) {
            return Err(MempoolReject::AlreadyConfirmed { txid, height });
        }
        if tx.is_coinbase() {
            return Err(MempoolReject::Coinbase);
        }
        script::check_transaction(tx)?;

        let spend_height = self.height() + 1;
        let pending_txid = pending_parent.map(Transaction::compute_txid);
        let mut prevouts = Vec::with_capacity(tx.input.len());
        let mut heights = Vec::with_capacity(tx.input.len());
        let mut missing = Vec::new();
        let mut conflicts = BTreeSet::new();
        let mut parents = BTreeSet::new();
        for (input, txin) in tx.input.iter().enumerate() {
            let outpoint = txin.previous_output;
            if let Some(spender) = self.mempool.spender(&outpoint) {
                conflicts.insert(spender);
            }
            let pending_output = pending_parent
                .filter(|_| pending_txid == Some(outpoint.txid))
                .and_then(|p| p.output.get(outpoint.vout as usize));
            if let Some(out) = pending_output {
                prevouts.push(out.clone());
                heights.push(None);
            } else if let Some(out) = self.mempool.output(&outpoint) {
                parents.insert(outpoint.txid);
                prevouts.push(out.clone());
                heights.push(None);
            } else if let Some(coin) = self.utxos.get(&outpoint) {
                if coin.is_coinbase && spend_height.saturating_sub(coin.height) < COINBASE_MATURITY
                {
                    return Err(MempoolReject::ImmatureCoinbase {
                        input,
                        confirmed_at: coin.height,
                        spendable_at: coin.height + COINBASE_MATURITY,
                    });
                }
                prevouts.push(coin.txout.clone());
                heights.push(Some(coin.height));
            } else {
                missing.push(outpoint);
            }
        }
        if !missing.is_empty() {
            return Err(MempoolReject::MissingInputs { outpoints: missing });
        }
        let fee_sat = fee_of(tx, &prevouts)?;
        policy::check_final(tx, spend_height, &heights).map_err(classify_final)?;
        let dust_fee = self.config.policy.dust_relay_fee_sat_per_kvb;
        match policy::check_standard(tx, &prevouts, &self.config.policy) {
            Ok(()) => {}
            // The fee rate is the last rule checked: everything else passed.
            Err(PolicyError::FeeBelowMinRelay { .. }) if mode != Mode::Single => {}
            Err(e) => return Err(truc::standard_refusal(e, tx, &prevouts, dust_fee)),
        }
        let mut sibling = None;
        match mode {
            Mode::Single => {
                sibling =
                    self.truc_with_mempool(tx, tx.vsize() as u64, &parents, &conflicts, true)?;
                conflicts.extend(sibling);
                self.ephemeral_spends_with_mempool(tx, &parents)?;
            }
            // The same rules against its parents in the mempool, without sibling eviction (Core
            // allows it only to a transaction submitted alone).
            Mode::PackageMember => {
                self.truc_with_mempool(tx, tx.vsize() as u64, &parents, &conflicts, false)?;
                self.ephemeral_spends_with_mempool(tx, &parents)?;
            }
            // Core applies neither on a reorg's rebuild (`MaybeUpdateMempoolForReorg`: "TRUC
            // rules are not applied here").
            Mode::Rebuild => {}
        }
        script::verify_scripts(tx, &prevouts)?;
        Ok(Checked {
            entry: MempoolTx {
                tx: tx.clone(),
                txid,
                fee_sat,
                vsize: tx.vsize() as u64,
                weight: tx.weight().to_wu(),
            },
            prevouts,
            conflicts,
            parents,
            sibling,
        })
    }

    /// The replacement rules; returns the transactions to evict (the conflicts and their
    /// descendants). A replacement must pay a higher fee rate than each transaction it directly
    /// conflicts with, and at least the fees of everything it evicts plus the incremental relay
    /// fee for its own virtual size.
    pub(super) fn replacement_check(
        &self,
        checked: &Checked,
        mode: Mode,
    ) -> Result<BTreeSet<Txid>, MempoolReject> {
        let Some(&first) = checked.conflicts.iter().next() else {
            return Ok(BTreeSet::new());
        };
        if mode != Mode::Single {
            return Err(MempoolReject::Conflict { txid: first });
        }
        let evicted = self.mempool.with_descendants(&checked.conflicts);
        if evicted.len() > self.config.max_replacements {
            return Err(MempoolReject::TooManyReplacements {
                count: evicted.len(),
                max: self.config.max_replacements,
            });
        }
        if let Some(&txid) = checked.parents.iter().find(|p| evicted.contains(*p)) {
            return Err(MempoolReject::SpendsConflictingTx { txid });
        }
        let (fee_sat, vsize) = (checked.entry.fee_sat, checked.entry.vsize);
        let (txid, sibling_eviction) = (checked.entry.txid, checked.sibling.is_some());
        for conflict_txid in &checked.conflicts {
            let Some(conflict) = self.mempool.get(conflict_txid) else {
                continue;
            };
            if u128::from(fee_sat) * u128::from(conflict.vsize)
                <= u128::from(conflict.fee_sat) * u128::from(vsize)
            {
                return Err(MempoolReject::ReplacementFeeRateTooLow {
                    txid,
                    sibling_eviction,
                    conflict: *conflict_txid,
                    fee_sat,
                    vsize,
                    conflict_fee_sat: conflict.fee_sat,
                    conflict_vsize: conflict.vsize,
                });
            }
        }
        let evicted_fees: u64 = evicted
            .iter()
            .filter_map(|t| self.mempool.get(t))
            .map(|t| t.fee_sat)
            .sum();
        let required_sat = evicted_fees.saturating_add(policy::fee_for_vsize(
            vsize,
            self.config.incremental_relay_fee_sat_per_kvb,
        ));
        if fee_sat < required_sat {
            return Err(MempoolReject::InsufficientReplacementFee {
                txid,
                sibling_eviction,
                conflicting_sat: evicted_fees,
                fee_sat,
                required_sat,
            });
        }
        Ok(evicted)
    }

    /// Evict `evicted` (replaced by the new transaction) and insert it.
    fn admit(&mut self, checked: Checked, evicted: BTreeSet<Txid>) -> Txid {
        let txid = checked.entry.txid;
        for old in evicted {
            if self.mempool.remove(&old).is_some() {
                self.changes.push(MempoolChange::Removed {
                    txid: old,
                    reason: MempoolRemovalReason::Replaced { by: Some(txid) },
                });
            }
        }
        self.changes
            .push(MempoolChange::Added(checked.entry.clone()));
        self.mempool.insert(checked.entry);
        txid
    }

    /// Offer a transaction to the mempool (Bitcoin Core's `sendrawtransaction`).
    pub fn submit(&mut self, tx: Transaction) -> Result<Txid, MempoolReject> {
        let checked = self.check_tx(&tx, None, Mode::Single)?;
        let evicted = self.replacement_check(&checked, Mode::Single)?;
        Ok(self.admit(checked, evicted))
    }

    /// Offer a parent and a child spending it (Bitcoin Core's `submitpackage`).
    ///
    /// As in Bitcoin Core, the parent is first tried alone: if it pays its own way it enters,
    /// and the child is then submitted alone (if the child fails, the parent stays). A parent
    /// refused only for its fee rate (a zero-fee commitment or HTLC transaction) enters with
    /// its child if both pass every other rule and their fees together meet the package rule
    /// ([`policy::check_package_fee`]). Package members may not replace mempool transactions.
    /// Errors name the member (`PackageMember { index: 0 | 1, .. }`) unless they concern the
    /// package as a whole.
    pub fn submit_package(
        &mut self,
        parent: Transaction,
        child: Transaction,
    ) -> Result<PackageAccepted, MempoolReject> {
        let parent_txid = parent.compute_txid();
        let known =
            self.mempool.get(&parent_txid).is_some() || self.tx_heights.contains_key(&parent_txid);
        if !known {
            let alone = self
                .check_tx(&parent, None, Mode::Single)
                .and_then(|c| Ok((self.replacement_check(&c, Mode::Single)?, c)));
            match alone {
                Ok((evicted, checked)) => {
                    self.admit(checked, evicted);
                }
                Err(MempoolReject::Policy(PolicyError::FeeBelowMinRelay { .. })) => {
                    return self.admit_package(&parent, &child);
                }
                Err(e) => return Err(member(0)(e)),
            }
        }
        let child = self.submit(child).map_err(member(1))?;
        Ok(PackageAccepted {
            parent: parent_txid,
            child,
        })
    }

    fn admit_package(
        &mut self,
        parent: &Transaction,
        child: &Transaction,
    ) -> Result<PackageAccepted, MempoolReject> {
        let p = self
            .check_tx(parent, None, Mode::PackageMember)
            .map_err(member(0))?;
        self.replacement_check(&p, Mode::PackageMember)
            .map_err(member(0))?;
        let c = self
            .check_tx(child, Some(parent), Mode::PackageMember)
            .map_err(member(1))?;
        self.replacement_check(&c, Mode::PackageMember)
            .map_err(member(1))?;
        truc::package_truc_checks(parent, &p.parents, child, &c.parents)?;
        policy::check_package_fee(
            &[(parent, &p.prevouts[..]), (child, &c.prevouts[..])],
            &self.config.policy,
        )
        .map_err(|e| truc::package_refusal(e, &[parent, child]))?;
        let parent = self.admit(p, BTreeSet::new());
        let child = self.admit(c, BTreeSet::new());
        Ok(PackageAccepted { parent, child })
    }

    /// Rebuild the mempool after the chain changed: transactions of disconnected blocks
    /// (`resurrected`, parents first) that the new chain does not contain come back if still
    /// valid; every old entry is checked again at the new tip (confirmed ones leave as
    /// `Confirmed`, ones whose inputs a block spent, or whose parents left so, as `Conflict`,
    /// others that no longer pass as `Evicted`). Fee rates are not checked again.
    pub(super) fn rebuild_mempool(
        &mut self,
        resurrected: Vec<Transaction>,
        spent_by_blocks: &BTreeSet<OutPoint>,
    ) {
        let old = self.mempool.drain();
        let old_ids: BTreeSet<Txid> = old.iter().map(|e| e.txid).collect();
        let mut candidates: Vec<Transaction> = resurrected
            .into_iter()
            .filter(|tx| !tx.is_coinbase())
            .collect();
        for entry in old {
            if self.tx_heights.contains_key(&entry.txid) {
                self.changes.push(MempoolChange::Removed {
                    txid: entry.txid,
                    reason: MempoolRemovalReason::Confirmed,
                });
            } else {
                candidates.push(entry.tx);
            }
        }
        let mut conflicted = BTreeSet::new();
        for tx in candidates {
            let txid = tx.compute_txid();
            if self.mempool.get(&txid).is_some() || self.tx_heights.contains_key(&txid) {
                continue;
            }
            let result = self
                .check_tx(&tx, None, Mode::Rebuild)
                .and_then(|c| self.replacement_check(&c, Mode::Rebuild).map(|_| c));
            match result {
                Ok(checked) if old_ids.contains(&txid) => self.mempool.insert(checked.entry),
                Ok(checked) => {
                    self.admit(checked, BTreeSet::new());
                }
                Err(_) if old_ids.contains(&txid) => {
                    let conflict = tx.input.iter().any(|i| {
                        spent_by_blocks.contains(&i.previous_output)
                            || conflicted.contains(&i.previous_output.txid)
                    });
                    let reason = if conflict {
                        conflicted.insert(txid);
                        MempoolRemovalReason::Conflict
                    } else {
                        MempoolRemovalReason::Evicted
                    };
                    self.changes.push(MempoolChange::Removed { txid, reason });
                }
                Err(_) => {}
            }
        }
    }

    /// The first transaction of `block` (to be connected at `height` on top of `view`) that
    /// fails a consensus check, as an explanation of a refusal by the kernel.
    pub(super) fn diagnose(
        &self,
        mut view: Overlay<'_>,
        block: &bitcoin::Block,
        height: Height,
    ) -> Option<TxFault> {
        for (index, tx) in block.txdata.iter().enumerate().skip(1) {
            if let Err(reason) = consensus_check(&view, tx, height) {
                return Some(TxFault {
                    index,
                    txid: tx.compute_txid(),
                    reason,
                });
            }
            view.apply_tx(tx, height);
        }
        None
    }
}

/// The consensus checks of one block transaction at `height` on top of `view` (no policy).
fn consensus_check(
    view: &Overlay<'_>,
    tx: &Transaction,
    height: Height,
) -> Result<(), MempoolReject> {
    if tx.is_coinbase() {
        return Err(MempoolReject::Coinbase);
    }
    script::check_transaction(tx)?;
    let mut prevouts = Vec::with_capacity(tx.input.len());
    let mut heights = Vec::with_capacity(tx.input.len());
    let mut missing = Vec::new();
    for (input, txin) in tx.input.iter().enumerate() {
        match view.get(&txin.previous_output) {
            Some(coin) => {
                if coin.is_coinbase && height.saturating_sub(coin.height) < COINBASE_MATURITY {
                    return Err(MempoolReject::ImmatureCoinbase {
                        input,
                        confirmed_at: coin.height,
                        spendable_at: coin.height + COINBASE_MATURITY,
                    });
                }
                prevouts.push(coin.txout.clone());
                heights.push(Some(coin.height));
            }
            None => missing.push(txin.previous_output),
        }
    }
    if !missing.is_empty() {
        return Err(MempoolReject::MissingInputs { outpoints: missing });
    }
    fee_of(tx, &prevouts)?;
    policy::check_final(tx, height, &heights).map_err(classify_final)?;
    script::verify_scripts(tx, &prevouts)
}
