//! Scenario suite, trace replay and model checks for contractcourt.
//!
//! [`Harness`] drives a [`ChainArbitrator`] with `sim` channels: it plays the node (answering
//! sign requests with the simulated keys, collecting broadcasts), builds blocks, and after
//! **every** step applies the step's `Persist` batch to an in-memory store and checks that loading
//! the store gives back exactly the in-memory state. Every event fed is recorded into a trace,
//! which can be compared with a golden file and replayed.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use bitcoin::hashes::{sha256d, Hash, HashEngine};
use bitcoin::{BlockHash, OutPoint, Transaction, Txid};
use contractcourt_core::action::{Action, Record, RecordKey, Report};
use contractcourt_core::chain::{ChainArbitrator, Config, StepError};
use contractcourt_core::event::{Block, Event};
use contractcourt_core::event::{FundingOutcome, SignOutcome};
use contractcourt_core::sim::{sign_per_channel, SimChannel, SimSetup, SimWallet};
use contractcourt_core::trace::{replay, Expected, Trace, TraceSetup, TraceStep};
use contractcourt_core::types::{BlockRef, ChannelId, RawTx};

pub use contractcourt_core as core;

pub mod checks;

/// The height of the first block a harness connects.
pub const START_HEIGHT: u32 = 500;

/// The store the harness persists into: keyed records and the append-only logs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemStore {
    /// Keyed records.
    pub records: BTreeMap<RecordKey, Record>,
    /// Append-only log entries by (channel, sequence).
    pub log: BTreeMap<(ChannelId, u64), Record>,
}

/// Issue 18: at every step of a trace, an engine reloaded lazily from what was persisted so far
/// (quiet open channels dormant, decoded as the next event needs them, as a driver does) gives
/// exactly the trace's answer to the next event — the answer of the engine that never stopped.
fn check_lazy_reload_answers_alike(name: &str, config: &Config, steps: &[TraceStep]) {
    let mut store = MemStore::default();
    let mut arb = ChainArbitrator::new(config.clone());
    for (i, step) in steps.iter().enumerate() {
        if i > 0 {
            let mut lazy = store.load_lazily(config.clone());
            let answer = match store.step(&mut lazy, &step.event) {
                Ok(actions) => Expected::Actions { actions },
                Err(e) => Expected::Refused {
                    error: e.to_string(),
                },
            };
            assert!(
                answer == step.expect,
                "golden trace {name}: reloaded lazily before step {i}, the engine answers \
                 otherwise:\n{}",
                contractcourt_core::trace::line_diff(
                    &serde_json::to_string_pretty(&step.expect).unwrap_or_default(),
                    &serde_json::to_string_pretty(&answer).unwrap_or_default()
                )
            );
        }
        if let Ok(actions) = arb.step(&step.event) {
            store.apply(&actions);
        }
    }
}

impl MemStore {
    /// Apply the `Persist` batch among `actions`, if any.
    pub fn apply(&mut self, actions: &[Action]) {
        for action in actions {
            if let Action::Persist(batch) = action {
                batch.apply_to(&mut self.records, &mut self.log);
            }
        }
    }

    /// Load an engine lazily from these records, as a driver does at start: quiet open
    /// channels stay dormant.
    pub fn load_lazily(&self, config: Config) -> ChainArbitrator {
        ChainArbitrator::from_records_lazily(config, &self.records)
            .unwrap_or_else(|e| panic!("lazy load: {e}"))
    }

    /// Give `arb` the dormant channels `event` needs, from these records, as a driver does
    /// before each step.
    pub fn hydrate_for(&self, arb: &mut ChainArbitrator, event: &Event) {
        for id in arb.dormant_needed(event) {
            let records = contractcourt_core::chain::ChannelRecords::of_channel(id, &self.records)
                .unwrap_or_else(|e| panic!("channel {id}: {e}"));
            arb.hydrate(&records)
                .unwrap_or_else(|e| panic!("hydrating channel {id}: {e}"));
        }
    }

