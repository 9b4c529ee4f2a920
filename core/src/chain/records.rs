//! The briefcase: the chain arbitrator as keyed, versioned records, written as a diff after each
//! step and loaded back into the same state.
//!
//! Records per channel: a header (facts, arbitrator state), one per live commitment, one per
//! resolver; node-wide: the node header (claim counter, configuration, fees), one per recent
//! block (the highest is the tip), one per preimage, circuit and upstream decision. The peer's revoked commitments go to an append-only log, read
//! only on a breach. Only records whose content changed are written: each step's batch is
//! proportional to what the step touched.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::hashes::{sha256, Hash};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::action::{CommitmentSlot, Record, RecordBody, RecordKey, RecordOp};
use crate::bolt3::shachain::SecretStore;
use crate::bolt3::UnsupportedChannelType;
use crate::channel::updates::ChannelData;
use crate::channel::{ChannelArbitrator, ConfirmedClose, ForceClose};
use crate::commitments::{ChannelInfo, CommitmentRecord, DataLoss, LocalCommitmentRecord};
use crate::event::{FeeConditions, IncomingLeg};
use crate::resolver::Resolver;
use crate::sweeper::{SweepClaim, Sweeper};
use crate::types::{BlockRef, ChannelId, Height};

use super::quiet::{self, DormantChannel};
use super::{ChainArbitrator, Config};
use crate::node::{KnownPreimage, Upstream};

/// The version of every record this code writes and reads.
pub const RECORD_VERSION: u32 = 1;

/// Why stored records could not be loaded. Nothing is acted on.
#[derive(Debug)]
pub enum LoadError {
    /// A record version this code does not know.
    UnknownVersion {
        /// The record.
        key: String,
        /// Its version.
        version: u32,
    },
    /// A record that does not decode.
    Malformed {
        /// The record.
        key: String,
        /// Why.
        error: String,
    },
    /// A record that belongs to a channel with no header.
    Orphan {
        /// The record.
        key: String,
    },
    /// A channel header (the key) of a type the engine does not resolve yet (simple taproot).
    ChannelTypeNotResolved(String, UnsupportedChannelType),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::UnknownVersion { key, version } => write!(
                f,
                "record {key} has version {version}; this build reads version {RECORD_VERSION}"
            ),
            LoadError::Malformed { key, error } => {
                write!(f, "record {key} does not decode: {error}")
            }
            LoadError::Orphan { key } => write!(f, "record {key} belongs to no known channel"),
            LoadError::ChannelTypeNotResolved(key, e) => write!(f, "record {key}: {e}"),
        }
    }
}

impl std::error::Error for LoadError {}

#[derive(Serialize, Deserialize)]
struct NodeHeader {
    /// Where the tip was kept before blocks had records of their own: read, never written.
    #[serde(default, skip_serializing)]
    tip: Option<BlockRef>,
    /// Where the recent blocks were kept before they had records of their own: read, never
    /// written (loading such a header writes them as block records at the next step).
    #[serde(default, skip_serializing)]
    recent: Vec<BlockRef>,
    next_claim: u64,
    config: Config,
    fees: Option<FeeConditions>,
}

#[derive(Serialize, Deserialize)]
struct ChannelHeader {
    info: ChannelInfo,
    last_update_id: u64,
    local_revoked_through: Option<u64>,
    remote_secrets: SecretStore,
    data_loss: Option<DataLoss>,
    force_close: Option<ForceClose>,
    close: Option<ConfirmedClose>,
    resolved_at: Option<Height>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cpfp: Option<crate::funded::FundedClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mempool_commitment: Option<crate::channel::anchor::MempoolCommitment>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    retired_cpfp: BTreeMap<bitcoin::Txid, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked: Option<CommitmentRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reorged_cooperative: Option<crate::channel::cooperative::ReorgedCooperative>,
}

fn body<T: Serialize>(value: &T) -> RecordBody {
    RecordBody::encode(value)
}

fn digest(body: &RecordBody) -> [u8; 32] {
    sha256::Hash::hash(body.as_str().as_bytes()).to_byte_array()
}

