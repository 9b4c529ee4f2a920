//! Preimages, expiries and finality (issue 14, items 2–4):
//! - every witness that carries a preimage of a forwarded HTLC settles its incoming leg at once,
//!   whichever commitment confirmed — ours, the peer's current, pending, revoked or future one —
//!   and whether the preimage is in a direct spend or a second-level transaction; the leg is never
//!   failed afterwards;
//! - a preimage is acted on in the step that learns it: the claim is offered for the next block,
//!   and the block at `cltv_expiry` can still be won (the peer's timeout, nLockTime =
//!   `cltv_expiry`, is final only in block `cltv_expiry + 1`);
//! - an incoming HTLC the peer never times out counts as the peer's once its expiry is
//!   reorg-safe, so the channel fully resolves and is archived; a preimage that arrives later
//!   is still claimed while the output is unspent.

use std::collections::BTreeSet;

use bitcoin::{OutPoint, Transaction};
use contractcourt_core::action::{FailReason, Report};
use contractcourt_core::bolt3::witness::ClaimPath;
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::ledger::OutputStatus;
use contractcourt_core::chain::Config;
use contractcourt_core::channel::{ArbState, FeeContext};
use contractcourt_core::event::{
    ChannelChange, ChannelUpdate, Event, FeeConditions, IncomingLeg, PreimageSource,
};
use contractcourt_core::policy::check_final;
use contractcourt_core::resolver::{ResolverKind, Stage};
use contractcourt_core::sim::{SimHtlc, SimSetup};
use contractcourt_core::types::{ChannelId, HtlcDirection, HtlcKey, Party};
use contractcourt_tests::checks::{check_broadcasts, fails, settles, sweeping_config};
use contractcourt_tests::{Harness, START_HEIGHT};

fn upstream(n: u64) -> HtlcKey {
    HtlcKey {
        channel: ChannelId([9; 32]),
        htlc_id: n,
        direction: HtlcDirection::Incoming,
    }
}

/// Mine a block with the latest of our broadcasts whose inputs are all unspent outputs of the
/// chain (an idle peer: nothing of its own).
fn mine_ours(h: &mut Harness) {
    let txs = h.blocks.iter().flat_map(|b| b.txs.iter());
    let mut unspent: BTreeSet<OutPoint> = BTreeSet::new();
    for t in txs.clone() {
        let txid = t.compute_txid();
        unspent.extend((0..t.output.len() as u32).map(|vout| OutPoint { txid, vout }));
    }
    for t in txs {
        for i in &t.input {
            unspent.remove(&i.previous_output);
        }
    }
    let mut block = Vec::new();
    for t in h.broadcasts.iter().rev() {
        if t.input.iter().all(|i| unspent.contains(&i.previous_output)) {
            for i in &t.input {
                unspent.remove(&i.previous_output);
            }
            block.push(t.clone());
        }
    }
    h.mine(block);
}

/// Whether one of `txs` carries `preimage` in a witness.
fn reveals(txs: &[Transaction], preimage: &[u8; 32]) -> bool {
    txs.iter()
        .flat_map(|t| t.input.iter())
        .flat_map(|i| i.witness.iter())
        .any(|w| w == preimage)
}

