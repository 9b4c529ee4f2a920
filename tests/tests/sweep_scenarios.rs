//! The sweeper under a hostile or picky mempool, end to end through the chain arbitrator: a batch
//! of claims with one input pinned by the peer is split so the others confirm, and the pinned
//! input keeps being offered every block within its budget until the pin clears (ours) or the
//! peer's transaction confirms (theirs); a batch rejected for one bad input is split into
//! single-input claims, the bad one isolated and reported, nothing else dropped; a dust-sized
//! output is reported uneconomical and never broadcast, while an outgoing HTLC's timeout claim of
//! that size is forced or handed to the cut-loss rule with a report, never dropped. Every
//! transaction the engine broadcasts is checked by Bitcoin Core's script interpreter and the
//! standardness and finality checks.

use bitcoin::{OutPoint, Transaction};
use contractcourt_core::action::{Action, AlertKind, FailReason, Report};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::ledger::OutputStatus;
use contractcourt_core::event::{Event, IncomingLeg, PreimageSource};
use contractcourt_core::resolver::ResolverKind;
use contractcourt_core::sim::{SimHtlc, SimSetup};
use contractcourt_core::types::{ChannelId, HtlcDirection, HtlcKey, Party};
use contractcourt_tests::checks::{
    check_broadcasts, incoming_with_preimages, sweeping_config, Outputs,
};
use contractcourt_tests::{Harness, START_HEIGHT};

/// Bitcoin Core's answer to a transaction spending an output a mempool transaction already
/// spends, when it may not replace it.
const CONFLICT: &str = "txn-mempool-conflict";
/// Bitcoin Core's answer to a replacement that does not outbid a large, low-rate pinning
/// transaction (BIP 125 rule 3).
const PINNED_BY_FEE: &str = "insufficient fee, rejecting replacement \
     0000000000000000000000000000000000000000000000000000000000000000, less fees than \
     conflicting txs; 5000 < 90000";
/// Bitcoin Core's answer to a transaction one of whose inputs fails its script checks.
const BAD_SCRIPT: &str = "mandatory-script-verify-flag-failed (Signature must be zero for failed \
     CHECK(MULTI)SIG operation)";

/// The fee `tx` pays, from the outputs it spends.
fn fee_of(h: &Harness, tx: &Transaction) -> u64 {
    let (prevouts, _) = Outputs::from(h, &[]).prevouts(tx);
    let inputs: u64 = prevouts.iter().map(|o| o.value.to_sat()).sum();
    let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    inputs - outputs
}

/// Every broadcast since `from` spending `outpoint`.
fn spending(h: &Harness, from: usize, outpoint: OutPoint) -> Vec<Transaction> {
    h.broadcasts[from..]
        .iter()
        .filter(|t| t.input.iter().any(|i| i.previous_output == outpoint))
        .cloned()
        .collect()
}

/// The alerts emitted since transcript position `from`.
fn alerts_since(h: &Harness, from: usize) -> Vec<(AlertKind, String)> {
    h.transcript[from..]
        .iter()
        .filter_map(|a| match a {
            Action::Report(Report::Alert(x)) => Some((x.kind, x.message.clone())),
            _ => None,
        })
        .collect()
}

/// The output of the closing transaction paying the HTLC `key`.
fn htlc_outpoint(h: &Harness, id: ChannelId, key: HtlcKey) -> OutPoint {
    h.arb
        .channel(&id)
        .unwrap()
        .resolvers
        .values()
        .find(|r| match &r.kind {
            ResolverKind::OutgoingHtlc { htlc, .. } | ResolverKind::IncomingHtlc { htlc, .. } => {
                *htlc == key
            }
            _ => false,
        })
        .unwrap_or_else(|| panic!("no resolver for {key:?}"))
        .outpoint
}

/// The ledger status of `outpoint`.
fn status(h: &Harness, outpoint: OutPoint) -> OutputStatus {
    h.arb
        .ledger()
        .channels
        .iter()
        .flat_map(|c| &c.outputs)
        .find(|e| e.outpoint == outpoint)
        .map(|e| e.status.clone())
        .unwrap_or_else(|| panic!("no ledger entry for {outpoint}"))
}

/// The fee budget of a claim on an HTLC of `value_sat`, as the configuration sets it.
fn htlc_budget(h: &Harness, value_sat: u64) -> u64 {
    h.arb.config().sweep.htlc_budget(value_sat)
}

/// The incoming leg each outgoing HTLC was forwarded from.
fn upstream_of(htlc: &SimHtlc) -> HtlcKey {
    HtlcKey {
        channel: ChannelId([7; 32]),
        htlc_id: htlc.key.htlc_id,
        direction: HtlcDirection::Incoming,
    }
}