    /// Step `arb` as a driver does: the dormant channels the event needs first.
    pub fn step(&self, arb: &mut ChainArbitrator, event: &Event) -> Result<Vec<Action>, StepError> {
        self.hydrate_for(arb, event);
        arb.step(event)
    }

    /// `arb` with every dormant channel decoded from these records: what a full load gives.
    pub fn hydrated(&self, arb: &ChainArbitrator) -> ChainArbitrator {
        let mut whole = arb.clone();
        whole
            .hydrate_all(&self.records)
            .unwrap_or_else(|e| panic!("hydrating every channel: {e}"));
        whole
    }
}

/// A scenario driver.
#[derive(Clone)]
pub struct Harness {
    /// The engine under test.
    pub arb: ChainArbitrator,
    /// Its configuration.
    pub config: Config,
    /// What it persisted.
    pub store: MemStore,
    /// Every event fed and what it produced.
    pub trace: Trace,
    /// The active chain, oldest first.
    pub blocks: Vec<Block>,
    /// The simulated channels, by id.
    pub sims: BTreeMap<ChannelId, SimChannel>,
    /// Every transaction the engine asked to broadcast, in order.
    pub broadcasts: Vec<Transaction>,
    /// Every action the engine emitted, in order.
    pub transcript: Vec<Action>,
    /// The node's on-chain wallet: funds zero-fee HTLC transactions and CPFP children.
    pub wallet: SimWallet,
    /// How [`Harness::answer`] behaves (all accepted, unlimited, by default).
    pub answers: AnswerPolicy,
}

/// How the harness answers the engine's requests, to play a mempool that refuses or a node that
/// crashes half way through a step's actions.
#[derive(Clone, Debug, Default)]
pub struct AnswerPolicy {
    /// While set, every broadcast is answered `Rejected` with this reason (the transaction is
    /// still recorded in [`Harness::broadcasts`], so its validity is checked).
    pub reject_broadcasts: Option<String>,
    /// Broadcasts spending one of these outputs are answered `Rejected` with its reason, as a
    /// mempool answers when it holds a conflicting transaction (a pin) or one input fails its
    /// checks; the others are accepted. Recorded in [`Harness::broadcasts`] all the same.
    pub reject_spending: BTreeMap<OutPoint, String>,
    /// While set, how many more requests are answered; at zero the rest of the step's actions
    /// are left unexecuted, as a crash leaves them ([`Harness::crashed`] tells).
    pub budget: Option<usize>,
    /// While set, every signing request is answered `SignOutcome::Failed` with this reason (a
    /// signer that is down or refuses).
    pub refuse_signing: Option<String>,
    /// While set, every funding request is answered `FundingOutcome::Failed` with this reason
    /// (a wallet that is locked or cannot fund).
    pub refuse_funding: Option<String>,
    /// While set, signing and funding requests are not answered but kept in [`Self::held`]:
    /// a signer or wallet that answers late, perhaps after the request was superseded.
    pub hold: bool,
    /// The requests held back while [`Self::hold`] was set, answered by
    /// [`Harness::release_held`].
    pub held: Vec<Action>,
}

fn block_hash(prev: &BlockHash, height: u32, txs: &[RawTx], salt: u32) -> BlockHash {
    let mut engine = sha256d::Hash::engine();
    engine.input(prev.as_byte_array());
    engine.input(&height.to_le_bytes());
    engine.input(&salt.to_le_bytes());
    for tx in txs {
        engine.input(tx.compute_txid().as_byte_array());
    }
    BlockHash::from_raw_hash(sha256d::Hash::from_engine(engine))
}

impl Harness {
    /// A node at [`START_HEIGHT`] with no channels.
    pub fn new(config: Config) -> Harness {
        let mut h = Harness {
            arb: ChainArbitrator::new(config.clone()),
            trace: Trace::new(
                "",
                TraceSetup::State {
                    state: serde_json::to_value(&config).unwrap_or_default(),
                },
            ),
            config,
            store: MemStore::default(),
            blocks: Vec::new(),
            sims: BTreeMap::new(),
            broadcasts: Vec::new(),
            transcript: Vec::new(),
            wallet: SimWallet::new(1),
            answers: AnswerPolicy::default(),
        };
        h.mine(Vec::new());
        h
    }

