//! A funded claim's answers: the wallet's inputs (assembled and checked), the signatures
//! (checked and put into witnesses), and broadcast results.

use std::collections::BTreeSet;

use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, ScriptBuf, Sequence, TxIn, Witness};
use serde::{Deserialize, Serialize};

use crate::action::{Action, AlertKind, SignInput, SignRequest, SigningKey};
use crate::bolt3::htlc_tx::htlc_tx_witness;
use crate::bolt3::weights::{output_weight, INPUT_NON_WITNESS_WEIGHT};
use crate::bolt3::witness::{anchor_owner_witness, pay_to_anchor_witness};
use crate::bolt3::{secp, sign};
use crate::event::{BroadcastOutcome, FundingOutcome, InputSignature, SignOutcome, WalletInput};
use crate::fee::{child_fee_for_rate, fee_for_rate};
use crate::fee::{DEFAULT_MIN_RELAY, DUST_RELAY_FEE_SAT_PER_KVB};
use crate::policy::dust_threshold;
use crate::policy::reject::is_already_known;
use crate::policy::truc::{TRUC_CHILD_MAX_VSIZE, TRUC_VERSION};
use crate::types::{Height, RawTx, RequestId};

use super::{Assembled, FundedAttempt, FundedClaim, OwnSpend, BUDGET_SLACK_SAT};

/// Why the wallet's answer cannot be used (reported; the next block asks again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FundingError {
    /// An input is unconfirmed (or confirmed above the tip).
    Unconfirmed,
    /// An input appears twice, or is the claim's own input.
    DuplicateInput,
    /// The inputs are worth less than the outputs.
    Overspends,
    /// The fee is below what the rate needs (and, where the rate would cost more than the
    /// budget, more than `BUDGET_SLACK_SAT` below the budget or below the minimum relay fee).
    FeeTooLow {
        /// What it pays.
        fee_sat: u64,
        /// What the rate needs.
        needed_sat: u64,
    },
    /// The fee is above the budget.
    OverBudget {
        /// What it pays.
        fee_sat: u64,
        /// The budget.
        budget_sat: u64,
    },
    /// The change output is dust.
    DustChange,
    /// The transaction would have no output.
    NoOutput,
    /// A version-3 child of an unconfirmed parent would exceed TRUC's 1,000 vB.
    TrucChildTooBig {
        /// Its weight.
        weight: u64,
    },
}

impl std::fmt::Display for FundingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FundingError::Unconfirmed => f.write_str("a wallet input is not confirmed"),
            FundingError::DuplicateInput => f.write_str("a wallet input is repeated"),
            FundingError::Overspends => f.write_str("the inputs are worth less than the outputs"),
            FundingError::FeeTooLow {
                fee_sat,
                needed_sat,
            } => write!(
                f,
                "fee {fee_sat} sat is below the {needed_sat} sat the rate needs"
            ),
            FundingError::OverBudget {
                fee_sat,
                budget_sat,
            } => write!(
                f,
                "fee {fee_sat} sat is above the budget of {budget_sat} sat"
            ),
            FundingError::DustChange => f.write_str("the change output is dust"),
            FundingError::NoOutput => f.write_str("the transaction would have no output"),
            FundingError::TrucChildTooBig { weight } => write!(
                f,
                "a version-3 child of weight {weight} exceeds {TRUC_CHILD_MAX_VSIZE} vB"
            ),
        }
    }
}

impl std::error::Error for FundingError {}

