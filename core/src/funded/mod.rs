//! Wallet-funded claims: transactions whose fee comes from wallet inputs — the zero-fee HTLC
//! transactions of anchors channels (`SIGHASH_SINGLE|ANYONECANPAY` from the peer) and the CPFP
//! children that spend our anchor to pay for a commitment.
//!
//! A [`FundedClaim`] owns one *own input* (the HTLC output, or our anchor) with its outputs (the
//! [`Template`]). Block by block it decides a fee rate — the sweeper's linear fee function from
//! the estimate toward the budget's rate at the deadline — and for each new rate makes an
//! attempt: ask the wallet for confirmed inputs and one change output
//! ([`Action::FundFromWallet`]), assemble the transaction itself (own input `i` stays at output
//! `i`; wallet inputs and change are appended), check its fee against the rate and the budget and
//! its change against dust, then ask for the signatures (ours for the own input, the wallet's for
//! its inputs), assemble the witnesses and broadcast — alone, or with the unconfirmed parent as a
//! package. A later attempt reuses the inputs of the one it replaces, so bumps conflict with
//! each other and pay BIP 125's increment over them. Until an attempt is out, nothing needs
//! outbidding: the price follows the current conditions every block (down as well as up), and a
//! request the wallet could not fill is asked again at that price every block. When several
//! claims ask in one step, the nearest deadlines ask first ([`fund_nearest_deadlines_first`]),
//! so a wallet too thin for all of them funds the most urgent.
//!
//! Pure and deterministic: no clock, no randomness; every answer carries the attempt it answers,
//! and an answer for an attempt that is not the current one is dropped.

mod assemble;
mod order;
mod own_fee;
mod select;
#[cfg(test)]
mod tests;

use bitcoin::absolute::LockTime;
use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::transaction::Version;
use bitcoin::{FeeRate, OutPoint, ScriptBuf, Sequence, TxOut, Txid};
use serde::{Deserialize, Serialize};

use crate::action::{Action, AlertKind, FundingRequest, Report, SigningKey};
use crate::bolt3::weights::{output_weight, INPUT_NON_WITNESS_WEIGHT, P2WPKH_SCRIPT_PUBKEY_LEN};
use crate::bolt3::PaymentPreimage;
use crate::event::FeeConditions;
use crate::fee::{
    budget_rate, estimate_for, fee_for_rate, incremental_relay, relay_floor, FeeFunction, FeePlan,
};
use crate::types::{ChannelId, ClaimId, Height, RawTx, RequestId};

pub use assemble::FundingError;
pub use order::fund_nearest_deadlines_first;
pub use own_fee::FeeInput;
pub use select::select_inputs;

/// How far below its budget a claim may pay when it pays the budget rather than its rate (the
/// rate at the weight of the wallet's inputs would cost more): room to keep the change output
/// above dust (546 sat, the largest standard dust threshold, of a P2PKH output).
pub const BUDGET_SLACK_SAT: u64 = 546;

/// The weight a P2WPKH wallet input adds once signed: 41 non-witness bytes and a witness of
/// a 73-byte signature and a 33-byte key. Used to plan a fee before the wallet answers.
pub const P2WPKH_INPUT_WEIGHT: u64 = INPUT_NON_WITNESS_WEIGHT + 1 + 1 + 73 + 1 + 33;

/// How the own input is spent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OwnSpend {
    /// A second-level HTLC transaction's input: the peer's `SIGHASH_SINGLE|ANYONECANPAY`
    /// signature, ours (`SIGHASH_ALL`), and the preimage for an HTLC-success.
    SecondLevel {
        /// The peer's signature.
        remote_sig: Signature,
        /// The preimage (HTLC-success only).
        preimage: Option<PaymentPreimage>,
    },
    /// Our anchor, spent with our funding key.
    Anchor,
    /// The shared pay-to-anchor output of a zero-fee commitment: an empty witness, no signature
    /// of ours.
    PayToAnchor,
}

