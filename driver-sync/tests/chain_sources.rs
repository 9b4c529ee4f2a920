//! The bitcoind (JSON-RPC) and Esplora (HTTP) chain sources against loopback servers that
//! answer from the embedded chain (Bitcoin Core's kernel): syncing, reorgs found on the core's
//! locator, the mempool, broadcasts with raw reasons, a server that is down, and the blocking
//! driver running a force close over the bitcoind source.

mod support;

use std::sync::{Arc, Mutex};

use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{Amount, BlockHash, FeeRate, OutPoint, ScriptBuf, Transaction, TxOut};
use bitcoincore_rpc::Auth;
use contractcourt_core::action::{Action, Report};
use contractcourt_core::bolt3::scripts::funding_script;
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::{ChainArbitrator, Config};
use contractcourt_core::event::{BroadcastOutcome, Event, ForceCloseReason, MempoolRemovalReason};
use contractcourt_core::sim::{PartySecrets, SimChannel, SimSetup};
use contractcourt_core::sweeper::SweeperConfig;
use contractcourt_core::types::{BlockRef, Height, Party};
use contractcourt_sync::chain::bitcoind::{BitcoindSource, BitcoindSyncError};
use contractcourt_sync::chain::embedded::{EmbeddedChain, MempoolReject, TestWallet};
use contractcourt_sync::chain::esplora::{EsploraSource, EsploraSyncError};
use contractcourt_sync::chain::sync::SyncError;
use contractcourt_sync::driver::memory::{NoWallet, RecordingNode};
use contractcourt_sync::driver::{Broadcaster, ChainSource, Driver, Io, SourceError};
use contractcourt_sync::signer::{BasepointSecrets, InMemorySigner};
use contractcourt_sync::simulate::io::SimChainSource;
use contractcourt_sync::store::MemoryStore;

use support::{bitcoind_reason, closed_url, lock, LoopbackServer, Protocol};

type Shared = Arc<Mutex<EmbeddedChain>>;

/// A fresh embedded chain with `blocks` blocks mined to `wallet`.
fn chain_with(blocks: u32, wallet: &TestWallet) -> Shared {
    let mut chain = EmbeddedChain::new_temp().expect("the kernel starts");
    chain
        .mine_blocks(blocks, wallet.script_pubkey())
        .expect("blocks mined");
    Arc::new(Mutex::new(chain))
}

fn bitcoind(server: &LoopbackServer) -> BitcoindSource {
    BitcoindSource::new(&server.url(), Auth::UserPass("user".into(), "pass".into()))
        .expect("no cookie file to read")
}

fn esplora(server: &LoopbackServer) -> EsploraSource {
    EsploraSource::new(&server.url())
}

fn mine(chain: &Shared, n: u32, wallet: &TestWallet) {
    lock(chain)
        .mine_blocks(n, wallet.script_pubkey())
        .expect("blocks mined");
}

/// What the embedded chain itself serves from `first_height` for `locator` (no reorg).
fn embedded_events(chain: &Shared, first_height: Height, locator: &[BlockRef]) -> Vec<Event> {
    SimChainSource::new(chain.clone(), first_height)
        .blocks_after(locator)
        .expect("the embedded source answers")
}

fn block_ref(chain: &Shared, height: Height) -> BlockRef {
    let hash = lock(chain).block_hash_at(height).expect("a block there");
    BlockRef { height, hash }
}

/// An engine that has taken `events` (the core checks every block links to its tip).
fn engine_after(events: &[Event]) -> ChainArbitrator {
    let mut engine = ChainArbitrator::new(Config::default());
    feed(&mut engine, events);
    engine
}

fn feed(engine: &mut ChainArbitrator, events: &[Event]) {
    for event in events {
        engine
            .step(event)
            .unwrap_or_else(|e| panic!("the core refused {event:?}: {e}"));
    }
}

fn expect_sync_error<E: std::error::Error + 'static>(
    result: Result<Vec<Event>, SourceError>,
) -> SyncError<E> {
    match result {
        Ok(events) => panic!("expected an error, got {} events", events.len()),
        Err(e) => match e.downcast::<SyncError<E>>() {
            Ok(e) => *e,
            Err(other) => panic!("not a typed sync error: {other}"),
        },
    }
}

