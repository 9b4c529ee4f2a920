//! The blocking driver: runs the core's actions against a [`Store`] and the outside world
//! ([`Io`]), exactly as `DESIGN.md` "Driver contract" says, and decides nothing.
//!
//! - **Start** ([`Driver::start`]): load every stored record into the engine (an empty store
//!   gives an empty engine; quiet open channels lazily, [`load_engine_lazily`], each decoded
//!   from the store by [`hydrate_for`] before the first step that needs it), feed `Resumed { tip }` with the chain source's tip, and follow the
//!   `SyncFrom` the core answers with: the chain source finds the fork point on the core's
//!   locator and returns the disconnections and connections, which are fed one at a time.
//! - **Feed** ([`Driver::feed`]): record the event in the store's flight recorder, step the
//!   engine, commit the step's `Persist` batch, then run the step's effects one at a time in
//!   action order, feeding each effect's result back at once, depth first (see [`agenda`] for the
//!   exact order). Returns the transcript: every action of every step, in step order.
//! - **Refusal**: an event the core refuses is returned as [`DriverErrorKind::Refused`] and
//!   changes nothing (it stays in the flight recorder, as fed).
//! - **Commit failure**: none of that step's effects runs; the engine is reloaded from the store
//!   (so it equals what is durable) and the error is returned. Anything a step committed earlier
//!   did not get to run is re-emitted by the core, after `Resumed` or on a later block: an error
//!   is handled like a crash between two actions ([`Driver::resume`] is the restart without a
//!   new process).
//! - **Reject reasons** and every other result go back to the core raw; the core classifies.
//!
//! [`replay_flight_recorder`] re-runs a store's recorded events through a fresh engine.

pub mod agenda;
pub mod io;
pub mod memory;
pub mod prune;
mod replay;
mod taproot_signer;

use contractcourt_core::action::{Action, Batch, Record, RecordKey};
use contractcourt_core::chain::{
    decode_channel, load_channel_lazily, ChainArbitrator, ChannelRecords, Config, DecodedChannel,
    LoadError, StepError,
};
use contractcourt_core::event::Event;
use contractcourt_core::types::ChannelId;

use crate::store::{Store, StoreError};
use agenda::{Agenda, Next};
pub use io::{Broadcaster, ChainSource, Io, NodeHandle, Signer, SourceError, Wallet};
pub use replay::{actions_digest, replay_flight_recorder, Divergence, Replay, ReplayError};

/// Why a driver call failed, with the transcript of what was done before it failed.
#[derive(Debug)]
pub struct DriverError {
    /// What went wrong.
    pub kind: DriverErrorKind,
    /// The actions of every step committed before the failure, in step order (see
    /// [`agenda`]). Their effects ran up to the failure; the rest are re-emitted by the core
    /// later (after `Resumed`, or on a block).
    pub transcript: Vec<Action>,
}

/// What went wrong in a driver call.
#[derive(Debug)]
pub enum DriverErrorKind {
    /// The core refused the event the caller fed: nothing changed.
    Refused(StepError),
    /// The core refused an event the driver fed on its own — an effect's result or a chain
    /// event from the chain source. That step changed nothing; the call stopped there.
    EventRefused {
        /// The event.
        event: Box<Event>,
        /// Why.
        error: StepError,
    },
    /// The flight recorder could not record an event, so it was not fed.
    Recorder(StoreError),
    /// A step's batch could not be committed: none of its effects ran, and the engine was
    /// reloaded from the store.
    Commit(StoreError),
    /// The store could not be read.
    Load(StoreError),
    /// The stored records do not make an engine (unknown version, malformed or orphan record).
    Records(LoadError),
    /// The chain source failed.
    Chain(SourceError),
    /// A worker the driver depends on stopped (the async driver's blocking store task).
    Worker(String),
}

