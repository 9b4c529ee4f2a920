//! A batch's answers from the outside world: signatures and broadcast results, and the
//! classification of a rejection (bump, re-plan, or split).

use bitcoin::FeeRate;

use crate::action::{Action, AlertKind, SweepRequest};
use crate::event::{BroadcastOutcome, SignOutcome};
use crate::policy::reject::{classify_reject, is_already_known, RejectClass};
use crate::policy::standard::check_standard_except_fee_rate;
use crate::policy::PolicyConfig;
use crate::types::{Height, RawTx, RequestId};

use super::block::{final_after, max_fee, outpoints, problem, rate_text, timeline};
use super::claim::{
    needs_signature, verify_signature, witness, BroadcastStatus, SignatureError, SweepClaim,
};
use crate::fee::budget_rate;

pub use crate::policy::reject::is_fee_refusal;

/// What a mempool's refusal means for a claim transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The fee or fee rate is too low (a minimum, or BIP 125's replacement rules): bump.
    FeeTooLow,
    /// An input is missing or already spent by another transaction: a batch is re-planned one
    /// input per transaction, so the others are not held back.
    InputConflict,
    /// Not final yet (`nLockTime`, BIP 68): offered again once it is.
    NotFinal,
    /// A script or policy error: a batch is split to isolate the offending input.
    Invalid,
}

/// What a refusal means for a claim (the wordings: [`crate::policy::reject`]). A package, chain
/// limit, TRUC or node fee-cap refusal is treated as invalid: the batch is split, so one input
/// cannot hold the others back.
pub fn classify_rejection(reason: &str) -> Rejection {
    match classify_reject(reason) {
        RejectClass::FeeTooLow => Rejection::FeeTooLow,
        RejectClass::InputsMissingOrSpent | RejectClass::Conflict => Rejection::InputConflict,
        RejectClass::NotFinal => Rejection::NotFinal,
        RejectClass::AlreadyInMempool
        | RejectClass::AlreadyConfirmed
        | RejectClass::FeeAboveNodeMaximum
        | RejectClass::ChainLimit
        | RejectClass::Truc
        | RejectClass::Package
        | RejectClass::Invalid => Rejection::Invalid,
    }
}