/// Assemble attempt `a` of `claim` from the wallet's inputs and change, and check it.
fn assemble(
    claim: &FundedClaim,
    a: &FundedAttempt,
    inputs: &[WalletInput],
    change: Option<&bitcoin::TxOut>,
    tip: Height,
) -> Result<Assembled, FundingError> {
    let t = &claim.template;
    let mut seen = BTreeSet::from([t.input.outpoint]);
    for w in inputs {
        if w.confirmation_height == 0 || w.confirmation_height > tip {
            return Err(FundingError::Unconfirmed);
        }
        if !seen.insert(w.outpoint) {
            return Err(FundingError::DuplicateInput);
        }
    }
    let mut tx = t.tx();
    tx.input.extend(inputs.iter().map(|w| TxIn {
        previous_output: w.outpoint,
        script_sig: ScriptBuf::new(),
        sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
        witness: Witness::new(),
    }));
    let mut weight = t.weight;
    for w in inputs {
        weight = weight
            .saturating_add(INPUT_NON_WITNESS_WEIGHT)
            .saturating_add(w.satisfaction_weight);
    }
    if let Some(c) = change {
        if c.value.to_sat() < dust_threshold(&c.script_pubkey, DUST_RELAY_FEE_SAT_PER_KVB) {
            return Err(FundingError::DustChange);
        }
        weight = weight.saturating_add(output_weight(c.script_pubkey.len()));
        tx.output.push(c.clone());
    }
    if tx.output.is_empty() {
        return Err(FundingError::NoOutput);
    }
    // Input and output counts above 252 take more varint bytes than the template counted.
    weight = weight.saturating_add(4 * 4);
    if t.version == TRUC_VERSION && t.parent.is_some() && weight.div_ceil(4) > TRUC_CHILD_MAX_VSIZE
    {
        return Err(FundingError::TrucChildTooBig { weight });
    }
    let value_in = inputs.iter().fold(t.input.txout.value.to_sat(), |s, w| {
        s.saturating_add(w.txout.value.to_sat())
    });
    let value_out: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    let fee_sat = value_in
        .checked_sub(value_out)
        .ok_or(FundingError::Overspends)?;
    let (parent_fee, parent_weight) = t.parent.as_ref().map_or((0, 0), |p| (p.fee_sat, p.weight));
    let needed_sat = child_fee_for_rate(a.feerate, weight, parent_fee, parent_weight)
        // The wallet plans with the weight it was told; allow the varint slack above.
        .saturating_sub(fee_for_rate(a.feerate, 4 * 4));
    // The rate at this weight would cost more than the budget: the wallet pays the budget
    // instead (see `FundingRequest::max_fee_sat`), as long as the package still relays.
    let pays_budget = needed_sat > a.max_fee_sat
        && fee_sat >= a.max_fee_sat.saturating_sub(BUDGET_SLACK_SAT)
        && fee_sat >= child_fee_for_rate(DEFAULT_MIN_RELAY, weight, parent_fee, parent_weight);
    if fee_sat < needed_sat && !pays_budget {
        return Err(FundingError::FeeTooLow {
            fee_sat,
            needed_sat,
        });
    }
    if fee_sat > a.max_fee_sat {
        return Err(FundingError::OverBudget {
            fee_sat,
            budget_sat: a.max_fee_sat,
        });
    }
    Ok(Assembled {
        txid: tx.compute_txid(),
        tx: RawTx(tx),
        wallet: inputs.to_vec(),
        fee_sat,
        weight,
        own_fee: false,
    })
}

impl FundedClaim {
    /// The sign request of an assembled attempt: our signature on the own input
    /// (`SIGHASH_ALL`, over the whole transaction), the wallet's on its inputs.
    pub(super) fn sign_request(&self, a: &FundedAttempt, x: &Assembled) -> SignRequest {
        let own = &self.template.input;
        let mut inputs = Vec::new();
        if own.spend != OwnSpend::PayToAnchor {
            inputs.push(SignInput {
                input: 0,
                prevout: own.outpoint,
                value_sat: own.txout.value.to_sat(),
                script: own.script.clone(),
                sighash: EcdsaSighashType::All,
                key: own.key.clone(),
            });
        }
        if x.own_fee {
            inputs.extend(self.own_fee_sign_input());
        }
        for (i, w) in x.wallet.iter().enumerate() {
            inputs.push(SignInput {
                input: u32::try_from(i + 1).unwrap_or(u32::MAX),
                prevout: w.outpoint,
                value_sat: w.txout.value.to_sat(),
                script: w.txout.script_pubkey.clone(),
                sighash: EcdsaSighashType::All,
                key: SigningKey::Wallet,
            });
        }
        SignRequest {
            request: self.request_id(a.attempt),
            tx: x.tx.clone(),
            inputs,
        }
    }

