//! Unit tests of funded claims: the wallet's answer is checked before anything is signed, bumps
//! reuse the inputs they replace, and answers for superseded attempts are dropped.

use std::collections::BTreeMap;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::{Amount, FeeRate, OutPoint, ScriptBuf, Sequence, TxOut, Txid};

use super::*;
use crate::action::{Basepoint, KeyTweak};
use crate::bolt3::secp;
use crate::event::{FeeEstimate, FundingOutcome, WalletInput};
use crate::types::ChannelId;

fn wallet_script() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20]))
}

fn coin(tag: u8, value: u64, height: Height) -> WalletInput {
    WalletInput {
        outpoint: OutPoint {
            txid: Txid::from_byte_array([0x20 + tag; 32]),
            vout: 0,
        },
        txout: TxOut {
            value: Amount::from_sat(value),
            script_pubkey: wallet_script(),
        },
        satisfaction_weight: 109,
        confirmation_height: height,
    }
}

/// A claim of a 330-sat anchor paying for a 1,000-WU parent with 200 sat of fee.
fn anchor_claim(budget: u64) -> FundedClaim {
    let pubkey = PublicKey::from_secret_key(secp(), &SecretKey::from_slice(&[3; 32]).unwrap());
    let script = crate::bolt3::scripts::anchor_script(&pubkey);
    let template = Template {
        input: OwnInput {
            outpoint: OutPoint {
                txid: Txid::from_byte_array([1; 32]),
                vout: 0,
            },
            txout: TxOut {
                value: Amount::from_sat(330),
                script_pubkey: script.to_p2wsh(),
            },
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            script,
            key: SigningKey::Channel {
                channel: ChannelId([9; 32]),
                basepoint: Basepoint::Funding,
                tweak: KeyTweak::None,
            },
            pubkey,
            spend: OwnSpend::Anchor,
        },
        outputs: Vec::new(),
        version: 2,
        lock_time: 0,
        weight: 500,
        parent: Some(Parent {
            tx: RawTx(bitcoin::Transaction {
                version: Version::TWO,
                lock_time: LockTime::ZERO,
                input: Vec::new(),
                output: Vec::new(),
            }),
            fee_sat: 200,
            weight: 1_000,
        }),
        fee_input: None,
    };
    FundedClaim::new(ClaimId(5), ChannelId([9; 32]), template, 110, budget)
}

fn fees(sat_per_vb: u64) -> FeeConditions {
    FeeConditions {
        estimates: vec![FeeEstimate {
            target_blocks: 1,
            feerate: FeeRate::from_sat_per_kwu(sat_per_vb * 250),
        }],
        mempool_min: FeeRate::from_sat_per_kwu(250),
        min_relay: FeeRate::from_sat_per_kwu(250),
        incremental_relay: FeeRate::from_sat_per_kwu(250),
    }
}

fn funding_request(actions: &[Action]) -> FundingRequest {
    actions
        .iter()
        .find_map(|a| match a {
            Action::FundFromWallet(r) => Some(r.clone()),
            _ => None,
        })
        .expect("a funding request")
}

#[test]
fn the_wallets_selection_passes_the_cores_checks_and_is_signed() {
    let mut claim = anchor_claim(50_000);
    let actions = claim.on_block(100, Some(&fees(20)), FeeRate::from_sat_per_kwu(500));
    let request = funding_request(&actions);
    assert_eq!(request.parent_weight, 1_000);
    assert_eq!(request.template_inputs_sat, 330);
    let outcome = select_inputs(&request, &[coin(1, 100_000, 90)], &wallet_script());
    let signed = claim.on_funded(request.request, &outcome, 100);
    let Some(Action::Sign(sign)) = signed.first() else {
        panic!("sign request expected: {signed:?}");
    };
    assert_eq!(sign.inputs.len(), 2);
    assert_eq!(sign.inputs[1].key, SigningKey::Wallet);
    let x = claim.current().unwrap().assembled.clone().unwrap();
    // Parent + child reach the rate: 20 sat/vB over both weights.
    let needed = fee_for_rate(FeeRate::from_sat_per_kwu(5_000), x.weight + 1_000) - 200;
    assert!(x.fee_sat >= needed - fee_for_rate(FeeRate::from_sat_per_kwu(5_000), 16));
    assert!(x.fee_sat <= 50_000);
}

