//! Standardness: the relay rules of Bitcoin Core's `IsStandardTx`, `AreInputsStandard`,
//! `IsWitnessStandard` and minimum relay fee, for the transaction types the engine builds.
//!
//! Where Core is more permissive than needed this module is stricter (and says so): bare
//! multisig and P2PK outputs are refused, and P2SH redeem scripts' sigop counts are not checked.
//! The relay fee is computed on `ceil(weight / 4)`, ignoring Core's sigop-adjusted size (which
//! only matters for sigop-heavy transactions). A version-3 transaction's own size limit is checked
//! here; the TRUC topology and ephemeral dust spends, which need the unconfirmed parents, are
//! checked on packages ([`super::truc`], [`super::check_package_fee`]).

use bitcoin::{Script, Transaction, TxOut};

use super::minimalif::{check_minimalif_with_prevouts, nested_program};
use super::truc::{check_truc_size, MAX_DUST_OUTPUTS_PER_TX};
use super::{PolicyConfig, PolicyError};

/// The highest standard `nVersion` (3: TRUC).
pub const MAX_STANDARD_VERSION: i32 = 3;
/// The smallest standard size of a transaction without its witness (bytes).
pub const MIN_STANDARD_NON_WITNESS_SIZE: usize = 65;
/// The largest standard `scriptSig` (bytes).
pub const MAX_STANDARD_SCRIPT_SIG_SIZE: usize = 1650;
/// The largest standard P2WSH witness script (bytes).
pub const MAX_STANDARD_P2WSH_SCRIPT_SIZE: usize = 3600;
/// The most witness items a standard P2WSH spend may have besides the script.
pub const MAX_STANDARD_P2WSH_STACK_ITEMS: usize = 100;
/// The largest standard P2WSH (or tapscript) witness item (bytes).
pub const MAX_STANDARD_STACK_ITEM_SIZE: usize = 80;
/// The largest standard `OP_RETURN` output script (bytes; Bitcoin Core before 30.0).
pub const MAX_OP_RETURN_RELAY: usize = 83;
/// The pay-to-anchor script: `OP_1 <0x4e73>`.
pub const P2A_SCRIPT: [u8; 4] = crate::bolt3::scripts::PAY_TO_ANCHOR_SCRIPT;
/// The largest amount (sat).
const MAX_MONEY_SAT: u64 = 21_000_000 * 100_000_000;

/// The standard output script types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScriptKind {
    P2pkh,
    P2sh,
    P2wpkh,
    P2wsh,
    P2tr,
    P2a,
    /// A witness program of a version or length not yet defined.
    WitnessUnknown,
    /// `OP_RETURN` followed by pushes only.
    NullData,
}

fn classify(script: &Script) -> Option<ScriptKind> {
    let bytes = script.as_bytes();
    if script.is_p2pkh() {
        Some(ScriptKind::P2pkh)
    } else if script.is_p2sh() {
        Some(ScriptKind::P2sh)
    } else if script.is_p2wpkh() {
        Some(ScriptKind::P2wpkh)
    } else if script.is_p2wsh() {
        Some(ScriptKind::P2wsh)
    } else if bytes == P2A_SCRIPT {
        Some(ScriptKind::P2a)
    } else if script.is_p2tr() {
        Some(ScriptKind::P2tr)
    } else if let Some(version) = script.witness_version() {
        // Version 0 programs other than 20 or 32 bytes are unspendable, not "unknown".
        (version.to_num() != 0).then_some(ScriptKind::WitnessUnknown)
    } else if script.is_op_return() && Script::from_bytes(&bytes[1..]).is_push_only() {
        Some(ScriptKind::NullData)
    } else {
        None
    }
}

