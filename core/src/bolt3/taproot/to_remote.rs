//! The `to_remote` output (section "Commitment Transactions" / "To Remote Outputs").
//!
//! Internal key: `simple_taproot_nums` (the section's own text names another point and a
//! `combined_funding_key` control block; the extension's NUMS section and its test vectors use
//! `simple_taproot_nums`, which is what this builds — see DESIGN.md).
//! `to_remote_script_root = tapscript_root([to_remote_script])`.

use bitcoin::opcodes::all::{OP_CHECKSIGVERIFY, OP_CSV};
use bitcoin::script::Builder;
use bitcoin::secp256k1::PublicKey;
use bitcoin::ScriptBuf;

use super::{simple_taproot_nums, x_only, TapOutput, TaprootScriptError};

/// The `to_remote` output: its one leaf and its tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToRemote {
    /// `to_remote_script` (the vectors' `settle`).
    pub script: ScriptBuf,
    /// The output over `simple_taproot_nums`.
    pub output: TapOutput,
}

/// `to_remote_script`: `<remotepubkey> OP_CHECKSIGVERIFY 1 OP_CHECKSEQUENCEVERIFY`.
pub fn to_remote_script(remote_pubkey: &PublicKey) -> ScriptBuf {
    Builder::new()
        .push_x_only_key(&x_only(remote_pubkey))
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_int(1)
        .push_opcode(OP_CSV)
        .into_script()
}

/// The `to_remote` output paying `remotepubkey`.
pub fn to_remote(remote_pubkey: &PublicKey) -> Result<ToRemote, TaprootScriptError> {
    let script = to_remote_script(remote_pubkey);
    let output = TapOutput::new(&simple_taproot_nums(), &[&script])?;
    Ok(ToRemote { script, output })
}
