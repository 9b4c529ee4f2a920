//! `contractcourt serve` end to end, as real processes: against the loopback bitcoind server
//! (answering from an embedded chain, checking HTTP basic authentication), driven over its Unix
//! socket by the reference node client (`contractcourt_sync::serve::client`).
//!
//! - every kind of node message gets its reply, and a malformed or out-of-order one a typed
//!   error that changes nothing; the socket is owner-only;
//! - the chain is followed; a rewritten cookie is re-read after the 401; an unreachable node is
//!   retried (the process never exits) and alerted after the configured outage; nothing is
//!   followed while bitcoind is in initial block download; fee conditions are asked for;
//! - a force close with two HTLCs reaches full resolution, with `serve` killed by SIGKILL at
//!   seeded random moments and started again each time: nothing lost, no HTLC decided twice
//!   (`sigkill.rs`); the same on PostgreSQL with a hot standby taking over after each kill, and
//!   a frozen `serve` fenced once thawed (`failover.rs`); the PostgreSQL server restarted at
//!   seeded moments under a running `serve`, which rides through (`pg_restart.rs`); a fenced
//!   `serve` hearing only node messages exits within about a lease (`fenced.rs`).

// One test binary for `serve` (each links Bitcoin Core's kernel: ~100 MB of target dir apiece).
mod failover;
mod fenced;
#[path = "../store/pg_cluster.rs"]
mod pg_cluster;
mod pg_restart;
mod protocol_doc;
#[path = "../serve_kit/mod.rs"]
mod serve_kit;
mod sigkill;
mod soak;
mod source;
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;
use serve_kit::*;

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::event::{Event, SignOutcome};
use contractcourt_core::sim::{SimChannel, SimSetup};
use contractcourt_sync::chain::embedded::TestWallet;
use contractcourt_sync::serve::client::NodeClient;
use contractcourt_sync::serve::protocol::{ErrorCode, Inbound, Outbound};
use contractcourt_sync::store::{SqliteStore, Store};
use support::{basic_auth, lock, LoopbackServer, Protocol};

