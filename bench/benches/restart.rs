//! Benchmark 5: Restart: 10k and 100k channels (10 HTLCs each) stored in SQLite; open the store
//! (which verifies every record's checksum), load every record, rebuild the engine as the drivers
//! do (`engine_from_records`: the channels decoded on every core) and feed `Resumed`. Also
//! recorded, once per size: the time of each phase, the peak memory above what the process held
//! before, and the bytes stored per channel and per HTLC. With `CONTRACTCOURT_TEST_POSTGRES` set
//! (a PostgreSQL connection string), the same sizes also from the PostgreSQL store
//! (`restart_postgres`: connect, take the lease, load every record verified, rebuild, resume;
//! each phase recorded once per size, criterion's timing at 10k only).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use contractcourt_bench::fixture::{config, start_tip, Layout, Template};
use contractcourt_bench::report::{peak_rss_bytes, record, reset_peak, rss_bytes};
use contractcourt_core::action::{Batch, RecordKey, RecordOp};
use contractcourt_core::chain::ChainArbitrator;
use contractcourt_core::event::Event;
use contractcourt_sync::driver::{engine_from_records, hydrate_for, load_engine_lazily};
use contractcourt_sync::store::{PostgresConfig, PostgresStore, SqliteStore, Store};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

/// The channel counts measured: 10k and 100k; `CONTRACTCOURT_RESTART_SIZES=1000,10000` picks
/// others (a quick profile, a scaling curve).
fn sizes() -> Vec<u64> {
    std::env::var("CONTRACTCOURT_RESTART_SIZES")
        .ok()
        .and_then(|v| v.split(',').map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000])
}

fn remove(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn file_bytes(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(PathBuf::from(p)).map_or(0, |m| m.len())
        })
        .sum()
}

/// Write the node records (header and recent blocks) and copies `0..n` into a new store at
/// `path`, 5,000 channels per transaction.
fn write_store(template: &Template, n: u64, path: &Path) {
    remove(path);
    fill(&mut SqliteStore::open(path).expect("open"), template, n);
}

/// Write the node records and copies `0..n` into `store`, 5,000 channels per transaction.
fn fill(store: &mut impl Store, template: &Template, n: u64) {
    let put = |key: RecordKey, record| RecordOp::Put { key, record };
    let node: Vec<RecordOp> = template
        .store
        .records
        .iter()
        .filter(|(k, _)| matches!(k, RecordKey::Node | RecordKey::Block { .. }))
        .map(|(k, r)| put(k.clone(), r.clone()))
        .collect();
    if !node.is_empty() {
        store.commit(&Batch { ops: node }).expect("commit");
    }
    let mut i = 0;
    while i < n {
        let end = (i + 5_000).min(n);
        let mut ops = Vec::new();
        for c in i..end {
            let copy = template.copy(c);
            for (key, record) in template.records(&copy).expect("records") {
                ops.push(put(key, record));
            }
        }
        store.commit(&Batch { ops }).expect("commit");
        i = end;
    }
}

/// Open, load, rebuild, resume: the engine a restarted driver would run.
fn restart(path: &Path) -> ChainArbitrator {
    let store = SqliteStore::open(path).expect("open");
    let records = store.load().expect("load");
    let mut arb = engine_from_records(&config(), records).expect("from records");
    let tip = arb.tip();
    arb.step(&Event::Resumed { tip }).expect("resumed");
    arb
}

/// A way to restart from a store file.
type Restart = fn(&Path) -> ChainArbitrator;

/// [`restart`] as the drivers do it (issue 18): loaded lazily, quiet open channels dormant, and
/// the channels `Resumed` needs decoded from the store first.
fn restart_lazily(path: &Path) -> ChainArbitrator {
    let store = SqliteStore::open(path).expect("open");
    let mut arb = load_engine_lazily(&config(), &store).expect("lazy load");
    let resumed = Event::Resumed { tip: arb.tip() };
    hydrate_for(&mut arb, &store, &resumed).expect("hydrate");
    arb.step(&resumed).expect("resumed");
    arb
}

/// Bytes of a channel's keyed records as stored (key and body, JSON).
fn record_bytes(template: &Template) -> usize {
    let copy = template.copy(0);
    template
        .records(&copy)
        .expect("records")
        .iter()
        .map(|(k, r)| {
            serde_json::to_string(k).map_or(0, |s| s.len())
                + serde_json::to_string(&r.body).map_or(0, |s| s.len())
        })
        .sum()
}

