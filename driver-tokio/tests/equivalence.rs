//! Cross-driver equivalence: one scripted scenario — a channel opened, a force close with raw
//! broadcast rejections, restarts with missed blocks, a reorg, a refused event — run on the
//! blocking driver and on the tokio driver against the same scripted I/O gives identical
//! transcripts (step by step, errors included), identical final engines and stores, identical
//! flight recordings, and identical calls to the outside world. On both stores.

use std::sync::{Arc, Mutex, MutexGuard};

use bitcoin::Transaction;
use contractcourt_core::action::Action;
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::{ChainArbitrator, Config};
use contractcourt_core::event::{Event, ForceCloseReason};
use contractcourt_core::sim::{SimChannel, SimSetup};
use contractcourt_core::types::{BlockRef, Party};
use contractcourt_sync::driver::memory::{
    Broadcasted, MemoryChain, NoWallet, RecordingBroadcaster, RecordingNode,
};
use contractcourt_sync::driver::{replay_flight_recorder, Driver, DriverError, Io};
use contractcourt_sync::signer::{BasepointSecrets, InMemorySigner};
use contractcourt_sync::store::{MemoryStore, Records, SqliteStore, Store};
use contractcourt_tokio::{AsyncDriver, AsyncIo, AsyncSigner, Blocking};

fn lock<T>(m: &Arc<Mutex<T>>) -> MutexGuard<'_, T> {
    m.lock().unwrap()
}

/// One step of the scenario.
#[derive(Clone)]
enum Op {
    /// `sync()`: everything after the engine's locator.
    Sync,
    /// `feed(event)`.
    Feed(Event),
    /// Mine a block on the scripted chain (the driver does not see it yet).
    Mine(Vec<Transaction>),
    /// Reorganise the scripted chain: replace its top `depth` blocks with `new` empty ones.
    Reorg { depth: u32, new: usize },
    /// Answer the next broadcast with this raw rejection.
    RejectNext(&'static str),
    /// Stop the driver and start it again on the same store and I/O.
    Restart,
}

/// The scripted outside world of one run.
#[derive(Clone)]
struct World {
    chain: Arc<Mutex<MemoryChain>>,
    broadcaster: Arc<Mutex<RecordingBroadcaster>>,
    node: Arc<Mutex<RecordingNode>>,
    signer: Arc<Mutex<InMemorySigner>>,
}

impl World {
    fn new(sim: &SimChannel) -> World {
        let mut chain = MemoryChain::new(500);
        chain.mine(Vec::new());
        let mut signer = InMemorySigner::new();
        signer.add_channel(
            sim.channel_id,
            BasepointSecrets {
                funding: sim.local.funding,
                revocation: sim.local.revocation_base,
                payment: sim.local.payment_base,
                delayed_payment: sim.local.delayed_payment_base,
                htlc: sim.local.htlc_base,
            },
        );
        World {
            chain: Arc::new(Mutex::new(chain)),
            broadcaster: Arc::default(),
            node: Arc::default(),
            signer: Arc::new(Mutex::new(signer)),
        }
    }

    /// Scripted changes that happen outside the driver.
    fn apply(&self, op: &Op) {
        match op {
            Op::Mine(txs) => {
                lock(&self.chain).mine(txs.clone());
            }
            Op::Reorg { depth, new } => {
                let mut chain = lock(&self.chain);
                let tip = chain.best_tip().unwrap().height;
                chain.reorg(tip - depth, vec![Vec::new(); *new]);
            }
            Op::RejectNext(reason) => lock(&self.broadcaster).reject_next(*reason),
            Op::Sync | Op::Feed(_) | Op::Restart => {}
        }
    }

    fn sync_io(&self) -> Io {
        Io {
            signer: Box::new(self.signer.clone()),
            broadcaster: Box::new(self.broadcaster.clone()),
            wallet: Box::new(NoWallet),
            chain: Box::new(self.chain.clone()),
            node: Box::new(self.node.clone()),
        }
    }

