//! What each input and each batch does at a block: an input waits for maturity or is given up as
//! uneconomical (an outgoing HTLC's timeout claim is forced instead); a batch builds its first
//! attempt, bumps it when the fee function has risen enough to replace it (BIP 125), or
//! rebroadcasts what it has — every decision reported.

use bitcoin::{FeeRate, OutPoint, Script};

use crate::action::{Action, Alert, AlertKind, Report, SweepRequest};
use crate::bolt3::weights::{claim_batch_weight, claim_tx_weight};
use crate::bolt3::witness::ClaimPath;
use crate::event::FeeConditions;
use crate::policy::dust_threshold;
use crate::types::{ChannelId, Height, RawTx};

use super::claim::{build_tx, witness, Attempt, BroadcastStatus, ClaimState, SweepClaim};
use super::Ctx;
use super::{SweeperConfig, SweeperPolicy, DUST_RELAY_FEE_SAT_PER_KVB};
use crate::fee::{
    budget_rate, estimate_for, fee_for_rate, incremental_relay, min_relay, relay_floor, vsize,
    FeeFunction, FeePlan,
};

/// Whether a claim of `path` may be offered for block `tip + 1`: its CSV/CLTV maturity
/// (`mature_at`) is reached, and a CLTV path's `cltv_expiry` is below `tip + 1`.
pub fn is_mature(req: &SweepRequest, tip: Height) -> bool {
    let next = tip.saturating_add(1);
    req.mature_at <= next && req.path.cltv_expiry().is_none_or(|cltv| cltv < next)
}

/// The most a claim may pay: its budget, and no more than leaves its output above dust.
pub fn max_fee(req: &SweepRequest, destination: &Script) -> u64 {
    let dust = dust_threshold(destination, DUST_RELAY_FEE_SAT_PER_KVB);
    req.budget_sat
        .min(req.txout.value.to_sat().saturating_sub(dust))
}

