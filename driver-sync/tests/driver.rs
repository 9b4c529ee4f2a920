//! The blocking driver against scripted I/O: a force close end to end in the contract's order,
//! raw reject reasons, failed commits, restarts (with missed blocks and a reorg found on the
//! core's locator), and the flight recorder's replay — on the in-memory and the SQLite store.
//! Also the in-memory signer against the `sim` keys.

#[path = "driver/mempool_record.rs"]
mod mempool_record;

use std::sync::{Arc, Mutex, MutexGuard};

use bitcoin::Transaction;
use contractcourt_core::action::{
    Action, AlertKind, Basepoint, KeyTweak, Report, SignInput, SignRequest, SigningKey,
};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::{ChainArbitrator, Config, StepError};
use contractcourt_core::event::{Block, BroadcastOutcome, Event, ForceCloseReason, SignOutcome};
use contractcourt_core::sim::{SimChannel, SimSetup};
use contractcourt_core::types::{BlockRef, ChannelId, Party, RawTx};
use contractcourt_sync::driver::memory::{
    MemoryChain, NoWallet, RecordingBroadcaster, RecordingNode,
};
use contractcourt_sync::driver::{
    load_engine, replay_flight_recorder, Driver, DriverErrorKind, Io, Wallet,
};
use contractcourt_sync::signer::{BasepointSecrets, InMemorySigner, Signer};
use contractcourt_sync::store::{MemoryStore, Records, SqliteStore, Store, StoreError};

const FIRST_HEIGHT: u32 = 500;

fn lock<T>(m: &Arc<Mutex<T>>) -> MutexGuard<'_, T> {
    m.lock().unwrap()
}

/// Our basepoint secrets for a sim channel.
fn secrets(sim: &SimChannel) -> BasepointSecrets {
    BasepointSecrets {
        funding: sim.local.funding,
        revocation: sim.local.revocation_base,
        payment: sim.local.payment_base,
        delayed_payment: sim.local.delayed_payment_base,
        htlc: sim.local.htlc_base,
    }
}

/// A signer that counts the requests it answers.
#[derive(Default)]
struct CountingSigner {
    inner: InMemorySigner,
    calls: usize,
}

impl Signer for CountingSigner {
    fn sign(&mut self, request: &SignRequest) -> SignOutcome {
        self.calls += 1;
        self.inner.sign(request)
    }
}

/// Handles on every scripted part given to a driver.
#[derive(Clone)]
struct World {
    chain: Arc<Mutex<MemoryChain>>,
    broadcaster: Arc<Mutex<RecordingBroadcaster>>,
    node: Arc<Mutex<RecordingNode>>,
    signer: Arc<Mutex<CountingSigner>>,
    wallet: BalanceWallet,
}

/// A wallet that funds nothing and reports whatever balance the test sets.
#[derive(Clone, Debug, Default)]
struct BalanceWallet(Arc<Mutex<Option<u64>>>);

impl Wallet for BalanceWallet {
    fn fund(
        &mut self,
        request: &contractcourt_core::action::FundingRequest,
    ) -> contractcourt_core::event::FundingOutcome {
        NoWallet.fund(request)
    }
    fn release(&mut self, _claim: contractcourt_core::types::ClaimId) {}
    fn confirmed_balance(&mut self) -> Option<u64> {
        *lock(&self.0)
    }
}

impl World {
    fn new() -> World {
        let mut chain = MemoryChain::new(FIRST_HEIGHT);
        chain.mine(Vec::new());
        World {
            chain: Arc::new(Mutex::new(chain)),
            broadcaster: Arc::default(),
            node: Arc::default(),
            signer: Arc::default(),
            wallet: BalanceWallet::default(),
        }
    }

    fn io(&self) -> Io {
        Io {
            signer: Box::new(self.signer.clone()),
            broadcaster: Box::new(self.broadcaster.clone()),
            wallet: Box::new(self.wallet.clone()),
            chain: Box::new(self.chain.clone()),
            node: Box::new(self.node.clone()),
        }
    }

    fn broadcasts(&self) -> Vec<Transaction> {
        lock(&self.broadcaster).txs().into_iter().cloned().collect()
    }

