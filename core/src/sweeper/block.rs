//! What one claim does at each block: wait for maturity, give up on an uneconomical output, build
//! the first attempt, bump it when the fee function has risen enough to replace it (BIP 125), or
//! rebroadcast what it has.

use bitcoin::{FeeRate, OutPoint, Script};

use crate::action::{Action, Alert, AlertKind, Report};
use crate::bolt3::weights::claim_tx_weight;
use crate::event::FeeConditions;
use crate::policy::dust_threshold;
use crate::types::{ChannelId, Height, RawTx};

use super::claim::{build_tx, witness, Attempt, BroadcastStatus, ClaimState, SweepClaim};
use super::fee::{
    budget_rate, estimate_for, fee_for_rate, incremental_relay, min_relay, relay_floor, vsize,
    FeeFunction, FeePlan,
};
use super::{SweeperConfig, DUST_RELAY_FEE_SAT_PER_KVB};

/// Whether a claim of `path` may be offered for block `tip + 1`: its CSV/CLTV maturity
/// (`mature_at`) is reached, and a CLTV path's `cltv_expiry` is below `tip + 1`.
pub fn is_mature(req: &crate::action::SweepRequest, tip: Height) -> bool {
    let next = tip.saturating_add(1);
    req.mature_at <= next && req.path.cltv_expiry().is_none_or(|cltv| cltv < next)
}

