//! `contractcourt simulate`: a dry run of a channel close on the embedded regtest chain.
//!
//! A [`Scenario`] (see [`scenario`] for the JSON format) describes a channel, its HTLCs, who
//! closes and when, what the peer does and the fee rates over time. [`run`] plays it:
//!
//! 1. an embedded chain ([`EmbeddedChain::new_temp`], or [`EmbeddedChain::new`] in the
//!    directory of a resumable run, see [`run`]); a [`TestWallet`] mines 101 blocks to
//!    itself and funds the channel's 2-of-2 P2WSH funding output; the block that confirms it is
//!    the scenario's height 0;
//! 2. a `sim` channel on that outpoint (both parties' commitments built with `bolt3`), its
//!    HTLCs added and committed, fed to the engine as the channel events a node would send;
//! 3. the engine runs inside a [`Driver`] over a [`SqliteStore`], with an [`InMemorySigner`]
//!    holding our basepoint secrets, the chain's mempool as broadcaster and a node that records
//!    what it is told ([`io`]);
//! 4. block by block: fee conditions when they change, the scenario's close (ours:
//!    `ForceCloseRequested`; the peer's: its commitment into the mempool), the peer's claims,
//!    then a block mined from the mempool and fed to the engine, whose claims go back into the
//!    mempool.
//!
//! Everything is deterministic: the same scenario gives the same [`SimOutcome`], byte for byte
//! (a resumable run that was never interrupted too). A resumed run ends with the same ledger;
//! its timeline may differ around an interruption.

#[cfg(feature = "embedded-chain")]
mod close;
pub mod config_file;
#[cfg(feature = "embedded-chain")]
mod finish;
#[cfg(feature = "embedded-chain")]
pub mod io;
#[cfg(feature = "embedded-chain")]
mod output;
#[cfg(feature = "embedded-chain")]
mod peer;
#[cfg(feature = "embedded-chain")]
mod reorg;
#[cfg(feature = "embedded-chain")]
mod resume;
pub mod scenario;
pub mod settings;
#[cfg(feature = "embedded-chain")]
mod setup;
#[cfg(feature = "embedded-chain")]
mod start;
#[cfg(feature = "embedded-chain")]
pub mod state;
#[cfg(feature = "embedded-chain")]
mod third_party;

pub use scenario::{Scenario, ScenarioError};
pub use settings::EngineSettings;

// Everything below but `SimError` runs a scenario on the embedded chain.
#[cfg(feature = "embedded-chain")]
pub use output::{
    render_head, render_ledger, render_line, render_tail, render_text, short_txid, LEDGER_HELP,
};
#[cfg(feature = "embedded-chain")]
use {
    crate::chain::embedded::EmbeddedChain,
    crate::driver::Driver,
    crate::signer::BasepointSecrets,
    crate::store::SqliteStore,
    bitcoin::{FeeRate, ScriptBuf, Txid},
    contractcourt_core::action::CloseSummary,
    contractcourt_core::chain::ledger::Ledger,
    contractcourt_core::chain::Config,
    contractcourt_core::event::{Event, FeeConditions, FeeEstimate, UpstreamResolution},
    contractcourt_core::sim::{PartySecrets, SimChannel, SimHtlc},
    contractcourt_core::types::{ChannelId, Height, Party},
    io::{lock, Log, Steps, TimelineEntry},
    serde::{Deserialize, Serialize},
    setup::sim_channel,
    state::Funding,
    std::collections::BTreeMap,
    std::path::PathBuf,
    std::sync::{Arc, Mutex},
};

#[cfg(feature = "embedded-chain")]
/// The wallet seed of the peer (where its claims pay).
const PEER_WALLET_SEED: u64 = 0x7065_6572;
#[cfg(feature = "embedded-chain")]
/// The fee rate used before the scenario names one.
const DEFAULT_SAT_PER_VB: u32 = 2;

#[cfg(feature = "embedded-chain")]
/// How a run went: everything printed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimOutcome {
    /// The scenario's name.
    pub scenario: String,
    /// The channel type.
    pub channel_type: String,
    /// The channel.
    pub channel: ChannelId,
    /// The scenario's `extra_channels`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_channels: Vec<ChannelId>,
    /// The absolute height of the scenario's height 0 (the funding confirmation).
    pub start_height: Height,
    /// The tip at the end.
    pub end_height: Height,
    /// What happened, in order.
    pub timeline: Vec<TimelineEntry>,
    /// The engine's close summaries.
    pub close_summaries: Vec<CloseSummary>,
    /// The engine's ledger at the end.
    pub ledger: Ledger,
    /// Transactions the engine broadcast (first attempts of each transaction not yet known).
    pub broadcasts: u64,
    /// Rebroadcasts of transactions the mempool or chain already had.
    pub rebroadcasts: u64,
    /// Broadcasts the mempool refused.
    pub rejections: u64,
    /// Alerts the engine raised.
    #[serde(default)]
    pub alerts: u64,
    /// Losses the engine reported.
    #[serde(default)]
    pub losses: u64,
    /// Things the reader must know about this run.
    pub notes: Vec<String>,
}

