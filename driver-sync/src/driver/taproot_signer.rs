//! The driver's signer for taproot sign requests (`contractcourt_core::action::taproot`, simple
//! taproot channels): [`InMemorySigner`] derives each input's key from the channel's basepoint
//! secrets and the request's BOLT 3 tweak exactly as for ECDSA inputs, and the request signs
//! with it (BIP 340; script path untweaked, key path tap-tweaked, each checked first against the
//! leaf or the spent output). Beside the [`crate::signer::Signer`] trait, not in it: the core
//! does not emit taproot requests yet (simple taproot channels are refused at registration).

use contractcourt_core::action::{TaprootSignOutcome, TaprootSignRequest};

use crate::signer::InMemorySigner;

impl InMemorySigner {
    /// Sign every input of a taproot request, or refuse naming the first input that cannot be
    /// signed (unknown channel, a wallet input, a key not in its leaf or not the output's key,
    /// an input the transaction does not have, prevouts not one per input).
    pub fn sign_taproot(&self, request: &TaprootSignRequest) -> TaprootSignOutcome {
        request.sign_with(|input| {
            self.signing_key(&input.key)
                .map_err(|e| format!("input {}: {e}", input.input))
        })
    }
}