/// `fee` on `weight` as sat/vB with one decimal, for operators.
pub fn sat_per_vb(fee_sat: u64, weight: u64) -> String {
    let tenths = fee_sat.saturating_mul(10) / vsize(weight).max(1);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// A fee rate as sat/vB with one decimal, for operators.
pub fn rate_text(rate: FeeRate) -> String {
    let tenths = rate.to_sat_per_kwu() / 25;
    format!("{}.{}", tenths / 10, tenths % 10)
}

pub(super) fn alert(channel: ChannelId, kind: AlertKind, message: String) -> Action {
    Action::Report(Report::Alert(Alert {
        channel: Some(channel),
        kind,
        message,
    }))
}

/// An alert about no channel in particular.
pub(super) fn alert_any(kind: AlertKind, message: String) -> Action {
    Action::Report(Report::Alert(Alert {
        channel: None,
        kind,
        message,
    }))
}

/// Report a problem once: a repeat of the last one reported (same `key`) says nothing.
pub(super) fn problem(
    claim: &mut SweepClaim,
    kind: AlertKind,
    key: String,
    message: String,
) -> Vec<Action> {
    if claim.last_problem.as_deref() == Some(key.as_str()) {
        return Vec::new();
    }
    claim.last_problem = Some(key);
    vec![alert(claim.request.channel, kind, message)]
}

/// The timeline entries for the first broadcast of `attempt` (a first claim or a bump), one per
/// input (`inputs`, the lead's first): the rate, what set it, the budget left, the deadline.
pub(super) fn timeline(
    claim: &SweepClaim,
    attempt: &Attempt,
    inputs: &[SweepRequest],
) -> Vec<Action> {
    let rate = sat_per_vb(attempt.fee_sat, attempt.weight);
    let previous = claim
        .attempts
        .iter()
        .rev()
        .filter(|a| a.attempt < attempt.attempt && a.attempt >= claim.first_current)
        .find(|a| a.signed.is_some());
    let batch = if inputs.len() > 1 {
        format!(" in a batch of {} inputs", inputs.len())
    } else {
        String::new()
    };
    let what = match previous {
        None => format!(
            "claiming at {rate} sat/vB{batch} (fee {} sat",
            attempt.fee_sat
        ),
        Some(p) => format!(
            "bumping to {rate} sat/vB{batch} (fee {} sat, was {} sat",
            attempt.fee_sat, p.fee_sat
        ),
    };
    let refused = claim
        .refused_rate
        .map(|r| format!(", outbidding {} sat/vB (refused or replaced)", rate_text(r)))
        .unwrap_or_default();
    let deadline = batch_deadline(inputs);
    let left = deadline.saturating_sub(attempt.built_at);
    let budget: u64 = inputs
        .iter()
        .map(|r| r.budget_sat)
        .fold(0, u64::saturating_add);
    let budget_left = budget.saturating_sub(attempt.fee_sat);
    let why = if attempt.why.is_empty() {
        String::new()
    } else {
        format!(", rate set by {}", attempt.why)
    };
    let topup = if attempt.topup_sat > 0 {
        format!(
            "; {} sat of it refill the fee wallet, below its reserve",
            attempt.topup_sat
        )
    } else {
        String::new()
    };
    let stage = format!(
        "{what}{refused}{why}), {left} blocks to deadline {deadline}, budget left {budget_left} \
         sat{topup}"
    );
    inputs
        .iter()
        .map(|req| {
            Action::Report(Report::Timeline {
                channel: req.channel,
                outpoint: req.outpoint,
                height: attempt.built_at,
                stage: stage.clone(),
                txid: Some(attempt.txid),
            })
        })
        .collect()
}

/// The deadline a batch pays for: its earliest input's.
pub(super) fn batch_deadline(inputs: &[SweepRequest]) -> Height {
    inputs.iter().map(|r| r.deadline).min().unwrap_or(0)
}

/// Whether `attempt` may be offered for block `tip + 1`: its `nLockTime` is below it (after a
/// reorg lowered the tip, an attempt built at the old tip is not).
pub(super) fn final_after(attempt: &Attempt, tip: Height) -> bool {
    attempt.tx.lock_time.to_consensus_u32() < tip.saturating_add(1)
}

/// What an input may spend on fees, decided alone (a transaction of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum InputBudget {
    /// It pays for itself at the minimum relay fee: its usable budget.
    Economical(u64),
    /// An outgoing HTLC's timeout claim whose budget cannot pay the minimum relay fee: forced
    /// at the relay fee, paid from its value (configured by
    /// [`SweeperPolicy::force_timeout_claims`]).
    Forced(u64),
    /// It cannot pay for itself: left alone, reported.
    Uneconomical,
}

impl InputBudget {
    /// The fee it may spend, if it is claimed.
    pub(super) fn usable(self) -> Option<u64> {
        match self {
            InputBudget::Economical(b) | InputBudget::Forced(b) => Some(b),
            InputBudget::Uneconomical => None,
        }
    }
}

/// The budget of `req` under `fees`: see [`InputBudget`].
pub(super) fn input_budget(
    req: &SweepRequest,
    fees: Option<&FeeConditions>,
    cfg: &SweeperConfig,
    policy: &SweeperPolicy,
) -> InputBudget {
    let weight = claim_tx_weight(&req.path, cfg.destination.len());
    let max = max_fee(req, &cfg.destination);
    let relay_fee = fee_for_rate(min_relay(fees), weight);
    if budget_rate(max, weight) >= min_relay(fees) {
        return InputBudget::Economical(max);
    }
    let dust = dust_threshold(&cfg.destination, DUST_RELAY_FEE_SAT_PER_KVB);
    let above_dust = req.txout.value.to_sat().saturating_sub(dust);
    if is_timeout_claim(&req.path) && policy.force_timeout_claims && above_dust >= relay_fee {
        return InputBudget::Forced(relay_fee);
    }
    InputBudget::Uneconomical
}

/// Whether `path` is the timeout claim of our outgoing HTLC (never dropped).
pub(super) fn is_timeout_claim(path: &ClaimPath) -> bool {
    matches!(path, ClaimPath::ReceivedHtlcTimeout { .. })
}

