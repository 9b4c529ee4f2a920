//! Coin selection for a [`FundingRequest`], as a pure function a wallet may use: it gives the
//! same arithmetic the core checks the answer with.

use bitcoin::{Amount, Script, TxOut};

use crate::action::FundingRequest;
use crate::bolt3::weights::{output_weight, INPUT_NON_WITNESS_WEIGHT};
use crate::event::{FundingOutcome, WalletInput};
use crate::fee::child_fee_for_rate;
use crate::fee::DUST_RELAY_FEE_SAT_PER_KVB;
use crate::policy::dust_threshold;

use super::BUDGET_SLACK_SAT;

/// Choose inputs among `available` (the inputs the request asks to reuse first, then the
/// largest) until they pay the request's rate — for the transaction alone, or with its parent —
/// with a change output to `change_script` above dust, or exactly without change when the
/// template has outputs of its own. When the rate at the weight of the inputs chosen would cost
/// more than the budget (a thin wallet's many small coins, a fee spike), they pay the whole
/// budget instead: the most the claim may pay, and what gets it, and its parent, to the chain.
/// Fails, saying why, when the funds fall short.
pub fn select_inputs(
    request: &FundingRequest,
    available: &[WalletInput],
    change_script: &Script,
) -> FundingOutcome {
    let mut order: Vec<&WalletInput> = available
        .iter()
        .filter(|w| request.reuse.contains(&w.outpoint))
        .collect();
    let mut rest: Vec<&WalletInput> = available
        .iter()
        .filter(|w| !request.reuse.contains(&w.outpoint))
        .collect();
    rest.sort_by(|a, b| {
        b.txout
            .value
            .cmp(&a.txout.value)
            .then(a.outpoint.cmp(&b.outpoint))
    });
    order.extend(rest);

    let outputs: u64 = request
        .template
        .output
        .iter()
        .map(|o| o.value.to_sat())
        .sum();
    let dust = dust_threshold(change_script, DUST_RELAY_FEE_SAT_PER_KVB);
    let change_weight = output_weight(change_script.len());
    // With its parent, the package reaches the rate; alone, the transaction pays at least the
    // rate too (a mempool judges a child on its own as well).
    let fee_at = |weight: u64| {
        child_fee_for_rate(
            request.target_feerate,
            weight,
            request.parent_fee_sat,
            request.parent_weight,
        )
    };
    let mut chosen = Vec::new();
    let mut value_in = request.template_inputs_sat;
    let mut weight = request.template_weight;
    let mut over_budget = false;
    for w in order {
        chosen.push(w.clone());
        value_in = value_in.saturating_add(w.txout.value.to_sat());
        weight = weight
            .saturating_add(INPUT_NON_WITNESS_WEIGHT)
            .saturating_add(w.satisfaction_weight);
        let fee = fee_at(weight.saturating_add(change_weight));
        if fee > request.max_fee_sat {
            // The rate is out of the budget's reach at this weight: the whole budget is the
            // most the claim may pay, so pay it (less at most `BUDGET_SLACK_SAT`, to keep the
            // change above dust), adding inputs until they cover it.
            over_budget = true;
            if let Some(funded) =
                pay_the_budget(request, &chosen, value_in, outputs, dust, change_script)
            {
                return funded;
            }
            continue;
        }
        let Some(left) = value_in.checked_sub(outputs.saturating_add(fee)) else {
            continue;
        };
        if left >= dust {
            return FundingOutcome::Funded {
                inputs: chosen,
                change: Some(TxOut {
                    value: Amount::from_sat(left),
                    script_pubkey: change_script.to_owned(),
                }),
            };
        }
        let fee_without = value_in.saturating_sub(outputs);
        if !request.template.output.is_empty()
            && fee_without >= fee_at(weight)
            && fee_without <= request.max_fee_sat
        {
            return FundingOutcome::Funded {
                inputs: chosen,
                change: None,
            };
        }
    }
    FundingOutcome::Failed {
        reason: if over_budget {
            format!(
                "insufficient confirmed funds to pay this claim's budget of {} sat \
                 (its rate of {} would cost more)",
                request.max_fee_sat, request.target_feerate
            )
        } else {
            "insufficient confirmed funds".into()
        },
    }
}

/// Inputs `chosen` (worth `value_in` with the template's own) paying the request's whole budget:
/// with change above dust, or — when what is left over is too small for change — with change at
/// exactly dust, or without change when the template has outputs of its own; the fee is never
/// above the budget nor more than [`BUDGET_SLACK_SAT`] below it. `None` when they fall short.
fn pay_the_budget(
    request: &FundingRequest,
    chosen: &[WalletInput],
    value_in: u64,
    outputs: u64,
    dust: u64,
    change_script: &Script,
) -> Option<FundingOutcome> {
    let budget = request.max_fee_sat;
    let spendable = value_in.checked_sub(outputs)?;
    let least = budget.saturating_sub(BUDGET_SLACK_SAT);
    let change = |value: u64| {
        Some(FundingOutcome::Funded {
            inputs: chosen.to_vec(),
            change: Some(TxOut {
                value: Amount::from_sat(value),
                script_pubkey: change_script.to_owned(),
            }),
        })
    };
    if spendable >= budget.saturating_add(dust) {
        return change(spendable - budget);
    }
    if spendable >= least.saturating_add(dust) {
        return change(dust);
    }
    if !request.template.output.is_empty() && (least..=budget).contains(&spendable) {
        return Some(FundingOutcome::Funded {
            inputs: chosen.to_vec(),
            change: None,
        });
    }
    None
}