/// A channel with one outgoing HTLC forwarded from `upstream(1)` (its incoming leg expires 40
/// blocks later).
fn forwarded(seed: u64, channel_type: ChannelType, expiry: u32) -> (Harness, ChannelId, SimHtlc) {
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(seed, channel_type));
    let mut out = None;
    h.with_sim(id, |sim| {
        out = Some(
            sim.add_htlc(HtlcDirection::Outgoing, 50_000_000, expiry)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    let out = out.unwrap();
    h.feed(Event::CircuitAdded {
        outgoing: out.key,
        incoming: IncomingLeg {
            htlc: upstream(1),
            cltv_expiry: expiry + 40,
            amount_msat: 50_010_000,
        },
    });
    (h, id, out)
}

/// After `claim` reveals the preimage (in a block, or first in the mempool), the incoming leg is
/// settled in that very step and never failed, however deep everything gets.
fn settled_at_once_and_never_failed(
    h: &mut Harness,
    out: &SimHtlc,
    claim: Transaction,
    via_mempool: bool,
    what: &str,
) {
    let actions = h.see_or_mine(&claim, via_mempool);
    assert_eq!(
        settles(&actions),
        vec![upstream(1)],
        "{what} (mempool: {via_mempool}): the preimage settles the incoming leg at once"
    );
    assert!(h
        .arb
        .node()
        .preimage_for(&out.key, &out.payment_hash())
        .is_some());
    if via_mempool {
        h.mine(vec![claim]);
    }
    h.mine_empty(12);
    assert!(fails(&h.transcript).is_empty(), "{what}: never failed");
    assert_eq!(settles(&h.transcript), vec![upstream(1)], "{what}: once");
}

/// Our commitment: the peer claims our outgoing HTLC directly with `<sig> <preimage>`.
/// (Passed before this change: the HTLC's own resolver searched the spend.)
#[test]
fn a_preimage_in_the_peers_direct_claim_on_our_commitment_settles_upstream() {
    for via_mempool in [false, true] {
        let (mut h, id, out) = forwarded(71, ChannelType::AnchorsZeroFeeHtlc, START_HEIGHT + 60);
        let ours = h.sim(id).commitment_tx(Party::Local, 1).unwrap();
        h.mine(vec![ours]);
        let claim = h.sim(id).peer_preimage_claim(1, out.key, 1_000).unwrap();
        // The transaction is valid: Bitcoin Core's interpreter accepts it.
        h.broadcasts.push(claim.clone());
        check_broadcasts(&h, h.broadcasts.len() - 1, &[]);
        h.broadcasts.pop();
        settled_at_once_and_never_failed(&mut h, &out, claim, via_mempool, "ours");
        h.check_crash_anywhere();
    }
}

/// The peer's current and pending commitments: its HTLC-success (a second-level transaction).
/// (Passed before this change.)
#[test]
fn a_preimage_in_the_peers_htlc_success_on_its_current_or_pending_commitment_settles_upstream() {
    for pending in [false, true] {
        let (mut h, id, out) = forwarded(72, ChannelType::StaticRemoteKey, START_HEIGHT + 60);
        let n = if pending {
            h.with_sim(id, |sim| {
                sim.add_htlc(HtlcDirection::Incoming, 20_000_000, START_HEIGHT + 80)
                    .unwrap();
                sim.propose().unwrap()
            });
            h.sim(id).remote_pending_number().unwrap()
        } else {
            h.sim(id).remote_commitment_number()
        };
        let theirs = h.sim(id).commitment_tx(Party::Remote, n).unwrap();
        h.mine(vec![theirs]);
        let success = h.sim(id).htlc_tx(Party::Remote, n, out.key).unwrap();
        settled_at_once_and_never_failed(&mut h, &out, success, false, "current or pending");
    }
}

/// The peer's revoked commitment: its HTLC-success races our justice and carries the
/// preimage (B05-REV-09). Before this change the preimage was not learned and the incoming leg
/// was failed as `OutgoingNotOnChain` once the close was 6 deep, though the HTLC was on it.
#[test]
fn a_preimage_in_the_peers_htlc_success_on_its_revoked_commitment_settles_upstream() {
    for via_mempool in [false, true] {
        let (mut h, id, out) = forwarded(73, ChannelType::StaticRemoteKey, START_HEIGHT + 60);
        let revoked = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
        h.with_sim(id, |sim| {
            sim.update_fee(1_000);
            sim.commit().unwrap()
        });
        h.mine(vec![revoked]);
        let success = h.sim(id).htlc_tx(Party::Remote, 1, out.key).unwrap();
        settled_at_once_and_never_failed(&mut h, &out, success, via_mempool, "revoked");
        h.check_crash_anywhere();
    }
}

/// An outgoing HTLC on the peer's revoked commitment that our justice takes (no preimage ever
/// appears) is failed upstream only once that justice is reorg-safe — never as "not on chain"
/// while the peer could still reveal the preimage.
#[test]
fn an_outgoing_htlc_on_a_revoked_commitment_is_failed_only_once_our_justice_is_final() {
    let (mut h, id, out) = forwarded(74, ChannelType::StaticRemoteKey, START_HEIGHT + 60);
    let revoked = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    let txid = revoked.compute_txid();
    h.with_sim(id, |sim| {
        sim.update_fee(1_000);
        sim.commit().unwrap()
    });
    // The peer's revoked commitment confirms, and our justice is kept out of the chain for 10
    // blocks: the peer could still claim the HTLC with its preimage all that time.
    h.mine(vec![revoked]);
    h.mine_empty(10);
    assert!(
        fails(&h.transcript).is_empty(),
        "the HTLC is on the confirmed commitment: not failed while the peer can still claim it"
    );
    let justice: Vec<Transaction> = contractcourt_tests::checks::claimed_outputs(&h, 0, txid)
        .into_values()
        .collect();
    let mut unique: Vec<Transaction> = Vec::new();
    for t in justice {
        if !unique.iter().any(|u| u.compute_txid() == t.compute_txid()) {
            unique.push(t);
        }
    }
    h.mine(unique);
    let confirmed_at = h.height();
    let depth = h.config.close.reorg_safety_depth;
    h.mine_empty(depth - 2);
    assert!(fails(&h.transcript).is_empty(), "not reorg-safe yet");
    h.mine_empty(1);
    assert_eq!(h.height(), confirmed_at + depth - 1);
    assert_eq!(
        fails(&h.transcript),
        vec![(
            upstream(1),
            FailReason::OutgoingRevoked { outgoing: out.key }
        )]
    );
}

/// A future commitment (we lost data): the engine knows the HTLC from the commitments it has, but
/// no resolver watches the future commitment's HTLC outputs. The peer's HTLC-success spends one:
/// its preimage still settles the incoming leg. Before this change it went unseen.
#[test]
fn a_preimage_in_the_peers_htlc_success_on_a_future_commitment_settles_upstream() {
    for via_mempool in [false, true] {
        let (mut h, id, out) = forwarded(75, ChannelType::StaticRemoteKey, START_HEIGHT + 60);
        // The sim moves on; the engine never hears of it.
        let sim = h.sims.get_mut(&id).unwrap();
        sim.update_fee(1_500);
        sim.commit().unwrap();
        let n = sim.remote_commitment_number();
        let future = sim.commitment_tx(Party::Remote, n).unwrap();
        let update_id = h.arb.channel(&id).unwrap().data.last_update_id + 1;
        h.feed(Event::ChannelUpdate(ChannelUpdate {
            channel: id,
            update_id,
            change: ChannelChange::DataLossDetected {
                remote_next_commitment_number: n + 1,
                remote_per_commitment_point: None,
            },
        }));
        h.mine(vec![future]);
        let success = h.sim(id).htlc_tx(Party::Remote, n, out.key).unwrap();
        settled_at_once_and_never_failed(&mut h, &out, success, via_mempool, "future");
        h.check_crash_anywhere();
    }
}

/// The peer's commitment confirmed with an incoming HTLC expiring at `expiry`; we hold no
/// preimage yet.
fn remote_close_with_incoming(
    seed: u64,
    channel_type: ChannelType,
    expiry: u32,
) -> (Harness, ChannelId, SimHtlc) {
    remote_close_with_incoming_under(sweeping_config(), seed, channel_type, expiry)
}

fn remote_close_with_incoming_under(
    config: Config,
    seed: u64,
    channel_type: ChannelType,
    expiry: u32,
) -> (Harness, ChannelId, SimHtlc) {
    let mut h = Harness::new(config);
    let id = h.open(SimSetup::new(seed, channel_type));
    let mut inc = None;
    h.with_sim(id, |sim| {
        inc = Some(
            sim.add_htlc(HtlcDirection::Incoming, 60_000_000, expiry)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    h.mine(vec![theirs]);
    (h, id, inc.unwrap())
}

/// A preimage learned at `cltv_expiry - 1` (our invoice) is claimed in that same step, offered
/// for block `cltv_expiry` — the last block our claim can win: the peer's timeout (nLockTime =
/// `cltv_expiry`) is final only from `cltv_expiry + 1`. Before this change the claim went out one
/// block later, for `cltv_expiry + 1`, where the peer's timeout competes.
#[test]
fn a_preimage_learned_one_block_before_expiry_is_claimed_for_the_expiry_block_on_the_peers_commitment(
) {
    for channel_type in [
        ChannelType::StaticRemoteKey,
        ChannelType::AnchorsZeroFeeHtlc,
    ] {
        let expiry = START_HEIGHT + 20;
        let (mut h, _id, inc) = remote_close_with_incoming(76, channel_type, expiry);
        h.mine_empty(expiry - 1 - h.height());
        assert_eq!(h.height(), expiry - 1);
        let from = h.broadcasts.len();
        let actions = h.feed(Event::PreimageLearned {
            preimage: inc.preimage,
            source: PreimageSource::Invoice { htlc: inc.key },
        });
        h.answer(&actions);
        let claims = &h.broadcasts[from..];
        assert!(
            reveals(claims, &inc.preimage.0),
            "{channel_type:?}: claimed in the step that learned the preimage"
        );
        // Valid, and final in block `expiry` (the harness checks at tip + 1).
        check_broadcasts(&h, from, &[]);
        let claim = claims.last().unwrap().clone();
        h.mine(vec![claim]);
        assert_eq!(h.height(), expiry, "confirmed in the expiry block itself");
        h.check_crash_anywhere();
    }
}

/// The same on our own commitment: the HTLC-success transaction is signed and broadcast in the
/// step that learns the preimage.
#[test]
fn a_preimage_learned_one_block_before_expiry_is_claimed_for_the_expiry_block_on_our_commitment() {
    let expiry = START_HEIGHT + 20;
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(77, ChannelType::StaticRemoteKey));
    let mut inc = None;
    h.with_sim(id, |sim| {
        inc = Some(
            sim.add_htlc(HtlcDirection::Incoming, 60_000_000, expiry)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    let inc = inc.unwrap();
    let ours = h.sim(id).commitment_tx(Party::Local, 1).unwrap();
    h.mine(vec![ours]);
    h.mine_empty(expiry - 1 - h.height());
    let from = h.broadcasts.len();
    let actions = h.feed(Event::PreimageLearned {
        preimage: inc.preimage,
        source: PreimageSource::Invoice { htlc: inc.key },
    });
    h.answer(&actions);
    assert!(
        reveals(&h.broadcasts[from..], &inc.preimage.0),
        "our HTLC-success goes out in the step that learned the preimage"
    );
    check_broadcasts(&h, from, &[]);
    let success = h.broadcasts[from..].last().unwrap().clone();
    h.mine(vec![success]);
    assert_eq!(h.height(), expiry);
    h.check_crash_anywhere();
}

/// Two closed channels share a payment: downstream the peer's HTLC-success reveals the preimage
/// in block `cltv_expiry - 1` of the upstream incoming HTLC (which is on the peer's commitment of
/// the other channel). The upstream claim is broadcast while that block is processed — for
/// block `cltv_expiry`. Before this change the upstream channel was not even woken by it.
#[test]
fn a_preimage_learned_on_chain_claims_the_same_payment_on_another_channel_in_that_block() {
    for via_mempool in [false, true] {
        let expiry = START_HEIGHT + 30;
        // No cut-loss: the downstream HTLC is still unresolved 3 blocks before the upstream
        // one expires (the peer claims it late), and we want to see the claim, not a loss.
        let mut config = sweeping_config();
        config.close.cut_loss_blocks = None;
        let (mut h, _up, inc) =
            remote_close_with_incoming_under(config, 78, ChannelType::StaticRemoteKey, expiry);
        let down_id = h.open(SimSetup::new(79, ChannelType::StaticRemoteKey));
        let mut out = None;
        h.with_sim(down_id, |sim| {
            let key = HtlcKey {
                channel: down_id,
                htlc_id: 0,
                direction: HtlcDirection::Outgoing,
            };
            out = Some(
                sim.add_htlc_with_preimage(key, 40_000_000, expiry - 10, inc.preimage)
                    .unwrap(),
            );
            sim.commit().unwrap()
        });
        let out = out.unwrap();
        h.feed(Event::CircuitAdded {
            outgoing: out.key,
            incoming: IncomingLeg {
                htlc: inc.key,
                cltv_expiry: expiry,
                amount_msat: inc.amount_msat,
            },
        });
        let theirs = h.sim(down_id).commitment_tx(Party::Remote, 1).unwrap();
        h.mine(vec![theirs]);
        h.mine_empty(expiry - 2 - h.height());
        let success = h.sim(down_id).htlc_tx(Party::Remote, 1, out.key).unwrap();
        let from = h.broadcasts.len();
        let actions = h.see_or_mine(&success, via_mempool);
        let mut all = actions.clone();
        if via_mempool {
            all.extend(h.answer(&actions));
        }
        assert_eq!(settles(&all), vec![inc.key], "settled upstream at once");
        assert!(
            reveals(&h.broadcasts[from..], &inc.preimage.0),
            "mempool {via_mempool}: the upstream claim is out in the same step"
        );
        check_broadcasts(&h, from, &[]);
    }
}

/// An incoming HTLC without a preimage on the peer's commitment; the peer never times it out.
/// It counts as the peer's once block `cltv_expiry + 1` is `reorg_safety_depth` deep, and the
/// channel fully resolves and is archived. Before this change it stayed contested forever.
#[test]
fn an_expired_incoming_htlc_the_peer_never_sweeps_does_not_keep_the_channel_open() {
    for local in [false, true] {
        let expiry = START_HEIGHT + 20;
        let mut h = Harness::new(sweeping_config());
        let id = h.open(SimSetup::new(80, ChannelType::AnchorsZeroFeeHtlc));
        h.with_sim(id, |sim| {
            sim.add_htlc(HtlcDirection::Incoming, 60_000_000, expiry)
                .unwrap();
            sim.commit().unwrap()
        });
        let close = if local {
            h.fund_wallet(4, 100_000);
            h.sim(id).commitment_tx(Party::Local, 1).unwrap()
        } else {
            h.sim(id).commitment_tx(Party::Remote, 1).unwrap()
        };
        let close_txid = close.compute_txid();
        h.mine(vec![close]);
        // Everything but the HTLC resolves: mine our own claims as they come.
        let depth = h.config.close.reorg_safety_depth;
        let incoming_out = |h: &Harness| {
            h.arb
                .channel(&id)
                .unwrap()
                .resolvers
                .values()
                .find(|r| matches!(r.kind, ResolverKind::IncomingHtlc { .. }))
                .unwrap()
                .clone()
        };
        let outpoint = incoming_out(&h).outpoint;
        assert_eq!(outpoint.txid, close_txid);
        while h.height() < expiry + depth - 1 {
            mine_ours(&mut h);
        }
        assert_eq!(h.height(), expiry + depth - 1);
        assert!(
            matches!(incoming_out(&h).stage, Stage::Active),
            "local {local}: block {} is only {} deep",
            expiry + 1,
            depth - 1
        );
        mine_ours(&mut h);
        assert_eq!(
            incoming_out(&h).stage,
            Stage::Expired {
                height: expiry + depth
            },
            "local {local}"
        );
        let entry = h
            .arb
            .ledger()
            .channels
            .iter()
            .flat_map(|c| c.outputs.clone())
            .find(|e| e.outpoint == outpoint)
            .unwrap();
        assert_eq!(entry.status, OutputStatus::Expired);
        for _ in 0..300 {
            if h.arb.channel(&id).unwrap().state() == ArbState::FullyResolved {
                break;
            }
            mine_ours(&mut h);
        }
        assert_eq!(
            h.arb.channel(&id).unwrap().state(),
            ArbState::FullyResolved,
            "local {local}: {:#?}",
            h.arb.ledger()
        );
        let archive = h.config.close.archive_depth;
        h.mine_empty(archive);
        assert!(h.arb.channel(&id).is_none(), "archived");
        assert!(h
            .reports()
            .iter()
            .any(|r| matches!(r, Report::Resolution(res) if res.outpoint == outpoint)));
    }
}

/// A preimage that arrives after the HTLC counted as expired, while its output is unspent, is
/// still claimed (the output is watched until the channel is archived).
#[test]
fn a_preimage_arriving_after_expiry_still_claims_the_unspent_output() {
    let expiry = START_HEIGHT + 20;
    let (mut h, id, inc) = remote_close_with_incoming(81, ChannelType::StaticRemoteKey, expiry);
    let depth = h.config.close.reorg_safety_depth;
    h.mine_empty(expiry + depth - h.height());
    let r = h
        .arb
        .channel(&id)
        .unwrap()
        .resolvers
        .values()
        .find(|r| matches!(r.kind, ResolverKind::IncomingHtlc { .. }))
        .unwrap()
        .clone();
    assert!(matches!(r.stage, Stage::Expired { .. }));
    let from = h.broadcasts.len();
    let actions = h.feed(Event::PreimageLearned {
        preimage: inc.preimage,
        source: PreimageSource::Invoice { htlc: inc.key },
    });
    h.answer(&actions);
    let claims: Vec<Transaction> = h.broadcasts[from..]
        .iter()
        .filter(|t| t.input.iter().any(|i| i.previous_output == r.outpoint))
        .cloned()
        .collect();
    assert!(!claims.is_empty(), "claimed at once");
    check_broadcasts(&h, from, &[]);
    let claim = claims.last().unwrap().clone();
    h.mine(vec![claim.clone()]);
    h.mine_empty(depth);
    let entry = h
        .arb
        .ledger()
        .channels
        .iter()
        .flat_map(|c| c.outputs.clone())
        .find(|e| e.outpoint == r.outpoint)
        .unwrap();
    assert_eq!(
        entry.status,
        OutputStatus::Recovered {
            txid: claim.compute_txid()
        }
    );
    h.check_crash_anywhere();
}

/// The sweep requests a channel makes now, under fee conditions `fees`.
fn requests_under(
    h: &Harness,
    id: ChannelId,
    fees: Option<&FeeConditions>,
) -> Vec<contractcourt_core::action::SweepRequest> {
    let ctx = FeeContext {
        fees,
        policy: &h.config.sweep,
        fallback: bitcoin::FeeRate::from_sat_per_vb_u32(2),
        destination: h.config.sweep_to.as_ref().map(|c| &c.destination),
    };
    h.arb
        .channel(&id)
        .unwrap()
        .sweep_requests(h.arb.node(), &ctx, &h.config.close)
}

/// A spend of `outpoint` with a relative lock of `blocks` (as the peer's delayed spend or the
/// anchor's anyone-can-spend path carries).
fn relative_spend(outpoint: OutPoint, blocks: u32) -> Transaction {
    Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: outpoint,
            sequence: bitcoin::Sequence(blocks),
            ..Default::default()
        }],
        output: Vec::new(),
    }
}

/// Justice on the peer's `to_local`: the peer's own spend (nSequence = its `to_self_delay`) is
/// final from block `close + to_self_delay` (BIP 68, as the policy module checks it), so our claim
/// must confirm by the block before — its deadline. Before this change the deadline was the
/// block at which the peer's spend is already final.
#[test]
fn the_justice_deadline_is_the_block_before_the_peers_delayed_spend_becomes_final() {
    let (mut h, id, _) = forwarded(82, ChannelType::StaticRemoteKey, START_HEIGHT + 100);
    let revoked = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    h.with_sim(id, |sim| {
        sim.update_fee(1_000);
        sim.commit().unwrap()
    });
    h.mine(vec![revoked]);
    let close = h.height();
    let delay = u32::from(h.sim(id).setup().remote_to_self_delay);
    let justice = requests_under(&h, id, None)
        .into_iter()
        .find(|r| matches!(r.path, ClaimPath::ToLocalRevocation { .. }))
        .expect("a claim of their to_local");
    assert_eq!(justice.deadline, close + delay - 1);
    let theirs = relative_spend(justice.outpoint, delay);
    assert!(check_final(&theirs, close + delay - 1, &[Some(close)]).is_err());
    assert!(check_final(&theirs, close + delay, &[Some(close)]).is_ok());
}

/// Our anchor, when it pays for itself: anyone may spend it with nSequence 16, final from block
/// `close + 16`, so our claim's deadline is `close + 15`. Before this change it was `close + 17`,
/// two blocks into the time anyone can take it.
#[test]
fn our_anchor_claim_is_due_the_block_before_anyone_may_take_it() {
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(83, ChannelType::AnchorsZeroFeeHtlc));
    let theirs = h.sim(id).commitment_tx(Party::Remote, 0).unwrap();
    h.mine(vec![theirs]);
    let close = h.height();
    // A minimum relay fee of 0.1 sat/vB: the 330-sat anchor pays for its own claim.
    let tenth = bitcoin::FeeRate::from_sat_per_kwu(25);
    let fees = FeeConditions {
        estimates: Vec::new(),
        mempool_min: tenth,
        min_relay: tenth,
        incremental_relay: tenth,
    };
    let anchor = requests_under(&h, id, Some(&fees))
        .into_iter()
        .find(|r| r.path == ClaimPath::AnchorOwner)
        .expect("the anchor pays for itself at 0.1 sat/vB");
    assert_eq!(anchor.deadline, close + 15);
    let anyone = relative_spend(anchor.outpoint, 16);
    assert!(check_final(&anyone, close + 15, &[Some(close)]).is_err());
    assert!(check_final(&anyone, close + 16, &[Some(close)]).is_ok());
}

/// On a breach the upstream decisions wait for the revoked log (the revoked commitment's HTLCs):
/// an HTLC on it is never failed as "not on chain" on a guess, and a dangling one (only on later
/// commitments) is failed once the log has answered and the close is reorg-safe.
#[test]
fn a_breach_fails_dangling_htlcs_upstream_only_once_the_revoked_log_has_answered() {
    let (mut h, id, on_revoked) = forwarded(84, ChannelType::StaticRemoteKey, START_HEIGHT + 100);
    let revoked = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    let mut dangling = None;
    h.with_sim(id, |sim| {
        dangling = Some(
            sim.add_htlc(HtlcDirection::Outgoing, 30_000_000, START_HEIGHT + 100)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    let dangling = dangling.unwrap();
    h.feed(Event::CircuitAdded {
        outgoing: dangling.key,
        incoming: IncomingLeg {
            htlc: upstream(2),
            cltv_expiry: START_HEIGHT + 140,
            amount_msat: 30_010_000,
        },
    });
    // The node answers nothing (the revoked log read is left pending) for 10 blocks.
    h.answers.budget = Some(0);
    h.mine(vec![revoked]);
    h.mine_empty(10);
    assert!(fails(&h.transcript).is_empty(), "nothing failed on a guess");
    h.answers.budget = None;
    let tip = h.arb.tip();
    let actions = h.feed(Event::Resumed { tip });
    h.answer(&actions);
    h.mine_empty(1);
    assert_eq!(
        fails(&h.transcript),
        vec![(
            upstream(2),
            FailReason::OutgoingNotOnChain {
                outgoing: dangling.key
            }
        )],
        "only the HTLC that is not on the revoked commitment; {:?} waits for our justice",
        on_revoked.key
    );
}