/// The input a funded claim exists to spend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnInput {
    /// The output spent.
    pub outpoint: OutPoint,
    /// Its value and script.
    pub txout: TxOut,
    /// Its nSequence (1 for an anchors HTLC transaction, per BOLT 3).
    pub sequence: Sequence,
    /// The witness script.
    pub script: ScriptBuf,
    /// Our key for it.
    pub key: SigningKey,
    /// The public key our signature must verify against.
    pub pubkey: PublicKey,
    /// How the witness is made.
    pub spend: OwnSpend,
}

/// An unconfirmed parent a CPFP child pays for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// The parent, signed.
    pub tx: RawTx,
    /// Its fee.
    pub fee_sat: u64,
    /// Its weight.
    pub weight: u64,
}

/// What is funded: the own input and outputs, before wallet inputs and change are added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// The own input (input 0).
    pub input: OwnInput,
    /// The own outputs (output `i` pairs with own input `i` for `SIGHASH_SINGLE`).
    pub outputs: Vec<TxOut>,
    /// The version.
    pub version: i32,
    /// The nLockTime (an HTLC-timeout's `cltv_expiry`; 0 otherwise).
    pub lock_time: u32,
    /// The weight of the template alone once its own input is signed (envelope included).
    pub weight: u64,
    /// For a CPFP child, the parent it pays for.
    pub parent: Option<Parent>,
    /// An output of ours that pays the fee instead of the wallet when it suffices (our
    /// `to_remote` on the peer's zero-fee commitment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_input: Option<FeeInput>,
}

impl Template {
    /// The unsigned template transaction.
    pub fn tx(&self) -> bitcoin::Transaction {
        bitcoin::Transaction {
            version: Version(self.version),
            lock_time: LockTime::from_consensus(self.lock_time),
            input: vec![bitcoin::TxIn {
                previous_output: self.input.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: self.input.sequence,
                witness: bitcoin::Witness::new(),
            }],
            output: self.outputs.clone(),
        }
    }

    /// The own outputs' total value.
    pub fn outputs_sat(&self) -> u64 {
        self.outputs.iter().map(|o| o.value.to_sat()).sum()
    }

    /// The weight planned before the wallet answers: the template, one P2WPKH wallet input and
    /// a P2WPKH change output.
    pub fn planned_weight(&self) -> u64 {
        self.weight + P2WPKH_INPUT_WEIGHT + output_weight(P2WPKH_SCRIPT_PUBKEY_LEN)
    }
}

/// The wallet's inputs assembled into an attempt's transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assembled {
    /// The unsigned transaction.
    pub tx: RawTx,
    /// Its txid.
    pub txid: Txid,
    /// The wallet inputs (inputs 1..).
    pub wallet: Vec<crate::event::WalletInput>,
    /// Its fee.
    pub fee_sat: u64,
    /// Its predicted weight once signed.
    pub weight: u64,
    /// Paid by the template's fee input (input 1) instead of wallet inputs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own_fee: bool,
}

/// One attempt: a fee rate, the wallet's answer, the signed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundedAttempt {
    /// Its number: the `attempt` of its [`RequestId`].
    pub attempt: u32,
    /// The fee rate asked for (of parent + child, for CPFP).
    pub feerate: FeeRate,
    /// The most the wallet may add in fees.
    pub max_fee_sat: u64,
    /// The tip when it was decided.
    pub decided_at: Height,
    /// The assembled transaction, once the wallet answered.
    pub assembled: Option<Assembled>,
    /// The signed transaction, once the signatures arrived.
    pub signed: Option<RawTx>,
}

/// A wallet-funded claim of one own input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundedClaim {
    /// The claim.
    pub claim: ClaimId,
    /// The channel.
    pub channel: ChannelId,
    /// What is funded.
    pub template: Template,
    /// The height by which it must confirm.
    pub deadline: Height,
    /// The most it may pay in fees.
    pub budget_sat: u64,
    /// The fee line's start: set at the first evaluation, then at each new attempt while none is
    /// signed (those are priced from the current conditions); fixed once one is signed.
    pub plan: Option<FeePlan>,
    /// Every attempt, in order.
    pub attempts: Vec<FundedAttempt>,
    /// The last problem reported, so a repeat is not re-reported.
    pub last_problem: Option<String>,
    /// The newest attempt's broadcast was refused for missing or spent inputs — a wallet coin
    /// whose creating transaction a reorg dropped, or one spent elsewhere: the next block funds
    /// a new attempt from the wallet afresh (reusing none of the old inputs), whatever its price,
    /// since there is nothing valid in flight to outbid.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inputs_gone: bool,
}

