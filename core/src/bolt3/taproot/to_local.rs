//! The `to_local` output (section "Commitment Transactions" / "To Local Outputs").
//!
//! Internal key: `simple_taproot_nums`, so only the script paths spend it and spending either
//! reveals `local_delayedpubkey` (the anchors' internal key) on chain.
//! `to_delay_script_root = tapscript_root([to_delay_script, revoke_script])`.

use bitcoin::opcodes::all::{OP_CHECKSIG, OP_CHECKSIGVERIFY, OP_CSV, OP_DROP};
use bitcoin::script::Builder;
use bitcoin::secp256k1::PublicKey;
use bitcoin::ScriptBuf;

use super::{simple_taproot_nums, x_only, TapOutput, TaprootScriptError};

/// The `to_local` output: its two leaves and its tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToLocal {
    /// `to_delay_script`: the holder after `to_self_delay` blocks (the vectors' `settle`).
    pub delay_script: ScriptBuf,
    /// `revoke_script`: the counterparty once the commitment is revoked (`revocation`).
    pub revoke_script: ScriptBuf,
    /// The output over `simple_taproot_nums`.
    pub output: TapOutput,
}

/// `to_delay_script`: `<local_delayedpubkey> OP_CHECKSIGVERIFY <to_self_delay> OP_CHECKSEQUENCEVERIFY`.
pub fn to_delay_script(local_delayed_pubkey: &PublicKey, to_self_delay: u16) -> ScriptBuf {
    Builder::new()
        .push_x_only_key(&x_only(local_delayed_pubkey))
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_int(i64::from(to_self_delay))
        .push_opcode(OP_CSV)
        .into_script()
}

/// `revoke_script`: `<local_delayedpubkey> OP_DROP <revocation_pubkey> OP_CHECKSIG` (the no-op
/// push reveals `local_delayedpubkey`).
pub fn revoke_script(local_delayed_pubkey: &PublicKey, revocation_pubkey: &PublicKey) -> ScriptBuf {
    Builder::new()
        .push_x_only_key(&x_only(local_delayed_pubkey))
        .push_opcode(OP_DROP)
        .push_x_only_key(&x_only(revocation_pubkey))
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

/// The `to_local` output of a commitment with these keys.
pub fn to_local(
    local_delayed_pubkey: &PublicKey,
    revocation_pubkey: &PublicKey,
    to_self_delay: u16,
) -> Result<ToLocal, TaprootScriptError> {
    let delay_script = to_delay_script(local_delayed_pubkey, to_self_delay);
    let revoke_script = revoke_script(local_delayed_pubkey, revocation_pubkey);
    let output = TapOutput::new(&simple_taproot_nums(), &[&delay_script, &revoke_script])?;
    Ok(ToLocal {
        delay_script,
        revoke_script,
        output,
    })
}
