//! Benchmark 6: Persist throughput on a SQLite file (WAL, `synchronous=FULL`): the batches of 200
//! real steps — channel updates (an HTLC added, then settled, each committed both ways) — written
//! with one transaction per step, as the driver contract requires for live steps, or grouped 10 and
//! 100 steps per transaction (`Store::commit_many`, for replays). Reported as steps per second.
//! With `CONTRACTCOURT_TEST_POSTGRES` set (a PostgreSQL connection string, as for the tests), the
//! same on the PostgreSQL store (`persist_postgres`, a schema of its own, dropped first).

use std::path::PathBuf;
use std::time::Duration;

use contractcourt_bench::fixture::{config, first_block};
use contractcourt_bench::report::record;
use contractcourt_core::action::{Action, Batch};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::ChainArbitrator;
use contractcourt_core::event::Event;
use contractcourt_core::sim::{SimChannel, SimSetup};
use contractcourt_core::types::HtlcDirection;
use contractcourt_sync::store::{PostgresConfig, PostgresStore, SqliteStore, Store};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const CYCLES: u32 = 25;

/// The `Persist` batch of every step of `CYCLES` add-and-settle cycles on one channel.
fn workload() -> Vec<Batch> {
    let mut arb = ChainArbitrator::new(config());
    let mut batches = Vec::new();
    let mut feed = |arb: &mut ChainArbitrator, e: &Event| {
        for a in arb.step(e).expect("step") {
            if let Action::Persist(b) = a {
                batches.push(b);
            }
        }
    };
    feed(&mut arb, &Event::BlockConnected(first_block()));
    let (mut sim, events) =
        SimChannel::open(SimSetup::new(3, ChannelType::AnchorsZeroFeeHtlc)).expect("open");
    for e in &events {
        feed(&mut arb, e);
    }
    let expiry = first_block().height + 1_000;
    for _ in 0..CYCLES {
        let h = sim
            .add_htlc(HtlcDirection::Outgoing, 10_000_000, expiry)
            .expect("add");
        for e in &sim.commit().expect("commit") {
            feed(&mut arb, e);
        }
        sim.settle_htlc(h.key).expect("settle");
        for e in &sim.commit().expect("commit") {
            feed(&mut arb, e);
        }
    }
    batches
}

fn persist(c: &mut Criterion) {
    let batches = workload();
    let ops: usize = batches.iter().map(|b| b.ops.len()).sum();
    let bytes: usize = batches
        .iter()
        .map(|b| serde_json::to_string(b).map_or(0, |s| s.len()))
        .sum();
    record("persist/steps", batches.len() as f64, "steps");
    record(
        "persist/ops_per_step",
        ops as f64 / batches.len() as f64,
        "ops",
    );
    record(
        "persist/bytes_per_step",
        bytes as f64 / batches.len() as f64,
        "B",
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("persist");
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let path = dir.join("store.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("store.sqlite{suffix}")));
    }
    let store = SqliteStore::open(&path).expect("open");
    measure(c, "persist", store, &batches);
    if let Ok(url) = std::env::var("CONTRACTCOURT_TEST_POSTGRES") {
        let mut pg = PostgresConfig::new(url);
        pg.schema = "bench_persist".into();
        drop_schema(&pg);
        let store = PostgresStore::open(pg.clone()).expect("open postgres");
        measure(c, "persist_postgres", store, &batches);
        drop_schema(&pg);
    }
}

/// Drop the bench's PostgreSQL schema (a run starts from an empty store).
fn drop_schema(pg: &PostgresConfig) {
    let mut c = postgres::Client::connect(&pg.url, postgres::NoTls).expect("postgres");
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", pg.schema))
        .expect("drop schema");
}

/// Commit `batches` into `store`, one step per transaction and grouped.
fn measure(c: &mut Criterion, name: &str, mut store: impl Store, batches: &[Batch]) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(batches.len() as u64));
    for per_tx in [1usize, 10, 100] {
        let name = if per_tx == 1 {
            "one_tx_per_step".to_string()
        } else {
            format!("grouped_{per_tx}")
        };
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                for chunk in batches.chunks(per_tx) {
                    if per_tx == 1 {
                        store.commit(&chunk[0]).expect("commit");
                    } else {
                        store.commit_many(chunk).expect("commit");
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, persist);
criterion_main!(benches);
