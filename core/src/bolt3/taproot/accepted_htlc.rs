//! Accepted HTLC outputs (section "HTLC Scripts & Transactions" / "Accepted HTLCs"): an HTLC the
//! commitment's holder received (`received_htlc` in BOLT 3).
//!
//! Internal key: `revocation_pubkey`. `htlc_script_root = tapscript_root([htlc_timeout,
//! htlc_success])`.

use bitcoin::hashes::{ripemd160, Hash};
use bitcoin::opcodes::all::{
    OP_CHECKSIG, OP_CHECKSIGVERIFY, OP_CLTV, OP_CSV, OP_EQUALVERIFY, OP_HASH160, OP_SIZE, OP_VERIFY,
};
use bitcoin::script::Builder;
use bitcoin::secp256k1::PublicKey;
use bitcoin::ScriptBuf;

use super::super::PaymentHash;
use super::{x_only, TapOutput, TaprootScriptError};

/// An accepted HTLC output: its two leaves and its tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedHtlc {
    /// `htlc_timeout`: the counterparty after `cltv_expiry` and 1 block.
    pub timeout_script: ScriptBuf,
    /// `htlc_success`: the holder's HTLC-success transaction (preimage and 2-of-2).
    pub success_script: ScriptBuf,
    /// The output over `revocation_pubkey`.
    pub output: TapOutput,
}

/// `OP_SIZE 32 OP_EQUALVERIFY OP_HASH160 <RIPEMD160(payment_hash)> OP_EQUALVERIFY`, the
/// preimage check both success leaves start with.
pub(super) fn preimage_check(payment_hash: &PaymentHash) -> Builder {
    let hash160 = ripemd160::Hash::hash(&payment_hash.0).to_byte_array();
    Builder::new()
        .push_opcode(OP_SIZE)
        .push_int(32)
        .push_opcode(OP_EQUALVERIFY)
        .push_opcode(OP_HASH160)
        .push_slice(hash160)
        .push_opcode(OP_EQUALVERIFY)
}

/// `htlc_timeout`: `<remote_htlcpubkey> OP_CHECKSIGVERIFY 1 OP_CHECKSEQUENCEVERIFY OP_VERIFY
/// <cltv_expiry> OP_CHECKLOCKTIMEVERIFY`.
pub fn timeout_script(remote_htlc_pubkey: &PublicKey, cltv_expiry: u32) -> ScriptBuf {
    Builder::new()
        .push_x_only_key(&x_only(remote_htlc_pubkey))
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_int(1)
        .push_opcode(OP_CSV)
        .push_opcode(OP_VERIFY)
        .push_int(i64::from(cltv_expiry))
        .push_opcode(OP_CLTV)
        .into_script()
}

/// `htlc_success`: `OP_SIZE 32 OP_EQUALVERIFY OP_HASH160 <RIPEMD160(payment_hash)>
/// OP_EQUALVERIFY <local_htlcpubkey> OP_CHECKSIGVERIFY <remote_htlcpubkey> OP_CHECKSIG`.
pub fn success_script(
    local_htlc_pubkey: &PublicKey,
    remote_htlc_pubkey: &PublicKey,
    payment_hash: &PaymentHash,
) -> ScriptBuf {
    preimage_check(payment_hash)
        .push_x_only_key(&x_only(local_htlc_pubkey))
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_x_only_key(&x_only(remote_htlc_pubkey))
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

/// The accepted HTLC output of a commitment with these keys.
pub fn accepted_htlc(
    revocation_pubkey: &PublicKey,
    local_htlc_pubkey: &PublicKey,
    remote_htlc_pubkey: &PublicKey,
    payment_hash: &PaymentHash,
    cltv_expiry: u32,
) -> Result<AcceptedHtlc, TaprootScriptError> {
    let timeout_script = timeout_script(remote_htlc_pubkey, cltv_expiry);
    let success_script = success_script(local_htlc_pubkey, remote_htlc_pubkey, payment_hash);
    let output = TapOutput::new(revocation_pubkey, &[&timeout_script, &success_script])?;
    Ok(AcceptedHtlc {
        timeout_script,
        success_script,
        output,
    })
}