    fn async_io(&self, native_signer: bool) -> AsyncIo {
        let signer: Box<dyn AsyncSigner> = if native_signer {
            Box::new(lock(&self.signer).clone())
        } else {
            Box::new(Blocking::shared(self.signer.clone()))
        };
        AsyncIo {
            signer,
            broadcaster: Box::new(Blocking::shared(self.broadcaster.clone())),
            wallet: Box::new(Blocking::new(NoWallet)),
            chain: Box::new(Blocking::shared(self.chain.clone())),
            node: Box::new(Blocking::shared(self.node.clone())),
        }
    }
}

/// What a driver call gave: its transcript, or its error (as text) and partial transcript.
type StepResult = Result<Vec<Action>, (String, Vec<Action>)>;

fn result(r: Result<Vec<Action>, DriverError>) -> StepResult {
    r.map_err(|e| (e.to_string(), e.transcript))
}

/// Everything observable at the end of a run.
#[derive(Debug, PartialEq)]
struct Outcome {
    steps: Vec<StepResult>,
    engine: ChainArbitrator,
    records: Records,
    recorded: Vec<Event>,
    broadcasts: Vec<Broadcasted>,
    node: Vec<Action>,
    tip: Option<BlockRef>,
}

impl Outcome {
    fn new<S: Store>(
        config: &Config,
        steps: Vec<StepResult>,
        engine: &ChainArbitrator,
        store: &S,
        world: &World,
    ) -> Outcome {
        let n = store.event_count().unwrap();
        let outcome = Outcome {
            steps,
            engine: engine.clone(),
            records: store.load().unwrap(),
            recorded: store
                .events(0, n as usize)
                .unwrap()
                .into_iter()
                .map(|(_, e)| e)
                .collect(),
            broadcasts: lock(&world.broadcaster).sent.clone(),
            node: lock(&world.node).received.clone(),
            tip: lock(&world.chain).best_tip(),
        };
        // The flight recorder replays to the same engine and the same transcript.
        let replay = replay_flight_recorder(config.clone(), store).unwrap();
        assert_eq!(replay.engine, outcome.engine);
        assert_eq!(replay.divergence, None);
        // A pruned recorder replays from its start: the transcript of the steps kept.
        let pruned = store.replay_start().unwrap().is_some();
        let live: Vec<Action> = outcome
            .steps
            .iter()
            .flat_map(|s| match s {
                Ok(t) | Err((_, t)) => t.clone(),
            })
            .collect();
        if pruned {
            assert!(live.ends_with(&replay.transcript));
            assert!(!replay.transcript.is_empty());
        } else {
            assert_eq!(replay.transcript, live);
        }
        outcome
    }
}

fn scenario() -> (SimChannel, Vec<Op>) {
    let (sim, open) = SimChannel::open(SimSetup::new(11, ChannelType::AnchorsZeroFeeHtlc)).unwrap();
    let commitment = sim.commitment_tx(Party::Local, 0).unwrap();
    let close = Event::ForceCloseRequested {
        channel: sim.channel_id,
        reason: ForceCloseReason::User,
    };
    let mut ops = vec![Op::Sync];
    ops.extend(open.into_iter().map(Op::Feed));
    ops.extend([
        Op::Feed(close.clone()),
        // Rebroadcast on each block; rejections go to the core raw.
        Op::RejectNext("txn-already-known"),
        Op::Mine(Vec::new()),
        Op::Sync,
        Op::RejectNext("min relay fee not met, 0 < 253"),
        Op::Mine(Vec::new()),
        Op::Sync,
        Op::Restart,
        // Missed while down: our commitment confirms.
        Op::Mine(vec![commitment]),
        Op::Mine(Vec::new()),
        Op::Restart,
        Op::Mine(Vec::new()),
        Op::Mine(Vec::new()),
        Op::Sync,
        // A reorg taking the commitment out, found on the core's locator.
        Op::Reorg { depth: 4, new: 5 },
        Op::Sync,
        // Refused: changes nothing, and is recorded.
        Op::Feed(Event::BlockDisconnected {
            block: BlockRef {
                height: 1,
                hash: bitcoin::BlockHash::from_byte_array([7; 32]),
            },
        }),
        Op::Restart,
    ]);
    for _ in 0..8 {
        ops.extend([Op::Mine(Vec::new()), Op::Sync]);
    }
    ops.push(Op::Feed(close));
    (sim, ops)
}

use bitcoin::hashes::Hash;

fn run_sync<S: Store>(config: &Config, store: S, sim: &SimChannel, ops: &[Op]) -> Outcome {
    let world = World::new(sim);
    let (mut driver, started) = Driver::start(config.clone(), store, world.sync_io()).unwrap();
    let mut steps = vec![Ok(started)];
    for op in ops {
        world.apply(op);
        match op {
            Op::Sync => steps.push(result(driver.sync())),
            Op::Feed(event) => steps.push(result(driver.feed(event.clone()))),
            Op::Restart => {
                let (store, io) = driver.into_parts();
                let (d, started) = Driver::start(config.clone(), store, io).unwrap();
                driver = d;
                steps.push(Ok(started));
            }
            Op::Mine(_) | Op::Reorg { .. } | Op::RejectNext(_) => {}
        }
    }
    Outcome::new(config, steps, driver.engine(), driver.store(), &world)
}

async fn run_tokio<S: Store + 'static>(
    config: &Config,
    store: S,
    sim: &SimChannel,
    ops: &[Op],
    native_signer: bool,
) -> Outcome {
    let world = World::new(sim);
    let (mut driver, started) =
        AsyncDriver::start(config.clone(), store, world.async_io(native_signer))
            .await
            .unwrap();
    let mut steps = vec![Ok(started)];
    for op in ops {
        world.apply(op);
        match op {
            Op::Sync => steps.push(result(driver.sync().await)),
            Op::Feed(event) => steps.push(result(driver.feed(event.clone()).await)),
            Op::Restart => {
                let (store, io) = driver.into_parts();
                let (d, started) = AsyncDriver::start(config.clone(), store.unwrap(), io)
                    .await
                    .unwrap();
                driver = d;
                steps.push(Ok(started));
            }
            Op::Mine(_) | Op::Reorg { .. } | Op::RejectNext(_) => {}
        }
    }
    Outcome::new(
        config,
        steps,
        driver.engine(),
        driver.store().unwrap(),
        &world,
    )
}