/// Whether `path` spends an anchor (never batched).
pub(super) fn is_anchor(path: &ClaimPath) -> bool {
    matches!(
        path,
        ClaimPath::AnchorOwner | ClaimPath::AnchorAnyone | ClaimPath::PayToAnchor
    )
}

/// One input at the block `tip`: report an invalid request once, wait for maturity, judge its
/// economics. Returns the reports and whether it may be claimed in the next block.
pub(super) fn examine(claim: &mut SweepClaim, ctx: &Ctx<'_>) -> (Vec<Action>, bool) {
    match &mut claim.state {
        ClaimState::Spent { .. } => return (Vec::new(), false),
        ClaimState::Invalid { error, reported } => {
            if *reported {
                return (Vec::new(), false);
            }
            *reported = true;
            let message = format!("cannot claim {}: {error}", claim.request.outpoint);
            let alert = alert(claim.request.channel, AlertKind::ChannelFailure, message);
            return (vec![alert], false);
        }
        ClaimState::Active | ClaimState::Uneconomical { .. } => {}
    }
    if !is_mature(&claim.request, ctx.tip) {
        return (Vec::new(), false);
    }
    let req = &claim.request;
    let budget = input_budget(req, ctx.fees, ctx.cfg, ctx.policy);
    let weight = claim_tx_weight(&req.path, ctx.cfg.destination.len());
    let max_fee = max_fee(req, &ctx.cfg.destination);
    let relay = min_relay(ctx.fees);
    match budget {
        InputBudget::Uneconomical => {
            let reported = matches!(claim.state, ClaimState::Uneconomical { reported: true });
            claim.state = ClaimState::Uneconomical { reported: true };
            if reported {
                return (Vec::new(), false);
            }
            let mut message = uneconomical_message(
                req.outpoint,
                req.txout.value.to_sat(),
                req.budget_sat,
                max_fee,
                weight,
                relay,
            );
            if is_timeout_claim(&req.path) {
                message.push_str(
                    "; this HTLC timeout claim is left to the cut-loss rule, never dropped: it is \
                     re-examined every block",
                );
            }
            (
                vec![alert(req.channel, AlertKind::DeadlineAtRisk, message)],
                false,
            )
        }
        InputBudget::Forced(fee) => {
            claim.state = ClaimState::Active;
            let message = format!(
                "forcing the timeout claim of {} ({} sat): its budget of {} sat cannot pay the \
                 minimum relay fee of {} sat/vB, so it pays {fee} sat from the HTLC's value \
                 rather than lose it",
                req.outpoint,
                req.txout.value.to_sat(),
                req.budget_sat,
                rate_text(relay)
            );
            let actions = problem(claim, AlertKind::DeadlineAtRisk, "forced".into(), message);
            (actions, true)
        }
        InputBudget::Economical(_) => {
            claim.state = ClaimState::Active;
            (Vec::new(), true)
        }
    }
}

fn uneconomical_message(
    outpoint: OutPoint,
    value: u64,
    budget: u64,
    max_fee: u64,
    weight: u64,
    relay: FeeRate,
) -> String {
    format!(
        "not claiming {outpoint} ({value} sat): uneconomical — its budget of {budget} sat \
         ({max_fee} sat usable above dust) pays at most {} sat/vB for {} vB, below the minimum \
         relay fee of {} sat/vB",
        sat_per_vb(max_fee, weight),
        vsize(weight),
        rate_text(relay)
    )
}

fn broadcast(claim: &mut SweepClaim, attempt: u32) -> Option<Action> {
    let request = claim.request_id(attempt);
    let a = claim.attempts.get_mut(attempt as usize)?;
    let tx = a.signed.clone()?;
    if a.broadcast == BroadcastStatus::NotSent {
        a.broadcast = BroadcastStatus::Sent;
    }
    Some(Action::Broadcast { request, tx })
}