/// Why a run failed.
#[derive(Debug)]
pub struct SimError(pub String);

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SimError {}

#[cfg(feature = "embedded-chain")]
fn err<E: std::fmt::Display>(context: &'static str) -> impl Fn(E) -> SimError {
    move |e| SimError(format!("{context}: {e}"))
}

#[cfg(feature = "embedded-chain")]
/// Options of a run.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Keep the engine's store at this path; a temporary one otherwise. Without `chain_dir` it
    /// must not exist yet. With `chain_dir`, an existing store is the run to resume.
    pub db: Option<PathBuf>,
    /// Keep the embedded chain in this directory (with `db` only), which makes the run
    /// resumable: see [`run`].
    pub chain_dir: Option<PathBuf>,
    /// Called after every block with (blocks done, blocks in all).
    pub progress: Option<&'a mut dyn FnMut(u32, u32)>,
    /// Called after every step with the number of steps so far in this process (see
    /// [`io::Steps`]).
    pub on_step: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    /// Called with each timeline line as it is added (the lines a resumed run saved first),
    /// so a program can print them as the run goes. A line that comes late (the engine
    /// catching up after a restart) is given when it comes, though the outcome's timeline
    /// lists it at its height.
    pub on_line: Option<io::LineSink>,
    /// The engine's settings (a resumed run must be given the settings it started with).
    pub engine: EngineSettings,
}

#[cfg(feature = "embedded-chain")]
/// A temporary directory removed on drop.
struct TempDir(PathBuf);

#[cfg(feature = "embedded-chain")]
impl TempDir {
    fn new() -> Result<TempDir, SimError> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("contractcourt-simulate-{}-{n}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(err("removing a stale temporary directory"))?;
        }
        std::fs::create_dir_all(&path).map_err(err("creating a temporary directory"))?;
        Ok(TempDir(path))
    }
}

#[cfg(feature = "embedded-chain")]
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(feature = "embedded-chain")]
fn fee_conditions(sat_per_vb: u32) -> Event {
    let rate = FeeRate::from_sat_per_vb_u32(sat_per_vb);
    let one = FeeRate::from_sat_per_vb_u32(1);
    Event::FeeConditions(FeeConditions {
        estimates: [1u16, 2, 3, 6, 12, 24, 144, 1008]
            .into_iter()
            .map(|target_blocks| FeeEstimate {
                target_blocks,
                feerate: rate,
            })
            .collect(),
        mempool_min: one,
        min_relay: one,
        incremental_relay: one,
    })
}

#[cfg(feature = "embedded-chain")]
fn basepoint_secrets(p: &PartySecrets) -> BasepointSecrets {
    BasepointSecrets {
        funding: p.funding,
        revocation: p.revocation_base,
        payment: p.payment_base,
        delayed_payment: p.delayed_payment_base,
        htlc: p.htlc_base,
    }
}

#[cfg(feature = "embedded-chain")]
/// The commitment that closed the channel.
#[derive(Clone, Copy, Debug)]
struct Closing {
    holder: Party,
    number: u64,
    revoked: bool,
    /// A cooperative close (no commitment: the peer has nothing to claim).
    cooperative: bool,
}

#[cfg(feature = "embedded-chain")]
/// One channel of a run: its scenario (a single-channel view), its `sim` model, and how its
/// close went.
struct Lane {
    spec: Scenario,
    sim: SimChannel,
    htlcs: Vec<(SimHtlc, usize)>,
    candidates: Vec<(Txid, Closing)>,
    closing: Option<Closing>,
    closing_built: Option<contractcourt_core::bolt3::commitment::BuiltCommitment>,
    peer_done: std::collections::BTreeSet<usize>,
    /// What the timeline puts before this channel's lines: nothing with one channel, `ch1: `
    /// and so on with several.
    tag: String,
}

#[cfg(feature = "embedded-chain")]
/// A resumable run's state file and what it says.
struct Persist {
    path: PathBuf,
    restarts: u32,
    funding: Funding,
    /// The engine's settings of the run.
    settings: EngineSettings,
    /// Saved durably once in this process.
    saved: bool,
}