    fn sign_calls(&self) -> usize {
        lock(&self.signer).calls
    }
}

/// A driver with every transcript it produced, concatenated.
struct Run<S: Store> {
    driver: Driver<S>,
    world: World,
    transcript: Vec<Action>,
}

impl<S: Store> Run<S> {
    fn start(store: S, world: World) -> (Run<S>, Vec<Action>) {
        let (driver, transcript) =
            Driver::start(Config::default(), store, world.io()).unwrap_or_else(|e| panic!("{e}"));
        let run = Run {
            driver,
            world,
            transcript: transcript.clone(),
        };
        (run, transcript)
    }

    fn feed(&mut self, event: Event) -> Vec<Action> {
        let t = self
            .driver
            .feed(event)
            .unwrap_or_else(|e| panic!("feed: {e}"));
        self.transcript.extend(t.clone());
        t
    }

    fn sync(&mut self) -> Vec<Action> {
        let t = self.driver.sync().unwrap_or_else(|e| panic!("sync: {e}"));
        self.transcript.extend(t.clone());
        t
    }

    /// Stop and start again on the same store and I/O; returns the start's transcript.
    fn restart(self) -> (Run<S>, Vec<Action>) {
        let before = self.driver.engine().clone();
        let mut transcript = self.transcript;
        let (store, io) = self.driver.into_parts();
        drop(io);
        let loaded = load_engine(&Config::default(), &store).unwrap();
        assert_eq!(
            loaded,
            whole(&before, &store),
            "the store does not load back the engine"
        );
        let (mut run, started) = Run::start(store, self.world);
        transcript.extend(started.clone());
        run.transcript = transcript;
        (run, started)
    }

    fn recorded(&self) -> Vec<Event> {
        let store = self.driver.store();
        let n = store.event_count().unwrap();
        store
            .events(0, n as usize)
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }

    fn check_durable(&self) {
        let loaded = load_engine(&Config::default(), self.driver.store()).unwrap();
        let engine = whole(self.driver.engine(), self.driver.store());
        assert_eq!(loaded, engine, "store and engine differ");
    }
}

/// `engine` with every dormant channel (a driver loads lazily) decoded from `store`: what a
/// full load of the same records gives.
fn whole<S: Store>(engine: &ChainArbitrator, store: &S) -> ChainArbitrator {
    let mut whole = engine.clone();
    whole
        .hydrate_all(&store.load().unwrap())
        .expect("every dormant channel decodes");
    whole
}

/// A node at the first block with one open sim channel whose keys the signer holds.
fn opened<S: Store>(store: S) -> (Run<S>, SimChannel) {
    let world = World::new();
    let (mut run, started) = Run::start(store, world);
    // An empty engine resumes with nothing to do but write its node header.
    assert_eq!(kinds(&started), ["persist"], "{started:#?}");
    run.sync();
    assert_eq!(
        run.driver.engine().tip(),
        lock(&run.world.chain).best_tip(),
        "sync follows the chain"
    );
    let (sim, events) =
        SimChannel::open(SimSetup::new(7, ChannelType::AnchorsZeroFeeHtlc)).unwrap();
    lock(&run.world.signer)
        .inner
        .add_channel(sim.channel_id, secrets(&sim));
    for (update_id, event) in events.into_iter().enumerate() {
        let t = run.feed(event);
        assert!(matches!(t.first(), Some(Action::Persist(_))), "{t:?}");
        assert_eq!(
            t.last(),
            Some(&Action::UpdatePersisted {
                channel: sim.channel_id,
                update_id: update_id as u64
            })
        );
    }
    // The node was told each update is durable, in order.
    let acks: Vec<Action> = lock(&run.world.node).received.clone();
    assert_eq!(acks.len(), 3);
    (run, sim)
}

