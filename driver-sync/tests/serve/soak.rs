//! A reduced soak of `contractcourt serve` (CI size; `CONTRACTCOURT_SOAK_ROUNDS=N` for a longer
//! run): against the loopback bitcoind, the reference client opens a channel every few blocks
//! and force-closes it while earlier closes are still being swept, and every block is timed.
//! Resident memory, time per block and the store's size are sampled and printed (run with
//! `--nocapture` to see the curve). Checked: every channel reaches full resolution, and
//! resident memory does not run away once warm.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::serve_kit::*;
use crate::support::{lock, LoopbackServer, Protocol};
use contractcourt_core::event::{Event, ForceCloseReason};
use contractcourt_sync::chain::embedded::TestWallet;
use contractcourt_sync::serve::protocol::{Inbound, Outbound};

/// Resident memory of `pid`, in KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The store's bytes on disk (database and write-ahead log).
fn store_bytes(dir: &Path) -> u64 {
    ["engine.sqlite", "engine.sqlite-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

struct Sample {
    height: u32,
    rss_kib: u64,
    block_ms: u128,
    store_bytes: u64,
}

#[test]
fn serve_soak_reduced_channels_open_and_close_continuously() {
    let rounds: u64 = std::env::var("CONTRACTCOURT_SOAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = scratch("soak");
    let wallet = TestWallet::new(41);
    let chain = chain_with(101, &wallet);
    let server = LoopbackServer::start(Protocol::Bitcoind, chain.clone());
    write_cookie(&dir, &server, "soak");
    let sweep = TestWallet::new(77).script_pubkey().to_hex_string();
    let start_height = lock(&chain).height();
    let start = start_height.to_string();
    let mut serve = spawn_serve(
        &dir,
        &server.url(),
        &["--sweep-script", &sweep, "--start-height", &start],
    );
    let mut node = SimNodes(BTreeMap::new());
    let mut client = connect(&dir, &mut node);
    let mut samples = Vec::new();
    let timed_block = |client: &mut _, node: &mut SimNodes, samples: &mut Vec<Sample>| {
        let started = Instant::now();
        mine(&chain, 1, &wallet);
        assert!(follows(client, &chain, node, TIMEOUT), "{}", log_of(&dir));
        samples.push(Sample {
            height: lock(&chain).height(),
            rss_kib: rss_kib(serve.id()),
            block_ms: started.elapsed().as_millis(),
            store_bytes: store_bytes(&dir),
        });
    };
    let mut channels = Vec::new();
    for round in 0..rounds {
        let (sim, events, _) = funded_channel(&chain, &wallet, 1000 + round);
        node.0.insert(sim.channel_id, sim.local.clone());
        let close = Event::ForceCloseRequested {
            channel: sim.channel_id,
            reason: ForceCloseReason::User,
        };
        for event in events.into_iter().chain([close]) {
            let reply = client.send(&Inbound::Event { event }, &mut node).unwrap();
            assert!(matches!(reply, Outbound::Ok { .. }), "{reply:?}");
        }
        channels.push(sim.channel_id);
        for _ in 0..3 {
            timed_block(&mut client, &mut node, &mut samples);
        }
    }
    // A channel fully resolved `archive_depth` blocks ago is archived (no longer listed): every
    // listed one resolved, nothing still owed, and every channel listed until it was archived.
    let resolved = |dir: &Path| {
        let state = inspect(dir);
        let all = state["channels"].as_array().cloned().unwrap_or_default();
        let t = &state["totals"];
        let owed = ["timelocked_sat", "contested_sat", "claiming_sat"]
            .iter()
            .map(|k| t[*k].as_u64().unwrap_or(u64::MAX))
            .sum::<u64>();
        // Before the chain is `archive_depth` (the default, 100) past the start, none can be.
        let young = lock(&chain).height() < start_height + 100;
        let listed = !young || all.len() == channels.len();
        listed && owed == 0 && all.iter().all(|c| c["state"] == "fully_resolved")
    };
    for _ in 0..40 {
        if resolved(&dir) {
            break;
        }
        timed_block(&mut client, &mut node, &mut samples);
    }
    assert!(resolved(&dir), "{}\n{}", inspect(&dir), log_of(&dir));

    println!("height  rss_kib  block_ms  store_bytes");
    for s in &samples {
        println!(
            "{:>6}  {:>7}  {:>8}  {:>11}",
            s.height, s.rss_kib, s.block_ms, s.store_bytes
        );
    }
    let warm = &samples[samples.len() / 3];
    let last = samples.last().expect("samples");
    let per_block = (last.store_bytes - warm.store_bytes) / u64::from(last.height - warm.height);
    println!("store growth after warm-up: {per_block} bytes per block");
    assert!(
        last.rss_kib <= warm.rss_kib * 2 + 16 * 1024,
        "resident memory ran away: {} KiB at {} after {} KiB at {}",
        last.rss_kib,
        last.height,
        warm.rss_kib,
        warm.height
    );
    serve.kill().unwrap();
    let _ = serve.wait();
}
