//! Many channels, cheaply.
//!
//! One channel is built for real: `sim` opens it, adds its HTLCs and commits, and a fresh
//! [`ChainArbitrator`] applies those updates (checking every signature) and persists its records.
//! That channel's records are the [`Template`]. Copy `i` is the same channel on another funding
//! outpoint: the records are re-keyed by rewriting, at positions found once, every place the
//! template's funding txid, channel id and commitment txids appear (64 hex digits each, in
//! either byte order), and the copies are loaded with [`ChainArbitrator::from_records`] — the
//! same path a restart takes.
//!
//! What a copy shares with the template: keys, per-commitment points and payment hashes. Each
//! copy's funding outpoint, channel id and commitment txids are its own, so the engine's indexes
//! hold one entry per copy exactly as for distinct channels. The peer's signatures stored in a
//! copy are the template's and would not verify on the copy's transactions; nothing in a block
//! step checks them (they are checked when an update arrives).

use std::collections::BTreeMap;

use bitcoin::hashes::{sha256d, Hash, HashEngine};
use bitcoin::{BlockHash, OutPoint, Transaction, Txid};
use contractcourt_core::action::{Action, Record, RecordBody, RecordKey};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::{ChainArbitrator, Config, LoadError};
use contractcourt_core::event::{Block, Event};
use contractcourt_core::sim::{SimChannel, SimError, SimHtlc, SimSetup};
use contractcourt_core::types::{BlockRef, ChannelId, Height, HtlcDirection, Party};

/// The height of the block every fixture node starts at.
pub const START_HEIGHT: Height = 800_000;

/// Why a fixture could not be built.
#[derive(Debug)]
pub enum FixtureError {
    /// The channel model refused an operation.
    Sim(SimError),
    /// The engine refused an event.
    Step(String),
    /// Records did not load.
    Load(LoadError),
    /// The template's records are not what a copy can be made from.
    Template(String),
}

impl std::fmt::Display for FixtureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FixtureError::Sim(e) => write!(f, "sim: {e}"),
            FixtureError::Step(e) => write!(f, "engine refused an event: {e}"),
            FixtureError::Load(e) => write!(f, "records do not load: {e}"),
            FixtureError::Template(e) => write!(f, "template: {e}"),
        }
    }
}

impl std::error::Error for FixtureError {}

impl From<SimError> for FixtureError {
    fn from(e: SimError) -> Self {
        FixtureError::Sim(e)
    }
}

impl From<LoadError> for FixtureError {
    fn from(e: LoadError) -> Self {
        FixtureError::Load(e)
    }
}

/// What each channel looks like.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The commitment format.
    pub channel_type: ChannelType,
    /// Capacity.
    pub funding_sat: u64,
    /// HTLCs we offered.
    pub outgoing: usize,
    /// HTLCs the peer offered.
    pub incoming: usize,
    /// Each HTLC's amount.
    pub htlc_msat: u64,
    /// Expiry of the outgoing HTLCs.
    pub outgoing_expiry: Height,
    /// Expiry of the incoming HTLCs.
    pub incoming_expiry: Height,
}

impl Layout {
    /// An anchor channel of 1,000,000 sat with `outgoing` + `incoming` HTLCs of 20,000 sat that
    /// expire far from [`START_HEIGHT`] (no deadline anywhere near).
    pub fn idle(outgoing: usize, incoming: usize) -> Layout {
        Layout {
            channel_type: ChannelType::AnchorsZeroFeeHtlc,
            funding_sat: 1_000_000,
            outgoing,
            incoming,
            htlc_msat: 20_000_000,
            outgoing_expiry: START_HEIGHT + 500_000,
            incoming_expiry: START_HEIGHT + 500_040,
        }
    }
}

/// A node's store as the tests keep it: keyed records and append-only log entries.
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    /// Keyed records.
    pub records: BTreeMap<RecordKey, Record>,
    /// Log entries by (channel, sequence).
    pub log: BTreeMap<(ChannelId, u64), Record>,
}

impl MemStore {
    /// Apply every `Persist` batch among `actions`.
    pub fn apply(&mut self, actions: &[Action]) {
        for action in actions {
            if let Action::Persist(batch) = action {
                batch.apply_to(&mut self.records, &mut self.log);
            }
        }
    }
}

/// The hash of a fixture block.
pub fn block_hash(prev: &BlockHash, height: Height, salt: u64) -> BlockHash {
    let mut engine = sha256d::Hash::engine();
    engine.input(prev.as_byte_array());
    engine.input(&height.to_le_bytes());
    engine.input(&salt.to_le_bytes());
    BlockHash::from_raw_hash(sha256d::Hash::from_engine(engine))
}

/// The first block of every fixture node, at [`START_HEIGHT`].
pub fn first_block() -> Block {
    Block {
        height: START_HEIGHT,
        hash: block_hash(&BlockHash::all_zeros(), START_HEIGHT, 0),
        prev_hash: BlockHash::all_zeros(),
        time: 1_700_000_000,
        txs: Vec::new(),
    }
}