/// A restart's peak memory above the baseline and what stays resident after it, in MiB, under
/// `<prefix>/<n>/`.
fn record_memory(prefix: &str, n: u64, peak: u64, kept: u64) {
    let mib = |bytes: u64| bytes as f64 / 1048576.0;
    record(&format!("{prefix}/{n}/peak_mib"), mib(peak), "MiB");
    record(&format!("{prefix}/{n}/resident_mib"), mib(kept), "MiB");
}

/// Once, in a process of its own (memory is measured from a clean baseline): each phase of a
/// restart that decodes every channel, and memory.
fn once_full(path: &Path, n: u64) {
    reset_peak();
    let before = rss_bytes().unwrap_or(0);
    let t = Instant::now();
    let store = SqliteStore::open(path).expect("open");
    let opened = t.elapsed();
    let records = store.load().expect("load");
    let loaded = t.elapsed();
    let mut arb = engine_from_records(&config(), records).expect("from records");
    let built = t.elapsed();
    let tip = arb.tip();
    assert_eq!(tip, Some(start_tip()));
    let actions = arb.step(&Event::Resumed { tip }).expect("resumed");
    let resumed = t.elapsed();
    let peak = peak_rss_bytes().unwrap_or(0).saturating_sub(before);
    let kept = rss_bytes().unwrap_or(0).saturating_sub(before);
    assert_eq!(arb.channels().count() as u64, n);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    record(&format!("restart/{n}/open_ms"), ms(opened), "ms");
    record(&format!("restart/{n}/load_ms"), ms(loaded - opened), "ms");
    record(
        &format!("restart/{n}/from_records_ms"),
        ms(built - loaded),
        "ms",
    );
    record(
        &format!("restart/{n}/resumed_ms"),
        ms(resumed - built),
        "ms",
    );
    record(&format!("restart/{n}/total_ms"), ms(resumed), "ms");
    record_memory("restart", n, peak, kept);
    record(
        &format!("restart/{n}/resumed_actions"),
        actions.len() as f64,
        "actions",
    );
    drop((actions, arb, store));
}

/// Once, in a process of its own: the restart as the drivers run it (lazily), and memory.
fn once_lazy(path: &Path, n: u64) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    reset_peak();
    let before = rss_bytes().unwrap_or(0);
    let t = Instant::now();
    let store = SqliteStore::open(path).expect("open");
    let opened = t.elapsed();
    let mut arb = load_engine_lazily(&config(), &store).expect("lazy load");
    let built = t.elapsed();
    let resumed = Event::Resumed { tip: arb.tip() };
    hydrate_for(&mut arb, &store, &resumed).expect("hydrate");
    let actions = arb.step(&resumed).expect("resumed");
    let lazy_total = t.elapsed();
    let peak = peak_rss_bytes().unwrap_or(0).saturating_sub(before);
    let kept = rss_bytes().unwrap_or(0).saturating_sub(before);
    assert_eq!(
        (arb.channels().count() + arb.dormant_count()) as u64,
        n,
        "every channel, decoded or dormant"
    );
    record(&format!("restart_lazy/{n}/open_ms"), ms(opened), "ms");
    record(
        &format!("restart_lazy/{n}/load_lazily_ms"),
        ms(built - opened),
        "ms",
    );
    record(&format!("restart_lazy/{n}/total_ms"), ms(lazy_total), "ms");
    record_memory("restart_lazy", n, peak, kept);
    record(
        &format!("restart_lazy/{n}/dormant_channels"),
        arb.dormant_count() as f64,
        "channels",
    );
    record(
        &format!("restart_lazy/{n}/resumed_actions"),
        actions.len() as f64,
        "actions",
    );
    drop((actions, arb, store));
}

/// Run one of the `once_*` measurements in a child process (this bench binary again, told by
/// `CONTRACTCOURT_RESTART_ONCE` what to measure): each starts from a fresh process's memory,
/// not from what the allocator kept of the other.
fn in_child(what: &str, path: &Path, n: u64) {
    let exe = std::env::current_exe().expect("the bench binary");
    let status = std::process::Command::new(exe)
        .arg("--bench")
        .env(
            "CONTRACTCOURT_RESTART_ONCE",
            format!("{what}:{n}:{}", path.display()),
        )
        .status()
        .expect("child");
    assert!(status.success(), "restart measurement {what} at {n} failed");
}

/// In a child started by [`in_child`]: run its measurement and exit.
fn child_measurement() {
    let Ok(job) = std::env::var("CONTRACTCOURT_RESTART_ONCE") else {
        return;
    };
    let mut parts = job.splitn(3, ':');
    let (what, n, path) = (parts.next(), parts.next(), parts.next());
    let n: u64 = n.and_then(|n| n.parse().ok()).expect("a channel count");
    let path = PathBuf::from(path.expect("a store path"));
    match what {
        Some("full") => once_full(&path, n),
        Some("lazy") => once_lazy(&path, n),
        other => panic!("unknown restart measurement {other:?}"),
    }
    std::process::exit(0);
}

