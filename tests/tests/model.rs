//! Model check (issue 8 §1): random channels of every type (static-remote-key, and anchors or
//! zero-fee commitments with a funded wallet — ample, or thin: 3–6 coins of 30,000–60,000 sat, whose spikes always end)
//! with 0–12 HTLCs each way (dust and not, expiries over the next ~40 blocks,
//! some forwarded, some with the preimage learned at a random height; the outgoing HTLCs and the
//! incoming ones are committed in two updates, so the peer's revoked commitment carries HTLCs;
//! in one case of three a third update, signed for the peer but not yet revoked for, puts 1–3
//! more HTLCs on its pending commitment alone) and random event traces — empty blocks; the
//! peer's close on its current, pending or revoked commitment, a cooperative close (when no HTLC
//! is in flight), or ours; the peer's preimage
//! claims and timeouts; our claims mined; reorgs of depth 1..=3 and 4..=10 (beyond
//! `reorg_safety_depth`) that re-include or drop transactions, and reorgs that swap which
//! commitment confirmed; fee spikes (estimates ×50 and back, and spikes to 150 sat/vB that end
//! after 1–4 blocks); a mempool refusing every broadcast of
//! a block (fee, conflict and script reasons); the peer's preimage claims and its commitment
//! seen in the mempool before (or instead of) confirming — and in the end phase every other
//! block —, and leaving it (replaced, conflicted, evicted, confirmed); a crash at any action
//! index of a block's step
//! (the actions after it never executed) and plain restarts from the store. After every step
//! the invariants of DESIGN.md are checked (2, 3, 4 through `check_durable`, 6, 7 — the whole
//! output as budget for justice transactions —, 8) and the resolution reports, the latest close
//! summary and the ledger agree on every output (outcome, amount, fees; issue 14 §1); at the end
//! of each trace, once the chain is
//! 20+ blocks past every expiry, no output of ours is stuck (1; only an anchor, or an output
//! whose budget cannot pay the relay fee for its claim, may be left), the ledger agrees with a small
//! reference model of who is entitled to each HTLC output (on a breach: every output but the
//! anchors is ours), and every upstream failure the final chain contradicts was reported as a
//! loss (5, deep range). The engine's ledger, resolution reports and close summary must also
//! equal the reference ledger (`model/reference.rs`, issue 20 §2): written from BOLT 3 and 5,
//! it reads each output's owner from the commitment as built and the script path of the
//! witness that spent it, never from the engine, and decides every output's status, amount,
//! outcome and the totals.
//!
//! A third generator (issue 20 §1) adds, on every channel type, a signer that is down for 1–3
//! blocks (also from the moment we ask for a force close), a wallet that cannot fund for 1–3
//! blocks, signing and funding answers that come a block late (after the engine superseded
//! the requests), wallet balances, and crashes at any action index of a block's step (drawn
//! over all the actions the step has, counted on a copy of the node, as in every generator).
//! At the end, a channel
//! still open must have had no reason to close: no force close asked for, no outgoing HTLC
//! with an output on our commitment past its expiry, no incoming one there past its expiry
//! whose preimage we learned before. `MODEL_FAULTY_CASES` sets its count.
//! A fourth generator (issue 20 §1, `model/neighbours.rs`) puts the case's channel beside one to
//! five more channels of the node, each of any type with up to four HTLCs each way: one chain
//! (every reorg reaches their closes too), one fee wallet (a thin one must fund them all), one
//! signer, the same refusals and crashes. Their peers broadcast their current or revoked
//! commitment, or we ask for a close, or the engine must (an expired HTLC); they never claim an
//! HTLC. One neighbour in four lost data (an update it never heard of, then
//! `DataLossDetected`): it must never broadcast its commitment, and only the peer's future
//! commitment closes it (the reference then expects a `FutureRemote` close with our balance and
//! anchors alone to track). Every neighbour gets the end checks of the case's channel: still open only without a
//! reason to close; closed, its ledger, reports and summary equal the reference ledger and its
//! close fully resolved. `MODEL_SEVERAL_CASES` sets its count.
//! The simulated node answers a broadcast as Bitcoin Core would in two ways a reorg makes
//! matter (`Harness::broadcast_outcome`): a transaction spending an output the chain spent with
//! another is refused `bad-txns-inputs-missingorspent`, and so is one spending an output of a
//! transaction off the chain that conflicts with it (a wallet coin whose creating transaction a
//! reorg dropped and a replacement took the place of) — accepting those, as it once did, left a
//! claim rebroadcast for good and never told to re-fund.
//! Every 100 cases the run prints the distribution of what was generated (channel types, reorg
//! depths, crash points, failures, channels per case, the neighbours' closes, and how many
//! closes and outputs the reference ledger was compared on).
//!
//! CI runs 24 cases (static remote key and anchors), 12 of zero-fee commitments
//! (`MODEL_ZERO_FEE_CASES`), 12 with failing signers and wallets, 8 of several channels, and one case of a channel with 100–150 HTLCs each way (`MODEL_LARGE_CASES`;
//! `MODEL_LARGE_MAX=483` for the protocol maximum).
//! A longer run:
//!
//! ```text
//! PROPTEST_CASES=1000 cargo test -p contractcourt-tests --test model --release
//! ```
//!
//! `PROPTEST_CASES`, when set, is every generator's count: proptest applies it over each
//! configuration, the `MODEL_*_CASES` variables included. To give the generators counts of
//! their own, leave it unset and run each by name with its variable (`MODEL_LARGE_CASES=3 …
//! large_channels_keep_the_invariants`).
//!
//! `MODEL_CRASH_ANYWHERE=1` also runs the O(n²) `check_crash_anywhere` on every trace.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, FeeRate, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use contractcourt_core::action::{Action, CloseSummary, FailReason, Outcome, Report, Resolution};
use contractcourt_core::bolt3::commitment::BuiltCommitment;
use contractcourt_core::bolt3::{scripts, ChannelType, PaymentHash};
use contractcourt_core::chain::exposure::exposures;
use contractcourt_core::chain::ledger::OutputStatus;
use contractcourt_core::chain::Config;
use contractcourt_core::channel::ArbState;
use contractcourt_core::event::{
    Event, FeeConditions, FeeEstimate, ForceCloseReason, IncomingLeg, MempoolRemovalReason,
    PreimageSource,
};
use contractcourt_core::policy::{
    check_final, check_package_fee, check_standard, PolicyConfig, PolicyError,
};
use contractcourt_core::resolver::Stage;
use contractcourt_core::sim::{SimChannel, SimHtlc, SimSetup};
use contractcourt_core::sweeper::reserve::fee_reserve;
use contractcourt_core::sweeper::SweeperConfig;
use contractcourt_core::testkit::verify_with_bitcoin_core;
use contractcourt_core::types::{ChannelId, HtlcDirection, HtlcKey, Party, RawTx};
use contractcourt_tests::{Harness, START_HEIGHT};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;

#[path = "model/neighbours.rs"]
mod neighbours;
#[path = "model/reference.rs"]
mod reference;

use neighbours::{Neighbour, NeighbourMove, NeighbourSpec};

/// Where sweeps pay to.
fn destination() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0x11; 20]))
}

fn config() -> Config {
    Config {
        sweep_to: Some(SweeperConfig {
            destination: destination(),
            fallback_feerate: FeeRate::from_sat_per_vb_u32(2),
            fee_wallet: None,
        }),
        ..Config::default()
    }
}

/// One HTLC of the generated channel.
#[derive(Clone, Debug)]
struct HtlcSpec {
    outgoing: bool,
    amount_msat: u64,
    /// Expiry, in blocks after `START_HEIGHT`.
    expiry_offset: u32,
    /// Outgoing only: forwarded from an upstream HTLC.
    circuit: bool,
    /// Outgoing only: the peer knows the preimage (and may claim on-chain).
    peer_knows: bool,
    /// We learn the preimage at some point (invoice for incoming, downstream for outgoing —
    /// outgoing only when the peer knows it).
    we_learn: bool,
}