/// Each input's share of `fee`, pro rata by `budgets` (rounded down, the remainder given where a
/// budget has room), so no input pays more than its own budget while `fee` is within theirs.
pub(super) fn shares(fee: u64, budgets: &[u64]) -> Vec<u64> {
    let total: u128 = budgets.iter().map(|b| u128::from(*b)).sum();
    let mut out: Vec<u64> = budgets
        .iter()
        .map(|b| {
            let share = u128::from(fee) * u128::from(*b) / total.max(1);
            u64::try_from(share).unwrap_or(u64::MAX)
        })
        .collect();
    let mut left = fee.saturating_sub(out.iter().fold(0u64, |a, b| a.saturating_add(*b)));
    for (share, budget) in out.iter_mut().zip(budgets) {
        let add = budget.saturating_sub(*share).min(left);
        *share += add;
        left -= add;
    }
    if let Some(first) = out.first_mut() {
        *first = first.saturating_add(left);
    }
    out
}

/// Everything the batch led by `lead` does at the block `tip` (offering its transaction for
/// `tip + 1`): `inputs` are its inputs' requests (the lead's first), `budgets` what each may
/// spend.
pub(super) fn on_block(
    lead: &mut SweepClaim,
    inputs: &[SweepRequest],
    budgets: &[u64],
    ctx: &Ctx<'_>,
) -> Vec<Action> {
    let (tip, fees, cfg) = (ctx.tip, ctx.fees, ctx.cfg);
    let paths: Vec<ClaimPath> = inputs.iter().map(|r| r.path).collect();
    let max_fee = budgets.iter().fold(0u64, |a, b| a.saturating_add(*b));
    let value = inputs
        .iter()
        .fold(0u64, |a, r| a.saturating_add(r.txout.value.to_sat()));
    let dust = dust_threshold(&cfg.destination, DUST_RELAY_FEE_SAT_PER_KVB);
    // A top-up of the fee wallet rides along only if, even at the whole budget, the destination
    // keeps more than dust and the top-up can be more than dust.
    let topup = ctx.topup.filter(|t| {
        let left = value.saturating_sub(max_fee).saturating_sub(dust);
        left >= dust_threshold(t.script, DUST_RELAY_FEE_SAT_PER_KVB)
    });
    let mut outputs = vec![cfg.destination.len()];
    outputs.extend(topup.map(|t| t.script.len()));
    let weight = claim_batch_weight(&paths, &outputs);
    let deadline = batch_deadline(inputs);
    let end = budget_rate(max_fee, weight);
    let target = tip.saturating_add(1);
    let market = estimate_for(fees, deadline.saturating_sub(tip), cfg.fallback_feerate);
    let plan = *lead.plan.get_or_insert(FeePlan {
        start: market,
        start_height: target,
    });
    let incremental = incremental_relay(fees);
    let mut floor = relay_floor(fees);
    if let Some(refused) = lead.refused_rate {
        floor = floor.max(FeeRate::from_sat_per_kwu(
            refused
                .to_sat_per_kwu()
                .saturating_add(incremental.to_sat_per_kwu()),
        ));
    }
    let function = FeeFunction::new(plan, end, deadline).with_curve(ctx.policy.fee_curve);
    let (rate, why) = function.explain(target, market, floor);
    let fee = fee_for_rate(rate, weight).min(max_fee);
    let topup = topup.and_then(|t| {
        let sat = t.room.min(value.saturating_sub(fee).saturating_sub(dust));
        (sat >= dust_threshold(t.script, DUST_RELAY_FEE_SAT_PER_KVB)).then(|| bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(sat),
            script_pubkey: t.script.clone(),
        })
    });

    // Attempts only ever rise, so the newest one is the one to replace: a bump must pay BIP 125's
    // increment over it (which also spaces out re-signing while a signer is slow).
    let reference = lead.best_signed().map(|a| a.attempt);
    let current = lead
        .current()
        .map(|a| (a.attempt, a.fee_sat, a.feerate, a.signed.is_some()));
    let bump = current.is_none_or(|(_, old_fee, old_rate, _)| {
        fee >= old_fee.saturating_add(fee_for_rate(incremental, weight)) && rate > old_rate
    });
    let mut actions = Vec::new();
    // After a reorg lowered the tip, an attempt built with nLockTime at the old tip is not final
    // in the next block: it is not offered (a mempool would refuse it) until the tip catches up.
    let final_next = |a: u32| {
        lead.attempts
            .get(a as usize)
            .is_some_and(|a| final_after(a, tip))
    };
    if let Some(attempt) = reference.filter(|a| final_next(*a)) {
        actions.extend(broadcast(lead, attempt));
    }
    if bump {
        let priced = Priced {
            weight,
            fee_sat: fee,
            feerate: rate,
            why,
            topup,
        };
        actions.extend(new_attempt(lead, inputs, budgets, tip, priced, cfg));
    } else if let Some((attempt, _, _, false)) = current {
        // Still waiting for the signer: ask again (idempotent).
        let request = lead
            .attempts
            .get(attempt as usize)
            .and_then(|a| lead.sign_request(a, inputs));
        actions.extend(request.map(Action::Sign));
    }
    actions.extend(missed_deadline(lead, inputs, tip, deadline));
    actions
}