    /// The wallet answered attempt `request.attempt`: assemble and check the transaction, then
    /// ask for its signatures. A failure is reported once; the next block asks again.
    pub fn on_funded(
        &mut self,
        request: RequestId,
        outcome: &FundingOutcome,
        tip: Height,
    ) -> Vec<Action> {
        let Some(a) = self
            .current()
            .filter(|a| a.attempt == request.attempt)
            .cloned()
        else {
            return Vec::new(); // superseded: dropped
        };
        if a.assembled.is_some() {
            return Vec::new();
        }
        let outpoint = self.template.input.outpoint;
        let (inputs, change) = match outcome {
            FundingOutcome::Funded { inputs, change } => (inputs, change.as_ref()),
            FundingOutcome::Failed { reason } => {
                let message = format!(
                    "wallet cannot fund the claim of {outpoint}: {reason}; asking again next block"
                );
                return self.problem(
                    AlertKind::FeeReserveLow,
                    format!("wallet: {reason}"),
                    message,
                );
            }
        };
        match assemble(self, &a, inputs, change, tip) {
            Ok(x) => {
                let sign = self.sign_request(&a, &x);
                if let Some(stored) = self.attempts.get_mut(a.attempt as usize) {
                    stored.assembled = Some(x);
                }
                vec![Action::Sign(sign)]
            }
            Err(e) => {
                let message = format!(
                    "wallet's funding of the claim of {outpoint} is unusable: {e}; asking again next block"
                );
                self.problem(AlertKind::FeeReserveLow, format!("funding: {e}"), message)
            }
        }
    }

    /// The own input's witness from our signature in `signatures` (input 0, `SIGHASH_ALL`,
    /// verified against the own key); `None` if it is missing or does not verify.
    fn own_witness(&self, tx: &RawTx, signatures: &[InputSignature]) -> Option<Witness> {
        let own = &self.template.input;
        let our_sig = signatures.iter().find(|s| s.input == 0)?.signature;
        let valid = our_sig.sighash_type == EcdsaSighashType::All
            && sign::p2wsh_sighash(tx, 0, &own.script, own.txout.value, our_sig.sighash_type)
                .is_ok_and(|msg| {
                    secp()
                        .verify_ecdsa(&msg, &our_sig.signature, &own.pubkey)
                        .is_ok()
                });
        if !valid {
            return None;
        }
        Some(match &own.spend {
            OwnSpend::SecondLevel {
                remote_sig,
                preimage,
            } => htlc_tx_witness(remote_sig, &our_sig, preimage.as_ref(), &own.script),
            OwnSpend::Anchor => anchor_owner_witness(&our_sig, &own.script),
            OwnSpend::PayToAnchor => pay_to_anchor_witness(),
        })
    }

    /// The signatures of attempt `request.attempt` arrived: check ours, put the witnesses in,
    /// keep the signed transaction and broadcast it.
    pub fn on_signed(&mut self, request: RequestId, outcome: &SignOutcome) -> Vec<Action> {
        let Some(a) = self
            .current()
            .filter(|a| a.attempt == request.attempt)
            .cloned()
        else {
            return Vec::new();
        };
        let (Some(x), None) = (&a.assembled, &a.signed) else {
            return Vec::new();
        };
        let outpoint = self.template.input.outpoint;
        let (signatures, witnesses) = match outcome {
            SignOutcome::Signed {
                signatures,
                witnesses,
            } => (signatures, witnesses),
            SignOutcome::Failed { reason } => {
                let message = format!(
                    "signer refused the claim of {outpoint}: {reason}; asking again next block"
                );
                return self.problem(
                    AlertKind::ChannelFailure,
                    format!("signer: {reason}"),
                    message,
                );
            }
        };
        let own = &self.template.input;
        let own_witness = if own.spend == OwnSpend::PayToAnchor {
            pay_to_anchor_witness()
        } else {
            match self.own_witness(&x.tx, signatures) {
                Some(w) => w,
                None => {
                    let message =
                        format!("signer returned no valid signature for the claim of {outpoint}");
                    return self.problem(AlertKind::ChannelFailure, "signature".into(), message);
                }
            }
        };
        let mut tx = x.tx.0.clone();
        if let Some(input) = tx.input.first_mut() {
            input.witness = own_witness;
        }
        if x.own_fee {
            let Some(w) = self.own_fee_witness(&x.tx.0, signatures) else {
                let message = format!(
                    "signer returned no valid signature for the fee input of the claim of {outpoint}"
                );
                return self.problem(
                    AlertKind::ChannelFailure,
                    "fee input signature".into(),
                    message,
                );
            };
            if let Some(input) = tx.input.get_mut(1) {
                input.witness = w;
            }
        }
        for (i, input) in tx
            .input
            .iter_mut()
            .enumerate()
            .skip(1 + usize::from(x.own_fee))
        {
            let Some(w) = witnesses
                .iter()
                .find(|w| w.input as usize == i)
                .filter(|w| !w.witness.is_empty())
            else {
                let message = format!(
                    "wallet did not sign input {i} of the claim of {outpoint}; asking again next block"
                );
                return self.problem(
                    AlertKind::FeeReserveLow,
                    format!("wallet input {i}"),
                    message,
                );
            };
            input.witness = w.witness.clone();
        }
        let verified = verify_wallet_witnesses(&tx, &x.wallet);
        if let Err(i) = verified {
            let message = format!(
                "wallet's signature on input {i} of the claim of {outpoint} does not verify"
            );
            return self.problem(AlertKind::FeeReserveLow, format!("wallet sig {i}"), message);
        }
        if tx.weight().to_wu() > x.weight {
            let message = format!(
                "claim of {outpoint} weighs {}, above the {} it was priced for; not broadcast",
                tx.weight().to_wu(),
                x.weight
            );
            return self.problem(AlertKind::ChannelFailure, "weight".into(), message);
        }
        if let Some(stored) = self.attempts.get_mut(a.attempt as usize) {
            stored.signed = Some(RawTx(tx));
        }
        self.last_problem = None;
        self.rebroadcast().into_iter().collect()
    }