/// The serialised size of a compact-size integer.
fn compact_size_len(n: usize) -> u64 {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// `ceil(vsize * rate / 1000)`: the fee at `rate_sat_per_kvb` for `vsize` virtual bytes
/// (Bitcoin Core's `CFeeRate::GetFee`).
pub fn fee_for_vsize(vsize: u64, rate_sat_per_kvb: u64) -> u64 {
    let fee = (u128::from(vsize) * u128::from(rate_sat_per_kvb)).div_ceil(1000);
    u64::try_from(fee).unwrap_or(u64::MAX)
}

/// Bitcoin Core's `GetDustThreshold`: an output of `script_pubkey` worth less than this is dust
/// at `dust_relay_fee_sat_per_kvb`.
///
/// The output's serialised size plus the size of the input that would spend it (32 + 4 + 1 +
/// 107 / 4 + 4 bytes for a witness program, 32 + 4 + 1 + 107 + 4 otherwise), at the dust relay
/// fee. At 3000 sat/kvB: P2WPKH 294, P2WSH and P2TR 330, pay-to-anchor 240, P2SH 540, P2PKH
/// 546. `OP_RETURN` outputs are never dust (threshold 0).
pub fn dust_threshold(script_pubkey: &Script, dust_relay_fee_sat_per_kvb: u64) -> u64 {
    let len = script_pubkey.len();
    if script_pubkey.is_op_return() || len > 10_000 {
        return 0;
    }
    let output_size = 8 + compact_size_len(len) + len as u64;
    let spend_size = if script_pubkey.is_witness_program() {
        32 + 4 + 1 + 107 / 4 + 4
    } else {
        32 + 4 + 1 + 107 + 4
    };
    fee_for_vsize(output_size + spend_size, dust_relay_fee_sat_per_kvb)
}

/// Whether `tx` would be relayed: every standardness rule, then `fee >= ceil(vsize *
/// min_relay_fee / 1000)`.
///
/// `prevouts[i]` is the output input `i` spends. The rules: `nVersion` 1..=3; weight at most
/// `max_standard_weight`; at least 65 bytes without witness; push-only `scriptSig`s of at most
/// 1650 bytes; standard output types (at most one `OP_RETURN`, of at most 83 bytes);
/// standard prevout types; (Core 29) one dust output allowed only in a transaction that pays no
/// fee — ephemeral dust, which its child must spend ([`super::truc::check_ephemeral_spends`]);
/// a version-3 transaction at most 10,000 vB; witnesses only on witness prevouts (none on pay-to-anchor); P2WSH
/// witness script at most 3600 bytes with at most 100 other items of at most 80 bytes; no
/// taproot annex and tapscript items of at most 80 bytes; MINIMALIF
/// ([`check_minimalif_with_prevouts`]); outputs not worth more than the inputs.
pub fn check_standard(
    tx: &Transaction,
    prevouts: &[TxOut],
    config: &PolicyConfig,
) -> Result<(), PolicyError> {
    let fee_sat = check_standard_except_fee_rate(tx, prevouts, config)?;
    check_fee_rate(fee_sat, tx.vsize() as u64, config)
}

/// `fee_sat >= fee_for_vsize(vsize, min_relay_fee)`.
pub(crate) fn check_fee_rate(
    fee_sat: u64,
    vsize: u64,
    config: &PolicyConfig,
) -> Result<(), PolicyError> {
    let min_fee_sat = fee_for_vsize(vsize, config.min_relay_fee_sat_per_kvb);
    if fee_sat < min_fee_sat {
        return Err(PolicyError::FeeBelowMinRelay {
            fee_sat,
            min_fee_sat,
            vsize,
        });
    }
    Ok(())
}

/// Every rule of [`check_standard`] except the fee rate; returns the fee (sat).
pub(crate) fn check_standard_except_fee_rate(
    tx: &Transaction,
    prevouts: &[TxOut],
    config: &PolicyConfig,
) -> Result<u64, PolicyError> {
    if prevouts.len() != tx.input.len() {
        return Err(PolicyError::PrevoutCountMismatch {
            inputs: tx.input.len(),
            prevouts: prevouts.len(),
        });
    }
    let version = tx.version.0;
    if !(1..=MAX_STANDARD_VERSION).contains(&version) {
        return Err(PolicyError::VersionNonStandard { version });
    }
    let weight = tx.weight().to_wu();
    if weight > config.max_standard_weight {
        return Err(PolicyError::WeightTooHigh {
            weight,
            max: config.max_standard_weight,
        });
    }
    check_truc_size(tx).map_err(PolicyError::Truc)?;
    let non_witness_size = tx.base_size();
    if non_witness_size < MIN_STANDARD_NON_WITNESS_SIZE {
        return Err(PolicyError::TooSmall { non_witness_size });
    }
    for (input, txin) in tx.input.iter().enumerate() {
        let size = txin.script_sig.len();
        if size > MAX_STANDARD_SCRIPT_SIG_SIZE || !txin.script_sig.is_push_only() {
            return Err(PolicyError::ScriptSigNonStandard { input, size });
        }
    }
    check_outputs(tx, prevouts, config)?;
    for (input, (txin, prevout)) in tx.input.iter().zip(prevouts).enumerate() {
        check_input(input, txin, prevout)?;
    }
    check_minimalif_with_prevouts(tx, prevouts)?;
    fee(tx, prevouts)
}

/// Output types, `OP_RETURN` count and dust: one dust output passes only in a transaction that
/// pays no fee (Core 29 `IsStandardTx` and `PreCheckEphemeralTx`, both reason "dust").
fn check_outputs(
    tx: &Transaction,
    prevouts: &[TxOut],
    config: &PolicyConfig,
) -> Result<(), PolicyError> {
    let mut data_outputs = 0;
    let mut dust = Vec::new();
    for (output, txout) in tx.output.iter().enumerate() {
        match classify(&txout.script_pubkey) {
            None => return Err(PolicyError::OutputNonStandard { output }),
            Some(ScriptKind::NullData) => {
                if txout.script_pubkey.len() > MAX_OP_RETURN_RELAY {
                    return Err(PolicyError::OutputNonStandard { output });
                }
                data_outputs += 1;
            }
            Some(_) => {}
        }
        let threshold_sat = dust_threshold(&txout.script_pubkey, config.dust_relay_fee_sat_per_kvb);
        let value_sat = txout.value.to_sat();
        if value_sat < threshold_sat {
            dust.push(PolicyError::Dust {
                output,
                value_sat,
                threshold_sat,
            });
        }
    }
    let ephemeral = dust.len() <= MAX_DUST_OUTPUTS_PER_TX && fee(tx, prevouts) == Ok(0);
    if let (Some(first), false) = (dust.into_iter().next(), ephemeral) {
        return Err(first);
    }
    if data_outputs > 1 {
        return Err(PolicyError::MultipleDataOutputs {
            count: data_outputs,
        });
    }
    Ok(())
}

/// `AreInputsStandard` and `IsWitnessStandard` for one input.
fn check_input(input: usize, txin: &bitcoin::TxIn, prevout: &TxOut) -> Result<(), PolicyError> {
    let kind = classify(&prevout.script_pubkey);
    if matches!(
        kind,
        None | Some(ScriptKind::WitnessUnknown | ScriptKind::NullData)
    ) {
        return Err(PolicyError::InputNonStandard { input });
    }
    let witness = &txin.witness;
    if witness.is_empty() {
        return Ok(());
    }
    if kind == Some(ScriptKind::P2a) {
        return Err(PolicyError::UnexpectedWitness { input });
    }
    let (program, nested) = if kind == Some(ScriptKind::P2sh) {
        (nested_program(&txin.script_sig), true)
    } else {
        (prevout.script_pubkey.as_script(), false)
    };
    if program.is_p2wsh() {
        let script_size = witness.last().map_or(0, <[u8]>::len);
        if script_size > MAX_STANDARD_P2WSH_SCRIPT_SIZE {
            return Err(PolicyError::WitnessScriptTooLarge {
                input,
                size: script_size,
                max: MAX_STANDARD_P2WSH_SCRIPT_SIZE,
            });
        }
        let items = witness.len() - 1;
        if items > MAX_STANDARD_P2WSH_STACK_ITEMS {
            return Err(PolicyError::TooManyWitnessItems {
                input,
                items,
                max: MAX_STANDARD_P2WSH_STACK_ITEMS,
            });
        }
        check_item_sizes(input, witness.iter().take(items))
    } else if program.is_p2tr() && !nested {
        let mut items: Vec<&[u8]> = witness.iter().collect();
        if items.len() >= 2 && items.last().is_some_and(|a| a.first() == Some(&0x50)) {
            return Err(PolicyError::TaprootAnnex { input });
        }
        // Script path with a tapscript leaf: the items before script and control block.
        let is_tapscript = items.len() >= 2
            && items
                .last()
                .and_then(|control| control.first())
                .is_some_and(|leaf| leaf & 0xfe == 0xc0);
        if is_tapscript {
            items.truncate(items.len() - 2);
            check_item_sizes(input, items.into_iter())?;
        }
        Ok(())
    } else if program.is_witness_program() {
        Ok(())
    } else {
        Err(PolicyError::UnexpectedWitness { input })
    }
}

fn check_item_sizes<'a>(
    input: usize,
    items: impl Iterator<Item = &'a [u8]>,
) -> Result<(), PolicyError> {
    for (item, bytes) in items.enumerate() {
        if bytes.len() > MAX_STANDARD_STACK_ITEM_SIZE {
            return Err(PolicyError::WitnessItemTooLarge {
                input,
                item,
                size: bytes.len(),
                max: MAX_STANDARD_STACK_ITEM_SIZE,
            });
        }
    }
    Ok(())
}

/// `sum(prevouts) - sum(outputs)`, refusing out-of-range sums and negative fees.
pub(crate) fn fee(tx: &Transaction, prevouts: &[TxOut]) -> Result<u64, PolicyError> {
    let inputs_sat = sum_sat(prevouts.iter())?;
    let outputs_sat = sum_sat(tx.output.iter())?;
    inputs_sat
        .checked_sub(outputs_sat)
        .ok_or(PolicyError::NegativeFee {
            inputs_sat,
            outputs_sat,
        })
}

/// The sum of the outputs' values, if it is a valid amount.
fn sum_sat<'a>(outputs: impl Iterator<Item = &'a TxOut>) -> Result<u64, PolicyError> {
    outputs
        .map(|o| o.value.to_sat())
        .try_fold(0u64, |acc, v| {
            acc.checked_add(v).filter(|total| *total <= MAX_MONEY_SAT)
        })
        .ok_or(PolicyError::ValueOutOfRange)
}

#[cfg(test)]
#[path = "standard_tests.rs"]
mod tests;
