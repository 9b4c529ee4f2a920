//! Signing the core's sign requests.
//!
//! The core holds none of our private keys: each input of a [`SignRequest`] names its key as one of
//! our channel basepoints plus a BOLT 3 tweak ([`SigningKey::Channel`]). A [`Signer`] turns that
//! into a signature. [`InMemorySigner`] keeps each channel's basepoint secrets in memory and
//! derives every key itself (BOLT 3 "Key Derivation"); a node with its own key manager, or an
//! external (hardware, remote) signer, implements [`Signer`] instead.
//!
//! Wallet inputs ([`SigningKey::Wallet`]) are the wallet's to sign: [`NodeSigner`] pairs a
//! channel signer with a [`WalletSigner`] and routes each input to the one holding its key.
//!
//! A signer answers; it does not decide. It refuses ([`SignOutcome::Failed`]) what it cannot sign
//! — an unknown channel, a wallet input, an input the transaction does not have — and the core
//! decides what to do about it.

use std::collections::BTreeMap;

use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::{Amount, Witness};
use contractcourt_core::action::{Basepoint, KeyTweak, SignInput, SignRequest, SigningKey};
use contractcourt_core::bolt3::{keys, secp, sign, ChannelBasepoints};
use contractcourt_core::event::{InputSignature, InputWitness, SignOutcome};
use contractcourt_core::types::ChannelId;

/// Something that signs the core's sign requests: one signature per requested input, or a
/// refusal with a reason.
pub trait Signer: Send {
    /// Sign every input of `request`, or refuse.
    fn sign(&mut self, request: &SignRequest) -> SignOutcome;
}

impl<T: Signer + ?Sized> Signer for Box<T> {
    fn sign(&mut self, request: &SignRequest) -> SignOutcome {
        (**self).sign(request)
    }
}

impl<T: Signer + ?Sized> Signer for std::sync::Arc<std::sync::Mutex<T>> {
    fn sign(&mut self, request: &SignRequest) -> SignOutcome {
        // A panic in an earlier call poisons the mutex; the signer is used anyway.
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .sign(request)
    }
}

/// Our basepoint secrets for one channel (BOLT 2 names).
#[derive(Clone, PartialEq, Eq)]
pub struct BasepointSecrets {
    /// The secret of `funding_pubkey` (also our anchor key).
    pub funding: SecretKey,
    /// The secret of `revocation_basepoint`.
    pub revocation: SecretKey,
    /// The secret of `payment_basepoint`.
    pub payment: SecretKey,
    /// The secret of `delayed_payment_basepoint`.
    pub delayed_payment: SecretKey,
    /// The secret of `htlc_basepoint`.
    pub htlc: SecretKey,
}

impl std::fmt::Debug for BasepointSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets: show the public basepoints instead.
        f.debug_struct("BasepointSecrets")
            .field("basepoints", &self.basepoints())
            .finish()
    }
}

impl BasepointSecrets {
    /// The secret of one basepoint.
    pub fn secret(&self, basepoint: Basepoint) -> &SecretKey {
        match basepoint {
            Basepoint::Funding => &self.funding,
            Basepoint::Revocation => &self.revocation,
            Basepoint::Payment => &self.payment,
            Basepoint::DelayedPayment => &self.delayed_payment,
            Basepoint::Htlc => &self.htlc,
        }
    }

    /// The public basepoints and funding key (what the channel registration carries as ours).
    pub fn basepoints(&self) -> ChannelBasepoints {
        let public = |s: &SecretKey| PublicKey::from_secret_key(secp(), s);
        ChannelBasepoints {
            funding_pubkey: public(&self.funding),
            revocation_basepoint: public(&self.revocation),
            payment_basepoint: public(&self.payment),
            delayed_payment_basepoint: public(&self.delayed_payment),
            htlc_basepoint: public(&self.htlc),
        }
    }

