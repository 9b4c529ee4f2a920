//! The serve loop: start the driver on the store (waiting out an unreachable source), then
//! forever: the node's messages, the chain (unless the source is in initial block download),
//! the mempool, the fee conditions (at most every 30 s, fed when they changed), a tick (every
//! minute); sleep until the next poll. Every step the driver
//! runs is committed before its effects. A chain source error never ends the loop: it is
//! retried with exponential backoff (up to `max_backoff`), and an outage longer than
//! `outage_alert` is logged at error level and sent to the node as an `alert`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use contractcourt_core::action::{Record, RecordKey};
use contractcourt_core::event::{Event, FeeConditions};
use contractcourt_core::sweeper::SweeperConfig;

use super::handle::{self, Link};
use super::link::NodeLink;
use super::protocol::Outbound;
use super::settings::ServeConfig;
use super::settings::StoreConfig;
use super::source::{self, SharedSource};
use super::ServeError;
use super::ServeStore;
use crate::chain::fees::LiveSource;
use crate::driver::io::lock;
use crate::driver::{Driver, DriverError, DriverErrorKind, Io, SourceError};
use crate::store::{LeaseWatch, PostgresStore, SqliteStore, Store, StoreError};

/// Seconds between two `Tick` events.
const TICK_SECS: u64 = 60;
/// The shortest wait between two reads of the fee conditions (nine `estimatesmartfee` calls and
/// a `getmempoolinfo` on bitcoind).
const FEE_POLL: Duration = Duration::from_secs(30);

/// An unreachable source: since when, how long to wait next, whether it was alerted.
struct Outage {
    since: Instant,
    wait: Duration,
    alerted: bool,
}

/// What the loop keeps between polls.
struct Loop {
    config: ServeConfig,
    source: SharedSource,
    link: Link,
    outage: Option<Outage>,
    fees: Option<FeeConditions>,
    fees_read: Option<Instant>,
    last_tick: u64,
    in_download: bool,
}

/// An open store, its node record (where the configuration the engine ran with is kept) and,
/// for PostgreSQL, its lease's watch (the loop's heartbeat).
type Opened = (ServeStore, Option<Record>, Option<LeaseWatch>);

/// Open the store. A PostgreSQL store is a hot standby's: its lease is waited for, however long.
fn open_store(config: &StoreConfig) -> Result<Opened, ServeError> {
    let failed = |e: StoreError| ServeError::Store(format!("{config}: {e}"));
    match config {
        StoreConfig::Sqlite(path) => {
            let store = SqliteStore::open(path).map_err(failed)?;
            let node = store.record(&RecordKey::Node).map_err(failed)?;
            Ok((Box::new(store), node, None))
        }
        StoreConfig::Postgres(pg) => {
            tracing::info!(schema = %pg.schema, lease_ms = pg.lease.as_millis() as u64, "waiting for the store's lease");
            let poll = (pg.lease / 20).clamp(Duration::from_millis(20), Duration::from_millis(500));
            let store = PostgresStore::open_standby(pg.clone(), poll, None).map_err(failed)?;
            tracing::info!(token = store.token(), "holding the store's lease");
            let node = store.load().map_err(failed)?.remove(&RecordKey::Node);
            let watch = store.watch();
            Ok((Box::new(store), node, Some(watch)))
        }
    }
}

