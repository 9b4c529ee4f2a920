//! `event_trace`: structure-aware event traces against the chain arbitrator.
//!
//! The fuzz bytes choose a configuration and one or two `sim` channels, then a bounded list of
//! operations, each decoded from the next bytes: HTLCs added, settled and failed and the updates
//! that commit them (fed as the node would), blocks carrying any subset of the channels'
//! commitments (current, pending, revoked), HTLC transactions, the engine's own broadcasts,
//! cooperative closes and arbitrary spends of confirmed outputs, reorgs, preimages, circuits,
//! fee conditions, answers to the engine's requests (signatures from the sim signer, wallet
//! funding, broadcast results, revoked-log reads — correct, failed, stale or never), restarts
//! from the persisted records, corrupted, repeated and out-of-order events.
//!
//! After every step, for any input:
//! - a refused event changed nothing;
//! - a `Persist` batch comes first, and loading the persisted records gives back the in-memory
//!   state;
//! - a preimage once learned is still known, and no incoming HTLC is both settled and failed
//!   upstream;
//! - every broadcast spends outputs that exist and are not spent by another confirmed
//!   transaction, carries a witness on every input (an empty one only on a pay-to-anchor
//!   output), is final at the next block (nLockTime, BIP 68
//!   against the prevouts' confirmation heights) and standard (a package parent may pay less than
//!   the relay fee if the package pays it);
//! - events and actions survive a JSON round trip.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::hashes::{sha256d, Hash, HashEngine};
use bitcoin::{Amount, BlockHash, FeeRate, OutPoint, ScriptBuf, Transaction, TxOut, Txid};

use super::Bytes;
use crate::action::{Action, Record, RecordKey, SigningKey};
use crate::bolt3::{scripts, ChannelType, PaymentHash};
use crate::chain::{ChainArbitrator, Config};
use crate::channel::close::CloseConfig;
use crate::channel::deadline::DeadlineConfig;
use crate::event::{Block, BroadcastOutcome, Event, FundingOutcome, SignOutcome};
use crate::policy::{check_final, check_package_fee, check_standard, PolicyConfig, PolicyError};
use crate::sim::{SimChannel, SimHtlc, SimSetup, SimWallet};
use crate::sweeper::SweeperConfig;
use crate::types::{BlockRef, ChannelId, Height, HtlcKey, Party, RawTx};

mod ops;

/// The height of the first block.
const START: Height = 500;
/// The most operations decoded from one input.
const MAX_OPS: usize = 40;
/// The most blocks on the chain.
const MAX_BLOCKS: usize = 150;
/// The most live HTLCs per channel.
const MAX_LIVE_HTLCS: usize = 8;
/// The most requests kept waiting for an answer.
const MAX_PENDING: usize = 48;
/// The most events remembered for repeats.
const MAX_HISTORY: usize = 128;

/// The channel type a fuzz input chooses: legacy (static remote key) without anchors; with
/// anchors, keyed anchors (`option_anchors`), or — when the seed's top bit is set — zero-fee
/// commitments (version 3, one pay-to-anchor output). The seed's top bit leaves every earlier
/// input (all with seeds below 0x80) choosing what it chose before.
fn channel_type(anchors: bool, seed: u8) -> ChannelType {
    match (anchors, seed & 0x80 != 0) {
        (false, _) => ChannelType::StaticRemoteKey,
        (true, false) => ChannelType::AnchorsZeroFeeHtlc,
        (true, true) => ChannelType::ZeroFeeCommitments,
    }
}

/// Raw broadcast rejection reasons (the core classifies them).
const REJECTIONS: [&str; 11] = [
    "txn-already-known",
    "txn-already-in-mempool",
    "insufficient fee",
    "min relay fee not met",
    "bad-txns-inputs-missingorspent",
    "non-final",
    "non-BIP68-final",
    "txn-mempool-conflict",
    "missing-inputs",
    "mempool full",
    "",
];

fn p2wpkh(tag: u8) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([tag; 20]))
}

fn block_hash(prev: &BlockHash, height: Height, txs: &[RawTx], salt: u32) -> BlockHash {
    let mut engine = sha256d::Hash::engine();
    engine.input(prev.as_byte_array());
    engine.input(&height.to_le_bytes());
    engine.input(&salt.to_le_bytes());
    for tx in txs {
        engine.input(tx.compute_txid().as_byte_array());
    }
    BlockHash::from_raw_hash(sha256d::Hash::from_engine(engine))
}

/// One simulated channel and what the driver knows about it.
struct Chan {
    sim: SimChannel,
    /// The engine's updates no longer follow the sim (a corrupted, shutdown, data-loss or
    /// splice update was fed): the sim's events are dropped, the sim (the peer) moves on alone.
    frozen: bool,
    /// The funding output.
    funding: TxOut,
    /// Shutdown scripts, once registered.
    shutdown: Option<(ScriptBuf, ScriptBuf)>,
}

/// Which transaction a block candidate is (built only when chosen).
#[derive(Clone, Copy, Debug)]
enum Candidate {
    Commitment { chan: usize, holder: Party, n: u64 },
    Broadcast(usize),
    Cooperative { chan: usize },
}

/// The driver: plays the node, the peer and the chain around the engine.
struct Driver<'l> {
    config: Config,
    arb: ChainArbitrator,
    /// The last state checked to be what the store loads as.
    durable: ChainArbitrator,
    store: BTreeMap<RecordKey, Record>,
    log: BTreeMap<(ChannelId, u64), Record>,
    chans: Vec<Chan>,
    /// Every HTLC ever added, across channels.
    htlcs: Vec<SimHtlc>,
    /// The active chain, oldest first.
    blocks: Vec<Block>,
    /// Confirmation heights of the active chain's transactions.
    confirmed: BTreeMap<Txid, Height>,
    /// Active-chain spends: outpoint → spending txid.
    spent: BTreeMap<OutPoint, Txid>,
    /// Every transaction seen anywhere (blocks, mempool, broadcasts).
    txs: BTreeMap<Txid, Transaction>,
    /// Which commitment a txid is.
    commitments: BTreeMap<Txid, (usize, Party, u64)>,
    /// Every transaction the engine broadcast, in order.
    broadcasts: Vec<Transaction>,
    /// Requests waiting for an answer.
    pending: Vec<Action>,
    /// Upstream decisions seen: incoming HTLC → settled.
    upstream: BTreeMap<HtlcKey, bool>,
    /// Payment hashes of preimages the engine accepted.
    learned: BTreeSet<PaymentHash>,
    history: Vec<Event>,
    wallet: SimWallet,
    /// The lowest minimum relay fee ever reported (sat/kvB), at most Bitcoin Core's default.
    min_relay_kvb: u64,
    salt: u32,
    log_ops: &'l mut Vec<String>,
    logging: bool,
    /// Whether a request may still be answered after later events (see
    /// [`event_trace_out_of_order`]).
    out_of_order: bool,
}