/// The driver passes the wallet's balance on: below the fee reserve an anchors channel needs
/// (its commitment and CPFP child at a stressed fee rate), the engine alerts; with plenty,
/// it does not.
#[test]
fn the_driver_reports_the_wallet_balance_and_the_engine_alerts_below_the_fee_reserve() {
    let (mut run, _sim) = opened(MemoryStore::default());
    let alerts = |t: &[Action]| {
        t.iter()
            .filter(|a| {
                matches!(a, Action::Report(Report::Alert(x)) if x.kind == AlertKind::FeeReserveLow)
            })
            .count()
    };
    // A wallet that says nothing: nothing is fed, nothing alerted.
    let t = run.driver.sync_wallet().unwrap();
    assert!(t.is_empty(), "{t:#?}");
    *lock(&run.world.wallet.0) = Some(1_000);
    let t = run.driver.sync_wallet().unwrap();
    assert_eq!(alerts(&t), 1, "{t:#?}");
    *lock(&run.world.wallet.0) = Some(100_000_000);
    let t = run.driver.sync_wallet().unwrap();
    assert_eq!(alerts(&t), 0, "{t:#?}");
    run.check_durable();
}

fn force_close(channel: ChannelId) -> Event {
    Event::ForceCloseRequested {
        channel,
        reason: ForceCloseReason::User,
    }
}

fn kinds(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .map(|a| match a {
            Action::Persist(_) => "persist",
            Action::UpdatePersisted { .. } => "update_persisted",
            Action::Sign(_) => "sign",
            Action::FundFromWallet(_) => "fund",
            Action::ReleaseInputs { .. } => "release",
            Action::ReadRevokedLog { .. } => "read_revoked_log",
            Action::Broadcast { .. } => "broadcast",
            Action::BroadcastPackage { .. } => "broadcast_package",
            Action::SyncFrom { .. } => "sync_from",
            Action::SettleUpstream { .. } => "settle",
            Action::FailUpstream { .. } => "fail",
            Action::Report(_) => "report",
        })
        .collect()
}

/// Force close and check the whole exchange; returns the commitment broadcast.
fn force_close_end_to_end<S: Store>(run: &mut Run<S>, sim: &SimChannel) -> Transaction {
    let recorded_before = run.recorded().len();
    let transcript = run.feed(force_close(sim.channel_id));

    // ForceCloseRequested → [Persist, Sign]; Signed → [Persist, Broadcast]; BroadcastResult → [].
    assert_eq!(
        kinds(&transcript),
        ["persist", "sign", "persist", "broadcast"],
        "{transcript:#?}"
    );
    let Action::Sign(sign) = &transcript[1] else {
        unreachable!()
    };
    let Action::Broadcast { request, tx } = &transcript[3] else {
        unreachable!()
    };
    assert_eq!(*request, sign.request);
    // Our signature, from our basepoint secret, makes the very commitment the sim signs.
    let expected = sim.commitment_tx(Party::Local, 0).unwrap();
    assert_eq!(tx.0, expected);
    assert_eq!(run.world.broadcasts(), vec![expected.clone()]);
    assert_eq!(run.world.sign_calls(), 1);

    // The flight recorder holds every event fed, in feed order, results included.
    let recorded = run.recorded();
    let fed = &recorded[recorded_before..];
    assert_eq!(fed.len(), 3);
    assert_eq!(fed[0], force_close(sim.channel_id));
    let Event::Signed {
        request: r,
        outcome,
    } = &fed[1]
    else {
        panic!("{:?}", fed[1])
    };
    assert_eq!(*r, sign.request);
    assert_eq!(
        *outcome,
        sim.local.sign(sign),
        "signer agrees with the sim's keys"
    );
    assert_eq!(
        fed[2],
        Event::BroadcastResult {
            request: *request,
            txid: expected.compute_txid(),
            outcome: BroadcastOutcome::Accepted,
        }
    );
    run.check_durable();
    expected
}

#[test]
fn force_close_runs_end_to_end_in_contract_order_on_the_memory_store() {
    let (mut run, sim) = opened(MemoryStore::new());
    force_close_end_to_end(&mut run, &sim);
}

#[test]
fn force_close_runs_end_to_end_in_contract_order_on_the_sqlite_store() {
    let (mut run, sim) = opened(SqliteStore::open_in_memory().unwrap());
    force_close_end_to_end(&mut run, &sim);
}