impl std::fmt::Display for DriverErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverErrorKind::Refused(e) => write!(f, "event refused: {e}"),
            DriverErrorKind::EventRefused { error, .. } => {
                write!(f, "event fed by the driver refused: {error}")
            }
            DriverErrorKind::Recorder(e) => write!(f, "flight recorder: {e}"),
            DriverErrorKind::Commit(e) => {
                write!(f, "commit failed, no effect run, engine reloaded: {e}")
            }
            DriverErrorKind::Load(e) => write!(f, "loading the store: {e}"),
            DriverErrorKind::Records(e) => write!(f, "stored records: {e}"),
            DriverErrorKind::Chain(e) => write!(f, "chain source: {e}"),
            DriverErrorKind::Worker(e) => write!(f, "driver worker: {e}"),
        }
    }
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            DriverErrorKind::Refused(e) | DriverErrorKind::EventRefused { error: e, .. } => Some(e),
            DriverErrorKind::Recorder(e)
            | DriverErrorKind::Commit(e)
            | DriverErrorKind::Load(e) => Some(e),
            DriverErrorKind::Records(e) => Some(e),
            DriverErrorKind::Chain(e) => Some(e.as_ref()),
            DriverErrorKind::Worker(_) => None,
        }
    }
}

impl DriverError {
    /// An error before anything was done.
    pub fn new(kind: DriverErrorKind) -> DriverError {
        DriverError {
            kind,
            transcript: Vec::new(),
        }
    }
}

impl From<DriverErrorKind> for DriverError {
    fn from(kind: DriverErrorKind) -> Self {
        DriverError::new(kind)
    }
}

/// Load an engine from a store's records (an empty store gives an empty engine).
pub fn load_engine<S: Store + ?Sized>(
    config: &Config,
    store: &S,
) -> Result<ChainArbitrator, DriverErrorKind> {
    let records = store.load().map_err(DriverErrorKind::Load)?;
    engine_from_records(config, records)
}

/// Load an engine lazily from a store, as a driver does at start and after a failed commit: the
/// quiet open channels stay dormant (not decoded) until an event needs them, when
/// [`hydrate_for`] reads them from the store. The engine answers every event as the one
/// [`load_engine`] gives.
pub fn load_engine_lazily<S: Store + ?Sized>(
    config: &Config,
    store: &S,
) -> Result<ChainArbitrator, DriverErrorKind> {
    let records = store.load().map_err(DriverErrorKind::Load)?;
    if records.is_empty() {
        return Ok(ChainArbitrator::new(config.clone()));
    }
    ChainArbitrator::from_records_lazily_with(config.clone(), records, |channels| {
        crate::parallel::map_chunks(
            channels,
            crate::parallel::cores(),
            CHANNELS_PER_THREAD,
            |part| part.iter().map(load_channel_lazily).collect(),
        )
    })
    .map_err(DriverErrorKind::Records)
}

/// Before a step: read from `store` and give the engine each dormant channel `event` needs
/// (the core names them: [`ChainArbitrator::dormant_needed`]). On `Err` the event must not be
/// fed; the channels given before the error stay decoded, which changes no answer.
pub fn hydrate_for<S: Store + ?Sized>(
    engine: &mut ChainArbitrator,
    store: &S,
    event: &Event,
) -> Result<(), DriverErrorKind> {
    for id in engine.dormant_needed(event) {
        let records = store.load_channel(id).map_err(DriverErrorKind::Load)?;
        hydrate(engine, id, records)?;
    }
    Ok(())
}

/// Give the engine dormant channel `id` from its records as [`Store::load_channel`] returned
/// them.
pub fn hydrate(
    engine: &mut ChainArbitrator,
    id: ChannelId,
    records: Vec<(RecordKey, Record)>,
) -> Result<(), DriverErrorKind> {
    let records = ChannelRecords::from_stored(id, records).map_err(DriverErrorKind::Records)?;
    engine.hydrate(&records).map_err(DriverErrorKind::Records)
}

/// An engine from loaded records (an empty set gives an empty engine), which it consumes: each
/// channel's records are dropped once decoded.
pub fn engine_from_records(
    config: &Config,
    records: crate::store::Records,
) -> Result<ChainArbitrator, DriverErrorKind> {
    if records.is_empty() {
        return Ok(ChainArbitrator::new(config.clone()));
    }
    ChainArbitrator::from_records_with(config.clone(), records, |channels| {
        decode_channels(channels, crate::parallel::cores())
    })
    .map_err(DriverErrorKind::Records)
}