impl FundedClaim {
    /// A new claim with no attempt yet.
    pub fn new(
        claim: ClaimId,
        channel: ChannelId,
        template: Template,
        deadline: Height,
        budget_sat: u64,
    ) -> FundedClaim {
        FundedClaim {
            claim,
            channel,
            template,
            deadline,
            budget_sat,
            plan: None,
            attempts: Vec::new(),
            last_problem: None,
            inputs_gone: false,
        }
    }

    /// The request tag of attempt `attempt`.
    pub fn request_id(&self, attempt: u32) -> RequestId {
        RequestId {
            claim: self.claim,
            attempt,
        }
    }

    /// The newest attempt.
    pub fn current(&self) -> Option<&FundedAttempt> {
        self.attempts.last()
    }

    /// The newest signed attempt: the one kept broadcast.
    pub fn best_signed(&self) -> Option<&FundedAttempt> {
        self.attempts.iter().rev().find(|a| a.signed.is_some())
    }

    /// Whether `txid` is one of its attempts.
    pub fn is_ours(&self, txid: &Txid) -> bool {
        self.attempts
            .iter()
            .any(|a| a.assembled.as_ref().is_some_and(|x| x.txid == *txid))
    }

    /// The fee of the attempt whose txid is `txid`, or of the newest signed one.
    pub fn fee_paid(&self, txid: Option<&Txid>) -> Option<u64> {
        let of = |a: &FundedAttempt| a.assembled.as_ref().map(|x| x.fee_sat);
        match txid {
            Some(t) => self
                .attempts
                .iter()
                .find(|a| a.assembled.as_ref().is_some_and(|x| x.txid == *t))
                .and_then(of),
            None => self.best_signed().and_then(of),
        }
    }

    /// The rate the fee function asks for in block `tip + 1`, and the plan it comes from.
    fn plan_rate(
        &mut self,
        tip: Height,
        fees: Option<&FeeConditions>,
        fallback: FeeRate,
    ) -> (FeeRate, FeePlan) {
        let weight = self.total_planned_weight();
        let parent_fee = self.template.parent.as_ref().map_or(0, |p| p.fee_sat);
        let end = budget_rate(self.budget(fees).saturating_add(parent_fee), weight);
        let target = tip.saturating_add(1);
        let market = estimate_for(fees, self.deadline.saturating_sub(tip), fallback);
        let fresh = FeePlan {
            start: market,
            start_height: target,
        };
        let stored = *self.plan.get_or_insert(fresh);
        // Nothing of this claim was ever broadcast (the wallet could not fund it, or has not
        // answered yet): there is nothing to outbid, so its line starts afresh from the current
        // conditions — a spike that has ended leaves no trace in its price. Once an attempt is
        // out, the line is fixed (the plan of the attempts priced from it) and rises from it,
        // and every replacement outbids it.
        let plan = if self.best_signed().is_none() {
            fresh
        } else {
            stored
        };
        let rate =
            FeeFunction::new(plan, end, self.deadline).rate_at(target, market, relay_floor(fees));
        (rate, plan)
    }

    /// The least fee that makes it relay at the minimum relay fee: on its own, and with its
    /// parent as a package (the parent's own fee counts toward the package).
    fn relay_minimum_sat(&self, fees: Option<&FeeConditions>) -> u64 {
        let (parent_fee, parent_weight) = self
            .template
            .parent
            .as_ref()
            .map_or((0, 0), |p| (p.fee_sat, p.weight));
        crate::fee::child_fee_for_rate(
            crate::fee::min_relay(fees),
            self.template.planned_weight(),
            parent_fee,
            parent_weight,
        )
    }