/// A node whose peer closed with its commitment carrying our outgoing HTLCs of `amounts_sat`
/// (expiring at `expiry`, forwarded from incoming legs expiring at `incoming_expiry`); the close
/// is mined and our balance's sweep confirmed. Returns the channel, the HTLCs and the close.
fn peers_close_with_outgoing(
    seed: u64,
    amounts_sat: &[u64],
    expiry: u32,
    incoming_expiry: u32,
) -> (Harness, ChannelId, Vec<SimHtlc>, Transaction) {
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(seed, ChannelType::StaticRemoteKey));
    let mut htlcs = Vec::new();
    h.with_sim(id, |sim| {
        for sat in amounts_sat {
            htlcs.push(
                sim.add_htlc(HtlcDirection::Outgoing, sat * 1000, expiry)
                    .unwrap(),
            );
        }
        sim.commit().unwrap()
    });
    for htlc in &htlcs {
        h.feed(Event::CircuitAdded {
            outgoing: htlc.key,
            incoming: IncomingLeg {
                htlc: upstream_of(htlc),
                cltv_expiry: incoming_expiry,
                amount_msat: htlc.amount_msat + 1_000,
            },
        });
    }
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    let from = h.broadcasts.len();
    h.mine(vec![theirs.clone()]);
    check_broadcasts(&h, from, &[]);
    let close_txid = theirs.compute_txid();
    let sweep = h.broadcasts[from..]
        .iter()
        .rev()
        .find(|t| t.input.iter().any(|i| i.previous_output.txid == close_txid))
        .cloned()
        .expect("our balance is swept at once");
    h.mine(vec![sweep]);
    (h, id, htlcs, theirs)
}

/// Mine blocks until the tip is `height`.
fn mine_to(h: &mut Harness, height: u32) {
    while h.height() < height {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(h, from, &[]);
    }
}