#[test]
fn serve_answers_every_node_message_and_rides_out_cookie_rotation_outages_reorgs_and_ibd() {
    let dir = scratch("protocol");
    let wallet = TestWallet::new(5);
    let chain = chain_with(101, &wallet);
    let server = LoopbackServer::start(Protocol::Bitcoind, chain.clone());
    // bitcoind has not written its cookie yet when serve starts: serve waits for it.
    *lock(&server.backend.auth) = Some(basic_auth("__cookie__", "first"));
    let mut serve = spawn_serve(&dir, &server.url(), &["--outage-alert-secs", "1"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(serve.try_wait().unwrap().is_none(), "{}", log_of(&dir));
    // Meanwhile a node is answered: welcome and pong, and its events refused until the engine
    // has resumed (nothing changes).
    {
        let a = &mut NoKeys;
        let mut early = NodeClient::connect(&dir.join("node.sock"), TIMEOUT).unwrap();
        let welcome = early.send(&Inbound::Hello { node: None }, a).unwrap();
        assert!(
            matches!(welcome, Outbound::Welcome { tip: None, .. }),
            "{welcome:?}"
        );
        let tick = Inbound::Event {
            event: Event::WalletBalance { confirmed_sat: 1 },
        };
        assert_eq!(
            error_code(&early.send(&tick, a).unwrap()),
            Some(ErrorCode::Unavailable)
        );
    }
    write_cookie(&dir, &server, "first");
    let mode = std::fs::metadata(dir.join("node.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is owner-only");

    // Before hello: typed errors, nothing else.
    let mut client = NodeClient::connect(&dir.join("node.sock"), TIMEOUT).unwrap();
    let a = &mut NoKeys;
    assert_eq!(
        error_code(&client.send_raw("not json", a).unwrap()),
        Some(ErrorCode::Malformed)
    );
    assert_eq!(
        error_code(&client.send(&Inbound::Ping, a).unwrap()),
        Some(ErrorCode::HelloFirst)
    );
    assert_eq!(
        error_code(
            &client
                .send_raw(r#"{"v":2,"id":50,"type":"hello"}"#, a)
                .unwrap()
        ),
        Some(ErrorCode::UnsupportedVersion)
    );
    let welcome = client.send(&Inbound::Hello { node: None }, a).unwrap();
    assert!(matches!(welcome, Outbound::Welcome { .. }), "{welcome:?}");
    assert!(follows(&mut client, &chain, a, TIMEOUT), "{}", log_of(&dir));

    // Events the node may not send, out-of-order updates, answers to nothing.
    let tick = Inbound::Event {
        event: Event::Tick { unix_secs: 1 },
    };
    assert_eq!(
        error_code(&client.send(&tick, a).unwrap()),
        Some(ErrorCode::NotAllowed)
    );
    let (sim, mut events) =
        SimChannel::open(SimSetup::new(3, ChannelType::StaticRemoteKey)).unwrap();
    let second = events.remove(1);
    assert_eq!(
        error_code(&client.send(&Inbound::Event { event: second }, a).unwrap()),
        Some(ErrorCode::Refused),
        "update 1 before update 0"
    );
    let stray = Inbound::Signed {
        request: contractcourt_core::types::RequestId {
            claim: contractcourt_core::types::ClaimId(9),
            attempt: 0,
        },
        outcome: SignOutcome::Failed { reason: "x".into() },
    };
    assert_eq!(
        error_code(&client.send(&stray, a).unwrap()),
        Some(ErrorCode::Unexpected)
    );
    // None of that changed anything: update 0 is still the next one.
    let first = Inbound::Event {
        event: events.remove(0),
    };
    assert!(matches!(
        client.send(&first, a).unwrap(),
        Outbound::Ok { .. }
    ));
    client.pump(Duration::from_millis(100), a).unwrap();
    assert!(client.received.iter().any(|m| matches!(
        m,
        Outbound::UpdatePersisted { channel, update_id: 0 } if *channel == sim.channel_id
    )));

    // bitcoind restarts with a new cookie: the next call gets a 401, the cookie is re-read.
    write_cookie(&dir, &server, "second");
    mine(&chain, 1, &wallet);
    assert!(follows(&mut client, &chain, a, TIMEOUT), "{}", log_of(&dir));
    assert!(
        server.calls().iter().any(|c| c == "401"),
        "a 401 was answered"
    );
    assert!(log_of(&dir).contains("cookie file re-read"));
    let calls = server.calls();
    assert!(
        calls.iter().any(|c| c == "estimatesmartfee"),
        "fee estimates asked for"
    );
    assert!(
        calls.iter().any(|c| c == "getmempoolinfo"),
        "relay floors asked for"
    );
    // ... and fed to the engine as the loopback server gives them: 2 sat/vB up to 6 blocks,
    // 1 sat/vB beyond, 1 sat/vB floors (in sat per 1000 weight units: 500 and 250).
    let store = SqliteStore::open_read_only(dir.join("engine.sqlite")).unwrap();
    let events = store.events(0, 100_000).unwrap();
    let fees = events
        .iter()
        .find_map(|(_, e)| match e {
            Event::FeeConditions(f) => Some(f.clone()),
            _ => None,
        })
        .expect("fee conditions fed");
    let rate = bitcoin::FeeRate::from_sat_per_kwu;
    let estimates: Vec<(u16, bitcoin::FeeRate)> = fees
        .estimates
        .iter()
        .map(|e| (e.target_blocks, e.feerate))
        .collect();
    assert_eq!(
        estimates,
        [1, 2, 3, 6, 12, 24, 48, 144, 1008]
            .map(|t| (t, rate(if t <= 6 { 500 } else { 250 })))
            .to_vec()
    );
    assert_eq!(
        (fees.mempool_min, fees.min_relay, fees.incremental_relay),
        (rate(250), rate(250), rate(250))
    );

    // bitcoind unreachable for longer than the alert threshold: retried, alerted, still running.
    server.backend.up.store(false, Ordering::SeqCst);
    let alerted = Instant::now() + TIMEOUT;
    while !client
        .received
        .iter()
        .any(|m| matches!(m, Outbound::Alert { kind, .. } if kind == "chain_source_outage"))
    {
        assert!(
            Instant::now() < alerted,
            "no outage alert: {}",
            log_of(&dir)
        );
        client.pump(Duration::from_millis(50), a).unwrap();
    }
    assert!(
        serve.try_wait().unwrap().is_none(),
        "serve never exits for an outage"
    );
    server.backend.up.store(true, Ordering::SeqCst);
    mine(&chain, 1, &wallet);
    assert!(follows(&mut client, &chain, a, TIMEOUT), "{}", log_of(&dir));

    // A reorg of depth 2: the engine's tip is the new chain's, hash and all.
    let tip = lock(&chain).height();
    server.note_chain();
    lock(&chain)
        .reorg(tip - 2, vec![Vec::new(); 3], wallet.script_pubkey())
        .expect("a heavier fork");
    assert!(follows(&mut client, &chain, a, TIMEOUT), "{}", log_of(&dir));
    let engine_tip = match client.send(&Inbound::Ping, a).unwrap() {
        Outbound::Pong { tip, .. } => tip,
        other => panic!("{other:?}"),
    };
    assert_eq!(engine_tip, Some(lock(&chain).tip()), "on the new chain");

    // Initial block download: nothing is followed until it ends.
    server.backend.in_download.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    mine(&chain, 1, &wallet);
    assert!(!follows(&mut client, &chain, a, Duration::from_millis(400)));
    assert!(log_of(&dir).contains("initial block download: waiting"));
    server.backend.in_download.store(false, Ordering::SeqCst);
    assert!(follows(&mut client, &chain, a, TIMEOUT), "{}", log_of(&dir));

    serve.kill().unwrap();
    let _ = serve.wait();
}

#[test]
fn serve_follows_an_esplora_server_and_reads_its_fee_estimates() {
    let dir = scratch("esplora");
    let wallet = TestWallet::new(8);
    let chain = chain_with(101, &wallet);
    let server = LoopbackServer::start(Protocol::Esplora, chain.clone());
    let mut serve = spawn(&dir, &["--esplora", &server.url()], &[]);
    let a = &mut NoKeys;
    let mut client = connect(&dir, a);
    assert!(follows(&mut client, &chain, a, TIMEOUT), "{}", log_of(&dir));
    mine(&chain, 2, &wallet);
    assert!(follows(&mut client, &chain, a, TIMEOUT), "{}", log_of(&dir));
    assert!(
        server.calls().iter().any(|c| c == "GET /fee-estimates"),
        "{:?}",
        server.calls()
    );
    // A second engine on the same socket is refused; the first keeps its node.
    let second = output_within_timeout(
        std::process::Command::new(env!("CARGO_BIN_EXE_contractcourt"))
            .arg("serve")
            .arg("--db")
            .arg(dir.join("other.sqlite"))
            .arg("--socket")
            .arg(dir.join("node.sock"))
            .args(["--esplora", &server.url()]),
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("socket of a running engine"), "{stderr}");
    // A second node while one is connected: `busy`, and the first one stays.
    let mut other = NodeClient::connect(&dir.join("node.sock"), TIMEOUT).unwrap();
    let reply = other.send(&Inbound::Hello { node: None }, a).unwrap();
    assert_eq!(error_code(&reply), Some(ErrorCode::Busy), "{reply:?}");
    mine(&chain, 1, &wallet);
    assert!(follows(&mut client, &chain, a, TIMEOUT), "{}", log_of(&dir));
    serve.kill().unwrap();
    let _ = serve.wait();
}