#[test]
fn unusable_wallet_answers_are_refused_before_signing() {
    let cases: Vec<(Vec<WalletInput>, Option<TxOut>, &str)> = vec![
        (vec![coin(1, 100_000, 0)], None, "unconfirmed"),
        (vec![coin(1, 100_000, 101)], None, "confirmed above the tip"),
        (
            vec![coin(1, 100_000, 90), coin(1, 100_000, 90)],
            None,
            "duplicate",
        ),
        (
            vec![coin(1, 1_000, 90)],
            Some(TxOut {
                value: Amount::from_sat(5_000),
                script_pubkey: wallet_script(),
            }),
            "overspends",
        ),
        (
            vec![coin(1, 100_000, 90)],
            Some(TxOut {
                value: Amount::from_sat(100_000),
                script_pubkey: wallet_script(),
            }),
            "fee too low",
        ),
        (
            vec![coin(1, 100_000, 90)],
            Some(TxOut {
                value: Amount::from_sat(10),
                script_pubkey: wallet_script(),
            }),
            "over budget and dust change",
        ),
        (vec![coin(1, 100_000, 90)], None, "no output, over budget"),
    ];
    for (inputs, change, what) in cases {
        let mut claim = anchor_claim(50_000);
        let actions = claim.on_block(100, Some(&fees(20)), FeeRate::from_sat_per_kwu(500));
        let request = funding_request(&actions);
        let out = claim.on_funded(
            request.request,
            &FundingOutcome::Funded { inputs, change },
            100,
        );
        assert!(
            out.iter().all(|a| !matches!(a, Action::Sign(_))),
            "{what}: must not be signed"
        );
        assert!(claim.current().unwrap().assembled.is_none(), "{what}");
    }
}

#[test]
fn a_bump_reuses_the_inputs_it_replaces_and_answers_for_old_attempts_are_dropped() {
    let mut claim = anchor_claim(50_000);
    let a0 = claim.on_block(100, Some(&fees(5)), FeeRate::from_sat_per_kwu(500));
    let r0 = funding_request(&a0);
    let outcome = select_inputs(
        &r0,
        &[coin(1, 100_000, 90), coin(2, 100_000, 90)],
        &wallet_script(),
    );
    claim.on_funded(r0.request, &outcome, 100);
    // The market jumps: a new attempt asks to reuse the inputs of the first.
    let a1 = claim.on_block(101, Some(&fees(60)), FeeRate::from_sat_per_kwu(500));
    let r1 = funding_request(&a1);
    assert_eq!(r1.request.attempt, 1);
    assert!(r1.target_feerate > r0.target_feerate);
    assert_eq!(
        r1.reuse,
        claim.attempts[0]
            .assembled
            .as_ref()
            .unwrap()
            .wallet
            .iter()
            .map(|w| w.outpoint)
            .collect::<Vec<_>>()
    );
    // A late answer to attempt 0 changes nothing.
    let before = claim.clone();
    assert!(claim.on_funded(r0.request, &outcome, 101).is_empty());
    assert_eq!(claim, before);
}

#[test]
fn no_cpfp_while_the_parent_alone_pays_the_rate() {
    let mut claim = anchor_claim(50_000);
    claim.template.parent.as_mut().unwrap().fee_sat = 1_000_000;
    let actions = claim.on_block(100, Some(&fees(20)), FeeRate::from_sat_per_kwu(500));
    assert!(actions.is_empty(), "{actions:?}");
}

#[test]
fn a_claim_whose_budget_cannot_pay_the_minimum_relay_fee_is_reported_once_and_never_funded() {
    let mut claim = anchor_claim(100);
    claim.template.parent = None;
    let first = claim.on_block(100, Some(&fees(20)), FeeRate::from_sat_per_kwu(500));
    assert!(first
        .iter()
        .all(|a| !matches!(a, Action::FundFromWallet(_))));
    assert_eq!(
        first
            .iter()
            .filter(|a| matches!(a, Action::Report(Report::Alert(_))))
            .count(),
        1,
        "{first:?}"
    );
    let again = claim.on_block(101, Some(&fees(20)), FeeRate::from_sat_per_kwu(500));
    assert!(again.is_empty(), "reported once: {again:?}");
    assert!(claim.attempts.is_empty());
}

fn vb(sat_per_vb: u64) -> FeeRate {
    FeeRate::from_sat_per_kwu(sat_per_vb * 250)
}

