//! The driver parts of a simulation: the embedded chain as chain source and broadcaster (every
//! transaction the engine broadcasts goes through its mempool: Bitcoin Core's script
//! interpreter and policy), and a node that records what it is told. All of them write to one
//! shared [`Log`], from which the timeline is printed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bitcoin::{OutPoint, Transaction, Txid};
use contractcourt_core::action::{
    CloseKind, CloseSummary, CloseTrigger, FailReason, Outcome, Report,
};
use contractcourt_core::bolt3::PaymentPreimage;
use contractcourt_core::event::{BroadcastOutcome, Event};
use contractcourt_core::types::{BlockRef, ChannelId, Height, HtlcKey};
use serde::{Deserialize, Serialize};

use crate::chain::embedded::{EmbeddedChain, MempoolReject};
use crate::chain::embedded_source;
use crate::chain::sync::Delivered;
use crate::driver::{Broadcaster, ChainSource, NodeHandle, SourceError};

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// The chain height it happened at (for a broadcast: the tip when it was offered).
    pub height: Height,
    /// What happened.
    pub event: String,
    /// The transaction, if any.
    pub txid: Option<Txid>,
    /// The fee it paid, if known.
    pub fee_sat: Option<u64>,
    /// The amount involved, if any.
    pub amount_sat: Option<u64>,
}

/// What the simulation's parts saw, in order. A resumable run saves it after every block
/// (without the unacknowledged upstream resolutions: the engine re-emits those after a restart).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Log {
    /// The timeline.
    pub timeline: Vec<TimelineEntry>,
    /// Every report the engine made.
    pub reports: Vec<Report>,
    /// Upstream settles and fails not yet acknowledged to the engine.
    #[serde(skip)]
    pub unacked: Vec<(HtlcKey, bool)>,
    /// Names of outputs, for describing transactions.
    pub names: BTreeMap<OutPoint, String>,
    /// Names of transactions, for describing confirmations.
    pub labels: BTreeMap<Txid, String>,
    /// Transactions broadcast by the engine and accepted (each listed once in the timeline).
    pub accepted: BTreeSet<Txid>,
    /// Rejections already listed (a rebroadcast refused for the same reason is counted only).
    pub rejected: BTreeSet<(Txid, String)>,
    /// Broadcasts by the engine (every attempt of a transaction not yet known).
    pub broadcasts: u64,
    /// Rebroadcasts of transactions the mempool or chain already had.
    pub rebroadcasts: u64,
    /// Refused broadcasts by the engine (every attempt).
    pub rejections: u64,
    /// The node wallet's script: its coins funding a claim are not counted as the claim's
    /// amount.
    pub wallet_script: Option<bitcoin::ScriptBuf>,
    /// The amount of each transaction broadcast, as computed when it was offered.
    pub amounts: BTreeMap<Txid, u64>,
    /// Told of every line as it is added (not saved).
    #[serde(skip)]
    pub sink: Option<LineSink>,
}

/// A receiver of timeline lines as they are added.
#[derive(Clone)]
pub struct LineSink(pub Arc<dyn Fn(&TimelineEntry) + Send + Sync>);

impl std::fmt::Debug for LineSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LineSink")
    }
}

impl Log {
    /// Add a timeline line, after every line of its height or below: the timeline stays in
    /// height order even when a line comes late (the engine catching up after a restart).
    pub fn push(
        &mut self,
        height: Height,
        event: impl Into<String>,
        txid: Option<Txid>,
        fee_sat: Option<u64>,
        amount_sat: Option<u64>,
    ) {
        let entry = TimelineEntry {
            height,
            event: event.into(),
            txid,
            fee_sat,
            amount_sat,
        };
        if let Some(sink) = &self.sink {
            (sink.0)(&entry);
        }
        let at = self.timeline.partition_point(|e| e.height <= height);
        self.timeline.insert(at, entry);
    }

    /// Give every line to `sink` from now on, starting with the lines already there.
    pub fn set_sink(&mut self, sink: LineSink) {
        for entry in &self.timeline {
            (sink.0)(entry);
        }
        self.sink = Some(sink);
    }

