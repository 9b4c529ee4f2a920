//! Witnesses for every spend path of the simple taproot channel outputs, and the BIP 341
//! sighashes their signatures commit to.
//!
//! A script-path witness is, in BIP 341 order, the leaf's arguments (bottom of the stack first),
//! then the leaf script, then the control block (section "Taproot Script Path Spends"). A
//! key-path witness is the one signature. A signature is 64 bytes under `SIGHASH_DEFAULT` and 65
//! (the sighash byte appended) otherwise: [`bitcoin::taproot::Signature::serialize`] does that,
//! so every builder takes that type rather than raw bytes.
//!
//! Witness shapes (sections "To Local Outputs", "To Remote Outputs", "Anchor Outputs", "Offered
//! HTLCs", "Accepted HTLCs", "HTLC-Success/Timeout Transactions"):
//!
//! | output | path | witness | nSequence / locktime |
//! |---|---|---|---|
//! | `to_local` | delay | `<local_delayedsig> <to_delay_script> <cb>` | `to_self_delay` |
//! | `to_local` | revoke | `<revoke_sig> <revoke_script> <cb>` | any |
//! | `to_remote` | leaf | `<remote_sig> <to_remote_script> <cb>` | 1 |
//! | anchor | key path | `<sig>` (internal key tweaked with the leaf's root) | any |
//! | anchor | sweep | `<anchor_script> <cb>` (no argument: anyone) | 16 |
//! | offered HTLC | timeout (HTLC-timeout tx) | `<remotehtlcsig> <localhtlcsig> <htlc_timeout> <cb>` | 1 / `cltv_expiry` |
//! | offered HTLC | success (counterparty) | `<remotehtlcsig> <preimage> <htlc_success> <cb>` | 1 |
//! | accepted HTLC | success (HTLC-success tx) | `<remotehtlcsig> <localhtlcsig> <preimage> <htlc_success> <cb>` | 1 / 0 |
//! | accepted HTLC | timeout (counterparty) | `<remotehtlcsig> <htlc_timeout> <cb>` | 1 / `cltv_expiry` |
//! | HTLC outputs, second-level output | revocation key path | `<revocation_sig>` | any |
//! | second-level output | delay | `<local_delayedsig> <delay_script> <cb>` | `to_self_delay` |

use bitcoin::hashes::{hash160, Hash};
use bitcoin::key::{Keypair, TapTweak};
use bitcoin::secp256k1::{Message, SecretKey};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighash, TapSighashType};
use bitcoin::taproot::{ControlBlock, Signature};
use bitcoin::{Script, Transaction, TxOut, Witness};

use super::super::{secp, PaymentPreimage};
use super::accepted_htlc::AcceptedHtlc;
use super::anchor::Anchor;
use super::offered_htlc::OfferedHtlc;
use super::second_level::SecondLevelHtlc;
use super::to_local::ToLocal;
use super::to_remote::ToRemote;
use super::{leaf_hash, TapOutput, TaprootScriptError};

/// Why a taproot witness or signature could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaprootSpendError {
    /// The leaf is not in the output's tree (no control block).
    Script(TaprootScriptError),
    /// The preimage does not open the success leaf's `RIPEMD160(payment_hash)`.
    PreimageMismatch,
    /// The leaf script is not a success leaf (no 20-byte hash where the preimage check has it).
    NotASuccessLeaf,
    /// The input to sign is not in the transaction.
    InputOutOfRange {
        /// The input asked for.
        input: usize,
        /// The transaction's inputs.
        inputs: usize,
    },
    /// A taproot signature commits to every spent output: one prevout per input is needed.
    PrevoutsMismatch {
        /// Prevouts given.
        prevouts: usize,
        /// The transaction's inputs.
        inputs: usize,
    },
    /// The sighash could not be computed.
    Sighash(String),
}

impl std::fmt::Display for TaprootSpendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaprootSpendError::Script(e) => write!(f, "{e}"),
            TaprootSpendError::PreimageMismatch => {
                f.write_str("the preimage does not hash to the success leaf's payment hash")
            }
            TaprootSpendError::NotASuccessLeaf => f.write_str("the leaf has no preimage check"),
            TaprootSpendError::InputOutOfRange { input, inputs } => {
                write!(f, "input {input} of a transaction with {inputs} inputs")
            }
            TaprootSpendError::PrevoutsMismatch { prevouts, inputs } => {
                write!(f, "{prevouts} spent outputs for {inputs} inputs")
            }
            TaprootSpendError::Sighash(e) => write!(f, "taproot sighash: {e}"),
        }
    }
}

impl std::error::Error for TaprootSpendError {}

impl From<TaprootScriptError> for TaprootSpendError {
    fn from(e: TaprootScriptError) -> Self {
        TaprootSpendError::Script(e)
    }
}