#[test]
fn a_request_the_wallet_could_not_fill_is_asked_again_every_block_at_the_current_price_once_a_spike_ends(
) {
    let mut claim = anchor_claim(200_000);
    claim.deadline = 200;
    let fallback = FeeRate::from_sat_per_kwu(500);
    let refused = FundingOutcome::Failed {
        reason: "insufficient confirmed funds".into(),
    };
    // The spike: asked at 150 sat/vB, the wallet cannot fund it.
    let r0 = funding_request(&claim.on_block(100, Some(&fees(150)), fallback));
    assert_eq!(r0.target_feerate, vb(150));
    claim.on_funded(r0.request, &refused, 100);
    // Same conditions next block: the same request, asked again.
    let again = funding_request(&claim.on_block(101, Some(&fees(150)), fallback));
    assert_eq!(again, r0);
    claim.on_funded(again.request, &refused, 101);
    // The spike ends: nothing was broadcast at 150, so the price is today's market, asked at once.
    let r1 = funding_request(&claim.on_block(102, Some(&fees(5)), fallback));
    assert_eq!(r1.request.attempt, 1);
    assert_eq!(
        r1.target_feerate,
        vb(5),
        "priced from the current conditions"
    );
    claim.on_funded(r1.request, &refused, 102);
    // Still unfunded and nothing in flight: the line does not climb while no attempt is out.
    let r1_again = funding_request(&claim.on_block(103, Some(&fees(5)), fallback));
    assert_eq!(r1_again, r1);
    // The wallet funds it now; once out, the claim's line is fixed and every later attempt must
    // outbid it by BIP 125's increment, even when the market falls further.
    let outcome = select_inputs(&r1, &[coin(1, 100_000, 90)], &wallet_script());
    claim.on_funded(r1.request, &outcome, 103);
    let out = claim.current().unwrap().clone();
    let tx = out.assembled.as_ref().unwrap().tx.clone();
    claim.attempts[1].signed = Some(tx);
    let weight = claim.total_planned_weight();
    let paid = fee_for_rate(out.feerate, weight);
    for (tip, market) in [(104, 2), (110, 1), (140, 3), (180, 1), (199, 1)] {
        let actions = claim.on_block(tip, Some(&fees(market)), fallback);
        for a in &actions {
            if let Action::FundFromWallet(r) = a {
                assert!(r.target_feerate > out.feerate, "at {tip}");
                assert!(
                    fee_for_rate(r.target_feerate, weight) >= paid + fee_for_rate(vb(1), weight),
                    "at {tip}: a replacement pays the increment over what is in flight"
                );
            }
        }
        // The wallet cannot fund the bump: the one in flight is kept broadcast.
        if let Some(r) = actions.iter().find_map(|a| match a {
            Action::FundFromWallet(r) => Some(r.request),
            _ => None,
        }) {
            claim.on_funded(r, &refused, tip);
        }
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::BroadcastPackage { .. })),
            "at {tip}: the attempt in flight is rebroadcast"
        );
    }
}