/// The upstream failures emitted so far, by incoming leg.
fn failed_upstream(h: &Harness) -> Vec<(HtlcKey, FailReason)> {
    h.transcript
        .iter()
        .filter_map(|a| match a {
            Action::FailUpstream { htlc, reason } => Some((*htlc, reason.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_batch_rejected_for_a_pinned_input_is_split_the_others_confirm_and_the_pinned_one_is_retried_every_block_within_its_budget_until_the_pin_clears(
) {
    let expiry = START_HEIGHT + 20;
    let incoming_expiry = expiry + 30;
    let amounts = [40_000, 45_000, 50_000];
    let (mut h, id, htlcs, close) =
        peers_close_with_outgoing(51, &amounts, expiry, incoming_expiry);
    let outpoints: Vec<OutPoint> = htlcs.iter().map(|x| htlc_outpoint(&h, id, x.key)).collect();
    // The peer holds its HTLC-success of the second HTLC (it knows the preimage) in the mempool,
    // unconfirmed: our claims of that output conflict with it.
    let pinned = outpoints[1];
    let pinned_value = close.output[pinned.vout as usize].value.to_sat();
    h.answers
        .reject_spending
        .insert(pinned, CONFLICT.to_string());
    mine_to(&mut h, expiry - 1);

    // At the expiry the three timeout claims go out together, and are refused as a conflict.
    let (from, said) = (h.broadcasts.len(), h.transcript.len());
    h.mine(Vec::new());
    check_broadcasts(&h, from, &[]);
    let first: Vec<Transaction> = h.broadcasts[from..].to_vec();
    assert_eq!(first.len(), 1, "one transaction for the three claims");
    assert_eq!(first[0].input.len(), 3);
    assert!(alerts_since(&h, said)
        .iter()
        .any(|(_, m)| m.contains("splitting it into one transaction per input")));

    // From the next block each input is claimed on its own: the unpinned ones are accepted.
    let from = h.broadcasts.len();
    h.mine(Vec::new());
    check_broadcasts(&h, from, &[]);
    let mut singles = Vec::new();
    for o in &outpoints {
        let txs = spending(&h, from, *o);
        assert!(!txs.is_empty(), "{o} claimed after the split");
        assert!(
            txs.iter().all(|t| t.input.len() == 1),
            "{o} claimed on its own"
        );
        singles.push(txs.last().unwrap().clone());
    }
    let pinned_budget = htlc_budget(&h, pinned_value);
    let mut pinned_fees = vec![fee_of(&h, &singles[1])];
    h.mine(vec![singles[0].clone(), singles[2].clone()]);

    // The pin holds for eight blocks: the pinned claim is offered again in every one, its fee
    // never falls and never exceeds its budget.
    for _ in 0..8 {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(&h, from, &[]);
        let offered = spending(&h, from, pinned);
        assert!(!offered.is_empty(), "rebroadcast at {}", h.height());
        for t in &offered {
            assert_eq!(t.input.len(), 1);
            let fee = fee_of(&h, t);
            assert!(fee <= pinned_budget, "{fee} > budget {pinned_budget}");
            assert!(fee >= *pinned_fees.last().unwrap());
            pinned_fees.push(fee);
        }
    }
    assert!(
        pinned_fees.last() > pinned_fees.first(),
        "the fee rises toward the deadline: {pinned_fees:?}"
    );
    assert!(spending(&h, 0, outpoints[0])
        .iter()
        .chain(&spending(&h, 0, outpoints[2]))
        .all(|t| !t.input.iter().any(|i| i.previous_output == pinned) || t.input.len() == 3));

    // The pin clears (the peer's transaction left the mempool): the next offer is accepted and
    // confirms.
    h.answers.reject_spending.clear();
    let from = h.broadcasts.len();
    h.mine(Vec::new());
    check_broadcasts(&h, from, &[]);
    let ours = spending(&h, from, pinned).last().cloned().expect("offered");
    assert!(fee_of(&h, &ours) <= pinned_budget);
    h.mine(vec![ours.clone()]);
    h.mine_empty(6);

    // The ledger: all three HTLCs timed out back to us, each incoming leg failed for that
    // reason, none by the cut-loss rule.
    for (o, x) in outpoints.iter().zip(&htlcs) {
        assert!(
            matches!(status(&h, *o), OutputStatus::Recovered { .. }),
            "{o}: {:?}",
            status(&h, *o)
        );
        assert!(failed_upstream(&h).contains(&(
            upstream_of(x),
            FailReason::OutgoingTimedOut { outgoing: x.key }
        )));
    }
    assert_eq!(
        status(&h, pinned),
        OutputStatus::Recovered {
            txid: ours.compute_txid()
        }
    );
    assert_eq!(failed_upstream(&h).len(), 3);
    let totals = h.arb.ledger().totals;
    assert_eq!(
        (
            totals.contested_sat,
            totals.claiming_sat,
            totals.taken_by_peer_sat
        ),
        (0, 0, 0)
    );
}

#[test]
fn a_batch_pinned_by_a_transaction_it_cannot_outbid_is_split_after_the_configured_blocks_and_the_pinned_claim_never_pays_above_its_budget_until_the_peer_takes_it(
) {
    let expiry = START_HEIGHT + 20;
    let incoming_expiry = expiry + 16;
    let amounts = [40_000, 45_000, 50_000];
    let (mut h, id, htlcs, close) =
        peers_close_with_outgoing(52, &amounts, expiry, incoming_expiry);
    let outpoints: Vec<OutPoint> = htlcs.iter().map(|x| htlc_outpoint(&h, id, x.key)).collect();
    let pinned = outpoints[0];
    let pinned_htlc = &htlcs[0];
    let pinned_value = close.output[pinned.vout as usize].value.to_sat();
    let pinned_budget = htlc_budget(&h, pinned_value);
    let batch_budget: u64 = outpoints
        .iter()
        .map(|o| htlc_budget(&h, close.output[o.vout as usize].value.to_sat()))
        .sum();
    h.answers
        .reject_spending
        .insert(pinned, PINNED_BY_FEE.to_string());
    mine_to(&mut h, expiry - 1);

    // A fee refusal does not split the batch: it is bumped every block, within the three
    // budgets, until it has stayed unconfirmed for `split_after_blocks`.
    let split_after = h.arb.config().sweeper.split_after_blocks;
    let mut batch_fees = Vec::new();
    let mut split_at = None;
    for _ in 0..=split_after + 1 {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(&h, from, &[]);
        let txs = spending(&h, from, pinned);
        if txs.iter().all(|t| t.input.len() == 1) {
            split_at = Some(h.height());
            break;
        }
        for t in txs.iter().filter(|t| t.input.len() == 3) {
            let fee = fee_of(&h, t);
            assert!(fee <= batch_budget);
            batch_fees.push((t.compute_txid(), fee));
        }
    }
    let split_at = split_at.expect("the batch is split");
    assert_eq!(
        split_at,
        expiry + split_after,
        "built at the expiry, offered for {split_after} blocks, then one claim per input"
    );
    let distinct: std::collections::BTreeSet<_> = batch_fees.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        distinct.len() as u32,
        split_after,
        "the refused batch is bumped in each of those blocks"
    );
    assert!(batch_fees.windows(2).all(|w| w[0].1 <= w[1].1));

    // The unpinned inputs confirm on their own.
    let goods: Vec<Transaction> = outpoints[1..]
        .iter()
        .map(|o| {
            let t = h
                .broadcasts
                .iter()
                .rev()
                .find(|t| t.input.len() == 1 && t.input[0].previous_output == *o);
            t.cloned().expect("claimed alone")
        })
        .collect();
    h.mine(goods);

    // The pinned claim is refused every block: it is bumped, never above its budget, and the
    // operator is told once it pays all the budget allows.
    let said = h.transcript.len();
    let mut last_fee = 0;
    while h.height() < incoming_expiry + 1 {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(&h, from, &[]);
        let offered = spending(&h, from, pinned);
        assert!(!offered.is_empty(), "offered again at {}", h.height());
        for t in &offered {
            let fee = fee_of(&h, t);
            assert!(fee <= pinned_budget, "{fee} > budget {pinned_budget}");
            assert!(fee >= last_fee);
            last_fee = fee;
        }
    }
    let alerts = alerts_since(&h, said);
    assert!(
        alerts.iter().any(|(k, m)| *k == AlertKind::DeadlineAtRisk
            && m.contains(&pinned.to_string())
            && m.contains("all its budget")),
        "{alerts:?}"
    );
    // The usable budget is the budget, less nothing (the HTLC is far above dust): reached to
    // within a rounding of one satoshi per virtual byte.
    let last = spending(&h, 0, pinned).last().cloned().unwrap();
    assert!(
        pinned_budget - last_fee < last.vsize() as u64,
        "{last_fee} of {pinned_budget}"
    );

    // The cut-loss rule failed the incoming leg before it expired; the peer's HTLC-success
    // confirms: the output is taken by the peer, and nothing spends it any more.
    assert!(failed_upstream(&h)
        .iter()
        .any(|(leg, reason)| *leg == upstream_of(pinned_htlc)
            && matches!(reason, FailReason::CutLoss { .. })));
    let peer = h
        .sim(id)
        .htlc_tx(Party::Remote, 1, pinned_htlc.key)
        .unwrap();
    h.mine(vec![peer.clone()]);
    h.mine_empty(6);
    let from = h.broadcasts.len();
    h.mine_empty(3);
    assert!(spending(&h, from, pinned).is_empty());
    assert_eq!(
        status(&h, pinned),
        OutputStatus::TakenByPeer {
            txid: peer.compute_txid()
        }
    );
    for o in &outpoints[1..] {
        assert!(matches!(status(&h, *o), OutputStatus::Recovered { .. }));
    }
    let totals = h.arb.ledger().totals;
    assert_eq!(totals.taken_by_peer_sat, pinned_value);
    assert_eq!((totals.contested_sat, totals.claiming_sat), (0, 0));
    assert!(h
        .reports()
        .iter()
        .any(|r| matches!(r, Report::Loss { htlc, .. } if *htlc == pinned_htlc.key)));
}

#[test]
fn a_batch_rejected_for_one_bad_input_is_split_the_good_inputs_confirm_and_the_bad_one_is_reported_and_kept_offered(
) {
    let mut h = Harness::new(sweeping_config());
    let id = h.open(SimSetup::new(53, ChannelType::StaticRemoteKey));
    let expiry = START_HEIGHT + 60;
    let amounts = [30_000_000, 34_000_000, 38_000_000, 42_000_000];
    let incoming = incoming_with_preimages(&mut h, id, &amounts, expiry);
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    let close = theirs.compute_txid();
    let vout_of = |x: &SimHtlc| {
        let v = theirs
            .output
            .iter()
            .position(|o| o.value.to_sat() * 1000 == x.amount_msat)
            .unwrap();
        OutPoint::new(close, u32::try_from(v).unwrap())
    };
    let outpoints: Vec<OutPoint> = incoming.iter().map(vout_of).collect();
    // The mempool refuses any transaction spending the third HTLC output for a script error
    // (as if its witness were wrong).
    let bad = outpoints[2];
    h.answers
        .reject_spending
        .insert(bad, BAD_SCRIPT.to_string());
    let (from, said) = (h.broadcasts.len(), h.transcript.len());
    h.mine(vec![theirs.clone()]);
    check_broadcasts(&h, from, &[]);
    for (o, x) in outpoints.iter().zip(&incoming) {
        assert_eq!(*o, htlc_outpoint(&h, id, x.key));
    }
    // The four preimage claims share one transaction (our balance goes alone); it is refused.
    let batch = spending(&h, from, bad);
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].input.len(), 4);
    let balance: Vec<Transaction> = h.broadcasts[from..]
        .iter()
        .filter(|t| t.input.len() == 1)
        .cloned()
        .collect();
    assert_eq!(balance.len(), 1, "our balance, alone");
    assert!(alerts_since(&h, said)
        .iter()
        .any(|(_, m)| m.contains("a script or policy error")
            && m.contains("splitting it into one transaction per input")));

    // The next block: one transaction per input; the three good ones are accepted and confirm.
    let (from, said) = (h.broadcasts.len(), h.transcript.len());
    h.mine(balance);
    check_broadcasts(&h, from, &[]);
    let mut goods = Vec::new();
    for o in &outpoints {
        let txs = spending(&h, from, *o);
        assert!(!txs.is_empty(), "{o} offered after the split");
        assert!(txs.iter().all(|t| t.input.len() == 1), "{o} alone");
        if *o != bad {
            goods.push(txs.last().unwrap().clone());
        }
    }
    // The bad input is isolated: reported by its outpoint, alone; no other input is.
    let alerts = alerts_since(&h, said);
    assert!(
        alerts
            .iter()
            .any(|(_, m)| m.contains(&bad.to_string()) && m.contains(BAD_SCRIPT)),
        "{alerts:?}"
    );
    assert!(alerts.iter().all(|(_, m)| outpoints
        .iter()
        .filter(|o| **o != bad)
        .all(|o| !m.contains(&o.to_string()))));
    h.mine(goods.clone());

    // Nothing is dropped: the bad input is still offered, alone, in every block while the good
    // ones reach their end.
    for _ in 0..8 {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(&h, from, &[]);
        let offered = spending(&h, from, bad);
        assert!(!offered.is_empty(), "still offered at {}", h.height());
        assert!(offered.iter().all(|t| t.input.len() == 1));
        let budget = htlc_budget(&h, theirs.output[bad.vout as usize].value.to_sat());
        assert!(offered.iter().all(|t| fee_of(&h, t) <= budget));
    }
    for (o, t) in outpoints.iter().filter(|o| **o != bad).zip(&goods) {
        assert_eq!(
            status(&h, *o),
            OutputStatus::Recovered {
                txid: t.compute_txid()
            }
        );
    }
    assert_eq!(status(&h, bad), OutputStatus::Claiming);
    assert_eq!(
        h.arb.ledger().totals.claiming_sat,
        theirs.output[bad.vout as usize].value.to_sat(),
        "only the bad input is still being claimed"
    );
}

/// The minimum relay fee a claim of `path` alone must pay (Bitcoin Core's default
/// `-minrelaytxfee`, 1 sat/vB), and what it may spend under `budget_sat`: its budget, and no
/// more than leaves its output above dust.
fn relay_fee_and_usable(
    h: &Harness,
    path: &contractcourt_core::bolt3::witness::ClaimPath,
    value_sat: u64,
    budget_sat: u64,
) -> (u64, u64) {
    use contractcourt_core::bolt3::weights::claim_tx_weight;
    use contractcourt_core::policy::dust_threshold;
    use contractcourt_core::sweeper::DUST_RELAY_FEE_SAT_PER_KVB;
    let destination = &h.arb.config().sweep_to.as_ref().unwrap().destination;
    let vsize = claim_tx_weight(path, destination.len()).div_ceil(4);
    let dust = dust_threshold(destination, DUST_RELAY_FEE_SAT_PER_KVB);
    (vsize, budget_sat.min(value_sat.saturating_sub(dust)))
}

/// An anchors channel the peer funded, closed by the peer's commitment, carrying: our balance of
/// `balance_sat`, an incoming HTLC of `dust_sat` and one of 30,000 sat (preimages known, expiring
/// at `expiry`), and an outgoing HTLC of `outgoing_sat` expiring at `expiry`, forwarded from a
/// leg expiring at `incoming_expiry`. Returns the harness, the channel, the HTLCs (outgoing, dust
/// incoming, incoming) and the close, not yet mined.
fn small_outputs_channel(
    seed: u64,
    config: contractcourt_core::chain::Config,
    balance_sat: u64,
    dust_sat: u64,
    outgoing_sat: u64,
    expiry: u32,
    incoming_expiry: u32,
) -> (Harness, ChannelId, [SimHtlc; 3], Transaction) {
    let mut h = Harness::new(config);
    let setup = SimSetup {
        funder: Party::Remote,
        local_balance_msat: (balance_sat + outgoing_sat) * 1000,
        ..SimSetup::new(seed, ChannelType::AnchorsZeroFeeHtlc)
    };
    let id = h.open(setup);
    let mut htlcs = Vec::new();
    h.with_sim(id, |sim| {
        htlcs.push(
            sim.add_htlc(HtlcDirection::Outgoing, outgoing_sat * 1000, expiry)
                .unwrap(),
        );
        htlcs.push(
            sim.add_htlc(HtlcDirection::Incoming, dust_sat * 1000, expiry)
                .unwrap(),
        );
        htlcs.push(
            sim.add_htlc(HtlcDirection::Incoming, 30_000_000, expiry)
                .unwrap(),
        );
        sim.commit().unwrap()
    });
    h.feed(Event::CircuitAdded {
        outgoing: htlcs[0].key,
        incoming: IncomingLeg {
            htlc: upstream_of(&htlcs[0]),
            cltv_expiry: incoming_expiry,
            amount_msat: htlcs[0].amount_msat + 1_000,
        },
    });
    for inc in &htlcs[1..] {
        h.feed(Event::PreimageLearned {
            preimage: inc.preimage,
            source: PreimageSource::Invoice { htlc: inc.key },
        });
    }
    let theirs = h.sim(id).commitment_tx(Party::Remote, 1).unwrap();
    let htlcs: [SimHtlc; 3] = htlcs.try_into().unwrap();
    (h, id, htlcs, theirs)
}

#[test]
fn dust_sized_outputs_are_reported_uneconomical_and_never_broadcast_while_the_others_are_claimed() {
    use contractcourt_core::bolt3::witness::ClaimPath;
    let expiry = START_HEIGHT + 30;
    let (balance_sat, dust_sat) = (400, 400);
    let (mut h, id, htlcs, close) = small_outputs_channel(
        61,
        sweeping_config(),
        balance_sat,
        dust_sat,
        40_000,
        expiry,
        expiry + 40,
    );
    let close_txid = close.compute_txid();
    let balance = OutPoint::new(
        close_txid,
        close
            .output
            .iter()
            .position(|o| o.value.to_sat() == balance_sat && o.script_pubkey.is_p2wsh())
            .unwrap() as u32,
    );
    let (from, said) = (h.broadcasts.len(), h.transcript.len());
    h.mine(vec![close.clone()]);
    let dust = htlc_outpoint(&h, id, htlcs[1].key);
    let good = htlc_outpoint(&h, id, htlcs[2].key);
    assert_eq!(close.output[dust.vout as usize].value.to_sat(), dust_sat);
    // Neither can pay the minimum relay fee on its own, with what it may spend.
    let cfg = &h.arb.config().sweep;
    for (path, value, budget) in [
        (
            ClaimPath::preimage_claim_on_remote_commitment(ChannelType::AnchorsZeroFeeHtlc),
            dust_sat,
            cfg.htlc_budget(dust_sat),
        ),
        (
            ClaimPath::ToRemote {
                channel_type: ChannelType::AnchorsZeroFeeHtlc,
            },
            balance_sat,
            cfg.balance_budget(balance_sat),
        ),
    ] {
        let (vsize, usable) = relay_fee_and_usable(&h, &path, value, budget);
        assert!(
            usable < vsize,
            "{path:?}: {usable} sat pays 1 sat/vB on {vsize} vB"
        );
    }
    check_broadcasts(&h, from, &[]);
    // The 30,000-sat HTLC is claimed at once; each dust output is reported, once.
    let claim = spending(&h, from, good);
    assert_eq!(claim.len(), 1);
    let alerts = alerts_since(&h, said);
    for o in [dust, balance] {
        let about: Vec<_> = alerts
            .iter()
            .filter(|(_, m)| m.contains(&o.to_string()) && m.contains("uneconomical"))
            .collect();
        assert_eq!(about.len(), 1, "{o}: {alerts:?}");
    }
    h.mine(claim.clone());
    // Left alone, block after block, with no repeated report.
    let said = h.transcript.len();
    for _ in 0..10 {
        let from = h.broadcasts.len();
        h.mine(Vec::new());
        check_broadcasts(&h, from, &[]);
    }
    assert!(spending(&h, 0, dust).is_empty() && spending(&h, 0, balance).is_empty());
    assert!(alerts_since(&h, said)
        .iter()
        .all(|(_, m)| !m.contains(&dust.to_string()) && !m.contains(&balance.to_string())));
    assert_eq!(
        status(&h, good),
        OutputStatus::Recovered {
            txid: claim[0].compute_txid()
        }
    );
    // At the expiry the peer times the dust HTLC out and we time ours out: the dust HTLC ends
    // taken by the peer, never claimed by us; everything else is ours.
    mine_to(&mut h, expiry);
    let ours = spending(&h, 0, htlc_outpoint(&h, id, htlcs[0].key));
    assert_eq!(ours.len(), 1, "the outgoing HTLC's timeout claim");
    let peer = h.sim(id).htlc_tx(Party::Remote, 1, htlcs[1].key).unwrap();
    h.mine(vec![peer.clone(), ours[0].clone()]);
    h.mine_empty(6);
    assert!(spending(&h, 0, dust).is_empty() && spending(&h, 0, balance).is_empty());
    assert_eq!(
        status(&h, dust),
        OutputStatus::TakenByPeer {
            txid: peer.compute_txid()
        }
    );
    assert!(matches!(
        status(&h, htlc_outpoint(&h, id, htlcs[0].key)),
        OutputStatus::Recovered { .. }
    ));
}

#[test]
fn a_dust_balance_left_alone_is_counted_uneconomical_in_the_ledger_not_as_being_claimed() {
    let (balance_sat, dust_sat) = (400, 400);
    let expiry = START_HEIGHT + 30;
    let (mut h, _, _, close) = small_outputs_channel(
        63,
        sweeping_config(),
        balance_sat,
        dust_sat,
        40_000,
        expiry,
        expiry + 40,
    );
    let balance = OutPoint::new(
        close.compute_txid(),
        close
            .output
            .iter()
            .position(|o| o.value.to_sat() == balance_sat && o.script_pubkey.is_p2wsh())
            .unwrap() as u32,
    );
    let said = h.transcript.len();
    h.mine(vec![close]);
    h.mine_empty(10);
    assert!(alerts_since(&h, said)
        .iter()
        .any(|(_, m)| m.contains(&balance.to_string()) && m.contains("uneconomical")));
    assert!(spending(&h, 0, balance).is_empty(), "never broadcast");
    // The sweeper leaves it alone, so the ledger must not say it is being claimed: it is left
    // unclaimed as worth less than its claim, like an uneconomical anchor.
    let ledger = h.arb.ledger();
    assert_eq!(status(&h, balance), OutputStatus::Uneconomical);
    let entries = || ledger.channels.iter().flat_map(|c| &c.outputs);
    let claiming: u64 = entries()
        .filter(|e| e.status == OutputStatus::Claiming)
        .map(|e| e.amount_sat)
        .sum();
    let left: u64 = entries()
        .filter(|e| e.status == OutputStatus::Uneconomical)
        .map(|e| e.amount_sat)
        .sum();
    assert_eq!(ledger.totals.claiming_sat, claiming, "{:?}", ledger.totals);
    assert_eq!(ledger.totals.uneconomical_sat, left, "{:?}", ledger.totals);
    assert!(left >= balance_sat, "{:?}", ledger.totals);
}

#[test]
fn a_timeout_claim_too_small_to_pay_the_relay_fee_is_handed_to_the_cut_loss_rule_never_broadcast_and_claimed_once_the_relay_fee_allows(
) {
    use contractcourt_core::bolt3::witness::ClaimPath;
    use contractcourt_core::event::{FeeConditions, FeeEstimate};
    use contractcourt_core::policy::PolicyConfig;
    use contractcourt_tests::checks::check_broadcasts_under;
    let expiry = START_HEIGHT + 30;
    let incoming_expiry = expiry + 10;
    let outgoing_sat = 400;
    let (mut h, id, htlcs, close) = small_outputs_channel(
        64,
        sweeping_config(),
        20_000,
        30_000,
        outgoing_sat,
        expiry,
        incoming_expiry,
    );
    h.mine(vec![close.clone()]);
    let out = htlc_outpoint(&h, id, htlcs[0].key);
    assert_eq!(close.output[out.vout as usize].value.to_sat(), outgoing_sat);
    // Even all of its value above dust cannot pay the minimum relay fee: forcing cannot help.
    let path =
        ClaimPath::timeout_claim_on_remote_commitment(expiry, ChannelType::AnchorsZeroFeeHtlc);
    let (vsize, above_dust) = relay_fee_and_usable(&h, &path, outgoing_sat, outgoing_sat);
    assert!(
        above_dust < vsize,
        "{above_dust} sat pays 1 sat/vB on {vsize} vB"
    );
    mine_to(&mut h, expiry - 1);
    let said = h.transcript.len();
    mine_to(&mut h, expiry);
    let about_it = |h: &Harness, said| -> Vec<String> {
        alerts_since(h, said)
            .into_iter()
            .filter(|(_, m)| m.contains(&out.to_string()))
            .map(|(_, m)| m)
            .collect()
    };
    let reported = about_it(&h, said);
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(
        reported[0].contains("uneconomical") && reported[0].contains("left to the cut-loss rule")
    );

    // Never broadcast; the cut-loss rule fails the incoming leg `cut_loss_blocks` before it
    // expires, and records the possible loss.
    let n = h.arb.config().close.cut_loss_blocks.unwrap();
    let said = h.transcript.len();
    mine_to(&mut h, incoming_expiry - n);
    assert!(spending(&h, 0, out).is_empty());
    assert!(about_it(&h, said).is_empty(), "reported once");
    assert_eq!(
        failed_upstream(&h),
        vec![(
            upstream_of(&htlcs[0]),
            FailReason::CutLoss {
                outgoing: htlcs[0].key,
                incoming_expiry
            }
        )]
    );
    assert!(h
        .reports()
        .iter()
        .any(|r| matches!(r, Report::Loss { htlc, .. } if *htlc == htlcs[0].key)));

    // Never dropped: it is re-examined every block, and once the mempool's minimum relay fee
    // falls (Bitcoin Core 29.1's 0.1 sat/vB) it is claimed, within what it may spend.
    let tenth = bitcoin::FeeRate::from_sat_per_kwu(25);
    h.feed(Event::FeeConditions(FeeConditions {
        estimates: [1, 6, 144]
            .into_iter()
            .map(|target_blocks| FeeEstimate {
                target_blocks,
                feerate: tenth,
            })
            .collect(),
        mempool_min: tenth,
        min_relay: tenth,
        incremental_relay: tenth,
    }));
    let from = h.broadcasts.len();
    h.mine(Vec::new());
    let policy = PolicyConfig {
        min_relay_fee_sat_per_kvb: 100,
        ..PolicyConfig::default()
    };
    check_broadcasts_under(&h, from, &[], &policy);
    let claim = spending(&h, from, out);
    assert_eq!(claim.len(), 1, "claimed once it pays for itself");
    assert!(fee_of(&h, &claim[0]) <= above_dust);
    h.mine(claim.clone());
    h.mine_empty(6);
    assert_eq!(
        status(&h, out),
        OutputStatus::Recovered {
            txid: claim[0].compute_txid()
        }
    );
}

/// The configuration of [`sweeping_config`] with every HTLC claim's budget capped below the
/// relay fee of a timeout claim on the peer's anchors commitment, and forcing as `force`.
fn capped_config(force: bool, expiry: u32) -> contractcourt_core::chain::Config {
    use contractcourt_core::bolt3::weights::claim_tx_weight;
    use contractcourt_core::bolt3::witness::ClaimPath;
    let mut config = sweeping_config();
    let path =
        ClaimPath::timeout_claim_on_remote_commitment(expiry, ChannelType::AnchorsZeroFeeHtlc);
    let destination = &config.sweep_to.as_ref().unwrap().destination;
    let relay_fee = claim_tx_weight(&path, destination.len()).div_ceil(4);
    config.sweep.htlc_budget_cap_sat = Some(relay_fee / 2);
    config.sweeper.force_timeout_claims = force;
    config
}

#[test]
fn a_timeout_claim_whose_budget_cannot_pay_the_relay_fee_is_forced_at_the_relay_fee_and_times_out()
{
    let expiry = START_HEIGHT + 30;
    let outgoing_sat = 2_000;
    let (mut h, id, htlcs, close) = small_outputs_channel(
        65,
        capped_config(true, expiry),
        20_000,
        30_000,
        outgoing_sat,
        expiry,
        expiry + 20,
    );
    h.mine(vec![close.clone()]);
    let out = htlc_outpoint(&h, id, htlcs[0].key);
    let budget = htlc_budget(&h, outgoing_sat);
    mine_to(&mut h, expiry - 1);
    let (from, said) = (h.broadcasts.len(), h.transcript.len());
    h.mine(Vec::new());
    check_broadcasts(&h, from, &[]);
    let forced = spending(&h, from, out);
    assert_eq!(forced.len(), 1, "forced, not left");
    assert_eq!(forced[0].input.len(), 1);
    // It pays the relay fee, from the HTLC's value, above its budget: 1 sat/vB, no more.
    let fee = fee_of(&h, &forced[0]);
    let vsize = forced[0].vsize() as u64;
    assert!(
        fee > budget && fee >= vsize && fee <= vsize + 1,
        "{fee} sat on {vsize} vB"
    );
    assert!(alerts_since(&h, said)
        .iter()
        .any(|(k, m)| *k == AlertKind::DeadlineAtRisk
            && m.starts_with("forcing the timeout claim")
            && m.contains(&out.to_string())));
    h.mine(forced.clone());
    h.mine_empty(6);
    assert_eq!(
        status(&h, out),
        OutputStatus::Recovered {
            txid: forced[0].compute_txid()
        }
    );
    assert_eq!(
        failed_upstream(&h),
        vec![(
            upstream_of(&htlcs[0]),
            FailReason::OutgoingTimedOut {
                outgoing: htlcs[0].key
            }
        )]
    );
}

#[test]
fn a_timeout_claim_whose_budget_cannot_pay_the_relay_fee_is_left_to_the_cut_loss_rule_when_forcing_is_off(
) {
    let expiry = START_HEIGHT + 30;
    let incoming_expiry = expiry + 10;
    let outgoing_sat = 2_000;
    let (mut h, id, htlcs, close) = small_outputs_channel(
        66,
        capped_config(false, expiry),
        20_000,
        30_000,
        outgoing_sat,
        expiry,
        incoming_expiry,
    );
    h.mine(vec![close.clone()]);
    let out = htlc_outpoint(&h, id, htlcs[0].key);
    mine_to(&mut h, expiry - 1);
    let said = h.transcript.len();
    let n = h.arb.config().close.cut_loss_blocks.unwrap();
    mine_to(&mut h, incoming_expiry - n);
    assert!(spending(&h, 0, out).is_empty(), "not forced");
    let reported: Vec<_> = alerts_since(&h, said)
        .into_iter()
        .filter(|(_, m)| m.contains(&out.to_string()))
        .collect();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(reported[0].1.contains("left to the cut-loss rule"));
    assert_eq!(
        failed_upstream(&h),
        vec![(
            upstream_of(&htlcs[0]),
            FailReason::CutLoss {
                outgoing: htlcs[0].key,
                incoming_expiry
            }
        )]
    );
    // Still not dropped: the peer claiming it with the preimage ends it taken by the peer.
    let peer = h.sim(id).htlc_tx(Party::Remote, 1, htlcs[0].key).unwrap();
    h.mine(vec![peer.clone()]);
    h.mine_empty(6);
    assert_eq!(
        status(&h, out),
        OutputStatus::TakenByPeer {
            txid: peer.compute_txid()
        }
    );
    assert!(spending(&h, 0, out).is_empty());
}
