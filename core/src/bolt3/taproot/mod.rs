//! Simple taproot channels (`option_simple_taproot`, extension BOLT `bolt-simple-taproot.md`,
//! lightning/bolts PR 995): the segwit v1 outputs of a commitment and of its second-level HTLC
//! transactions.
//!
//! Each output is a BIP 341 tap tree over an internal key: its leaf scripts (leaf version `0xc0`,
//! BIP 342 tapscript), its [`TapOutput`] (output key, parity, merkle root, control blocks) and
//! its `OP_1 <output_key>` scriptPubKey, all built with the `bitcoin` crate's taproot builder.
//! Keys inside tapscripts are x-only (32 bytes).
//!
//! [`witness`] builds the witness of every spend path (and the BIP 341 sighashes),
//! [`weights`] holds each path's maximum witness weight, [`classify`] names the path of a
//! witness and extracts the preimage of a success-leaf spend.
//!
//! bolt3's builders use it for [`super::ChannelType::SimpleTaproot`], and
//! `crate::close::taproot` gives each output of a taproot close its leaves, control blocks and
//! key paths; the resolvers do not use it yet. Every output is checked byte for byte against
//! the extension's "Test Vectors" (`vectors/bolt-simple-taproot.json`).

use std::sync::OnceLock;

use bitcoin::key::{TweakedPublicKey, XOnlyPublicKey};
use bitcoin::secp256k1::{Parity, PublicKey};
use bitcoin::taproot::{
    ControlBlock, LeafVersion, TapLeafHash, TapNodeHash, TaprootBuilder, TaprootSpendInfo,
};
use bitcoin::{Script, ScriptBuf};

use super::secp;

pub mod accepted_htlc;
pub mod anchor;
pub mod classify;
pub mod commitment;
#[cfg(any(test, feature = "sim"))]
pub mod fixture;
pub mod funding;
pub mod offered_htlc;
pub mod second_level;
pub mod spend;
pub mod to_local;
pub mod to_remote;
pub mod weights;
pub mod witness;

#[cfg(test)]
mod bip327_tests;
#[cfg(test)]
pub(crate) mod commitment_tests;
#[cfg(test)]
mod funding_tests;
#[cfg(test)]
mod spend_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod witness_tests;

/// `simple_taproot_nums` (section "Nothing Up My Sleeves Points"): a point nobody knows the
/// discrete log of, used as the internal key of `to_local` and `to_remote` so that only their
/// script paths can spend them.
pub const SIMPLE_TAPROOT_NUMS_HEX: &str =
    "02dca094751109d0bd055d03565874e8276dd53e926b44e3bd1bb6bf4bc130a279";

/// The `simple_taproot_nums` point.
pub fn simple_taproot_nums() -> PublicKey {
    static NUMS: OnceLock<PublicKey> = OnceLock::new();
    *NUMS.get_or_init(|| {
        let bytes = hex::decode(SIMPLE_TAPROOT_NUMS_HEX).expect("constant hex");
        PublicKey::from_slice(&bytes).expect("constant point on the curve")
    })
}

/// Why a taproot output or spend could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaprootScriptError {
    /// The leaves do not form a complete tap tree (none given).
    EmptyTree,
    /// MuSig2 key aggregation gave the point at infinity (keys that cancel out).
    KeyAggregationAtInfinity,
    /// A control block was asked for a leaf that is not in this output's tree.
    LeafNotInTree {
        /// The leaf's TapLeaf hash.
        leaf_hash: TapLeafHash,
    },
}

impl std::fmt::Display for TaprootScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaprootScriptError::EmptyTree => f.write_str("a tap tree needs at least one leaf"),
            TaprootScriptError::KeyAggregationAtInfinity => {
                f.write_str("the MuSig2 aggregate of the funding keys is the point at infinity")
            }
            TaprootScriptError::LeafNotInTree { leaf_hash } => {
                write!(f, "leaf {leaf_hash} is not in this output's tap tree")
            }
        }
    }
}

impl std::error::Error for TaprootScriptError {}

/// A P2TR output: an internal key committing to a tap tree of tapscript leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapOutput {
    spend_info: TaprootSpendInfo,
}

impl TapOutput {
    /// The output committing `internal_key` to `leaves`. One leaf is the root itself; two
    /// leaves sit side by side at depth 1 (`tapscript_root([a, b])`: the branch hash sorts its
    /// children, so their order does not change the root).
    pub fn new(
        internal_key: &PublicKey,
        leaves: &[&ScriptBuf],
    ) -> Result<Self, TaprootScriptError> {
        let weighted = leaves.iter().map(|leaf| (1u32, (*leaf).clone()));
        let builder = TaprootBuilder::with_huffman_tree(weighted)
            .map_err(|_| TaprootScriptError::EmptyTree)?;
        let (x_only, _) = internal_key.x_only_public_key();
        let spend_info = builder
            .finalize(secp(), x_only)
            .map_err(|_| TaprootScriptError::EmptyTree)?;
        Ok(TapOutput { spend_info })
    }

    /// A key-path-only output (BIP 86): the internal key tweaked with
    /// `tagged_hash("TapTweak", internal_key)`, no script tree.
    pub fn key_path_only(internal_key: &PublicKey) -> Self {
        let (x_only, _) = internal_key.x_only_public_key();
        TapOutput {
            spend_info: TaprootSpendInfo::new_key_spend(secp(), x_only, None),
        }
    }

    /// The internal key (x-only).
    pub fn internal_key(&self) -> XOnlyPublicKey {
        self.spend_info.internal_key()
    }

    /// The output key `internal_key + tagged_hash("TapTweak", internal_key || root)·G`.
    pub fn output_key(&self) -> TweakedPublicKey {
        self.spend_info.output_key()
    }

    /// The parity of the output key's y coordinate (needed in every control block).
    pub fn output_key_parity(&self) -> Parity {
        self.spend_info.output_key_parity()
    }

    /// The tapscript root (`tapscript_root([...])` in the extension).
    pub fn merkle_root(&self) -> Option<TapNodeHash> {
        self.spend_info.merkle_root()
    }

    /// The tweak a key-path signer adds to the internal secret key (the "tap tweak value" the
    /// extension says to keep for revoked HTLC outputs).
    pub fn tap_tweak(&self) -> bitcoin::taproot::TapTweakHash {
        self.spend_info.tap_tweak()
    }

    /// `OP_1 <output_key>`.
    pub fn script_pubkey(&self) -> ScriptBuf {
        ScriptBuf::new_p2tr_tweaked(self.output_key())
    }

    /// The control block that reveals `leaf` (a tapscript, leaf version `0xc0`):
    /// `(output_key_y_parity | 0xc0) || internal_key || inclusion_proof`.
    pub fn control_block(&self, leaf: &Script) -> Result<ControlBlock, TaprootScriptError> {
        self.spend_info
            .control_block(&(leaf.to_owned(), LeafVersion::TapScript))
            .ok_or(TaprootScriptError::LeafNotInTree {
                leaf_hash: leaf_hash(leaf),
            })
    }
}

/// The TapLeaf hash of a tapscript leaf (leaf version `0xc0`).
pub fn leaf_hash(leaf: &Script) -> TapLeafHash {
    TapLeafHash::from_script(leaf, LeafVersion::TapScript)
}

/// A key as a tapscript pushes it: x-only, 32 bytes.
fn x_only(key: &PublicKey) -> XOnlyPublicKey {
    key.x_only_public_key().0
}