/// Every record of one channel.
fn channel_records(ch: &ChannelArbitrator) -> Vec<(RecordKey, RecordBody)> {
    let id = ch.data.info.id;
    let c = &ch.data.commitments;
    let header = ChannelHeader {
        info: ch.data.info.clone(),
        last_update_id: ch.data.last_update_id,
        local_revoked_through: c.local_revoked_through,
        remote_secrets: c.remote_secrets.clone(),
        data_loss: c.data_loss,
        force_close: ch.force_close.clone(),
        close: ch.close.clone(),
        resolved_at: ch.resolved_at,
        cpfp: ch.cpfp.clone(),
        mempool_commitment: ch.mempool_commitment.clone(),
        retired_cpfp: ch.retired_cpfp.clone(),
        reorged_cooperative: ch.reorged_cooperative.clone(),
        revoked: ch.revoked.clone(),
    };
    let mut out = vec![(RecordKey::Channel { channel: id }, body(&header))];
    let slot = |slot| RecordKey::Commitment { channel: id, slot };
    if let Some(l) = &c.local {
        out.push((slot(CommitmentSlot::Local), body(l)));
    }
    if let Some(r) = &c.remote_current {
        out.push((slot(CommitmentSlot::RemoteCurrent), body(r)));
    }
    if let Some(r) = &c.remote_pending {
        out.push((slot(CommitmentSlot::RemotePending), body(r)));
    }
    for r in ch.resolvers.values() {
        out.push((
            RecordKey::Resolver {
                channel: id,
                outpoint: r.outpoint,
            },
            body(r),
        ));
    }
    out
}

fn channel_of(key: &RecordKey) -> Option<ChannelId> {
    key.channel()
}

/// The append-only log entry for a revoked remote commitment.
pub(super) fn revoked_log_entry(channel: ChannelId, revoked: &CommitmentRecord) -> RecordOp {
    RecordOp::Append {
        channel,
        seq: revoked.number,
        record: Record {
            version: RECORD_VERSION,
            body: body(revoked),
        },
    }
}

impl ChainArbitrator {
    fn node_header(&self) -> RecordBody {
        body(&NodeHeader {
            tip: None,
            recent: Vec::new(),
            next_claim: self.node.next_claim,
            config: self.config.clone(),
            fees: self.fees.clone(),
        })
    }

    fn node_record(&self, key: &RecordKey) -> Option<RecordBody> {
        match key {
            RecordKey::Node => Some(self.node_header()),
            RecordKey::Preimage { payment_hash } => self.node.preimages.get(payment_hash).map(body),
            RecordKey::Circuit { outgoing } => self.node.circuits.get(outgoing).map(body),
            RecordKey::Upstream { htlc } => self.node.upstream.get(htlc).map(body),
            RecordKey::Claim { claim } => self.sweeper.claims().get(claim).map(body),
            RecordKey::Block { height } => {
                self.recent.iter().find(|b| b.height == *height).map(body)
            }
            _ => None,
        }
    }

    fn put_if_changed(&mut self, key: RecordKey, value: RecordBody, ops: &mut Vec<RecordOp>) {
        let d = digest(&value);
        if self.persisted.get(&key) != Some(&d) {
            self.persisted.insert(key.clone(), d);
            ops.push(RecordOp::Put {
                key,
                record: Record {
                    version: RECORD_VERSION,
                    body: value,
                },
            });
        }
    }

    /// Every persisted key of one channel. Keys order by kind first, so a channel's header,
    /// commitments and resolvers are three separate ranges.
    fn persisted_of_channel(&self, channel: ChannelId) -> Vec<RecordKey> {
        let first_outpoint = bitcoin::OutPoint {
            txid: bitcoin::Txid::all_zeros(),
            vout: 0,
        };
        let starts = [
            RecordKey::Channel { channel },
            RecordKey::Commitment {
                channel,
                slot: CommitmentSlot::Local,
            },
            RecordKey::Resolver {
                channel,
                outpoint: first_outpoint,
            },
        ];
        starts
            .into_iter()
            .flat_map(|start| {
                let kind = std::mem::discriminant(&start);
                self.persisted
                    .range(start..)
                    .take_while(move |(k, _)| {
                        std::mem::discriminant(*k) == kind && channel_of(k) == Some(channel)
                    })
                    .map(|(k, _)| k.clone())
            })
            .collect()
    }

