//! The output of the second-level HTLC transactions (section "HTLC Second Level Transactions",
//! "HTLC-Success Transactions" and "HTLC-Timeout Transactions"). Both carry the same output:
//! internal key `revocation_pubkey` (a breach is a key-path spend) and one leaf, the holder
//! after `to_self_delay`.

use bitcoin::secp256k1::PublicKey;
use bitcoin::ScriptBuf;

use super::to_local::to_delay_script;
use super::{TapOutput, TaprootScriptError};

/// The output of an HTLC-success or HTLC-timeout transaction: its leaf and its tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondLevelHtlc {
    /// `<local_delayedpubkey> OP_CHECKSIGVERIFY <to_self_delay> OP_CHECKSEQUENCEVERIFY` (the
    /// extension calls it `htlc_success` in one transaction and `htlc_timeout` in the other).
    pub delay_script: ScriptBuf,
    /// The output over `revocation_pubkey`.
    pub output: TapOutput,
}

/// The output of a second-level HTLC transaction of a commitment with these keys.
pub fn second_level_htlc(
    revocation_pubkey: &PublicKey,
    local_delayed_pubkey: &PublicKey,
    to_self_delay: u16,
) -> Result<SecondLevelHtlc, TaprootScriptError> {
    let delay_script = to_delay_script(local_delayed_pubkey, to_self_delay);
    let output = TapOutput::new(revocation_pubkey, &[&delay_script])?;
    Ok(SecondLevelHtlc {
        delay_script,
        output,
    })
}