    /// Describe a transaction by the outputs it spends.
    /// The amount a transaction moves: its outputs; for a claim the wallet funded (some inputs
    /// pay the node's wallet), the value of the inputs it claims.
    pub fn amount(&self, tx: &Transaction, chain: &EmbeddedChain) -> u64 {
        let prevouts: Vec<Option<bitcoin::TxOut>> = tx
            .input
            .iter()
            .map(|i| chain.prevout(&i.previous_output))
            .collect();
        let is_wallet = |o: &Option<bitcoin::TxOut>| {
            o.as_ref().map(|o| &o.script_pubkey) == self.wallet_script.as_ref()
        };
        if self.wallet_script.is_some() && prevouts.iter().any(is_wallet) {
            return prevouts
                .iter()
                .filter(|o| !is_wallet(o))
                .flatten()
                .map(|o| o.value.to_sat())
                .sum();
        }
        tx.output.iter().map(|o| o.value.to_sat()).sum()
    }

    /// A transaction named by the outputs it spends.
    pub fn describe(&self, tx: &Transaction) -> String {
        let names: Vec<&str> = tx
            .input
            .iter()
            .filter_map(|i| self.names.get(&i.previous_output).map(String::as_str))
            .collect();
        match names.as_slice() {
            [] => format!("transaction with {} input(s)", tx.input.len()),
            [one] => (*one).to_string(),
            many if many.len() <= 3 => many.join(" + "),
            many => format!("{} + {} more", many[..2].join(" + "), many.len() - 2),
        }
    }
}

/// A shared handle.
pub type Shared<T> = Arc<Mutex<T>>;

/// Lock, using a poisoned part anyway (as the driver does).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts the simulation's steps — every event fed to the engine, every broadcast and every
/// call of the node, every block mined, every transaction of the peer — and calls a hook after
/// each one with the count so far (in this process). The crash tests stop the process at a
/// chosen step there and kill it.
#[derive(Clone, Default)]
pub struct Steps {
    count: Arc<AtomicU64>,
    hook: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

impl std::fmt::Debug for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steps")
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

impl Steps {
    /// A counter calling `hook` after every step.
    pub fn new(hook: Option<Arc<dyn Fn(u64) + Send + Sync>>) -> Steps {
        Steps {
            count: Arc::new(AtomicU64::new(0)),
            hook,
        }
    }

    /// One more step.
    pub fn tick(&self) {
        let n = self.count.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        if let Some(hook) = &self.hook {
            hook(n);
        }
    }

    /// The steps so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

/// The embedded chain as the driver's chain source, serving blocks from `first_height` on,
/// through the fork-point walk every polled source uses: a run killed after the chain took a
/// reorg's fork but before the engine was told resumes with the disconnections it missed.
pub struct SimChainSource {
    /// The chain.
    pub chain: Shared<EmbeddedChain>,
    /// The first block the engine is given.
    pub first_height: Height,
    /// The blocks this source delivered (parents for a reorg's disconnections).
    delivered: Delivered,
}

impl SimChainSource {
    /// A source over `chain` serving blocks from `first_height` on.
    pub fn new(chain: Shared<EmbeddedChain>, first_height: Height) -> SimChainSource {
        SimChainSource {
            chain,
            first_height,
            delivered: Delivered::default(),
        }
    }
}

impl ChainSource for SimChainSource {
    fn tip(&mut self) -> Result<Option<BlockRef>, SourceError> {
        Ok(Some(lock(&self.chain).tip()))
    }

