//! The BOLT 3 transaction layer: keys, per-commitment secrets, scripts, commitment and HTLC
//! transactions, witnesses, witness classification and weights.
//!
//! Every function here is pure and is tested against the BOLT 3 appendices (`vectors/`).
//! Names follow BOLT 3: on a commitment transaction, "local" is the party that holds (and can
//! broadcast) it and "remote" is its counterparty, whichever of the two we are.

use std::sync::OnceLock;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{All, PublicKey, Secp256k1};
use serde::{Deserialize, Serialize};

pub mod classify;
pub mod commitment;
pub mod fees;
pub mod htlc_tx;
pub mod keys;
pub mod scripts;
pub mod shachain;
pub mod sign;
pub mod taproot;
pub mod weights;
pub mod witness;

/// The shared secp256k1 context (verification and signing; never randomised, so deterministic).
pub fn secp() -> &'static Secp256k1<All> {
    static CTX: OnceLock<Secp256k1<All>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::new)
}

/// The commitment format negotiated for a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelType {
    /// `option_static_remotekey`: `to_remote` is P2WPKH to the peer's payment basepoint, HTLC
    /// transactions carry their own fee and are signed `SIGHASH_ALL`.
    StaticRemoteKey,
    /// `option_anchors_zero_fee_htlc_tx`: two 330-sat anchors, `to_remote` and HTLC outputs behind
    /// `1 OP_CSV`, zero-fee HTLC transactions with the remote signature under
    /// `SIGHASH_SINGLE|ANYONECANPAY`.
    AnchorsZeroFeeHtlc,
    /// `zero_fee_commitments` (feature 40/41, BOLT PR 1228): version-3 (TRUC) commitment and HTLC
    /// transactions, a commitment that pays no fee, one unkeyed pay-to-anchor output (the
    /// "shared anchor") carrying the trimmed amounts up to 240 sat, `to_remote` P2WPKH and HTLC
    /// scripts without `1 OP_CSV` (as static remote key), zero-fee HTLC transactions with the
    /// remote signature under `SIGHASH_SINGLE|ANYONECANPAY` and nSequence 0.
    ZeroFeeCommitments,
    /// `option_simple_taproot` (feature 80/81, extension BOLT `bolt-simple-taproot.md`, PR 995):
    /// a MuSig2 funding output and P2TR commitment outputs ([`taproot`]), inheriting the
    /// anchors semantics — two 330-sat anchors keyed by `local_delayedpubkey` and
    /// `remotepubkey` ([`AnchorKind::KeyedTaproot`]), `to_remote` and HTLC leaves behind
    /// `1 OP_CSV`, version-2 zero-fee HTLC transactions with nSequence 1 and the remote
    /// signature under `SIGHASH_SINGLE|ANYONECANPAY`.
    ///
    /// bolt3 builds its commitment and HTLC transactions; the engine refuses to register such a
    /// channel ([`ChannelType::engine_support`]) until classification, resolvers, breach and
    /// the sweeper handle it.
    SimpleTaproot,
}

/// The `option_simple_taproot` channel-type feature bit (even, "required"; 81 is the optional
/// one). `option_simple_taproot_staging` is 180/181 (section "Feature Bits").
pub const SIMPLE_TAPROOT_FEATURE_BIT: u16 = 80;

/// A channel type bolt3 can build transactions for but the engine cannot yet resolve on chain:
/// registering a channel of this type is refused rather than half-handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsupportedChannelType {
    /// The refused type.
    pub channel_type: ChannelType,
}

impl std::fmt::Display for UnsupportedChannelType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.channel_type {
            ChannelType::SimpleTaproot => f.write_str(
                "simple taproot channels are not resolved yet (no witness classification, \
                 resolvers, breach handling or sweeping for them)",
            ),
            other => write!(f, "channel type {other:?} is not resolved by this engine"),
        }
    }
}

impl std::error::Error for UnsupportedChannelType {}

/// The anchor outputs a commitment carries, generically: keyed (`option_anchors`: one 330-sat
/// P2WSH anchor per party, spent with its funding key, by anyone after 16 blocks),
/// pay-to-anchor (`zero_fee_commitments`: one unkeyed `OP_1 <0x4e73>` output of 0–240 sat, spent
/// by anyone at any time with an empty witness) or keyed taproot (`option_simple_taproot`: one
/// 330-sat P2TR anchor per party, keyed by `local_delayedpubkey` / `remotepubkey`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorKind {
    /// `to_local_anchor` / `to_remote_anchor`.
    Keyed,
    /// `shared_anchor`.
    PayToAnchor,
    /// `option_simple_taproot`'s two 330-sat P2TR anchors: internal key `local_delayedpubkey`
    /// (the holder's) or `remotepubkey` (the counterparty's), one leaf `OP_16 OP_CSV`; the owner
    /// spends by key path (its key tweaked with the leaf's root), anyone by the leaf after 16
    /// blocks (extension section "Anchor Outputs").
    KeyedTaproot,
}