/// Structure-aware event traces against the chain arbitrator (see the module documentation).
/// Deterministic; at most a few dozen operations per input.
///
/// The driver contract (DESIGN.md, "Driver contract") executes a step's effects in order and
/// feeds each result back before the next event, and both drivers do so: before any event other
/// than an answer, every pending request is answered (a crash — `restart` — drops them instead,
/// as a real crash does). Answers may still fail, lie, repeat or be stale.
pub fn event_trace(data: &[u8]) {
    let mut log = Vec::new();
    run(data, &mut log, false, false);
}

/// [`event_trace`] outside the driver contract: a request may be answered after later events
/// (blocks, updates), as an asynchronous driver that does not wait for its wallet would.
///
/// The `event_trace_async` fuzz target. Its first find: a wallet-funding result for a funded
/// claim (CPFP child, zero-fee HTLC transaction) arriving after an earlier attempt of the claim
/// confirmed was assembled, signed and broadcast, double-spending the confirmed transaction
/// (`fuzz/artifacts-found/event_trace-late-wallet-funding-double-spend`); fixed.
pub fn event_trace_out_of_order(data: &[u8]) {
    let mut log = Vec::new();
    run(data, &mut log, false, true);
}

/// [`event_trace`], returning what it persisted at the end (seeds for `record_roundtrip`).
pub fn event_trace_records(data: &[u8]) -> Vec<(RecordKey, Record)> {
    let mut log = Vec::new();
    run(data, &mut log, false, false).into_iter().collect()
}

/// [`event_trace`], recording a description of every operation into `log` (for reading a
/// crashing input).
pub fn event_trace_logged(data: &[u8], out_of_order: bool, log: &mut Vec<String>) {
    run(data, log, true, out_of_order);
}

fn run(
    data: &[u8],
    log: &mut Vec<String>,
    logging: bool,
    out_of_order: bool,
) -> BTreeMap<RecordKey, Record> {
    let mut b = Bytes::new(data);
    let flags = b.u8();
    let mut config = Config {
        deadlines: DeadlineConfig {
            outgoing_broadcast_delta: u32::from(b.u8() % 4),
            incoming_broadcast_delta: [24, 6, 0, 40][usize::from(flags >> 5 & 3)],
        },
        close: {
            let reorg_safety_depth = [6, 1, 2, 3][usize::from(flags >> 1 & 3)];
            CloseConfig {
                reorg_safety_depth,
                archive_depth: if flags & 8 == 0 {
                    100
                } else {
                    reorg_safety_depth + 4
                },
                cut_loss_blocks: if flags & 16 == 0 { Some(3) } else { None },
            }
        },
        sweep_to: (flags & 1 == 0).then(|| SweeperConfig {
            destination: p2wpkh(0x11),
            fallback_feerate: FeeRate::from_sat_per_vb_u32(2),
            fee_wallet: None,
        }),
        ..Config::default()
    };
    let shape = b.u8();
    let seed = b.u8();
    if flags & 0x80 != 0 {
        // The wallet that funds CPFP is also refilled by sweeps while below its reserve (its
        // balance is told after every block).
        if let Some(s) = config.sweep_to.as_mut() {
            s.fee_wallet = Some(SimWallet::new(u64::from(seed)).script_pubkey().clone());
        }
    }
    let mut d = Driver {
        arb: ChainArbitrator::new(config.clone()),
        durable: ChainArbitrator::new(config.clone()),
        config,
        store: BTreeMap::new(),
        log: BTreeMap::new(),
        chans: Vec::new(),
        htlcs: Vec::new(),
        blocks: Vec::new(),
        confirmed: BTreeMap::new(),
        spent: BTreeMap::new(),
        txs: BTreeMap::new(),
        commitments: BTreeMap::new(),
        broadcasts: Vec::new(),
        pending: Vec::new(),
        upstream: BTreeMap::new(),
        learned: BTreeSet::new(),
        history: Vec::new(),
        wallet: SimWallet::new(u64::from(seed)),
        min_relay_kvb: 1_000,
        salt: 1,
        log_ops: log,
        logging,
        out_of_order,
    };
    d.mine(Vec::new(), 0);
    let count = 1 + usize::from(shape & 1);
    for i in 0..count {
        let channel_type = channel_type(shape >> (1 + i) & 1 == 1, seed);
        let mut setup = SimSetup::new(u64::from(seed) * 2 + i as u64, channel_type);
        if shape >> (3 + i) & 1 == 1 {
            setup.funder = Party::Remote;
            setup.local_balance_msat = 400_000_000;
        }
        setup.local_to_self_delay = [144, 6, 20, 1][usize::from(shape >> 5 & 3)];
        setup.remote_to_self_delay = [144, 10, 3, 30][usize::from(shape >> 5 & 3)];
        d.open(setup);
    }
    if shape & 0x80 != 0 {
        d.fund_wallet(3, 50_000);
    }
    for _ in 0..MAX_OPS {
        if b.is_empty() || d.blocks.len() >= MAX_BLOCKS {
            break;
        }
        d.op(&mut b);
    }
    d.store
}