/// The channels spread over threads decode at once: the engine is the same as one decoded
/// channel by channel (`from_records_with` says so), only sooner; each channel's records are
/// dropped once it is decoded.
pub(crate) fn decode_channels(
    channels: Vec<ChannelRecords>,
    threads: usize,
) -> Vec<Result<DecodedChannel, LoadError>> {
    crate::parallel::map_chunks(channels, threads, CHANNELS_PER_THREAD, |part| {
        part.into_iter().map(|c| decode_channel(&c)).collect()
    })
}

/// The fewest channels a loading thread is given.
pub(crate) const CHANNELS_PER_THREAD: usize = 256;

/// An event's kind, for logs (its serialised `type`).
fn event_kind(event: &Event) -> String {
    serde_json::to_value(event)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "event".to_owned())
}

/// Commit a step's batches: one commit for one batch, one atomic group for several, nothing for
/// none.
pub fn commit_batches<S: Store + ?Sized>(
    store: &mut S,
    batches: &[&Batch],
) -> Result<(), StoreError> {
    match batches {
        [] => Ok(()),
        [batch] => store.commit(batch),
        many => {
            let owned: Vec<Batch> = many.iter().map(|b| (*b).clone()).collect();
            store.commit_many(&owned)
        }
    }
}

/// The blocking driver. See the [module documentation](self).
pub struct Driver<S: Store> {
    config: Config,
    engine: ChainArbitrator,
    store: S,
    io: Io,
    /// A reload after a failed commit failed too: reload before the next call.
    stale: bool,
    /// The flight recorder's window.
    pruner: prune::Pruner,
}