    /// The recent blocks that changed: the new tip (or the few blocks a reorg replaced) written,
    /// blocks no longer recent (below the oldest kept, above a disconnected tip) deleted. The
    /// recent blocks change only at their ends, so the walk from the tip stops at the first
    /// block already stored: an idle block costs two records, not the whole locator.
    fn persist_blocks(&mut self, ops: &mut Vec<RecordOp>) {
        for b in self.recent.iter().rev() {
            if self.persisted_blocks.get(&b.height) == Some(&b.hash) {
                break;
            }
            self.persisted_blocks.insert(b.height, b.hash);
            ops.push(RecordOp::Put {
                key: RecordKey::Block { height: b.height },
                record: Record {
                    version: RECORD_VERSION,
                    body: body(b),
                },
            });
        }
        let stale: Vec<Height> = match (self.recent.first(), self.recent.last()) {
            (Some(first), Some(last)) => {
                let above = (
                    std::ops::Bound::Excluded(last.height),
                    std::ops::Bound::Unbounded,
                );
                self.persisted_blocks
                    .range(..first.height)
                    .chain(self.persisted_blocks.range(above))
                    .map(|(h, _)| *h)
                    .collect()
            }
            _ => self.persisted_blocks.keys().copied().collect(),
        };
        for height in stale {
            self.persisted_blocks.remove(&height);
            ops.push(RecordOp::Delete {
                key: RecordKey::Block { height },
            });
        }
    }

    /// The records the step changed: the recent blocks, the node header if it may have changed,
    /// dirty node keys, and every record of the touched channels whose content differs from
    /// what was persisted.
    pub(super) fn persist_changes(&mut self, touched: &BTreeSet<ChannelId>) -> Vec<RecordOp> {
        let mut ops = Vec::new();
        self.persist_blocks(&mut ops);
        let mut node_keys = std::mem::take(&mut self.node.dirty);
        // The node header changes only through what marks it dirty (a claim number, fee
        // conditions, a load); it is written once at the start.
        if !self.persisted.contains_key(&RecordKey::Node) {
            node_keys.insert(RecordKey::Node);
        }
        node_keys.extend(
            self.sweeper
                .take_changed()
                .into_iter()
                .map(|claim| RecordKey::Claim { claim }),
        );
        for key in node_keys {
            match self.node_record(&key) {
                Some(value) => self.put_if_changed(key, value, &mut ops),
                None => {
                    if self.persisted.remove(&key).is_some() {
                        ops.push(RecordOp::Delete { key });
                    }
                }
            }
        }
        for id in touched {
            let current = self
                .channels
                .get(id)
                .map(channel_records)
                .unwrap_or_default();
            let present: BTreeSet<RecordKey> = current.iter().map(|(k, _)| k.clone()).collect();
            for (key, value) in current {
                self.put_if_changed(key, value, &mut ops);
            }
            let stale: Vec<RecordKey> = self
                .persisted_of_channel(*id)
                .into_iter()
                .filter(|k| !present.contains(k))
                .collect();
            for key in stale {
                self.persisted.remove(&key);
                ops.push(RecordOp::Delete { key });
            }
        }
        ops
    }

    /// Load a chain arbitrator from its records (as a store returns them). Unknown versions and
    /// malformed records are refused: nothing is guessed. Each channel is decoded by
    /// [`decode_channel`], one after the other: see [`ChainArbitrator::from_records_with`].
    pub fn from_records(
        config: Config,
        records: &BTreeMap<RecordKey, Record>,
    ) -> Result<ChainArbitrator, LoadError> {
        Self::from_records_with(config, records.clone(), |channels| {
            channels.iter().map(decode_channel).collect()
        })
    }

    /// [`ChainArbitrator::from_records`], lazily: quiet open channels stay dormant until an
    /// event needs them (see [`ChainArbitrator::from_records_lazily_with`]).
    pub fn from_records_lazily(
        config: Config,
        records: &BTreeMap<RecordKey, Record>,
    ) -> Result<ChainArbitrator, LoadError> {
        Self::from_records_lazily_with(config, records.clone(), |channels| {
            channels.iter().map(load_channel_lazily).collect()
        })
    }

    /// Decode every dormant channel from `records` (the store's records, as for a load): the
    /// engine is then the one [`ChainArbitrator::from_records`] would give. For tools and tests;
    /// a driver decodes only what [`ChainArbitrator::dormant_needed`] names.
    pub fn hydrate_all(&mut self, records: &BTreeMap<RecordKey, Record>) -> Result<(), LoadError> {
        let mut by_channel: BTreeMap<ChannelId, Vec<(RecordKey, Record)>> = BTreeMap::new();
        for (key, record) in records {
            if let Some(id) = key.channel().filter(|id| self.is_dormant(id)) {
                by_channel
                    .entry(id)
                    .or_default()
                    .push((key.clone(), record.clone()));
            }
        }
        let ids: Vec<ChannelId> = self.dormant_ids().collect();
        for id in ids {
            let of_channel = by_channel.remove(&id).unwrap_or_default();
            self.hydrate(&ChannelRecords::from_stored(id, of_channel)?)?;
        }
        Ok(())
    }

