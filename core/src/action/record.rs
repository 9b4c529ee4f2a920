//! Persisted records: the atomic batch a step returns, its operations and the keys of the
//! records it writes.

use bitcoin::OutPoint;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::bolt3::PaymentHash;
use crate::types::{ChannelId, ClaimId, Height, HtlcKey};

/// An atomic batch of keyed records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The operations, applied in order.
    pub ops: Vec<RecordOp>,
}

impl Batch {
    /// Apply the batch, in order, to an in-memory store: `records` by key, and the
    /// append-only per-channel `log` by (channel, sequence number).
    pub fn apply_to(
        &self,
        records: &mut std::collections::BTreeMap<RecordKey, Record>,
        log: &mut std::collections::BTreeMap<(ChannelId, u64), Record>,
    ) {
        for op in &self.ops {
            match op {
                RecordOp::Put { key, record } => {
                    records.insert(key.clone(), record.clone());
                }
                RecordOp::Delete { key } => {
                    records.remove(key);
                }
                RecordOp::Append {
                    channel,
                    seq,
                    record,
                } => {
                    log.insert((*channel, *seq), record.clone());
                }
            }
        }
    }
}

/// One write in a [`Batch`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RecordOp {
    /// Insert or replace the record at `key`.
    Put {
        /// Where.
        key: RecordKey,
        /// What.
        record: Record,
    },
    /// Remove the record at `key` (absent is fine).
    Delete {
        /// Where.
        key: RecordKey,
    },
    /// Append to an append-only per-channel log (revoked commitments' HTLC data, read on a
    /// breach only).
    Append {
        /// The channel whose log it is.
        channel: ChannelId,
        /// The entry's sequence number in that log (the revoked commitment's number).
        seq: u64,
        /// The entry.
        record: Record,
    },
}

/// Where a record lives. Ordered, so an in-memory store iterates deterministically; its
/// [`std::fmt::Display`] form is a stable path a database can use as its key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordKey {
    /// Node-wide state: counters, configuration, fee conditions.
    Node,
    /// A channel's header (static data and arbitrator state).
    Channel {
        /// The channel.
        channel: ChannelId,
    },
    /// One of a channel's live commitments.
    Commitment {
        /// The channel.
        channel: ChannelId,
        /// Which one.
        slot: CommitmentSlot,
    },
    /// A resolver's state.
    Resolver {
        /// The channel.
        channel: ChannelId,
        /// The output it resolves.
        outpoint: OutPoint,
    },
    /// A claim with every transaction built for it.
    Claim {
        /// The claim.
        claim: ClaimId,
    },
    /// A known preimage (never deleted).
    Preimage {
        /// Its payment hash.
        payment_hash: PaymentHash,
    },
    /// A forwarding circuit.
    Circuit {
        /// The outgoing HTLC.
        outgoing: HtlcKey,
    },
    /// An upstream settle/fail awaiting `UpstreamAcked`.
    Upstream {
        /// The incoming HTLC.
        htlc: HtlcKey,
    },
    /// One of the recent blocks (the highest is the tip): one record each, so connecting a
    /// block writes one record and deletes one, whatever the length of the locator.
    Block {
        /// Its height.
        height: Height,
    },
}

/// Which live commitment a [`RecordKey::Commitment`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitmentSlot {
    /// Our latest commitment.
    Local,
    /// The peer's current commitment.
    RemoteCurrent,
    /// The peer's pending (signed, not yet current) commitment.
    RemotePending,
}

impl RecordKey {
    /// The channel a channel's record (header, commitment, resolver) belongs to; `None` for a
    /// node-wide record.
    pub fn channel(&self) -> Option<ChannelId> {
        match self {
            RecordKey::Channel { channel }
            | RecordKey::Commitment { channel, .. }
            | RecordKey::Resolver { channel, .. } => Some(*channel),
            _ => None,
        }
    }
}