    /// The most it may pay: its budget — raised, when its parent cannot relay alone (a zero-fee
    /// commitment, or one paying below the minimum relay fee), to what relays the package at
    /// all. Such a parent reaches the chain only through its child: a budget below the package's
    /// minimum would leave the close, and every balance on it, off the chain for good.
    pub fn budget(&self, fees: Option<&FeeConditions>) -> u64 {
        let relay = crate::fee::min_relay(fees);
        match &self.template.parent {
            Some(p) if p.fee_sat < fee_for_rate(relay, p.weight) => {
                self.budget_sat.max(self.relay_minimum_sat(fees))
            }
            _ => self.budget_sat,
        }
    }

    fn total_planned_weight(&self) -> u64 {
        let parent = self.template.parent.as_ref().map_or(0, |p| p.weight);
        self.template.planned_weight().saturating_add(parent)
    }

    /// The funding request of attempt `a`.
    fn funding_request(&self, a: &FundedAttempt) -> FundingRequest {
        let reuse = self
            .attempts
            .iter()
            .rev()
            .filter(|x| x.attempt < a.attempt)
            .find_map(|x| x.assembled.as_ref())
            .map(|x| x.wallet.iter().map(|w| w.outpoint).collect())
            .unwrap_or_default();
        let parent = self.template.parent.as_ref();
        FundingRequest {
            request: self.request_id(a.attempt),
            template: RawTx(self.template.tx()),
            template_weight: self.template.weight,
            template_inputs_sat: self.template.input.txout.value.to_sat(),
            parent_fee_sat: parent.map_or(0, |p| p.fee_sat),
            parent_weight: parent.map_or(0, |p| p.weight),
            parent: parent.map(|p| p.tx.compute_txid()),
            target_feerate: a.feerate,
            max_fee_sat: a.max_fee_sat,
            reuse,
            change_script: None,
        }
    }

    /// The broadcast of the newest signed attempt: alone, or as a package with its parent.
    pub fn rebroadcast(&self) -> Option<Action> {
        let best = self.best_signed()?;
        let tx = best.signed.clone()?;
        let request = self.request_id(best.attempt);
        Some(match &self.template.parent {
            Some(p) => Action::BroadcastPackage {
                request,
                parent: p.tx.clone(),
                child: tx,
            },
            None => Action::Broadcast { request, tx },
        })
    }

