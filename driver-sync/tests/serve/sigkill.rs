//! `serve` killed by SIGKILL at seeded pseudo-random wall-clock moments while a force close with
//! two HTLCs resolves, and started again each time: nothing is lost (every output ends as in an
//! uninterrupted run of the same close) and no HTLC is settled or failed upstream twice (no
//! decision arrives again once the node's acknowledgement of it was committed).
//!
//! The seed is printed; `CONTRACTCOURT_SIGKILL_SEED=N` runs the same kill moments again.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::serve_kit::*;
use crate::support::{lock, LoopbackServer, Protocol};
use contractcourt_core::action::Report;
use contractcourt_core::event::{
    Event, ForceCloseReason, IncomingLeg, PreimageSource, UpstreamResolution,
};
use contractcourt_core::types::{ChannelId, HtlcDirection, HtlcKey};
use contractcourt_sync::chain::embedded::TestWallet;
use contractcourt_sync::serve::client::NodeClient;
use contractcourt_sync::serve::protocol::{Inbound, Outbound};

/// How many times `serve` is killed during the close.
pub(crate) const KILLS: u32 = 3;
/// A kill comes up to this long after a block is mined: while `serve` polls, steps, asks the
/// node to sign, broadcasts or commits.
const MAX_DELAY_MS: u64 = 150;

/// A splitmix64 stream: the kill moments of one seed.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `KILLS` kill moments of `seed` for a close that takes `blocks` blocks: each kill in its own
/// span of the blocks (each kill also skips a block).
pub(crate) fn seeded_kills(seed: u64, blocks: u32) -> Vec<Kill> {
    let span = u64::from(blocks.saturating_sub(KILLS) / KILLS).max(1);
    let mut moments = Seeded(seed);
    (0..u64::from(KILLS))
        .map(|i| Kill {
            block: (i * span + moments.below(span)) as u32,
            after_ms: moments.below(MAX_DELAY_MS),
        })
        .collect()
}