#[cfg(feature = "embedded-chain")]
/// The simulation's state between blocks.
struct Sim<'a> {
    scenario: &'a Scenario,
    chain: Arc<Mutex<EmbeddedChain>>,
    log: Arc<Mutex<Log>>,
    driver: Driver<SqliteStore>,
    /// The channels, the scenario's own first.
    lanes: Vec<Lane>,
    start: Height,
    miner: ScriptBuf,
    peer_script: ScriptBuf,
    fee_rate: Option<u32>,
    notes: Vec<String>,
    steps: Steps,
    persist: Option<Persist>,
}

#[cfg(feature = "embedded-chain")]
/// Play `scenario`. See the [module documentation](self).
///
/// With [`RunOptions::chain_dir`] (and [`RunOptions::db`]) the run can be killed at any point
/// and resumed by calling `run` again with the same scenario, store and directory: the chain
/// lives in the directory (every block synced to disk before it is used), the engine in its
/// store, and the rest in a small state file next to the store ([`state`]). A restart reloads
/// the engine with [`Driver::load`] and [`Driver::resume`] (`Resumed`, then the blocks it
/// missed), rebuilds the `sim` channel from the scenario and the saved funding, and continues
/// the scenario at the chain's height: the peer's moves and the fee rates are functions of the
/// height, a peer's transaction lost with the mempool is offered again, and the engine
/// re-emits its own broadcasts. A run killed during its setup starts over.
pub fn run(scenario: &Scenario, mut options: RunOptions<'_>) -> Result<SimOutcome, SimError> {
    scenario.check().map_err(|e| SimError(e.to_string()))?;
    let settings = &options.engine;
    settings.apply(Config::default())?;
    let steps = Steps::new(options.on_step.clone());
    // A temporary store's directory, kept until the end of the run.
    let mut temp = None;
    let mut sim = match (&options.db, &options.chain_dir) {
        (Some(db), Some(dir)) => {
            if let Some(outcome) = resume::finished_outcome(scenario, settings, db)? {
                return Ok(outcome);
            }
            Sim::resumable(scenario, settings, db, dir, steps)?
        }
        (None, Some(dir)) => {
            return Err(SimError(format!(
                "--chain-dir {}: needs --db (the engine's store of the same run)",
                dir.display()
            )))
        }
        (db, None) => {
            let db_path: PathBuf = match db {
                Some(p) => {
                    if p.exists() {
                        return Err(SimError(format!(
                            "--db {}: the file exists already (a simulation writes a fresh \
                             store; add --chain-dir to resume a run)",
                            p.display()
                        )));
                    }
                    p.clone()
                }
                None => temp.insert(TempDir::new()?).0.join("engine.sqlite"),
            };
            let chain = EmbeddedChain::new_temp().map_err(err("starting the embedded chain"))?;
            Sim::fresh(scenario, settings, chain, &db_path, steps)?
        }
    };
    if let Some(sink) = options.on_line.clone() {
        lock(&sim.log).set_sink(sink);
    }
    let total = scenario.run_blocks;
    let first = sim.tip().saturating_sub(sim.start).min(total);
    for rel in first..total {
        sim.block(rel)?;
        sim.save()?;
        if let Some(progress) = options.progress.as_mut() {
            progress(rel + 1, total);
        }
    }
    let finished = sim.persist.as_ref().map(|p| (p.path.clone(), p.restarts));
    let outcome = sim.finish()?;
    if let Some((path, restarts)) = finished {
        resume::save_finished(&path, scenario, settings, restarts, &outcome)?;
    }
    drop(temp);
    Ok(outcome)
}

#[cfg(feature = "embedded-chain")]
impl<'a> Sim<'a> {
    /// The candidate commitment of lane `l` that confirmed, if any.
    fn confirmed_closing(&self, l: usize) -> Option<Closing> {
        let chain = lock(&self.chain);
        self.lanes[l]
            .candidates
            .iter()
            .find(|(txid, _)| chain.tx_confirmation_height(txid).is_some())
            .map(|(_, c)| *c)
    }

    fn feed(&mut self, event: Event) -> Result<(), SimError> {
        self.driver
            .feed(event)
            .map_err(|e| SimError(format!("engine: {e}")))?;
        self.steps.tick();
        self.ack_upstream()
    }

    /// Play the node: acknowledge every upstream settle and fail.
    fn ack_upstream(&mut self) -> Result<(), SimError> {
        loop {
            let unacked = std::mem::take(&mut lock(&self.log).unacked);
            if unacked.is_empty() {
                return Ok(());
            }
            for (htlc, settled) in unacked {
                let resolution = if settled {
                    UpstreamResolution::Settled
                } else {
                    UpstreamResolution::Failed
                };
                self.driver
                    .feed(Event::UpstreamAcked { htlc, resolution })
                    .map_err(|e| SimError(format!("engine: {e}")))?;
                self.steps.tick();
            }
        }
    }

