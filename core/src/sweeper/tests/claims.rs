//! Every kind of output is claimed with a valid, final, standard transaction, never early.

use super::*;

#[test]
fn every_output_kind_is_claimed_with_a_valid_final_standard_transaction() {
    for ct in TYPES {
        let mut h = Harness::new(channel(ct, 50_000_000));
        let reqs = requests(&h.sim);
        assert_eq!(reqs.len(), 4, "{ct:?}: to_remote, two htlcs, to_local");
        for req in reqs.clone() {
            assert!(h.request(req));
        }
        let last = CONF + Height::from(h.sim.setup().local_to_self_delay) + 2;
        for tip in CONF..=last {
            h.block(tip);
        }
        for req in &reqs {
            let seen = h.broadcasts_of(&req.outpoint);
            assert!(!seen.is_empty(), "{ct:?} {:?} never broadcast", req.path);
            let first = seen.iter().map(|s| s.tip).min().unwrap();
            assert_eq!(
                first + 1,
                req.mature_at,
                "{ct:?} {:?} not claimed on maturity",
                req.path
            );
        }
        // Nothing confirms in this test: only the HTLC claims' missed deadlines are reported.
        let alerts = h.alerts();
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert!(alerts
            .iter()
            .all(|a| a.message.contains("did not confirm by its deadline")));
    }
}

#[test]
fn nothing_is_built_before_maturity() {
    for ct in TYPES {
        let mut h = Harness::new(channel(ct, 50_000_000));
        for req in requests(&h.sim) {
            h.request(req);
        }
        let to_local = request_of(&h.sim, is_to_local);
        let timeout = request_of(&h.sim, is_timeout);
        for tip in CONF..to_local.mature_at - 1 {
            let actions = h.block(tip);
            for s in signs(&actions) {
                let outpoint = s.inputs[0].prevout;
                assert_ne!(outpoint, to_local.outpoint, "to_local signed at tip {tip}");
                if tip < OUTGOING_EXPIRY {
                    assert_ne!(outpoint, timeout.outpoint, "timeout signed at tip {tip}");
                }
            }
        }
    }
}

#[test]
fn timeout_claim_waits_for_the_block_after_cltv_expiry_with_locktime_at_expiry() {
    let mut h = Harness::new(channel(ChannelType::AnchorsZeroFeeHtlc, 50_000_000));
    let timeout = request_of(&h.sim, is_timeout);
    h.request(timeout.clone());
    for tip in CONF..OUTGOING_EXPIRY {
        assert!(h.block(tip).is_empty(), "acted at tip {tip}");
    }
    let actions = h.block(OUTGOING_EXPIRY);
    assert_eq!(signs(&actions).len(), 1);
    let seen = h.broadcasts_of(&timeout.outpoint);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].tx.lock_time.to_consensus_u32(), OUTGOING_EXPIRY);
}

#[test]
fn locktime_is_the_tip_for_anti_fee_sniping() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let req = request_of(&h.sim, is_to_remote);
    h.request(req.clone());
    h.block(CONF + 5);
    let seen = h.broadcasts_of(&req.outpoint);
    assert_eq!(seen[0].tx.lock_time.to_consensus_u32(), CONF + 5);
    assert!(seen[0].tx.input[0].sequence.is_rbf());
}

#[test]
fn every_block_rebroadcasts_the_signed_claim() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let req = request_of(&h.sim, is_to_remote);
    h.request(req.clone());
    h.fees = Some(fees(1));
    for tip in CONF..CONF + 10 {
        h.block(tip);
    }
    let seen = h.broadcasts_of(&req.outpoint);
    let tips: Vec<Height> = seen.iter().map(|s| s.tip).collect();
    // Once per block at least (a bump block broadcasts the old and the new attempt).
    for tip in CONF..CONF + 10 {
        assert!(tips.contains(&tip), "no broadcast at tip {tip}");
    }
}