/// A claim still unconfirmed at its deadline: reported once per deadline.
fn missed_deadline(
    lead: &mut SweepClaim,
    inputs: &[SweepRequest],
    tip: Height,
    deadline: Height,
) -> Option<Action> {
    if tip < deadline || lead.deadline_reported == Some(deadline) {
        return None;
    }
    lead.deadline_reported = Some(deadline);
    let message = format!(
        "claim of {} did not confirm by its deadline {deadline}; still offered at its full \
         budget of {} sat",
        outpoints(inputs),
        inputs
            .iter()
            .fold(0u64, |a, r| a.saturating_add(r.budget_sat))
    );
    Some(alert(
        lead.request.channel,
        AlertKind::DeadlineAtRisk,
        message,
    ))
}

/// The outpoints of `inputs`, for messages.
pub(super) fn outpoints(inputs: &[SweepRequest]) -> String {
    inputs
        .iter()
        .map(|r| r.outpoint.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a new attempt weighs and pays, and why.
struct Priced {
    weight: u64,
    fee_sat: u64,
    feerate: FeeRate,
    why: &'static str,
    /// The fee wallet's output, if it is paid a top-up.
    topup: Option<bitcoin::TxOut>,
}

fn new_attempt(
    lead: &mut SweepClaim,
    inputs: &[SweepRequest],
    budgets: &[u64],
    tip: Height,
    priced: Priced,
    cfg: &SweeperConfig,
) -> Vec<Action> {
    let topup_sat = priced.topup.as_ref().map_or(0, |t| t.value.to_sat());
    let Some(tx) = build_tx(inputs, &cfg.destination, priced.fee_sat, priced.topup, tip) else {
        return Vec::new();
    };
    let number = u32::try_from(lead.attempts.len()).unwrap_or(u32::MAX);
    let batched = inputs.len() > 1;
    let mut attempt = Attempt {
        attempt: number,
        txid: tx.compute_txid(),
        tx: RawTx(tx),
        weight: priced.weight,
        fee_sat: priced.fee_sat,
        feerate: priced.feerate,
        built_at: tip,
        signed: None,
        broadcast: BroadcastStatus::NotSent,
        members: if batched {
            lead.members.clone()
        } else {
            Vec::new()
        },
        shares: if batched {
            shares(priced.fee_sat, budgets)
        } else {
            Vec::new()
        },
        why: priced.why.to_string(),
        topup_sat,
    };
    if let Some(request) = lead.sign_request(&attempt, inputs) {
        lead.attempts.push(attempt);
        return vec![Action::Sign(request)];
    }
    // No input needs a signature (an anchor after 16 blocks): complete at once.
    let mut signed = attempt.tx.0.clone();
    for (input, req) in signed.input.iter_mut().zip(inputs) {
        let Some(w) = witness(req, None) else {
            return Vec::new();
        };
        input.witness = w;
    }
    attempt.signed = Some(RawTx(signed));
    lead.attempts.push(attempt.clone());
    let report = timeline(lead, &attempt, inputs);
    let mut actions: Vec<Action> = broadcast(lead, number).into_iter().collect();
    actions.extend(report);
    actions
}