/// A script-path witness: `args` (bottom of the stack first), the leaf, its control block.
pub fn script_path_witness(args: &[&[u8]], leaf: &Script, control_block: &ControlBlock) -> Witness {
    let mut witness = Witness::new();
    for arg in args {
        witness.push(arg);
    }
    witness.push(leaf.as_bytes());
    witness.push(control_block.serialize());
    witness
}

/// A key-path witness: the one signature.
pub fn key_path_witness(sig: &Signature) -> Witness {
    let mut witness = Witness::new();
    witness.push(sig.serialize());
    witness
}

fn reveal(output: &TapOutput, leaf: &Script, args: &[&[u8]]) -> Result<Witness, TaprootSpendError> {
    let control_block = output.control_block(leaf)?;
    Ok(script_path_witness(args, leaf, &control_block))
}

/// The 20-byte `RIPEMD160(payment_hash)` a success leaf checks: `OP_SIZE 32 OP_EQUALVERIFY
/// OP_HASH160 <20 bytes> ...` puts it at bytes 6..26.
pub(super) fn success_leaf_hash160(leaf: &Script) -> Option<[u8; 20]> {
    let b = leaf.as_bytes();
    let prefix = [0x82, 0x01, 0x20, 0x88, 0xa9, 0x14];
    if b.len() < 27 || b[..6] != prefix || b[26] != 0x88 {
        return None;
    }
    b[6..26].try_into().ok()
}

/// Checks `preimage` against the success leaf's hash: `HASH160(preimage) =
/// RIPEMD160(SHA256(preimage)) = RIPEMD160(payment_hash)`.
fn check_preimage(leaf: &Script, preimage: &PaymentPreimage) -> Result<(), TaprootSpendError> {
    let expected = success_leaf_hash160(leaf).ok_or(TaprootSpendError::NotASuccessLeaf)?;
    if hash160::Hash::hash(&preimage.0).to_byte_array() == expected {
        Ok(())
    } else {
        Err(TaprootSpendError::PreimageMismatch)
    }
}

/// `to_local`, delay leaf: the holder, `nSequence = to_self_delay`.
pub fn to_local_delay(
    out: &ToLocal,
    local_delayed_sig: &Signature,
) -> Result<Witness, TaprootSpendError> {
    reveal(
        &out.output,
        &out.delay_script,
        &[&local_delayed_sig.serialize()],
    )
}

/// `to_local`, revoke leaf: the counterparty of a revoked commitment, with the revocation key.
pub fn to_local_revoke(
    out: &ToLocal,
    revoke_sig: &Signature,
) -> Result<Witness, TaprootSpendError> {
    reveal(&out.output, &out.revoke_script, &[&revoke_sig.serialize()])
}

/// `to_remote`: the counterparty, `nSequence = 1`.
pub fn to_remote(out: &ToRemote, remote_sig: &Signature) -> Result<Witness, TaprootSpendError> {
    reveal(&out.output, &out.script, &[&remote_sig.serialize()])
}

/// Anchor, key path: its owner, with the internal key (`local_delayedpubkey` or `remotepubkey`)
/// tweaked by the anchor's root (see [`sign_key_path`]).
pub fn anchor_key_path(sig: &Signature) -> Witness {
    key_path_witness(sig)
}

/// Anchor, `OP_16 OP_CSV` leaf: anyone, no signature, `nSequence = 16`.
pub fn anchor_sweep(out: &Anchor) -> Result<Witness, TaprootSpendError> {
    reveal(&out.output, &out.script, &[])
}

/// Offered HTLC, timeout leaf: the holder's HTLC-timeout transaction (both signatures;
/// nSequence 1, locktime `cltv_expiry`).
pub fn offered_timeout(
    out: &OfferedHtlc,
    remote_htlc_sig: &Signature,
    local_htlc_sig: &Signature,
) -> Result<Witness, TaprootSpendError> {
    let (remote, local) = (remote_htlc_sig.serialize(), local_htlc_sig.serialize());
    reveal(&out.output, &out.timeout_script, &[&remote, &local])
}

/// Offered HTLC, success leaf: the counterparty with the preimage, `nSequence = 1`.
pub fn offered_success(
    out: &OfferedHtlc,
    remote_htlc_sig: &Signature,
    preimage: &PaymentPreimage,
) -> Result<Witness, TaprootSpendError> {
    check_preimage(&out.success_script, preimage)?;
    let remote = remote_htlc_sig.serialize();
    reveal(&out.output, &out.success_script, &[&remote, &preimage.0])
}

/// Accepted HTLC, success leaf: the holder's HTLC-success transaction (both signatures and the
/// preimage; nSequence 1, locktime 0).
pub fn accepted_success(
    out: &AcceptedHtlc,
    remote_htlc_sig: &Signature,
    local_htlc_sig: &Signature,
    preimage: &PaymentPreimage,
) -> Result<Witness, TaprootSpendError> {
    check_preimage(&out.success_script, preimage)?;
    let (remote, local) = (remote_htlc_sig.serialize(), local_htlc_sig.serialize());
    reveal(
        &out.output,
        &out.success_script,
        &[&remote, &local, &preimage.0],
    )
}