#[test]
fn broadcast_reject_reasons_reach_the_core_raw_and_the_core_classifies_them() {
    let (mut run, sim) = opened(MemoryStore::new());
    let known = "txn-already-known";
    let other = "min relay fee not met, 0 < 253";
    lock(&run.world.broadcaster).reject_next(known);
    let t = run.feed(force_close(sim.channel_id));
    assert_eq!(kinds(&t), ["persist", "sign", "persist", "broadcast"]);
    let recorded = run.recorded();
    assert!(matches!(
        recorded.last(),
        Some(Event::BroadcastResult { outcome: BroadcastOutcome::Rejected { reason }, .. })
            if reason == known
    ));

    // A real rejection: passed through untouched, the core raises the alert.
    lock(&run.world.broadcaster).reject_next(other);
    let t = run.sync_with_block();
    let alert = t.iter().find_map(|a| match a {
        Action::Report(Report::Alert(alert)) => Some(alert),
        _ => None,
    });
    let alert = alert.unwrap_or_else(|| panic!("no alert in {t:#?}"));
    assert_eq!(alert.kind, AlertKind::DeadlineAtRisk);
    assert!(alert.message.contains(other), "{}", alert.message);
}

impl<S: Store> Run<S> {
    /// Mine an empty block and sync it.
    fn sync_with_block(&mut self) -> Vec<Action> {
        lock(&self.world.chain).mine(Vec::new());
        self.sync()
    }
}

#[test]
fn a_failed_commit_runs_no_effect_and_the_engine_equals_the_store() {
    let (run, sim) = opened(MemoryStore::new());
    let world = run.world.clone();
    let (mut store, io) = run.driver.into_parts();
    store.fail_next_commit();
    let mut driver = Driver::load(Config::default(), store, io).unwrap();
    let before = driver.engine().clone();
    let node_before = lock(&world.node).received.len();

    let err = driver.feed(force_close(sim.channel_id)).unwrap_err();
    assert!(
        matches!(err.kind, DriverErrorKind::Commit(StoreError::Injected)),
        "{err}"
    );
    assert!(err.transcript.is_empty());
    assert_eq!(world.sign_calls(), 0, "no effect ran");
    assert!(world.broadcasts().is_empty(), "no effect ran");
    assert_eq!(lock(&world.node).received.len(), node_before);
    assert_eq!(driver.engine(), &before, "the step's changes were dropped");
    assert_eq!(
        load_engine(&Config::default(), driver.store()).unwrap(),
        whole(driver.engine(), driver.store()),
        "the engine equals the reloaded store"
    );

    // The next commit succeeds: the force close goes through.
    let t = driver.feed(force_close(sim.channel_id)).unwrap();
    assert_eq!(kinds(&t), ["persist", "sign", "persist", "broadcast"]);
}

/// A store that fails one chosen commit.
struct FailingStore {
    inner: MemoryStore,
    /// Fail the commit after this many more succeed.
    fail_after: Option<usize>,
}

