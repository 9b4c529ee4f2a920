//! Fee behaviour on real claims: the line to the budget, spikes, refusals, uneconomical inputs.

use super::*;

/// (tip, fee, vsize) of each attempt broadcast for `outpoint`, in attempt order.
fn attempts(h: &Harness, outpoint: &OutPoint) -> Vec<(Height, u64, u64)> {
    let mut by_attempt = BTreeMap::new();
    for s in h.broadcasts_of(outpoint) {
        by_attempt.entry(s.request.attempt).or_insert((
            s.tip,
            h.fee_of(&s.tx),
            s.tx.vsize() as u64,
        ));
    }
    by_attempt.into_values().collect()
}

#[test]
fn fee_rises_monotonically_to_the_budget_at_the_deadline_and_never_above() {
    let mut h = Harness::new(channel(ChannelType::AnchorsZeroFeeHtlc, 50_000_000));
    let mut req = request_of(&h.sim, is_preimage);
    req.deadline = CONF + 20;
    req.budget_sat = 5_000;
    h.request(req.clone());
    for tip in CONF..CONF + 25 {
        h.block(tip);
    }
    let steps = attempts(&h, &req.outpoint);
    println!(
        "preimage claim, 50,000 sat, budget 5,000 sat, deadline {}:",
        req.deadline
    );
    for (tip, fee, vsize) in &steps {
        println!(
            "  tip {tip}: fee {fee} sat, {:.2} sat/vB",
            *fee as f64 / *vsize as f64
        );
    }
    assert!(steps.len() > 5, "expected several bumps: {steps:?}");
    for pair in steps.windows(2) {
        let ((_, old, _), (_, new, vsize)) = (pair[0], pair[1]);
        assert!(new >= old + vsize, "BIP 125 rule 4: {old} -> {new}");
    }
    let weight = claim_tx_weight(&req.path, destination().len());
    let at_budget =
        crate::fee::fee_for_rate(crate::fee::budget_rate(req.budget_sat, weight), weight);
    let (tip, last_fee, _) = *steps.last().unwrap();
    assert!(
        tip < req.deadline,
        "the budget rate is reached for the deadline block"
    );
    assert_eq!(last_fee, at_budget);
    assert!(at_budget <= req.budget_sat && at_budget + 10 > req.budget_sat);
    // Starts at the estimate for the 20 blocks left (target 12: 3 sat/vB).
    assert_eq!(steps[0].1, 3 * crate::fee::vsize(weight));
    // After the deadline it stays at the budget: rebroadcasts only.
    let count = h.broadcasts_of(&req.outpoint).len();
    h.block(CONF + 25);
    assert_eq!(h.broadcasts_of(&req.outpoint).len(), count + 1);
    assert_eq!(attempts(&h, &req.outpoint).len(), steps.len());
    // Missing the deadline is reported, once.
    let missed: Vec<Alert> = h
        .alerts()
        .into_iter()
        .filter(|a| a.kind == AlertKind::DeadlineAtRisk)
        .collect();
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert!(missed[0].message.contains("deadline 1020"));
    assert!(
        missed[0].message.contains(&req.outpoint.to_string()),
        "the alert names the output: {}",
        missed[0].message
    );
    let stages = h.timeline();
    assert!(
        stages[0].starts_with("claiming at 3.0 sat/vB"),
        "{stages:?}"
    );
    assert!(stages[1].starts_with("bumping to "), "{stages:?}");
    assert!(stages.iter().all(|s| s.contains("deadline 1020")));
}

#[test]
fn a_fee_spike_bumps_with_a_valid_replacement() {
    for ct in TYPES {
        let mut h = Harness::new(channel(ct, 50_000_000));
        let mut req = request_of(&h.sim, is_to_remote);
        req.budget_sat = 100_000;
        h.request(req.clone());
        h.block(CONF);
        h.block(CONF + 1);
        let before = attempts(&h, &req.outpoint);
        h.fees = Some(fees(50));
        h.block(CONF + 2);
        let after = attempts(&h, &req.outpoint);
        assert_eq!(after.len(), before.len() + 1, "{ct:?}");
        let ((_, old, old_vsize), (_, new, vsize)) =
            (before[before.len() - 1], after[before.len()]);
        assert!(new >= old + vsize, "rule 4: {old} -> {new}");
        assert!(new * old_vsize > old * vsize, "higher rate");
        // The estimate for 198 blocks left (target 144) is now 50 sat/vB.
        assert!(new >= 50 * vsize && new <= req.budget_sat, "{new}");
        assert!(old < 50 * old_vsize, "{old}");
        // Both spend the same input: the second replaces the first.
        let txs = h.broadcasts_of(&req.outpoint);
        let (a, b) = (&txs[0].tx, &txs.last().unwrap().tx);
        assert_ne!(a.compute_txid(), b.compute_txid());
        assert_eq!(a.input[0].previous_output, b.input[0].previous_output);
    }
}