#[derive(Clone, Debug)]
enum Op {
    Empty(u32),
    PeerClose,
    /// The peer broadcasts its pending commitment: signed by us, its previous one not yet
    /// revoked (the case's `pending` HTLCs are only on it).
    PeerPendingClose,
    /// The peer broadcasts its previous (revoked) commitment.
    PeerRevokedClose,
    /// Both sign a cooperative close (only possible with no HTLC in flight).
    CoopClose,
    OurClose,
    MineOurs,
    PeerClaim(Index),
    PeerTimeout(Index),
    Learn(Index),
    /// Depth 1..=10: within `reorg_safety_depth` (6) and beyond it.
    Reorg {
        depth: u32,
        reinclude: bool,
    },
    /// Reorg the close out and confirm the other party's commitment instead.
    ReorgSwap,
    /// The fee estimates become `multiplier` × the base (2 sat/vB).
    Fees(u64),
    /// A spike that ends: estimates at 150 sat/vB for this many blocks, then back to the base.
    Spike(u32),
    /// The mempool refuses every broadcast of the next block with this reason.
    Reject(&'static str),
    /// A block whose step's actions are executed only up to an index drawn over all of them:
    /// the node crashes there and restarts from the store.
    CrashAnyAction(Index),
    /// The signer refuses every request for this many blocks (down, locked), then answers.
    SignerDown(u32),
    /// We ask for a force close while the signer is down, and it stays down this many blocks.
    SignerDownAtClose(u32),
    /// The wallet cannot fund any request for this many blocks, then can.
    WalletDown(u32),
    /// A block's signing and funding requests are answered a block late.
    LateAnswers,
    /// The node tells the wallet's confirmed balance.
    WalletBalance(u64),
    /// The peer's preimage claim of an HTLC on its confirmed commitment appears in the mempool
    /// (unconfirmed: it may confirm later, or never).
    MempoolPeerClaim(Index),
    /// The peer's current commitment appears in the mempool while the funding is unspent.
    MempoolPeerClose,
    /// A transaction of the peer's leaves the mempool: replaced (it may come back), conflicted
    /// or evicted.
    MempoolDrop(Index, u8),
    /// A block with the peer's transactions in the mempool.
    MineMempool,
    Restart,
    /// A move of one of the node's other channels ([`neighbours`]).
    Neighbour(Index, NeighbourMove),
}

#[derive(Clone, Debug)]
struct Case {
    seed: u64,
    anchors: bool,
    /// Zero-fee commitments (with `anchors`: the same wallet and HTLC amounts).
    zero_fee: bool,
    /// The fee wallet's confirmed coins (anchors): how many, and the value of each.
    wallet: (u32, u64),
    htlcs: Vec<HtlcSpec>,
    /// HTLCs of a last update we signed for the peer that it has not revoked for yet: on its
    /// pending commitment only.
    pending: Vec<HtlcSpec>,
    ops: Vec<Op>,
    /// The node's other channels ([`neighbours`]; only the several-channels generator has any).
    neighbours: Vec<NeighbourSpec>,
}

/// HTLC amounts: dust and not. Under anchors the smallest claim (a zero-fee HTLC transaction
/// with a wallet input and change, ~270 vB) must be worth its fee at the relay floor with a 50%
/// budget, so amounts start at 5,000 sat there; smaller ones are covered by the sweeps tests.
fn amount(anchors: bool) -> BoxedStrategy<u64> {
    if anchors {
        return (5_000u64..25_000).prop_map(|s| s * 1000).boxed();
    }
    prop_oneof![
        (300u64..3_000).prop_map(|s| s * 1000),
        (3_000u64..25_000).prop_map(|s| s * 1000),
    ]
    .boxed()
}

fn htlc(outgoing: bool, anchors: bool) -> impl Strategy<Value = HtlcSpec> {
    (
        amount(anchors),
        3u32..=40,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            move |(amount_msat, expiry_offset, circuit, peer_knows, we_learn)| HtlcSpec {
                outgoing,
                amount_msat,
                expiry_offset,
                circuit: outgoing && circuit,
                peer_knows: outgoing && peer_knows,
                we_learn: if outgoing {
                    peer_knows && we_learn
                } else {
                    we_learn
                },
            },
        )
}

fn op() -> BoxedStrategy<Op> {
    prop_oneof![
        6 => (1u32..=3).prop_map(Op::Empty),
        1 => Just(Op::PeerClose),
        1 => Just(Op::PeerPendingClose),
        1 => Just(Op::PeerRevokedClose),
        1 => Just(Op::CoopClose),
        1 => Just(Op::OurClose),
        5 => Just(Op::MineOurs),
        2 => any::<Index>().prop_map(Op::PeerClaim),
        2 => any::<Index>().prop_map(Op::PeerTimeout),
        3 => any::<Index>().prop_map(Op::Learn),
        2 => (1u32..=3, any::<bool>()).prop_map(|(depth, reinclude)| Op::Reorg { depth, reinclude }),
        1 => (4u32..=10, any::<bool>()).prop_map(|(depth, reinclude)| Op::Reorg { depth, reinclude }),
        1 => Just(Op::ReorgSwap),
        1 => prop_oneof![Just(1u64), Just(50)].prop_map(Op::Fees),
        1 => (1u32..=4).prop_map(Op::Spike),
        1 => prop_oneof![
            Just("min relay fee not met"),
            Just("insufficient fee, rejecting replacement"),
            Just("bad-txns-inputs-missingorspent"),
            Just("mandatory-script-verify-flag-failed (Signature must be zero for failed CHECK(MULTI)SIG operation)"),
        ]
        .prop_map(Op::Reject),
        1 => any::<Index>().prop_map(Op::CrashAnyAction),
        1 => Just(Op::Restart),
        2 => any::<Index>().prop_map(Op::MempoolPeerClaim),
        1 => Just(Op::MempoolPeerClose),
        1 => (any::<Index>(), 0u8..3).prop_map(|(i, r)| Op::MempoolDrop(i, r)),
        1 => Just(Op::MineMempool),
    ]
    .boxed()
}

/// [`op`], with a signer and a wallet that fail, refuse or answer late, wallet balances, and
/// crashes at any action index of a step.
fn faulty_op() -> BoxedStrategy<Op> {
    prop_oneof![
        10 => op(),
        1 => (1u32..=3).prop_map(Op::SignerDown),
        1 => (1u32..=3).prop_map(Op::SignerDownAtClose),
        1 => (1u32..=3).prop_map(Op::WalletDown),
        1 => Just(Op::LateAnswers),
        1 => (0u64..=2_000_000).prop_map(Op::WalletBalance),
        2 => any::<Index>().prop_map(Op::CrashAnyAction),
    ]
    .boxed()
}

/// HTLCs each way: none (so a cooperative close can happen) about one case in six, else up to
/// `max` (in `large` cases, from 100 to `max`).
fn htlcs(outgoing: bool, anchors: bool, max: usize) -> impl Strategy<Value = Vec<HtlcSpec>> {
    if max > 12 {
        return prop::collection::vec(htlc(outgoing, anchors), 100..=max).boxed();
    }
    prop_oneof![
        1 => Just(Vec::new()),
        5 => prop::collection::vec(htlc(outgoing, anchors), 0..=max),
    ]
    .boxed()
}

/// The HTLCs of a pending update (none in two cases of three; none in large cases).
fn pending(anchors: bool, max: usize) -> impl Strategy<Value = Vec<HtlcSpec>> {
    if max > 12 {
        return Just(Vec::new()).boxed();
    }
    let one = any::<bool>().prop_flat_map(move |outgoing| htlc(outgoing, anchors));
    prop_oneof![
        2 => Just(Vec::new()),
        1 => prop::collection::vec(one, 1..=3),
    ]
    .boxed()
}

/// The fee wallet of an anchors case: ample (8 coins of 200,000 sat) in one case of two, else
/// thin — 3 to 6 coins of 30,000 to 60,000 sat, too few to fund every claim at once at a spike.
/// Large cases get a wallet ample for them: 24 coins of 400,000 sat, 9.6 million, above every
/// HTLC claim's budget and the CPFP's together (483 HTLCs below 25,000 sat: 6.0 million and
/// 3.0 million). 1.6 million was not: at 50 sat/vB each claim pays its whole budget, half its
/// HTLC, and the wallet ran dry after about a hundred claims — a loss, but no defect, as a thin
/// wallet's at a spike that never ends.
fn wallet(max: usize) -> BoxedStrategy<(u32, u64)> {
    if max > 12 {
        return Just((24u32, 400_000u64)).boxed();
    }
    prop_oneof![
        Just((8u32, 200_000u64)),
        (3u32..=6, 30u64..=60).prop_map(|(coins, k)| (coins, k * 1_000)),
    ]
    .boxed()
}

/// A channel with up to `max` HTLCs each way and a trace of `ops` operations. With a thin
/// wallet every fee spike ends (a spike that never ends can leave a thin wallet unable to pay
/// for a claim at all: a loss, but no defect).
fn case(max: usize, ops: Range<usize>) -> impl Strategy<Value = Case> {
    case_of(
        max,
        ops,
        any::<bool>().prop_map(|anchors| (anchors, false)),
        op,
    )
}

/// [`case`] for zero-fee commitment channels only.
fn zero_fee_case(max: usize, ops: Range<usize>) -> impl Strategy<Value = Case> {
    case_of(max, ops, Just((true, true)), op)
}

/// [`case`] of any channel type with [`faulty_op`]s.
fn faulty_case(max: usize, ops: Range<usize>) -> impl Strategy<Value = Case> {
    let types = prop_oneof![
        Just((false, false)),
        Just((true, false)),
        Just((true, true)),
    ];
    case_of(max, ops, types, faulty_op)
}

/// A case whose channel type (`anchors`, `zero_fee`) comes from `types`.
fn case_of(
    max: usize,
    ops: Range<usize>,
    types: impl Strategy<Value = (bool, bool)>,
    ops_of: fn() -> BoxedStrategy<Op>,
) -> impl Strategy<Value = Case> {
    types.prop_flat_map(move |(anchors, zero_fee)| {
        (
            any::<u64>(),
            wallet(max),
            htlcs(true, anchors, max),
            htlcs(false, anchors, max),
            pending(anchors, max),
            prop::collection::vec(ops_of(), ops.clone()),
        )
            .prop_map(move |(seed, wallet, mut out, inc, pending, mut ops)| {
                out.extend(inc);
                if wallet.1 < 200_000 {
                    for op in ops.iter_mut() {
                        if matches!(op, Op::Fees(m) if *m > 1) {
                            *op = Op::Spike(2);
                        }
                    }
                }
                Case {
                    seed,
                    anchors,
                    zero_fee,
                    wallet,
                    htlcs: out,
                    neighbours: Vec::new(),
                    pending,
                    ops,
                }
            })
    })
}

fn upstream_key(i: usize) -> HtlcKey {
    HtlcKey {
        channel: ChannelId([7; 32]),
        htlc_id: i as u64,
        direction: HtlcDirection::Incoming,
    }
}

/// The model: the harness plus what the test knows about the channel and the chain.
struct Model {
    h: Harness,
    id: ChannelId,
    specs: Vec<HtlcSpec>,
    htlcs: Vec<SimHtlc>,
    /// Payment hash of each HTLC key that may be settled or failed upstream.
    hash_of: BTreeMap<HtlcKey, PaymentHash>,
    /// Height at which we learned each HTLC's preimage (index → height).
    learned: BTreeMap<usize, u32>,
    funding: TxOut,
    salt: u32,
    /// Transcript ranges produced by `Resumed` itself (re-emissions).
    resumed: Vec<Range<usize>>,
    checked_actions: usize,
    checked_broadcasts: usize,
    /// Every transaction the peer made (for prevouts).
    peer_txs: Vec<Transaction>,
    known: BTreeMap<PaymentHash, bool>,
    decisions: BTreeMap<HtlcKey, (usize, usize)>,
    steps: usize,
    early_dust_fails: usize,
    /// See [`Model::commitments`].
    commitments: Vec<(Party, u64, BuiltCommitment)>,
    /// The peer's HTLC transactions, signed once each: (commitment number, HTLC index).
    peer_htlc_txs: RefCell<BTreeMap<(u64, usize), Option<Transaction>>>,
    /// The peer's transactions in the mempool (told to the engine with `MempoolTx`).
    mempool: Vec<Transaction>,
    /// The latest resolution report of each output and the latest close summary (issue 14 §1).
    resolutions: BTreeMap<OutPoint, Resolution>,
    summary: Option<CloseSummary>,
    checked_reports: usize,
    /// What the trace did, for the run's distribution: reorg depths, crash points (the action
    /// index out of how many the step had), failing signers and wallets.
    tally: BTreeMap<String, u64>,
    /// Whether we asked for a force close while the channel was open.
    close_requested: bool,
    /// The node's other channels ([`neighbours`]).
    neighbours: Vec<Neighbour>,
    /// The latest close summary of every channel.
    summaries: BTreeMap<ChannelId, CloseSummary>,
}

/// One channel as the end checks see it: the case's own, or a neighbour.
struct Lane<'a> {
    id: ChannelId,
    htlcs: &'a [SimHtlc],
    /// Whether the peer knows each HTLC's preimage.
    peer_knows: Vec<bool>,
    commitments: &'a [(Party, u64, BuiltCommitment)],
    /// Height at which we learned each HTLC's preimage (index → height).
    learned: &'a BTreeMap<usize, u32>,
    close_requested: bool,
    /// We lost data ([`neighbours`]): only the peer can close, with its future commitment.
    data_loss: bool,
}

