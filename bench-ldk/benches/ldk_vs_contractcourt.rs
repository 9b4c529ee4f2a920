//! Benchmark 7: Head-to-head: N channel monitors in LDK's `ChainMonitor` vs N channels in
//! contractcourt's `ChainArbitrator`, each channel with 2 HTLCs in flight (one each way),
//! static-remote-key commitments on both sides, the same blocks — 3,000 unrelated transactions, or
//! none — connected to both. N = 1,000 and 5,000. Only the block connection is timed.
//!
//! LDK is driven through `Listen::block_connected` (full blocks, as ours). Its persister keeps
//! nothing; the `ldk_serializing` rows serialise every monitor LDK asks to persist on a block (the
//! CPU share of a real persister, without I/O).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bitcoin::Transaction;
use contractcourt_bench::chain::{unrelated_txs, Chain, BLOCK_TXS};
use contractcourt_bench::fixture::{config, start_tip, Layout, Template, START_HEIGHT};
use contractcourt_bench::report::record;
use contractcourt_bench_ldk::setup;
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::types::RawTx;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

/// The sizes; `CONTRACTCOURT_LDK_SIZES=100,200` overrides them (for a quick try).
fn sizes() -> Vec<usize> {
    std::env::var("CONTRACTCOURT_LDK_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 5_000])
}

fn head_to_head(c: &mut Criterion) {
    let layout = Layout {
        channel_type: ChannelType::StaticRemoteKey,
        funding_sat: 100_000,
        outgoing: 1,
        incoming: 1,
        htlc_msat: 2_000_000,
        outgoing_expiry: START_HEIGHT + 100_000,
        incoming_expiry: START_HEIGHT + 100_040,
    };
    let template = Template::new(config(), layout).expect("template");
    let full: Vec<RawTx> = unrelated_txs(BLOCK_TXS, 0);
    let full_ldk: Vec<Transaction> = full.iter().map(|t| t.0.clone()).collect();
    let mut group = c.benchmark_group("ldk_vs_contractcourt");
    group.sample_size(10);
    group.sampling_mode(criterion::SamplingMode::Flat);
    for n in sizes() {
        let mut ldk = setup(n);
        record(
            &format!("ldk_vs_contractcourt/{n}/ldk_htlcs"),
            ldk.htlcs as f64,
            "htlcs",
        );
        let (mut ours, _) = template.node(n as u64).expect("node");
        let mut chain = Chain::on(start_tip());
        for (kind, txs) in [("full", &full), ("empty", &Vec::new())] {
            let ldk_txs: Vec<Transaction> = if txs.is_empty() {
                Vec::new()
            } else {
                full_ldk.clone()
            };
            group.warm_up_time(Duration::from_millis(200));
            group.measurement_time(Duration::from_secs(2));
            group.bench_function(BenchmarkId::new(format!("contractcourt_{kind}"), n), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let block = chain.next_event(txs.clone());
                        let start = Instant::now();
                        let actions = ours.step(&block);
                        total += start.elapsed();
                        drop(actions.expect("the block connects"));
                    }
                    total
                })
            });
            for serialize in [false, true] {
                ldk.persister.serialize.store(serialize, Ordering::Relaxed);
                let name = if serialize {
                    format!("ldk_serializing_{kind}")
                } else {
                    format!("ldk_{kind}")
                };
                // The HTLCs expire 1,000 blocks after the setup (LDK refuses farther ones), so
                // each LDK measurement connects about 50 blocks (a whole cycle of LDK's
                // persistence partitions): three blocks are timed first, and the measurement time
                // is set to what 50 blocks as fast as the fastest of them take.
                let probe = (0..3)
                    .map(|_| {
                        let (block, height) = ldk.next_block(ldk_txs.clone());
                        let start = Instant::now();
                        ldk.connect(&block, height);
                        start.elapsed()
                    })
                    .min()
                    .unwrap_or_default();
                group.warm_up_time(Duration::from_nanos(1));
                group.measurement_time((probe * 50).max(Duration::from_millis(1)));
                group.bench_function(BenchmarkId::new(name, n), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let (block, height) = ldk.next_block(ldk_txs.clone());
                            let start = Instant::now();
                            ldk.connect(&block, height);
                            total += start.elapsed();
                        }
                        total
                    })
                });
            }
        }
        let broadcasts = ldk.broadcaster.0.load(Ordering::Relaxed);
        if broadcasts > 0 {
            eprintln!("ldk_vs_contractcourt/{n}: LDK broadcast {broadcasts} transactions: a deadline was reached, the LDK numbers are not of an idle node");
        }
        record(
            &format!("ldk_vs_contractcourt/{n}/ldk_broadcasts"),
            ldk.broadcaster.0.load(Ordering::Relaxed) as f64,
            "txs",
        );
        record(
            &format!("ldk_vs_contractcourt/{n}/ldk_blocks"),
            ldk.height as f64,
            "height",
        );
        record(
            &format!("ldk_vs_contractcourt/{n}/ldk_chain_syncs"),
            ldk.persister.chain_syncs.load(Ordering::Relaxed) as f64,
            "monitors persisted",
        );
        record(
            &format!("ldk_vs_contractcourt/{n}/ldk_serialized_mib"),
            ldk.persister.bytes.load(Ordering::Relaxed) as f64 / 1048576.0,
            "MiB",
        );
    }
    group.finish();
}

criterion_group!(benches, head_to_head);
criterion_main!(benches);
