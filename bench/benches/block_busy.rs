//! Benchmark 2: Block connect on a busy node: 1k, 10k and 100k open channels with 10 HTLCs each,
//! and a block of 3,000 transactions in which 1% of the channels are closed by the peer (their
//! current commitment confirms). Each iteration starts from the same node (a clone made outside the
//! timing), so every block finds the same work: classify each close and plan every output.

use std::time::{Duration, Instant};

use contractcourt_bench::chain::{mix, unrelated_txs, Chain, BLOCK_TXS};
use contractcourt_bench::fixture::{config, start_tip, Layout, Template};
use contractcourt_bench::report::record;
use contractcourt_core::action::{Action, Report};
use contractcourt_core::event::Event;
use contractcourt_core::types::RawTx;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const SIZES: [u64; 3] = [1_000, 10_000, 100_000];

fn busy(c: &mut Criterion) {
    let template = Template::new(config(), Layout::idle(5, 5)).expect("template");
    let unrelated = unrelated_txs(BLOCK_TXS, 0);
    let mut group = c.benchmark_group("block_busy");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    for n in SIZES {
        let (base, copies) = template.node(n).expect("node");
        // Every 100th channel is closed by the peer in this block.
        let closes: Vec<RawTx> = copies
            .iter()
            .step_by(100)
            .map(|c| RawTx(c.remote_tx.clone()))
            .collect();
        let spends = closes.len();
        let block = Event::BlockConnected(Chain::on(start_tip()).next(mix(&unrelated, closes)));
        // Check once that the block does what it should: one close summary per spend.
        let mut check = base.clone();
        let actions = check.step(&block).expect("the block connects");
        let summaries = actions
            .iter()
            .filter(|a| matches!(a, Action::Report(Report::CloseSummary(_))))
            .count();
        assert_eq!(summaries, spends, "every close is recognised");
        record(&format!("block_busy/{n}/spends"), spends as f64, "closes");
        record(
            &format!("block_busy/{n}/actions"),
            actions.len() as f64,
            "actions",
        );
        drop((check, actions));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut arb = base.clone();
                    let start = Instant::now();
                    let actions = arb.step(&block);
                    total += start.elapsed();
                    drop((actions, arb));
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, busy);
criterion_main!(benches);
