//! Transaction checks delegated to Bitcoin Core's code in the kernel: the context-free
//! `CheckTransaction` and the script interpreter with every consensus flag (P2SH, DERSIG,
//! NULLDUMMY, CHECKLOCKTIMEVERIFY, CHECKSEQUENCEVERIFY, WITNESS, TAPROOT), given all spent
//! outputs (taproot signatures commit to them).

use bitcoin::{Transaction, TxOut};
use bitcoinkernel::prelude::*;
use bitcoinkernel::{
    verify, KernelError, PrecomputedTransactionData, ScriptPubkey, ScriptVerifyError,
    TxCheckResult, VERIFY_ALL,
};

use super::MempoolReject;

fn invalid(e: impl std::fmt::Display) -> MempoolReject {
    MempoolReject::Invalid {
        reason: e.to_string().to_lowercase(),
    }
}

fn kernel_tx(tx: &Transaction) -> Result<bitcoinkernel::Transaction, MempoolReject> {
    bitcoinkernel::Transaction::new(&bitcoin::consensus::serialize(tx)).map_err(invalid)
}

/// Bitcoin Core's `CheckTransaction`: non-empty inputs and outputs, output values in range,
/// no duplicate inputs, size limits, coinbase `scriptSig` length, no null prevouts.
pub(super) fn check_transaction(tx: &Transaction) -> Result<(), MempoolReject> {
    match kernel_tx(tx)?.check() {
        TxCheckResult::Valid => Ok(()),
        TxCheckResult::Invalid(result) => Err(MempoolReject::Invalid {
            reason: format!(
                "bitcoin core's context-free checks failed ({})",
                format!("{result:?}").to_lowercase()
            ),
        }),
    }
}

/// Verify every input of `tx` against `prevouts` (one per input) with Bitcoin Core's script
/// interpreter and all consensus flags.
pub(super) fn verify_scripts(tx: &Transaction, prevouts: &[TxOut]) -> Result<(), MempoolReject> {
    if prevouts.len() != tx.input.len() {
        return Err(invalid(format!(
            "{} prevouts for {} inputs",
            prevouts.len(),
            tx.input.len()
        )));
    }
    let ktx = kernel_tx(tx)?;
    let mut scripts = Vec::with_capacity(prevouts.len());
    let mut spent = Vec::with_capacity(prevouts.len());
    for (input, prevout) in prevouts.iter().enumerate() {
        let script = ScriptPubkey::new(prevout.script_pubkey.as_bytes()).map_err(|e| {
            MempoolReject::ScriptFailure {
                input,
                reason: e.to_string().to_lowercase(),
            }
        })?;
        let value = i64::try_from(prevout.value.to_sat()).map_err(|_| {
            invalid(format!(
                "prevout of input {input} has an out-of-range value"
            ))
        })?;
        spent.push(bitcoinkernel::TxOut::new(&script, value));
        scripts.push((script, value));
    }
    let data = PrecomputedTransactionData::new(&ktx, &spent).map_err(invalid)?;
    for (input, (script, value)) in scripts.iter().enumerate() {
        verify(script, Some(*value), &ktx, input, Some(VERIFY_ALL), &data).map_err(|e| {
            MempoolReject::ScriptFailure {
                input,
                reason: describe(&e),
            }
        })?;
    }
    Ok(())
}

fn describe(e: &KernelError) -> String {
    match e {
        KernelError::ScriptVerify(ScriptVerifyError::Invalid) => {
            "bitcoin core's script interpreter returned false".to_owned()
        }
        other => other.to_string().to_lowercase(),
    }
}