#[test]
fn a_signature_from_the_wrong_key_is_reported_and_never_broadcast() {
    let mut h = Harness::new(channel(ChannelType::AnchorsZeroFeeHtlc, 50_000_000));
    let req = request_of(&h.sim, is_preimage);
    h.request(req.clone());
    h.auto_sign = false;
    h.block(CONF);
    let sign = h.unsigned.pop().unwrap();
    let wrong = h.sim.remote.sign(&sign);
    let actions = h.sweeper.on_signed(sign.request, &wrong);
    assert_eq!(broadcasts(&actions), 0);
    assert!(has_alert(&actions, AlertKind::ChannelFailure));
    // The same failure again is not re-reported; the right signature then goes out.
    assert!(h.sweeper.on_signed(sign.request, &wrong).is_empty());
    let right = h.sim.local.sign(&sign);
    let actions = h.sweeper.on_signed(sign.request, &right);
    let actions = h.run(actions, CONF);
    assert_eq!(broadcasts(&actions), 1);
}

#[test]
fn an_invalid_request_is_reported_once_and_never_built() {
    let mut h = Harness::new(channel(ChannelType::StaticRemoteKey, 50_000_000));
    let mut req = request_of(&h.sim, is_preimage);
    req.preimage = Some(crate::bolt3::PaymentPreimage([9; 32]));
    h.request(req.clone());
    assert!(matches!(
        h.sweeper.claims().values().next().unwrap().state,
        ClaimState::Invalid {
            error: SweepError::MissingPreimage,
            ..
        }
    ));
    let actions = h.block(CONF);
    assert!(has_alert(&actions, AlertKind::ChannelFailure));
    // The alert names the output and why it cannot be claimed.
    let why: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Report(Report::Alert(x)) => Some(x.message.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        why.iter().any(|m| m.contains(&req.outpoint.to_string())
            && m.contains("preimage path without the preimage")),
        "{why:?}"
    );
    assert!(h.block(CONF + 1).is_empty());
    assert!(h.sweeper.is_idle());
    // Fixing the request revives the claim.
    let fixed = request_of(&h.sim, is_preimage);
    assert!(h.request(fixed));
    assert_eq!(broadcasts(&h.block(CONF + 2)), 1);
}

#[test]
fn requests_whose_script_does_not_match_the_output_are_invalid() {
    let sim = channel(ChannelType::AnchorsZeroFeeHtlc, 50_000_000);
    let mut req = request_of(&sim, is_to_local);
    req.script = request_of(&sim, is_preimage).script;
    assert_eq!(check_request(&req), Err(SweepError::ScriptMismatch));
    let mut req = request_of(&sim, is_to_remote);
    req.key = SigningKey::Wallet;
    assert_eq!(check_request(&req), Err(SweepError::WalletKey));
    for req in requests(&sim) {
        assert_eq!(check_request(&req), Ok(()), "{:?}", req.path);
        assert!(signing_pubkey(&req).is_some());
    }
}

/// Issue 21: a request on a path of a simple taproot channel is refused (its outputs are P2TR,
/// spent with BIP 340 signatures the sweeper does not make), never built as a P2WSH spend.
#[test]
fn requests_on_a_simple_taproot_path_are_refused() {
    let sim = channel(ChannelType::AnchorsZeroFeeHtlc, 50_000_000);
    for pick in [is_to_remote, is_preimage, is_timeout] {
        let mut req = request_of(&sim, pick);
        assert_eq!(check_request(&req), Ok(()));
        req.path = match req.path {
            ClaimPath::ToRemote { .. } => ClaimPath::ToRemote {
                channel_type: ChannelType::SimpleTaproot,
            },
            ClaimPath::OfferedHtlcPreimage { .. } => ClaimPath::OfferedHtlcPreimage {
                channel_type: ChannelType::SimpleTaproot,
            },
            ClaimPath::ReceivedHtlcTimeout { cltv_expiry, .. } => ClaimPath::ReceivedHtlcTimeout {
                cltv_expiry,
                channel_type: ChannelType::SimpleTaproot,
            },
            other => panic!("picked {other:?}"),
        };
        assert_eq!(
            check_request(&req),
            Err(SweepError::ChannelTypeNotResolved {
                channel_type: ChannelType::SimpleTaproot
            })
        );
    }
}