/// The seed: `CONTRACTCOURT_SIGKILL_SEED`, or the clock.
pub(crate) fn seed() -> u64 {
    std::env::var("CONTRACTCOURT_SIGKILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

/// One SIGKILL: `after_ms` after the close's block number `block` is mined.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kill {
    block: u32,
    after_ms: u64,
}

/// How a run of the close ended.
#[derive(Debug)]
pub(crate) struct Ended {
    /// Each output of the close that matters to us: what it is, its amount, its final status.
    pub(crate) outputs: Vec<(String, u64, String)>,
    /// Each HTLC decided upstream, and how.
    pub(crate) decided: BTreeMap<HtlcKey, &'static str>,
    pub(crate) restarts: usize,
    /// The blocks mined (by the loop) until full resolution.
    pub(crate) blocks: u32,
}

/// The node's side of upstream decisions: every decision received is acknowledged at once.
/// Until the engine's reply to the acknowledgement it may arrive again (delivery is at least
/// once: a reconnect re-sends what is pending); once that reply came (the acknowledgement is
/// committed), any later decision of that HTLC — on this connection or after a restart — is a
/// second settle or fail.
#[derive(Default)]
struct Upstream {
    decided: BTreeMap<HtlcKey, &'static str>,
    /// Per acknowledged HTLC: the index in the current client's `received` from which a
    /// decision of it would have come after its acknowledgement was committed.
    committed: BTreeMap<HtlcKey, usize>,
    read: usize,
}

impl Upstream {
    /// A new connection: everything it receives comes after every committed acknowledgement.
    fn reconnected(&mut self) {
        self.read = 0;
        self.committed.values_mut().for_each(|from| *from = 0);
    }

    fn ack(&mut self, client: &mut NodeClient, node: &mut SimNode<'_>) {
        while self.read < client.received.len() {
            let index = self.read;
            self.read += 1;
            let (htlc, kind) = match &client.received[index] {
                Outbound::SettleUpstream { htlc, .. } => (*htlc, "settle"),
                Outbound::FailUpstream { htlc, .. } => (*htlc, "fail"),
                _ => continue,
            };
            let first = *self.decided.entry(htlc).or_insert(kind);
            assert_eq!(first, kind, "an HTLC both settled and failed");
            if let Some(from) = self.committed.get(&htlc) {
                assert!(
                    index < *from,
                    "{htlc:?} decided ({kind}) again after its acknowledgement was committed"
                );
                continue; // sent again before the acknowledgement was committed
            }
            let resolution = if kind == "settle" {
                UpstreamResolution::Settled
            } else {
                UpstreamResolution::Failed
            };
            let ack = Inbound::Event {
                event: Event::UpstreamAcked { htlc, resolution },
            };
            let reply = client.send(&ack, node).unwrap();
            assert!(matches!(reply, Outbound::Ok { .. }), "{reply:?}");
            self.committed.insert(htlc, client.received.len());
        }
    }
}

/// How `serve` runs for a close: what starts it, kills it and reads its store.
pub(crate) trait Serving {
    /// Connect the node to the `serve` running now.
    fn connect(&mut self, node: &mut SimNode<'_>) -> NodeClient;
    /// SIGKILL the running `serve`; `meanwhile` runs while it is down; return once a `serve`
    /// runs again (started again, or a standby that took over).
    fn kill_and_recover(&mut self, meanwhile: &mut dyn FnMut());
    /// `contractcourt inspect --json` of the store.
    fn inspect(&self) -> serde_json::Value;
    /// The logs of every `serve` so far.
    fn log(&self) -> String;
    /// After full resolution, before the processes are stopped (with a way to mine a block).
    fn finish(&mut self, _mine: &mut dyn FnMut()) {}
}

/// One `serve` on a SQLite store, started again after each kill.
struct Restarted {
    dir: std::path::PathBuf,
    url: String,
    args: Vec<String>,
    serve: ServeProcess,
}

impl Restarted {
    fn start(dir: &std::path::Path, url: &str, args: Vec<String>) -> Self {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let serve = spawn_serve(dir, url, &a);
        Restarted {
            dir: dir.to_path_buf(),
            url: url.to_string(),
            args,
            serve,
        }
    }
}

impl Serving for Restarted {
    fn connect(&mut self, node: &mut SimNode<'_>) -> NodeClient {
        connect(&self.dir, node)
    }
    fn kill_and_recover(&mut self, meanwhile: &mut dyn FnMut()) {
        self.serve.kill().unwrap();
        let _ = self.serve.wait();
        meanwhile();
        let a: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.serve = spawn_serve(&self.dir, &self.url, &a);
    }
    fn inspect(&self) -> serde_json::Value {
        inspect(&self.dir)
    }
    fn log(&self) -> String {
        log_of(&self.dir)
    }
}

/// Starts the `serve`s of a close: in `dir`, following bitcoind at `url`, with `args`.
pub(crate) type Deploy<'a> = &'a dyn Fn(&std::path::Path, &str, Vec<String>) -> Box<dyn Serving>;

/// A force close with an incoming HTLC (preimage known) and an outgoing one (timed out, its
/// incoming leg failed upstream), driven by the reference client to full resolution; `serve`
/// is killed at each of `kills` and comes back (`deploy` says how).
pub(crate) fn close_with_htlcs(name: &str, kills: &[Kill], deploy: Deploy<'_>) -> Ended {
    let dir = scratch(name);
    let wallet = TestWallet::new(6);
    let chain = chain_with(101, &wallet);
    let server = LoopbackServer::start(Protocol::Bitcoind, chain.clone());
    write_cookie(&dir, &server, "c");
    let (mut sim, mut events, start) = funded_channel(&chain, &wallet, 21);
    let incoming = sim
        .add_htlc(HtlcDirection::Incoming, 40_000_000, start + 30)
        .unwrap();
    let outgoing = sim
        .add_htlc(HtlcDirection::Outgoing, 30_000_000, start + 20)
        .unwrap();
    events.extend(sim.commit().unwrap());
    let sweep = TestWallet::new(77).script_pubkey().to_hex_string();
    let start_arg = start.to_string();
    let args = ["--sweep-script", &sweep, "--start-height", &start_arg];
    let mut serving = deploy(&dir, &server.url(), args.map(String::from).to_vec());
    let node = &mut SimNode(&sim);
    let mut client = serving.connect(node);
    assert!(
        follows(&mut client, &chain, node, TIMEOUT),
        "{}",
        serving.log()
    );

    let upstream = HtlcKey {
        channel: ChannelId([9; 32]),
        htlc_id: 0,
        direction: HtlcDirection::Incoming,
    };
    let mut node_events = events.clone();
    node_events.push(Event::CircuitAdded {
        outgoing: outgoing.key,
        incoming: IncomingLeg {
            htlc: upstream,
            cltv_expiry: start + 80,
            amount_msat: 31_000_000,
        },
    });
    node_events.push(Event::PreimageLearned {
        preimage: incoming.preimage,
        source: PreimageSource::Invoice { htlc: incoming.key },
    });
    node_events.push(Event::ForceCloseRequested {
        channel: sim.channel_id,
        reason: ForceCloseReason::User,
    });
    for event in node_events {
        let reply = client.send(&Inbound::Event { event }, node).unwrap();
        assert!(matches!(reply, Outbound::Ok { .. }), "{reply:?}");
    }
    let persisted = client
        .received
        .iter()
        .filter(|m| matches!(m, Outbound::UpdatePersisted { .. }))
        .count();
    assert_eq!(persisted, events.len(), "every channel update acknowledged");
    let commitment = sim
        .commitment_tx(
            contractcourt_core::types::Party::Local,
            sim.local_commitment_number(),
        )
        .unwrap();
    let in_mempool = lock(&chain)
        .mempool_tx(&commitment.compute_txid())
        .is_some();
    assert!(in_mempool, "{}", serving.log());

    // The node goes away before the commitment confirms; what the engine says meanwhile (the
    // close summary, at least) is kept and sent after the next hello.
    drop(client);
    mine(&chain, 1, &wallet);
    let confirmed_at = lock(&chain).height();
    std::thread::sleep(Duration::from_millis(300));
    let mut client = serving.connect(node);
    client.pump(Duration::from_millis(200), node).unwrap();
    assert!(
        client.received.iter().any(|m| matches!(
            m,
            Outbound::Report(Report::CloseSummary(c))
                if c.closing_txid == commitment.compute_txid() && c.height == confirmed_at
        )),
        "the close summary made while no node was connected: {:?}",
        client.received
    );

    let mut up = Upstream::default();
    let mut restarts = 0;
    let mut resolved = None;
    for block in 0..100 {
        mine(&chain, 1, &wallet);
        if let Some(kill) = kills.iter().find(|k| k.block == block) {
            // SIGKILL while serve works on the block; a block is missed while it is down.
            std::thread::sleep(Duration::from_millis(kill.after_ms));
            drop(client);
            serving.kill_and_recover(&mut || mine(&chain, 1, &wallet));
            client = serving.connect(node);
            up.reconnected();
            restarts += 1;
        }
        assert!(
            follows(&mut client, &chain, node, TIMEOUT),
            "{}",
            serving.log()
        );
        up.ack(&mut client, node);
        let state = serving.inspect();
        let none_pending = state["pending_upstream"]
            .as_array()
            .is_some_and(Vec::is_empty);
        if state["channels"][0]["state"] == "fully_resolved" && none_pending {
            resolved = Some(block + 1);
            break;
        }
    }
    let Some(blocks) = resolved else {
        panic!("not resolved: {}\n{}", serving.inspect(), serving.log());
    };
    up.ack(&mut client, node);
    assert_eq!(
        up.decided.get(&upstream).copied(),
        Some("fail"),
        "the timed-out outgoing HTLC failed its incoming leg upstream: {:?}",
        up.decided
    );
    let state = serving.inspect();
    let mut outputs: Vec<(String, u64, String)> = state["outputs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|o| {
            let text = |k: &str| o[k].as_str().unwrap_or_default().to_owned();
            (
                text("what"),
                o["amount_sat"].as_u64().unwrap_or(0),
                text("status"),
            )
        })
        .collect();
    outputs.sort();
    drop(client);
    serving.finish(&mut || mine(&chain, 1, &wallet));
    drop(serving);
    let _ = std::fs::remove_dir_all(&dir);
    Ended {
        outputs,
        decided: up.decided,
        restarts,
        blocks,
    }
}

#[test]
fn a_node_client_drives_a_force_close_with_htlcs_to_full_resolution_across_sigkills_at_random_moments(
) {
    let seed = seed();
    println!("sigkill seed {seed} (CONTRACTCOURT_SIGKILL_SEED={seed} repeats these kills)");
    let sqlite: Deploy<'_> = &|dir, url, args| Box::new(Restarted::start(dir, url, args));
    let calm = close_with_htlcs("close-calm", &[], sqlite);
    assert!(!calm.outputs.is_empty());
    let kills = seeded_kills(seed, calm.blocks);
    println!("the close takes {} blocks; kills: {kills:?}", calm.blocks);
    let killed = close_with_htlcs("close-killed", &kills, sqlite);
    assert_eq!(
        killed.restarts, KILLS as usize,
        "seed {seed}: every kill came before resolution"
    );
    assert_eq!(
        killed.outputs, calm.outputs,
        "seed {seed}: an output ended otherwise"
    );
    assert_eq!(killed.decided, calm.decided, "seed {seed}");
}
