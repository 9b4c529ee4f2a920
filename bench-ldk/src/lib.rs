//! The LDK side of the head-to-head: N channels between two LDK nodes, opened with LDK's own
//! functional-test network (`lightning` feature `_test_utils`), each with one HTLC in flight
//! each way; then node 0's `ChannelMonitor`s are moved into a fresh `ChainMonitor` whose logger
//! drops what is below `Warn` without formatting it (as a production logger would), so blocks
//! measure LDK's chain processing rather than its test logger, which prints every trace line.
//!
//! Only the setup uses LDK's test utilities; nothing of them is copied.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::{Block, BlockHash, CompactTarget, Transaction, TxMerkleNode};
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::chain::chainmonitor::{ChainMonitor, Persist};
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::chain::{ChannelMonitorUpdateStatus, Listen, Watch};
use lightning::ln::channelmanager::{PaymentId, RecipientOnionFields, Retry};
use lightning::ln::functional_test_utils::{
    check_added_monitors, connect_blocks, create_chan_between_nodes_with_value_init,
    create_chanmon_cfgs, create_network, create_node_cfgs, create_node_chanmgrs, mine_transactions,
    pass_along_route, ConnectStyle, Node, CHAN_CONFIRM_DEPTH,
};
use lightning::ln::msgs::{BaseMessageHandler, ChannelMessageHandler, MessageSendEvent};
use lightning::routing::router::{Path, PaymentParameters, Route, RouteHop, RouteParameters};
use lightning::sign::PeerStorageKey;
use lightning::types::payment::{PaymentHash, PaymentPreimage};
use lightning::util::logger::{Level, Logger, Record};
use lightning::util::persist::MonitorName;
use lightning::util::ser::{ReadableArgs, Writeable};
use lightning::util::test_channel_signer::TestChannelSigner;
use lightning::util::test_utils::{TestChainSource, TestKeysInterface};

/// A logger that keeps warnings and errors and drops the rest without formatting them.
pub struct QuietLogger;

impl Logger for QuietLogger {
    fn log(&self, record: Record) {
        if record.level >= Level::Warn {
            eprintln!("ldk {}: {}", record.level, record.args);
        }
    }
}

/// Counts what it is asked to broadcast.
#[derive(Default)]
pub struct CountingBroadcaster(pub AtomicUsize);

impl BroadcasterInterface for CountingBroadcaster {
    fn broadcast_transactions(&self, txs: &[&Transaction]) {
        self.0.fetch_add(txs.len(), Ordering::Relaxed);
    }
}

/// A fixed fee estimate (LDK's minimum, 253 sat/kw).
pub struct FixedFees;

impl FeeEstimator for FixedFees {
    fn get_est_sat_per_1000_weight(&self, _: ConfirmationTarget) -> u32 {
        253
    }
}

/// A persister that writes nothing. With `serialize` on, it serialises each monitor it is asked
/// to persist (the CPU part of a real persister, without the I/O) and counts the bytes.
#[derive(Default)]
pub struct MemoryPersister {
    /// Serialise what is persisted.
    pub serialize: AtomicBool,
    /// Monitors persisted on blocks (chain sync).
    pub chain_syncs: AtomicU64,
    /// Bytes serialised.
    pub bytes: AtomicU64,
}

impl MemoryPersister {
    fn persisted(&self, monitor: &ChannelMonitor<TestChannelSigner>) -> ChannelMonitorUpdateStatus {
        if self.serialize.load(Ordering::Relaxed) {
            self.bytes
                .fetch_add(monitor.encode().len() as u64, Ordering::Relaxed);
        }
        ChannelMonitorUpdateStatus::Completed
    }
}

impl Persist<TestChannelSigner> for MemoryPersister {
    fn persist_new_channel(
        &self,
        _: MonitorName,
        monitor: &ChannelMonitor<TestChannelSigner>,
    ) -> ChannelMonitorUpdateStatus {
        self.persisted(monitor)
    }

    fn update_persisted_channel(
        &self,
        _: MonitorName,
        update: Option<&ChannelMonitorUpdate>,
        monitor: &ChannelMonitor<TestChannelSigner>,
    ) -> ChannelMonitorUpdateStatus {
        if update.is_none() {
            self.chain_syncs.fetch_add(1, Ordering::Relaxed);
        }
        self.persisted(monitor)
    }

    fn archive_persisted_channel(&self, _: MonitorName) {}
}