/// The most a claim may pay: its budget, and no more than leaves its output above dust.
pub fn max_fee(req: &crate::action::SweepRequest, destination: &Script) -> u64 {
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

/// The timeline entry for the first broadcast of `attempt` (a first claim or a bump).
pub(super) fn timeline(claim: &SweepClaim, attempt: &Attempt) -> Action {
    let req = &claim.request;
    let rate = sat_per_vb(attempt.fee_sat, attempt.weight);
    let previous = claim
        .attempts
        .iter()
        .rev()
        .filter(|a| a.attempt < attempt.attempt && a.attempt >= claim.first_current)
        .find(|a| a.signed.is_some());
    let what = match previous {
        None => format!("claiming at {rate} sat/vB (fee {} sat", attempt.fee_sat),
        Some(p) => format!(
            "bumping to {rate} sat/vB (fee {} sat, was {} sat",
            attempt.fee_sat, p.fee_sat
        ),
    };
    let refused = claim
        .refused_rate
        .map(|r| format!(", after a mempool refused {} sat/vB", rate_text(r)))
        .unwrap_or_default();
    let left = req.deadline.saturating_sub(attempt.built_at);
    let budget_left = req.budget_sat.saturating_sub(attempt.fee_sat);
    Action::Report(Report::Timeline {
        channel: req.channel,
        outpoint: req.outpoint,
        height: attempt.built_at,
        stage: format!(
            "{what}{refused}), {left} blocks to deadline {}, budget left {budget_left} sat",
            req.deadline
        ),
        txid: Some(attempt.txid),
    })
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

/// Everything a claim does at the block `tip` (offering its transaction for `tip + 1`).
pub(super) fn on_block(
    claim: &mut SweepClaim,
    tip: Height,
    fees: Option<&FeeConditions>,
    cfg: &SweeperConfig,
) -> Vec<Action> {
    match &mut claim.state {
        ClaimState::Spent { .. } => return Vec::new(),
        ClaimState::Invalid { error, reported } => {
            if *reported {
                return Vec::new();
            }
            *reported = true;
            let message = format!("cannot claim {}: {error}", claim.request.outpoint);
            return vec![alert(
                claim.request.channel,
                AlertKind::ChannelFailure,
                message,
            )];
        }
        ClaimState::Active | ClaimState::Uneconomical { .. } => {}
    }
    if !is_mature(&claim.request, tip) {
        return Vec::new();
    }
    let req = &claim.request;
    let weight = claim_tx_weight(&req.path, cfg.destination.len());
    let max_fee = max_fee(req, &cfg.destination);
    let end = budget_rate(max_fee, weight);
    let relay = min_relay(fees);
    if end < relay {
        let reported = matches!(claim.state, ClaimState::Uneconomical { reported: true });
        claim.state = ClaimState::Uneconomical { reported: true };
        if reported {
            return Vec::new();
        }
        let message = uneconomical_message(
            req.outpoint,
            req.txout.value.to_sat(),
            req.budget_sat,
            max_fee,
            weight,
            relay,
        );
        return vec![alert(req.channel, AlertKind::DeadlineAtRisk, message)];
    }
    claim.state = ClaimState::Active;
    let target = tip.saturating_add(1);
    let market = estimate_for(fees, req.deadline.saturating_sub(tip), cfg.fallback_feerate);
    let plan = *claim.plan.get_or_insert(FeePlan {
        start: market,
        start_height: target,
    });
    let incremental = incremental_relay(fees);
    let mut floor = relay_floor(fees);
    if let Some(refused) = claim.refused_rate {
        floor = floor.max(FeeRate::from_sat_per_kwu(
            refused
                .to_sat_per_kwu()
                .saturating_add(incremental.to_sat_per_kwu()),
        ));
    }
    let rate = FeeFunction::new(plan, end, req.deadline).rate_at(target, market, floor);
    let fee = fee_for_rate(rate, weight).min(max_fee);

    // Attempts only ever rise, so the newest one is the one to replace: a bump must pay BIP 125's
    // increment over it (which also spaces out re-signing while a signer is slow).
    let reference = claim.best_signed().map(|a| a.attempt);
    let current = claim
        .current()
        .map(|a| (a.attempt, a.fee_sat, a.feerate, a.signed.is_some()));
    let bump = current.is_none_or(|(_, old_fee, old_rate, _)| {
        fee >= old_fee.saturating_add(fee_for_rate(incremental, weight)) && rate > old_rate
    });
    let mut actions = Vec::new();
    // After a reorg lowered the tip, an attempt built with nLockTime at the old tip is not final
    // in the next block: it is not offered (a mempool would refuse it) until the tip catches up.
    let final_next = |a: u32| {
        claim
            .attempts
            .get(a as usize)
            .is_some_and(|a| a.tx.lock_time.to_consensus_u32() < target)
    };
    if let Some(attempt) = reference.filter(|a| final_next(*a)) {
        actions.extend(broadcast(claim, attempt));
    }
    if bump {
        actions.extend(new_attempt(claim, tip, weight, fee, rate, cfg));
    } else if let Some((attempt, _, _, false)) = current {
        // Still waiting for the signer: ask again (idempotent).
        let request = claim
            .attempts
            .get(attempt as usize)
            .and_then(|a| claim.sign_request(a));
        actions.extend(request.map(Action::Sign));
    }
    let deadline = claim.request.deadline;
    if tip >= deadline && claim.deadline_reported != Some(deadline) {
        claim.deadline_reported = Some(deadline);
        let message = format!(
            "claim of {} did not confirm by its deadline {deadline}; still offered at its full \
             budget of {} sat",
            claim.request.outpoint, claim.request.budget_sat
        );
        actions.push(alert(
            claim.request.channel,
            AlertKind::DeadlineAtRisk,
            message,
        ));
    }
    actions
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

fn new_attempt(
    claim: &mut SweepClaim,
    tip: Height,
    weight: u64,
    fee_sat: u64,
    feerate: FeeRate,
    cfg: &SweeperConfig,
) -> Vec<Action> {
    let tx = build_tx(&claim.request, &cfg.destination, fee_sat, tip);
    let number = u32::try_from(claim.attempts.len()).unwrap_or(u32::MAX);
    let mut attempt = Attempt {
        attempt: number,
        txid: tx.compute_txid(),
        tx: RawTx(tx),
        weight,
        fee_sat,
        feerate,
        built_at: tip,
        signed: None,
        broadcast: BroadcastStatus::NotSent,
    };
    if let Some(request) = claim.sign_request(&attempt) {
        claim.attempts.push(attempt);
        return vec![Action::Sign(request)];
    }
    // A path without a signature (an anchor after 16 blocks): complete at once.
    let mut signed = attempt.tx.0.clone();
    let Some(input) = signed.input.first_mut() else {
        return Vec::new();
    };
    let Some(w) = witness(&claim.request, None) else {
        return Vec::new();
    };
    input.witness = w;
    attempt.signed = Some(RawTx(signed));
    claim.attempts.push(attempt.clone());
    let report = timeline(claim, &attempt);
    let mut actions: Vec<Action> = broadcast(claim, number).into_iter().collect();
    actions.push(report);
    actions
}
