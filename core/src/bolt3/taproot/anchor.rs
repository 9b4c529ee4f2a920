//! The anchor outputs (section "Commitment Transactions" / "Anchor Outputs").
//!
//! `anchor_internal_key` is `local_delayedpubkey` (the holder's anchor) or `remotepubkey` (the
//! counterparty's): its owner spends by key path at any time; anyone spends by the one leaf
//! `OP_16 OP_CHECKSEQUENCEVERIFY` after 16 blocks, with an empty witness before the leaf.

use bitcoin::opcodes::all::OP_CSV;
use bitcoin::script::Builder;
use bitcoin::secp256k1::PublicKey;
use bitcoin::ScriptBuf;

use super::{TapOutput, TaprootScriptError};

/// An anchor output: its one leaf and its tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// `anchor_script` (the vectors' `sweep`).
    pub script: ScriptBuf,
    /// The output over `anchor_internal_key`.
    pub output: TapOutput,
}

/// `anchor_script`: `OP_16 OP_CHECKSEQUENCEVERIFY`.
pub fn anchor_script() -> ScriptBuf {
    Builder::new()
        .push_int(16)
        .push_opcode(OP_CSV)
        .into_script()
}

/// The anchor output whose internal key is `anchor_internal_key`.
pub fn anchor(anchor_internal_key: &PublicKey) -> Result<Anchor, TaprootScriptError> {
    let script = anchor_script();
    let output = TapOutput::new(anchor_internal_key, &[&script])?;
    Ok(Anchor { script, output })
}

/// The holder's anchor (`to_local_anchor`): internal key `local_delayedpubkey`.
pub fn local_anchor(local_delayed_pubkey: &PublicKey) -> Result<Anchor, TaprootScriptError> {
    anchor(local_delayed_pubkey)
}

/// The counterparty's anchor (`to_remote_anchor`): internal key `remotepubkey`.
pub fn remote_anchor(remote_pubkey: &PublicKey) -> Result<Anchor, TaprootScriptError> {
    anchor(remote_pubkey)
}
