//! What the simple taproot claims (`taproot_sweep`, `taproot_htlc_claim`, `taproot_justice`)
//! share: a version-2 transaction of their inputs paying one destination, the fee at a rate on
//! the signed weight's maximum, refused when what is left would be dust.

use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{Amount, FeeRate, ScriptBuf, Transaction, TxIn, TxOut};

use crate::fee::fee_for_rate;

/// What the fee would leave is below the destination's dust limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Dust {
    /// The inputs' value.
    pub value_sat: u64,
    /// The fee.
    pub fee_sat: u64,
}

/// The weight of `tx` (unsigned) once signed, at most: 2 for the segwit marker and flag, and the
/// inputs' witnesses at their maxima.
pub(super) fn max_signed_weight(tx: &Transaction, witnesses_wu: u64) -> u64 {
    tx.weight().to_wu() + 2 + witnesses_wu
}

/// The claim of `inputs` (worth `value_sat`, witnesses at most `witnesses_wu`) to `destination`
/// at `rate`: version 2, `lock_time`, one output of what the fee leaves.
pub(super) fn claim_tx(
    inputs: Vec<TxIn>,
    lock_time: LockTime,
    value_sat: u64,
    witnesses_wu: u64,
    destination: ScriptBuf,
    rate: FeeRate,
) -> Result<Transaction, Dust> {
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time,
        input: inputs,
        output: vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: destination,
        }],
    };
    let fee_sat = fee_for_rate(rate, max_signed_weight(&tx, witnesses_wu));
    let left = value_sat.saturating_sub(fee_sat);
    if left < tx.output[0].script_pubkey.minimal_non_dust().to_sat() {
        return Err(Dust { value_sat, fee_sat });
    }
    tx.output[0].value = Amount::from_sat(left);
    Ok(tx)
}