/// The funding output of a simulated channel.
fn funding_txout(sim: &SimChannel) -> TxOut {
    let (l, r) = (sim.local.basepoints(), sim.remote.basepoints());
    TxOut {
        value: Amount::from_sat(sim.funding.value_sat),
        script_pubkey: scripts::funding_script(&l.funding_pubkey, &r.funding_pubkey).to_p2wsh(),
    }
}

/// Add `specs` to channel `id` in two updates — the outgoing HTLCs, then the incoming ones —
/// so the peer's previous commitment (revoked, and a breach if it confirms) carries HTLCs too.
/// The HTLCs and their specs, in the same order.
fn add_htlcs(h: &mut Harness, id: ChannelId, specs: &[HtlcSpec]) -> (Vec<SimHtlc>, Vec<HtlcSpec>) {
    let mut htlcs = Vec::new();
    let mut ordered = Vec::new();
    for outgoing in [true, false] {
        h.with_sim(id, |sim| {
            let mut added = false;
            for s in specs.iter().filter(|s| s.outgoing == outgoing) {
                let dir = if s.outgoing {
                    HtlcDirection::Outgoing
                } else {
                    HtlcDirection::Incoming
                };
                htlcs.push(
                    sim.add_htlc(dir, s.amount_msat, START_HEIGHT + s.expiry_offset)
                        .expect("balances cover 12 HTLCs each way"),
                );
                ordered.push(s.clone());
                added = true;
            }
            if added {
                sim.commit().expect("commit")
            } else {
                Vec::new()
            }
        });
    }
    (htlcs, ordered)
}

impl Model {
    fn new(case: &Case) -> Model {
        let mut h = Harness::new(config());
        if !case.anchors && case.neighbours.iter().any(|n| n.kind > 0) {
            // The neighbours' claims need the wallet too.
            h.fund_wallet(case.wallet.0, case.wallet.1);
        }
        let channel_type = if case.anchors {
            // The wallet funds zero-fee HTLC transactions and CPFP children.
            h.fund_wallet(case.wallet.0, case.wallet.1);
            if case.zero_fee {
                ChannelType::ZeroFeeCommitments
            } else {
                ChannelType::AnchorsZeroFeeHtlc
            }
        } else {
            ChannelType::StaticRemoteKey
        };
        let mut setup = SimSetup::new(case.seed, channel_type);
        if case.htlcs.len() > 24 {
            // Room for hundreds of HTLCs each way: 1 BTC, half each side's.
            setup.funding_sat = 100_000_000;
            setup.local_balance_msat = 50_000_000_000;
        }
        let id = h.open(setup);
        let (mut htlcs, mut specs) = add_htlcs(&mut h, id, &case.htlcs);
        // A last update signed for the peer only: its HTLCs are on the peer's pending
        // commitment alone (one the balances cannot cover is left out).
        h.with_sim(id, |sim| {
            for s in &case.pending {
                let dir = if s.outgoing {
                    HtlcDirection::Outgoing
                } else {
                    HtlcDirection::Incoming
                };
                if let Ok(x) = sim.add_htlc(dir, s.amount_msat, START_HEIGHT + s.expiry_offset) {
                    htlcs.push(x);
                    specs.push(s.clone());
                }
            }
            if specs.len() > case.htlcs.len() {
                sim.propose().expect("propose")
            } else {
                Vec::new()
            }
        });
        let funding = funding_txout(h.sim(id));
        let mut hash_of = BTreeMap::new();
        for (i, (s, x)) in specs.iter().zip(&htlcs).enumerate() {
            if s.circuit {
                h.feed(Event::CircuitAdded {
                    outgoing: x.key,
                    incoming: IncomingLeg {
                        htlc: upstream_key(i),
                        cltv_expiry: x.cltv_expiry + 10,
                        amount_msat: x.amount_msat + 1_000,
                    },
                });
                hash_of.insert(upstream_key(i), x.payment_hash());
            }
            if !s.outgoing {
                hash_of.insert(x.key, x.payment_hash());
            }
        }
        let mut m = Model {
            h,
            id,
            specs,
            htlcs,
            hash_of,
            learned: BTreeMap::new(),
            funding,
            salt: 1,
            resumed: Vec::new(),
            checked_actions: 0,
            checked_broadcasts: 0,
            peer_txs: Vec::new(),
            known: BTreeMap::new(),
            decisions: BTreeMap::new(),
            steps: 0,
            early_dust_fails: 0,
            commitments: Vec::new(),
            peer_htlc_txs: RefCell::new(BTreeMap::new()),
            mempool: Vec::new(),
            resolutions: BTreeMap::new(),
            summary: None,
            checked_reports: 0,
            tally: BTreeMap::new(),
            close_requested: false,
            neighbours: Vec::new(),
            summaries: BTreeMap::new(),
        };
        m.commitments = Model::commitments(m.h.sim(id));
        m.check_step();
        if !case.neighbours.is_empty() {
            m.open_neighbours(case);
        }
        m
    }