    /// The private key `basepoint` with `tweak` names (BOLT 3 "Key Derivation"):
    /// - [`KeyTweak::None`]: the basepoint secret itself (funding key, static `remotepubkey`);
    /// - [`KeyTweak::PerCommitmentPoint`]: `secret + SHA256(per_commitment_point || basepoint)`;
    /// - [`KeyTweak::Revocation`]: the revocation private key from our revocation basepoint
    ///   secret and the peer's revealed per-commitment secret (any basepoint other than
    ///   [`Basepoint::Revocation`] is refused).
    pub fn derive(&self, basepoint: Basepoint, tweak: &KeyTweak) -> Result<SecretKey, SignError> {
        let base = self.secret(basepoint);
        match tweak {
            KeyTweak::None => Ok(*base),
            KeyTweak::PerCommitmentPoint { point } => {
                keys::derive_privkey(base, point).map_err(SignError::Key)
            }
            KeyTweak::Revocation {
                per_commitment_secret,
            } => {
                if basepoint != Basepoint::Revocation {
                    return Err(SignError::RevocationTweakOnWrongBasepoint(basepoint));
                }
                let secret = SecretKey::from_slice(per_commitment_secret)
                    .map_err(|_| SignError::Key(keys::KeyError::InvalidSecret))?;
                keys::derive_revocation_privkey(base, &secret).map_err(SignError::Key)
            }
        }
    }
}

/// Why an input could not be signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignError {
    /// The signer holds no secrets for this channel.
    UnknownChannel(ChannelId),
    /// A wallet input: the wallet signs its own inputs.
    WalletInput,
    /// A revocation tweak asked of a basepoint other than the revocation basepoint.
    RevocationTweakOnWrongBasepoint(Basepoint),
    /// The request says the input spends one outpoint; the transaction's input spends another.
    PrevoutMismatch {
        /// The input index.
        input: u32,
    },
    /// BOLT 3 key derivation failed.
    Key(keys::KeyError),
    /// The signature hash could not be computed (input out of range, `SIGHASH_SINGLE` without a
    /// matching output).
    Sighash(sign::SighashError),
}

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignError::UnknownChannel(c) => write!(f, "no keys for channel {c}"),
            SignError::WalletInput => f.write_str("a wallet input: the wallet signs its own"),
            SignError::RevocationTweakOnWrongBasepoint(b) => {
                write!(f, "revocation tweak on the {b:?} basepoint")
            }
            SignError::PrevoutMismatch { input } => write!(
                f,
                "input {input} of the transaction does not spend the outpoint the request names"
            ),
            SignError::Key(e) => write!(f, "key derivation: {e}"),
            SignError::Sighash(e) => write!(f, "signature hash: {e}"),
        }
    }
}

impl std::error::Error for SignError {}

/// A [`Signer`] holding our basepoint secrets per channel, in memory.
///
/// Every key is derived from the channel's basepoint secrets and the request's [`KeyTweak`];
/// signatures are deterministic (RFC 6979) and carry the requested sighash type. A P2WPKH
/// input (its script is a P2WPKH scriptPubKey) is signed with the BIP 143 P2WPKH sighash, every
/// other input as P2WSH with its witness script.
#[derive(Clone, Default)]
pub struct InMemorySigner {
    channels: BTreeMap<ChannelId, BasepointSecrets>,
}