    fn blocks_after(&mut self, locator: &[BlockRef]) -> Result<Vec<Event>, SourceError> {
        embedded_source::blocks_after(&self.chain, locator, self.first_height, &mut self.delivered)
    }
}

/// The embedded chain's mempool as the driver's broadcaster; every attempt is logged.
pub struct SimBroadcaster {
    /// The chain.
    pub chain: Shared<EmbeddedChain>,
    /// The log.
    pub log: Shared<Log>,
    /// The step counter (one step per broadcast, once the mempool has answered).
    pub steps: Steps,
}

impl SimBroadcaster {
    fn record(&self, tx: &Transaction, result: Result<(), String>) -> BroadcastOutcome {
        let txid = tx.compute_txid();
        let chain = lock(&self.chain);
        let height = chain.height();
        let mut log = lock(&self.log);
        log.broadcasts += 1;
        let what = match log.labels.get(&txid) {
            Some(label) => label.clone(),
            None => format!("claim of {}", log.describe(tx)),
        };
        match result {
            Ok(()) => {
                if log.accepted.insert(txid) {
                    let fee = chain.mempool_tx(&txid).map(|m| m.fee_sat);
                    let amount = log.amount(tx, &chain);
                    log.amounts.insert(txid, amount);
                    log.labels.entry(txid).or_insert_with(|| what.clone());
                    // A claim's first output continues its first input's story (a
                    // second-level HTLC transaction's CSV-locked output, wallet-funded or not).
                    let continues = tx.input.first().is_some_and(|i| {
                        tx.input.len() == 1 || log.names.contains_key(&i.previous_output)
                    }) && tx
                        .output
                        .first()
                        .is_some_and(|o| o.script_pubkey.is_p2wsh());
                    if continues {
                        let name = format!("{} (second level)", log.describe(tx));
                        log.names.entry(OutPoint { txid, vout: 0 }).or_insert(name);
                    }
                    log.push(
                        height,
                        format!("broadcast {what}"),
                        Some(txid),
                        fee,
                        Some(amount),
                    );
                }
                BroadcastOutcome::Accepted
            }
            Err(reason) => {
                log.rejections += 1;
                if log.rejected.insert((txid, reason.clone())) {
                    log.push(
                        height,
                        format!("REJECTED broadcast of {what}: {reason}"),
                        Some(txid),
                        None,
                        None,
                    );
                }
                BroadcastOutcome::Rejected { reason }
            }
        }
    }
}

/// A refusal as a node's RPC words it: Bitcoin Core's reject code first (what the core's
/// table classifies: `txn-already-known` is a success), then the embedded chain's detail.
fn reject_reason(e: &MempoolReject) -> String {
    format!("{}: {e}", e.code())
}

impl Broadcaster for SimBroadcaster {
    fn broadcast(&mut self, tx: &Transaction) -> BroadcastOutcome {
        let txid = tx.compute_txid();
        let mut chain = lock(&self.chain);
        let known =
            chain.mempool_tx(&txid).is_some() || chain.tx_confirmation_height(&txid).is_some();
        let result = chain
            .submit(tx.clone())
            .map(|_| ())
            .map_err(|e| reject_reason(&e));
        drop(chain);
        let outcome = if known {
            // A rebroadcast of a transaction the mempool or the chain already has: the raw
            // answer goes back to the core (which reads "already known" as success).
            lock(&self.log).rebroadcasts += 1;
            match result {
                Ok(()) => BroadcastOutcome::Accepted,
                Err(reason) => BroadcastOutcome::Rejected { reason },
            }
        } else {
            self.record(tx, result)
        };
        self.steps.tick();
        outcome
    }

    fn broadcast_package(&mut self, parent: &Transaction, child: &Transaction) -> BroadcastOutcome {
        let result = lock(&self.chain)
            .submit_package(parent.clone(), child.clone())
            .map(|_| ())
            .map_err(|e| reject_reason(&e));
        if result.is_ok() {
            self.record(parent, Ok(()));
        }
        let outcome = self.record(child, result);
        self.steps.tick();
        outcome
    }
}

/// The node: records reports and upstream resolutions into the log.
pub struct SimNode {
    /// The chain (for the height of each line).
    pub chain: Shared<EmbeddedChain>,
    /// The log.
    pub log: Shared<Log>,
    /// The step counter (one step per settle, fail or report).
    pub steps: Steps,
}

impl NodeHandle for SimNode {
    fn update_persisted(&mut self, _channel: ChannelId, _update_id: u64) {}

    fn settle_upstream(&mut self, htlc: HtlcKey, _preimage: PaymentPreimage) {
        let height = lock(&self.chain).height();
        {
            let mut log = lock(&self.log);
            log.push(
                height,
                format!("settle incoming htlc {} upstream", htlc.htlc_id),
                None,
                None,
                None,
            );
            log.unacked.push((htlc, true));
        }
        self.steps.tick();
    }

    fn fail_upstream(&mut self, htlc: HtlcKey, reason: &FailReason) {
        let height = lock(&self.chain).height();
        {
            let mut log = lock(&self.log);
            log.push(
                height,
                format!("fail htlc {} upstream: {reason:?}", htlc.htlc_id),
                None,
                None,
                None,
            );
            log.unacked.push((htlc, false));
        }
        self.steps.tick();
    }