    /// The case's own channel as a [`Lane`].
    fn lane(&self) -> Lane<'_> {
        Lane {
            id: self.id,
            htlcs: &self.htlcs,
            peer_knows: self.specs.iter().map(|s| s.peer_knows).collect(),
            commitments: &self.commitments,
            learned: &self.learned,
            close_requested: self.close_requested,
            data_loss: false,
        }
    }

    /// The confirmed close of `lane` on the active chain: (holder, commitment number, txid,
    /// height, the commitment as built).
    fn lane_close<'a>(
        &'a self,
        lane: &Lane<'a>,
    ) -> Option<(Party, u64, Txid, u32, &'a BuiltCommitment)> {
        let funding = self.h.sim(lane.id).funding.outpoint;
        let (tx, height) = self.spender(&funding)?;
        let txid = tx.compute_txid();
        lane.commitments
            .iter()
            .find(|(_, _, b)| b.tx.compute_txid() == txid)
            .map(|(holder, n, b)| (*holder, *n, txid, height, b))
    }

    /// Whether `lane`'s confirmed close is the peer's revoked commitment.
    fn lane_breach(&self, lane: &Lane) -> bool {
        let current = self.h.sim(lane.id).remote_commitment_number();
        self.lane_close(lane)
            .is_some_and(|(holder, n, ..)| holder == Party::Remote && n < current)
    }

    fn tip(&self) -> u32 {
        self.h.height()
    }

    fn funding_outpoint(&self) -> OutPoint {
        self.h.sim(self.id).funding.outpoint
    }

    /// The funding outputs of the case's channel and of its neighbours.
    fn fundings(&self) -> Vec<(OutPoint, TxOut)> {
        let mut v = vec![(self.funding_outpoint(), self.funding.clone())];
        v.extend(self.neighbours.iter().map(|n| {
            (
                self.h.sim(n.id).funding.outpoint,
                funding_txout(self.h.sim(n.id)),
            )
        }));
        v
    }

    /// Unspent outputs of the active chain (plus the funding outputs), with their heights.
    fn utxos(&self) -> BTreeMap<OutPoint, (TxOut, u32)> {
        let mut u = BTreeMap::new();
        for (outpoint, txout) in self.fundings() {
            u.insert(outpoint, (txout, START_HEIGHT - 10));
        }
        for b in &self.h.blocks {
            for tx in &b.txs {
                for i in &tx.input {
                    u.remove(&i.previous_output);
                }
                let txid = tx.compute_txid();
                for (v, o) in tx.output.iter().enumerate() {
                    u.insert(
                        OutPoint {
                            txid,
                            vout: v as u32,
                        },
                        (o.clone(), b.height),
                    );
                }
            }
        }
        u
    }

    /// The transaction of the active chain spending `outpoint`, with its height.
    fn spender(&self, outpoint: &OutPoint) -> Option<(Transaction, u32)> {
        self.h.blocks.iter().find_map(|b| {
            b.txs
                .iter()
                .find(|t| t.input.iter().any(|i| i.previous_output == *outpoint))
                .map(|t| (t.0.clone(), b.height))
        })
    }

    /// The commitments that can confirm — ours, the peer's current one and its previous
    /// (revoked) one — built once: the channel does not change after the setup.
    fn commitments(sim: &SimChannel) -> Vec<(Party, u64, BuiltCommitment)> {
        let remote = sim.remote_commitment_number();
        let mut candidates = vec![
            (Party::Local, sim.local_commitment_number()),
            (Party::Remote, remote),
        ];
        if remote >= 1 {
            candidates.push((Party::Remote, remote - 1));
        }
        candidates.extend(sim.remote_pending_number().map(|n| (Party::Remote, n)));
        candidates
            .into_iter()
            .filter_map(|(holder, n)| Some((holder, n, sim.built_commitment(holder, n).ok()?)))
            .collect()
    }

    /// The confirmed close on the active chain: (holder, commitment number, txid, height).
    fn close(&self) -> Option<(Party, u64, Txid, u32)> {
        self.close_built()
            .map(|(holder, n, txid, height, _)| (holder, n, txid, height))
    }

    /// [`Model::close`] with the commitment as built.
    fn close_built(&self) -> Option<(Party, u64, Txid, u32, &BuiltCommitment)> {
        let (tx, height) = self.spender(&self.funding_outpoint())?;
        let txid = tx.compute_txid();
        self.commitments
            .iter()
            .find(|(_, _, b)| b.tx.compute_txid() == txid)
            .map(|(holder, n, b)| (*holder, *n, txid, height, b))
    }

    /// How the channel ended on the final chain, for the run's statistics.
    fn close_kind(&self) -> &'static str {
        match self.close() {
            Some((Party::Local, ..)) => "ours",
            Some(_) if self.breach() => "breach",
            Some((_, n, ..)) if Some(n) == self.h.sim(self.id).remote_pending_number() => {
                "theirs pending"
            }
            Some(_) => "theirs",
            None if self.spender(&self.funding_outpoint()).is_some() => "cooperative",
            None => "open",
        }
    }

    /// Whether the confirmed close is the peer's revoked commitment (a breach).
    fn breach(&self) -> bool {
        let current = self.h.sim(self.id).remote_commitment_number();
        self.close()
            .is_some_and(|(holder, n, _, _)| holder == Party::Remote && n < current)
    }

    /// Reload the engine from its store and feed `Resumed`, as a restart does.
    fn restart(&mut self) {
        let cfg = self.h.config.clone();
        // As a driver restarts: lazily, quiet open channels decoded when an event needs them.
        self.h.arb = self.h.store.load_lazily(cfg);
        let dormant = match self.h.arb.dormant_count() {
            0 => "restarts: every channel decoded",
            _ => "restarts: some channels dormant",
        };
        *self.tally.entry(dormant.to_string()).or_default() += 1;
        let tip = self.h.arb.tip();
        let start = self.h.transcript.len();
        let actions = self.h.feed(Event::Resumed { tip });
        self.resumed.push(start..self.h.transcript.len());
        self.h.answer(&actions);
        self.check_step();
    }

    /// Fee estimates of `multiplier` × 2 sat/vB for every target.
    fn fees(&mut self, multiplier: u64) {
        let rate = FeeRate::from_sat_per_vb(2 * multiplier).unwrap_or(FeeRate::MAX);
        let estimates = [1u16, 3, 6, 12, 25, 144]
            .into_iter()
            .map(|target_blocks| FeeEstimate {
                target_blocks,
                feerate: rate,
            })
            .collect();
        let relay = FeeRate::from_sat_per_vb_u32(1);
        let actions = self.h.feed(Event::FeeConditions(FeeConditions {
            estimates,
            mempool_min: relay,
            min_relay: relay,
            incremental_relay: relay,
        }));
        self.h.answer(&actions);
        self.check_step();
    }

    /// The output of HTLC `i` on the confirmed close, if it has one.
    fn htlc_outpoint(&self, i: usize) -> Option<OutPoint> {
        let (holder, _, txid, _, built) = self.close_built()?;
        let key = self.htlcs[i].key;
        let offered = (key.direction == HtlcDirection::Outgoing) == (holder == Party::Local);
        let vout = built.htlc_output_index(offered, key.htlc_id)?;
        Some(OutPoint { txid, vout })
    }

    /// Whether our outgoing HTLC is trimmed on our current commitment (on it, without an
    /// output: an HTLC of the peer's pending commitment alone is not).
    fn dust_on_ours(&self, key: &HtlcKey) -> bool {
        let sim = self.h.sim(self.id);
        let on_ours = sim
            .state(Party::Local, sim.local_commitment_number())
            .is_ok_and(|s| s.htlcs.contains_key(key));
        on_ours
            && self
                .commitments
                .iter()
                .find(|(holder, _, _)| *holder == Party::Local)
                .is_some_and(|(_, _, b)| b.htlc_output_index(true, key.htlc_id).is_none())
    }

    /// Mine a block with those of `candidates` that are valid on the tip (in order; a
    /// transaction may spend an earlier one of the same block).
    fn mine_block(&mut self, candidates: Vec<Transaction>, salted: bool) {
        let txs = self.valid_on_tip(candidates);
        let salt = if salted {
            self.salt += 1;
            self.salt
        } else {
            0
        };
        self.h.mine_salted(txs, salt);
        self.check_step();
        self.mempool_after_block();
    }

    /// Those of `candidates` a block on the tip can carry, in order (a transaction may spend an
    /// earlier one of the same block).
    fn valid_on_tip(&self, candidates: Vec<Transaction>) -> Vec<Transaction> {
        let next = self.tip() + 1;
        let mut utxos = self.utxos();
        let mut txs: Vec<Transaction> = Vec::new();
        for tx in candidates {
            if txs.iter().any(|t| t.compute_txid() == tx.compute_txid()) {
                continue;
            }
            let heights: Option<Vec<Option<u32>>> = tx
                .input
                .iter()
                .map(|i| utxos.get(&i.previous_output).map(|(_, h)| Some(*h)))
                .collect();
            let Some(heights) = heights else { continue };
            if check_final(&tx, next, &heights).is_err() {
                continue;
            }
            for i in &tx.input {
                utxos.remove(&i.previous_output);
            }
            let txid = tx.compute_txid();
            for (v, o) in tx.output.iter().enumerate() {
                utxos.insert(
                    OutPoint {
                        txid,
                        vout: v as u32,
                    },
                    (o.clone(), next),
                );
            }
            txs.push(tx);
        }
        txs
    }

    /// Mine a block of our claims whose step's actions are executed only up to an index drawn
    /// over all of them (counted on a copy of the node that runs the whole step): the node
    /// crashes there, then restarts from the store.
    fn crash_at_any_action(&mut self, idx: &Index) {
        let txs = self.valid_on_tip(self.ours());
        let mut whole = self.h.clone();
        whole.answers.budget = Some(usize::MAX);
        whole.mine_salted(txs.clone(), 0);
        let executed = usize::MAX - whole.answers.budget.unwrap_or(usize::MAX);
        let at = idx.index(executed.max(1));
        let bucket = match at {
            0..=1 => at.to_string(),
            2..=4 => "2-4".to_string(),
            5..=11 => "5-11".to_string(),
            _ => "12+".to_string(),
        };
        *self
            .tally
            .entry(format!("crash at action {bucket}"))
            .or_default() += 1;
        self.h.answers.budget = Some(at);
        self.mine_block(txs, false);
        self.h.answers.budget = None;
        self.restart();
    }

    /// The operator asks for a force close.
    fn our_close(&mut self) {
        if let Ok(actions) = self.h.try_feed(Event::ForceCloseRequested {
            channel: self.id,
            reason: ForceCloseReason::User,
        }) {
            self.close_requested = self.close_requested || self.close().is_none();
            self.h.answer(&actions);
        }
        self.check_step();
    }

    /// Why the channel must have closed on chain by now, if it must: our force close was
    /// requested; an outgoing HTLC with an output on our commitment expired (BOLT 5: the
    /// channel fails once an offered HTLC times out); or an incoming one with an output there
    /// expired although we learned its preimage before (BOLT 2: a fulfilled HTLC the peer does
    /// not remove must be claimed on chain before it expires — the model's peer never removes
    /// one off-chain).
    fn forced_close(&self) -> Option<String> {
        self.lane_forced_close(&self.lane())
    }

    /// [`Model::forced_close`] of any lane.
    fn lane_forced_close(&self, lane: &Lane) -> Option<String> {
        if lane.data_loss {
            // Our commitment may be revoked: never broadcast (BOLT 2); only the peer closes.
            return None;
        }
        if lane.close_requested {
            return Some("our force close request".to_string());
        }
        let sim = self.h.sim(lane.id);
        let on_ours = sim
            .state(Party::Local, sim.local_commitment_number())
            .ok()?;
        let ours = lane
            .commitments
            .iter()
            .find(|(holder, _, _)| *holder == Party::Local)
            .map(|(_, _, b)| b)?;
        lane.htlcs
            .iter()
            .enumerate()
            .filter(|(_, x)| on_ours.htlcs.contains_key(&x.key) && x.cltv_expiry < self.tip())
            .find_map(|(i, x)| {
                let outgoing = x.key.direction == HtlcDirection::Outgoing;
                ours.htlc_output_index(outgoing, x.key.htlc_id)?;
                let id = x.key.htlc_id;
                if outgoing {
                    return Some(format!("outgoing HTLC {id} expired at {}", x.cltv_expiry));
                }
                let learned = *lane.learned.get(&i)?;
                (learned < x.cltv_expiry).then(|| {
                    format!(
                        "incoming HTLC {id}, its preimage learned at {learned}, expired at {}",
                        x.cltv_expiry
                    )
                })
            })
    }

    /// Mine `blocks` blocks of our claims while the signer refuses (`signer`) or the wallet
    /// cannot fund (otherwise) every request, then recover.
    fn refusing(&mut self, signer: bool, blocks: u32) {
        if signer {
            self.h.answers.refuse_signing = Some("signer unavailable".to_string());
        } else {
            self.h.answers.refuse_funding = Some("insufficient funds".to_string());
        }
        for _ in 0..blocks {
            let c = self.ours();
            self.mine_block(c, false);
        }
        self.h.answers.refuse_signing = None;
        self.h.answers.refuse_funding = None;
    }

    /// A block whose signing and funding requests are answered late: after the next block,
    /// when the engine may have superseded them.
    fn late_answers(&mut self) {
        self.h.answers.hold = true;
        let c = self.ours();
        self.mine_block(c, false);
        self.h.answers.hold = false;
        self.mine_block(Vec::new(), false);
        self.h.release_held();
        self.check_step();
    }

    /// The peer's transaction `tx` enters the mempool (once).
    fn enter_mempool(&mut self, tx: Transaction) {
        let txid = tx.compute_txid();
        if self.mempool.iter().any(|t| t.compute_txid() == txid) {
            return;
        }
        let utxos = self.utxos();
        let value_in: u64 = tx
            .input
            .iter()
            .filter_map(|i| utxos.get(&i.previous_output))
            .map(|(o, _)| o.value.to_sat())
            .sum();
        let value_out: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
        self.peer_txs.push(tx.clone());
        self.mempool.push(tx.clone());
        let actions = self.h.feed(Event::MempoolTx {
            fee_sat: value_in.saturating_sub(value_out),
            vsize: tx.vsize() as u64,
            tx: RawTx(tx),
        });
        self.h.answer(&actions);
        self.check_step();
    }

    /// The peer's transaction at `at` in the mempool leaves it.
    fn leave_mempool(&mut self, at: usize, reason: MempoolRemovalReason) {
        let tx = self.mempool.remove(at);
        let actions = self.h.feed(Event::MempoolRemoved {
            txid: tx.compute_txid(),
            reason,
        });
        self.h.answer(&actions);
        self.check_step();
    }

    /// After a block, as a node's mempool tells: the peer's transactions it confirmed leave the
    /// mempool as confirmed, those whose inputs are gone as conflicted.
    fn mempool_after_block(&mut self) {
        let utxos = self.utxos();
        let mut at = 0;
        while at < self.mempool.len() {
            let tx = &self.mempool[at];
            let txid = tx.compute_txid();
            let confirmed = self
                .h
                .blocks
                .iter()
                .any(|b| b.txs.iter().any(|t| t.compute_txid() == txid));
            // An input spent by another transaction, or gone with a reorged-out parent.
            let conflicted = tx
                .input
                .iter()
                .any(|i| !utxos.contains_key(&i.previous_output));
            if confirmed {
                self.leave_mempool(at, MempoolRemovalReason::Confirmed);
            } else if conflicted {
                self.leave_mempool(at, MempoolRemovalReason::Conflict);
            } else {
                at += 1;
            }
        }
    }

    /// Our broadcasts, newest first (a bump wins over the attempt it replaces).
    fn ours(&self) -> Vec<Transaction> {
        let mut v: Vec<Transaction> = self.h.broadcasts.iter().rev().cloned().collect();
        // Parents before children: a second pass for transactions spending earlier ones.
        v.extend(self.h.broadcasts.iter().cloned());
        v
    }

    /// The peer's transaction for HTLC `i` on its confirmed (current) commitment, if any. On a
    /// revoked commitment the peer does not race in this model (`tests/breach.rs` does).
    fn peer_tx(&self, i: usize) -> Option<Transaction> {
        let (holder, n, _, _) = self.close()?;
        if holder != Party::Remote || self.breach() {
            return None;
        }
        let op = self.htlc_outpoint(i)?;
        if self.spender(&op).is_some() {
            return None;
        }
        self.peer_htlc_txs
            .borrow_mut()
            .entry((n, i))
            .or_insert_with(|| {
                self.h
                    .sim(self.id)
                    .htlc_tx(Party::Remote, n, self.htlcs[i].key)
                    .ok()
            })
            .clone()
    }

    fn run(&mut self, op: &Op) {
        self.steps += 1;
        let what = match op {
            Op::Reorg { depth, .. } => Some(format!("reorg depth {depth}")),
            Op::ReorgSwap => Some("reorg swapping the close".to_string()),
            Op::Restart => Some("restart".to_string()),
            Op::SignerDown(n) => Some(format!("signer down {n} blocks")),
            Op::SignerDownAtClose(n) => Some(format!("signer down {n} blocks at our close")),
            Op::WalletDown(n) => Some(format!("wallet down {n} blocks")),
            Op::LateAnswers => Some("late answers".to_string()),
            Op::WalletBalance(_) => Some("wallet balance".to_string()),
            Op::Reject(_) => Some("mempool rejects a block's broadcasts".to_string()),
            Op::MempoolPeerClaim(_) | Op::MempoolPeerClose | Op::MempoolDrop(..) => {
                Some("peer mempool event".to_string())
            }
            _ => None,
        };
        if let Some(what) = what {
            *self.tally.entry(what).or_default() += 1;
        }
        match op {
            Op::Empty(n) => {
                for _ in 0..*n {
                    self.mine_block(Vec::new(), false);
                }
            }
            Op::PeerClose => {
                if self.utxos().contains_key(&self.funding_outpoint()) {
                    let sim = self.h.sim(self.id);
                    let tx = sim
                        .commitment_tx(Party::Remote, sim.remote_commitment_number())
                        .expect("remote commitment");
                    self.peer_txs.push(tx.clone());
                    self.mine_block(vec![tx], false);
                }
            }
            Op::PeerPendingClose => {
                let pending = self.h.sim(self.id).remote_pending_number();
                if let (Some(n), true) =
                    (pending, self.utxos().contains_key(&self.funding_outpoint()))
                {
                    let tx = self
                        .h
                        .sim(self.id)
                        .commitment_tx(Party::Remote, n)
                        .expect("pending commitment");
                    self.peer_txs.push(tx.clone());
                    self.mine_block(vec![tx], false);
                }
            }
            Op::PeerRevokedClose => {
                let n = self.h.sim(self.id).remote_commitment_number();
                if n >= 1 && self.utxos().contains_key(&self.funding_outpoint()) {
                    let tx = self
                        .h
                        .sim(self.id)
                        .commitment_tx(Party::Remote, n - 1)
                        .expect("revoked commitment");
                    self.peer_txs.push(tx.clone());
                    self.mine_block(vec![tx], false);
                }
            }
            Op::CoopClose => {
                let peer_script =
                    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0x22; 20]));
                let coop =
                    self.h
                        .sim(self.id)
                        .cooperative_close_tx(destination(), peer_script, 1_000);
                if let (Ok(tx), true) = (coop, self.utxos().contains_key(&self.funding_outpoint()))
                {
                    self.peer_txs.push(tx.clone());
                    self.mine_block(vec![tx], false);
                }
            }
            Op::ReorgSwap => {
                let Some((holder, _, _, ch)) = self.close() else {
                    return;
                };
                let depth = self.tip() + 1 - ch;
                if depth > 10 {
                    return;
                }
                let sim = self.h.sim(self.id);
                let other = match holder {
                    Party::Local => {
                        sim.commitment_tx(Party::Remote, sim.remote_commitment_number())
                    }
                    Party::Remote => sim.commitment_tx(Party::Local, sim.local_commitment_number()),
                }
                .expect("the other commitment");
                for _ in 0..depth {
                    let actions = self.h.disconnect_tip();
                    self.h.answer(&actions);
                    self.check_step();
                }
                self.peer_txs.push(other.clone());
                self.mine_block(vec![other], true);
                for _ in 1..depth {
                    self.mine_block(Vec::new(), true);
                }
            }
            Op::Fees(multiplier) => self.fees(*multiplier),
            Op::Spike(blocks) => {
                self.fees(75);
                for _ in 0..*blocks {
                    self.mine_block(Vec::new(), false);
                }
                self.fees(1);
            }
            Op::Reject(reason) => {
                self.h.answers.reject_broadcasts = Some((*reason).to_string());
                self.mine_block(Vec::new(), false);
                self.h.answers.reject_broadcasts = None;
            }
            Op::CrashAnyAction(idx) => self.crash_at_any_action(idx),
            Op::SignerDown(blocks) => self.refusing(true, *blocks),
            Op::WalletDown(blocks) => self.refusing(false, *blocks),
            Op::LateAnswers => self.late_answers(),
            Op::WalletBalance(sat) => {
                let actions = self.h.feed(Event::WalletBalance {
                    confirmed_sat: *sat,
                });
                self.h.answer(&actions);
                self.check_step();
            }
            Op::OurClose => self.our_close(),
            Op::SignerDownAtClose(blocks) => {
                self.h.answers.refuse_signing = Some("signer unavailable".to_string());
                self.our_close();
                self.refusing(true, *blocks);
            }
            Op::MineOurs => {
                let c = self.ours();
                self.mine_block(c, false);
            }
            Op::PeerClaim(idx) | Op::PeerTimeout(idx) => {
                let claim = matches!(op, Op::PeerClaim(_));
                let eligible: Vec<usize> = (0..self.specs.len())
                    .filter(|i| {
                        if claim {
                            self.specs[*i].peer_knows
                        } else {
                            !self.specs[*i].outgoing
                        }
                    })
                    .filter(|i| self.peer_tx(*i).is_some())
                    .collect();
                if !eligible.is_empty() {
                    let i = eligible[idx.index(eligible.len())];
                    if let Some(tx) = self.peer_tx(i) {
                        self.peer_txs.push(tx.clone());
                        self.mine_block(vec![tx], false);
                    }
                }
            }
            Op::Learn(idx) => {
                // The next hop of an outgoing HTLC is this channel's peer: it can fulfil it
                // off-chain only while the channel is open (not once we went to chain).
                let open = self.close().is_none()
                    && self
                        .h
                        .arb
                        .channel(&self.id)
                        .is_some_and(|c| c.force_close.is_none() && c.close.is_none());
                let eligible: Vec<usize> = (0..self.specs.len())
                    .filter(|i| self.specs[*i].we_learn && !self.learned.contains_key(i))
                    .filter(|i| open || !self.specs[*i].outgoing)
                    .collect();
                if !eligible.is_empty() {
                    let i = eligible[idx.index(eligible.len())];
                    let x = &self.htlcs[i];
                    let source = if self.specs[i].outgoing {
                        PreimageSource::Downstream { htlc: x.key }
                    } else {
                        PreimageSource::Invoice { htlc: x.key }
                    };
                    let event = Event::PreimageLearned {
                        preimage: x.preimage,
                        source,
                    };
                    self.learned.insert(i, self.tip());
                    let actions = self.h.feed(event);
                    self.h.answer(&actions);
                    self.check_step();
                }
            }
            Op::Reorg { depth, reinclude } => {
                let d = (*depth as usize).min(self.h.blocks.len().saturating_sub(2));
                let mut dropped = Vec::new();
                for _ in 0..d {
                    let block = self.h.blocks.last().cloned().expect("a block");
                    dropped.splice(0..0, block.txs.iter().map(|t| t.0.clone()));
                    let actions = self.h.disconnect_tip();
                    self.h.answer(&actions);
                    self.check_step();
                }
                for k in 0..=d {
                    let txs = if k == 0 && *reinclude {
                        std::mem::take(&mut dropped)
                    } else {
                        Vec::new()
                    };
                    self.mine_block(txs, true);
                }
            }
            Op::Restart => self.restart(),
            Op::MempoolPeerClaim(idx) => {
                let eligible: Vec<usize> = (0..self.specs.len())
                    .filter(|i| self.specs[*i].peer_knows && self.peer_tx(*i).is_some())
                    .collect();
                if !eligible.is_empty() {
                    let i = eligible[idx.index(eligible.len())];
                    if let Some(tx) = self.peer_tx(i) {
                        self.enter_mempool(tx);
                    }
                }
            }
            Op::MempoolPeerClose => {
                if self.utxos().contains_key(&self.funding_outpoint()) {
                    let sim = self.h.sim(self.id);
                    let tx = sim
                        .commitment_tx(Party::Remote, sim.remote_commitment_number())
                        .expect("remote commitment");
                    self.enter_mempool(tx);
                }
            }
            Op::MempoolDrop(idx, reason) => {
                if !self.mempool.is_empty() {
                    let at = idx.index(self.mempool.len());
                    let reason = match reason {
                        0 => MempoolRemovalReason::Replaced { by: None },
                        1 => MempoolRemovalReason::Conflict,
                        _ => MempoolRemovalReason::Evicted,
                    };
                    self.leave_mempool(at, reason);
                }
            }
            Op::MineMempool => {
                let txs = self.mempool.clone();
                self.mine_block(txs, false);
            }
            Op::Neighbour(k, m) => self.neighbour_move(k, m),
        }
    }

    /// The resolution reports, the close summary and the ledger agree on every output: each
    /// final output's latest resolution has the outcome, amount and fees the resolver and the
    /// ledger give it, and the latest close summary names the close and our balance on it.
    fn check_reports_agree(&mut self) {
        for a in &self.h.transcript[self.checked_reports..] {
            match a {
                Action::Report(Report::Resolution(r)) => {
                    self.resolutions.insert(r.outpoint, r.clone());
                }
                Action::Report(Report::CloseSummary(c)) => {
                    if c.channel == self.id {
                        self.summary = Some(c.clone());
                    }
                    self.summaries.insert(c.channel, c.clone());
                }
                _ => {}
            }
        }
        self.checked_reports = self.h.transcript.len();
        let Some(ch) = self.h.arb.channel(&self.id) else {
            return; // archived
        };
        let Some(close) = &ch.close else {
            return;
        };
        let ledger = self.h.arb.ledger();
        let rows: BTreeMap<OutPoint, _> = ledger
            .channels
            .iter()
            .filter(|c| c.channel == self.id)
            .flat_map(|c| c.outputs.iter().map(|e| (e.outpoint, e)))
            .collect();
        let tip = self.tip();
        for r in ch.resolvers.values() {
            let row = rows
                .get(&r.outpoint)
                .expect("every resolver has a ledger row");
            let outcome = r.outcome();
            // Expired without a preimage: the peer's (reported lost when it expired), unless a
            // preimage came later and we are claiming it while the output is still unspent.
            let expired = matches!(r.stage, Stage::Expired { .. });
            let late_claim = expired && row.status == OutputStatus::Claiming;
            let fits = match (&row.status, outcome) {
                (OutputStatus::Recovered { .. }, Some(Outcome::Claimed | Outcome::TimedOut))
                | (OutputStatus::TakenByPeer { .. }, Some(Outcome::LostToPeer))
                | (OutputStatus::Expired, Some(Outcome::LostToPeer))
                | (OutputStatus::TakenByThirdParty { .. }, Some(Outcome::ThirdParty))
                | (OutputStatus::UnknownSpend { .. }, Some(Outcome::UnknownSpend))
                | (OutputStatus::Uneconomical, Some(Outcome::Uneconomical))
                | (
                    OutputStatus::SecondLevel { .. },
                    Some(Outcome::Claimed | Outcome::TimedOut | Outcome::RevokedSecondLevel),
                ) => true,
                (OutputStatus::Claiming, Some(Outcome::LostToPeer)) => late_claim,
                (OutputStatus::Confirming { .. }, Some(_)) => !r.is_resolved(),
                (_, None) => !r.is_resolved(),
                _ => false,
            };
            assert!(
                fits,
                "{} ({}): ledger says {:?}, the resolver's outcome is {outcome:?} at {tip}",
                r.outpoint, row.what, row.status
            );
            if !r.is_resolved() || late_claim {
                continue;
            }
            let rep = self.resolutions.get(&r.outpoint).unwrap_or_else(|| {
                panic!(
                    "{} ({}) is final with no resolution report at {tip}",
                    r.outpoint, row.what
                )
            });
            assert_eq!(
                (Some(rep.outcome), rep.amount_sat, rep.fees_sat),
                (outcome, row.amount_sat, row.fees_paid_sat),
                "{} ({}): the resolution report and the ledger disagree at {tip}",
                r.outpoint,
                row.what
            );
        }
        let summary = self.summary.as_ref().expect("a close has a summary");
        let balance: u64 = rows
            .values()
            .filter(|e| e.what == "our balance" && e.outpoint.txid == close.txid)
            .map(|e| e.amount_sat)
            .sum();
        assert_eq!(
            (
                summary.closing_txid,
                summary.height,
                summary.our_balance_sat
            ),
            (close.txid, close.height, balance),
            "the close summary and the ledger disagree at {tip}"
        );
    }

    /// The invariants checked after every step.
    fn check_step(&mut self) {
        self.check_reports_agree();
        let depth = self.h.config.close.reorg_safety_depth;
        let tip = self.tip();
        // The fee reserve, kept up to date channel by channel, is what a full scan gives.
        let arb = &self.h.arb;
        // Dormant channels (after a lazy restart) counted as decoded.
        let whole = (arb.dormant_count() > 0).then(|| self.h.store.hydrated(arb));
        let scanned = fee_reserve(
            &exposures(whole.as_ref().unwrap_or(arb).channels()),
            arb.fee_conditions(),
            &arb.config().sweeper,
        );
        assert_eq!(arb.fee_reserve(), scanned, "the fee reserve index drifted");
        // (2) preimages are never lost, nor narrowed.
        let node = self.h.arb.node();
        for (hash, wide) in &self.known {
            let now = node
                .preimages
                .get(hash)
                .unwrap_or_else(|| panic!("preimage {hash:?} was forgotten"));
            assert!(
                !*wide || now.only_for.is_none(),
                "preimage {hash:?} was narrowed"
            );
        }
        self.known = node
            .preimages
            .iter()
            .map(|(h, k)| (*h, k.only_for.is_none()))
            .collect();
        // (2), (3): upstream decisions.
        let new: Vec<(usize, Action)> = self.h.transcript[self.checked_actions..]
            .iter()
            .cloned()
            .enumerate()
            .map(|(k, a)| (k + self.checked_actions, a))
            .collect();
        self.checked_actions = self.h.transcript.len();
        for (at, action) in new {
            let resumed = self.resumed.iter().any(|r| r.contains(&at));
            match action {
                Action::SettleUpstream { htlc, .. } => {
                    let e = self.decisions.entry(htlc).or_default();
                    if !resumed {
                        e.0 += 1;
                    }
                    assert!(
                        e.0 <= 1 && e.1 == 0,
                        "{htlc:?} settled upstream twice or after a fail"
                    );
                }
                Action::FailUpstream { htlc, reason } => {
                    let e = self.decisions.entry(htlc).or_default();
                    if !resumed {
                        e.1 += 1;
                    }
                    assert!(
                        e.1 <= 1 && e.0 == 0,
                        "{htlc:?} failed upstream twice or after a settle"
                    );
                    if resumed {
                        continue;
                    }
                    if let Some(x) = self
                        .neighbours
                        .iter()
                        .flat_map(|n| &n.htlcs)
                        .find(|x| x.key == htlc)
                    {
                        // A neighbour's HTLC: never failed while its preimage is known (the
                        // timing checks below are of the case's own channel).
                        assert!(
                            self.h.arb.node().preimage_for(&htlc, &x.payment_hash()).is_none(),
                            "neighbour {htlc:?} failed upstream ({reason:?}) while its preimage is known"
                        );
                        continue;
                    }
                    if let Some(hash) = self.hash_of.get(&htlc) {
                        assert!(
                            self.h.arb.node().preimage_for(&htlc, hash).is_none(),
                            "{htlc:?} failed upstream ({reason:?}) while its preimage is known"
                        );
                    }
                    let close_depth = self
                        .close()
                        .map_or(0, |(_, _, _, ch)| tip.saturating_sub(ch) + 1);
                    match &reason {
                        FailReason::OutgoingTimedOut { outgoing } => {
                            let i = self
                                .htlcs
                                .iter()
                                .position(|x| x.key == *outgoing)
                                .expect("our htlc");
                            let op = self.htlc_outpoint(i).unwrap_or_else(|| {
                                panic!("{outgoing:?} timed out but has no output on the close")
                            });
                            let (_, sh) = self.spender(&op).unwrap_or_else(|| {
                                panic!("{outgoing:?} failed as timed out but its output is unspent")
                            });
                            assert!(
                                tip + 1 - sh >= depth,
                                "{outgoing:?} failed upstream at {tip}, its timeout at {sh} is not {depth} deep"
                            );
                        }
                        // A documented exception (`channel/force_close.rs`, "lnd does the
                        // same"): when we decide to force close, outgoing HTLCs that are dust on
                        // our commitment are failed at once, before any close confirms. DESIGN
                        // invariant 3 does not list it; allowed here only in exactly that case.
                        FailReason::OutgoingDust { outgoing }
                            if close_depth < depth
                                && self.h.arb.channel(&self.id).is_some_and(|c| c.force_close.is_some())
                                && self.dust_on_ours(outgoing) =>
                        {
                            self.early_dust_fails += 1;
                        }
                        FailReason::OutgoingDust { .. }
                        | FailReason::OutgoingNotOnChain { .. }
                        | FailReason::IncomingDust => assert!(
                            close_depth >= depth,
                            "{htlc:?} failed ({reason:?}) at tip {tip} with the close {close_depth} deep on our chain (funding spent by {:?}; the engine's close: {:?})",
                            self.spender(&self.funding_outpoint()).map(|(t, h)| (t.compute_txid(), h)),
                            self.h.arb.channel(&self.id).and_then(|c| c.close.as_ref()).map(|c| (c.txid, c.height, c.kind.clone())),
                        ),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        // (6), (7): every new broadcast.
        let from = self.checked_broadcasts;
        self.checked_broadcasts = self.h.broadcasts.len();
        if from == self.checked_broadcasts {
            return;
        }
        let mut prevouts: BTreeMap<OutPoint, (TxOut, Option<u32>)> = BTreeMap::new();
        for (outpoint, txout) in self.fundings() {
            prevouts.insert(outpoint, (txout, Some(START_HEIGHT - 10)));
        }
        let mut add = |tx: &Transaction, h: Option<u32>| {
            let txid = tx.compute_txid();
            for (v, o) in tx.output.iter().enumerate() {
                prevouts
                    .entry(OutPoint {
                        txid,
                        vout: v as u32,
                    })
                    .or_insert((o.clone(), h));
            }
        };
        for b in &self.h.blocks {
            for tx in &b.txs {
                add(tx, Some(b.height));
            }
        }
        for tx in self.h.broadcasts.iter().chain(&self.peer_txs) {
            add(tx, None);
        }
        let ledger = self.h.arb.ledger();
        let balances: BTreeSet<OutPoint> = ledger
            .channels
            .iter()
            .flat_map(|c| &c.outputs)
            .filter(|e| e.what == "our balance")
            .map(|e| e.outpoint)
            .collect();
        let next = tip + 1;
        // Justice transactions may spend up to the whole penalty on fees near the deadline.
        let breach = self.breach() || self.neighbours.iter().any(|n| self.lane_breach(&n.lane()));
        for (i, tx) in self.h.broadcasts.iter().enumerate().skip(from) {
            let txid = tx.compute_txid();
            let (outs, heights): (Vec<TxOut>, Vec<Option<u32>>) = tx
                .input
                .iter()
                .map(|i| {
                    prevouts
                        .get(&i.previous_output)
                        .cloned()
                        .unwrap_or_else(|| {
                            panic!("{txid} spends {} which is unknown", i.previous_output)
                        })
                })
                .unzip();
            verify_with_bitcoin_core(tx, &outs).unwrap_or_else(|e| panic!("{txid}: {e:?}"));
            // A zero-fee commitment is relayed only as a package with its child, next.
            let child = (tx.version.0 == 3)
                .then(|| self.h.broadcasts.get(i + 1))
                .flatten()
                .filter(|c| c.input.iter().any(|i| i.previous_output.txid == txid));
            match (check_standard(tx, &outs, &PolicyConfig::default()), child) {
                (Err(PolicyError::FeeBelowMinRelay { .. }), Some(child)) => {
                    let child_outs: Vec<TxOut> = child
                        .input
                        .iter()
                        .map(|i| prevouts[&i.previous_output].0.clone())
                        .collect();
                    check_package_fee(
                        &[(tx, &outs[..]), (child, &child_outs[..])],
                        &PolicyConfig::default(),
                    )
                    .unwrap_or_else(|e| panic!("{txid} with its child: {e}"));
                }
                (r, _) => r.unwrap_or_else(|e| panic!("{txid}: {e}")),
            }
            check_final(tx, next, &heights)
                .unwrap_or_else(|e| panic!("{txid} broadcast for block {next} not final: {e}"));
            if tx.output.iter().any(|o| o.script_pubkey == destination()) {
                let value_in: u64 = outs.iter().map(|o| o.value.to_sat()).sum();
                let value_out: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
                let fee = value_in - value_out;
                let budget: u64 = tx
                    .input
                    .iter()
                    .zip(&outs)
                    .map(|(i, o)| {
                        let pct = if balances.contains(&i.previous_output) {
                            5
                        } else if breach {
                            100
                        } else {
                            50
                        };
                        o.value.to_sat() * pct / 100
                    })
                    .sum();
                assert!(
                    fee <= budget,
                    "{txid} pays {fee} sat in fees, over its budget of {budget}"
                );
            }
        }
    }

    /// Whether the channel is archived, fully resolved, or was never closed.
    fn settled(&self) -> bool {
        self.h
            .arb
            .channel(&self.id)
            .is_none_or(|c| matches!(c.state(), ArbState::FullyResolved | ArbState::Default))
    }

    /// Play the chain on until 20 blocks past every expiry (and past our CSV delays after a
    /// close of ours), every block carrying our claims first, then the peer's best moves. An
    /// idle peer makes no move at all, and the chain goes on until the close fully resolves
    /// (at most 400 blocks more: [`Model::check_end`] then says what is stuck).
    fn finish(&mut self, idle_peer: bool) -> u32 {
        let start = self.tip();
        let max_expiry = self
            .htlcs
            .iter()
            .map(|x| x.cltv_expiry + 10)
            .max()
            .unwrap_or(START_HEIGHT);
        let mut target = max_expiry.max(start) + 20;
        loop {
            target = target.max(self.neighbours_target());
            if let Some((Party::Local, _, _, ch)) = self.close() {
                let delay = u32::from(self.h.sim(self.id).setup().local_to_self_delay);
                target = target.max(ch + delay + 12);
            }
            // The neighbours' peers are idle: their closes must fully resolve.
            let neighbours = self.neighbours_settled() || self.tip() >= target.saturating_add(400);
            if self.tip() >= target
                && neighbours
                && (!idle_peer || self.settled() || self.tip() >= target.saturating_add(400))
            {
                break;
            }
            let mut c = self.ours();
            for i in (0..self.specs.len()).filter(|_| !idle_peer) {
                let s = &self.specs[i];
                if s.peer_knows || !s.outgoing {
                    if let Some(tx) = self.peer_tx(i) {
                        // Every other block, the peer's claims are seen in the mempool first.
                        if self.tip().is_multiple_of(2) {
                            self.enter_mempool(tx.clone());
                        }
                        self.peer_txs.push(tx.clone());
                        c.push(tx);
                    }
                }
            }
            self.mine_block(c, false);
        }
        start
    }

    /// The ledger's outputs of channel `id` that are not final: neither ours, nor the peer's
    /// (taken, or expired), nor a third party's, nor left as not worth their claim.
    fn unresolved(&self, id: ChannelId) -> Vec<contractcourt_core::chain::ledger::OutputEntry> {
        self.h
            .arb
            .ledger()
            .channels
            .into_iter()
            .filter(|c| c.channel == id)
            .flat_map(|c| c.outputs)
            .filter(|e| {
                !matches!(
                    e.status,
                    OutputStatus::Recovered { .. }
                        | OutputStatus::SecondLevel { .. }
                        | OutputStatus::TakenByPeer { .. }
                        | OutputStatus::TakenByThirdParty { .. }
                        | OutputStatus::Expired
                        | OutputStatus::Uneconomical
                )
            })
            .collect()
    }

    /// The engine's ledger, resolution reports and close summary equal the reference ledger
    /// ([`reference`]): built from BOLT 3 and 5, the commitment as built, the chain and what
    /// each side knew — nothing of the engine's state.
    fn check_reference(&self) {
        let mut lanes = vec![self.lane()];
        lanes.extend(self.neighbours.iter().map(Neighbour::lane));
        let mut sum = reference::Buckets::default();
        for lane in &lanes {
            sum += self.check_lane_reference(lane);
        }
        let errors = reference::compare_totals(sum, &self.h.arb.ledger());
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }

    /// [`Model::check_reference`] of one lane; its share of the node's totals.
    fn check_lane_reference(&self, lane: &Lane) -> reference::Buckets {
        let Some((holder, n, _, close_height, built)) = self.lane_close(lane) else {
            return reference::Buckets::default();
        };
        if self.h.arb.channel(&lane.id).is_none() && !self.h.arb.is_dormant(&lane.id) {
            return reference::Buckets::default(); // archived: nothing left to compare
        }
        let sim = self.h.sim(lane.id);
        let chain: Vec<(u32, &Transaction)> = self
            .h
            .blocks
            .iter()
            .flat_map(|b| b.txs.iter().map(move |t| (b.height, &t.0)))
            .collect();
        let ours: BTreeSet<Txid> = self.h.broadcasts.iter().map(|t| t.compute_txid()).collect();
        let htlcs = lane
            .htlcs
            .iter()
            .enumerate()
            .map(|(i, x)| reference::HtlcFacts {
                key: x.key,
                cltv_expiry: x.cltv_expiry,
                peer_knows: lane.peer_knows[i],
                we_learned_at: lane.learned.get(&i).copied(),
            })
            .collect();
        let world = reference::World {
            channel: lane.id,
            holder,
            commitment_number: n,
            revoked: self.lane_breach(lane) && !lane.data_loss,
            future: lane.data_loss
                && holder == Party::Remote
                && n == sim.remote_commitment_number(),
            pending: holder == Party::Remote && Some(n) == sim.remote_pending_number(),
            built,
            close_height,
            chain,
            tip: self.tip(),
            safety_depth: self.h.config.close.reorg_safety_depth,
            ours: &ours,
            htlcs,
        };
        let expected = reference::reference(&world);
        {
            let mut s = STATS.lock().unwrap_or_else(|e| e.into_inner());
            s.reference_closes += 1;
            s.reference_outputs += expected.len() as u64;
        }
        let errors = reference::compare(
            &world,
            &expected,
            &self.h.arb.ledger(),
            &self.resolutions,
            self.summaries.get(&lane.id),
        );
        assert!(
            errors.is_empty(),
            "the engine disagrees with the reference ledger at {}:\n{}",
            self.tip(),
            errors.join("\n")
        );
        reference::totals(&world, &expected)
    }

    /// (1) no stuck output, and the reference model of who is entitled to each HTLC output.
    fn check_end(&self, start: u32, idle_peer: bool) {
        self.check_reference();
        self.check_neighbours();
        // No channel stays open forever because the peer is idle (issue 14): expired incoming
        // HTLCs count as the peer's, so every close fully resolves (or is archived already).
        // The one exception is ours, not the peer's: an output of ours whose claim cannot pay
        // the relay fee within its budget is left alone and re-examined every block, in case
        // fees fall — it is not given up.
        if idle_peer && !self.settled() {
            let open = self.unresolved(self.id);
            assert!(
                open.is_empty(),
                "idle peer: the close never fully resolved by {}: {open:#?}",
                self.tip()
            );
        }
        let Some((holder, _, close_txid, _)) = self.close() else {
            // Never closed on a commitment: a cooperative close, or nothing forced a close.
            if self.spender(&self.funding_outpoint()).is_none() {
                let forced = self.forced_close();
                assert!(
                    forced.is_none(),
                    "the channel is still open at {} though {} forced a close",
                    self.tip(),
                    forced.unwrap_or_default()
                );
            }
            return;
        };
        let ledger = self.h.arb.ledger();
        let node = self.h.arb.node();
        let ours: BTreeSet<Txid> = self.h.broadcasts.iter().map(|t| t.compute_txid()).collect();
        let entries: BTreeMap<OutPoint, _> = ledger
            .channels
            .iter()
            .filter(|c| c.channel == self.id)
            .flat_map(|c| c.outputs.iter().map(|e| (e.outpoint, e.clone())))
            .collect();
        let archived = self.h.arb.channel(&self.id).is_none() && !self.h.arb.is_dormant(&self.id);
        if self.breach() {
            // A revoked commitment: every output is ours (the peer does not race here), claimed
            // by a transaction of ours — only an anchor may be left as not worth claiming.
            for e in entries.values() {
                let fine = match &e.status {
                    OutputStatus::Recovered { txid } => {
                        ours.contains(txid) || e.what == "our balance"
                    }
                    OutputStatus::Uneconomical => e.what == "anchor",
                    _ => false,
                };
                assert!(
                    fine,
                    "breach {close_txid}: output {} ({}) is {:?} at {}",
                    e.outpoint,
                    e.what,
                    e.status,
                    self.tip()
                );
            }
        }
        for (i, x) in self.htlcs.iter().enumerate() {
            let s = &self.specs[i];
            let Some(op) = self.htlc_outpoint(i) else {
                continue;
            };
            let spent = self.spender(&op);
            let entry = entries.get(&op);
            if entry.is_none() && archived {
                continue;
            }
            let entry = entry.unwrap_or_else(|| panic!("no ledger entry for htlc output {op}"));
            if self.breach() {
                continue; // checked above
            }
            let known = node.preimage_for(&x.key, &x.payment_hash()).is_some();
            // The ledger agrees with the chain.
            match &entry.status {
                OutputStatus::Recovered { txid } | OutputStatus::SecondLevel { txid } => {
                    assert_eq!(spent.as_ref().map(|(t, _)| t.compute_txid()), Some(*txid));
                    assert!(ours.contains(txid), "{op} recovered by a tx we never sent");
                }
                OutputStatus::TakenByPeer { txid } => {
                    assert_eq!(spent.as_ref().map(|(t, _)| t.compute_txid()), Some(*txid));
                    assert!(
                        !ours.contains(txid),
                        "{op}: our own claim counted as the peer's"
                    );
                }
                _ => {}
            }
            if s.outgoing {
                // The peer can take it only with the preimage, on its own commitment in this
                // model; otherwise it is ours by timeout, 20 blocks past the expiry.
                let peer_can = s.peer_knows && holder == Party::Remote;
                if !peer_can {
                    assert!(
                        matches!(
                            entry.status,
                            OutputStatus::Recovered { .. } | OutputStatus::SecondLevel { .. }
                        ),
                        "outgoing htlc {} (expiry {}) on {close_txid}: expected recovered by timeout, ledger says {:?} at {}",
                        x.key.htlc_id, x.cltv_expiry, entry.status, self.tip()
                    );
                } else {
                    assert!(
                        matches!(
                            entry.status,
                            OutputStatus::Recovered { .. }
                                | OutputStatus::SecondLevel { .. }
                                | OutputStatus::TakenByPeer { .. }
                        ),
                        "outgoing htlc {} unresolved: {:?}",
                        x.key.htlc_id,
                        entry.status
                    );
                }
            } else if !known {
                assert!(
                    !matches!(
                        entry.status,
                        OutputStatus::Recovered { .. }
                            | OutputStatus::SecondLevel { .. }
                            | OutputStatus::Claiming
                    ),
                    "incoming htlc {} claimed without its preimage",
                    x.key.htlc_id
                );
                if holder == Party::Remote || idle_peer {
                    // Timed out by the peer — an idle peer may have done so before it went
                    // idle —, or, never spent with an idle peer, expired and the peer's.
                    let expected = if idle_peer && spent.is_none() {
                        matches!(entry.status, OutputStatus::Expired)
                    } else {
                        matches!(entry.status, OutputStatus::TakenByPeer { .. })
                    };
                    assert!(
                        expected,
                        "incoming htlc {} timed out by the peer, ledger says {:?}",
                        x.key.htlc_id, entry.status
                    );
                }
            } else {
                // Determined: unspent when the end phase started with room for our claim.
                let unspent_at_start = spent.as_ref().is_none_or(|(_, h)| *h > start);
                if unspent_at_start && start + 2 <= x.cltv_expiry {
                    assert!(
                        matches!(
                            entry.status,
                            OutputStatus::Recovered { .. } | OutputStatus::SecondLevel { .. }
                        ),
                        "incoming htlc {} (expiry {}, preimage known, end phase from {start}): ledger says {:?}",
                        x.key.htlc_id, x.cltv_expiry, entry.status
                    );
                }
            }
        }
        // (1) no stuck output of ours.
        let unknown_incoming: BTreeSet<OutPoint> = (0..self.htlcs.len())
            .filter(|i| {
                let x = &self.htlcs[*i];
                x.key.direction == HtlcDirection::Incoming
                    && node.preimage_for(&x.key, &x.payment_hash()).is_none()
            })
            .filter_map(|i| self.htlc_outpoint(i))
            .collect();
        for e in entries.values() {
            let incoming_unknown = unknown_incoming.contains(&e.outpoint);
            let fine = match e.status {
                OutputStatus::Recovered { .. }
                | OutputStatus::SecondLevel { .. }
                | OutputStatus::TakenByPeer { .. }
                | OutputStatus::TakenByThirdParty { .. }
                | OutputStatus::Confirming { .. }
                | OutputStatus::Claiming => true,
                // Every spend in this model is on a known path.
                OutputStatus::UnknownSpend { .. } => false,
                OutputStatus::Timelocked { .. } => e.next_step.is_some(),
                OutputStatus::Contested | OutputStatus::Expired => incoming_unknown,
                // Left as not worth claiming: an anchor, or an output whose budget (5% of a
                // balance, 50% of an HTLC) cannot pay the minimum relay fee of 1 sat/vB for
                // its claim (a single input claim is under 200 vB).
                OutputStatus::Uneconomical => {
                    let pct = if e.what == "our balance" { 5 } else { 50 };
                    e.what == "anchor" || e.amount_sat * pct / 100 < 200
                }
            };
            assert!(
                fine,
                "stuck output {} ({}, {} sat): {:?}, next step {:?}, tip {}",
                e.outpoint,
                e.what,
                e.amount_sat,
                e.status,
                e.next_step,
                self.tip()
            );
        }
        // (3) exactly once upstream, for every forwarded HTLC.
        for (i, s) in self.specs.iter().enumerate() {
            // A preimage learned downstream is settled upstream by the node itself; without a
            // close there is nothing on-chain to resolve (dust HTLCs force no close).
            if !s.circuit || self.learned.contains_key(&i) {
                continue;
            }
            let up = upstream_key(i);
            let x = &self.htlcs[i];
            let d = node.upstream.get(&up).unwrap_or_else(|| {
                panic!(
                    "forwarded htlc {i} (expiry {}, {} msat, on the close as {:?}) never resolved upstream at {}",
                    x.cltv_expiry,
                    x.amount_msat,
                    self.htlc_outpoint(i),
                    self.tip()
                )
            });
            let known = node.preimage_for(&up, &x.payment_hash()).is_some();
            match &d.decision {
                contractcourt_core::node::UpstreamDecision::Settle { .. } => {
                    assert!(known, "settled without a preimage")
                }
                contractcourt_core::node::UpstreamDecision::Fail { .. } => {
                    let loss = self
                        .h
                        .reports()
                        .iter()
                        .any(|r| matches!(r, Report::Loss { htlc, .. } if *htlc == up));
                    assert!(
                        !known || loss,
                        "forwarded htlc {i} failed upstream ({:?}) though its preimage is known (learned by us at {:?}), and no loss reported",
                        d.decision, self.learned.get(&i)
                    );
                }
            }
        }
    }
}

fn cases(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The most HTLCs each way in a large case: 150 by default (CI's time stays bounded: every
/// step persists and reloads the whole channel), up to the protocol's 483 with
/// `MODEL_LARGE_MAX=483`.
fn large_max() -> usize {
    cases("MODEL_LARGE_MAX", 150).clamp(101, 483) as usize
}

/// Run one case: the trace, the end phase, the end checks; record its statistics.
fn run_case(case: &Case) {
    let mut m = Model::new(case);
    for op in &case.ops {
        m.run(op);
    }
    // Half the cases end with an idle peer (chosen by the seed, so the strategy is unchanged).
    let idle_peer = case.seed.is_multiple_of(2);
    let start = m.finish(idle_peer);
    m.check_end(start, idle_peer);
    if std::env::var("MODEL_CRASH_ANYWHERE").is_ok_and(|v| v == "1") {
        m.h.check_crash_anywhere();
    }
    let kind = if case.zero_fee {
        "zero-fee commitments"
    } else if case.anchors && case.wallet.1 < 200_000 {
        "anchors, thin wallet"
    } else if case.anchors {
        "anchors"
    } else {
        "static-remote-key"
    };
    let mut s = STATS.lock().unwrap_or_else(|e| e.into_inner());
    s.cases += 1;
    s.events += m.h.trace.steps.len() as u64;
    *s.closes.entry(m.close_kind()).or_default() += 1;
    *s.types.entry(kind).or_default() += 1;
    for (what, n) in &m.tally {
        *s.tally.entry(what.clone()).or_default() += n;
    }
    if !m.neighbours.is_empty() {
        *s.tally
            .entry(format!("channels per case: {}", 1 + m.neighbours.len()))
            .or_default() += 1;
        for n in &m.neighbours {
            let lane = n.lane();
            let kind = match m.lane_close(&lane) {
                Some((Party::Local, ..)) => "ours",
                Some(_) if n.data_loss => "theirs, future (we lost data)",
                Some(_) if m.lane_breach(&lane) => "breach",
                Some(_) => "theirs",
                None if n.data_loss => "open (we lost data)",
                None => "open",
            };
            *s.tally
                .entry(format!("neighbour closes: {kind}"))
                .or_default() += 1;
        }
    }
    eprintln!(
        "model: case {} ({kind}, {} htlcs) ops {} events {} (mean events {}; closes {:?}; reference: {} closes, {} outputs)",
        s.cases,
        case.htlcs.len(),
        m.steps,
        m.h.trace.steps.len(),
        s.events / s.cases,
        s.closes,
        s.reference_closes,
        s.reference_outputs
    );
    if s.cases.is_multiple_of(100) {
        eprintln!(
            "model: distribution after {} cases: channel types {:?}; what happened {:?}; \
             reference ledger compared on {} closes, {} outputs",
            s.cases, s.types, s.tally, s.reference_closes, s.reference_outputs
        );
    }
}

/// What the cases run so far generated.
struct Stats {
    cases: u64,
    events: u64,
    /// How each case's channel ended.
    closes: BTreeMap<&'static str, u64>,
    /// Channel types (and thin wallets).
    types: BTreeMap<&'static str, u64>,
    /// Reorg depths, crash points, failing signers and wallets: [`Model::tally`].
    tally: BTreeMap<String, u64>,
    /// Closes, and their outputs, the engine was compared on with the reference ledger.
    reference_closes: u64,
    reference_outputs: u64,
}

static STATS: std::sync::Mutex<Stats> = std::sync::Mutex::new(Stats {
    cases: 0,
    events: 0,
    closes: BTreeMap::new(),
    types: BTreeMap::new(),
    tally: BTreeMap::new(),
    reference_closes: 0,
    reference_outputs: 0,
});

proptest! {
    #![proptest_config(ProptestConfig { cases: cases("PROPTEST_CASES", 24), max_shrink_iters: 256, failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/model.txt"))), ..ProptestConfig::default() })]

    #[test]
    fn random_traces_keep_the_invariants(case in case(12, 5..40)) {
        run_case(&case);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases("MODEL_ZERO_FEE_CASES", 12), max_shrink_iters: 256, failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/model-zero-fee.txt"))), ..ProptestConfig::default() })]

    /// Zero-fee commitment channels, as many cases as each of the two other types above.
    #[test]
    fn random_zero_fee_traces_keep_the_invariants(case in zero_fee_case(12, 5..40)) {
        run_case(&case);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases("MODEL_FAULTY_CASES", 12), max_shrink_iters: 256, failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/model-faulty.txt"))), ..ProptestConfig::default() })]

    /// Every channel type, with a signer that is down for blocks, a wallet that cannot fund,
    /// answers that come a block late (after the engine superseded the request), wallet
    /// balances, and crashes at any action index of a step.
    #[test]
    fn random_traces_with_failing_signers_and_wallets_keep_the_invariants(case in faulty_case(12, 5..40)) {
        run_case(&case);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases("MODEL_SEVERAL_CASES", 8), max_shrink_iters: 256, failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/model-several.txt"))), ..ProptestConfig::default() })]

    /// The case's channel (any type, failing signers and wallets) beside one to five more
    /// channels of the node ([`neighbours`]): a shared chain, fee wallet, signer and crashes.
    #[test]
    fn random_traces_of_several_channels_keep_the_invariants(case in neighbours::several_channels_case(8, 5..40)) {
        run_case(&case);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases("MODEL_LARGE_CASES", 1), max_shrink_iters: 16, failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/model-large.txt"))), ..ProptestConfig::default() })]

    /// Channels with 100 to 150 HTLCs each way (to 483, the protocol's maximum, with
    /// `MODEL_LARGE_MAX=483`) and shorter traces.
    #[test]
    fn large_channels_keep_the_invariants(case in case(large_max(), 3..12)) {
        run_case(&case);
    }
}