impl Driver<'_> {
    fn tip(&self) -> Height {
        self.blocks.last().map_or(START - 1, |b| b.height)
    }

    fn note(&mut self, what: impl FnOnce() -> String) {
        if self.logging {
            let line = what();
            self.log_ops.push(line);
        }
    }

    /// Feed one event and check every invariant; `None` if it was refused.
    fn feed(&mut self, event: Event) -> Option<Vec<Action>> {
        roundtrip(&event);
        self.hydrate_for(&event);
        let before = self.arb.clone();
        let result = self.arb.step(&event);
        if self.history.len() < MAX_HISTORY {
            self.history.push(event);
        }
        match result {
            Err(e) => {
                if self.arb != before {
                    panic!(
                        "a refused event ({e}) changed the state (- before, + after):\n{}",
                        crate::trace::line_diff(
                            &format!("{before:#?}"),
                            &format!("{:#?}", self.arb)
                        )
                    );
                }
                None
            }
            Ok(actions) => {
                self.after_step(&actions);
                Some(actions)
            }
        }
    }

    fn after_step(&mut self, actions: &[Action]) {
        let mut persisted = false;
        for (i, action) in actions.iter().enumerate() {
            roundtrip(action);
            let Action::Persist(batch) = action else {
                continue;
            };
            assert_eq!(i, 0, "a Persist batch that is not the first action");
            persisted = !batch.ops.is_empty();
            batch.apply_to(&mut self.store, &mut self.log);
        }
        if persisted {
            self.check_durable();
            self.durable = self.arb.clone();
        } else if self.arb != self.durable {
            // The store did not change, so it still loads as `durable`.
            panic!(
                "a step changed the state without persisting it (- persisted, + memory):\n{}",
                crate::trace::line_diff(
                    &format!("{:#?}", self.durable),
                    &format!("{:#?}", self.arb)
                )
            );
        }
        for hash in &self.learned {
            assert!(
                self.arb.node().preimages.contains_key(hash),
                "the preimage of {hash} was learned and is now unknown"
            );
        }
        let _ = self.arb.ledger();
        for action in actions {
            match action {
                Action::Broadcast { tx, request } => {
                    self.note(|| format!("broadcast {request:?} {}", tx.compute_txid()));
                    self.check_broadcast(tx, None);
                    self.txs.insert(tx.compute_txid(), tx.0.clone());
                    self.broadcasts.push(tx.0.clone());
                    self.pending.push(action.clone());
                }
                Action::BroadcastPackage { parent, child, .. } => {
                    let parent_outs = self.check_broadcast(parent, Some(child));
                    self.txs.insert(parent.compute_txid(), parent.0.clone());
                    let child_outs = self.check_broadcast(child, Some(parent));
                    let policy = self.policy();
                    check_package_fee(
                        &[(&parent.0, &parent_outs[..]), (&child.0, &child_outs[..])],
                        &policy,
                    )
                    .unwrap_or_else(|e| {
                        panic!("broadcast package {} is refused: {e}", child.compute_txid())
                    });
                    self.txs.insert(child.compute_txid(), child.0.clone());
                    self.note(|| format!("broadcast package {}", child.compute_txid()));
                    self.broadcasts.push(parent.0.clone());
                    self.broadcasts.push(child.0.clone());
                    self.pending.push(action.clone());
                }
                Action::SettleUpstream { htlc, .. } => {
                    let before = self.upstream.insert(*htlc, true);
                    assert!(
                        before != Some(false),
                        "{htlc:?} settled upstream after it was failed"
                    );
                }
                Action::FailUpstream { htlc, .. } => {
                    let before = self.upstream.insert(*htlc, false);
                    assert!(
                        before != Some(true),
                        "{htlc:?} failed upstream after it was settled"
                    );
                }
                Action::Sign(_) | Action::FundFromWallet(_) | Action::ReadRevokedLog { .. } => {
                    self.note(|| match action {
                        Action::Sign(r) => format!("sign {:?} {}", r.request, r.tx.compute_txid()),
                        Action::FundFromWallet(r) => format!("fund {:?}", r.request),
                        _ => format!("{action:?}"),
                    });
                    self.pending.push(action.clone());
                }
                Action::ReleaseInputs { claim } => self.wallet.release(*claim),
                _ => {}
            }
        }
        if self.pending.len() > MAX_PENDING {
            let extra = self.pending.len() - MAX_PENDING;
            self.pending.drain(..extra);
        }
    }

    /// Before a step, as a driver does: the dormant channels the event needs (after a lazy
    /// restart), decoded from the store, in the engine and in its durable twin alike (the
    /// store did not change for them).
    fn hydrate_for(&mut self, event: &Event) {
        for id in self.arb.dormant_needed(event) {
            self.hydrate(id);
        }
    }

    /// Decode dormant channel `id` from the store, in the engine and its durable twin.
    fn hydrate(&mut self, id: ChannelId) {
        let records = crate::chain::ChannelRecords::of_channel(id, &self.store)
            .unwrap_or_else(|e| panic!("channel {id}'s records: {e}"));
        for arb in [&mut self.arb, &mut self.durable] {
            arb.hydrate(&records)
                .unwrap_or_else(|e| panic!("channel {id} does not decode: {e}"));
        }
    }

    /// The last update id the engine has of channel `id` (decoding it if dormant: the harness
    /// reads what a full load would hold).
    fn last_update_id(&mut self, id: ChannelId) -> Option<u64> {
        if self.arb.is_dormant(&id) {
            self.hydrate(id);
        }
        self.arb.channel(&id).map(|c| c.data.last_update_id)
    }

    /// `arb` with every dormant channel decoded from the store: what a full load gives.
    fn whole(&self, arb: &ChainArbitrator) -> ChainArbitrator {
        let mut whole = arb.clone();
        whole
            .hydrate_all(&self.store)
            .unwrap_or_else(|e| panic!("a dormant channel does not decode: {e}"));
        whole
    }

    /// Loading the persisted records gives back the in-memory state.
    fn check_durable(&self) {
        let loaded = ChainArbitrator::from_records(self.config.clone(), &self.store)
            .unwrap_or_else(|e| panic!("the persisted records do not load: {e}"));
        let memory = self.whole(&self.arb);
        if loaded != memory {
            panic!(
                "loading the persisted records does not give back the in-memory state (- memory, + loaded):\n{}",
                crate::trace::line_diff(&format!("{memory:#?}"), &format!("{loaded:#?}"))
            );
        }
    }

    fn policy(&self) -> PolicyConfig {
        PolicyConfig {
            min_relay_fee_sat_per_kvb: self.min_relay_kvb,
            ..PolicyConfig::default()
        }
    }

    /// The output `outpoint` names, and the height it confirmed at on the active chain.
    fn prevout(&self, outpoint: &OutPoint) -> Option<(TxOut, Option<Height>)> {
        if let Some(c) = self
            .chans
            .iter()
            .find(|c| c.sim.funding.outpoint == *outpoint)
        {
            return Some((c.funding.clone(), Some(START - 10)));
        }
        let tx = self.txs.get(&outpoint.txid)?;
        let out = tx.output.get(usize::try_from(outpoint.vout).ok()?)?.clone();
        Some((out, self.confirmed.get(&outpoint.txid).copied()))
    }

    /// A broadcast is consistent, final at the next block and standard; its prevouts.
    fn check_broadcast(&self, tx: &Transaction, package: Option<&Transaction>) -> Vec<TxOut> {
        let txid = tx.compute_txid();
        let mut outs = Vec::new();
        let mut heights = Vec::new();
        for (n, input) in tx.input.iter().enumerate() {
            let op = input.previous_output;
            let found = self.prevout(&op).or_else(|| {
                let parent = package.filter(|p| p.compute_txid() == op.txid)?;
                let out = parent.output.get(usize::try_from(op.vout).ok()?)?.clone();
                Some((out, None))
            });
            let Some((out, height)) = found else {
                panic!("broadcast {txid} input {n} spends {op}, which no transaction created");
            };
            if let Some(by) = self.spent.get(&op) {
                assert!(
                    *by == txid,
                    "broadcast {txid} input {n} spends {op}, already spent by {by} on the chain"
                );
            }
            // A pay-to-anchor output is spent with an empty witness (BOLT 3 `shared_anchor`).
            assert!(
                !input.witness.is_empty()
                    || out.script_pubkey.as_bytes() == scripts::PAY_TO_ANCHOR_SCRIPT,
                "broadcast {txid} input {n} has no witness"
            );
            outs.push(out);
            heights.push(height);
        }
        let next = self.tip() + 1;
        check_final(tx, next, &heights)
            .unwrap_or_else(|e| panic!("broadcast {txid} is not final at {next}: {e}"));
        match check_standard(tx, &outs, &self.policy()) {
            Ok(()) => {}
            Err(PolicyError::FeeBelowMinRelay { .. }) if package.is_some() => {}
            Err(e) => panic!("broadcast {txid} is not standard: {e}"),
        }
        outs
    }

    fn open(&mut self, setup: SimSetup) {
        let channel_type = setup.channel_type;
        let Ok((sim, events)) = SimChannel::open(setup) else {
            return;
        };
        self.note(|| format!("open {channel_type:?}"));
        let (l, r) = (sim.local.basepoints(), sim.remote.basepoints());
        let funding = TxOut {
            value: Amount::from_sat(sim.funding.value_sat),
            script_pubkey: scripts::funding_script(&l.funding_pubkey, &r.funding_pubkey).to_p2wsh(),
        };
        self.chans.push(Chan {
            sim,
            frozen: false,
            funding,
            shutdown: None,
        });
        for e in events {
            self.feed(e);
        }
    }

    /// Feed a channel's sim events (dropped if the channel is frozen); answers nothing.
    fn feed_sim(&mut self, chan: usize, events: Vec<Event>) {
        if self.chans[chan].frozen {
            return;
        }
        for e in events {
            if self.feed(e).is_none() {
                // The sim and the engine disagree (e.g. an update the engine refuses): from now
                // on the peer moves on alone.
                self.chans[chan].frozen = true;
                return;
            }
        }
    }

    fn fund_wallet(&mut self, count: u32, value_sat: u64) {
        let tag = u8::try_from(self.blocks.len() % 251).unwrap_or(0);
        let faucet = self.wallet.faucet(count, value_sat, tag);
        self.mine(vec![faucet], 0);
    }

    /// Connect a block on the tip with `txs` (the caller checked them).
    fn mine(&mut self, txs: Vec<Transaction>, salt: u32) -> Option<Vec<Action>> {
        let (height, prev_hash) = match self.blocks.last() {
            Some(b) => (b.height + 1, b.hash),
            None => (START, BlockHash::all_zeros()),
        };
        let txs: Vec<RawTx> = txs.into_iter().map(RawTx).collect();
        let hash = block_hash(&prev_hash, height, &txs, salt);
        let block = Block {
            height,
            hash,
            prev_hash,
            time: 1_700_000_000 + height * 600,
            txs,
        };
        let confirmed: Vec<Transaction> = block.txs.iter().map(|t| t.0.clone()).collect();
        self.note(|| {
            let txids: Vec<String> = confirmed
                .iter()
                .map(|t| t.compute_txid().to_string())
                .collect();
            format!("block {height}: {txids:?}")
        });
        for tx in &confirmed {
            let txid = tx.compute_txid();
            self.txs.insert(txid, tx.clone());
            self.confirmed.insert(txid, height);
            for i in &tx.input {
                self.spent.insert(i.previous_output, txid);
            }
        }
        self.wallet.on_block(height, &confirmed);
        self.blocks.push(block.clone());
        let actions = self.feed(Event::BlockConnected(block));
        if self
            .config
            .sweep_to
            .as_ref()
            .is_some_and(|s| s.fee_wallet.is_some())
        {
            let confirmed_sat = self.wallet.balance_sat();
            self.feed(Event::WalletBalance { confirmed_sat });
        }
        actions
    }

    fn disconnect(&mut self) {
        let Some(block) = self.blocks.pop() else {
            return;
        };
        for tx in &block.txs {
            let txid = tx.compute_txid();
            self.confirmed.remove(&txid);
            for i in &tx.input {
                if self.spent.get(&i.previous_output) == Some(&txid) {
                    self.spent.remove(&i.previous_output);
                }
            }
        }
        self.feed(Event::BlockDisconnected {
            block: BlockRef {
                height: block.height,
                hash: block.hash,
            },
        });
    }

    /// Whether `tx` can go in the next block after `extra` (spending unspent outputs, final).
    fn valid_next(&self, tx: &Transaction, extra: &[Transaction]) -> bool {
        let txid = tx.compute_txid();
        if self.confirmed.contains_key(&txid) || extra.iter().any(|t| t.compute_txid() == txid) {
            return false;
        }
        let mut heights = Vec::new();
        for i in &tx.input {
            let op = i.previous_output;
            if self.spent.contains_key(&op)
                || extra
                    .iter()
                    .any(|t| t.input.iter().any(|x| x.previous_output == op))
            {
                return false;
            }
            let funding = self.chans.iter().any(|c| c.sim.funding.outpoint == op);
            let height = if funding {
                Some(START - 10)
            } else if let Some(h) = self.confirmed.get(&op.txid) {
                Some(*h)
            } else if let Some(t) = extra.iter().find(|t| t.compute_txid() == op.txid) {
                if t.output.len() <= op.vout as usize {
                    return false;
                }
                None
            } else {
                return false;
            };
            if !funding {
                let exists = self
                    .txs
                    .get(&op.txid)
                    .or_else(|| extra.iter().find(|t| t.compute_txid() == op.txid))
                    .is_some_and(|t| t.output.len() > op.vout as usize);
                if !exists {
                    return false;
                }
            }
            heights.push(height);
        }
        check_final(tx, self.tip() + 1, &heights).is_ok()
    }

    fn candidates(&self) -> Vec<Candidate> {
        let mut out = Vec::new();
        for (chan, c) in self.chans.iter().enumerate() {
            let ln = c.sim.local_commitment_number();
            let rn = c.sim.remote_commitment_number();
            out.push(Candidate::Commitment {
                chan,
                holder: Party::Local,
                n: ln,
            });
            out.push(Candidate::Commitment {
                chan,
                holder: Party::Remote,
                n: rn,
            });
            if let Some(p) = c.sim.remote_pending_number() {
                out.push(Candidate::Commitment {
                    chan,
                    holder: Party::Remote,
                    n: p,
                });
            }
            if rn > 0 {
                out.push(Candidate::Commitment {
                    chan,
                    holder: Party::Remote,
                    n: rn - 1,
                });
            }
            if ln > 0 {
                out.push(Candidate::Commitment {
                    chan,
                    holder: Party::Local,
                    n: ln - 1,
                });
            }
            if c.shutdown.is_some() {
                out.push(Candidate::Cooperative { chan });
            }
        }
        let n = self.broadcasts.len();
        for i in (n.saturating_sub(8)..n).rev() {
            out.push(Candidate::Broadcast(i));
        }
        out
    }

    fn build(&mut self, candidate: Candidate) -> Option<Transaction> {
        match candidate {
            Candidate::Commitment { chan, holder, n } => {
                let tx = self.chans[chan].sim.commitment_tx(holder, n).ok()?;
                self.commitments
                    .insert(tx.compute_txid(), (chan, holder, n));
                Some(tx)
            }
            Candidate::Broadcast(i) => self.broadcasts.get(i).cloned(),
            Candidate::Cooperative { chan } => {
                let c = &self.chans[chan];
                let (l, r) = c.shutdown.clone()?;
                c.sim.cooperative_close_tx(l, r, 1_000).ok()
            }
        }
    }

    /// Mine a block with the chosen candidates that are valid, then `extra` if valid.
    fn mine_chosen(&mut self, mask: u16, extra: Vec<Transaction>) {
        let candidates = self.candidates();
        let mut txs: Vec<Transaction> = Vec::new();
        for (i, c) in candidates.into_iter().enumerate().take(16) {
            if mask >> i & 1 == 0 {
                continue;
            }
            if let Some(tx) = self.build(c) {
                if self.valid_next(&tx, &txs) {
                    txs.push(tx);
                }
            }
        }
        for tx in extra {
            if self.valid_next(&tx, &txs) {
                txs.push(tx);
            }
        }
        self.mine(txs, 0);
    }

    /// A live HTLC of a channel's latest state.
    fn live_htlc(&self, chan: usize, pick: usize) -> Option<HtlcKey> {
        let sim = &self.chans[chan].sim;
        let n = sim
            .remote_pending_number()
            .unwrap_or(sim.remote_commitment_number());
        let state = sim.state(Party::Remote, n).ok()?;
        let len = state.htlcs.len();
        if len == 0 {
            return None;
        }
        state.htlcs.keys().nth(pick % len).copied()
    }

    /// Answer a request: `variant` 0 is the correct answer, others fail or lie.
    fn answer(&mut self, action: &Action, variant: u8) -> Option<Event> {
        match action {
            Action::Sign(req) => {
                // Each input is signed with its own channel's keys (a sweep may batch outputs of
                // several channels).
                let keys_of = |id: &ChannelId| {
                    self.chans
                        .iter()
                        .find(|c| c.sim.channel_id == *id)
                        .map(|c| &c.sim.local)
                };
                let has_channel_input = req
                    .inputs
                    .iter()
                    .any(|i| matches!(i.key, SigningKey::Channel { .. }));
                let outcome = match (variant % 4, has_channel_input) {
                    (1, _) => SignOutcome::Failed {
                        reason: "signer unavailable".to_string(),
                    },
                    (2, _) => SignOutcome::Signed {
                        signatures: Vec::new(),
                        witnesses: Vec::new(),
                    },
                    (_, true) => match crate::sim::sign_per_channel(req, keys_of) {
                        SignOutcome::Signed { signatures, .. } => SignOutcome::Signed {
                            signatures,
                            witnesses: self.wallet.sign(req),
                        },
                        failed => failed,
                    },
                    (_, false) => SignOutcome::Signed {
                        signatures: Vec::new(),
                        witnesses: self.wallet.sign(req),
                    },
                };
                let mut request = req.request;
                if variant % 4 == 3 {
                    request.attempt = request.attempt.wrapping_add(1);
                }
                Some(Event::Signed { request, outcome })
            }
            Action::FundFromWallet(req) => {
                let outcome = if variant % 3 == 1 {
                    FundingOutcome::Failed {
                        reason: "insufficient funds".to_string(),
                    }
                } else {
                    self.wallet.fund(req)
                };
                Some(Event::WalletFunded {
                    request: req.request,
                    outcome,
                })
            }
            Action::Broadcast { request, tx } => Some(Event::BroadcastResult {
                request: *request,
                txid: tx.compute_txid(),
                outcome: broadcast_outcome(variant),
            }),
            Action::BroadcastPackage { request, child, .. } => Some(Event::BroadcastResult {
                request: *request,
                txid: child.compute_txid(),
                outcome: broadcast_outcome(variant),
            }),
            Action::ReadRevokedLog {
                channel,
                commitment_number,
            } => {
                let record = match variant % 3 {
                    0 => self.log.get(&(*channel, *commitment_number)).cloned(),
                    1 => None,
                    _ => self
                        .log
                        .range((*channel, 0)..)
                        .next()
                        .map(|(_, r)| r.clone()),
                };
                Some(Event::RevokedLogRead {
                    channel: *channel,
                    commitment_number: *commitment_number,
                    record,
                })
            }
            _ => None,
        }
    }

    /// Answer every pending request correctly, and the requests those answers produce.
    fn answer_all(&mut self) {
        for _ in 0..4 * MAX_PENDING {
            if self.pending.is_empty() {
                break;
            }
            let action = self.pending.remove(0);
            if let Some(event) = self.answer(&action, 0) {
                self.feed(event);
            }
        }
    }
}