    fn report(&mut self, report: &Report) {
        self.record_report(report);
        self.steps.tick();
    }
}

impl SimNode {
    fn record_report(&mut self, report: &Report) {
        let height = lock(&self.chain).height();
        let mut log = lock(&self.log);
        match report {
            Report::CloseSummary(s) => {
                log.push(
                    height,
                    close_line(s),
                    Some(s.closing_txid),
                    None,
                    Some(s.our_balance_sat),
                );
            }
            Report::Timeline {
                outpoint,
                height,
                stage,
                txid,
                ..
            } => {
                let name = log
                    .names
                    .get(outpoint)
                    .cloned()
                    .unwrap_or_else(|| format!("output {outpoint}"));
                // The engine's stage may start with the output's name (without a channel tag
                // of a scenario of several channels: `ch1: `).
                let bare = name.split_once(": ").map_or(name.as_str(), |(_, n)| n);
                let event = if stage.starts_with(&name) {
                    stage.clone()
                } else if name.starts_with("ch") && stage.starts_with(bare) {
                    format!("{}{stage}", &name[..name.len() - bare.len()])
                } else {
                    format!("{name}: {stage}")
                };
                log.push(*height, event, *txid, None, None);
            }
            Report::Resolution(r) => {
                let name = log
                    .names
                    .get(&r.outpoint)
                    .cloned()
                    .unwrap_or_else(|| format!("output {}", r.outpoint));
                let outcome = match r.outcome {
                    Outcome::Claimed => "claimed by us",
                    Outcome::TimedOut => "timed out back to us",
                    Outcome::LostToPeer => "TAKEN BY THE PEER",
                    Outcome::Uneconomical => "left: uneconomical to claim",
                    Outcome::ThirdParty => "taken by a third party",
                    Outcome::RevokedSecondLevel => {
                        "spent by the peer's second-level transaction (its output is ours by revocation)"
                    }
                    Outcome::UnknownSpend => "SPENT BY AN UNKNOWN WITNESS",
                };
                // An output no transaction spent (an expired HTLC an idle peer never took, an
                // anchor left) is final without a spend.
                let when = match r.spending_txid {
                    Some(_) => format!("spent at {}", r.height),
                    None => format!("unspent, final at {}", r.height),
                };
                log.push(
                    height,
                    format!("final: {name} {outcome} ({when})"),
                    r.spending_txid,
                    Some(r.fees_sat),
                    Some(r.amount_sat),
                );
            }
            Report::Alert(a) => {
                log.push(
                    height,
                    format!("ALERT {:?}: {}", a.kind, a.message),
                    None,
                    None,
                    None,
                );
            }
            Report::Loss {
                htlc,
                amount_msat,
                detail,
            } => {
                log.push(
                    height,
                    format!("LOSS on htlc {}: {detail}", htlc.htlc_id),
                    None,
                    None,
                    Some(amount_msat / 1000),
                );
            }
        }
        log.reports.push(report.clone());
    }
}

/// The timeline line of a close summary.
pub fn close_line(s: &CloseSummary) -> String {
    format!(
        "close confirmed: {}; {}",
        describe_close(&s.close),
        describe_trigger(&s.trigger)
    )
}

/// A close kind in words.
pub fn describe_close(kind: &CloseKind) -> String {
    match kind {
        CloseKind::Local { commitment_number } => {
            format!("our commitment {commitment_number}")
        }
        CloseKind::OldLocal { commitment_number } => {
            format!("an OLD commitment of ours ({commitment_number})")
        }
        CloseKind::Remote {
            commitment_number,
            pending,
        } => format!(
            "the peer's {} commitment {commitment_number}",
            if *pending { "pending" } else { "current" }
        ),
        CloseKind::Breach { commitment_number } => {
            format!("BREACH: the peer's revoked commitment {commitment_number}")
        }
        CloseKind::FutureRemote { commitment_number } => {
            format!("the peer's commitment {commitment_number}, newer than ours (data loss)")
        }
        CloseKind::Cooperative => "cooperative".to_string(),
        CloseKind::Unknown => "an unknown spend of the funding output".to_string(),
    }
}

/// A close trigger in words.
pub fn describe_trigger(trigger: &CloseTrigger) -> String {
    match trigger {
        CloseTrigger::HtlcDeadline {
            htlc,
            deadline,
            height,
        } => format!(
            "went to chain at height {height} for the deadline {deadline} of {} htlc {}",
            format!("{:?}", htlc.direction).to_lowercase(),
            htlc.htlc_id
        ),
        CloseTrigger::User => "the operator asked".to_string(),
        CloseTrigger::PeerError { message } => format!("the peer erred: {message}"),
        CloseTrigger::Node { message } => format!("the node asked: {message}"),
        CloseTrigger::DataLoss => "we lost data; the peer closed".to_string(),
        CloseTrigger::Peer => "the peer closed".to_string(),
    }
}