/// Accepted HTLC, timeout leaf: the counterparty after `cltv_expiry` (locktime) and 1 block.
pub fn accepted_timeout(
    out: &AcceptedHtlc,
    remote_htlc_sig: &Signature,
) -> Result<Witness, TaprootSpendError> {
    reveal(
        &out.output,
        &out.timeout_script,
        &[&remote_htlc_sig.serialize()],
    )
}

/// A revoked HTLC output or second-level output, key path: the revocation key tweaked by the
/// output's root (see [`sign_key_path`]).
pub fn revocation_key_path(revocation_sig: &Signature) -> Witness {
    key_path_witness(revocation_sig)
}

/// Second-level output, delay leaf: the holder, `nSequence = to_self_delay`.
pub fn second_level_delay(
    out: &SecondLevelHtlc,
    local_delayed_sig: &Signature,
) -> Result<Witness, TaprootSpendError> {
    reveal(
        &out.output,
        &out.delay_script,
        &[&local_delayed_sig.serialize()],
    )
}

/// Checks what the `bitcoin` crate does not always check: the input exists and there is one
/// spent output per input.
fn check_inputs(
    tx: &Transaction,
    input: usize,
    prevouts: &[TxOut],
) -> Result<(), TaprootSpendError> {
    let inputs = tx.input.len();
    if input >= inputs {
        return Err(TaprootSpendError::InputOutOfRange { input, inputs });
    }
    if prevouts.len() != inputs {
        let prevouts = prevouts.len();
        return Err(TaprootSpendError::PrevoutsMismatch { prevouts, inputs });
    }
    Ok(())
}

/// The BIP 341 script-path sighash of input `input` revealing `leaf`, committing to every
/// spent output (`prevouts`, one per input, in input order).
pub fn script_path_sighash(
    tx: &Transaction,
    input: usize,
    prevouts: &[TxOut],
    leaf: &Script,
    sighash_type: TapSighashType,
) -> Result<TapSighash, TaprootSpendError> {
    check_inputs(tx, input, prevouts)?;
    SighashCache::new(tx)
        .taproot_script_spend_signature_hash(
            input,
            &Prevouts::All(prevouts),
            leaf_hash(leaf),
            sighash_type,
        )
        .map_err(|e| TaprootSpendError::Sighash(e.to_string()))
}

/// The BIP 341 key-path sighash of input `input`, committing to every spent output.
pub fn key_path_sighash(
    tx: &Transaction,
    input: usize,
    prevouts: &[TxOut],
    sighash_type: TapSighashType,
) -> Result<TapSighash, TaprootSpendError> {
    check_inputs(tx, input, prevouts)?;
    SighashCache::new(tx)
        .taproot_key_spend_signature_hash(input, &Prevouts::All(prevouts), sighash_type)
        .map_err(|e| TaprootSpendError::Sighash(e.to_string()))
}

fn schnorr(
    sighash: TapSighash,
    keypair: &Keypair,
    ty: TapSighashType,
    aux: &[u8; 32],
) -> Signature {
    let msg = Message::from_digest(sighash.to_byte_array());
    Signature {
        signature: secp().sign_schnorr_with_aux_rand(&msg, keypair, aux),
        sighash_type: ty,
    }
}

/// A BIP 340 signature by `secret` (the key in the leaf) for a script-path spend of `leaf`.
pub fn sign_script_path(
    tx: &Transaction,
    input: usize,
    prevouts: &[TxOut],
    leaf: &Script,
    sighash_type: TapSighashType,
    secret: &SecretKey,
    aux_rand: &[u8; 32],
) -> Result<Signature, TaprootSpendError> {
    let sighash = script_path_sighash(tx, input, prevouts, leaf, sighash_type)?;
    let keypair = Keypair::from_secret_key(secp(), secret);
    Ok(schnorr(sighash, &keypair, sighash_type, aux_rand))
}

/// A BIP 340 signature for a key-path spend of `output` by the secret of its internal key,
/// tweaked with `tagged_hash("TapTweak", internal_key || root)` (BIP 341; the extension's
/// "tap tweak value" for revoked HTLC outputs).
pub fn sign_key_path(
    tx: &Transaction,
    input: usize,
    prevouts: &[TxOut],
    output: &TapOutput,
    sighash_type: TapSighashType,
    internal_secret: &SecretKey,
    aux_rand: &[u8; 32],
) -> Result<Signature, TaprootSpendError> {
    let sighash = key_path_sighash(tx, input, prevouts, sighash_type)?;
    let keypair = Keypair::from_secret_key(secp(), internal_secret);
    let tweaked = keypair.tap_tweak(secp(), output.merkle_root()).to_keypair();
    Ok(schnorr(sighash, &tweaked, sighash_type, aux_rand))
}
