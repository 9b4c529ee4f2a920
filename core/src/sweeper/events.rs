//! A claim's answers from the outside world: signatures and broadcast results.

use bitcoin::FeeRate;

use crate::action::{Action, AlertKind};
use crate::channel::force_close::is_already_known;
use crate::event::{BroadcastOutcome, SignOutcome};
use crate::policy::standard::check_standard_except_fee_rate;
use crate::policy::PolicyConfig;
use crate::types::{RawTx, RequestId};

use super::block::{max_fee, problem, rate_text, timeline};
use super::claim::{verify_signature, witness, BroadcastStatus, SweepClaim};
use super::fee::budget_rate;

/// Whether a rejection says the fee (or fee rate) is too low: a mempool minimum, the minimum
/// relay fee, or a replacement that does not pay enough (Bitcoin Core's wordings).
pub fn is_fee_refusal(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    [
        "insufficient fee",
        "min relay fee not met",
        "mempool min fee not met",
        "fee not met",
        "feerate too low",
        "fee too low",
    ]
    .iter()
    .any(|needle| r.contains(needle))
}

/// A signature for attempt `request.attempt` of `claim`: checked, assembled, stored; broadcast
/// (with a timeline entry) only if it is the claim's current attempt and the claim is live.
pub(super) fn on_signed(
    claim: &mut SweepClaim,
    request: RequestId,
    outcome: &SignOutcome,
) -> Vec<Action> {
    let current = claim.current().map(|a| a.attempt);
    let is_current = current == Some(request.attempt) && claim.is_live();
    let Some(attempt) = claim.attempts.get(request.attempt as usize) else {
        return Vec::new();
    };
    if attempt.signed.is_some() || request.attempt < claim.first_current {
        return Vec::new();
    }
    let txid = attempt.txid;
    let outpoint = claim.request.outpoint;
    let signatures = match outcome {
        SignOutcome::Signed { signatures, .. } => signatures,
        SignOutcome::Failed { reason } => {
            if !is_current {
                return Vec::new();
            }
            let message = format!(
                "signer refused claim {txid} of {outpoint}: {reason}; asking again next block"
            );
            let key = format!("signer: {reason}");
            return problem(claim, AlertKind::ChannelFailure, key, message);
        }
    };
    let checked = signatures
        .iter()
        .find(|s| s.input == 0)
        .ok_or(super::claim::SignatureError::Missing)
        .and_then(|s| verify_signature(&claim.request, &attempt.tx, &s.signature).map(|()| s));
    let sig = match checked {
        Ok(s) => s.signature,
        Err(e) => {
            if !is_current {
                return Vec::new();
            }
            let message = format!(
                "signer answered claim {txid} of {outpoint} badly: {e}; asking again next block"
            );
            return problem(
                claim,
                AlertKind::ChannelFailure,
                format!("signature: {e}"),
                message,
            );
        }
    };
    let mut tx = attempt.tx.0.clone();
    let (Some(input), Some(w)) = (tx.input.first_mut(), witness(&claim.request, Some(&sig))) else {
        return Vec::new();
    };
    input.witness = w;
    // Our own transaction must be standard and no heavier than the fee was computed for; a
    // failure here is a bug, reported and never broadcast.
    let prevouts = [claim.request.txout.clone()];
    let standard = check_standard_except_fee_rate(&tx, &prevouts, &PolicyConfig::default());
    let weight = tx.weight().to_wu();
    if let Err(e) = standard {
        let message = format!("claim {txid} of {outpoint} is not standard: {e}; not broadcast");
        return problem(
            claim,
            AlertKind::ChannelFailure,
            format!("standard: {e}"),
            message,
        );
    }
    if weight > attempt.weight {
        let message = format!(
            "claim {txid} of {outpoint} weighs {weight}, above the {} it was priced for; not broadcast",
            attempt.weight
        );
        return problem(claim, AlertKind::ChannelFailure, "weight".into(), message);
    }
    let Some(stored) = claim.attempts.get_mut(request.attempt as usize) else {
        return Vec::new();
    };
    stored.signed = Some(RawTx(tx.clone()));
    if !is_current {
        return Vec::new(); // superseded: recorded, dropped
    }
    stored.broadcast = BroadcastStatus::Sent;
    let stored = stored.clone();
    vec![
        Action::Broadcast {
            request,
            tx: RawTx(tx),
        },
        timeline(claim, &stored),
    ]
}

/// How a broadcast of attempt `request.attempt` went. "Already known" is success; a fee
/// refusal raises the claim's floor so the next block bumps; anything else is reported once
/// (the claim keeps rebroadcasting every block).
pub(super) fn on_broadcast_result(
    claim: &mut SweepClaim,
    request: RequestId,
    outcome: &BroadcastOutcome,
) -> Vec<Action> {
    let kept = claim.best_signed().map(|a| a.attempt) == Some(request.attempt) && claim.is_live();
    let Some(attempt) = claim.attempts.get_mut(request.attempt as usize) else {
        return Vec::new();
    };
    let reason = match outcome {
        BroadcastOutcome::Accepted => None,
        BroadcastOutcome::Rejected { reason } if is_already_known(reason) => None,
        BroadcastOutcome::Rejected { reason } => Some(reason.clone()),
    };
    let Some(reason) = reason else {
        attempt.broadcast = BroadcastStatus::Accepted;
        if kept {
            claim.last_problem = None;
        }
        return Vec::new();
    };
    attempt.broadcast = BroadcastStatus::Rejected {
        reason: reason.clone(),
    };
    if !kept {
        return Vec::new(); // an older attempt: recorded, dropped
    }
    let (txid, rate, weight) = (attempt.txid, attempt.feerate, attempt.weight);
    let outpoint = claim.request.outpoint;
    if is_fee_refusal(&reason) {
        claim.refused_rate = Some(claim.refused_rate.map_or(rate, |r: FeeRate| r.max(rate)));
        let destination = attempt
            .tx
            .output
            .first()
            .map(|o| o.script_pubkey.clone())
            .unwrap_or_default();
        let end = budget_rate(max_fee(&claim.request, &destination), weight);
        if rate < end {
            return Vec::new(); // the next block bumps above the refused rate
        }
        let message = format!(
            "mempool refuses claim {txid} of {outpoint} at {} sat/vB, all its budget of {} sat \
             allows: {reason}",
            rate_text(rate),
            claim.request.budget_sat
        );
        return problem(
            claim,
            AlertKind::DeadlineAtRisk,
            format!("refused: {reason}"),
            message,
        );
    }
    let message = format!(
        "broadcast of claim {txid} of {outpoint} rejected: {reason}; rebroadcasting every block"
    );
    problem(
        claim,
        AlertKind::DeadlineAtRisk,
        format!("rejected: {reason}"),
        message,
    )
}
