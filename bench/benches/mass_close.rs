//! Benchmark 3: Mass force close: 500 channels (10 HTLCs each) close in one block — 250 by our
//! commitment, 250 by the peer's — among 2,500 unrelated transactions. The outgoing HTLCs have
//! expired and the incoming ones' preimages are known, so every resolver can act at once.
//!
//! Timed: the block's step alone (every close classified, every output planned, every claim built),
//! and the step plus the node answering every sign request and broadcast, one at a time in action
//! order, until the engine asks for nothing more: "every resolver's first actions out". The second
//! includes the signer (the `sim` keys, in process).

use std::time::{Duration, Instant};

use contractcourt_bench::chain::{mix, unrelated_txs, Chain, BLOCK_TXS};
use contractcourt_bench::fixture::{config, start_tip, Layout, Template, START_HEIGHT};
use contractcourt_bench::node::answer_all;
use contractcourt_bench::report::record;
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::event::{Event, PreimageSource};
use contractcourt_core::types::{HtlcDirection, HtlcKey, RawTx};
use criterion::{criterion_group, criterion_main, Criterion};

const CHANNELS: u64 = 500;

fn mass_close(c: &mut Criterion) {
    let layout = Layout {
        channel_type: ChannelType::AnchorsZeroFeeHtlc,
        funding_sat: 1_000_000,
        outgoing: 5,
        incoming: 5,
        htlc_msat: 20_000_000,
        outgoing_expiry: START_HEIGHT + 1,
        incoming_expiry: START_HEIGHT + 300,
    };
    let template = Template::new(config(), layout).expect("template");
    let (mut base, copies) = template.node(CHANNELS).expect("node");
    for h in template
        .htlcs
        .iter()
        .filter(|h| h.key.direction == HtlcDirection::Incoming)
    {
        let learned = Event::PreimageLearned {
            preimage: h.preimage,
            source: PreimageSource::Downstream {
                htlc: HtlcKey {
                    direction: HtlcDirection::Outgoing,
                    ..h.key
                },
            },
        };
        base.step(&learned).expect("preimage");
    }
    let closes: Vec<RawTx> = copies
        .iter()
        .map(|c| {
            RawTx(if c.index % 2 == 0 {
                c.local_tx.clone()
            } else {
                c.remote_tx.clone()
            })
        })
        .collect();
    let block = Event::BlockConnected(
        Chain::on(start_tip()).next(mix(&unrelated_txs(BLOCK_TXS, 0), closes)),
    );
    let signer = &template.sim.local;

    // Once, for the report: what the engine asks for.
    let mut arb = base.clone();
    let actions = arb.step(&block).expect("the block connects");
    record("mass_close/block_actions", actions.len() as f64, "actions");
    let done = answer_all(&mut arb, signer, actions);
    record("mass_close/signs", done.signs as f64, "requests");
    record("mass_close/broadcasts", done.broadcasts as f64, "txs");
    record(
        "mass_close/funding_requests",
        done.funding_requests as f64,
        "requests",
    );
    record("mass_close/answers", done.steps as f64, "steps");
    drop(arb);

    let mut group = c.benchmark_group("mass_close");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("block_step", |b| {
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
    group.bench_function("until_all_out", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut arb = base.clone();
                let start = Instant::now();
                let actions = arb.step(&block).expect("the block connects");
                let done = answer_all(&mut arb, signer, actions);
                total += start.elapsed();
                drop((done, arb));
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, mass_close);
criterion_main!(benches);
