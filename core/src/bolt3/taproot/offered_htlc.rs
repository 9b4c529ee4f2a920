//! Offered HTLC outputs (section "HTLC Scripts & Transactions" / "Offered HTLCs"): an HTLC the
//! commitment's holder offered.
//!
//! Internal key: `revocation_pubkey` (the revocation is a key-path spend).
//! `htlc_script_root = tapscript_root([htlc_timeout, htlc_success])`; a script-path spend
//! carries the other leaf's hash as its inclusion proof.

use bitcoin::opcodes::all::{OP_CHECKSIG, OP_CHECKSIGVERIFY, OP_CSV};
use bitcoin::script::Builder;
use bitcoin::secp256k1::PublicKey;
use bitcoin::ScriptBuf;

use super::super::PaymentHash;
use super::{x_only, TapOutput, TaprootScriptError};

/// An offered HTLC output: its two leaves and its tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferedHtlc {
    /// `htlc_timeout`: the holder's HTLC-timeout transaction (2-of-2).
    pub timeout_script: ScriptBuf,
    /// `htlc_success`: the counterparty with the preimage, after 1 block.
    pub success_script: ScriptBuf,
    /// The output over `revocation_pubkey`.
    pub output: TapOutput,
}

/// `htlc_timeout`: `<local_htlcpubkey> OP_CHECKSIGVERIFY <remote_htlcpubkey> OP_CHECKSIG`.
pub fn timeout_script(local_htlc_pubkey: &PublicKey, remote_htlc_pubkey: &PublicKey) -> ScriptBuf {
    Builder::new()
        .push_x_only_key(&x_only(local_htlc_pubkey))
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_x_only_key(&x_only(remote_htlc_pubkey))
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

/// `htlc_success`: `OP_SIZE 32 OP_EQUALVERIFY OP_HASH160 <RIPEMD160(payment_hash)>
/// OP_EQUALVERIFY <remote_htlcpubkey> OP_CHECKSIGVERIFY 1 OP_CHECKSEQUENCEVERIFY`.
pub fn success_script(remote_htlc_pubkey: &PublicKey, payment_hash: &PaymentHash) -> ScriptBuf {
    super::accepted_htlc::preimage_check(payment_hash)
        .push_x_only_key(&x_only(remote_htlc_pubkey))
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_int(1)
        .push_opcode(OP_CSV)
        .into_script()
}

/// The offered HTLC output of a commitment with these keys.
pub fn offered_htlc(
    revocation_pubkey: &PublicKey,
    local_htlc_pubkey: &PublicKey,
    remote_htlc_pubkey: &PublicKey,
    payment_hash: &PaymentHash,
) -> Result<OfferedHtlc, TaprootScriptError> {
    let timeout_script = timeout_script(local_htlc_pubkey, remote_htlc_pubkey);
    let success_script = success_script(remote_htlc_pubkey, payment_hash);
    let output = TapOutput::new(revocation_pubkey, &[&timeout_script, &success_script])?;
    Ok(OfferedHtlc {
        timeout_script,
        success_script,
        output,
    })
}