    fn tip(&self) -> Height {
        lock(&self.chain).height()
    }

    fn current_rate(&self) -> u32 {
        self.fee_rate.unwrap_or(DEFAULT_SAT_PER_VB)
    }

    /// One block: the scenario's actions at relative height `rel` (the tip), the fee rate of
    /// the next height, then the next block, mined and fed to the engine. (After a restart
    /// the engine's rate, kept in its store, is the one of the height it was fed last, or of
    /// the next: either way feeding the next height's is what an uninterrupted run does.)
    fn block(&mut self, rel: u32) -> Result<(), SimError> {
        let tip = self.tip();
        for l in 0..self.lanes.len() {
            self.learn_preimages_at(l, rel)?;
            let lane = &self.lanes[l];
            if lane.spec.close.at_height == Some(rel) && lane.closing.is_none() {
                self.close_now(l, tip)?;
            }
        }
        for l in 0..self.lanes.len() {
            self.peer_claims(l, tip)?;
        }
        self.third_party_spends(tip)?;
        // The fee market of the next block: the rate in force from its height on, known (and
        // acted on) before it is mined, so the engine's reaction to that block is priced at it.
        self.apply_fee_rate(rel.saturating_add(1), tip.saturating_add(1))?;

        if let Some(reorg) = self.scenario.reorg.filter(|r| r.at_height == rel) {
            self.reorg(reorg)?;
            self.driver
                .sync_wallet()
                .map_err(|e| SimError(format!("engine: {e}")))?;
            return Ok(());
        }
        // Mine the next block from the mempool and feed it.
        let fees: BTreeMap<Txid, u64> = {
            let chain = lock(&self.chain);
            chain
                .mempool_txs()
                .into_iter()
                .map(|m| (m.txid, m.fee_sat))
                .collect()
        };
        let block = {
            let mut chain = lock(&self.chain);
            chain
                .mine_blocks(1, &self.miner)
                .map_err(err("bitcoin core refused a block"))?
                .pop()
                .ok_or_else(|| SimError("no block mined".into()))?
        };
        self.steps.tick();
        tracing::info!(
            height = block.height,
            transactions = block.txs.len(),
            "block mined"
        );
        self.log_confirmations(&block, &fees);
        for l in 0..self.lanes.len() {
            if self.lanes[l].closing.is_none() {
                self.lanes[l].closing = self.confirmed_closing(l);
            }
        }
        self.feed(Event::BlockConnected(block))?;
        // The wallet's balance after the block, for the engine's fee-reserve check.
        self.driver
            .sync_wallet()
            .map_err(|e| SimError(format!("engine: {e}")))?;
        Ok(())
    }

    /// Feed the scenario's fee rate for relative height `rel` (absolute `height`) if it is not
    /// the one the engine has, with a timeline line.
    fn apply_fee_rate(&mut self, rel: u32, height: Height) -> Result<(), SimError> {
        let Some(rate) = self.scenario.fee_rate_at(rel) else {
            return Ok(());
        };
        if self.fee_rate == Some(rate) {
            return Ok(());
        }
        self.fee_rate = Some(rate);
        lock(&self.log).push(height, format!("fee rate {rate} sat/vB"), None, None, None);
        self.feed(fee_conditions(rate))
    }

    /// List the transactions `block` confirmed, with their fees if known (from `fees`, or the
    /// timeline line that listed the transaction when it was offered).
    fn log_confirmations(
        &self,
        block: &contractcourt_core::event::Block,
        fees: &BTreeMap<Txid, u64>,
    ) {
        let mut log = lock(&self.log);
        for raw in block.txs.iter().skip(1) {
            let txid = raw.compute_txid();
            let label = log
                .labels
                .get(&txid)
                .cloned()
                .unwrap_or_else(|| "wallet transaction".to_string());
            let amount = log
                .amounts
                .get(&txid)
                .copied()
                .unwrap_or_else(|| raw.output.iter().map(|o| o.value.to_sat()).sum());
            let fee = fees.get(&txid).copied().or_else(|| {
                log.timeline
                    .iter()
                    .rev()
                    .find(|e| e.txid == Some(txid) && e.fee_sat.is_some())
                    .and_then(|e| e.fee_sat)
            });
            log.push(
                block.height,
                format!("confirmed: {label}"),
                Some(txid),
                fee,
                Some(amount),
            );
        }
    }
}