#[test]
fn a_spike_beyond_the_budget_is_capped_at_the_budget() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let mut req = request_of(&h.sim, is_to_remote);
    req.budget_sat = 2_000;
    h.request(req.clone());
    h.fees = Some(fees(1000));
    h.block(CONF);
    let seen = h.broadcasts_of(&req.outpoint);
    let fee = h.fee_of(&seen[0].tx);
    assert!(fee <= 2_000 && fee > 1_990, "{fee}");
}

#[test]
fn a_dust_sized_input_is_reported_uneconomical_and_never_broadcast() {
    // A 400-sat incoming HTLC (not trimmed under anchors): 400 - 294 (dust) pays less than the
    // minimum relay fee of its ~150 vB claim.
    let mut h = Harness::new(channel(ChannelType::AnchorsZeroFeeHtlc, 400_000));
    let req = request_of(&h.sim, is_preimage);
    assert_eq!(req.txout.value.to_sat(), 400);
    let mut req = req;
    req.budget_sat = 400;
    h.request(req.clone());
    let actions = h.block(CONF);
    assert!(has_alert(&actions, AlertKind::DeadlineAtRisk));
    let alert = &h.alerts()[0];
    assert!(alert.message.contains("uneconomical"), "{}", alert.message);
    for tip in CONF + 1..CONF + 30 {
        assert!(h.block(tip).is_empty());
    }
    assert!(h.broadcasts.is_empty());
    assert!(matches!(
        h.sweeper.claims().values().next().unwrap().state,
        ClaimState::Uneconomical { reported: true }
    ));
    assert!(h.sweeper.is_idle());
    assert_eq!(h.sweeper.fees_paid(&req.outpoint), None);
}

#[test]
fn a_budget_below_the_min_relay_fee_is_uneconomical_until_raised() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let mut req = request_of(&h.sim, is_to_remote);
    req.budget_sat = 50;
    h.request(req.clone());
    assert!(has_alert(&h.block(CONF), AlertKind::DeadlineAtRisk));
    assert!(h.block(CONF + 1).is_empty());
    req.budget_sat = 5_000;
    assert!(h.request(req.clone()));
    assert_eq!(broadcasts(&h.block(CONF + 2)), 1);
}

#[test]
fn a_fee_refusal_raises_the_floor_and_the_next_block_bumps() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let req = request_of(&h.sim, is_to_remote);
    h.request(req.clone());
    h.reject_with = Some("mempool min fee not met, 120 < 3000".into());
    let actions = h.block(CONF);
    assert!(
        h.alerts().is_empty(),
        "below the budget a refusal only bumps: {actions:?}"
    );
    h.reject_with = None;
    h.block(CONF + 1);
    let steps = attempts(&h, &req.outpoint);
    assert_eq!(steps.len(), 2);
    let ((_, old, _), (_, new, vsize)) = (steps[0], steps[1]);
    assert!(new >= old + vsize);
    assert!(
        h.timeline()[1].contains("outbidding 1.0 sat/vB (refused or replaced)"),
        "{:?}",
        h.timeline()
    );
}

#[test]
fn a_fee_refusal_at_the_budget_is_reported() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let mut req = request_of(&h.sim, is_to_remote);
    req.budget_sat = 200;
    h.request(req.clone());
    h.fees = Some(fees(100));
    h.reject_with = Some("insufficient fee, rejecting replacement".into());
    h.block(CONF);
    let alerts = h.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind, AlertKind::DeadlineAtRisk);
    assert!(alerts[0].message.contains("budget"));
}

#[test]
fn already_known_is_success_and_other_rejections_alert_once() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let req = request_of(&h.sim, is_to_remote);
    h.request(req.clone());
    h.reject_with = Some("txn-already-in-mempool".into());
    h.block(CONF);
    assert!(h.alerts().is_empty());
    h.reject_with = Some("bad-txns-inputs-missingorspent".into());
    h.block(CONF + 1);
    h.block(CONF + 2);
    assert_eq!(h.alerts().len(), 1, "{:?}", h.alerts());
    // It keeps trying every block.
    let tips: Vec<Height> = h
        .broadcasts_of(&req.outpoint)
        .iter()
        .map(|s| s.tip)
        .collect();
    assert!(tips.contains(&(CONF + 2)));
    assert!(is_fee_refusal("min relay fee not met, 100 < 141"));
    assert!(!is_fee_refusal("non-final"));
}

#[test]
fn without_fee_conditions_the_fallback_rate_is_used() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let req = request_of(&h.sim, is_to_remote);
    h.request(req.clone());
    h.fees = None;
    h.block(CONF);
    let seen = h.broadcasts_of(&req.outpoint);
    let fee = h.fee_of(&seen[0].tx);
    let weight = claim_tx_weight(&req.path, destination().len());
    assert_eq!(
        fee,
        crate::fee::fee_for_rate(config().fallback_feerate, weight)
    );
}