impl Store for FailingStore {
    fn load(&self) -> Result<Records, StoreError> {
        self.inner.load()
    }
    fn load_channel(
        &self,
        channel: ChannelId,
    ) -> Result<
        Vec<(
            contractcourt_core::action::RecordKey,
            contractcourt_core::action::Record,
        )>,
        StoreError,
    > {
        self.inner.load_channel(channel)
    }
    fn commit(&mut self, batch: &contractcourt_core::action::Batch) -> Result<(), StoreError> {
        match self.fail_after {
            Some(0) => {
                self.fail_after = None;
                Err(StoreError::Injected)
            }
            Some(n) => {
                self.fail_after = Some(n - 1);
                self.inner.commit(batch)
            }
            None => self.inner.commit(batch),
        }
    }
    fn read_log(
        &self,
        channel: ChannelId,
        seq: u64,
    ) -> Result<Option<contractcourt_core::action::Record>, StoreError> {
        self.inner.read_log(channel, seq)
    }
    fn append_event(&mut self, event: &Event) -> Result<u64, StoreError> {
        self.inner.append_event(event)
    }
    fn events(&self, from_seq: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        self.inner.events(from_seq, limit)
    }
    fn event_count(&self) -> Result<u64, StoreError> {
        self.inner.event_count()
    }
    /// A step with records counts as one commit (a step without makes none, as before).
    fn commit_step(
        &mut self,
        event: &Event,
        step: &contractcourt_sync::store::StepDigest,
        batches: &[&contractcourt_core::action::Batch],
    ) -> Result<u64, StoreError> {
        if batches.iter().any(|b| !b.ops.is_empty()) {
            match self.fail_after {
                Some(0) => {
                    self.fail_after = None;
                    return Err(StoreError::Injected);
                }
                Some(n) => self.fail_after = Some(n - 1),
                None => {}
            }
        }
        self.inner.commit_step(event, step, batches)
    }
    fn step_digests(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, contractcourt_sync::store::StepDigest)>, StoreError> {
        self.inner.step_digests(from_seq, limit)
    }
    fn prune_recorder(&mut self, keep_from: u64, start: &Records) -> Result<(), StoreError> {
        self.inner.prune_recorder(keep_from, start)
    }
    fn replay_start(&self) -> Result<Option<(u64, Records)>, StoreError> {
        self.inner.replay_start()
    }
}

#[test]
fn a_failed_commit_of_a_result_stops_there_reloads_and_resume_finishes_the_job() {
    let (run, sim) = opened(MemoryStore::new());
    let world = run.world.clone();
    let (store, io) = run.driver.into_parts();
    let store = FailingStore {
        inner: store,
        fail_after: Some(1),
    };
    let mut driver = Driver::load(Config::default(), store, io).unwrap();

    // ForceCloseRequested commits and asks for a signature; the Signed step's commit fails.
    let err = driver.feed(force_close(sim.channel_id)).unwrap_err();
    assert!(matches!(err.kind, DriverErrorKind::Commit(_)), "{err}");
    assert_eq!(kinds(&err.transcript), ["persist", "sign"]);
    assert_eq!(world.sign_calls(), 1);
    assert!(
        world.broadcasts().is_empty(),
        "the failed step's broadcast did not run"
    );
    let reloaded = load_engine(&Config::default(), driver.store()).unwrap();
    assert_eq!(
        driver.engine(),
        &reloaded,
        "the engine equals the reloaded store"
    );
    let ch = driver.engine().channel(&sim.channel_id).unwrap();
    assert!(ch
        .force_close
        .as_ref()
        .is_some_and(|fc| fc.signed.is_none()));

    // Recovering like a restart: the core re-emits the sign request, and the close completes.
    let t = driver.resume().unwrap();
    assert_eq!(
        kinds(&t),
        ["sync_from", "sign", "persist", "broadcast"],
        "{t:#?}"
    );
    assert_eq!(
        world.broadcasts(),
        vec![sim.commitment_tx(Party::Local, 0).unwrap()]
    );
}

#[test]
fn a_refused_event_is_a_typed_error_and_changes_nothing() {
    let (mut run, _sim) = opened(MemoryStore::new());
    let before = run.driver.engine().clone();
    let tip = before.tip().unwrap();
    let stray = Block {
        height: tip.height + 1,
        hash: bitcoin::BlockHash::from_byte_array([9; 32]),
        prev_hash: bitcoin::BlockHash::from_byte_array([8; 32]),
        time: 0,
        txs: Vec::new(),
    };
    let err = run
        .driver
        .feed(Event::BlockConnected(stray.clone()))
        .unwrap_err();
    assert!(
        matches!(
            err.kind,
            DriverErrorKind::Refused(StepError::BlockDoesNotConnect { .. })
        ),
        "{err}"
    );
    assert!(err.transcript.is_empty());
    assert_eq!(run.driver.engine(), &before);
    run.check_durable();
    // It was fed, so it is in the flight recorder.
    assert_eq!(run.recorded().last(), Some(&Event::BlockConnected(stray)));
}

use bitcoin::hashes::Hash;

