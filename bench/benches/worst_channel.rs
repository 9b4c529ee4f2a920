//! Benchmark 4: The worst-case channel: the peer force closes a channel carrying 483 HTLCs each way
//! (the BOLT 2 maximum). The outgoing HTLCs have expired and the incoming ones' preimages are
//! known, so all 966 HTLC outputs (and our balance) are claimable at once.
//!
//! Timed: the close block's step (classify, plan 968 outputs, the sweeper builds every claim), the
//! same plus answering every sign request and broadcast until nothing is left, and the next block's
//! step (the sweeper re-planning those inputs: bump or rebroadcast each). The channel is a real
//! `sim` channel (its own keys, signatures checked on every update).

use std::time::{Duration, Instant};

use contractcourt_bench::chain::{mix, unrelated_txs, Chain, BLOCK_TXS};
use contractcourt_bench::fixture::{config, start_tip, Layout, Template, START_HEIGHT};
use contractcourt_bench::node::answer_all;
use contractcourt_bench::report::record;
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::event::{Event, PreimageSource};
use contractcourt_core::sim::SimHtlc;
use contractcourt_core::types::{HtlcDirection, Party, RawTx};
use criterion::{criterion_group, criterion_main, Criterion};

const MAX_HTLCS: usize = 483;

fn learned(h: &SimHtlc) -> Event {
    Event::PreimageLearned {
        preimage: h.preimage,
        source: PreimageSource::Invoice { htlc: h.key },
    }
}

fn worst_channel(c: &mut Criterion) {
    let setup = Instant::now();
    let layout = Layout {
        channel_type: ChannelType::AnchorsZeroFeeHtlc,
        funding_sat: 10_000_000,
        outgoing: MAX_HTLCS,
        incoming: MAX_HTLCS,
        htlc_msat: 5_000_000,
        outgoing_expiry: START_HEIGHT + 1,
        incoming_expiry: START_HEIGHT + 300,
    };
    let template = Template::new(config(), layout).expect("template");
    let mut base = template.arb.clone();
    for h in template
        .htlcs
        .iter()
        .filter(|h| h.key.direction == HtlcDirection::Incoming)
    {
        base.step(&learned(h)).expect("preimage");
    }
    let sim = &template.sim;
    let theirs = sim
        .commitment_tx(Party::Remote, sim.remote_commitment_number())
        .expect("their commitment");
    record(
        "worst_channel/commitment_outputs",
        theirs.output.len() as f64,
        "outputs",
    );
    let mut chain = Chain::on(start_tip());
    let unrelated = unrelated_txs(BLOCK_TXS - 1, 0);
    let close = Event::BlockConnected(chain.next(mix(&unrelated, vec![RawTx(theirs)])));
    let next = Event::BlockConnected(chain.next(unrelated_txs(BLOCK_TXS, 1)));
    let signer = &sim.local;
    println!("worst_channel: setup {:.1?}", setup.elapsed());

    // Once, for the report, and the state after the close for the next-block benchmark.
    let mut closed = base.clone();
    let actions = closed.step(&close).expect("the close block connects");
    record(
        "worst_channel/close_actions",
        actions.len() as f64,
        "actions",
    );
    let done = answer_all(&mut closed, signer, actions);
    record("worst_channel/signs", done.signs as f64, "requests");
    record("worst_channel/broadcasts", done.broadcasts as f64, "txs");
    let after = closed.step(&next).expect("the next block connects");
    record("worst_channel/next_actions", after.len() as f64, "actions");
    let mut closed = base.clone();
    let actions = closed.step(&close).expect("the close block connects");
    answer_all(&mut closed, signer, actions);

    let mut group = c.benchmark_group("worst_channel");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("close_block", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut arb = base.clone();
                let start = Instant::now();
                let actions = arb.step(&close);
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
                let actions = arb.step(&close).expect("the close block connects");
                let done = answer_all(&mut arb, signer, actions);
                total += start.elapsed();
                drop((done, arb));
            }
            total
        })
    });
    group.bench_function("next_block", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut arb = closed.clone();
                let start = Instant::now();
                let actions = arb.step(&next);
                total += start.elapsed();
                drop((actions, arb));
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, worst_channel);
criterion_main!(benches);