/// A signature for attempt `request.attempt` of the batch led by `claim` (`inputs` its inputs'
/// requests, the lead's first): checked, assembled, stored; broadcast (with timeline entries)
/// only if it is the current attempt, the claim is live, and it is final after `tip`.
pub(super) fn on_signed(
    claim: &mut SweepClaim,
    request: RequestId,
    outcome: &SignOutcome,
    inputs: &[SweepRequest],
    tip: Option<Height>,
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
    let outpoint = outpoints(inputs);
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
    let mut tx = attempt.tx.0.clone();
    if tx.input.len() != inputs.len() {
        return Vec::new();
    }
    let checked = attach_witnesses(&mut tx, &attempt.tx, inputs, signatures);
    if let Err(e) = checked {
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
    // Our own transaction must be standard and no heavier than the fee was computed for; a
    // failure here is a bug, reported and never broadcast.
    let prevouts: Vec<_> = inputs.iter().map(|r| r.txout.clone()).collect();
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
    // Superseded: recorded, dropped. Not final after a reorg: the next block offers it (or a
    // fresh attempt) once it is.
    if !is_current || tip.is_some_and(|t| !final_after(stored, t)) {
        return Vec::new();
    }
    stored.broadcast = BroadcastStatus::Sent;
    let stored = stored.clone();
    let mut actions = vec![Action::Broadcast {
        request,
        tx: RawTx(tx),
    }];
    actions.extend(timeline(claim, &stored, inputs));
    actions
}

/// Each input's witness from the signer's signatures (checked against the unsigned
/// transaction) and the claim's path; the first signature missing or wrong stops it.
fn attach_witnesses(
    tx: &mut bitcoin::Transaction,
    unsigned: &RawTx,
    inputs: &[SweepRequest],
    signatures: &[crate::event::InputSignature],
) -> Result<(), SignatureError> {
    for (index, (input, req)) in tx.input.iter_mut().zip(inputs).enumerate() {
        let sig = if needs_signature(&req.path) {
            let found = signatures
                .iter()
                .find(|s| s.input as usize == index)
                .ok_or(SignatureError::Missing)
                .and_then(|s| {
                    verify_signature(req, unsigned, index, &s.signature).map(|()| s.signature)
                });
            match found {
                Ok(sig) => Some(sig),
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        match witness(req, sig.as_ref()) {
            Some(w) => input.witness = w,
            None => return Err(SignatureError::Missing),
        }
    }
    Ok(())
}

/// How a broadcast of attempt `request.attempt` went. "Already known" is success; a fee
/// refusal raises the batch's floor so the next block bumps; an input conflict or a script or
/// policy error of a batch of several inputs asks for a split (the second value); anything else
/// is reported once (the claim keeps rebroadcasting every block). No verdict at all (the node
/// never answered) changes nothing: the attempt is offered again at the next block.
pub(super) fn on_broadcast_result(
    claim: &mut SweepClaim,
    request: RequestId,
    outcome: &BroadcastOutcome,
) -> (Vec<Action>, bool) {
    if matches!(outcome, BroadcastOutcome::NotDelivered { .. }) {
        return (Vec::new(), false);
    }
    let kept = claim.best_signed().map(|a| a.attempt) == Some(request.attempt) && claim.is_live();
    let batched = !claim.members.is_empty();
    let Some(attempt) = claim.attempts.get_mut(request.attempt as usize) else {
        return (Vec::new(), false);
    };
    let reason = match outcome {
        BroadcastOutcome::Accepted | BroadcastOutcome::NotDelivered { .. } => None,
        BroadcastOutcome::Rejected { reason } if is_already_known(reason) => None,
        BroadcastOutcome::Rejected { reason } => Some(reason.clone()),
    };
    let Some(reason) = reason else {
        attempt.broadcast = BroadcastStatus::Accepted;
        if kept {
            claim.last_problem = None;
        }
        return (Vec::new(), false);
    };
    attempt.broadcast = BroadcastStatus::Rejected {
        reason: reason.clone(),
    };
    if !kept {
        return (Vec::new(), false); // an older attempt: recorded, dropped
    }
    let (txid, rate, weight) = (attempt.txid, attempt.feerate, attempt.weight);
    let outpoint = claim.request.outpoint;
    let class = classify_rejection(&reason);
    if class == Rejection::FeeTooLow {
        claim.refused_rate = Some(claim.refused_rate.map_or(rate, |r: FeeRate| r.max(rate)));
        let destination = attempt
            .tx
            .output
            .first()
            .map(|o| o.script_pubkey.clone())
            .unwrap_or_default();
        let end = if batched {
            budget_rate(attempt.fee_sat.max(1), weight).max(rate)
        } else {
            budget_rate(max_fee(&claim.request, &destination), weight)
        };
        if rate < end || batched {
            return (Vec::new(), false); // the next block bumps above the refused rate
        }
        let message = format!(
            "mempool refuses claim {txid} of {outpoint} at {} sat/vB, all its budget of {} sat \
             allows: {reason}",
            rate_text(rate),
            claim.request.budget_sat
        );
        let actions = problem(
            claim,
            AlertKind::DeadlineAtRisk,
            format!("refused: {reason}"),
            message,
        );
        return (actions, false);
    }
    if batched && matches!(class, Rejection::InputConflict | Rejection::Invalid) {
        let what = if class == Rejection::Invalid {
            "a script or policy error"
        } else {
            "a missing or conflicting input"
        };
        let message = format!(
            "broadcast of batched claim {txid} rejected for {what}: {reason}; splitting it into \
             one transaction per input so the offending one cannot hold back the others"
        );
        let actions = problem(
            claim,
            AlertKind::DeadlineAtRisk,
            format!("rejected: {reason}"),
            message,
        );
        return (actions, true);
    }
    let message = format!(
        "broadcast of claim {txid} of {outpoint} rejected: {reason}; rebroadcasting every block"
    );
    let actions = problem(
        claim,
        AlertKind::DeadlineAtRisk,
        format!("rejected: {reason}"),
        message,
    );
    (actions, false)
}
