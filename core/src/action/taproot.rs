//! BIP 340 (Schnorr) sign requests for taproot inputs (simple taproot channels, extension BOLT
//! `bolt-simple-taproot.md`): a vocabulary of its own beside [`super::SignRequest`], whose
//! ECDSA inputs and serde stay as they are.
//!
//! A BIP 341 signature commits to *every* output the transaction spends, so the request carries
//! them all ([`TaprootSignRequest::prevouts`], in input order). Each input names its key as an
//! ECDSA input does ([`SigningKey`]: a basepoint and a BOLT 3 tweak) and its path:
//! - [`TapSignPath::ScriptPath`]: the leaf revealed (its TapLeaf hash is signed); the key signs
//!   untweaked, and must be pushed in the leaf;
//! - [`TapSignPath::KeyPath`]: the output's tap tree root; the key is tweaked with
//!   `tagged_hash("TapTweak", internal_key || root)` (BIP 341; the revocation key path of HTLC
//!   and second-level outputs, an anchor's owner) and must give the spent output's key.
//!
//! Sighash types (the extension): `SIGHASH_DEFAULT` for every spend of ours
//! ([`TAPROOT_SIGHASH`]); the counterparty's signature on our second-level HTLC transactions is
//! `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY` ([`SECOND_LEVEL_COUNTERPARTY_SIGHASH`]), which a signer
//! of ours makes when it signs the *peer's* HTLC transactions.
//!
//! Signing is deterministic (BIP 340 with all-zero auxiliary randomness), so a replayed request
//! gives the same signature; signer checks refuse with a typed [`TaprootSignError`].

use bitcoin::hashes::Hash;
use bitcoin::key::Keypair;
use bitcoin::secp256k1::{Message, SecretKey};
use bitcoin::sighash::TapSighashType;
use bitcoin::taproot::{Signature, TapLeafHash, TapNodeHash};
use bitcoin::{ScriptBuf, TxOut, XOnlyPublicKey};
use serde::{Deserialize, Serialize};

use super::SigningKey;
use crate::bolt3::secp;
use crate::bolt3::taproot::witness::{key_path_sighash, script_path_sighash, TaprootSpendError};
use crate::bolt3::taproot::{leaf_hash, TapOutput};
use crate::types::{RawTx, RequestId};

/// The sighash type of every taproot signature of ours (`SIGHASH_DEFAULT`: 64 bytes).
pub const TAPROOT_SIGHASH: TapSighashType = TapSighashType::Default;

/// The counterparty's sighash type on a holder's second-level HTLC transaction.
pub const SECOND_LEVEL_COUNTERPARTY_SIGHASH: TapSighashType =
    TapSighashType::SinglePlusAnyoneCanPay;

/// A request for BIP 340 signatures on taproot inputs of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaprootSignRequest {
    /// The request tag.
    pub request: RequestId,
    /// The complete transaction (txid fixed; only witnesses missing).
    pub tx: RawTx,
    /// Every output the transaction spends, in input order.
    pub prevouts: Vec<TxOut>,
    /// The inputs to sign.
    pub inputs: Vec<TaprootSignInput>,
}

/// One taproot input to sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaprootSignInput {
    /// Its index in the transaction.
    pub input: u32,
    /// Script path or key path.
    pub path: TapSignPath,
    /// The sighash type.
    pub sighash: TapSighashType,
    /// The key to sign with (before any tap tweak).
    pub key: SigningKey,
}

/// How the input is spent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TapSignPath {
    /// Revealing `leaf` (leaf version `0xc0`): the signature commits to its TapLeaf hash.
    ScriptPath {
        /// The tapscript.
        leaf: ScriptBuf,
    },
    /// The key path of an output whose tree has this root (`None`: BIP 86, no tree).
    KeyPath {
        /// The tap tree's root.
        merkle_root: Option<TapNodeHash>,
    },
}

impl TapSignPath {
    /// The TapLeaf hash a script-path signature commits to.
    pub fn leaf_hash(&self) -> Option<TapLeafHash> {
        match self {
            TapSignPath::ScriptPath { leaf } => Some(leaf_hash(leaf)),
            TapSignPath::KeyPath { .. } => None,
        }
    }
}

/// One input's BIP 340 signature (64 bytes under `SIGHASH_DEFAULT`, 65 otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchnorrInputSignature {
    /// The input index in the transaction of the request.
    pub input: u32,
    /// The signature with its sighash type.
    pub signature: Signature,
}

/// The answer to a [`TaprootSignRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TaprootSignOutcome {
    /// A signature for every channel input.
    Signed {
        /// The signatures.
        signatures: Vec<SchnorrInputSignature>,
    },
    /// The signer refused or failed.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Why a taproot input was not signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaprootSignError {
    /// The sighash could not be computed (input out of range, a prevout count other than the
    /// input count).
    Sighash(TaprootSpendError),
    /// A script-path key whose x-only key the leaf does not push.
    KeyNotInLeaf {
        /// The input.
        input: u32,
    },
    /// A key-path key that, tweaked with the root, is not the spent output's key.
    NotTheOutputKey {
        /// The input.
        input: u32,
    },
    /// A wallet input: the wallet signs its own.
    WalletInput {
        /// The input.
        input: u32,
    },
}

