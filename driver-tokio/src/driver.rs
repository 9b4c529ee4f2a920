//! The async driver: the blocking driver's contract, on tokio.
//!
//! Same calls, same order, same transcript, same errors as
//! [`contractcourt_sync::driver::Driver`] — the order comes from the same
//! [`Agenda`](contractcourt_sync::driver::agenda::Agenda). The store is synchronous: every call
//! to it runs on tokio's blocking threads (`spawn_blocking`), never on an async worker; the
//! engine's steps are pure computation and run inline.

use contractcourt_core::action::Action;
use contractcourt_core::chain::{ChainArbitrator, Config};
use contractcourt_core::event::Event;
use contractcourt_sync::driver::agenda::{self, Agenda, Next};
use contractcourt_sync::driver::prune::{commit_step, Pruner, StepToCommit};
use contractcourt_sync::driver::{
    actions_digest, hydrate, load_engine_lazily, DriverError, DriverErrorKind,
};
use contractcourt_sync::store::Store;

use crate::io::{cancelled, AsyncIo};

/// The async driver. See the [crate documentation](crate) and
/// [`contractcourt_sync::driver`] for the contract.
pub struct AsyncDriver<S: Store + 'static> {
    config: Config,
    engine: ChainArbitrator,
    /// `None` only after a store call panicked (the panic was resumed in the caller).
    store: Option<S>,
    io: AsyncIo,
    /// A reload after a failed commit failed too: reload before the next call.
    stale: bool,
    /// The flight recorder's window (as the blocking driver keeps it).
    pruner: Pruner,
}

impl<S: Store + 'static> std::fmt::Debug for AsyncDriver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncDriver")
            .field("tip", &self.engine.tip())
            .field("stale", &self.stale)
            .finish_non_exhaustive()
    }
}

/// Run `f` on `store` on a blocking thread; gives the store back with the result.
async fn blocking<S, T, F>(mut store: S, f: F) -> Result<(S, T), DriverErrorKind>
where
    S: Store + 'static,
    T: Send + 'static,
    F: FnOnce(&mut S) -> T + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let out = f(&mut store);
        (store, out)
    })
    .await
    .map_err(|e| DriverErrorKind::Worker(cancelled(e)))
}

