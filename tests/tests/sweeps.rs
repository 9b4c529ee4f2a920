//! Claims end to end in the core: after a close, the engine claims what is ours — our balance
//! on either commitment and the HTLC outputs of the peer's commitment, by timeout or with the
//! preimage — and every transaction it broadcasts is verified by Bitcoin Core's script
//! interpreter against the outputs it spends, and by the policy check at the height it is
//! offered (never before its timelocks).

use std::collections::BTreeMap;

use bitcoin::{Amount, Transaction, Txid};
use contractcourt_core::action::{Action, FailReason, Outcome, Report};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::ledger::OutputStatus;
use contractcourt_core::chain::Config;
use contractcourt_core::channel::ArbState;
use contractcourt_core::event::{Event, ForceCloseReason, IncomingLeg, PreimageSource};
use contractcourt_core::sim::SimSetup;
use contractcourt_core::types::{ChannelId, HtlcDirection, HtlcKey, Party};
use contractcourt_tests::{Harness, START_HEIGHT};

fn config() -> Config {
    sweeping_config()
}

use contractcourt_tests::checks::{
    check_broadcasts, claimed_outputs, claims_of, commit_htlcs, incoming_with_preimages,
    sweeping_config,
};

#[test]
fn after_the_peers_close_every_output_of_ours_is_claimed_with_transactions_bitcoin_core_accepts() {
    let mut h = Harness::new(config());
    let id = h.open(SimSetup::new(31, ChannelType::StaticRemoteKey));
    let expiry = START_HEIGHT + 30;
    let (mut out, mut inc) = (None, None);
    h.with_sim(id, |sim| {
        out = Some(
            sim.add_htlc(HtlcDirection::Outgoing, 80_000_000, expiry)
                .unwrap(),
        );
        inc = Some(
            sim.add_htlc(HtlcDirection::Incoming, 70_000_000, expiry + 50)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    let (out, inc) = (out.unwrap(), inc.unwrap());
    let upstream = HtlcKey {
        channel: ChannelId([7; 32]),
        htlc_id: 3,
        direction: HtlcDirection::Incoming,
    };
    h.feed(Event::CircuitAdded {
        outgoing: out.key,
        incoming: IncomingLeg {
            htlc: upstream,
            cltv_expiry: expiry + 40,
            amount_msat: 80_010_000,
        },
    });
    h.feed(Event::PreimageLearned {
        preimage: inc.preimage,
        source: PreimageSource::Invoice { htlc: inc.key },
    });
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    let close_txid = theirs.compute_txid();
    // Our to_remote and the incoming HTLC (we hold its preimage) are claimed for the very next
    // block, as soon as the close confirms.
    let start = h.broadcasts.len();
    h.mine(vec![theirs]);
    assert_eq!(check_broadcasts(&h, start, &[]), 2);
    // The ledger: our balance and the incoming HTLC are being claimed; the outgoing HTLC is
    // contested until its expiry.
    let ledger = h.arb.ledger();
    let entries = &ledger.channels[0].outputs;
    let status_of = |what: &str| {
        entries
            .iter()
            .find(|e| e.what.starts_with(what))
            .map(|e| e.status.clone())
            .unwrap()
    };
    assert_eq!(status_of("our balance"), OutputStatus::Claiming);
    assert_eq!(status_of("incoming htlc"), OutputStatus::Claiming);
    assert_eq!(status_of("outgoing htlc"), OutputStatus::Contested);
    assert_eq!(
        entries
            .iter()
            .find(|e| e.what.starts_with("outgoing"))
            .unwrap()
            .next_step,
        Some(expiry)
    );
    assert_eq!(ledger.totals.contested_sat, 80_000);
    let first = claims_of(&h, start, close_txid);
    assert_eq!(first.len(), 2, "to_remote and the preimage claim");
    h.mine(first);

    // The outgoing HTLC: nothing before its expiry, then a timeout claim final in expiry + 1.
    while h.height() < expiry - 1 {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        let early: Vec<_> = claims_of(&h, from, close_txid);
        assert!(
            early.is_empty(),
            "no timeout claim offered at {}",
            h.height() + 1
        );
    }
    let from = h.broadcasts.len();
    h.mine(Vec::new());
    assert_eq!(h.height(), expiry);
    check_broadcasts(&h, from, &[]);
    let timeout = claims_of(&h, from, close_txid);
    assert_eq!(
        timeout.len(),
        1,
        "the timeout claim is offered for block expiry + 1"
    );
    assert_eq!(timeout[0].lock_time.to_consensus_u32(), expiry);
    // Expired, its claim out: no longer contested but being claimed.
    let ledger = h.arb.ledger();
    let outgoing = ledger.channels[0]
        .outputs
        .iter()
        .find(|e| e.what.starts_with("outgoing"))
        .unwrap();
    assert_eq!(outgoing.status, OutputStatus::Claiming);
    h.mine(timeout);

    // Reorg-safe: the timeout fails the incoming leg; every output is resolved.
    h.mine_empty(6);
    let failed: Vec<_> = h
        .transcript
        .iter()
        .filter_map(|a| match a {
            Action::FailUpstream { htlc, reason } => Some((*htlc, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![(upstream, FailReason::OutgoingTimedOut { outgoing: out.key })]
    );
    let outcomes: Vec<Outcome> = h
        .reports()
        .into_iter()
        .filter_map(|r| match r {
            Report::Resolution(r) => Some(r.outcome),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes.contains(&Outcome::TimedOut)
            && outcomes.iter().filter(|o| **o == Outcome::Claimed).count() == 2
    );
    let fees: u64 = h
        .reports()
        .into_iter()
        .filter_map(|r| match r {
            Report::Resolution(r) => Some(r.fees_sat),
            _ => None,
        })
        .sum();
    assert!(fees > 0, "resolutions report the fees the claims paid");
    assert_eq!(h.arb.channel(&id).unwrap().state(), ArbState::FullyResolved);
    let totals = h.arb.ledger().totals;
    assert_eq!(
        (
            totals.contested_sat,
            totals.claiming_sat,
            totals.timelocked_sat
        ),
        (0, 0, 0)
    );
    assert_eq!(totals.fees_sat, fees);
    let ours: u64 = h
        .arb
        .channel(&id)
        .unwrap()
        .resolvers
        .values()
        .map(|r| r.value_sat)
        .sum();
    assert_eq!(totals.recovered_sat, ours, "every output of ours recovered");
    h.check_golden(
        "remote_close_claims",
        "after the peer's close we claim to_remote, an HTLC by preimage and one by timeout",
    );
    h.check_crash_anywhere();
}

#[test]
fn our_to_local_is_swept_only_once_its_delay_has_passed() {
    let mut h = Harness::new(config());
    let id = h.open(SimSetup::new(32, ChannelType::AnchorsZeroFeeHtlc));
    let actions = h.feed(Event::ForceCloseRequested {
        channel: id,
        reason: ForceCloseReason::User,
    });
    h.answer(&actions);
    let ours = h.broadcasts.last().unwrap().clone();
    h.mine(vec![ours.clone()]);
    let close_height = h.height();
    let delay = h.sim(id).setup().local_to_self_delay as u32;
    // CSV n on an output confirmed at height c is spendable in block c + n.
    while h.height() + 2 < close_height + delay {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        assert!(
            claims_of(&h, from, ours.compute_txid()).is_empty(),
            "not before the CSV delay (offering block {})",
            h.height() + 1
        );
    }
    let from = h.broadcasts.len();
    h.mine(Vec::new());
    let sweep = claims_of(&h, from, ours.compute_txid());
    assert_eq!(sweep.len(), 1);
    check_broadcasts(&h, from, &[]);
    assert_eq!(
        sweep[0].input[0].sequence.0, delay,
        "nSequence carries the CSV delay"
    );
    let value_in = ours.output[sweep[0].input[0].previous_output.vout as usize].value;
    assert!(
        sweep[0].output[0].value < value_in
            && sweep[0].output[0].value > Amount::from_sat(value_in.to_sat() * 95 / 100)
    );
}

#[test]
fn on_our_commitment_htlcs_are_claimed_through_second_level_transactions_then_swept() {
    let mut h = Harness::new(config());
    let id = h.open(SimSetup::new(33, ChannelType::StaticRemoteKey));
    let expiry = START_HEIGHT + 12;
    commit_htlcs(
        &mut h,
        id,
        &[(90_000_000, expiry)],
        &[(60_000_000, expiry + 100)],
    );
    let actions = h.feed(Event::ForceCloseRequested {
        channel: id,
        reason: ForceCloseReason::User,
    });
    h.answer(&actions);
    let ours = h.broadcasts.last().unwrap().clone();
    let commit_txid = ours.compute_txid();
    let from = h.broadcasts.len();
    h.mine(vec![ours]);

    // HTLC-success at once (we hold the preimage), signed by both, accepted by Bitcoin Core.
    check_broadcasts(&h, from, &[]);
    let success = claims_of(&h, from, commit_txid);
    assert_eq!(success.len(), 1, "only the HTLC-success before the expiry");
    assert_eq!(
        success[0].input[0].witness.len(),
        5,
        "0 <remote sig> <local sig> <preimage> <script>"
    );
    h.mine(success.clone());

    // HTLC-timeout: offered for block expiry + 1, not before.
    while h.height() < expiry - 1 {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        assert!(
            claims_of(&h, from, commit_txid)
                .iter()
                .all(|t| t.lock_time.to_consensus_u32() != expiry),
            "no timeout before {expiry}"
        );
    }
    let from = h.broadcasts.len();
    h.mine(Vec::new());
    check_broadcasts(&h, from, &[]);
    let timeout: Vec<Transaction> = claims_of(&h, from, commit_txid)
        .into_iter()
        .filter(|t| t.lock_time.to_consensus_u32() == expiry)
        .collect();
    assert_eq!(timeout.len(), 1);
    h.mine(timeout.clone());

    // Both second-level outputs are swept once their CSV delay has passed.
    let delay = h.sim(id).setup().local_to_self_delay as u32;
    let mut swept: BTreeMap<bitcoin::OutPoint, Transaction> = BTreeMap::new();
    for _ in 0..delay + 2 {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(&h, from, &[]);
        for parent in [&success[0], &timeout[0]] {
            swept.extend(claimed_outputs(&h, from, parent.compute_txid()));
        }
    }
    assert_eq!(swept.len(), 2, "both second-level outputs swept");
    assert!(swept
        .values()
        .all(|t| t.input.iter().all(|i| i.sequence.0 == delay)));
    // Both are only ours and mature together: they share one transaction (with our to_local,
    // which matured in the same block).
    let txs: BTreeMap<Txid, Transaction> = swept
        .values()
        .map(|t| (t.compute_txid(), t.clone()))
        .collect();
    assert_eq!(txs.len(), 1, "one batch");

    // Once everything is final, the ledger counts each satoshi once: the HTLC outputs show as
    // handed to their second-level transactions, and count (as recovered, before fees) at their
    // value on the commitment; the second-level transactions' fees are fees, counted once.
    let to_local: Vec<Transaction> = claimed_outputs(&h, 0, commit_txid)
        .into_values()
        .filter(|t| t.input.iter().all(|i| i.sequence.0 == delay))
        .collect();
    let mut finals: BTreeMap<Txid, Transaction> = BTreeMap::new();
    for t in swept.values().chain(&to_local) {
        finals.insert(t.compute_txid(), t.clone());
    }
    h.mine(finals.into_values().collect());
    h.mine_empty(6);
    let ledger = h.arb.ledger();
    let outputs = &ledger.channels[0].outputs;
    assert_eq!(
        outputs
            .iter()
            .filter(|e| matches!(e.status, OutputStatus::SecondLevel { .. }))
            .count(),
        2
    );
    let ours_on_commitment: u64 = outputs
        .iter()
        .filter(|e| e.outpoint.txid == commit_txid)
        .map(|e| e.amount_sat)
        .sum();
    let second_level_fees: u64 = outputs
        .iter()
        .filter(|e| matches!(e.status, OutputStatus::SecondLevel { .. }))
        .map(|e| e.fees_paid_sat)
        .sum();
    assert_eq!(
        ledger.totals.recovered_sat, ours_on_commitment,
        "no double counting: each output of the close once, before fees"
    );
    assert!(second_level_fees > 0 && ledger.totals.fees_sat > second_level_fees);
    assert!(outputs.iter().all(|e| matches!(
        e.status,
        OutputStatus::SecondLevel { .. } | OutputStatus::Recovered { .. }
    )));
}

/// A remote close with one incoming HTLC (expiring at `expiry`) whose preimage we do not know yet.
fn remote_close_with_incoming(
    seed: u64,
    expiry: u32,
) -> (Harness, ChannelId, contractcourt_core::sim::SimHtlc, Txid) {
    let mut h = Harness::new(config());
    let id = h.open(SimSetup::new(seed, ChannelType::StaticRemoteKey));
    let mut inc = None;
    h.with_sim(id, |sim| {
        inc = Some(
            sim.add_htlc(HtlcDirection::Incoming, 70_000_000, expiry)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    let txid = theirs.compute_txid();
    h.mine(vec![theirs]);
    (h, id, inc.unwrap(), txid)
}

fn htlc_claims(h: &Harness, from: usize, close: Txid, htlc_vout: u32) -> Vec<Transaction> {
    claims_of(h, from, close)
        .into_iter()
        .filter(|t| t.input[0].previous_output.vout == htlc_vout)
        .collect()
}

/// The ledger status of the closing channel's output `vout`.
fn status_of_output(h: &Harness, vout: u32) -> OutputStatus {
    let ledger = h.arb.ledger();
    let entry = ledger.channels[0]
        .outputs
        .iter()
        .find(|e| e.outpoint.vout == vout);
    entry
        .map(|e| e.status.clone())
        .unwrap_or_else(|| panic!("no ledger entry for output {vout}"))
}

fn htlc_vout(h: &Harness, id: ChannelId) -> u32 {
    let ch = h.arb.channel(&id).unwrap();
    ch.resolvers
        .values()
        .find(|r| {
            matches!(
                r.kind,
                contractcourt_core::resolver::ResolverKind::IncomingHtlc { .. }
            )
        })
        .unwrap()
        .outpoint
        .vout
}

#[test]
fn when_the_peer_times_out_first_the_htlc_is_taken_by_the_peer_and_nothing_is_claimed() {
    let expiry = START_HEIGHT + 10;
    let (mut h, id, inc, close) = remote_close_with_incoming(41, expiry);
    let vout = htlc_vout(&h, id);
    h.mine_empty(expiry - h.height());
    let from = h.broadcasts.len();
    let peer_timeout = h.sim(id).htlc_tx(Party::Remote, 1, inc.key).unwrap();
    h.mine(vec![peer_timeout.clone()]);
    h.mine_empty(8);
    assert!(
        htlc_claims(&h, from, close, vout).is_empty(),
        "no claim of an HTLC we hold no preimage for"
    );
    assert_eq!(
        status_of_output(&h, vout),
        OutputStatus::TakenByPeer {
            txid: peer_timeout.compute_txid()
        }
    );
    assert!(h.transcript.iter().all(|a| !matches!(
        a,
        Action::SettleUpstream { .. } | Action::FailUpstream { .. }
    )));
}

#[test]
fn a_preimage_arriving_one_block_before_expiry_is_claimed_in_time() {
    let expiry = START_HEIGHT + 12;
    let (mut h, id, inc, close) = remote_close_with_incoming(42, expiry);
    let vout = htlc_vout(&h, id);
    h.mine_empty(expiry - 2 - h.height());
    assert_eq!(h.height(), expiry - 2);
    h.feed(Event::PreimageLearned {
        preimage: inc.preimage,
        source: PreimageSource::Invoice { htlc: inc.key },
    });
    // The next block (expiry - 1) is the last one in which our claim can confirm before the
    // peer's timeout becomes valid (in block expiry + 1); the claim is offered for it.
    let from = h.broadcasts.len();
    h.mine(Vec::new());
    check_broadcasts(&h, from, &[]);
    let claim = htlc_claims(&h, from, close, vout);
    assert_eq!(
        claim.len(),
        1,
        "the preimage claim goes out at the first block after the preimage"
    );
    assert!(h.height() < expiry);
    h.mine(claim.clone());
    h.mine_empty(6);
    assert_eq!(
        status_of_output(&h, vout),
        OutputStatus::Recovered {
            txid: claim[0].compute_txid()
        }
    );
}

#[test]
fn our_preimage_claim_reorged_out_for_the_peers_timeout_ends_taken_by_the_peer_without_a_stuck_claim(
) {
    let expiry = START_HEIGHT + 8;
    let (mut h, id, inc, close) = remote_close_with_incoming(43, expiry);
    let vout = htlc_vout(&h, id);
    h.feed(Event::PreimageLearned {
        preimage: inc.preimage,
        source: PreimageSource::Invoice { htlc: inc.key },
    });
    let from = h.broadcasts.len();
    h.mine(Vec::new());
    let ours = htlc_claims(&h, from, close, vout);
    assert_eq!(ours.len(), 1);
    h.mine(ours.clone());
    let fork_from = h.height();
    h.mine_empty(expiry - h.height());
    // A reorg back to before our claim; the new chain carries the peer's timeout instead.
    while h.height() >= fork_from {
        h.disconnect_tip();
    }
    h.mine_empty_salted(expiry - h.height(), 5);
    let peer_timeout = h.sim(id).htlc_tx(Party::Remote, 1, inc.key).unwrap();
    h.mine_salted(vec![peer_timeout.clone()], 5);
    h.mine_empty_salted(8, 5);
    assert_eq!(
        status_of_output(&h, vout),
        OutputStatus::TakenByPeer {
            txid: peer_timeout.compute_txid()
        }
    );
    let last = h.broadcasts.len();
    h.mine_empty_salted(3, 5);
    assert!(
        htlc_claims(&h, last, close, vout).is_empty(),
        "the spent output is no longer claimed"
    );
    h.check_crash_anywhere();
}

#[test]
fn the_fee_reserve_follows_the_htlcs_at_stake_and_alerts_before_the_wallet_falls_below_it() {
    use contractcourt_core::action::AlertKind;
    use contractcourt_core::chain::exposure::exposures;
    use contractcourt_core::sweeper::reserve::fee_reserve;
    let mut h = Harness::new(config());
    let id = h.open(SimSetup::new(71, ChannelType::AnchorsZeroFeeHtlc));
    let reserve_alerts = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| {
                matches!(a, Action::Report(Report::Alert(x)) if x.kind == AlertKind::FeeReserveLow)
            })
            .count()
    };
    let needed = |h: &Harness| {
        let ex = exposures([h.arb.channel(&id).unwrap()]);
        fee_reserve(&ex, None, &h.arb.config().sweeper).total_sat
    };
    let idle = needed(&h);
    // Plenty: no alert.
    let actions = h.feed(Event::WalletBalance {
        confirmed_sat: 10 * idle,
    });
    assert_eq!(reserve_alerts(&actions), 0);
    // HTLCs come: the reserve grows with them (each needs an HTLC transaction the wallet funds).
    h.with_sim(id, |sim| {
        for i in 0..6 {
            sim.add_htlc(HtlcDirection::Outgoing, 20_000_000, START_HEIGHT + 40 + i)
                .unwrap();
        }
        sim.commit().unwrap()
    });
    let busy = needed(&h);
    assert!(busy > 3 * idle, "{idle} -> {busy}");
    // The wallet shrinks to within 25% of the reserve: alerted before it falls below, once.
    let actions = h.feed(Event::WalletBalance {
        confirmed_sat: busy + busy / 10,
    });
    assert_eq!(reserve_alerts(&actions), 1);
    let actions = h.mine(Vec::new());
    assert_eq!(reserve_alerts(&actions), 0, "not repeated every block");
    let actions = h.feed(Event::WalletBalance {
        confirmed_sat: busy / 2,
    });
    assert_eq!(reserve_alerts(&actions), 1, "below now");
}

#[test]
fn a_fee_spike_mid_resolution_bumps_the_batched_htlc_claims_within_their_budgets() {
    use bitcoin::FeeRate;
    use contractcourt_core::event::{FeeConditions, FeeEstimate};
    let conditions = |sat_per_vb: u64| {
        let one = FeeRate::from_sat_per_kwu(250);
        Event::FeeConditions(FeeConditions {
            estimates: [1, 6, 144]
                .into_iter()
                .map(|target_blocks| FeeEstimate {
                    target_blocks,
                    feerate: FeeRate::from_sat_per_kwu(sat_per_vb * 250),
                })
                .collect(),
            mempool_min: one,
            min_relay: one,
            incremental_relay: one,
        })
    };
    let mut h = Harness::new(config());
    let id = h.open(SimSetup::new(72, ChannelType::StaticRemoteKey));
    let expiry = START_HEIGHT + 40;
    incoming_with_preimages(&mut h, id, &[30_000_000, 35_000_000, 40_000_000], expiry);
    h.feed(conditions(2));
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    let close = theirs.compute_txid();
    let from = h.broadcasts.len();
    h.mine(vec![theirs.clone()]);
    check_broadcasts(&h, from, &[]);
    // The three preimage claims (contested) share one transaction; our balance goes alone.
    let claimed = claimed_outputs(&h, from, close);
    let batch = claimed
        .values()
        .find(|t| t.input.len() == 3)
        .cloned()
        .expect("one batch of the three HTLC claims");
    let fee = |t: &Transaction| {
        let value_in: u64 = t
            .input
            .iter()
            .map(|i| {
                theirs.output[i.previous_output.vout as usize]
                    .value
                    .to_sat()
            })
            .sum();
        value_in - t.output.iter().map(|o| o.value.to_sat()).sum::<u64>()
    };
    // The estimates jump ×50 mid-resolution: the next block bumps the batch, a valid
    // replacement (BIP 125 rules 3 and 4) that stays within the inputs' budgets (half of each
    // HTLC's value by default).
    h.feed(conditions(100));
    let from = h.broadcasts.len();
    h.mine(Vec::new());
    check_broadcasts(&h, from, &[]);
    let bumped = claimed_outputs(&h, from, close)
        .into_values()
        .find(|t| t.input.len() == 3)
        .expect("the bumped batch");
    assert_ne!(bumped.compute_txid(), batch.compute_txid());
    assert!(fee(&bumped) >= fee(&batch) + bumped.vsize() as u64);
    assert!(
        fee(&bumped) * 1000 / bumped.vsize() as u64 > fee(&batch) * 1000 / batch.vsize() as u64
    );
    let budget: u64 = bumped
        .input
        .iter()
        .map(|i| {
            theirs.output[i.previous_output.vout as usize]
                .value
                .to_sat()
                / 2
        })
        .sum();
    assert!(fee(&bumped) <= budget);
    // The report says why: the market estimate set the rate.
    assert!(h.reports().iter().any(|r| matches!(r,
        Report::Timeline { stage, .. } if stage.starts_with("bumping to")
            && stage.contains("in a batch of 3 inputs")
            && stage.contains("rate set by the market estimate"))));
    // It confirms: the ledger splits its fee over the three HTLCs, summing to the whole.
    let balance: Vec<Transaction> = claimed
        .into_values()
        .filter(|t| t.input.len() == 1)
        .collect();
    h.mine(balance.into_iter().chain([bumped.clone()]).collect());
    h.mine_empty(6);
    let ledger = h.arb.ledger();
    let htlc_fees: u64 = ledger.channels[0]
        .outputs
        .iter()
        .filter(|e| bumped.input.iter().any(|i| i.previous_output == e.outpoint))
        .map(|e| e.fees_paid_sat)
        .sum();
    assert_eq!(htlc_fees, fee(&bumped));
}