/// Issue 18: a restarted driver keeps a quiet open channel dormant (not decoded) and decodes it
/// from the store, through `Store::load_channel`, when a block spends its funding output: the
/// peer's close is seen as without the restart, and the store still loads back the engine.
fn a_quiet_channel_is_decoded_after_a_restart_only_when_its_funding_output_is_spent<S: Store>(
    store: S,
) {
    let (run, sim) = opened(store);
    let (mut run, _) = run.restart();
    let id = sim.channel_id;
    assert!(run.driver.engine().is_dormant(&id), "not decoded at start");
    run.sync_with_block();
    assert!(
        run.driver.engine().is_dormant(&id),
        "an idle block leaves it"
    );
    let theirs = sim
        .commitment_tx(Party::Remote, sim.remote_commitment_number())
        .unwrap();
    lock(&run.world.chain).mine(vec![theirs.clone()]);
    run.sync();
    let ch = run.driver.engine().channel(&id).expect("decoded");
    assert_eq!(
        ch.close.as_ref().map(|c| c.txid),
        Some(theirs.compute_txid()),
        "the peer's close is seen"
    );
    run.check_durable();
}

#[test]
fn a_quiet_channel_is_decoded_on_first_touch_on_the_memory_store() {
    a_quiet_channel_is_decoded_after_a_restart_only_when_its_funding_output_is_spent(
        MemoryStore::new(),
    );
}

#[test]
fn a_quiet_channel_is_decoded_on_first_touch_on_the_sqlite_store() {
    a_quiet_channel_is_decoded_after_a_restart_only_when_its_funding_output_is_spent(
        SqliteStore::open_in_memory().unwrap(),
    );
}

fn restart_scenario<S: Store>(store: S) -> Run<S> {
    let (mut run, sim) = opened(store);
    let commitment = force_close_end_to_end(&mut run, &sim);
    let locator = run.driver.engine().locator();

    // Restart with nothing missed: the same state, SyncFrom on the locator (nothing new), and
    // the pending broadcast re-emitted and run again.
    let (run, started) = run.restart();
    assert_eq!(kinds(&started), ["sync_from", "broadcast"], "{started:#?}");
    assert_eq!(started[0], Action::SyncFrom { locator });
    assert!(matches!(&started[1], Action::Broadcast { tx, .. } if tx.0 == commitment));
    assert_eq!(
        run.world.broadcasts(),
        vec![commitment.clone(), commitment.clone()]
    );

    // Down while two blocks arrive, the first confirming our commitment: the restart's SyncFrom
    // brings them, one at a time, before the pending broadcast runs.
    let (old_tip, mined) = {
        let mut chain = lock(&run.world.chain);
        let old_tip = chain.best_tip().unwrap();
        let mined = [chain.mine(vec![commitment.clone()]), chain.mine(Vec::new())];
        (old_tip, mined)
    };
    let recorded_before = run.recorded().len();
    let (run, started) = run.restart();
    assert_eq!(
        started.first().map(|a| kinds(std::slice::from_ref(a))[0]),
        Some("sync_from")
    );
    let fed = run.recorded()[recorded_before..].to_vec();
    assert!(
        matches!(fed[0], Event::Resumed { tip: Some(t) } if t == lock(&run.world.chain).best_tip().unwrap())
    );
    assert_eq!(fed[1], Event::BlockConnected(mined[0].clone()));
    assert_eq!(fed[2], Event::BlockConnected(mined[1].clone()));
    assert_eq!(run.driver.engine().tip(), lock(&run.world.chain).best_tip());
    let ch = run.driver.engine().channel(&sim.channel_id).unwrap();
    assert!(
        ch.close.is_some(),
        "the confirmed commitment closed the channel"
    );
    assert!(
        lock(&run.world.node).reports().iter().any(
            |r| matches!(r, Report::CloseSummary(s) if s.closing_txid == commitment.compute_txid())
        ),
        "the node got the close summary"
    );
    assert!(old_tip.height < run.driver.engine().tip().unwrap().height);

    // Down during a reorg that removes both blocks: the chain source finds the fork point on
    // the core's locator; the restart disconnects from the tip down, then connects the fork.
    let fork = {
        let mut chain = lock(&run.world.chain);
        chain.reorg(old_tip.height, vec![Vec::new(), Vec::new(), Vec::new()])
    };
    let engine_tip = run.driver.engine().tip().unwrap();
    let recorded_before = run.recorded().len();
    let (run, _started) = run.restart();
    let fed = run.recorded()[recorded_before..].to_vec();
    let as_ref = |b: &Block| BlockRef {
        height: b.height,
        hash: b.hash,
    };
    // Our commitment is unconfirmed again: each connected block rebroadcasts it, and that
    // broadcast's result is fed right after its block, before the next block (depth first).
    let rebroadcast = Event::BroadcastResult {
        request: sign_request(&run).request,
        txid: commitment.compute_txid(),
        outcome: BroadcastOutcome::Accepted,
    };
    assert_eq!(
        fed[1..],
        [
            Event::BlockDisconnected { block: engine_tip },
            Event::BlockDisconnected {
                block: as_ref(&mined[0])
            },
            Event::BlockConnected(fork[0].clone()),
            rebroadcast.clone(),
            Event::BlockConnected(fork[1].clone()),
            rebroadcast.clone(),
            Event::BlockConnected(fork[2].clone()),
            rebroadcast,
        ][..],
        "{fed:#?}"
    );
    assert_eq!(run.driver.engine().tip(), lock(&run.world.chain).best_tip());
    run.check_durable();
    run
}