impl ChannelType {
    /// The most `max_accepted_htlcs` either side may set (BOLT 2 `open_channel`: the receiver
    /// fails the channel above it): 114 with zero-fee commitments — 2 × 114 HTLC outputs keep
    /// the commitment within TRUC's 10,000 vB —, 483 otherwise (the simple taproot extension
    /// does not change BOLT 2's limit).
    pub fn max_accepted_htlcs_limit(self) -> u16 {
        match self {
            ChannelType::ZeroFeeCommitments => 114,
            ChannelType::StaticRemoteKey
            | ChannelType::AnchorsZeroFeeHtlc
            | ChannelType::SimpleTaproot => 483,
        }
    }

    /// Whether the engine resolves channels of this type on chain; `Err` for
    /// [`ChannelType::SimpleTaproot`] until its classification, resolvers, breach handling and
    /// sweeping exist (bolt3 already builds its transactions). Every entry point that accepts
    /// a channel type calls this first.
    pub fn engine_support(self) -> Result<(), UnsupportedChannelType> {
        match self {
            ChannelType::StaticRemoteKey
            | ChannelType::AnchorsZeroFeeHtlc
            | ChannelType::ZeroFeeCommitments => Ok(()),
            ChannelType::SimpleTaproot => Err(UnsupportedChannelType { channel_type: self }),
        }
    }

    /// Whether this type's commitment and second-level outputs are segwit v1 (P2TR, built by
    /// [`taproot`]) rather than P2WSH/P2WPKH (built by [`scripts`]).
    pub fn is_taproot(self) -> bool {
        matches!(self, ChannelType::SimpleTaproot)
    }

    /// The kind of anchor this type's commitments carry, `None` without anchors.
    pub fn anchor_kind(self) -> Option<AnchorKind> {
        match self {
            ChannelType::StaticRemoteKey => None,
            ChannelType::AnchorsZeroFeeHtlc => Some(AnchorKind::Keyed),
            ChannelType::ZeroFeeCommitments => Some(AnchorKind::PayToAnchor),
            ChannelType::SimpleTaproot => Some(AnchorKind::KeyedTaproot),
        }
    }

    /// Whether commitments of this type carry two 330-sat anchors, one per party, each present
    /// when its party's balance output is or any HTLC output is (P2WSH `option_anchors` or the
    /// P2TR anchors of simple taproot channels).
    pub fn has_keyed_anchors(self) -> bool {
        matches!(
            self.anchor_kind(),
            Some(AnchorKind::Keyed | AnchorKind::KeyedTaproot)
        )
    }

    /// Whether the holder's HTLC transactions spend an output behind `1 OP_CSV` and so carry
    /// nSequence 1 (`option_anchors` and simple taproot; BOLT 3 and the extension's
    /// "HTLC-Success/HTLC-Timeout Transactions").
    pub fn htlc_tx_sequence_one(self) -> bool {
        self.has_keyed_anchors()
    }

    /// Whether commitments of this type carry the two *keyed* 330-sat P2WSH anchors and the
    /// `1 OP_CSV` variants of the P2WSH `to_remote` and HTLC scripts (`option_anchors`). False
    /// for [`ChannelType::ZeroFeeCommitments`], whose one anchor is unkeyed
    /// (see [`ChannelType::has_shared_anchor`]), and for [`ChannelType::SimpleTaproot`], whose
    /// anchors and leaves are P2TR (see [`ChannelType::has_keyed_anchors`]).
    pub fn has_anchors(self) -> bool {
        matches!(self, ChannelType::AnchorsZeroFeeHtlc)
    }

    /// Whether commitments of this type carry the one unkeyed pay-to-anchor output
    /// (`shared_anchor`, `zero_fee_commitments`).
    pub fn has_shared_anchor(self) -> bool {
        matches!(self, ChannelType::ZeroFeeCommitments)
    }