/// Run `serve` until `stop` is set (checked once per poll).
pub fn run(config: ServeConfig, stop: &AtomicBool) -> Result<(), ServeError> {
    let (store, node, watch) = open_store(&config.store)?;
    let stored = node
        .as_ref()
        .and_then(contractcourt_core::chain::stored_config)
        .unwrap_or_default();
    let mut engine_config = config
        .engine
        .apply(stored)
        .map_err(|e| ServeError::Settings(e.to_string()))?;
    if let Some((destination, fallback_feerate)) = &config.sweep {
        engine_config.sweep_to = Some(SweeperConfig {
            destination: destination.clone(),
            fallback_feerate: *fallback_feerate,
            fee_wallet: None,
        });
    }
    let source = source::build(&config.source).map_err(|e| ServeError::Source(e.to_string()))?;
    let link: Link = Arc::new(Mutex::new(
        NodeLink::bind(&config.socket, config.node_timeout)
            .map_err(|e| ServeError::Socket(format!("{}: {e}", config.socket.display())))?,
    ));
    tracing::info!(store = %config.store, socket = %config.socket.display(), source = ?config.source, "serving");
    let io = Io {
        signer: Box::new(link.clone()),
        broadcaster: Box::new(source.clone()),
        wallet: Box::new(link.clone()),
        chain: Box::new(source.clone()),
        node: Box::new(link.clone()),
    };
    let mut driver = Driver::load(engine_config, store, io).map_err(fatal)?;
    let mut state = Loop {
        config,
        source,
        link,
        outage: None,
        fees: None,
        fees_read: None,
        last_tick: 0,
        in_download: false,
    };
    let mut resumed = false;
    while !stop.load(Ordering::SeqCst) {
        beat(watch.as_ref())?;
        if !resumed {
            state.node_lines(&mut driver, true);
            resumed = state.start(&mut driver)?;
        } else {
            state.poll(&mut driver)?;
        }
        let wait = state.outage.as_ref().map_or(state.config.poll, |o| o.wait);
        sleep_unless_stopped(wait, stop, watch.as_ref())?;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The loop is alive (a PostgreSQL store's lease is renewed only while it beats: a hung loop
/// loses it to a standby); an error if the lease was found taken over (by the renewer, within
/// a third of the lease, or a refused write): this `serve` can write nothing and stops now,
/// not at its next commit (which, with only node messages coming, may be a minute away).
fn beat(watch: Option<&LeaseWatch>) -> Result<(), ServeError> {
    let Some(w) = watch else {
        return Ok(());
    };
    if w.fenced() {
        return Err(ServeError::Store(
            "fenced: another serve took the store's lease over".into(),
        ));
    }
    w.beat();
    Ok(())
}

/// Sleep `wait` (a loop waiting is alive: it beats), or less if `stop` is set.
fn sleep_unless_stopped(
    wait: Duration,
    stop: &AtomicBool,
    watch: Option<&LeaseWatch>,
) -> Result<(), ServeError> {
    let end = Instant::now() + wait;
    while Instant::now() < end && !stop.load(Ordering::SeqCst) {
        beat(watch)?;
        std::thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
    }
    Ok(())
}

/// A driver error that ends `serve`: the store is unusable.
fn fatal(e: DriverError) -> ServeError {
    ServeError::Store(e.to_string())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Loop {
    /// The first resumption; a new store first sets where the source starts.
    fn start(&mut self, driver: &mut Driver<ServeStore>) -> Result<bool, ServeError> {
        if driver.engine().tip().is_none() {
            let height = match self.config.start_height {
                Some(height) => height,
                None => {
                    let tip = crate::driver::ChainSource::tip(&mut self.source.clone());
                    match self.source_call(tip) {
                        Some(tip) => tip.map_or(0, |t| t.height),
                        None => return Ok(false),
                    }
                }
            };
            tracing::info!(height, "a new store: following the chain from this height");
            self.source.clone().start_at(height);
        }
        self.chain_call(driver.resume())
    }

    /// The node's messages received since the last call.
    fn node_lines(&mut self, driver: &mut Driver<ServeStore>, starting: bool) {
        let lines = lock(&self.link).poll();
        for text in lines {
            handle::line(driver, &self.link, &text, starting);
        }
    }

    /// One poll: node messages, then the chain, mempool, fees and tick.
    fn poll(&mut self, driver: &mut Driver<ServeStore>) -> Result<(), ServeError> {
        self.node_lines(driver, false);
        let mut source = self.source.clone();
        let download = source.in_initial_download();
        let Some(download) = self.source_call(download) else {
            return Ok(());
        };
        if download != self.in_download {
            self.in_download = download;
            if download {
                tracing::info!("the chain source is in initial block download: waiting");
            } else {
                tracing::info!("the chain source finished initial block download");
            }
        }
        if download {
            return Ok(());
        }
        if !self.chain_call(driver.sync())? || !self.chain_call(driver.sync_mempool())? {
            return Ok(());
        }
        if self.fees_read.is_none_or(|at| at.elapsed() >= FEE_POLL) {
            let fees = source.fee_conditions();
            if let Some(fees) = self.source_call(fees) {
                self.fees_read = Some(Instant::now());
                if let Some(fees) = fees.filter(|f| self.fees.as_ref() != Some(f)) {
                    self.fees = Some(fees.clone());
                    self.chain_call(driver.feed(Event::FeeConditions(fees)))?;
                }
            }
        }
        let now = unix_now();
        if now >= self.last_tick.saturating_add(TICK_SECS) {
            self.last_tick = now;
            self.chain_call(driver.feed(Event::Tick { unix_secs: now }))?;
        }
        Ok(())
    }

    /// A driver call's outcome: `Ok(true)` if it went through, `Ok(false)` after a chain source
    /// failure (backoff), an error if the store is unusable. Other failures are logged: the
    /// engine re-emits what did not run.
    fn chain_call<T>(&mut self, result: Result<T, DriverError>) -> Result<bool, ServeError> {
        match result {
            Ok(_) => {
                self.recovered();
                Ok(true)
            }
            Err(DriverError {
                kind: DriverErrorKind::Chain(e),
                ..
            }) => {
                self.failed(&e);
                Ok(false)
            }
            Err(DriverError {
                kind: DriverErrorKind::Load(e),
                ..
            }) => Err(ServeError::Store(e.to_string())),
            Err(DriverError {
                kind: DriverErrorKind::Records(e),
                ..
            }) => Err(ServeError::Store(e.to_string())),
            // Another `serve` took the store over: this one must stop (it can write nothing).
            Err(DriverError {
                kind:
                    DriverErrorKind::Commit(e @ StoreError::Fenced { .. })
                    | DriverErrorKind::Recorder(e @ StoreError::Fenced { .. }),
                ..
            }) => Err(ServeError::Store(e.to_string())),
            Err(e) => {
                tracing::warn!(error = %e, "driver step failed; continuing");
                Ok(true)
            }
        }
    }

    /// A direct source call's value, or `None` after a failure (backoff).
    fn source_call<T>(&mut self, result: Result<T, SourceError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.failed(&e);
                None
            }
        }
    }

    fn recovered(&mut self) {
        if let Some(outage) = self.outage.take() {
            tracing::info!(
                secs = outage.since.elapsed().as_secs(),
                "chain source reachable again"
            );
        }
    }

    fn failed(&mut self, e: &SourceError) {
        let max = self.config.max_backoff;
        let outage = self.outage.get_or_insert(Outage {
            since: Instant::now(),
            wait: Duration::ZERO,
            alerted: false,
        });
        outage.wait = (outage.wait * 2)
            .max(Duration::from_millis(100))
            .min(max.max(Duration::from_millis(100)));
        tracing::warn!(error = %e, retry_ms = outage.wait.as_millis() as u64, "chain source unreachable");
        if !outage.alerted && outage.since.elapsed() >= self.config.outage_alert {
            outage.alerted = true;
            let message = format!(
                "the chain source has been unreachable for {} s: {e}",
                outage.since.elapsed().as_secs()
            );
            tracing::error!(%message, "chain source outage");
            lock(&self.link).notify(&Outbound::Alert {
                kind: "chain_source_outage".into(),
                message,
            });
        }
    }
}
