//! Identifiers and small value types shared by events, actions and state.
//!
//! An HTLC is always named by [`HtlcKey`] — (channel, HTLC id, direction) — never by payment hash:
//! many HTLCs may share a hash, and each must be settled or failed on its own.

use bitcoin::{BlockHash, Transaction};
use serde::{Deserialize, Serialize};

/// Block height. Block height is the engine's only clock.
pub type Height = u32;

/// A channel, named by its BOLT 2 `channel_id`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChannelId(#[serde(with = "crate::bolt3::hex_32")] pub [u8; 32]);

impl std::fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChannelId({})", hex::encode(self.0))
    }
}

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Which way an HTLC flows, always from our node's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HtlcDirection {
    /// The peer offered it to us (a received HTLC on our commitment, an offered one on theirs).
    Incoming,
    /// We offered it to the peer (an offered HTLC on our commitment, a received one on theirs).
    Outgoing,
}

/// The identity of one HTLC: (channel, HTLC id, direction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HtlcKey {
    /// The channel the HTLC is on.
    pub channel: ChannelId,
    /// The HTLC id the offerer assigned (BOLT 2 `update_add_htlc.id`).
    pub htlc_id: u64,
    /// Incoming or outgoing, from our node's point of view.
    pub direction: HtlcDirection,
}

/// The two parties of a channel, from our node's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// Our node.
    Local,
    /// The channel peer.
    Remote,
}

/// A claim: one thing the engine is trying to get confirmed (a commitment broadcast, a
/// second-level HTLC transaction, a sweep of one or more outputs, an anchor CPFP). Numbered by the
/// core, deterministically, in the order claims are created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClaimId(pub u64);

/// Tags a request to the outside world (sign, fund, broadcast) so its result can be matched. A
/// result whose `attempt` is not the claim's current attempt is recorded and dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId {
    /// The claim the request belongs to.
    pub claim: ClaimId,
    /// Which attempt (fee bump, rebuild) of that claim; starts at 0.
    pub attempt: u32,
}

/// A block, named by height and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlockRef {
    /// Its height.
    pub height: Height,
    /// Its hash.
    pub hash: BlockHash,
}

/// A transaction serialised as consensus hex inside events, actions, records and traces.
///
/// Wraps [`Transaction`] so the JSON form is the raw transaction a node operator can paste into
/// `bitcoin-cli decoderawtransaction`, and decoding a malformed one is a serde error, not a panic.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawTx(pub Transaction);

impl Serialize for RawTx {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&bitcoin::consensus::encode::serialize_hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for RawTx {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let s = String::deserialize(d)?;
        let bytes = hex::decode(&s).map_err(D::Error::custom)?;
        bitcoin::consensus::deserialize(&bytes)
            .map(RawTx)
            .map_err(D::Error::custom)
    }
}

impl From<Transaction> for RawTx {
    fn from(tx: Transaction) -> Self {
        RawTx(tx)
    }
}

impl std::ops::Deref for RawTx {
    type Target = Transaction;
    fn deref(&self) -> &Transaction {
        &self.0
    }
}
