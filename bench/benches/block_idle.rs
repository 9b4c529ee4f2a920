//! Benchmark 1: Block connect on an idle node: 1k, 10k and 100k open channels with 10 HTLCs each (5
//! each way), none near a deadline; every block carries 3,000 transactions that concern none of
//! them. The time per block should not grow with the number of channels.

use std::time::{Duration, Instant};

use contractcourt_bench::chain::{unrelated_txs, Chain, BLOCK_TXS};
use contractcourt_bench::fixture::{config, start_tip, Layout, Template};
use contractcourt_bench::report::record;
use contractcourt_core::action::Action;
use contractcourt_core::types::RawTx;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const SIZES: [u64; 3] = [1_000, 10_000, 100_000];

fn idle(c: &mut Criterion) {
    let template = Template::new(config(), Layout::idle(5, 5)).expect("template");
    // Eight different blocks' worth of transactions, used in turn.
    let pool: Vec<Vec<RawTx>> = (0..8).map(|s| unrelated_txs(BLOCK_TXS, s)).collect();
    let mut group = c.benchmark_group("block_idle");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let setup = Instant::now();
        let (mut arb, _) = template.node(n).expect("node");
        println!("block_idle/{n}: node built in {:.1?}", setup.elapsed());
        let mut chain = Chain::on(start_tip());
        let mut next = 0usize;
        let mut effects = 0usize;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let block = chain.next_event(pool[next % pool.len()].clone());
                    next += 1;
                    let start = Instant::now();
                    let actions = arb.step(&block);
                    total += start.elapsed();
                    let actions = actions.expect("the block connects");
                    effects += actions
                        .iter()
                        .filter(|a| !matches!(a, Action::Persist(_)))
                        .count();
                }
                total
            })
        });
        // An idle node has nothing to do: only the new block is persisted (and the oldest kept
        // one deleted).
        record(
            &format!("block_idle/{n}/effects_per_block"),
            effects as f64 / next.max(1) as f64,
            "actions",
        );
    }
    group.finish();
}

criterion_group!(benches, idle);
criterion_main!(benches);