/// One place in a record's JSON text that names the template's funding or commitments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    FundingInternal,
    FundingDisplay,
    LocalInternal,
    LocalDisplay,
    RemoteInternal,
    RemoteDisplay,
}

/// A record of the template channel, as JSON text with the places a copy rewrites.
#[derive(Clone, Debug)]
struct Patchable {
    key: RecordKey,
    version: u32,
    text: String,
    spots: Vec<(usize, Slot)>,
}

/// One copy of the template channel.
#[derive(Clone, Debug)]
pub struct ChannelCopy {
    /// Its number.
    pub index: u64,
    /// Its channel id.
    pub id: ChannelId,
    /// Its funding outpoint.
    pub funding: OutPoint,
    /// Our current commitment, on this copy's funding outpoint (the template's witness).
    pub local_tx: Transaction,
    /// The peer's current commitment, on this copy's funding outpoint.
    pub remote_tx: Transaction,
}

/// One real channel, built with `sim` and applied by the engine, and what copies of it need.
pub struct Template {
    /// The configuration every fixture node uses.
    pub config: Config,
    /// The layout it was built with.
    pub layout: Layout,
    /// The simulated channel (its `local` secrets sign for every copy).
    pub sim: SimChannel,
    /// The HTLCs, outgoing then incoming.
    pub htlcs: Vec<SimHtlc>,
    /// The engine that applied the template channel's updates (a real one-channel node).
    pub arb: ChainArbitrator,
    /// What that engine persisted.
    pub store: MemStore,
    records: Vec<Patchable>,
    local_tx: Transaction,
    remote_tx: Transaction,
}

fn hex_pair(txid: &Txid) -> (String, String) {
    (hex::encode(txid.to_byte_array()), txid.to_string())
}

fn feed(
    arb: &mut ChainArbitrator,
    store: &mut MemStore,
    event: &Event,
) -> Result<Vec<Action>, FixtureError> {
    let actions = arb
        .step(event)
        .map_err(|e| FixtureError::Step(e.to_string()))?;
    store.apply(&actions);
    Ok(actions)
}

impl Template {
    /// Build the template channel with `layout` on a node configured with `config`, at
    /// [`START_HEIGHT`].
    pub fn new(config: Config, layout: Layout) -> Result<Template, FixtureError> {
        let mut arb = ChainArbitrator::new(config.clone());
        let mut store = MemStore::default();
        feed(&mut arb, &mut store, &Event::BlockConnected(first_block()))?;
        let mut setup = SimSetup::new(7, layout.channel_type);
        setup.funding_sat = layout.funding_sat;
        setup.local_balance_msat = layout.funding_sat * 600;
        setup.funding_outpoint = Some(OutPoint {
            txid: funding_txid(u64::MAX),
            vout: 0,
        });
        let (mut sim, events) = SimChannel::open(setup)?;
        for e in &events {
            feed(&mut arb, &mut store, e)?;
        }
        let mut htlcs = Vec::new();
        for _ in 0..layout.outgoing {
            htlcs.push(sim.add_htlc(
                HtlcDirection::Outgoing,
                layout.htlc_msat,
                layout.outgoing_expiry,
            )?);
        }
        for _ in 0..layout.incoming {
            htlcs.push(sim.add_htlc(
                HtlcDirection::Incoming,
                layout.htlc_msat,
                layout.incoming_expiry,
            )?);
        }
        if !htlcs.is_empty() {
            for e in &sim.commit()? {
                feed(&mut arb, &mut store, e)?;
            }
        }
        let local_tx = sim.commitment_tx(Party::Local, sim.local_commitment_number())?;
        let remote_tx = sim.commitment_tx(Party::Remote, sim.remote_commitment_number())?;
        let id = sim.channel_id;
        let (fi, fd) = hex_pair(&sim.funding.outpoint.txid);
        let (li, ld) = hex_pair(&local_tx.compute_txid());
        let (ri, rd) = hex_pair(&remote_tx.compute_txid());
        if hex::encode(id.0) != fi {
            return Err(FixtureError::Template(
                "the channel id is not the funding txid".into(),
            ));
        }
        let needles = [
            (fi, Slot::FundingInternal),
            (fd, Slot::FundingDisplay),
            (li, Slot::LocalInternal),
            (ld, Slot::LocalDisplay),
            (ri, Slot::RemoteInternal),
            (rd, Slot::RemoteDisplay),
        ];
        let mut records = Vec::new();
        for (key, record) in &store.records {
            if channel_of(key) != Some(id) {
                continue;
            }
            let text = record.body.as_str().to_string();
            let mut spots = Vec::new();
            for (needle, slot) in &needles {
                spots.extend(
                    text.match_indices(needle.as_str())
                        .map(|(at, _)| (at, *slot)),
                );
            }
            spots.sort_by_key(|(at, _)| *at);
            if spots.windows(2).any(|w| w[1].0 < w[0].0 + 64) {
                return Err(FixtureError::Template("overlapping identifiers".into()));
            }
            records.push(Patchable {
                key: key.clone(),
                version: record.version,
                text,
                spots,
            });
        }
        Ok(Template {
            config,
            layout,
            sim,
            htlcs,
            arb,
            store,
            records,
            local_tx,
            remote_tx,
        })
    }