    /// The tip height.
    pub fn height(&self) -> u32 {
        self.blocks.last().map_or(START_HEIGHT - 1, |b| b.height)
    }

    /// Feed an event that must be accepted; returns its actions.
    pub fn feed(&mut self, event: Event) -> Vec<Action> {
        match self.try_feed(event) {
            Ok(actions) => actions,
            Err(e) => panic!("event refused: {e}"),
        }
    }

    /// Feed an event; a refusal is returned (and recorded), and must change nothing.
    pub fn try_feed(&mut self, event: Event) -> Result<Vec<Action>, StepError> {
        self.store.hydrate_for(&mut self.arb, &event);
        let before = self.arb.clone();
        let result = self.arb.step(&event);
        let expect = match &result {
            Ok(actions) => Expected::Actions {
                actions: actions.clone(),
            },
            Err(e) => Expected::Refused {
                error: e.to_string(),
            },
        };
        self.trace.steps.push(TraceStep { event, expect });
        match &result {
            Ok(actions) => {
                self.store.apply(actions);
                self.transcript.extend(actions.iter().cloned());
                self.check_durable();
            }
            Err(_) => assert_eq!(self.arb, before, "a refused event changed the state"),
        }
        result
    }

    /// Loading the store gives back exactly the in-memory state.
    pub fn check_durable(&self) {
        let loaded = ChainArbitrator::from_records(self.config.clone(), &self.store.records)
            .unwrap_or_else(|e| panic!("store does not load: {e}"));
        let memory = if self.arb.dormant_count() > 0 {
            self.store.hydrated(&self.arb)
        } else {
            self.arb.clone()
        };
        if loaded != memory {
            let diff = contractcourt_core::trace::line_diff(
                &format!("{memory:#?}"),
                &format!("{loaded:#?}"),
            );
            panic!("loading the store does not give back the in-memory state (- memory, + loaded):\n{diff}");
        }
    }

    /// Open a `sim` channel and feed its opening events.
    pub fn open(&mut self, setup: SimSetup) -> ChannelId {
        let (sim, events) = SimChannel::open(setup).unwrap_or_else(|e| panic!("sim: {e}"));
        let id = sim.channel_id;
        self.sims.insert(id, sim);
        for e in events {
            self.feed(e);
        }
        id
    }

    /// Run `f` on a sim channel and feed the events it returns.
    pub fn with_sim<F>(&mut self, id: ChannelId, f: F) -> Vec<Action>
    where
        F: FnOnce(&mut SimChannel) -> Vec<Event>,
    {
        let sim = self
            .sims
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no sim channel {id}"));
        let events = f(sim);
        let mut actions = Vec::new();
        for e in events {
            actions.extend(self.feed(e));
        }
        actions
    }

    /// The sim channel.
    pub fn sim(&self, id: ChannelId) -> &SimChannel {
        &self.sims[&id]
    }

    /// Tell the engine `tx` appeared in the mempool (fee unknown: 0), as a node's mempool sync
    /// would.
    pub fn see_in_mempool(&mut self, tx: &Transaction) -> Vec<Action> {
        self.feed(Event::MempoolTx {
            tx: RawTx(tx.clone()),
            fee_sat: 0,
            vsize: tx.vsize() as u64,
        })
    }

    /// `tx` seen in the mempool (`via_mempool`) or mined in the next block.
    pub fn see_or_mine(&mut self, tx: &Transaction, via_mempool: bool) -> Vec<Action> {
        if via_mempool {
            self.see_in_mempool(tx)
        } else {
            self.mine(vec![tx.clone()])
        }
    }

    /// Connect a block with `txs` on the tip, then answer the engine like a node would.
    pub fn mine(&mut self, txs: Vec<Transaction>) -> Vec<Action> {
        self.mine_salted(txs, 0)
    }