#[test]
fn restart_reloads_the_same_state_resumes_the_pending_broadcast_and_follows_sync_from() {
    restart_scenario(MemoryStore::new());
}

#[test]
fn restart_on_the_sqlite_store() {
    restart_scenario(SqliteStore::open_in_memory().unwrap());
}

fn check_replay<S: Store>(run: &Run<S>) {
    let replay = replay_flight_recorder(Config::default(), run.driver.store()).unwrap();
    assert_eq!(
        &replay.engine,
        run.driver.engine(),
        "replay ends in the live state"
    );
    assert_eq!(
        replay.transcript, run.transcript,
        "replay gives the live transcript"
    );
    assert_eq!(replay.events, run.recorded().len() as u64);
    // Deterministic.
    let again = replay_flight_recorder(Config::default(), run.driver.store()).unwrap();
    assert_eq!(again.engine, replay.engine);
    assert_eq!(again.transcript, replay.transcript);
}

#[test]
fn the_flight_recorder_replays_to_the_same_state_and_transcript() {
    let mut run = restart_scenario(MemoryStore::new());
    // A refused event is recorded and refused again on replay.
    let bad = Event::BlockDisconnected {
        block: BlockRef {
            height: 1,
            hash: bitcoin::BlockHash::all_zeros(),
        },
    };
    assert!(run.driver.feed(bad).is_err());
    run.sync_with_block();
    check_replay(&run);
    let replay = replay_flight_recorder(Config::default(), run.driver.store()).unwrap();
    assert_eq!(replay.refused.len(), 1);
}

#[test]
fn the_flight_recorder_replays_on_the_sqlite_store() {
    let run = restart_scenario(SqliteStore::open_in_memory().unwrap());
    check_replay(&run);
}

// ---- the in-memory signer ----

/// The force close's sign request, from the recorder.
fn sign_request<S: Store>(run: &Run<S>) -> SignRequest {
    sign_request_of(&run.transcript)
}

