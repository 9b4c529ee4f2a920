//! A reduced soak of `contractcourt serve` (CI size; `CONTRACTCOURT_SOAK_ROUNDS=N` for a longer
//! run): against the loopback bitcoind, the reference client opens a channel every few blocks
//! and closes it while earlier closes are still being swept — in turn our force close, the
//! peer's force close, a breach (the peer's revoked commitment) and a cooperative close — with a
//! reorg every four channels, and every block is timed.
//! Resident memory, time per block and the store's size are sampled and printed (run with
//! `--nocapture` to see the curve). Checked: every channel reaches full resolution, and
//! resident memory does not run away once warm.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::serve_kit::*;
use crate::support::{lock, LoopbackServer, Protocol};
use contractcourt_core::action::Report;
use contractcourt_core::event::{Event, ForceCloseReason};
use contractcourt_core::sim::SimChannel;
use contractcourt_core::types::{ChannelId, HtlcDirection, Party};
use contractcourt_sync::chain::embedded::TestWallet;
use contractcourt_sync::serve::client::NodeClient;
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

/// The kinds of close the soak makes, in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Ours: the node asks for a force close.
    Ours,
    /// The peer's current commitment confirms.
    Peers,
    /// The peer's revoked commitment confirms: a breach.
    Breach,
    /// A cooperative close.
    Cooperative,
}

const KINDS: [Kind; 4] = [Kind::Ours, Kind::Peers, Kind::Breach, Kind::Cooperative];

impl Kind {
    /// The close summary's `kind`.
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "local",
            Kind::Peers => "remote",
            Kind::Breach => "breach",
            Kind::Cooperative => "cooperative",
        }
    }
}

/// Close `sim`'s channel as `kind` says: ask the engine, or put the peer's transaction in the
/// mempool.
fn close(
    client: &mut NodeClient,
    node: &mut SimNodes,
    chain: &Shared,
    sim: &SimChannel,
    kind: Kind,
) {
    let tx = match kind {
        Kind::Ours => {
            let event = Event::ForceCloseRequested {
                channel: sim.channel_id,
                reason: ForceCloseReason::User,
            };
            let reply = client.send(&Inbound::Event { event }, node).unwrap();
            assert!(matches!(reply, Outbound::Ok { .. }), "{reply:?}");
            return;
        }
        Kind::Peers => sim.commitment_tx(Party::Remote, sim.remote_commitment_number()),
        Kind::Breach => sim.commitment_tx(Party::Remote, sim.remote_commitment_number() - 1),
        Kind::Cooperative => {
            sim.cooperative_close_tx(shutdown_script(78), shutdown_script(79), 1_000)
        }
    };
    lock(chain).submit(tx.unwrap()).unwrap();
}

/// A shutdown script of a cooperative close (ours 78, the peer's 79).
fn shutdown_script(seed: u64) -> bitcoin::ScriptBuf {
    TestWallet::new(seed).script_pubkey().to_owned()
}

/// Distinct channels per close kind, from the close summaries received.
fn close_kinds(received: &[Outbound]) -> BTreeMap<String, usize> {
    let mut channels: BTreeMap<String, std::collections::BTreeSet<ChannelId>> = BTreeMap::new();
    for m in received {
        if let Outbound::Report(Report::CloseSummary(c)) = m {
            let kind = serde_json::to_value(&c.close).unwrap()["kind"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            channels.entry(kind).or_default().insert(c.channel);
        }
    }
    channels.into_iter().map(|(k, v)| (k, v.len())).collect()
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
    let mut reorgs = 0;
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
        let kind = KINDS[(round % KINDS.len() as u64) as usize];
        let (mut sim, mut events, _) = funded_channel(&chain, &wallet, 1000 + round);
        if kind == Kind::Cooperative {
            events.push(sim.shutdown(shutdown_script(78), shutdown_script(79)));
        }
        if kind == Kind::Breach {
            // A second state, so the peer's first commitment is revoked.
            sim.add_htlc(HtlcDirection::Incoming, 20_000_000, 5_000)
                .unwrap();
            events.extend(sim.commit().unwrap());
        }
        node.0.insert(sim.channel_id, sim.local.clone());
        for event in events {
            let reply = client.send(&Inbound::Event { event }, &mut node).unwrap();
            assert!(matches!(reply, Outbound::Ok { .. }), "{reply:?}");
        }
        close(&mut client, &mut node, &chain, &sim, kind);
        channels.push(sim.channel_id);
        for _ in 0..3 {
            timed_block(&mut client, &mut node, &mut samples);
        }
        if round % 500 == 499 {
            let last = samples
                .last()
                .map_or((0, 0, 0), |s: &Sample| (s.height, s.rss_kib, s.store_bytes));
            eprintln!(
                "soak: {} rounds, height/rss_kib/store_bytes {last:?}",
                round + 1
            );
        }
        if round % 4 == 3 {
            // A reorg: the round's three blocks (the close's confirmation among them) replaced
            // by four empty ones; their transactions go back to the mempool and confirm again.
            let tip = lock(&chain).height();
            lock(&chain)
                .reorg(tip - 3, vec![Vec::new(); 4], wallet.script_pubkey())
                .unwrap();
            reorgs += 1;
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
    let seen = close_kinds(&client.received);
    println!("closes by kind: {seen:?}; reorgs: {reorgs}");
    for kind in KINDS {
        let want = (rounds / KINDS.len() as u64) as usize;
        assert!(
            seen.get(kind.name()).copied().unwrap_or(0) >= want,
            "{kind:?}: {seen:?}"
        );
    }
    assert!(reorgs > 0 || rounds < 4);

    println!("height  rss_kib  block_ms  store_bytes");
    // At most about 60 rows (every one on a short run), and the last.
    let every = samples.len().div_ceil(60).max(1);
    let shown = samples
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0 || *i + 1 == samples.len())
        .map(|(_, s)| s);
    for s in shown {
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