/// LDK's chain monitor, as the benchmark drives it.
pub type Monitor = ChainMonitor<
    TestChannelSigner,
    &'static TestChainSource,
    &'static CountingBroadcaster,
    &'static FixedFees,
    &'static QuietLogger,
    &'static MemoryPersister,
    &'static TestKeysInterface,
>;

/// N channel monitors in a `ChainMonitor`, and where its chain is.
pub struct LdkNode {
    /// The monitors.
    pub monitor: Monitor,
    /// What they broadcast.
    pub broadcaster: &'static CountingBroadcaster,
    /// What they persisted.
    pub persister: &'static MemoryPersister,
    /// The height of the last block connected.
    pub height: u32,
    /// Its hash.
    pub tip: BlockHash,
    /// HTLCs in flight on node 0, counted from its channels.
    pub htlcs: usize,
}

impl LdkNode {
    /// The next block with `txs`, on the tip; it becomes the tip.
    pub fn next_block(&mut self, txs: Vec<Transaction>) -> (Block, u32) {
        let header = Header {
            version: BlockVersion::NO_SOFT_FORK_SIGNALLING,
            prev_blockhash: self.tip,
            merkle_root: TxMerkleNode::all_zeros(),
            time: 1_700_000_000 + self.height,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: self.height,
        };
        self.height += 1;
        self.tip = header.block_hash();
        (
            Block {
                header,
                txdata: txs,
            },
            self.height,
        )
    }