fn kinds(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| match e {
            Event::BlockConnected(b) => format!("+{}", b.height),
            Event::BlockDisconnected { block } => format!("-{}", block.height),
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn sync_from_an_empty_locator_delivers_every_block_from_the_first_height_as_the_embedded_chain_does(
) {
    let wallet = TestWallet::new(1);
    let chain = chain_with(12, &wallet);
    let rpc = LoopbackServer::start(Protocol::Bitcoind, chain.clone());
    let rest = LoopbackServer::start(Protocol::Esplora, chain.clone());

    let expected = embedded_events(&chain, 0, &[]);
    assert_eq!(expected.len(), 13, "genesis and 12 blocks");
    assert_eq!(bitcoind(&rpc).blocks_after(&[]).unwrap(), expected);
    assert_eq!(esplora(&rest).blocks_after(&[]).unwrap(), expected);

    let from_five = embedded_events(&chain, 5, &[]);
    assert_eq!(kinds(&from_five), "+5 +6 +7 +8 +9 +10 +11 +12");
    assert_eq!(
        bitcoind(&rpc).starting_at(5).blocks_after(&[]).unwrap(),
        from_five
    );
    assert_eq!(
        esplora(&rest).starting_at(5).blocks_after(&[]).unwrap(),
        from_five
    );
    // Above the tip: nothing yet.
    assert!(bitcoind(&rpc)
        .starting_at(13)
        .blocks_after(&[])
        .unwrap()
        .is_empty());

    let tip = Some(lock(&chain).tip());
    assert_eq!(bitcoind(&rpc).tip().unwrap(), tip);
    assert_eq!(esplora(&rest).tip().unwrap(), tip);
    // The events take an empty engine to the chain's tip.
    assert_eq!(engine_after(&expected).tip(), tip);
}

#[test]
fn sync_from_a_locator_after_more_blocks_delivers_only_the_new_blocks() {
    let wallet = TestWallet::new(2);
    let chain = chain_with(10, &wallet);
    let rpc = LoopbackServer::start(Protocol::Bitcoind, chain.clone());
    let rest = LoopbackServer::start(Protocol::Esplora, chain.clone());
    let mut by_rpc = bitcoind(&rpc).starting_at(3);
    let mut by_rest = esplora(&rest).starting_at(3);

    let mut engine = engine_after(&by_rpc.blocks_after(&[]).unwrap());
    let locator = engine.locator();
    assert_eq!(locator[0], lock(&chain).tip());
    // Nothing new: no events.
    assert!(by_rpc.blocks_after(&locator).unwrap().is_empty());
    assert!(by_rest.blocks_after(&locator).unwrap().is_empty());

    mine(&chain, 4, &wallet);
    let expected = embedded_events(&chain, 3, &locator);
    assert_eq!(kinds(&expected), "+11 +12 +13 +14");
    rpc.clear_calls();
    assert_eq!(by_rpc.blocks_after(&locator).unwrap(), expected);
    assert_eq!(by_rest.blocks_after(&locator).unwrap(), expected);
    // The fork point is the locator's first entry: one getblockhash finds it, none looks back.
    let calls = rpc.calls();
    assert_eq!(
        calls.iter().filter(|c| *c == "getblockhash").count(),
        1 + 4,
        "{calls:?}"
    );
    assert!(!calls.iter().any(|c| c == "getblockheader"), "{calls:?}");

    feed(&mut engine, &expected);
    assert_eq!(engine.tip(), Some(lock(&chain).tip()));
}

#[test]
fn a_reorg_of_depth_1_to_3_disconnects_from_the_tip_down_then_connects_as_the_embedded_chain_reports(
) {
    let wallet = TestWallet::new(3);
    let chain = chain_with(15, &wallet);
    let rpc = LoopbackServer::start(Protocol::Bitcoind, chain.clone());
    let rest = LoopbackServer::start(Protocol::Esplora, chain.clone());
    let mut by_rpc = bitcoind(&rpc);
    let mut by_rest = esplora(&rest);
    let mut engine = engine_after(&by_rpc.blocks_after(&[]).unwrap());
    // The Esplora source delivered the same chain (it remembers what it delivered).
    assert!(!by_rest.blocks_after(&[]).unwrap().is_empty());

    for depth in 1..=3u32 {
        let locator = engine.locator();
        let tip = lock(&chain).tip();
        assert_eq!(locator[0], tip);
        rpc.note_chain();
        let fork = tip.height - depth;
        let updates = lock(&chain)
            .reorg(
                fork,
                vec![Vec::new(); depth as usize + 1],
                wallet.script_pubkey(),
            )
            .expect("the kernel switches to the heavier fork");
        let expected: Vec<Event> = updates.iter().map(|u| u.to_event()).collect();

        let events = by_rpc.blocks_after(&locator).unwrap();
        assert_eq!(events, expected, "depth {depth}: {}", kinds(&events));
        assert_eq!(by_rest.blocks_after(&locator).unwrap(), expected);

        // Disconnections first, from the engine's tip down to just above the fork point, then
        // the new branch oldest first.
        let downs: Vec<Height> = (fork + 1..=tip.height).rev().collect();
        let ups: Vec<Height> = (fork + 1..=tip.height + 1).collect();
        let want = downs
            .iter()
            .map(|h| format!("-{h}"))
            .chain(ups.iter().map(|h| format!("+{h}")))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(kinds(&events), want);
        assert_eq!(
            events[0],
            Event::BlockDisconnected { block: tip },
            "the engine's own tip goes first"
        );

        feed(&mut engine, &events);
        assert_eq!(engine.tip(), Some(lock(&chain).tip()));
    }
}

#[test]
fn a_sparse_locator_after_a_reorg_is_walked_through_getblockheader_or_what_the_source_delivered() {
    let wallet = TestWallet::new(4);
    let chain = chain_with(20, &wallet);
    let rpc = LoopbackServer::start(Protocol::Bitcoind, chain.clone());
    let rest = LoopbackServer::start(Protocol::Esplora, chain.clone());
    let mut seasoned = esplora(&rest);
    seasoned.blocks_after(&[]).unwrap();

    let old: Vec<BlockRef> = (15..=20).map(|h| block_ref(&chain, h)).collect();
    // A locator with a gap: 20, then 15.
    let locator = [old[5], old[0]];
    rpc.note_chain();
    lock(&chain)
        .reorg(17, vec![Vec::new(); 4], wallet.script_pubkey())
        .unwrap();

    // The fork point is 15 (the newest entry on the best chain): every engine block above it
    // goes, 20 down to 16 (16 and 17 come back: they are still on the best chain).
    let mut expected: Vec<Event> = old[1..]
        .iter()
        .rev()
        .map(|b| Event::BlockDisconnected { block: *b })
        .collect();
    expected.extend(embedded_events(&chain, 0, &[old[0]]));
    assert_eq!(
        kinds(&expected),
        "-20 -19 -18 -17 -16 +16 +17 +18 +19 +20 +21"
    );

    // bitcoind keeps stale headers: a fresh source follows parents with getblockheader.
    rpc.clear_calls();
    assert_eq!(bitcoind(&rpc).blocks_after(&locator).unwrap(), expected);
    let headers = rpc
        .calls()
        .iter()
        .filter(|c| *c == "getblockheader")
        .count();
    assert_eq!(headers, 4, "parents of 20, 19, 18 and 17");

    // The Esplora source that delivered those blocks remembers their parents.
    rest.clear_calls();
    assert_eq!(seasoned.blocks_after(&locator).unwrap(), expected);
    assert!(
        !rest.calls().iter().any(|c| c.ends_with("/header")),
        "{:?}",
        rest.calls()
    );
    // A fresh one cannot: the server knows only best-chain headers.
    match expect_sync_error::<esplora_client::Error>(esplora(&rest).blocks_after(&locator)) {
        SyncError::UnknownBlock { block } => assert_eq!(block, old[5]),
        other => panic!("expected UnknownBlock, got {other}"),
    }
}

#[test]
fn a_locator_entirely_off_chain_is_a_typed_error() {
    let wallet = TestWallet::new(5);
    let chain = chain_with(8, &wallet);
    let rpc = LoopbackServer::start(Protocol::Bitcoind, chain.clone());
    let rest = LoopbackServer::start(Protocol::Esplora, chain.clone());
    let fake = |height: Height| BlockRef {
        height,
        hash: BlockHash::from_raw_hash(sha256d::Hash::hash(&height.to_le_bytes())),
    };
    // Unknown blocks at heights the chain has, and above its tip.
    let locator = [fake(30), fake(8), fake(7), fake(5), fake(1)];
    match expect_sync_error::<bitcoincore_rpc::Error>(bitcoind(&rpc).blocks_after(&locator)) {
        SyncError::LocatorOffChain { newest, oldest } => {
            assert_eq!((newest, oldest), (fake(30), fake(1)));
        }
        other => panic!("expected LocatorOffChain, got {other}"),
    }
    match expect_sync_error::<esplora_client::Error>(esplora(&rest).blocks_after(&locator)) {
        SyncError::LocatorOffChain { newest, oldest } => {
            assert_eq!((newest, oldest), (fake(30), fake(1)));
        }
        other => panic!("expected LocatorOffChain, got {other}"),
    }
    // A locator whose heights do not decrease is refused before anything is asked.
    let jumbled = [block_ref(&chain, 3), block_ref(&chain, 6)];
    rpc.clear_calls();
    match expect_sync_error::<bitcoincore_rpc::Error>(bitcoind(&rpc).blocks_after(&jumbled)) {
        SyncError::BadLocator { .. } => {}
        other => panic!("expected BadLocator, got {other}"),
    }
    assert!(rpc.calls().is_empty(), "{:?}", rpc.calls());
}

/// A wallet with spendable coins: 103 blocks mined to it (the first three coinbases mature).
fn funded(seed: u64) -> (TestWallet, Shared) {
    let wallet = TestWallet::new(seed);
    let chain = chain_with(103, &wallet);
    (wallet, chain)
}

fn pay_elsewhere(wallet: &TestWallet, chain: &Shared, sat: u64, rate: u32) -> Transaction {
    wallet
        .fund(
            &lock(chain),
            TestWallet::new(999).script_pubkey().to_owned(),
            Amount::from_sat(sat),
            FeeRate::from_sat_per_vb_u32(rate),
        )
        .expect("the wallet has coins")
}

/// A source over a chain whose mempool holds a parent and its CPFP child.
fn parent_and_child(seed: u64) -> (LoopbackServer, Transaction, Transaction) {
    let (wallet, chain) = funded(seed);
    let rpc = LoopbackServer::start(Protocol::Bitcoind, chain.clone());
    let parent = pay_elsewhere(&wallet, &chain, 50_000, 2);
    let change = parent
        .output
        .iter()
        .position(|o| o.script_pubkey == *wallet.script_pubkey())
        .expect("change to the wallet") as u32;
    lock(&chain).submit(parent.clone()).unwrap();
    let child = wallet
        .cpfp(
            &lock(&chain),
            &parent,
            change,
            FeeRate::from_sat_per_vb_u32(4),
        )
        .unwrap();
    lock(&chain).submit(child.clone()).unwrap();
    (rpc, parent, child)
}

#[test]
fn mempool_sync_fetches_a_bounded_batch_per_poll_each_with_the_parents_it_needs() {
    let txid_of = |e: &Event| match e {
        Event::MempoolTx { tx, .. } => tx.0.compute_txid(),
        other => panic!("{other:?}"),
    };
    let mut seen_child_first = false;
    let mut seen_parent_first = false;
    for seed in 16..40 {
        let (rpc, parent, child) = parent_and_child(seed);
        let (parent_id, child_id) = (parent.compute_txid(), child.compute_txid());
        let child_first = child_id < parent_id;
        if (child_first && seen_child_first) || (!child_first && seen_parent_first) {
            continue;
        }
        let mut source = bitcoind(&rpc).starting_at(103).with_mempool_batch(1);
        // One new transaction per poll, the lowest txid first; a child comes with the parent
        // it needs, parent first.
        let first: Vec<_> = source
            .mempool_events()
            .unwrap()
            .iter()
            .map(txid_of)
            .collect();
        let second: Vec<_> = source
            .mempool_events()
            .unwrap()
            .iter()
            .map(txid_of)
            .collect();
        if child_first {
            assert_eq!(first, vec![parent_id, child_id]);
            assert!(second.is_empty());
            seen_child_first = true;
        } else {
            assert_eq!(first, vec![parent_id]);
            assert_eq!(second, vec![child_id]);
            seen_parent_first = true;
        }
        assert!(
            source.mempool_events().unwrap().is_empty(),
            "delivered once"
        );
        let calls = rpc.calls();
        let count = |m: &str| calls.iter().filter(|c| *c == m).count();
        assert_eq!(
            count("getrawmempool"),
            3,
            "one txid list per poll: {calls:?}"
        );
        assert_eq!(
            count("getmempoolentry"),
            2,
            "an entry per new transaction: {calls:?}"
        );
        assert_eq!(count("getrawtransaction"), 2, "{calls:?}");
        if seen_child_first && seen_parent_first {
            return;
        }
    }
    panic!("no seed gave both orders of txids");
}

#[test]
fn a_mempool_tx_appears_once_then_is_removed_as_confirmed_when_mined() {
    let (wallet, chain) = funded(6);
    let rpc = LoopbackServer::start(Protocol::Bitcoind, chain.clone());
    let mut source = bitcoind(&rpc).starting_at(103);
    let mut engine = engine_after(&source.blocks_after(&[]).unwrap());
    assert!(source.mempool_events().unwrap().is_empty());

    // A parent and a child spending its change: the child comes after its parent.
    let parent = pay_elsewhere(&wallet, &chain, 50_000, 2);
    let change = parent
        .output
        .iter()
        .position(|o| o.script_pubkey == *wallet.script_pubkey())
        .expect("change to the wallet") as u32;
    lock(&chain).submit(parent.clone()).unwrap();
    let child = wallet
        .cpfp(
            &lock(&chain),
            &parent,
            change,
            FeeRate::from_sat_per_vb_u32(4),
        )
        .unwrap();
    lock(&chain).submit(child.clone()).unwrap();

    let expected: Vec<Event> = [&parent, &child]
        .iter()
        .map(|tx| {
            lock(&chain)
                .mempool_tx(&tx.compute_txid())
                .expect("in the mempool")
                .to_event()
        })
        .collect();
    let events = source.mempool_events().unwrap();
    assert_eq!(
        events, expected,
        "fee, vsize and order as the mempool has them"
    );
    let Event::MempoolTx { fee_sat, vsize, .. } = &events[0] else {
        unreachable!()
    };
    assert!(*fee_sat > 0 && *vsize > 0);
    assert!(
        source.mempool_events().unwrap().is_empty(),
        "delivered once"
    );
    feed(&mut engine, &events);

    // Mined, and seen by this source in a block it connected: confirmed.
    let locator = engine.locator();
    mine(&chain, 1, &wallet);
    let blocks = source.blocks_after(&locator).unwrap();
    assert_eq!(blocks.len(), 1);
    let removed = source.mempool_events().unwrap();
    // Removals come in txid order.
    let mut gone = [parent.compute_txid(), child.compute_txid()];
    gone.sort();
    assert_eq!(
        removed,
        gone.iter()
            .map(|txid| Event::MempoolRemoved {
                txid: *txid,
                reason: MempoolRemovalReason::Confirmed,
            })
            .collect::<Vec<_>>()
    );
    assert!(source.mempool_events().unwrap().is_empty());

    // Gone without this source having connected the block that holds it: the source does not
    // say why.
    let other = pay_elsewhere(&wallet, &chain, 60_000, 3);
    lock(&chain).submit(other.clone()).unwrap();
    assert_eq!(source.mempool_events().unwrap().len(), 1);
    mine(&chain, 1, &wallet);
    assert_eq!(
        source.mempool_events().unwrap(),
        vec![Event::MempoolRemoved {
            txid: other.compute_txid(),
            reason: MempoolRemovalReason::Unknown,
        }]
    );
}

/// `tx` with its first output's value changed: its signature no longer holds.
fn tampered(tx: &Transaction) -> Transaction {
    let mut bad = tx.clone();
    bad.output[0].value -= Amount::from_sat(1);
    bad
}

#[test]
fn broadcast_of_a_valid_tx_is_accepted_and_of_an_invalid_one_rejected_with_the_servers_raw_reason()
{
    let (wallet, chain) = funded(7);
    for protocol in [Protocol::Bitcoind, Protocol::Esplora] {
        let server = LoopbackServer::start(protocol, chain.clone());
        let mut source: Box<dyn Broadcaster> = match protocol {
            Protocol::Bitcoind => Box::new(bitcoind(&server)),
            Protocol::Esplora => Box::new(esplora(&server)),
        };
        let tx = pay_elsewhere(&wallet, &chain, 40_000, 2);
        let bad = tampered(&tx);
        // What the mempool says of the tampered one (it refuses it: nothing changes).
        let verdict = lock(&chain).submit(bad.clone()).unwrap_err();
        assert!(
            matches!(verdict, MempoolReject::ScriptFailure { .. }),
            "{verdict}"
        );

        let outcome = source.broadcast(&bad);
        let sent = server.last_rejection().expect("the server rejected it");
        assert_eq!(
            outcome,
            BroadcastOutcome::Rejected {
                reason: sent.clone()
            },
            "{protocol:?}: the reason is the server's text, untouched"
        );
        assert!(sent.contains(&bitcoind_reason(&verdict)), "{sent}");

        assert_eq!(source.broadcast(&tx), BroadcastOutcome::Accepted);
        assert!(lock(&chain).mempool_tx(&tx.compute_txid()).is_some());
        // Again: bitcoind's "already in the mempool", raw; the core reads it as success.
        let BroadcastOutcome::Rejected { reason } = source.broadcast(&tx) else {
            panic!("{protocol:?}: a repeat is refused as already known");
        };
        assert!(reason.contains("txn-already-in-mempool"), "{reason}");
    }
}

#[test]
fn a_package_of_a_zero_fee_parent_and_its_child_is_accepted_and_a_stingy_one_rejected_raw() {
    let (wallet, chain) = funded(8);
    for protocol in [Protocol::Bitcoind, Protocol::Esplora] {
        let server = LoopbackServer::start(protocol, chain.clone());
        let mut source: Box<dyn Broadcaster> = match protocol {
            Protocol::Bitcoind => Box::new(bitcoind(&server)),
            Protocol::Esplora => Box::new(esplora(&server)),
        };
        let parent = wallet
            .send(
                &lock(&chain),
                vec![TxOut {
                    value: Amount::from_sat(1_000_000),
                    script_pubkey: wallet.script_pubkey().to_owned(),
                }],
                FeeRate::ZERO,
            )
            .unwrap();
        let stingy = wallet
            .cpfp(&lock(&chain), &parent, 0, FeeRate::ZERO)
            .unwrap();
        let outcome = source.broadcast_package(&parent, &stingy);
        let sent = server.last_rejection().expect("the server rejected it");
        let BroadcastOutcome::Rejected { reason } = outcome else {
            panic!("{protocol:?}: a package below the relay fee is refused");
        };
        assert!(reason.contains(&sent), "{reason} carries {sent}");
        assert!(reason.contains("package-fee-too-low"), "{reason}");

        let child = wallet
            .cpfp(&lock(&chain), &parent, 0, FeeRate::from_sat_per_vb_u32(5))
            .unwrap();
        assert_eq!(
            source.broadcast_package(&parent, &child),
            BroadcastOutcome::Accepted
        );
        assert!(lock(&chain).mempool_tx(&child.compute_txid()).is_some());
        assert!(lock(&chain).mempool_tx(&parent.compute_txid()).is_some());
    }
}

#[test]
fn a_server_that_is_down_gives_a_typed_client_error_and_no_panic() {
    let url = closed_url();
    let tx = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: Vec::new(),
        output: Vec::new(),
    };

    let mut rpc = BitcoindSource::new(&url, Auth::None).unwrap();
    let is_transport = |e: SourceError| match e.downcast::<BitcoindSyncError>() {
        Ok(e) => matches!(
            *e,
            SyncError::Client(bitcoincore_rpc::Error::JsonRpc(
                bitcoincore_rpc::jsonrpc::Error::Transport(_)
            ))
        ),
        Err(_) => false,
    };
    assert!(is_transport(rpc.tip().unwrap_err()));
    assert!(is_transport(rpc.blocks_after(&[]).unwrap_err()));
    assert!(is_transport(rpc.mempool_events().unwrap_err()));
    // No node answered: not a rejection (a mempool's verdict) but no verdict at all.
    let BroadcastOutcome::NotDelivered { reason } = rpc.broadcast(&tx) else {
        panic!("no node answered, so nothing was delivered");
    };
    assert!(!reason.is_empty());

    let mut rest = EsploraSource::new(&url);
    let is_transport = |e: SourceError| match e.downcast::<EsploraSyncError>() {
        Ok(e) => matches!(*e, SyncError::Client(esplora_client::Error::BitReq(_))),
        Err(_) => false,
    };
    assert!(is_transport(rest.tip().unwrap_err()));
    assert!(is_transport(
        rest.blocks_after(&[BlockRef {
            height: 1,
            hash: BlockHash::all_zeros()
        }])
        .unwrap_err()
    ));
    assert!(matches!(
        rest.broadcast_package(&tx, &tx),
        BroadcastOutcome::NotDelivered { .. }
    ));
}

#[test]
fn the_driver_force_closes_and_sweeps_over_the_bitcoind_source() {
    let (wallet, chain) = funded(9);
    // Fund a channel on the embedded chain.
    let mut setup = SimSetup::new(9, ChannelType::StaticRemoteKey);
    setup.local_to_self_delay = 6;
    let local = PartySecrets::from_seed(&setup.seed, "local");
    let remote = PartySecrets::from_seed(&setup.seed, "remote").basepoints();
    let funding_spk =
        funding_script(&local.basepoints().funding_pubkey, &remote.funding_pubkey).to_p2wsh();
    let funding_tx = wallet
        .fund(
            &lock(&chain),
            funding_spk.clone(),
            Amount::from_sat(setup.funding_sat),
            FeeRate::from_sat_per_vb_u32(2),
        )
        .unwrap();
    let vout = funding_tx
        .output
        .iter()
        .position(|o| o.script_pubkey == funding_spk)
        .unwrap() as u32;
    let funding_txid = lock(&chain).submit(funding_tx).unwrap();
    mine(&chain, 1, &wallet);
    let start = lock(&chain).height();
    setup.funding_outpoint = Some(OutPoint {
        txid: funding_txid,
        vout,
    });
    let (sim, open_events) = SimChannel::open(setup).unwrap();

    let server = LoopbackServer::start(Protocol::Bitcoind, chain.clone());
    let source = Arc::new(Mutex::new(bitcoind(&server).starting_at(start)));
    let mut signer = InMemorySigner::new();
    signer.add_channel(
        sim.channel_id,
        BasepointSecrets {
            funding: sim.local.funding,
            revocation: sim.local.revocation_base,
            payment: sim.local.payment_base,
            delayed_payment: sim.local.delayed_payment_base,
            htlc: sim.local.htlc_base,
        },
    );
    let sweep_to: ScriptBuf = TestWallet::new(77).script_pubkey().to_owned();
    let config = Config {
        sweep_to: Some(SweeperConfig {
            destination: sweep_to.clone(),
            fallback_feerate: FeeRate::from_sat_per_vb_u32(2),
            fee_wallet: None,
        }),
        ..Config::default()
    };
    let io = Io {
        signer: Box::new(signer),
        broadcaster: Box::new(bitcoind(&server)),
        wallet: Box::new(NoWallet),
        chain: Box::new(source.clone()),
        node: Box::new(RecordingNode::new()),
    };
    let (mut driver, _) = Driver::start(config, MemoryStore::new(), io).unwrap();
    driver.sync().unwrap();
    assert_eq!(driver.engine().tip(), Some(lock(&chain).tip()));
    for event in open_events {
        driver.feed(event).unwrap();
    }

    driver
        .feed(Event::ForceCloseRequested {
            channel: sim.channel_id,
            reason: ForceCloseReason::User,
        })
        .unwrap();
    let commitment = sim.commitment_tx(Party::Local, 0).unwrap();
    let commitment_txid = commitment.compute_txid();
    assert!(
        lock(&chain).mempool_tx(&commitment_txid).is_some(),
        "the commitment went through sendrawtransaction into the mempool"
    );
    // The mempool hint reaches the core too, through the driver's mempool poll.
    let transcript = driver.sync_mempool().unwrap();
    assert!(
        transcript.iter().any(|a| matches!(
            a,
            Action::Report(Report::Timeline { stage, txid: Some(t), .. })
                if *t == commitment_txid && stage.contains("seen in the mempool")
        )),
        "the commitment seen in the mempool was fed to the engine: {transcript:?}"
    );
    assert!(
        lock(&source).mempool_events().unwrap().is_empty(),
        "delivered once"
    );

    // Confirm it, wait out the delay, and let the sweeper claim our output.
    let mut sweep = None;
    for _ in 0..20 {
        mine(&chain, 1, &wallet);
        driver.sync().unwrap();
        assert_eq!(driver.engine().tip(), Some(lock(&chain).tip()));
        let c = lock(&chain);
        sweep = (start..=c.height())
            .filter_map(|h| c.block_at(h))
            .flat_map(|b| b.txs)
            .find(|tx| {
                tx.0.input
                    .iter()
                    .any(|i| i.previous_output.txid == commitment_txid)
            });
        if sweep.is_some() {
            break;
        }
    }
    assert!(lock(&chain)
        .tx_confirmation_height(&commitment_txid)
        .is_some());
    let sweep = sweep.expect("our delayed output was swept and confirmed");
    assert!(sweep.0.output.iter().any(|o| o.script_pubkey == sweep_to));
}