fn sign_request_of(run_actions: &[Action]) -> SignRequest {
    run_actions
        .iter()
        .find_map(|a| match a {
            Action::Sign(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap()
}

#[test]
fn the_in_memory_signer_derives_every_key_as_bolt3_says() {
    let (sim, _) = SimChannel::open(SimSetup::new(3, ChannelType::StaticRemoteKey)).unwrap();
    let mut signer = InMemorySigner::new();
    signer.add_channel(sim.channel_id, secrets(&sim));
    assert_eq!(
        signer.channel(&sim.channel_id).unwrap().basepoints(),
        sim.local.basepoints()
    );
    let key = |basepoint, tweak| {
        signer
            .signing_key(&SigningKey::Channel {
                channel: sim.channel_id,
                basepoint,
                tweak,
            })
            .unwrap()
    };
    let point = sim.remote.per_commitment_point(4).unwrap();
    assert_eq!(
        key(Basepoint::Htlc, KeyTweak::PerCommitmentPoint { point }),
        sim.local.htlc_key(&point).unwrap()
    );
    assert_eq!(
        key(
            Basepoint::DelayedPayment,
            KeyTweak::PerCommitmentPoint { point }
        ),
        sim.local.delayed_payment_key(&point).unwrap()
    );
    assert_eq!(
        key(Basepoint::Payment, KeyTweak::None),
        sim.local.payment_base
    );
    let secret = sim.remote.per_commitment_secret(4).unwrap();
    assert_eq!(
        key(
            Basepoint::Revocation,
            KeyTweak::Revocation {
                per_commitment_secret: secret
            }
        ),
        sim.local.revocation_key(&secret).unwrap()
    );
    // A revocation tweak belongs to the revocation basepoint only.
    assert!(signer
        .signing_key(&SigningKey::Channel {
            channel: sim.channel_id,
            basepoint: Basepoint::Htlc,
            tweak: KeyTweak::Revocation {
                per_commitment_secret: secret
            },
        })
        .is_err());
}

#[test]
fn the_in_memory_signer_signs_like_the_sim_and_refuses_what_it_cannot_sign() {
    let (mut run, sim) = opened(MemoryStore::new());
    let t = run.feed(force_close(sim.channel_id));
    let request = sign_request_of(&t);
    let mut signer = InMemorySigner::new();
    // Unknown channel.
    assert!(matches!(signer.sign(&request), SignOutcome::Failed { .. }));
    signer.add_channel(sim.channel_id, secrets(&sim));
    assert_eq!(signer.sign(&request), sim.local.sign(&request));
    assert!(
        matches!(signer.sign(&request), SignOutcome::Signed { signatures, .. } if signatures.len() == 1)
    );

    // A wallet input is the wallet's to sign.
    let mut wallet = request.clone();
    wallet.inputs[0].key = SigningKey::Wallet;
    assert!(
        matches!(signer.sign(&wallet), SignOutcome::Failed { reason } if reason.contains("wallet"))
    );

    // An input that is not in the transaction, or spends another outpoint.
    let mut missing = request.clone();
    missing.inputs.push(SignInput {
        input: 5,
        ..request.inputs[0].clone()
    });
    assert!(matches!(signer.sign(&missing), SignOutcome::Failed { .. }));
    let mut other = request.clone();
    let mut tx = request.tx.0.clone();
    tx.input[0].previous_output.vout += 1;
    other.tx = RawTx(tx);
    assert!(
        matches!(signer.sign(&other), SignOutcome::Failed { reason } if reason.contains("does not spend"))
    );
}

#[test]
fn a_sign_failure_goes_back_to_the_core_which_decides() {
    let (mut run, sim) = opened(MemoryStore::new());
    lock(&run.world.signer)
        .inner
        .remove_channel(&sim.channel_id);
    let t = run.feed(force_close(sim.channel_id));
    // The refusal is fed back as Signed { Failed }; the core alerts and retries later.
    assert_eq!(kinds(&t)[..2], ["persist", "sign"], "{t:#?}");
    assert!(
        t[2..]
            .iter()
            .any(|a| matches!(a, Action::Report(Report::Alert(_)))),
        "{t:#?}"
    );
    assert!(!kinds(&t).contains(&"broadcast"), "{t:#?}");
    assert!(run.world.broadcasts().is_empty());
    assert!(matches!(
        run.recorded().last(),
        Some(Event::Signed {
            outcome: SignOutcome::Failed { .. },
            ..
        })
    ));
    // Keys back: the next block re-requests the signature and the close proceeds.
    lock(&run.world.signer)
        .inner
        .add_channel(sim.channel_id, secrets(&sim));
    let t = run.sync_with_block();
    assert!(kinds(&t).contains(&"broadcast"), "{t:#?}");
    assert_eq!(
        run.world.broadcasts(),
        vec![sim.commitment_tx(Party::Local, 0).unwrap()]
    );
}