#[test]
fn funding_requests_are_put_in_order_of_their_deadlines_nearest_first_in_the_places_they_held() {
    let claim = |id: u64, deadline: Height| {
        let mut c = anchor_claim(200_000);
        c.claim = ClaimId(id);
        c.deadline = deadline;
        c
    };
    // Claims 1..=4 with deadlines 585, 580, 590, 580; claim 9's deadline is unknown.
    let mut claims: Vec<FundedClaim> = [(1, 585), (2, 580), (3, 590), (4, 580), (9, 570)]
        .into_iter()
        .map(|(id, d)| claim(id, d))
        .collect();
    let mut requests: Vec<Action> = claims
        .iter_mut()
        .map(|c| {
            let actions = c.on_block(500, Some(&fees(150)), FeeRate::from_sat_per_kwu(500));
            Action::FundFromWallet(funding_request(&actions))
        })
        .collect();
    let release = Action::ReleaseInputs { claim: ClaimId(7) };
    let unknown = requests.pop().unwrap();
    let mut actions = vec![
        release.clone(),
        requests[0].clone(),
        unknown,
        requests[1].clone(),
        release.clone(),
        requests[2].clone(),
        requests[3].clone(),
    ];
    let deadlines: BTreeMap<ClaimId, Height> = claims
        .iter()
        .filter(|c| c.claim != ClaimId(9))
        .map(|c| (c.claim, c.deadline))
        .collect();
    fund_nearest_deadlines_first(&mut actions, |c| deadlines.get(&c).copied());
    let order: Vec<Option<u64>> = actions
        .iter()
        .map(|a| match a {
            Action::FundFromWallet(r) => Some(r.request.claim.0),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        vec![None, Some(2), Some(4), Some(1), None, Some(3), Some(9)],
        "580 (claim 2, then 4), 585, 590, then the unknown; other actions stay in place"
    );
    // The order does not depend on the order they were emitted in.
    let mut reversed = actions.clone();
    reversed.reverse();
    fund_nearest_deadlines_first(&mut reversed, |c| deadlines.get(&c).copied());
    let funded: Vec<u64> = reversed
        .iter()
        .filter_map(|a| match a {
            Action::FundFromWallet(r) => Some(r.request.claim.0),
            _ => None,
        })
        .collect();
    assert_eq!(funded, vec![2, 4, 1, 3, 9]);
}

#[test]
fn a_broadcast_refused_for_missing_inputs_is_funded_afresh_at_the_next_block_even_at_the_same_price(
) {
    let mut claim = anchor_claim(50_000);
    let a0 = claim.on_block(100, Some(&fees(5)), FeeRate::from_sat_per_kwu(500));
    let r0 = funding_request(&a0);
    let outcome = select_inputs(&r0, &[coin(1, 100_000, 90)], &wallet_script());
    claim.on_funded(r0.request, &outcome, 100);
    // Unchanged conditions: nothing to outbid, no new attempt.
    let same = claim.on_block(101, Some(&fees(5)), FeeRate::from_sat_per_kwu(500));
    assert!(same.iter().all(|a| !matches!(a, Action::FundFromWallet(_))));
    // Its wallet coin is gone (a reorg dropped the transaction that made it).
    claim.on_broadcast_result(&crate::event::BroadcastOutcome::Rejected {
        reason: "bad-txns-inputs-missingorspent".into(),
    });
    let a1 = claim.on_block(102, Some(&fees(5)), FeeRate::from_sat_per_kwu(500));
    let r1 = funding_request(&a1);
    assert_eq!(r1.request.attempt, 1, "a new attempt");
    assert!(r1.reuse.is_empty(), "none of the vanished inputs reused");
    // Once asked, the next block does not start yet another attempt.
    let a2 = claim.on_block(103, Some(&fees(5)), FeeRate::from_sat_per_kwu(500));
    assert!(a2.iter().all(|a| !matches!(
        a,
        Action::FundFromWallet(r) if r.request.attempt > 1
    )));
}

/// [`anchor_claim`] turned into a CPFP child through a zero-fee commitment's pay-to-anchor
/// output: version 3, no own signature.
fn pay_to_anchor_claim(budget: u64) -> FundedClaim {
    let mut claim = anchor_claim(budget);
    let t = &mut claim.template;
    t.version = 3;
    t.input.script = ScriptBuf::new();
    t.input.txout = TxOut {
        value: Amount::ZERO,
        script_pubkey: crate::bolt3::scripts::pay_to_anchor_script_pubkey(),
    };
    t.input.spend = OwnSpend::PayToAnchor;
    t.weight = 200;
    claim
}

#[test]
fn a_pay_to_anchor_child_asks_only_the_wallet_to_sign_and_stays_within_truc_limits() {
    let mut claim = pay_to_anchor_claim(100_000);
    let actions = claim.on_block(100, Some(&fees(20)), FeeRate::from_sat_per_kwu(500));
    let request = funding_request(&actions);
    let outcome = select_inputs(&request, &[coin(1, 100_000, 90)], &wallet_script());
    let signed = claim.on_funded(request.request, &outcome, 100);
    let Some(Action::Sign(sign)) = signed.first() else {
        panic!("sign request expected: {signed:?}");
    };
    assert_eq!(sign.inputs.len(), 1, "the wallet's input only");
    assert_eq!(sign.inputs[0].key, SigningKey::Wallet);

    // Sixteen wallet coins make a child over 1,000 vB: refused before anything is signed.
    let mut claim = pay_to_anchor_claim(100_000);
    let actions = claim.on_block(100, Some(&fees(20)), FeeRate::from_sat_per_kwu(500));
    let request = funding_request(&actions);
    let coins: Vec<WalletInput> = (0..16).map(|i| coin(i, 2_000, 90)).collect();
    let outcome = FundingOutcome::Funded {
        inputs: coins,
        change: Some(TxOut {
            value: Amount::from_sat(10_000),
            script_pubkey: wallet_script(),
        }),
    };
    let refused = claim.on_funded(request.request, &outcome, 100);
    assert!(
        !refused.iter().any(|a| matches!(a, Action::Sign(_))),
        "{refused:?}"
    );
    let reported = format!("{refused:?}");
    assert!(reported.contains("version-3 child"), "{reported}");
}

/// Issue 19: a zero-fee commitment reaches the chain only with its child. A budget below what
/// relays the package (here 100 sat) is raised to the package's minimum relay fee — the child
/// pays at least 1 sat/vB over parent and child together — instead of a package no mempool
/// relays. Without the raise the child asked for 100 sat over ~1,350 WU (0.3 sat/vB).
#[test]
fn a_zero_fee_parents_child_pays_the_packages_minimum_relay_fee_past_a_smaller_budget() {
    let mut claim = pay_to_anchor_claim(100);
    claim.template.parent.as_mut().unwrap().fee_sat = 0;
    // A P2A spend's own weight, counted by hand: version, counts and lock time (10 bytes) and
    // the input (41 bytes) at 4 WU each, the segwit marker and flag (2 WU) and the P2A input's
    // empty witness (1 WU).
    claim.template.weight = (10 + 41) * 4 + 2 + 1;
    let actions = claim.on_block(100, Some(&fees(1)), FeeRate::from_sat_per_kwu(250));
    let request = funding_request(&actions);
    assert!(
        request.target_feerate >= FeeRate::from_sat_per_kwu(250),
        "{request:?}"
    );
    let outcome = select_inputs(&request, &[coin(1, 100_000, 90)], &wallet_script());
    let signed = claim.on_funded(request.request, &outcome, 100);
    assert!(
        matches!(signed.first(), Some(Action::Sign(_))),
        "{signed:?}"
    );
    let x = claim.current().unwrap().assembled.clone().unwrap();
    // The child's signed size: unsigned, it has no witness yet, so add the segwit marker and
    // flag (2 WU), the wallet coin's satisfaction (109 WU) and the P2A input's empty witness
    // (1 WU); the parent is 1,000 WU and pays nothing.
    let child_weight = x.tx.weight().to_wu() + 2 + 109 + 1;
    let package_vsize = (child_weight + 1_000).div_ceil(4);
    assert!(
        x.fee_sat >= package_vsize,
        "the package pays {} sat for {package_vsize} vB",
        x.fee_sat
    );
}

/// A parent that relays on its own (a keyed-anchor commitment paying its fee) keeps the budget
/// it was given: a child its budget cannot relay is reported, never funded.
#[test]
fn a_parent_that_relays_alone_keeps_its_childs_budget() {
    let mut claim = anchor_claim(100);
    claim.template.parent.as_mut().unwrap().fee_sat = 1_000;
    assert_eq!(claim.budget(Some(&fees(1))), 100);
    let actions = claim.on_block(100, Some(&fees(1)), FeeRate::from_sat_per_kwu(250));
    assert!(
        actions
            .iter()
            .all(|a| !matches!(a, Action::FundFromWallet(_))),
        "{actions:?}"
    );
}

/// A thin wallet after a fee spike (found by the model check with failing signers and wallets):
/// the spike's rate is capped at the budget's rate on the weight planned for one wallet input,
/// but the wallet holds only small coins, and at the weight of the five it takes that rate
/// costs more than the budget. The wallet used to refuse ("would cost more than its budget"),
/// the engine asked again at the same price every block, and the zero-fee commitment — with
/// every HTLC on it — never reached the chain. Now the wallet pays the whole budget (the most
/// the claim may pay), the core accepts it, and does not try to outbid it.
#[test]
fn a_thin_wallet_pays_the_whole_budget_when_the_rate_at_its_inputs_weight_would_cost_more() {
    let budget = 20_000;
    let mut claim = pay_to_anchor_claim(budget);
    claim.template.parent.as_mut().unwrap().fee_sat = 0;
    let coins: Vec<WalletInput> = (0..6).map(|i| coin(i, 5_000, 90)).collect();
    let spike = fees(200);
    let actions = claim.on_block(100, Some(&spike), FeeRate::from_sat_per_kwu(250));
    let request = funding_request(&actions);
    assert!(
        fee_for_rate(request.target_feerate, claim.total_planned_weight()) <= budget,
        "the ask is capped at the budget's rate on the planned weight: {request:?}"
    );
    let outcome = select_inputs(&request, &coins, &wallet_script());
    let FundingOutcome::Funded { inputs, change } = &outcome else {
        panic!("the wallet holds 30,000 sat and the budget is 20,000: {outcome:?}");
    };
    assert!(inputs.len() > 1, "{outcome:?}");
    assert!(change.is_some(), "{outcome:?}");
    let signed = claim.on_funded(request.request, &outcome, 100);
    assert!(
        matches!(signed.first(), Some(Action::Sign(_))),
        "{signed:?}"
    );
    let x = claim.current().unwrap().assembled.clone().unwrap();
    assert!(
        x.fee_sat <= budget && x.fee_sat + BUDGET_SLACK_SAT >= budget,
        "pays {} of a {budget} sat budget",
        x.fee_sat
    );
    // The rate it asked for would have cost more at the weight it has.
    assert!(crate::fee::child_fee_for_rate(request.target_feerate, x.weight, 0, 1_000) > budget);
    // A higher spike next block: nothing to outbid with — no new attempt, the signatures are
    // asked for again.
    let next = claim.on_block(101, Some(&fees(400)), FeeRate::from_sat_per_kwu(250));
    assert!(
        next.iter().all(|a| !matches!(a, Action::FundFromWallet(_))),
        "{next:?}"
    );
    assert!(
        next.iter().any(|a| matches!(a, Action::Sign(_))),
        "{next:?}"
    );
    assert_eq!(claim.attempts.len(), 1);
}

/// Paying the budget is no licence to underpay: a wallet answer below the budget less its slack
/// is refused while the rate is out of reach, and so is any answer below the rate while the
/// rate is within the budget.
#[test]
fn an_answer_below_the_budget_less_its_slack_is_refused_when_the_rate_is_out_of_reach() {
    let budget = 20_000;
    let mut claim = pay_to_anchor_claim(budget);
    claim.template.parent.as_mut().unwrap().fee_sat = 0;
    let actions = claim.on_block(100, Some(&fees(200)), FeeRate::from_sat_per_kwu(250));
    let request = funding_request(&actions);
    let coins: Vec<WalletInput> = (0..6).map(|i| coin(i, 5_000, 90)).collect();
    // All six coins, 30,000 sat, with 10,000 - BUDGET_SLACK_SAT - 1 sat of change.
    let short = FundingOutcome::Funded {
        inputs: coins.clone(),
        change: Some(TxOut {
            value: Amount::from_sat(10_000 + BUDGET_SLACK_SAT + 1),
            script_pubkey: wallet_script(),
        }),
    };
    let refused = claim.on_funded(request.request, &short, 100);
    assert!(
        refused.iter().all(|a| !matches!(a, Action::Sign(_))),
        "{refused:?}"
    );
    assert!(format!("{refused:?}").contains("below"), "{refused:?}");
    let exact = FundingOutcome::Funded {
        inputs: coins,
        change: Some(TxOut {
            value: Amount::from_sat(10_000 + BUDGET_SLACK_SAT),
            script_pubkey: wallet_script(),
        }),
    };
    let signed = claim.on_funded(request.request, &exact, 100);
    assert!(
        matches!(signed.first(), Some(Action::Sign(_))),
        "{signed:?}"
    );

    // Within the budget the rate is what counts: one large coin paying half the rate's fee is
    // refused.
    let mut claim = pay_to_anchor_claim(budget);
    claim.template.parent.as_mut().unwrap().fee_sat = 0;
    let actions = claim.on_block(100, Some(&fees(2)), FeeRate::from_sat_per_kwu(250));
    let request = funding_request(&actions);
    let honest = select_inputs(&request, &[coin(1, 100_000, 90)], &wallet_script());
    let FundingOutcome::Funded {
        inputs,
        change: Some(c),
    } = honest
    else {
        panic!("{honest:?}");
    };
    let fee = 100_000 - c.value.to_sat();
    let half = FundingOutcome::Funded {
        inputs,
        change: Some(TxOut {
            value: Amount::from_sat(100_000 - fee / 2),
            script_pubkey: wallet_script(),
        }),
    };
    let refused = claim.on_funded(request.request, &half, 100);
    assert!(
        refused.iter().all(|a| !matches!(a, Action::Sign(_))),
        "{refused:?}"
    );
}
