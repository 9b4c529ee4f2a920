//! A `serve` whose lease was taken over while it was frozen, and that afterwards hears only node
//! messages (no block, no fee change: nothing it would commit), stops within about a lease of
//! being thawed — not at its next tick, up to a minute later.

use std::time::{Duration, Instant};

use contractcourt_sync::chain::embedded::TestWallet;
use contractcourt_sync::serve::client::NodeClient;
use contractcourt_sync::serve::protocol::Inbound;

use crate::failover::{logs, schema, signal, wait_for_socket, HotStandby, LEASE_MS};
use crate::serve_kit::*;
use crate::support::{LoopbackServer, Protocol};

#[test]
fn a_fenced_serve_hearing_only_node_messages_exits_within_about_a_lease() {
    let dir = scratch("pg-fenced");
    let wallet = TestWallet::new(5);
    let chain = chain_with(101, &wallet);
    let server = LoopbackServer::start(Protocol::Bitcoind, chain.clone());
    write_cookie(&dir, &server, "c");
    let mut pair = HotStandby::start(&dir, &server.url(), vec![], &schema("fenced"));
    let keys = &mut NoKeys;
    let mut client = NodeClient::connect(&pair.active.1, TIMEOUT).expect("connects");
    client
        .send(&Inbound::Hello { node: None }, keys)
        .expect("welcome");
    std::thread::sleep(Duration::from_millis(300)); // it resumes and polls the chain
    signal(&pair.active.0, "STOP");
    wait_for_socket(&pair.standby.1, &dir);
    signal(&pair.active.0, "CONT");
    let thawed = Instant::now();
    let status = loop {
        let _ = client.send(&Inbound::Ping, keys); // only node messages: nothing to commit
        if let Some(status) = pair.active.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            thawed.elapsed() < Duration::from_secs(15),
            "the fenced serve still runs: {}",
            logs(&dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = thawed.elapsed();
    assert!(!status.success(), "a fenced serve exits with an error");
    assert!(
        took < Duration::from_millis(LEASE_MS) + Duration::from_millis(1000),
        "the fenced serve stopped {took:?} after it was thawed ({LEASE_MS} ms lease)"
    );
    let log = std::fs::read_to_string(dir.join("serve-0.log")).unwrap_or_default();
    assert!(log.contains("fenced"), "it says why it stopped: {log}");
    drop(pair);
    let _ = std::fs::remove_dir_all(&dir);
}