    /// What the claim does at block `tip` (offering for `tip + 1`): rebroadcast what it has,
    /// start a new attempt when the fee function has risen by BIP 125's increment over the
    /// current one, or — while the wallet has not funded the current attempt — when the price
    /// moved at all (and still outbids what is in flight), or ask again for what the current
    /// attempt waits for (funding, signatures). A claim with nothing in flight is priced from
    /// the current conditions afresh every block. A CPFP child whose parent alone already pays
    /// the rate is not made.
    pub fn on_block(
        &mut self,
        tip: Height,
        fees: Option<&FeeConditions>,
        fallback: FeeRate,
    ) -> Vec<Action> {
        let (rate, plan) = self.plan_rate(tip, fees, fallback);
        let weight = self.total_planned_weight();
        let parent_fee = self.template.parent.as_ref().map_or(0, |p| p.fee_sat);
        // Its whole budget cannot pay the minimum relay fee (with its parent's, for a package):
        // never broadcast, reported once.
        let budget = self.budget(fees);
        if self.relay_minimum_sat(fees) > budget {
            let outpoint = self.template.input.outpoint;
            let message = format!(
                "not claiming {outpoint}: uneconomical — its budget of {budget} sat cannot pay \
                 the minimum relay fee for {} vB",
                self.template.planned_weight().div_ceil(4)
            );
            let mut actions: Vec<Action> = self.rebroadcast().into_iter().collect();
            actions.extend(self.problem(AlertKind::DeadlineAtRisk, "uneconomical".into(), message));
            return actions;
        }
        if fee_for_rate(rate, weight) <= parent_fee {
            // The parent alone pays the rate for itself and a child: nothing to add.
            return self.rebroadcast().into_iter().collect();
        }
        let mut actions: Vec<Action> = self.rebroadcast().into_iter().collect();
        let incremental = fee_for_rate(incremental_relay(fees), weight);
        // BIP 125: a replacement pays more, and at least the incremental relay fee more — which
        // the budget must leave room for over what the attempt in flight pays (one that paid
        // the whole budget, its rate out of reach, is the best there is).
        let outbids = |c: &FundedAttempt| {
            rate > c.feerate
                && fee_for_rate(rate, weight)
                    >= fee_for_rate(c.feerate, weight).saturating_add(incremental)
                && c.assembled
                    .as_ref()
                    .is_none_or(|x| budget >= x.fee_sat.saturating_add(incremental))
        };
        let bump = match self.current() {
            None => true,
            Some(_) if self.inputs_gone => true,
            // The wallet has not funded the current attempt (it could not, or has not answered):
            // ask again at today's price when the price moved — down as well as up — as long as
            // it still outbids what is in flight, if anything is.
            Some(c) if c.assembled.is_none() => {
                rate != c.feerate && self.best_signed().is_none_or(outbids)
            }
            Some(c) => outbids(c),
        };
        if bump {
            // The line the attempts are priced from is the one of the newest.
            self.plan = Some(plan);
            let number = u32::try_from(self.attempts.len()).unwrap_or(u32::MAX);
            let attempt = FundedAttempt {
                attempt: number,
                feerate: rate,
                max_fee_sat: budget,
                decided_at: tip,
                assembled: None,
                signed: None,
            };
            let mut attempt = attempt;
            if let Some(x) = self.own_fee_assembled(&attempt) {
                // Our own output pays: no wallet input, straight to the signatures.
                self.inputs_gone = false;
                actions.push(Action::Sign(self.sign_request(&attempt, &x)));
                attempt.assembled = Some(x);
                self.attempts.push(attempt);
                return actions;
            }
            let mut request = self.funding_request(&attempt);
            if std::mem::take(&mut self.inputs_gone) {
                request.reuse.clear();
            }
            actions.push(Action::FundFromWallet(request));
            self.attempts.push(attempt);
            return actions;
        }
        if let Some(current) = self.current().cloned() {
            match (&current.assembled, &current.signed) {
                (None, _) => actions.push(Action::FundFromWallet(self.funding_request(&current))),
                (Some(x), None) => actions.push(Action::Sign(self.sign_request(&current, x))),
                (Some(_), Some(_)) => {}
            }
        }
        actions
    }

    /// What was pending when the node stopped, to re-emit after `Event::Resumed` without
    /// changing anything: the broadcast of the newest signed attempt, and the funding or sign
    /// request the current attempt still waits for.
    pub fn pending_after_restart(&self) -> Vec<Action> {
        let mut actions: Vec<Action> = self.rebroadcast().into_iter().collect();
        if let Some(current) = self.current() {
            match (&current.assembled, &current.signed) {
                (None, _) => actions.push(Action::FundFromWallet(self.funding_request(current))),
                (Some(x), None) => actions.push(Action::Sign(self.sign_request(current, x))),
                (Some(_), Some(_)) => {}
            }
        }
        actions
    }

    /// Report a problem once (a repeat of the last one says nothing).
    fn problem(&mut self, kind: AlertKind, key: String, message: String) -> Vec<Action> {
        if self.last_problem.as_deref() == Some(key.as_str()) {
            return Vec::new();
        }
        self.last_problem = Some(key);
        vec![Action::Report(Report::Alert(crate::action::Alert {
            channel: Some(self.channel),
            kind,
            message,
        }))]
    }

    /// Every wallet input lent to any attempt (to release when the claim ends).
    pub fn wallet_inputs(&self) -> Vec<OutPoint> {
        let mut out: Vec<OutPoint> = self
            .attempts
            .iter()
            .filter_map(|a| a.assembled.as_ref())
            .flat_map(|x| x.wallet.iter().map(|w| w.outpoint))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}