    /// A broadcast result: success and "already known" say nothing; a rejection is reported once
    /// (the claim rebroadcasts every block, and bumps as its fee function rises); no verdict
    /// from the node changes nothing (the next block's rebroadcast tries again).
    pub fn on_broadcast_result(&mut self, outcome: &BroadcastOutcome) -> Vec<Action> {
        match outcome {
            BroadcastOutcome::Accepted | BroadcastOutcome::NotDelivered { .. } => Vec::new(),
            BroadcastOutcome::Rejected { reason } if is_already_known(reason) => Vec::new(),
            BroadcastOutcome::Rejected { reason } => {
                if crate::policy::reject::classify_reject(reason)
                    == crate::policy::reject::RejectClass::InputsMissingOrSpent
                {
                    self.inputs_gone = true;
                }
                let outpoint = self.template.input.outpoint;
                let message = format!(
                    "broadcast of the claim of {outpoint} rejected: {reason}; rebroadcasting every block"
                );
                self.problem(
                    AlertKind::DeadlineAtRisk,
                    format!("rejected: {reason}"),
                    message,
                )
            }
        }
    }
}

/// Check the wallet's P2WPKH witnesses (a signature by the key whose hash the output commits
/// to, `SIGHASH_ALL`); other script types are left to the mempool. `Err(input)` names the
/// first that does not verify.
fn verify_wallet_witnesses(tx: &bitcoin::Transaction, wallet: &[WalletInput]) -> Result<(), usize> {
    for (i, w) in wallet.iter().enumerate() {
        let index = i + 1;
        if !w.txout.script_pubkey.is_p2wpkh() {
            continue;
        }
        let Some(witness) = tx.input.get(index).map(|x| &x.witness) else {
            return Err(index);
        };
        let ok = (|| {
            if witness.len() != 2 {
                return None;
            }
            let sig = bitcoin::ecdsa::Signature::from_slice(witness.nth(0)?).ok()?;
            let pk = bitcoin::CompressedPublicKey::from_slice(witness.nth(1)?).ok()?;
            if ScriptBuf::new_p2wpkh(&pk.wpubkey_hash()) != w.txout.script_pubkey {
                return None;
            }
            let msg = sign::p2wpkh_sighash(
                tx,
                index,
                &w.txout.script_pubkey,
                Amount::from_sat(w.txout.value.to_sat()),
                sig.sighash_type,
            )
            .ok()?;
            secp().verify_ecdsa(&msg, &sig.signature, &pk.0).ok()
        })();
        if ok.is_none() {
            return Err(index);
        }
    }
    Ok(())
}