/// The answer to a broadcast: accepted, refused for a reason Bitcoin Core gives, or — for the
/// top sixteen variants, so every earlier corpus input keeps its meaning below them — never
/// delivered (the node did not answer: no verdict, the attempt stays as it is).
fn broadcast_outcome(variant: u8) -> BroadcastOutcome {
    if variant >= 0xf0 {
        return BroadcastOutcome::NotDelivered {
            reason: "the node did not answer".to_string(),
        };
    }
    match variant % 8 {
        0..=2 => BroadcastOutcome::Accepted,
        v => BroadcastOutcome::Rejected {
            reason: REJECTIONS[usize::from(v) * 3 % REJECTIONS.len()].to_string(),
        },
    }
}

/// Events and actions survive a JSON round trip (traces and the flight recorder rely on it).
fn roundtrip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: &T,
) {
    let json = serde_json::to_string(value)
        .unwrap_or_else(|e| panic!("{value:?} does not serialise: {e}"));
    let back: T =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not deserialise: {e}"));
    assert_eq!(&back, value, "a JSON round trip changed the value");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_trace_takes_any_bytes() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in [0usize, 1, 3, 10, 40, 120, 300] {
            for _ in 0..3 {
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                event_trace(&data);
            }
        }
    }

    /// Issue 19: a fuzz input chooses zero-fee commitment channels (anchors bit set, seed's top
    /// bit set), and its force close goes out only as a package: the commitment with a
    /// version-3 child on its pay-to-anchor output, checked by the policy (TRUC, ephemeral
    /// dust, package fee) on the way.
    #[test]
    fn a_fuzz_input_chooses_a_zero_fee_commitment_channel_and_closes_it_as_a_package() {
        let data = [
            0x00, 0x00, 0x82,
            0x85, // config, outgoing delta, shape (anchors, funded wallet), seed
            1, 0, 1, 5, 10, // add+commit outgoing 2,000,000 msat expiry +10
            25, 0, 0, 1, // force close, answer all
            21, 0, // answer all
            21, 0, // answer all
            8, 0, 0xff, 0xff, 1, // mine every candidate, answer
            11, 0, 5, // 6 empty blocks
        ];
        let mut log = Vec::new();
        event_trace_logged(&data, false, &mut log);
        assert!(
            log.iter().any(|l| l == "open ZeroFeeCommitments"),
            "{log:#?}"
        );
        assert!(
            log.iter().any(|l| l.starts_with("broadcast package")),
            "{log:#?}"
        );
        let zero = |seed: u8| channel_type(true, seed);
        assert_eq!(zero(0x85), ChannelType::ZeroFeeCommitments);
        assert_eq!(zero(0x05), ChannelType::AnchorsZeroFeeHtlc);
        assert_eq!(channel_type(false, 0x85), ChannelType::StaticRemoteKey);
    }

    /// Issue 19, found by replaying the corpus once zero-fee channels were generated: a
    /// commitment whose HTLC budget (half of a 546-sat HTLC: 273 sat) is below the package's
    /// minimum relay fee (388 sat for 388 vB) was broadcast as a package paying 272 sat, which no
    /// mempool relays. The child now pays at least the package's minimum relay fee (the harness
    /// checks every package's fee against the policy, and panics otherwise).
    #[test]
    fn a_zero_fee_package_pays_the_minimum_relay_fee_when_the_htlc_budget_is_smaller() {
        let data = hex::decode(concat!(
            "ffffffff010004091100087f0000ff010b0005120000010b0002010004091100",
            "080000ff010b0005120000010b0005080000ff010b00051200fe0001080000ff",
            "010b0005080000ff01",
        ))
        .unwrap();
        let mut log = Vec::new();
        event_trace_logged(&data, false, &mut log);
        let zero_fee = log
            .iter()
            .filter(|l| *l == "open ZeroFeeCommitments")
            .count();
        assert_eq!(zero_fee, 2, "{log:#?}");
        assert!(
            log.iter().any(|l| l.starts_with("broadcast package")),
            "{log:#?}"
        );
    }

    #[test]
    fn a_force_close_trace_broadcasts_and_resolves() {
        // Sweeper on, one static-remote-key channel; add an HTLC each way and commit, force
        // close, answer, mine our broadcasts a few times, restart, mine empty blocks.
        let data = [
            0x00, 0x00, 0x00, 0x05, // config, outgoing delta, shape, seed
            1, 0, 1, 5, 10, // add+commit outgoing 2,000,000 msat expiry +10
            1, 0, 0, 6, 20, // add+commit incoming 5,000,000 msat expiry +20
            25, 0, 0, 1, // force close, answer all
            8, 0, 0xff, 0xff, 1, // mine every candidate, answer
            11, 0, 5, // 6 empty blocks
            24, 0, // restart
            21, 0, // answer all
            8, 0, 0x00, 0xff, 1, // mine our broadcasts
            11, 0, 5, 11, 0, 5,
        ];
        let mut log = Vec::new();
        event_trace_logged(&data, false, &mut log);
        assert!(log.iter().any(|l| l.starts_with("force close")), "{log:#?}");
        assert!(log.iter().any(|l| l.starts_with("broadcast")), "{log:#?}");
    }

    /// Issue 16: the trace targets answer a broadcast `NotDelivered` (a node that never gave a
    /// verdict) for variants from 0xf0: our commitment's broadcast gets no verdict, nothing is
    /// reported as refused, and the next block broadcasts the same transaction again.
    #[test]
    fn a_broadcast_never_delivered_is_sent_again_next_block() {
        let data = [
            0x00, 0x00, 0x00, 0x05, // config, outgoing delta, shape, seed
            1, 0, 1, 5, 10, // add+commit outgoing 2,000,000 msat expiry +10
            25, 0, 0, 0, // force close, no answer
            22, 0, 0, 0xf0, 1, // answer the sign request (0xf0 % 4 = 0: signed)
            22, 0, 0, 0xf0, 1, // answer the broadcast: not delivered
            11, 0, 0, // 1 empty block
        ];
        let mut log = Vec::new();
        event_trace_logged(&data, false, &mut log);
        let at = |p: &dyn Fn(&String) -> bool| log.iter().position(p);
        let not_delivered = at(&|l| l.starts_with("answer 240") && l.contains("NotDelivered"));
        let next_block = at(&|l| l == "block 501: []");
        let (Some(not_delivered), Some(next_block)) = (not_delivered, next_block) else {
            panic!("{log:#?}");
        };
        let first = log[..not_delivered]
            .iter()
            .rfind(|l| l.starts_with("broadcast"))
            .expect("the commitment was broadcast");
        assert!(not_delivered < next_block, "{log:#?}");
        assert_eq!(log.get(next_block + 1), Some(first), "{log:#?}");
    }

    /// A fixed engine bug inside the driver contract
    /// (`fuzz/artifacts-found/event_trace-resumed-rebroadcast-not-final`): a claim bumped at
    /// height 505 (nLockTime 505), a reorg back to 504, a restart: `Resumed` re-emitted the
    /// attempt, which cannot be mined before block 506. The sweeper now offers nothing that is
    /// not final in the block after the tip it resumed at.
    #[test]
    fn resumed_does_not_rebroadcast_a_claim_that_is_not_final() {
        let data = [
            0x04, 0x01, 0x61, 0x05, 0x01, 0x00, 0x01, 0x01, 0x0a, 0x08, 0x70, 0x61, 0x79, 0x6d,
            0x65, 0x6e, 0x74, 0x5f, 0x68, 0x61, 0x73, 0x68, 0x00, 0x02, 0x00, 0x01, 0x00, 0x05,
            0x01, 0x0c, 0x00, 0x01, 0x01, 0x18, 0xff, 0x01,
        ];
        event_trace(&data);
    }

    /// Issue 24, found by ten minutes of fuzzing
    /// (`fuzz/corpus/event_trace/reload-mismatch-wakeup-tip`): our commitment confirms with an
    /// incoming HTLC, which is then failed and committed (no live commitment carries it any
    /// more), and its preimage arrives by invoice. The channel was found for a preimage only
    /// through its live commitments' HTLCs, so it was not reindexed: in memory it kept its old
    /// wake-up (509, the close's reorg-safety height) where a reload computes 504 (the close's
    /// height: claim with the preimage at once). The sweeper's tip, a copy of the chain's kept
    /// apart from the records, also differed (506 in memory, none loaded).
    #[test]
    fn a_preimage_of_an_htlc_only_on_the_close_leaves_memory_as_a_reload() {
        let data = [
            0x00, 0x00, 0x60, 0x06, 0x01, 0x00, 0x01, 0x05, 0x28, 0x4e, 0x1d, 0xd4, 0x00, 0x00,
            0x00, 0xff, 0xff, 0xff, 0xff, 0x34, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7e, 0x18, 0x82,
            0x19, 0xc7, 0xc7, 0x3d, 0x42, 0x42, 0x98, 0xbc, 0x08, 0x03, 0x48, 0x35, 0x84, 0xf2,
            0xd0, 0xf0, 0x5a, 0x43, 0x1e, 0xf0, 0x45, 0x0d, 0x40, 0x0d, 0x06, 0x6c, 0x9d, 0x88,
            0x37, 0x03, 0x00, 0x2a, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0xff, 0x07,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xa3, 0x00, 0x00, 0x15, 0xff, 0xff, 0x35, 0x05,
            0x08, 0x00, 0x40,
        ];
        event_trace(&data);
        event_trace_out_of_order(&data);
    }

    /// Found while fuzzing for issue 24 (`fuzz/corpus/event_trace/refused-block-extended-the-tip`),
    /// a fault of this driver, not of the engine: the "refused" operation made a block at the
    /// next height on the tip's hash, which extends the tip. The engine accepted it, so its
    /// chain and the driver's parted: every later block was refused, the peer's revoked
    /// commitment confirmed unseen, and a force close broadcast our commitment spending the
    /// spent funding output. The operation now makes only blocks that cannot connect, and an
    /// accepted "refused" event fails the run.
    #[test]
    fn a_block_meant_to_be_refused_never_extends_the_tip() {
        let data = [
            0x6f, 0x23, 0x72, 0x65, 0x6d, 0x6f, 0x74, 0x65, 0x5f, 0x73, 0x65, 0x63, 0x72, 0x75,
            0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x65, 0x5f, 0x04, 0xff, 0xff, 0xff,
            0x1e, 0x01, 0xed, 0x05, 0x72, 0x65, 0x6d, 0x6f, 0x23, 0x72, 0x65, 0x6d, 0x6f, 0x74,
            0x65, 0x5f, 0x73, 0x65, 0x63, 0x72, 0x74, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x65, 0x5f, 0x73, 0x65, 0x63, 0x72, 0x65, 0x74, 0x73, 0x01, 0x05, 0x74, 0x5f,
            0x68, 0x73, 0x61, 0x68, 0x91, 0x00, 0x42, 0x00, 0x28, 0x00, 0x05, 0x01, 0x0a, 0x0c,
            0x00, 0x01, 0xd0, 0x18, 0xff, 0x01,
        ];
        let mut log = Vec::new();
        event_trace_logged(&data, false, &mut log);
        assert!(
            log.iter().any(|l| l.starts_with("refused BlockConnected")),
            "{log:#?}"
        );
    }

    /// Found by fuzzing (`fuzz/artifacts-found/event_trace-late-wallet-funding-double-spend`):
    /// a wallet-funding answer arriving after an earlier attempt of the claim confirmed was
    /// assembled, signed and broadcast, double-spending the confirmed transaction. A claim whose
    /// own input is spent (or whose commitment closed, for a CPFP) now drops late answers.
    #[test]
    fn late_wallet_funding_does_not_double_spend() {
        let data = [
            0x00, 0x00, 0xe2, 0x04, 0x13, 0x00, 0x02, 0x03, 0x04, 0x06, 0x06, 0x01, 0x01, 0x01,
            0x01, 0x00, 0x01, 0x06, 0x0c, 0x01, 0x00, 0x00, 0x06, 0x19, 0x10, 0x00, 0x00, 0x00,
            0xff, 0xff, 0x01, 0x15, 0x00, 0x0b, 0x00, 0x05, 0x08, 0x00, 0x00, 0xff, 0x01, 0x00,
            0x00, 0xff,
        ];
        event_trace(&data);
        event_trace_out_of_order(&data);
    }

    /// Found by fuzzing (`fuzz/artifacts-found/event_trace-splice-reorders-funding`,
    /// `event_trace_async-splice-reorders-funding`, and the input kept open last session,
    /// `event_trace_async-splice-commitment-spends-unknown-funding`): a splice update listing a
    /// new funding output before the one our latest commitment is signed on. The commitment's
    /// funding output was kept as a position in the set, so a later force close signed and
    /// broadcast our commitment on the new output, which no transaction created. A splice now
    /// follows the signed output to its new position (and is refused if it drops it).
    #[test]
    fn a_splice_reordering_the_funding_set_keeps_our_commitment_on_its_output() {
        let sync = [
            0x64, 0x76, 0x3a, 0x74, 0xee, 0x3c, 0x2d, 0x4a, 0xc5, 0xd1, 0xd0, 0x62, 0xa7, 0x0f,
            0x13, 0x78, 0x57, 0x9a, 0x49, 0x67, 0xeb, 0x05, 0xea, 0x54, 0xcb, 0xed, 0x9e, 0xb4,
            0xf8, 0xd3, 0xc7, 0xb3, 0x0b, 0x0b, 0xb4, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
            0x0b, 0x0b, 0x0f, 0x55, 0x0b, 0x00, 0xff, 0x01, 0x0b, 0x00, 0x05, 0x08, 0x00, 0x00,
            0xff, 0x01,
        ];
        let mut log = Vec::new();
        event_trace_logged(&sync, false, &mut log);
        assert!(log.iter().any(|l| l.contains("FundingChanged")), "{log:#?}");
        let out_of_order = [
            0x00, 0x00, 0x00, 0x07, 0x1d, 0x00, 0x3e, 0x00, 0x00, 0x6d, 0x55, 0xd7, 0xea, 0x41,
            0x35, 0x2d, 0xac, 0x00, 0x00, 0x00, 0x01, 0x10, 0xff, 0x0f, 0x00, 0x00, 0x00, 0xff,
            0xff, 0xff, 0xff, 0xa2, 0x73, 0x25, 0xc4, 0x8a, 0xe8, 0x3d, 0x7d, 0x44, 0x14, 0x44,
            0x67, 0xe3, 0xcf, 0xfc, 0x95, 0x80, 0xcd, 0xcd, 0xcd, 0xcd, 0x05,
        ];
        event_trace_out_of_order(&out_of_order);
        let kept_open = [
            0x00, 0x00, 0x00, 0x07, 0x1d, 0x00, 0x3e, 0x00, 0x00, 0x6d, 0x55, 0xd7, 0xea, 0xf8,
            0x8b, 0x70, 0x20, 0xbd, 0x24, 0x0d, 0x01, 0xa2, 0x73, 0x25, 0xc4, 0x8a, 0xe8, 0xe3,
            0xcf, 0xd3, 0xe0, 0x41, 0x35, 0x2d, 0xac, 0x00, 0x00, 0x00, 0x01, 0x10, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xa2, 0x73, 0x25, 0xc4, 0x8a, 0xe8, 0x3d, 0x7d, 0x44, 0x14, 0x44,
            0x67, 0xe3, 0xcf, 0xfc, 0x95, 0x80, 0xcd, 0xcd, 0xcd, 0xcd, 0x05,
        ];
        event_trace_out_of_order(&kept_open);
    }

    /// Found by the hour of fuzzing `event_trace_async` (issue 24;
    /// `fuzz/artifacts-found/event_trace_async-late-htlc-success-signature`): our legacy
    /// commitment confirms, a preimage arrives and the HTLC-success transaction is sent to the
    /// signer; before the signature comes back the HTLC output is spent by another transaction
    /// in the next block. The late signature was still attached and the transaction broadcast,
    /// spending a spent output. A late signature for a resolver whose output is spent is now
    /// dropped.
    #[test]
    fn a_late_htlc_success_signature_after_the_output_is_spent_is_dropped() {
        let data = [
            0x00, 0x00, 0x00, 0x07, 0x2d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x6d, 0x26, 0x55, 0xd7,
            0xea, 0xf8, 0x8b, 0x70, 0x20, 0xbd, 0x24, 0x0d, 0x01, 0x26, 0x55, 0xd7, 0xea, 0x00,
            0xf8, 0x8b, 0x70, 0x20, 0xbd, 0x24, 0x0d, 0x01, 0xa2, 0x73, 0x25, 0xc4, 0x8a, 0xe8,
            0x3d, 0x7d, 0xb0, 0xb0, 0xb0, 0xb0, 0xb0, 0xb0, 0xb0, 0xb0, 0xb0, 0xb0, 0xb0, 0xb0,
            0xb0, 0x44, 0xa2, 0x73, 0x25, 0xc4, 0x8a, 0xe8, 0x3d, 0x7d, 0x44, 0x14, 0x44, 0x67,
            0xe3, 0xcf, 0x3f, 0xd3, 0xe0, 0x41, 0x35, 0x59, 0x0d, 0x7d, 0x63, 0xad, 0xeb, 0x4a,
            0x58, 0xc9, 0xff, 0xff, 0xff, 0xa0, 0x71, 0x25, 0xc4, 0x8a, 0xe8, 0x3d, 0x7d, 0x44,
            0x14, 0x44, 0x67, 0xe3, 0xcf, 0xfc, 0x80, 0xcd, 0xcd, 0xcd, 0xcd, 0x05,
        ];
        let mut log = Vec::new();
        event_trace_logged(&data, true, &mut log);
        assert!(log.iter().any(|l| l.starts_with("mine spend")), "{log:#?}");
    }
}