    /// [`ChainArbitrator::from_records`], taking the records, with the channels decoded by
    /// `decode_all`: given every channel's records in channel order, it returns what
    /// [`decode_channel`] gives for each, in the same order. Channels decode independently of
    /// each other and of the node's records, so a loader may spread them over threads (decoding
    /// a channel's keys is most of a restart) and drop each channel's records once decoded (the
    /// records and the engine are never both whole in memory); the engine is the same whatever
    /// `decode_all` does. A record of an unknown version is refused before anything is decoded;
    /// of several malformed records, the node's (in key order) are named first, then the
    /// channels' in channel order.
    pub fn from_records_with<F>(
        config: Config,
        records: BTreeMap<RecordKey, Record>,
        decode_all: F,
    ) -> Result<ChainArbitrator, LoadError>
    where
        F: FnOnce(Vec<ChannelRecords>) -> Vec<Result<DecodedChannel, LoadError>>,
    {
        Self::from_records_lazily_with(config, records, |channels| {
            decode_all(channels)
                .into_iter()
                .map(|d| d.map(|d| LoadedChannel::Decoded(Box::new(d))))
                .collect()
        })
    }

    /// [`ChainArbitrator::from_records_with`], with each channel loaded by `load_all` as
    /// [`load_channel_lazily`] loads it: quiet open channels stay dormant (see
    /// [`super::dormant`]), the others are decoded whole. The engine answers every event as the
    /// one [`ChainArbitrator::from_records`] gives, once the channels each event names in
    /// [`ChainArbitrator::dormant_needed`] are given to [`ChainArbitrator::hydrate`].
    pub fn from_records_lazily_with<F>(
        config: Config,
        records: BTreeMap<RecordKey, Record>,
        load_all: F,
    ) -> Result<ChainArbitrator, LoadError>
    where
        F: FnOnce(Vec<ChannelRecords>) -> Vec<Result<LoadedChannel, LoadError>>,
    {
        if let Some((key, record)) = records.iter().find(|(_, r)| r.version != RECORD_VERSION) {
            return Err(LoadError::UnknownVersion {
                key: key.to_string(),
                version: record.version,
            });
        }
        let mut arb = ChainArbitrator::new(config);
        let mut channels: BTreeMap<ChannelId, ChannelRecords> = BTreeMap::new();
        let mut claims = BTreeMap::new();
        let mut legacy_recent = Vec::new();
        for (key, record) in records {
            if let Some(id) = channel_of(&key) {
                channels
                    .entry(id)
                    .or_insert_with(|| ChannelRecords::new(id))
                    .push(key, record);
                continue;
            }
            let (key, record) = (&key, &record);
            let name = key.to_string();
            match key {
                RecordKey::Node => {
                    let h: NodeHeader = decode(&name, record)?;
                    let current = h.config == arb.config && h.tip.is_none() && h.recent.is_empty();
                    legacy_recent = h.recent;
                    arb.node.next_claim = h.next_claim;
                    arb.fees = h.fees;
                    if !current {
                        // Another configuration, or the older format: not recorded as
                        // persisted, so the next step writes the header afresh.
                        continue;
                    }
                }
                RecordKey::Block { height } => {
                    let b: BlockRef = decode(&name, record)?;
                    if b.height != *height {
                        return Err(LoadError::Malformed {
                            key: name,
                            error: format!("a block at height {} in the record", b.height),
                        });
                    }
                    arb.recent.push(b);
                    arb.persisted_blocks.insert(b.height, b.hash);
                    // Not digested: blocks are tracked by `persisted_blocks`.
                    continue;
                }
                RecordKey::Preimage { payment_hash } => {
                    let p: KnownPreimage = decode(&name, record)?;
                    arb.node.preimages.insert(*payment_hash, p);
                }
                RecordKey::Circuit { outgoing } => {
                    let leg: IncomingLeg = decode(&name, record)?;
                    arb.node.circuits.insert(*outgoing, leg);
                }
                RecordKey::Upstream { htlc } => {
                    let u: Upstream = decode(&name, record)?;
                    arb.node.upstream.insert(*htlc, u);
                }
                RecordKey::Claim { claim } => {
                    claims.insert(*claim, decode::<SweepClaim>(&name, record)?);
                }
                // Grouped by channel above.
                RecordKey::Channel { .. }
                | RecordKey::Commitment { .. }
                | RecordKey::Resolver { .. } => continue,
            }
            arb.persisted.insert(key.clone(), digest(&record.body));
        }
        let count = channels.len();
        let loaded = load_all(channels.into_values().collect());
        if loaded.len() != count {
            return Err(LoadError::Malformed {
                key: "channels".to_string(),
                error: format!("{} channels decoded of {count}", loaded.len()),
            });
        }
        for l in loaded {
            match l? {
                LoadedChannel::Decoded(d) => {
                    let d = *d;
                    arb.persisted.extend(d.digests);
                    arb.channels.insert(d.id, d.channel);
                }
                LoadedChannel::Dormant(id, d) => {
                    arb.dormant.insert(id, d);
                }
            }
        }
        // Block records come in height order. A header of the older format still holds the
        // blocks: they are written as block records by the next step.
        if arb.recent.is_empty() {
            if legacy_recent.windows(2).any(|w| w[0].height >= w[1].height) {
                return Err(LoadError::Malformed {
                    key: "node".to_string(),
                    error: "recent blocks not in strictly increasing height order".to_string(),
                });
            }
            arb.recent = legacy_recent;
        }
        arb.tip = arb.recent.last().copied();
        arb.sweeper = Sweeper::from_claims(claims);
        arb.sweeper.set_tip(arb.tip.map(|t| t.height));
        arb.reindex_all();
        Ok(arb)
    }
}

