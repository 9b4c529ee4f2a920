//! Segwit v0 signature hashes and deterministic (RFC 6979) ECDSA signatures for P2WSH and P2WPKH
//! inputs — the only kind of input contractcourt ever signs.
//!
//! The core itself holds no private keys outside `sim` and tests: a driver's signer calls these
//! with keys it derives from the basepoint and tweak named in a sign request.

use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::{Message, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Amount, Script, Transaction};

use super::secp;

/// Why a signature hash could not be computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SighashError {
    /// The input index is not an input of the transaction.
    InputOutOfRange {
        /// The index asked for.
        index: usize,
        /// How many inputs the transaction has.
        inputs: usize,
    },
    /// `SIGHASH_SINGLE` for an input with no output at the same index.
    SingleWithoutOutput {
        /// The input index.
        index: usize,
    },
}

impl std::fmt::Display for SighashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SighashError::InputOutOfRange { index, inputs } => {
                write!(
                    f,
                    "input {index} out of range: the transaction has {inputs} inputs"
                )
            }
            SighashError::SingleWithoutOutput { index } => {
                write!(
                    f,
                    "sighash_single for input {index} with no output at that index"
                )
            }
        }
    }
}

impl std::error::Error for SighashError {}

/// The BIP 143 signature hash of input `index` spending a P2WSH output with `witness_script`
/// worth `value`.
pub fn p2wsh_sighash(
    tx: &Transaction,
    index: usize,
    witness_script: &Script,
    value: Amount,
    sighash_type: EcdsaSighashType,
) -> Result<Message, SighashError> {
    check_index(tx, index, sighash_type)?;
    let mut cache = SighashCache::new(tx);
    let hash = cache
        .p2wsh_signature_hash(index, witness_script, value, sighash_type)
        .map_err(|_| SighashError::InputOutOfRange {
            index,
            inputs: tx.input.len(),
        })?;
    Ok(Message::from(hash))
}

/// The BIP 143 signature hash of input `index` spending a P2WPKH output (`script_pubkey`) worth
/// `value`.
pub fn p2wpkh_sighash(
    tx: &Transaction,
    index: usize,
    script_pubkey: &Script,
    value: Amount,
    sighash_type: EcdsaSighashType,
) -> Result<Message, SighashError> {
    check_index(tx, index, sighash_type)?;
    let mut cache = SighashCache::new(tx);
    let hash = cache
        .p2wpkh_signature_hash(index, script_pubkey, value, sighash_type)
        .map_err(|_| SighashError::InputOutOfRange {
            index,
            inputs: tx.input.len(),
        })?;
    Ok(Message::from(hash))
}

/// Sign a signature hash with RFC 6979 deterministic nonces (no extra entropy), as the BOLT 3
/// vectors do, and attach the sighash type.
pub fn sign_message(
    msg: &Message,
    secret: &SecretKey,
    sighash_type: EcdsaSighashType,
) -> Signature {
    Signature {
        signature: secp().sign_ecdsa(msg, secret),
        sighash_type,
    }
}

/// Sign input `index` of `tx`, which spends a P2WSH output with `witness_script` worth `value`.
pub fn sign_p2wsh(
    tx: &Transaction,
    index: usize,
    witness_script: &Script,
    value: Amount,
    sighash_type: EcdsaSighashType,
    secret: &SecretKey,
) -> Result<Signature, SighashError> {
    let msg = p2wsh_sighash(tx, index, witness_script, value, sighash_type)?;
    Ok(sign_message(&msg, secret, sighash_type))
}

fn check_index(
    tx: &Transaction,
    index: usize,
    sighash_type: EcdsaSighashType,
) -> Result<(), SighashError> {
    if index >= tx.input.len() {
        return Err(SighashError::InputOutOfRange {
            index,
            inputs: tx.input.len(),
        });
    }
    let single = matches!(
        sighash_type,
        EcdsaSighashType::Single | EcdsaSighashType::SinglePlusAnyoneCanPay
    );
    if single && index >= tx.output.len() {
        return Err(SighashError::SingleWithoutOutput { index });
    }
    Ok(())
}