impl std::fmt::Display for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordKey::Node => f.write_str("node"),
            RecordKey::Channel { channel } => write!(f, "channel/{channel}"),
            RecordKey::Commitment { channel, slot } => {
                let slot = match slot {
                    CommitmentSlot::Local => "local",
                    CommitmentSlot::RemoteCurrent => "remote_current",
                    CommitmentSlot::RemotePending => "remote_pending",
                };
                write!(f, "channel/{channel}/commitment/{slot}")
            }
            RecordKey::Resolver { channel, outpoint } => {
                write!(f, "channel/{channel}/resolver/{outpoint}")
            }
            RecordKey::Claim { claim } => write!(f, "claim/{}", claim.0),
            RecordKey::Preimage { payment_hash } => write!(f, "preimage/{payment_hash}"),
            RecordKey::Circuit { outgoing } => {
                write!(f, "circuit/{}/{}", outgoing.channel, outgoing.htlc_id)
            }
            RecordKey::Upstream { htlc } => write!(f, "upstream/{}/{}", htlc.channel, htlc.htlc_id),
            RecordKey::Block { height } => write!(f, "block/{height}"),
        }
    }
}

/// A persisted record: a version and a JSON body. Loading a record whose version the code does
/// not know is a clear error, never a guess.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The body's format version.
    pub version: u32,
    /// The body.
    pub body: RecordBody,
}

/// A record's body: one JSON value, kept as its canonical text — compact, object keys in
/// sorted order (`serde_json::Value`'s own form) — so that a store writes and reads it without
/// building a tree of values, a loader decodes the typed state straight from the text, and two
/// bodies are equal exactly when their values are.
///
/// In a trace (and any other serde output) it is the JSON value itself, not a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecordBody(String);

impl RecordBody {
    /// The body of `value`'s JSON form. Plain data with string keys cannot fail to serialise; a
    /// value that does (a map with non-string keys) is a programming error and becomes `null`,
    /// which no loader accepts.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> RecordBody {
        RecordBody::from_value(&serde_json::to_value(value).unwrap_or(serde_json::Value::Null))
    }

    /// The body of a JSON value.
    pub fn from_value(value: &serde_json::Value) -> RecordBody {
        RecordBody(value.to_string())
    }

    /// A body from stored text, which must be one JSON value in canonical form (as
    /// [`RecordBody::as_str`] gave it). The text is not parsed here: a store checks it against
    /// its checksum, and the loader that decodes it refuses text that does not decode. Text in
    /// another form still decodes, but compares unequal to the canonical body of its value.
    pub fn from_canonical_text(text: String) -> RecordBody {
        RecordBody(text)
    }

    /// The typed value the body holds.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// The body as a JSON value (for tools and tests; loaders use [`RecordBody::decode`]).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for RecordBody {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value: serde_json::Value =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        value.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RecordBody {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(deserializer).map(|v| RecordBody::from_value(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_body_is_its_value_in_serde_output_and_back() {
        let body = RecordBody::encode(&json!({"b": [1, 2], "a": "x"}));
        assert_eq!(
            body.as_str(),
            r#"{"a":"x","b":[1,2]}"#,
            "canonical: compact, keys sorted"
        );
        let record = Record { version: 1, body };
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(text, r#"{"version":1,"body":{"a":"x","b":[1,2]}}"#);
        let back: Record =
            serde_json::from_str(r#"{"version":1,"body":{"b":[1,2],"a":"x"}}"#).unwrap();
        assert_eq!(
            back, record,
            "read back in canonical form whatever the key order"
        );
    }

    #[test]
    fn a_body_decodes_the_typed_value_it_encoded() {
        let key = RecordKey::Block { height: 7 };
        let body = RecordBody::encode(&key);
        assert_eq!(body.decode::<RecordKey>().unwrap(), key);
        assert!(
            body.decode::<u32>().is_err(),
            "a body of another type is refused"
        );
        assert!(RecordBody::from_canonical_text("{\"kind\":".into())
            .decode::<RecordKey>()
            .is_err());
    }
}