/// A channel as a loader gives it to its engine: decoded whole, or dormant.
#[derive(Debug)]
pub enum LoadedChannel {
    /// Decoded whole.
    Decoded(Box<DecodedChannel>),
    /// A quiet open channel, decoded on first touch.
    Dormant(ChannelId, DormantChannel),
}

/// Load one channel lazily: dormant if its records show a quiet open channel, otherwise decoded
/// whole by [`decode_channel`] (whose errors are the loader's). Pure, and independent of every
/// other record.
pub fn load_channel_lazily(records: &ChannelRecords) -> Result<LoadedChannel, LoadError> {
    let quiet = match &records.header {
        Some(header) if records.resolvers.is_empty() => {
            quiet::dormant(records.id, header, &records.commitments)
        }
        _ => None,
    };
    match quiet {
        Some(d) => Ok(LoadedChannel::Dormant(records.id, d)),
        None => decode_channel(records).map(|d| LoadedChannel::Decoded(Box::new(d))),
    }
}

/// One channel's records, as a store holds them: its header, commitments and resolvers.
#[derive(Debug)]
pub struct ChannelRecords {
    pub(super) id: ChannelId,
    pub(super) header: Option<Record>,
    pub(super) commitments: Vec<(CommitmentSlot, Record)>,
    pub(super) resolvers: Vec<(RecordKey, Record)>,
}

impl ChannelRecords {
    fn new(id: ChannelId) -> Self {
        ChannelRecords {
            id,
            header: None,
            commitments: Vec::new(),
            resolvers: Vec::new(),
        }
    }

    fn push(&mut self, key: RecordKey, record: Record) {
        match key {
            RecordKey::Channel { .. } => self.header = Some(record),
            RecordKey::Commitment { slot, .. } => self.commitments.push((slot, record)),
            _ => self.resolvers.push((key, record)),
        }
    }

    /// The channel.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// Channel `id`'s records among every record of a store (tools and tests; a store reads
    /// one channel's with an index lookup). Scans `records`.
    pub fn of_channel(
        id: ChannelId,
        records: &BTreeMap<RecordKey, Record>,
    ) -> Result<ChannelRecords, LoadError> {
        let of = records
            .iter()
            .filter(|(k, _)| k.channel() == Some(id))
            .map(|(k, r)| (k.clone(), r.clone()));
        ChannelRecords::from_stored(id, of)
    }