    /// Like [`Harness::mine`], with a salt to make a different block at the same height (forks).
    pub fn mine_salted(&mut self, txs: Vec<Transaction>, salt: u32) -> Vec<Action> {
        let (height, prev_hash) = match self.blocks.last() {
            Some(b) => (b.height + 1, b.hash),
            None => (START_HEIGHT, BlockHash::all_zeros()),
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
        self.blocks.push(block.clone());
        let confirmed: Vec<Transaction> = block.txs.iter().map(|t| t.0.clone()).collect();
        self.wallet.on_block(height, &confirmed);
        let actions = self.feed(Event::BlockConnected(block));
        let mut all = actions.clone();
        all.extend(self.answer(&actions));
        all
    }

    /// Give the wallet `count` confirmed coins of `value_sat` (one block).
    pub fn fund_wallet(&mut self, count: u32, value_sat: u64) -> Vec<Action> {
        let tag = u8::try_from(self.blocks.len() % 251).unwrap_or(0);
        let faucet = self.wallet.faucet(count, value_sat, tag);
        self.mine(vec![faucet])
    }

    /// Connect `n` empty blocks; every action emitted.
    pub fn mine_empty(&mut self, n: u32) -> Vec<Action> {
        (0..n).flat_map(|_| self.mine(Vec::new())).collect()
    }

    /// Connect `n` empty blocks of a fork (salted so they differ from blocks at the same heights).
    pub fn mine_empty_salted(&mut self, n: u32, salt: u32) -> Vec<Action> {
        (0..n)
            .flat_map(|_| self.mine_salted(Vec::new(), salt))
            .collect()
    }

    /// Disconnect the tip.
    pub fn disconnect_tip(&mut self) -> Vec<Action> {
        let block = self
            .blocks
            .pop()
            .unwrap_or_else(|| panic!("no block to disconnect"));
        let chain: Vec<(u32, Vec<Transaction>)> = self
            .blocks
            .iter()
            .map(|b| (b.height, b.txs.iter().map(|t| t.0.clone()).collect()))
            .collect();
        self.wallet
            .rescan(chain.iter().map(|(h, txs)| (*h, txs.as_slice())));
        self.feed(Event::BlockDisconnected {
            block: BlockRef {
                height: block.height,
                hash: block.hash,
            },
        })
    }

    /// Play the node: sign requests with our simulated keys, accept broadcasts into a list.
    /// Feeds each result back in action order, one at a time; returns what those produced.
    pub fn answer(&mut self, actions: &[Action]) -> Vec<Action> {
        let mut produced = Vec::new();
        for action in actions {
            if self.crashed() {
                break;
            }
            if let Some(left) = self.answers.budget.as_mut() {
                *left -= 1;
            }
            let more = match action {
                Action::Sign(_) | Action::FundFromWallet(_) if self.answers.hold => {
                    self.answers.held.push(action.clone());
                    continue;
                }
                Action::Sign(req) if self.answers.refuse_signing.is_some() => {
                    let reason = self.answers.refuse_signing.clone().unwrap_or_default();
                    self.feed(Event::Signed {
                        request: req.request,
                        outcome: SignOutcome::Failed { reason },
                    })
                }
                Action::FundFromWallet(req) if self.answers.refuse_funding.is_some() => {
                    let reason = self.answers.refuse_funding.clone().unwrap_or_default();
                    self.feed(Event::WalletFunded {
                        request: req.request,
                        outcome: FundingOutcome::Failed { reason },
                    })
                }
                Action::Sign(req) => {
                    // Each input is signed with the keys of its own channel: a sweep may batch
                    // outputs of several channels. A request naming a channel the node does not
                    // know is left unanswered; one naming none (a CPFP child through a
                    // pay-to-anchor output: wallet inputs only) is the wallet's alone.
                    let channels: Vec<ChannelId> = req
                        .inputs
                        .iter()
                        .filter_map(|i| match &i.key {
                            contractcourt_core::action::SigningKey::Channel { channel, .. } => {
                                Some(*channel)
                            }
                            _ => None,
                        })
                        .collect();
                    if channels.iter().any(|c| !self.sims.contains_key(c)) {
                        continue;
                    }
                    let signed = sign_per_channel(req, |c| self.sims.get(c).map(|s| &s.local));
                    let outcome = match signed {
                        SignOutcome::Signed { signatures, .. } => SignOutcome::Signed {
                            signatures,
                            witnesses: self.wallet.sign(req),
                        },
                        failed => failed,
                    };
                    self.feed(Event::Signed {
                        request: req.request,
                        outcome,
                    })
                }
                Action::FundFromWallet(req) => {
                    let outcome = self.wallet.fund(req);
                    self.feed(Event::WalletFunded {
                        request: req.request,
                        outcome,
                    })
                }
                Action::ReleaseInputs { claim } => {
                    self.wallet.release(*claim);
                    continue;
                }
                Action::ReadRevokedLog {
                    channel,
                    commitment_number,
                } => {
                    let record = self.store.log.get(&(*channel, *commitment_number)).cloned();
                    self.feed(Event::RevokedLogRead {
                        channel: *channel,
                        commitment_number: *commitment_number,
                        record,
                    })
                }
                Action::BroadcastPackage {
                    request,
                    parent,
                    child,
                } => {
                    self.broadcasts.push(parent.0.clone());
                    self.broadcasts.push(child.0.clone());
                    let txid = child.compute_txid();
                    let outcome = self.broadcast_outcome(&[&parent.0, &child.0]);
                    self.feed(Event::BroadcastResult {
                        request: *request,
                        txid,
                        outcome,
                    })
                }
                Action::Broadcast { request, tx } => {
                    self.broadcasts.push(tx.0.clone());
                    let txid = tx.compute_txid();
                    let outcome = self.broadcast_outcome(&[&tx.0]);
                    self.feed(Event::BroadcastResult {
                        request: *request,
                        txid,
                        outcome,
                    })
                }
                _ => continue,
            };
            produced.extend(more.clone());
            produced.extend(self.answer(&more));
        }
        produced
    }

    /// Answer the requests held back while [`AnswerPolicy::hold`] was set, late: the engine may
    /// have superseded them meanwhile. What the answers produced.
    pub fn release_held(&mut self) -> Vec<Action> {
        let held = std::mem::take(&mut self.answers.held);
        self.answer(&held)
    }

    /// Whether the answer budget ran out: the node "crashed" with actions left unexecuted.
    pub fn crashed(&self) -> bool {
        self.answers.budget == Some(0)
    }

    fn broadcast_outcome(
        &self,
        txs: &[&Transaction],
    ) -> contractcourt_core::event::BroadcastOutcome {
        let spends = txs
            .iter()
            .flat_map(|t| &t.input)
            .find_map(|i| self.answers.reject_spending.get(&i.previous_output));
        let reason = match self.answers.reject_broadcasts.as_ref().or(spends) {
            Some(reason) => Some(reason.clone()),
            None if self.spends_a_spent_output(txs) => {
                Some("bad-txns-inputs-missingorspent".to_string())
            }
            None => None,
        };
        match reason {
            Some(reason) => contractcourt_core::event::BroadcastOutcome::Rejected { reason },
            None => contractcourt_core::event::BroadcastOutcome::Accepted,
        }
    }

    /// Whether one of `txs` spends an output that another transaction on the chain already
    /// spent — a node refuses it (`bad-txns-inputs-missingorspent`), as it would a double spend
    /// of a wallet coin or of an output the peer claimed — or an output of a transaction off the
    /// chain that can never be on it again, because it spends such an output itself (a wallet
    /// coin whose creating transaction a reorg dropped and a replacement of it took the place
    /// of: the node has neither the coin nor its parent). A transaction that is itself on the
    /// chain is not refused here (a rebroadcast of a confirmed transaction).
    fn spends_a_spent_output(&self, txs: &[&Transaction]) -> bool {
        let mut spent_by = BTreeMap::new();
        let mut on_chain = BTreeSet::new();
        for tx in self.blocks.iter().flat_map(|b| &b.txs) {
            let txid = tx.compute_txid();
            on_chain.insert(txid);
            for i in &tx.input {
                spent_by.insert(i.previous_output, txid);
            }
        }
        txs.iter()
            .any(|tx| self.conflicts_with_the_chain(tx, &spent_by, &on_chain, 8))
    }

    /// Whether `tx`, or an ancestor of it among the broadcasts (up to `depth` generations off
    /// the chain), spends an output the chain spent with another transaction.
    fn conflicts_with_the_chain(
        &self,
        tx: &Transaction,
        spent_by: &BTreeMap<OutPoint, Txid>,
        on_chain: &BTreeSet<Txid>,
        depth: u32,
    ) -> bool {
        let txid = tx.compute_txid();
        if on_chain.contains(&txid) {
            return false;
        }
        tx.input.iter().any(|i| {
            if spent_by
                .get(&i.previous_output)
                .is_some_and(|by| *by != txid)
            {
                return true;
            }
            let parent = i.previous_output.txid;
            depth > 0
                && !on_chain.contains(&parent)
                && self
                    .broadcasts
                    .iter()
                    .rev()
                    .find(|b| b.compute_txid() == parent)
                    .is_some_and(|p| {
                        self.conflicts_with_the_chain(p, spent_by, on_chain, depth - 1)
                    })
        })
    }

    /// Every report of one kind in the transcript.
    pub fn reports(&self) -> Vec<&Report> {
        self.transcript
            .iter()
            .filter_map(|a| match a {
                Action::Report(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// Compare the recorded trace with `tests/golden/<name>.json` and replay the golden file
    /// through a fresh engine. With `CONTRACTCOURT_BLESS=1` the golden file is (re)written.
    pub fn check_golden(&mut self, name: &str, description: &str) {
        self.trace.description = description.to_string();
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("golden")
            .join(format!("{name}.json"));
        let json = self.trace.to_json();
        if std::env::var("CONTRACTCOURT_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &json).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (record it with CONTRACTCOURT_BLESS=1)",
                path.display()
            )
        });
        let golden =
            Trace::from_json(&golden).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let config = match &golden.setup {
            TraceSetup::State { state } => {
                serde_json::from_value(state.clone()).unwrap_or_else(|e| {
                    panic!("golden trace {name}: setup is not a configuration: {e}")
                })
            }
            _ => Config::default(),
        };
        let mut fresh = ChainArbitrator::new(config.clone());
        if let Err(mismatch) = replay(&mut fresh, &golden.steps) {
            panic!("golden trace {name} no longer replays:\n{mismatch}");
        }
        assert_eq!(
            golden.steps.len(),
            self.trace.steps.len(),
            "golden trace {name} has a different length"
        );
        check_lazy_reload_answers_alike(name, &config, &golden.steps);
    }

    /// Replay the recorded events, crashing after each step in turn: reload from what was
    /// persisted up to there, feed `Resumed`, continue, and check the final state equals the
    /// uninterrupted run's.
    pub fn check_crash_anywhere(&self) {
        let events: Vec<Event> = self.trace.steps.iter().map(|s| s.event.clone()).collect();
        for crash_after in 0..events.len() {
            let mut arb = ChainArbitrator::new(self.config.clone());
            let mut store = MemStore::default();
            for e in &events[..=crash_after] {
                if let Ok(actions) = arb.step(e) {
                    store.apply(&actions);
                }
            }
            // Reloaded as a driver reloads: lazily, each dormant channel decoded when an
            // event needs it.
            let mut arb = store.load_lazily(self.config.clone());
            let tip = arb.tip();
            if let Ok(actions) = store.step(&mut arb, &Event::Resumed { tip }) {
                store.apply(&actions);
            }
            for e in &events[crash_after + 1..] {
                if let Ok(actions) = store.step(&mut arb, e) {
                    store.apply(&actions);
                }
            }
            assert!(
                store.hydrated(&arb) == self.store.hydrated(&self.arb),
                "a crash after step {crash_after} changes the outcome"
            );
        }
    }
}