impl<S: Store + 'static> AsyncDriver<S> {
    /// Contract step 1, the load only: every stored record into the engine (an empty store
    /// gives an empty engine). Nothing is fed; [`AsyncDriver::resume`] does that.
    pub async fn load(
        config: Config,
        store: S,
        io: AsyncIo,
    ) -> Result<AsyncDriver<S>, DriverError> {
        let loading = config.clone();
        let (store, engine) = blocking(store, move |s| load_engine_lazily(&loading, s)).await?;
        Ok(AsyncDriver {
            config,
            engine: engine?,
            store: Some(store),
            io,
            stale: false,
            pruner: Pruner::default(),
        })
    }

    /// Start: [`AsyncDriver::load`], then [`AsyncDriver::resume`]; returns the driver and the
    /// resumption's transcript.
    pub async fn start(
        config: Config,
        store: S,
        io: AsyncIo,
    ) -> Result<(AsyncDriver<S>, Vec<Action>), DriverError> {
        let mut driver = AsyncDriver::load(config, store, io).await?;
        let transcript = driver.resume().await?;
        Ok((driver, transcript))
    }

    /// Feed `Resumed { tip }` with the chain source's tip and follow what the core answers.
    pub async fn resume(&mut self) -> Result<Vec<Action>, DriverError> {
        self.reload_if_stale().await?;
        let tip = self.io.chain.tip().await.map_err(DriverErrorKind::Chain)?;
        self.feed(Event::Resumed { tip }).await
    }

    /// Feed one event and run everything it causes, in the contract's order; returns the
    /// transcript.
    pub async fn feed(&mut self, event: Event) -> Result<Vec<Action>, DriverError> {
        self.reload_if_stale().await?;
        self.run(Agenda::new(vec![event]), true).await
    }

    /// Ask the chain source for everything after the engine's locator and feed it.
    pub async fn sync(&mut self) -> Result<Vec<Action>, DriverError> {
        self.reload_if_stale().await?;
        let locator = self.engine.locator();
        let events = self
            .io
            .chain
            .blocks_after(&locator)
            .await
            .map_err(DriverErrorKind::Chain)?;
        self.run(Agenda::new(events), false).await
    }

    /// Ask the chain source for the mempool's changes since the last call and feed them.
    pub async fn sync_mempool(&mut self) -> Result<Vec<Action>, DriverError> {
        self.reload_if_stale().await?;
        let events = self
            .io
            .chain
            .mempool_events()
            .await
            .map_err(DriverErrorKind::Chain)?;
        self.run(Agenda::new(events), false).await
    }

    /// Tell the engine the wallet's confirmed balance (for its fee-reserve check), if the
    /// wallet says.
    pub async fn sync_wallet(&mut self) -> Result<Vec<Action>, DriverError> {
        self.reload_if_stale().await?;
        let events: Vec<Event> = self
            .io
            .wallet
            .confirmed_balance()
            .await
            .map(|confirmed_sat| Event::WalletBalance { confirmed_sat })
            .into_iter()
            .collect();
        self.run(Agenda::new(events), false).await
    }

    /// The engine.
    pub fn engine(&self) -> &ChainArbitrator {
        &self.engine
    }

    /// The store (`None` only after a store call panicked).
    pub fn store(&self) -> Option<&S> {
        self.store.as_ref()
    }

    /// The outside world.
    pub fn io(&self) -> &AsyncIo {
        &self.io
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stop: give back the store and the outside world.
    pub fn into_parts(self) -> (Option<S>, AsyncIo) {
        (self.store, self.io)
    }

    /// Run `f` on the store on a blocking thread.
    async fn with_store<T, F>(&mut self, f: F) -> Result<T, DriverErrorKind>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        let store = self
            .store
            .take()
            .ok_or_else(|| DriverErrorKind::Worker("the store was lost to a panic".to_owned()))?;
        let (store, out) = blocking(store, f).await?;
        self.store = Some(store);
        Ok(out)
    }

    /// Before a step: the dormant channels `event` needs, read on the store's thread and given
    /// to the engine (as the blocking driver's `hydrate_for`).
    async fn hydrate_for(&mut self, event: &Event) -> Result<(), DriverErrorKind> {
        let needed = self.engine.dormant_needed(event);
        if needed.is_empty() {
            return Ok(());
        }
        let read = self
            .with_store(move |s| {
                needed
                    .into_iter()
                    .map(|id| s.load_channel(id).map(|records| (id, records)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?
            .map_err(DriverErrorKind::Load)?;
        for (id, records) in read {
            hydrate(&mut self.engine, id, records)?;
        }
        Ok(())
    }

    async fn reload(&mut self) -> Result<(), DriverErrorKind> {
        let config = self.config.clone();
        self.engine = self
            .with_store(move |s| load_engine_lazily(&config, s))
            .await??;
        Ok(())
    }

    async fn reload_if_stale(&mut self) -> Result<(), DriverError> {
        if self.stale {
            self.reload().await?;
            self.stale = false;
        }
        Ok(())
    }

    async fn run(
        &mut self,
        mut agenda: Agenda,
        caller_event: bool,
    ) -> Result<Vec<Action>, DriverError> {
        let mut first = caller_event;
        while let Some(next) = agenda.take_next() {
            let outcome = match next {
                Next::Feed(event) => self.step(&mut agenda, event, first).await,
                Next::Run(action) => match self.execute(&action).await {
                    Ok(results) => {
                        agenda.results(results);
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
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

    /// Step, then commit the step as the blocking driver does ([`commit_step`]): the event as
    /// the recorder keeps it (taken before the step), the digest of its actions and its batches,
    /// in one store write, then the recorder kept to its window of `archive_depth` blocks.
    async fn step(
        &mut self,
        agenda: &mut Agenda,
        event: Event,
        first: bool,
    ) -> Result<(), DriverErrorKind> {
        self.hydrate_for(&event).await?;
        let recordable = self.engine.recordable(&event);
        let actions = match self.engine.step(&event) {
            Ok(actions) => actions,
            Err(error) => {
                // A refusal changed nothing: recorded with the digest of no actions.
                let recorded = recordable.unwrap_or_else(|| event.clone());
                self.with_store(move |s| s.commit_step(&recorded, &actions_digest(&[]), &[]))
                    .await?
                    .map_err(DriverErrorKind::Recorder)?;
                if first {
                    return Err(DriverErrorKind::Refused(error));
                }
                return Err(DriverErrorKind::EventRefused {
                    event: Box::new(event),
                    error,
                });
            }
        };
        let mut pruner = std::mem::take(&mut self.pruner);
        let (fed, done) = (event.clone(), actions.clone());
        let window = self.config.close.archive_depth;
        let (committed, pruner) = self
            .with_store(move |s| {
                let step = StepToCommit {
                    event: &fed,
                    recordable,
                    actions: &done,
                    window,
                };
                (commit_step(s, &mut pruner, step), pruner)
            })
            .await?;
        self.pruner = pruner;
        if let Err(e) = committed {
            if self.reload().await.is_err() {
                self.stale = true;
            }
            return Err(DriverErrorKind::Commit(e));
        }
        agenda.stepped(actions);
        Ok(())
    }

    /// Run one effect; returns the events that answer it.
    async fn execute(&mut self, action: &Action) -> Result<Vec<Event>, DriverErrorKind> {
        if let Action::ReadRevokedLog {
            channel,
            commitment_number,
        } = action
        {
            let (channel, number) = (*channel, *commitment_number);
            let record = self
                .with_store(move |s| s.read_log(channel, number))
                .await?
                .map_err(DriverErrorKind::Load)?;
            return Ok(vec![Event::RevokedLogRead {
                channel,
                commitment_number: number,
                record,
            }]);
        }
        let io = &mut self.io;
        Ok(match action {
            // Committed before any effect of its step.
            Action::Persist(_) => Vec::new(),
            Action::UpdatePersisted { channel, update_id } => {
                io.node.update_persisted(*channel, *update_id).await;
                Vec::new()
            }
            Action::Sign(request) => {
                vec![agenda::signed(request, io.signer.sign(request).await)]
            }
            Action::FundFromWallet(request) => {
                vec![agenda::funded(request, io.wallet.fund(request).await)]
            }
            Action::ReleaseInputs { claim } => {
                io.wallet.release(*claim).await;
                Vec::new()
            }
            // Answered above, from the store.
            Action::ReadRevokedLog { .. } => Vec::new(),
            Action::Broadcast { request, tx } => vec![agenda::broadcast_result(
                *request,
                tx,
                io.broadcaster.broadcast(tx).await,
            )],
            Action::BroadcastPackage {
                request,
                parent,
                child,
            } => vec![agenda::package_result(
                *request,
                child,
                io.broadcaster.broadcast_package(parent, child).await,
            )],
            Action::SyncFrom { locator } => io
                .chain
                .blocks_after(locator)
                .await
                .map_err(DriverErrorKind::Chain)?,
            Action::SettleUpstream { htlc, preimage } => {
                io.node.settle_upstream(*htlc, *preimage).await;
                Vec::new()
            }
            Action::FailUpstream { htlc, reason } => {
                io.node.fail_upstream(*htlc, reason).await;
                Vec::new()
            }
            Action::Report(report) => {
                io.node.report(report).await;
                Vec::new()
            }
        })
    }
}
