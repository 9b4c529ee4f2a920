//! A signer for simulations and tests: answers the core's sign requests with a simulated party's
//! keys, deriving each key from its basepoint secret and the request's BOLT 3 tweak.

use bitcoin::secp256k1::SecretKey;
use bitcoin::Amount;

use crate::action::{
    Basepoint, KeyTweak, SignRequest, SigningKey, TaprootSignOutcome, TaprootSignRequest,
};
use crate::bolt3::{keys, sign};
use crate::event::{InputSignature, SignOutcome};
use crate::types::ChannelId;

use super::{PartySecrets, SimError};

impl PartySecrets {
    /// The private key a sign request names.
    pub fn signing_key(
        &self,
        basepoint: Basepoint,
        tweak: &KeyTweak,
    ) -> Result<SecretKey, SimError> {
        let base = match basepoint {
            Basepoint::Funding => &self.funding,
            Basepoint::Revocation => &self.revocation_base,
            Basepoint::Payment => &self.payment_base,
            Basepoint::DelayedPayment => &self.delayed_payment_base,
            Basepoint::Htlc => &self.htlc_base,
        };
        match tweak {
            KeyTweak::None => Ok(*base),
            KeyTweak::PerCommitmentPoint { point } => {
                keys::derive_privkey(base, point).map_err(SimError::Key)
            }
            KeyTweak::Revocation {
                per_commitment_secret,
            } => self.revocation_key(per_commitment_secret),
        }
    }

    /// Sign every channel input of a request with these keys, whatever channel the input names
    /// (P2WSH, or P2WPKH when the script is a P2WPKH scriptPubKey) — for requests of one
    /// channel; a request spanning channels needs [`sign_per_channel`]. Wallet inputs are
    /// skipped: the wallet signs those.
    pub fn sign(&self, request: &SignRequest) -> SignOutcome {
        sign_per_channel(request, |_| Some(self))
    }
}

impl PartySecrets {
    /// Sign every input of a taproot request with these keys (BIP 340; see
    /// [`crate::action::taproot`]): the key each input names, untweaked on a script path,
    /// tap-tweaked on a key path. A wallet input fails the request (no taproot wallet here).
    pub fn sign_taproot(&self, request: &TaprootSignRequest) -> TaprootSignOutcome {
        request.sign_with(|input| match &input.key {
            SigningKey::Channel {
                basepoint, tweak, ..
            } => self.signing_key(*basepoint, tweak),
            SigningKey::Wallet => Err(SimError::OutOfOrder("a wallet input in a taproot request")),
        })
    }
}

/// Sign each channel input of `request` with the keys of the channel it names, as `keys_of`
/// gives them (P2WSH, or P2WPKH when the script is a P2WPKH scriptPubKey): a sweep batching
/// outputs of several channels gets each input's signature from its own channel's keys. An
/// input of a channel `keys_of` does not know fails the request. Wallet inputs are skipped: the
/// wallet signs those.
pub fn sign_per_channel<'a>(
    request: &SignRequest,
    keys_of: impl Fn(&ChannelId) -> Option<&'a PartySecrets>,
) -> SignOutcome {
    let mut signatures = Vec::new();
    for input in &request.inputs {
        let SigningKey::Channel {
            channel,
            basepoint,
            tweak,
        } = &input.key
        else {
            continue; // the wallet signs its own inputs
        };
        let Some(secrets) = keys_of(channel) else {
            return SignOutcome::Failed {
                reason: format!("no keys for channel {channel}"),
            };
        };
        let key = match secrets.signing_key(*basepoint, tweak) {
            Ok(k) => k,
            Err(e) => {
                return SignOutcome::Failed {
                    reason: e.to_string(),
                }
            }
        };
        let index = input.input as usize;
        let value = Amount::from_sat(input.value_sat);
        let msg = if input.script.is_p2wpkh() {
            sign::p2wpkh_sighash(&request.tx, index, &input.script, value, input.sighash)
        } else {
            sign::p2wsh_sighash(&request.tx, index, &input.script, value, input.sighash)
        };
        match msg {
            Ok(msg) => signatures.push(InputSignature {
                input: input.input,
                signature: sign::sign_message(&msg, &key, input.sighash),
            }),
            Err(e) => {
                return SignOutcome::Failed {
                    reason: e.to_string(),
                }
            }
        }
    }
    SignOutcome::Signed {
        signatures,
        witnesses: Vec::new(),
    }
}