    /// One channel's records as a store returns them ([`RecordKey`] → [`Record`], the header,
    /// commitments and resolvers of channel `id`). A record of another channel, or not a
    /// channel's, is refused, and so is a version this code does not read.
    pub fn from_stored(
        id: ChannelId,
        records: impl IntoIterator<Item = (RecordKey, Record)>,
    ) -> Result<ChannelRecords, LoadError> {
        let mut out = ChannelRecords::new(id);
        for (key, record) in records {
            if channel_of(&key) != Some(id) {
                return Err(LoadError::Malformed {
                    key: key.to_string(),
                    error: format!("not a record of channel {id}"),
                });
            }
            if record.version != RECORD_VERSION {
                return Err(LoadError::UnknownVersion {
                    key: key.to_string(),
                    version: record.version,
                });
            }
            out.push(key, record);
        }
        Ok(out)
    }
}

/// A channel decoded from its records, ready to join its engine.
#[derive(Debug)]
pub struct DecodedChannel {
    pub(super) id: ChannelId,
    pub(super) channel: ChannelArbitrator,
    pub(super) digests: Vec<(RecordKey, [u8; 32])>,
}

/// Decode one channel from its records: pure, and independent of every other record.
pub fn decode_channel(records: &ChannelRecords) -> Result<DecodedChannel, LoadError> {
    let id = records.id;
    let orphan = || {
        let key = match (records.commitments.first(), records.resolvers.first()) {
            (Some(_), _) => format!("channel/{id}/commitment"),
            (None, Some((key, _))) => key.to_string(),
            (None, None) => format!("channel/{id}"),
        };
        LoadError::Orphan { key }
    };
    let header_record = records.header.as_ref().ok_or_else(orphan)?;
    let header_key = RecordKey::Channel { channel: id };
    let header_name = header_key.to_string();
    let header: ChannelHeader = decode(&header_name, header_record)?;
    let mut digests = vec![(header_key, digest(&header_record.body))];
    let mut channel = header.into_channel();
    let refused = |e| LoadError::ChannelTypeNotResolved(header_name, e);
    let channel_type = channel.data.info.channel_type;
    channel_type.engine_support().map_err(refused)?;
    for (slot, record) in &records.commitments {
        let key = RecordKey::Commitment {
            channel: id,
            slot: *slot,
        };
        let name = key.to_string();
        let c = &mut channel.data.commitments;
        match slot {
            CommitmentSlot::Local => {
                c.local = Some(decode::<LocalCommitmentRecord>(&name, record)?)
            }
            CommitmentSlot::RemoteCurrent => c.remote_current = Some(decode(&name, record)?),
            CommitmentSlot::RemotePending => c.remote_pending = Some(decode(&name, record)?),
        }
        digests.push((key, digest(&record.body)));
    }
    for (key, record) in &records.resolvers {
        let r: Resolver = decode(&key.to_string(), record)?;
        channel.resolvers.insert(r.outpoint, r);
        digests.push((key.clone(), digest(&record.body)));
    }
    Ok(DecodedChannel {
        id,
        channel,
        digests,
    })
}

/// The configuration an engine ran with, from its node record (`None` if the record does not
/// hold one this build reads) — for tools that open a store before loading an engine from it.
pub fn stored_config(node: &Record) -> Option<Config> {
    if node.version != RECORD_VERSION {
        return None;
    }
    node.body.decode::<NodeHeader>().ok().map(|h| h.config)
}

fn decode<T: DeserializeOwned>(key: &str, record: &Record) -> Result<T, LoadError> {
    record.body.decode().map_err(|e| LoadError::Malformed {
        key: key.to_string(),
        error: e.to_string(),
    })
}

impl ChannelHeader {
    /// The arbitrator this header describes, without its commitments and resolvers (records of
    /// their own).
    fn into_channel(self) -> ChannelArbitrator {
        let h = self;
        let mut data = ChannelData {
            info: h.info,
            commitments: Default::default(),
            last_update_id: h.last_update_id,
        };
        data.commitments.local_revoked_through = h.local_revoked_through;
        data.commitments.remote_secrets = h.remote_secrets;
        data.commitments.data_loss = h.data_loss;
        let mut ch = ChannelArbitrator::new(data);
        ch.force_close = h.force_close;
        ch.close = h.close;
        ch.resolved_at = h.resolved_at;
        ch.cpfp = h.cpfp;
        ch.mempool_commitment = h.mempool_commitment;
        ch.retired_cpfp = h.retired_cpfp;
        ch.revoked = h.revoked;
        ch.reorged_cooperative = h.reorged_cooperative;
        ch
    }
}