impl std::fmt::Display for TaprootSignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaprootSignError::Sighash(e) => write!(f, "taproot sighash: {e}"),
            TaprootSignError::KeyNotInLeaf { input } => {
                write!(
                    f,
                    "input {input}: the signing key is not in the revealed leaf"
                )
            }
            TaprootSignError::NotTheOutputKey { input } => write!(
                f,
                "input {input}: the tweaked signing key is not the spent output's key"
            ),
            TaprootSignError::WalletInput { input } => {
                write!(f, "input {input} is a wallet input")
            }
        }
    }
}

impl std::error::Error for TaprootSignError {}

impl TaprootSignRequest {
    /// The signature of `input` by `secret` (the untweaked key the input names), after checking
    /// that the key belongs there: pushed in the leaf, or, tweaked, the spent output's key.
    pub fn sign_input(
        &self,
        input: &TaprootSignInput,
        secret: &SecretKey,
    ) -> Result<SchnorrInputSignature, TaprootSignError> {
        let tx = &self.tx.0;
        let index = input.input as usize;
        let keypair = Keypair::from_secret_key(secp(), secret);
        let (sighash, signer) = match &input.path {
            TapSignPath::ScriptPath { leaf } => {
                let x_only = keypair.x_only_public_key().0.serialize();
                if !pushes(leaf, &x_only) {
                    return Err(TaprootSignError::KeyNotInLeaf { input: input.input });
                }
                let sighash = script_path_sighash(tx, index, &self.prevouts, leaf, input.sighash)
                    .map_err(TaprootSignError::Sighash)?;
                (sighash, keypair)
            }
            TapSignPath::KeyPath { merkle_root } => {
                let sighash = key_path_sighash(tx, index, &self.prevouts, input.sighash)
                    .map_err(TaprootSignError::Sighash)?;
                let tweaked = tweak(&keypair, *merkle_root);
                let spent = self.prevouts.get(index).map(|p| &p.script_pubkey);
                if spent != Some(&p2tr_of(&tweaked)) {
                    return Err(TaprootSignError::NotTheOutputKey { input: input.input });
                }
                (sighash, tweaked)
            }
        };
        let msg = Message::from_digest(sighash.to_byte_array());
        Ok(SchnorrInputSignature {
            input: input.input,
            signature: Signature {
                signature: secp().sign_schnorr_with_aux_rand(&msg, &signer, &[0u8; 32]),
                sighash_type: input.sighash,
            },
        })
    }

    /// Sign every input, each with the key `secret_of` derives for its [`SigningKey`]; the
    /// first refusal fails the whole request.
    pub fn sign_with<E: std::fmt::Display>(
        &self,
        secret_of: impl Fn(&TaprootSignInput) -> Result<SecretKey, E>,
    ) -> TaprootSignOutcome {
        let mut signatures = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            if input.key == SigningKey::Wallet {
                let reason = TaprootSignError::WalletInput { input: input.input }.to_string();
                return TaprootSignOutcome::Failed { reason };
            }
            let signed = secret_of(input)
                .map_err(|e| e.to_string())
                .and_then(|s| self.sign_input(input, &s).map_err(|e| e.to_string()));
            match signed {
                Ok(sig) => signatures.push(sig),
                Err(reason) => return TaprootSignOutcome::Failed { reason },
            }
        }
        TaprootSignOutcome::Signed { signatures }
    }
}

/// The keypair tweaked with `tagged_hash("TapTweak", x_only || root)` (BIP 341).
fn tweak(keypair: &Keypair, merkle_root: Option<TapNodeHash>) -> Keypair {
    use bitcoin::key::TapTweak;
    keypair.tap_tweak(secp(), merkle_root).to_keypair()
}

/// `OP_1 <x_only>` of an already tweaked keypair.
fn p2tr_of(tweaked: &Keypair) -> ScriptBuf {
    let x_only: XOnlyPublicKey = tweaked.x_only_public_key().0;
    ScriptBuf::new_p2tr_tweaked(bitcoin::key::TweakedPublicKey::dangerous_assume_tweaked(
        x_only,
    ))
}

/// Whether `script` pushes exactly these 32 bytes.
fn pushes(script: &ScriptBuf, key: &[u8; 32]) -> bool {
    script
        .instructions()
        .any(|i| matches!(i, Ok(bitcoin::script::Instruction::PushBytes(p)) if p.as_bytes() == key))
}

impl From<&TapOutput> for TapSignPath {
    /// The key path of an output built by `bolt3::taproot`.
    fn from(output: &TapOutput) -> Self {
        TapSignPath::KeyPath {
            merkle_root: output.merkle_root(),
        }
    }
}
