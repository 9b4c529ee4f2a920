//! `serve`'s bitcoind source: a broadcast that gets no verdict (the node unreachable for a
//! moment) is tried again and delivered once the node is back; one that never gets a verdict
//! is, after the bounded tries, not delivered (carrying the client's error) — never a rejection.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{lock, LoopbackServer, Protocol};
use bitcoin::{Amount, FeeRate, ScriptBuf, TxOut};
use contractcourt_core::event::BroadcastOutcome;
use contractcourt_sync::chain::embedded::{EmbeddedChain, TestWallet};
use contractcourt_sync::driver::Broadcaster;
use contractcourt_sync::serve::settings::RpcAuth;
use contractcourt_sync::serve::source::{Bitcoind, DELIVERY_ATTEMPTS};

fn setup() -> (
    Arc<Mutex<EmbeddedChain>>,
    LoopbackServer,
    bitcoin::Transaction,
) {
    let wallet = TestWallet::new(31);
    let mut chain = EmbeddedChain::new_temp().unwrap();
    chain.mine_blocks(101, wallet.script_pubkey()).unwrap();
    let tx = wallet
        .send(
            &chain,
            vec![TxOut {
                value: Amount::from_sat(40_000),
                script_pubkey: ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_raw_hash(
                    bitcoin::hashes::Hash::all_zeros(),
                )),
            }],
            FeeRate::from_sat_per_vb_u32(2),
        )
        .unwrap();
    let chain = Arc::new(Mutex::new(chain));
    let server = LoopbackServer::start(Protocol::Bitcoind, chain.clone());
    (chain, server, tx)
}

#[test]
fn a_broadcast_during_a_short_outage_is_delivered_when_the_node_is_back() {
    let (chain, server, tx) = setup();
    let mut source = Bitcoind::new(server.url(), RpcAuth::None).unwrap();
    server.backend.up.store(false, Ordering::SeqCst);
    let backend = server.backend.clone();
    let back = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(250));
        backend.up.store(true, Ordering::SeqCst);
    });
    assert_eq!(source.broadcast(&tx), BroadcastOutcome::Accepted);
    back.join().unwrap();
    assert!(lock(&chain).mempool_tx(&tx.compute_txid()).is_some());
    // A verdict is final at once: a second broadcast is refused by the node, not retried.
    let started = Instant::now();
    let again = source.broadcast(&tx);
    assert!(
        matches!(&again, BroadcastOutcome::Rejected { reason } if reason.contains("txn-already-in-mempool")),
        "{again:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[test]
fn a_broadcast_that_never_gets_a_verdict_is_not_delivered_not_rejected_after_bounded_tries() {
    let (chain, server, tx) = setup();
    let mut source = Bitcoind::new(server.url(), RpcAuth::None).unwrap();
    server.backend.up.store(false, Ordering::SeqCst);
    server.clear_calls();
    let outcome = source.broadcast(&tx);
    assert!(
        matches!(&outcome, BroadcastOutcome::NotDelivered { reason } if reason.contains("503")),
        "{outcome:?}"
    );
    assert!(lock(&chain).mempool_tx(&tx.compute_txid()).is_none());
    let tries = server.calls().iter().filter(|c| *c == "503").count();
    assert_eq!(tries, DELIVERY_ATTEMPTS as usize);
}