fn bench_restart(c: &mut Criterion) {
    child_measurement();
    let template = Template::new(config(), Layout::idle(5, 5)).expect("template");
    let bare = Template::new(config(), Layout::idle(0, 0)).expect("template");
    let (with_htlcs, without) = (record_bytes(&template), record_bytes(&bare));
    record("restart/record_bytes_per_channel", with_htlcs as f64, "B");
    record(
        "restart/record_bytes_per_channel_no_htlcs",
        without as f64,
        "B",
    );
    record(
        "restart/record_bytes_per_htlc",
        (with_htlcs as f64 - without as f64) / 10.0,
        "B",
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("restart");
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let mut group = c.benchmark_group("restart");
    group.sample_size(10);
    group.sampling_mode(criterion::SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    for n in sizes() {
        let path = dir.join(format!("{n}.sqlite"));
        let start = Instant::now();
        write_store(&template, n, &path);
        println!("restart/{n}: store written in {:.1?}", start.elapsed());
        record(
            &format!("restart/{n}/file_bytes_per_channel"),
            file_bytes(&path) as f64 / n as f64,
            "B",
        );
        in_child("full", &path, n);
        in_child("lazy", &path, n);
        // 100k takes ~30 s per restart: criterion's minimum of 10 samples would add 5 minutes,
        // so that size is the single timed run above.
        if n > 10_000 {
            remove(&path);
            continue;
        }
        let ways: [(BenchmarkId, Restart); 2] = [
            (BenchmarkId::from_parameter(n), restart),
            (BenchmarkId::new("lazily", n), restart_lazily),
        ];
        for (id, run) in ways {
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        let arb = run(&path);
                        total += start.elapsed();
                        drop(arb);
                    }
                    total
                })
            });
        }
        remove(&path);
    }
    group.finish();
}

/// The restart from a PostgreSQL store, at every size (when `CONTRACTCOURT_TEST_POSTGRES` is
/// set): each phase recorded once per size, criterion's timing at 10k only (as for SQLite).
fn bench_restart_postgres(c: &mut Criterion) {
    let Ok(url) = std::env::var("CONTRACTCOURT_TEST_POSTGRES") else {
        return;
    };
    for n in sizes() {
        restart_postgres(c, &url, n);
    }
}

fn restart_postgres(c: &mut Criterion, url: &str, n: u64) {
    let mut pg = PostgresConfig::new(url.to_string());
    pg.schema = "bench_restart".into();
    let drop_schema = |pg: &PostgresConfig| {
        let mut c = postgres::Client::connect(&pg.url, postgres::NoTls).expect("postgres");
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", pg.schema))
            .expect("drop schema");
    };
    drop_schema(&pg);
    let template = Template::new(config(), Layout::idle(5, 5)).expect("template");
    let start = Instant::now();
    fill(
        &mut PostgresStore::open(pg.clone()).expect("open"),
        &template,
        n,
    );
    println!(
        "restart_postgres/{n}: store written in {:.1?}",
        start.elapsed()
    );
    let restart = |pg: &PostgresConfig| {
        let t = Instant::now();
        let store = PostgresStore::open(pg.clone()).expect("open");
        let opened = t.elapsed();
        let records = store.load().expect("load");
        let loaded = t.elapsed();
        let mut arb = engine_from_records(&config(), records).expect("from records");
        let tip = arb.tip();
        arb.step(&Event::Resumed { tip }).expect("resumed");
        assert_eq!(arb.channels().count() as u64, n);
        (opened, loaded, t.elapsed())
    };
    let (opened, loaded, total) = restart(&pg);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    record(&format!("restart_postgres/{n}/open_ms"), ms(opened), "ms");
    record(
        &format!("restart_postgres/{n}/load_ms"),
        ms(loaded - opened),
        "ms",
    );
    record(&format!("restart_postgres/{n}/total_ms"), ms(total), "ms");
    println!(
        "restart_postgres/{n}: open {:.0} ms, load {:.0} ms, total {:.0} ms",
        ms(opened),
        ms(loaded - opened),
        ms(total)
    );
    if n == 10_000 {
        let mut group = c.benchmark_group("restart_postgres");
        group.sample_size(10);
        group.sampling_mode(criterion::SamplingMode::Flat);
        group.warm_up_time(Duration::from_millis(1));
        group.measurement_time(Duration::from_secs(1));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| restart(&pg).2).sum())
        });
        group.finish();
    }
    drop_schema(&pg);
}

criterion_group!(benches, bench_restart, bench_restart_postgres);
criterion_main!(benches);
