//! Coin selection for a [`FundingRequest`], as a pure function a wallet may use: it gives the
//! same arithmetic the core checks the answer with.

use bitcoin::{Amount, Script, TxOut};

use crate::action::FundingRequest;
use crate::bolt3::weights::{output_weight, INPUT_NON_WITNESS_WEIGHT};
use crate::event::{FundingOutcome, WalletInput};
use crate::fee::child_fee_for_rate;
use crate::fee::DUST_RELAY_FEE_SAT_PER_KVB;
use crate::policy::dust_threshold;

/// Choose inputs among `available` (the inputs the request asks to reuse first, then the
/// largest) until they pay the request's rate — for the transaction alone, or with its parent —
/// with a change output to `change_script` above dust, or exactly without change when the
/// template has outputs of its own. Fails, saying why, when the funds or the budget fall short.
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
            over_budget = true;
            break;
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
                "paying {} for this claim would cost more than its budget of {} sat",
                request.target_feerate, request.max_fee_sat
            )
        } else {
            "insufficient confirmed funds".into()
        },
    }
}