impl<S: Store> std::fmt::Debug for Driver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("tip", &self.engine.tip())
            .field("stale", &self.stale)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Driver<S> {
    /// Contract step 1, the load only: every stored record into the engine (an empty store
    /// gives an empty engine), the quiet open channels lazily ([`load_engine_lazily`]).
    /// Nothing is fed; [`Driver::resume`] does that.
    pub fn load(config: Config, store: S, io: Io) -> Result<Driver<S>, DriverError> {
        let engine = load_engine_lazily(&config, &store)?;
        Ok(Driver {
            config,
            engine,
            store,
            io,
            stale: false,
            pruner: prune::Pruner::default(),
        })
    }

    /// Start: [`Driver::load`], then [`Driver::resume`]. Returns the driver and the transcript
    /// of the resumption (the `SyncFrom`, the steps of the blocks it brought, and whatever the
    /// core re-emitted).
    pub fn start(
        config: Config,
        store: S,
        io: Io,
    ) -> Result<(Driver<S>, Vec<Action>), DriverError> {
        let mut driver = Driver::load(config, store, io)?;
        let transcript = driver.resume()?;
        Ok((driver, transcript))
    }

    /// Feed `Resumed { tip }`, with the chain source's tip, and follow what the core answers
    /// (`SyncFrom` first, then everything still pending). After a restart, or to recover from a
    /// failed call without restarting.
    pub fn resume(&mut self) -> Result<Vec<Action>, DriverError> {
        self.reload_if_stale()?;
        let tip = self.io.chain.tip().map_err(DriverErrorKind::Chain)?;
        self.feed(Event::Resumed { tip })
    }

    /// Feed one event and run everything it causes, in the contract's order; returns the
    /// transcript (see [`agenda`]).
    pub fn feed(&mut self, event: Event) -> Result<Vec<Action>, DriverError> {
        self.reload_if_stale()?;
        self.run(Agenda::new(vec![event]), true)
    }

    /// Ask the chain source for everything after the engine's locator (its recent blocks,
    /// newest first) and feed it, one event at a time; returns the transcript.
    pub fn sync(&mut self) -> Result<Vec<Action>, DriverError> {
        self.reload_if_stale()?;
        let events = self
            .io
            .chain
            .blocks_after(&self.engine.locator())
            .map_err(DriverErrorKind::Chain)?;
        self.run(Agenda::new(events), false)
    }

    /// Ask the chain source for the mempool's changes since the last call and feed them (a
    /// commitment or a preimage seen early); returns the transcript.
    pub fn sync_mempool(&mut self) -> Result<Vec<Action>, DriverError> {
        self.reload_if_stale()?;
        let events = self
            .io
            .chain
            .mempool_events()
            .map_err(DriverErrorKind::Chain)?;
        self.run(Agenda::new(events), false)
    }

    /// Tell the engine the wallet's confirmed balance (for its fee-reserve check), if the
    /// wallet says; returns the transcript.
    pub fn sync_wallet(&mut self) -> Result<Vec<Action>, DriverError> {
        self.reload_if_stale()?;
        let events: Vec<Event> = self
            .io
            .wallet
            .confirmed_balance()
            .map(|confirmed_sat| Event::WalletBalance { confirmed_sat })
            .into_iter()
            .collect();
        self.run(Agenda::new(events), false)
    }

    /// The engine.
    pub fn engine(&self) -> &ChainArbitrator {
        &self.engine
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The outside world.
    pub fn io(&self) -> &Io {
        &self.io
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stop: give back the store and the outside world (to start again later).
    pub fn into_parts(self) -> (S, Io) {
        (self.store, self.io)
    }

    fn reload_if_stale(&mut self) -> Result<(), DriverError> {
        if self.stale {
            self.engine = load_engine_lazily(&self.config, &self.store)?;
            self.stale = false;
        }
        Ok(())
    }

    /// Run an agenda to its end. `caller_event`: the first event is the caller's (its refusal is
    /// [`DriverErrorKind::Refused`]).
    fn run(&mut self, mut agenda: Agenda, caller_event: bool) -> Result<Vec<Action>, DriverError> {
        let mut first = caller_event;
        while let Some(next) = agenda.take_next() {
            let outcome = match next {
                Next::Feed(event) => self.step(&mut agenda, event, first),
                Next::Run(action) => self.execute(&action).map(|results| agenda.results(results)),
            };
            first = false;
            if let Err(kind) = outcome {
                return Err(DriverError {
                    kind,
                    transcript: agenda.into_transcript(),
                });
            }
        }
        Ok(agenda.into_transcript())
    }

    /// Step, then commit the step: the event as the recorder keeps it (taken before the step,
    /// from the engine's index then), the digest of its actions and its batches, in one write.
    fn step(
        &mut self,
        agenda: &mut Agenda,
        event: Event,
        first: bool,
    ) -> Result<(), DriverErrorKind> {
        hydrate_for(&mut self.engine, &self.store, &event)?;
        let recordable = self.engine.recordable(&event);
        let actions = match self.engine.step(&event) {
            Ok(actions) => actions,
            Err(error) => {
                // A refusal changed nothing: recorded with the digest of no actions.
                let recorded = recordable.unwrap_or_else(|| event.clone());
                let seq = self
                    .store
                    .commit_step(&recorded, &actions_digest(&[]), &[])
                    .map_err(DriverErrorKind::Recorder)?;
                tracing::warn!(seq, event = event_kind(&event), %error, "event refused");
                if first {
                    return Err(DriverErrorKind::Refused(error));
                }
                return Err(DriverErrorKind::EventRefused {
                    event: Box::new(event),
                    error,
                });
            }
        };
        let step = prune::StepToCommit {
            event: &event,
            recordable,
            actions: &actions,
            window: self.config.close.archive_depth,
        };
        match prune::commit_step(&mut self.store, &mut self.pruner, step) {
            Ok(seq) => {
                if tracing::enabled!(tracing::Level::DEBUG) {
                    tracing::debug!(
                        seq,
                        event = event_kind(&event),
                        actions = actions.len(),
                        "event fed"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "commit failed; engine reloaded");
                match load_engine_lazily(&self.config, &self.store) {
                    Ok(engine) => self.engine = engine,
                    Err(_) => self.stale = true,
                }
                return Err(DriverErrorKind::Commit(e));
            }
        }
        agenda.stepped(actions);
        Ok(())
    }

    /// Run one effect; returns the events that answer it.
    fn execute(&mut self, action: &Action) -> Result<Vec<Event>, DriverErrorKind> {
        tracing::trace!(?action, "effect");
        let io = &mut self.io;
        Ok(match action {
            // Committed before any effect of its step.
            Action::Persist(_) => Vec::new(),
            Action::UpdatePersisted { channel, update_id } => {
                io.node.update_persisted(*channel, *update_id);
                Vec::new()
            }
            Action::Sign(request) => vec![agenda::signed(request, io.signer.sign(request))],
            Action::FundFromWallet(request) => {
                vec![agenda::funded(request, io.wallet.fund(request))]
            }
            Action::ReleaseInputs { claim } => {
                io.wallet.release(*claim);
                Vec::new()
            }
            Action::ReadRevokedLog {
                channel,
                commitment_number,
            } => vec![Event::RevokedLogRead {
                channel: *channel,
                commitment_number: *commitment_number,
                record: self
                    .store
                    .read_log(*channel, *commitment_number)
                    .map_err(DriverErrorKind::Load)?,
            }],
            Action::Broadcast { request, tx } => {
                vec![agenda::broadcast_result(
                    *request,
                    tx,
                    io.broadcaster.broadcast(tx),
                )]
            }
            Action::BroadcastPackage {
                request,
                parent,
                child,
            } => vec![agenda::package_result(
                *request,
                child,
                io.broadcaster.broadcast_package(parent, child),
            )],
            Action::SyncFrom { locator } => io
                .chain
                .blocks_after(locator)
                .map_err(DriverErrorKind::Chain)?,
            Action::SettleUpstream { htlc, preimage } => {
                io.node.settle_upstream(*htlc, *preimage);
                Vec::new()
            }
            Action::FailUpstream { htlc, reason } => {
                io.node.fail_upstream(*htlc, reason);
                Vec::new()
            }
            Action::Report(report) => {
                io.node.report(report);
                Vec::new()
            }
        })
    }
}

#[cfg(test)]
mod load_tests {
    use super::*;
    use contractcourt_core::action::RecordKey;
    use contractcourt_core::bolt3::ChannelType;
    use contractcourt_core::sim::{SimChannel, SimSetup};
    use contractcourt_core::types::HtlcDirection;

    /// The records of an engine that registered `n` channels of both types, HTLCs both ways on
    /// every other one.
    fn records(n: u64) -> crate::store::Records {
        let mut arb = ChainArbitrator::new(Config::default());
        let (mut records, mut log) = (Default::default(), Default::default());
        for seed in 0..n {
            let ty = match seed % 2 {
                0 => ChannelType::StaticRemoteKey,
                _ => ChannelType::AnchorsZeroFeeHtlc,
            };
            let (mut sim, mut events) = SimChannel::open(SimSetup::new(seed + 1, ty)).unwrap();
            if seed % 2 == 0 {
                sim.add_htlc(HtlcDirection::Outgoing, 5_000_000, 700)
                    .unwrap();
                sim.add_htlc(HtlcDirection::Incoming, 6_000_000, 710)
                    .unwrap();
                events.extend(sim.commit().unwrap());
            }
            for event in events {
                for action in arb.step(&event).unwrap() {
                    if let Action::Persist(batch) = action {
                        batch.apply_to(&mut records, &mut log);
                    }
                }
            }
        }
        records
    }

    #[test]
    fn channels_decoded_on_several_threads_load_the_engine_one_thread_loads() {
        let n = (CHANNELS_PER_THREAD * 3 + 17) as u64;
        let records = records(n);
        let one = ChainArbitrator::from_records(Config::default(), &records).unwrap();
        assert_eq!(one.channels().count() as u64, n);
        for threads in [2, 3, 4] {
            let many =
                ChainArbitrator::from_records_with(Config::default(), records.clone(), |c| {
                    decode_channels(c, threads)
                })
                .unwrap();
            assert_eq!(many, one, "{threads} threads");
        }
        assert_eq!(
            engine_from_records(&Config::default(), records).unwrap(),
            one
        );
    }

    #[test]
    fn of_several_bad_channels_the_first_in_channel_order_is_named_whatever_the_threads() {
        let mut records = records((CHANNELS_PER_THREAD * 2) as u64);
        let headers: Vec<RecordKey> = records
            .keys()
            .filter(|k| matches!(k, RecordKey::Channel { .. }))
            .cloned()
            .collect();
        let (first, last) = (headers[3].clone(), headers[headers.len() - 2].clone());
        for key in [&first, &last] {
            let bad = contractcourt_core::action::RecordBody::from_canonical_text("7".to_string());
            records.get_mut(key).unwrap().body = bad;
        }
        for threads in [1, 2] {
            let err = ChainArbitrator::from_records_with(Config::default(), records.clone(), |c| {
                decode_channels(c, threads)
            })
            .unwrap_err();
            assert!(
                matches!(&err, LoadError::Malformed { key, .. } if *key == first.to_string()),
                "{threads} threads: {err}"
            );
        }
    }
}