fn check_scenario_exercises_the_contract(outcome: &Outcome) {
    let actions: Vec<&Action> = outcome
        .steps
        .iter()
        .flat_map(|s| match s {
            Ok(t) | Err((_, t)) => t.iter(),
        })
        .collect();
    let has = |f: fn(&Action) -> bool| actions.iter().any(|a| f(a));
    assert!(has(|a| matches!(a, Action::Sign(_))));
    assert!(has(|a| matches!(a, Action::Broadcast { .. })));
    assert!(has(|a| matches!(a, Action::SyncFrom { .. })));
    assert!(outcome
        .recorded
        .iter()
        .any(|e| matches!(e, Event::BlockDisconnected { .. })));
    assert!(outcome.steps.iter().any(|s| s.is_err()), "the refusal");
    assert_eq!(
        outcome.engine.tip(),
        outcome.tip,
        "synced to the chain's tip"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_drivers_give_identical_transcripts_and_states_on_the_memory_store() {
    let (sim, ops) = scenario();
    let blocking = run_sync(&Config::default(), MemoryStore::new(), &sim, &ops);
    check_scenario_exercises_the_contract(&blocking);
    // Spawned on the runtime's workers: the driver's futures are `Send`.
    let (sim2, ops2) = (sim.clone(), ops.clone());
    let tokio = tokio::spawn(async move {
        run_tokio(&Config::default(), MemoryStore::new(), &sim2, &ops2, false).await
    })
    .await
    .unwrap();
    assert_eq!(blocking.steps.len(), tokio.steps.len());
    for (i, (a, b)) in blocking.steps.iter().zip(&tokio.steps).enumerate() {
        assert_eq!(a, b, "step {i} differs");
    }
    assert_eq!(blocking, tokio);
}

/// The scenario on both drivers, each on a fresh SQLite store: checked identical; the outcome.
async fn both_on_sqlite(config: &Config, sim: &SimChannel, ops: &[Op]) -> Outcome {
    let blocking = run_sync(config, SqliteStore::open_in_memory().unwrap(), sim, ops);
    let store = SqliteStore::open_in_memory().unwrap();
    let tokio = run_tokio(config, store, sim, ops, true).await;
    assert_eq!(blocking, tokio);
    tokio
}

#[tokio::test(flavor = "current_thread")]
async fn both_drivers_give_identical_transcripts_and_states_on_the_sqlite_store() {
    let (sim, ops) = scenario();
    let blocking = both_on_sqlite(&Config::default(), &sim, &ops).await;
    check_scenario_exercises_the_contract(&blocking);
    // The store does not change the outcome either.
    let memory = run_sync(&Config::default(), MemoryStore::new(), &sim, &ops);
    assert_eq!(blocking.steps, memory.steps);
    assert_eq!(blocking.engine, memory.engine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_driver_runs_a_failed_commit_like_the_blocking_one() {
    let (sim, ops) = scenario();
    let world = World::new(&sim);
    let mut store = MemoryStore::new();
    let (driver, _) = AsyncDriver::start(Config::default(), store.clone(), world.async_io(false))
        .await
        .unwrap();
    let (s, io) = driver.into_parts();
    store = s.unwrap();
    store.fail_next_commit();
    let mut driver = AsyncDriver::load(Config::default(), store, io)
        .await
        .unwrap();
    let before = driver.engine().clone();
    let Op::Feed(first) = &ops[1] else {
        unreachable!()
    };
    let err = driver.feed(first.clone()).await.unwrap_err();
    assert!(err.to_string().contains("commit failed"), "{err}");
    assert!(err.transcript.is_empty());
    assert_eq!(driver.engine(), &before);
    assert!(lock(&world.node).received.is_empty(), "no effect ran");
    // The next commit succeeds.
    let t = driver.feed(first.clone()).await.unwrap();
    assert!(matches!(t.last(), Some(Action::UpdatePersisted { .. })));
    assert_eq!(lock(&world.node).received.len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn the_async_driver_prunes_the_recorder_past_archive_depth_like_the_blocking_one() {
    let (sim, ops) = scenario();
    let mut config = Config::default();
    config.close.archive_depth = 6;
    assert!(Config::default().close.archive_depth > 30);
    let tokio = both_on_sqlite(&config, &sim, &ops).await;
    // Pruned: the recorder no longer holds the channel's opening, and holds one to two
    // windows of blocks.
    assert!(
        !tokio
            .recorded
            .iter()
            .any(|e| matches!(e, Event::ChannelUpdate(_))),
        "the opening was pruned"
    );
    let blocks = tokio
        .recorded
        .iter()
        .filter(|e| matches!(e, Event::BlockConnected(_)))
        .count();
    assert!((6..=2 * 6 + 1).contains(&blocks), "{blocks} blocks kept");
    // With the default window (longer than the run) the same run keeps every event.
    let store = SqliteStore::open_in_memory().unwrap();
    let unpruned = run_tokio(&Config::default(), store, &sim, &ops, true).await;
    assert!(unpruned
        .recorded
        .iter()
        .any(|e| matches!(e, Event::ChannelUpdate(_))));
    assert!(unpruned.recorded.len() > tokio.recorded.len());
}