    /// Copy number `index`: its funding outpoint, channel id and commitments.
    pub fn copy(&self, index: u64) -> ChannelCopy {
        let funding = OutPoint {
            txid: funding_txid(index),
            vout: 0,
        };
        let on_funding = |tx: &Transaction| {
            let mut tx = tx.clone();
            if let Some(input) = tx.input.first_mut() {
                input.previous_output = funding;
            }
            tx
        };
        ChannelCopy {
            index,
            id: ChannelId(funding.txid.to_byte_array()),
            funding,
            local_tx: on_funding(&self.local_tx),
            remote_tx: on_funding(&self.remote_tx),
        }
    }

    /// The records of a copy, as the template's records with every identifier rewritten.
    pub fn records(&self, copy: &ChannelCopy) -> Result<Vec<(RecordKey, Record)>, FixtureError> {
        let (fi, fd) = hex_pair(&copy.funding.txid);
        let (li, ld) = hex_pair(&copy.local_tx.compute_txid());
        let (ri, rd) = hex_pair(&copy.remote_tx.compute_txid());
        let mut out = Vec::with_capacity(self.records.len());
        for p in &self.records {
            let mut bytes = p.text.clone().into_bytes();
            for (at, slot) in &p.spots {
                let with = match slot {
                    Slot::FundingInternal => &fi,
                    Slot::FundingDisplay => &fd,
                    Slot::LocalInternal => &li,
                    Slot::LocalDisplay => &ld,
                    Slot::RemoteInternal => &ri,
                    Slot::RemoteDisplay => &rd,
                };
                bytes[*at..*at + 64].copy_from_slice(with.as_bytes());
            }
            // Through a value: a patched identifier may change the order of a map's keys.
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| FixtureError::Template(e.to_string()))?;
            let body = RecordBody::from_value(&value);
            out.push((
                rekey(&p.key, copy.id),
                Record {
                    version: p.version,
                    body,
                },
            ));
        }
        Ok(out)
    }

    /// The node records (the node header and the recent blocks) and every record of copies
    /// `0..n`, as a store would return them.
    pub fn node_records(
        &self,
        n: u64,
    ) -> Result<(BTreeMap<RecordKey, Record>, Vec<ChannelCopy>), FixtureError> {
        let mut records: BTreeMap<RecordKey, Record> = self
            .store
            .records
            .iter()
            .filter(|(k, _)| matches!(k, RecordKey::Node | RecordKey::Block { .. }))
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        let mut copies = Vec::with_capacity(n as usize);
        for i in 0..n {
            let copy = self.copy(i);
            records.extend(self.records(&copy)?);
            copies.push(copy);
        }
        Ok((records, copies))
    }

    /// A node with copies `0..n` of the template channel, tip at [`START_HEIGHT`].
    pub fn node(&self, n: u64) -> Result<(ChainArbitrator, Vec<ChannelCopy>), FixtureError> {
        let (records, copies) = self.node_records(n)?;
        let arb = ChainArbitrator::from_records(self.config.clone(), &records)?;
        Ok((arb, copies))
    }
}

/// The funding txid of copy `index`.
pub fn funding_txid(index: u64) -> Txid {
    let mut engine = sha256d::Hash::engine();
    engine.input(b"contractcourt-bench/funding");
    engine.input(&index.to_le_bytes());
    Txid::from_raw_hash(sha256d::Hash::from_engine(engine))
}

fn channel_of(key: &RecordKey) -> Option<ChannelId> {
    match key {
        RecordKey::Channel { channel }
        | RecordKey::Commitment { channel, .. }
        | RecordKey::Resolver { channel, .. } => Some(*channel),
        _ => None,
    }
}

fn rekey(key: &RecordKey, id: ChannelId) -> RecordKey {
    match key {
        RecordKey::Channel { .. } => RecordKey::Channel { channel: id },
        RecordKey::Commitment { slot, .. } => RecordKey::Commitment {
            channel: id,
            slot: *slot,
        },
        RecordKey::Resolver { outpoint, .. } => RecordKey::Resolver {
            channel: id,
            outpoint: *outpoint,
        },
        other => other.clone(),
    }
}

/// The tip of a node built from a template.
pub fn start_tip() -> BlockRef {
    let b = first_block();
    BlockRef {
        height: b.height,
        hash: b.hash,
    }
}

/// The configuration of every fixture node: defaults, sweeping to a wallet script.
pub fn config() -> Config {
    Config {
        sweep_to: Some(contractcourt_core::sweeper::SweeperConfig {
            destination: bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array(
                [0x11; 20],
            )),
            fallback_feerate: bitcoin::FeeRate::from_sat_per_vb_u32(2),
            fee_wallet: None,
        }),
        ..Config::default()
    }
}