    /// Connect a block to every monitor.
    pub fn connect(&self, block: &Block, height: u32) {
        self.monitor.block_connected(block, height);
    }
}

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// Deliver every message one node has for the other until neither has any.
fn exchange(nodes: &[Node<'static, 'static, 'static>]) {
    loop {
        let mut any = false;
        for (from, to) in [(0usize, 1usize), (1, 0)] {
            let sender = nodes[from].node.get_our_node_id();
            for event in nodes[from].node.get_and_clear_pending_msg_events() {
                any = true;
                match event {
                    MessageSendEvent::SendChannelReady { msg, .. } => {
                        nodes[to].node.handle_channel_ready(sender, &msg)
                    }
                    MessageSendEvent::SendAnnouncementSignatures { msg, .. } => {
                        nodes[to].node.handle_announcement_signatures(sender, &msg)
                    }
                    MessageSendEvent::SendChannelUpdate { msg, .. } => {
                        nodes[to].node.handle_channel_update(sender, &msg)
                    }
                    _ => {}
                }
            }
            // ChannelReady and similar events: nothing to do.
            nodes[from].node.get_and_clear_pending_events();
        }
        if !any {
            break;
        }
    }
}

/// Send `amount_msat` from `from` to `to` over the channel `scid`, final CLTV delta 1,000
/// blocks, and leave it unclaimed (in flight).
fn send_over(
    nodes: &[Node<'static, 'static, 'static>],
    from: usize,
    to: usize,
    scid: u64,
    amount_msat: u64,
    seed: u64,
) {
    const FINAL_CLTV: u32 = 1_000;
    let payee = nodes[to].node.get_our_node_id();
    let preimage = PaymentPreimage(sha256::Hash::hash(&seed.to_le_bytes()).to_byte_array());
    let hash = PaymentHash(sha256::Hash::hash(&preimage.0).to_byte_array());
    let secret = nodes[to]
        .node
        .create_inbound_payment_for_hash(hash, Some(amount_msat), 7200, None)
        .expect("inbound payment");
    let params = RouteParameters::from_payment_params_and_value(
        PaymentParameters::from_node_id(payee, FINAL_CLTV),
        amount_msat,
    );
    let route = Route {
        paths: vec![Path {
            hops: vec![RouteHop {
                pubkey: payee,
                node_features: nodes[to].node.node_features(),
                short_channel_id: scid,
                channel_features: nodes[to].node.channel_features(),
                fee_msat: amount_msat,
                cltv_expiry_delta: FINAL_CLTV,
                maybe_announced_channel: true,
            }],
            blinded_tail: None,
        }],
        route_params: Some(params.clone()),
    };
    nodes[from]
        .router
        .expect_find_route(params.clone(), Ok(route));
    nodes[from]
        .node
        .send_payment(
            hash,
            RecipientOnionFields::secret_only(secret),
            PaymentId(hash.0),
            params,
            Retry::Attempts(0),
        )
        .expect("send");
    check_added_monitors(&nodes[from], 1);
    pass_along_route(&nodes[from], &[&[&nodes[to]]], amount_msat, hash, secret);
}

/// Two LDK nodes with `n` channels between them, one HTLC in flight each way on every channel;
/// node 0's monitors moved into a [`LdkNode`].
pub fn setup(n: usize) -> LdkNode {
    let started = Instant::now();
    let chanmon_cfgs = leak(create_chanmon_cfgs(2));
    let node_cfgs = leak(create_node_cfgs(2, chanmon_cfgs));
    let chanmgrs = leak(create_node_chanmgrs(2, node_cfgs, &[None, None]));
    let nodes: Vec<Node<'static, 'static, 'static>> = create_network(2, node_cfgs, chanmgrs);
    for node in &nodes {
        // The test network picks a block connection style at random; some re-deliver every
        // earlier block. Full blocks through `Listen`, always.
        *node.connect_style.borrow_mut() = ConnectStyle::FullBlockViaListen;
        // Channels' SCID aliases are drawn from the blocks up to a month behind the tip: with
        // fewer blocks they all fall in one block and thousands of them collide.
        connect_blocks(node, 10_000);
    }
    // LDK accepts at most 4 unconfirmed inbound channels from a peer: open them 4 at a time and
    // confirm each group's funding transactions in one block.
    let mut opened = 0;
    while opened < n {
        let group = (n - opened).min(4);
        let funding: Vec<Transaction> = (0..group)
            .map(|_| {
                create_chan_between_nodes_with_value_init(&nodes[0], &nodes[1], 100_000, 50_000_000)
            })
            .collect();
        let refs: Vec<&Transaction> = funding.iter().collect();
        for node in &nodes {
            mine_transactions(node, &refs);
        }
        exchange(&nodes);
        opened += group;
        if opened % 500 == 0 {
            eprintln!("ldk: {opened} channels funded in {:.0?}", started.elapsed());
        }
    }
    for node in &nodes {
        connect_blocks(node, CHAN_CONFIRM_DEPTH);
    }
    exchange(&nodes);
    let channels = nodes[0].node.list_usable_channels();
    assert_eq!(channels.len(), n, "every channel is usable");
    eprintln!("ldk: {n} channels ready in {:.0?}", started.elapsed());
    for (i, c) in channels.iter().enumerate() {
        let scid = c.short_channel_id.expect("confirmed");
        send_over(&nodes, 0, 1, scid, 2_000_000, 2 * i as u64);
        send_over(&nodes, 1, 0, scid, 2_000_000, 2 * i as u64 + 1);
        if (i + 1) % 1000 == 0 {
            eprintln!(
                "ldk: {} channels with htlcs in {:.0?}",
                i + 1,
                started.elapsed()
            );
        }
    }
    let htlcs: usize = nodes[0]
        .node
        .list_channels()
        .iter()
        .map(|c| c.pending_inbound_htlcs.len() + c.pending_outbound_htlcs.len())
        .sum();
    let (tip, height) = nodes[0].best_block_info();

    let broadcaster = leak(CountingBroadcaster::default());
    let persister = leak(MemoryPersister::default());
    let keys: &'static TestKeysInterface = &chanmon_cfgs[0].keys_manager;
    let monitor: Monitor = ChainMonitor::new(
        None,
        broadcaster,
        leak(QuietLogger),
        leak(FixedFees),
        persister,
        keys,
        PeerStorageKey { inner: [0; 32] },
    );
    let source = &nodes[0].chain_monitor.chain_monitor;
    for id in source.list_monitors() {
        let bytes = source.get_monitor(id).expect("monitor").encode();
        let (_, copy) =
            <(BlockHash, ChannelMonitor<TestChannelSigner>)>::read(&mut &bytes[..], (keys, keys))
                .expect("monitor decodes");
        let status = monitor.watch_channel(id, copy).expect("watched");
        assert_eq!(status, ChannelMonitorUpdateStatus::Completed);
    }
    eprintln!("ldk: setup of {n} channels took {:.0?}", started.elapsed());
    // The two test nodes are never dropped: their `Drop` re-checks everything (slow at this
    // size), and the benchmark process ends soon after.
    std::mem::forget(nodes);
    LdkNode {
        monitor,
        broadcaster,
        persister,
        height,
        tip,
        htlcs,
    }
}