    /// Whether commitments of this type carry an anchor of any kind (keyed, pay-to-anchor or
    /// taproot), through which a child pays for the commitment.
    pub fn has_any_anchor(self) -> bool {
        self.anchor_kind().is_some()
    }

    /// Whether the HTLC transactions pay no fee and carry the counterparty's signature under
    /// `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY`, so their fee comes from added wallet inputs
    /// (`option_anchors`, `zero_fee_commitments` or simple taproot; BOLT 3 "Fee Calculation",
    /// BOLT 5 "Generation of HTLC Transactions", the extension's "HTLC Second Level
    /// Transactions": "These transactions always have _zero_ fees attached").
    pub fn zero_fee_htlc_txs(self) -> bool {
        matches!(
            self,
            ChannelType::AnchorsZeroFeeHtlc
                | ChannelType::ZeroFeeCommitments
                | ChannelType::SimpleTaproot
        )
    }

    /// Whether the commitment itself pays no fee (`feerate_per_kw` is 0; a child pays for it
    /// through the shared anchor, relayed as a package).
    pub fn zero_fee_commitment(self) -> bool {
        matches!(self, ChannelType::ZeroFeeCommitments)
    }

    /// The nVersion of this type's commitment and HTLC transactions: 3 (TRUC, BIP 431) with
    /// `zero_fee_commitments`, 2 otherwise — simple taproot included (BOLT 3 "Commitment
    /// Transaction", "HTLC-Timeout and HTLC-Success Transactions"; the extension's
    /// "HTLC-Success/HTLC-Timeout Transactions": "version: 2").
    pub fn tx_version(self) -> bitcoin::transaction::Version {
        if self.zero_fee_commitment() {
            bitcoin::transaction::Version(3)
        } else {
            bitcoin::transaction::Version::TWO
        }
    }
}

/// One party's channel basepoints and funding key (BOLT 2 `open_channel`/`accept_channel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelBasepoints {
    /// The key in the 2-of-2 funding output (and this party's anchor).
    pub funding_pubkey: PublicKey,
    /// Combined with the *other* party's per-commitment point into a `revocationpubkey`.
    pub revocation_basepoint: PublicKey,
    /// Static `remotepubkey` when the other party holds the commitment.
    pub payment_basepoint: PublicKey,
    /// Tweaked into `local_delayedpubkey` on this party's own commitments.
    pub delayed_payment_basepoint: PublicKey,
    /// Tweaked into this party's HTLC key on every commitment.
    pub htlc_basepoint: PublicKey,
}

/// The keys of one commitment transaction, from the point of view of its holder ("local").
///
/// Derived from both parties' basepoints and the holder's per-commitment point
/// (see [`keys`]); every script of that commitment and its HTLC transactions uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentKeys {
    /// The holder's per-commitment point these keys were derived from.
    pub per_commitment_point: PublicKey,
    /// `revocationpubkey`: the remote party can spend with it once the commitment is revoked.
    pub revocation_pubkey: PublicKey,
    /// `local_delayedpubkey`: the holder's key after `to_self_delay`.
    pub local_delayed_pubkey: PublicKey,
    /// `local_htlcpubkey`: the holder's HTLC key.
    pub local_htlc_pubkey: PublicKey,
    /// `remote_htlcpubkey`: the counterparty's HTLC key.
    pub remote_htlc_pubkey: PublicKey,
    /// `remotepubkey`: the counterparty's (untweaked, static) payment basepoint.
    pub remote_payment_pubkey: PublicKey,
}

/// A payment hash: SHA256 of the preimage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PaymentHash(#[serde(with = "hex_32")] pub [u8; 32]);

/// A payment preimage.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PaymentPreimage(#[serde(with = "hex_32")] pub [u8; 32]);

impl PaymentPreimage {
    /// The payment hash this preimage unlocks.
    pub fn payment_hash(&self) -> PaymentHash {
        PaymentHash(sha256::Hash::hash(&self.0).to_byte_array())
    }
}

impl std::fmt::Debug for PaymentPreimage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A preimage is money: show only enough to tell two apart in a log.
        write!(f, "PaymentPreimage({}…)", hex::encode(&self.0[..4]))
    }
}

impl std::fmt::Display for PaymentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Serde helper: a 32-byte array as a lower-case hex string.
pub mod hex_32 {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    /// Serialise 32 bytes as hex.
    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    /// Deserialise 32 bytes from hex; anything else is an error.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(&s).map_err(D::Error::custom)?;
        v.try_into()
            .map_err(|_| D::Error::custom("expected 32 bytes of hex"))
    }
}