impl std::fmt::Debug for InMemorySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemorySigner")
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl InMemorySigner {
    /// A signer with no channels.
    pub fn new() -> InMemorySigner {
        InMemorySigner::default()
    }

    /// Hold `secrets` for `channel` (replacing any held before).
    pub fn add_channel(&mut self, channel: ChannelId, secrets: BasepointSecrets) {
        self.channels.insert(channel, secrets);
    }

    /// Forget a channel's secrets; returns them if they were held.
    pub fn remove_channel(&mut self, channel: &ChannelId) -> Option<BasepointSecrets> {
        self.channels.remove(channel)
    }

    /// The secrets held for a channel.
    pub fn channel(&self, channel: &ChannelId) -> Option<&BasepointSecrets> {
        self.channels.get(channel)
    }

    /// The private key one input names.
    pub fn signing_key(&self, key: &SigningKey) -> Result<SecretKey, SignError> {
        match key {
            SigningKey::Channel {
                channel,
                basepoint,
                tweak,
            } => self
                .channels
                .get(channel)
                .ok_or(SignError::UnknownChannel(*channel))?
                .derive(*basepoint, tweak),
            SigningKey::Wallet => Err(SignError::WalletInput),
        }
    }

    /// The signature of one input of `request`.
    pub fn sign_input(
        &self,
        request: &SignRequest,
        input: &SignInput,
    ) -> Result<InputSignature, SignError> {
        let key = self.signing_key(&input.key)?;
        let index = input.input as usize;
        // Sign only what the request describes: the input must spend the named prevout.
        if let Some(txin) = request.tx.input.get(index) {
            if txin.previous_output != input.prevout {
                return Err(SignError::PrevoutMismatch { input: input.input });
            }
        }
        let value = Amount::from_sat(input.value_sat);
        let msg = if input.script.is_p2wpkh() {
            sign::p2wpkh_sighash(&request.tx, index, &input.script, value, input.sighash)
        } else {
            sign::p2wsh_sighash(&request.tx, index, &input.script, value, input.sighash)
        }
        .map_err(SignError::Sighash)?;
        Ok(InputSignature {
            input: input.input,
            signature: sign::sign_message(&msg, &key, input.sighash),
        })
    }
}

impl Signer for InMemorySigner {
    /// One signature per requested input, in request order; the first input that cannot be
    /// signed refuses the whole request, naming it.
    fn sign(&mut self, request: &SignRequest) -> SignOutcome {
        let mut signatures = Vec::with_capacity(request.inputs.len());
        for input in &request.inputs {
            match self.sign_input(request, input) {
                Ok(signature) => signatures.push(signature),
                Err(e) => {
                    return SignOutcome::Failed {
                        reason: format!("input {}: {e}", input.input),
                    }
                }
            }
        }
        SignOutcome::Signed {
            signatures,
            witnesses: Vec::new(),
        }
    }
}

/// Signs the wallet's own inputs of a sign request ([`SigningKey::Wallet`]), returning each
/// one's complete witness in whatever script type the wallet uses.
pub trait WalletSigner: Send {
    /// The witness of `input` of `request`'s transaction, or why not.
    fn witness(&mut self, request: &SignRequest, input: &SignInput) -> Result<Witness, String>;
}

impl<T: WalletSigner + ?Sized> WalletSigner for std::sync::Arc<std::sync::Mutex<T>> {
    fn witness(&mut self, request: &SignRequest, input: &SignInput) -> Result<Witness, String> {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .witness(request, input)
    }
}

/// A channel signer and a wallet together: each input of a request goes to whichever holds its
/// key — channel inputs to `channels` (as one request), wallet inputs to `wallet` — and the
/// answers are merged. Either refusing refuses the whole request.
#[derive(Debug)]
pub struct NodeSigner<S, W> {
    /// Signs channel inputs.
    pub channels: S,
    /// Signs wallet inputs.
    pub wallet: W,
}

impl<S: Signer, W: WalletSigner> Signer for NodeSigner<S, W> {
    fn sign(&mut self, request: &SignRequest) -> SignOutcome {
        let (wallet, channel): (Vec<&SignInput>, Vec<&SignInput>) = request
            .inputs
            .iter()
            .partition(|i| i.key == SigningKey::Wallet);
        let mut signatures = Vec::new();
        if !channel.is_empty() {
            let sub = SignRequest {
                request: request.request,
                tx: request.tx.clone(),
                inputs: channel.into_iter().cloned().collect(),
            };
            match self.channels.sign(&sub) {
                SignOutcome::Signed { signatures: s, .. } => signatures = s,
                failed @ SignOutcome::Failed { .. } => return failed,
            }
        }
        let mut witnesses = Vec::with_capacity(wallet.len());
        for input in wallet {
            match self.wallet.witness(request, input) {
                Ok(witness) => witnesses.push(InputWitness {
                    input: input.input,
                    witness,
                }),
                Err(reason) => {
                    return SignOutcome::Failed {
                        reason: format!("wallet input {}: {reason}", input.input),
                    }
                }
            }
        }
        SignOutcome::Signed {
            signatures,
            witnesses,
        }
    }
}
