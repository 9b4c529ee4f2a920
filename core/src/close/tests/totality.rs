//! Totality and plumbing: transactions that are not commitments at all, extreme sizes and
//! numbers, the funding lookup, the mapping to the report vocabulary.

use super::*;

#[test]
fn a_tx_not_spending_the_funding_output_is_not_a_funding_spend() {
    let w = World::busy(12, ChannelType::StaticRemoteKey);
    let mut tx = w.tx(Party::Remote, 3);
    tx.input[0].previous_output = OutPoint {
        txid: Txid::from_byte_array([7; 32]),
        vout: 0,
    };
    assert_eq!(w.classify(&tx), Classification::NotAFundingSpend);
    let mut other_vout = w.tx(Party::Remote, 3);
    other_vout.input[0].previous_output.vout ^= 1;
    assert_eq!(w.classify(&other_vout), Classification::NotAFundingSpend);
    assert_eq!(spends_funding(&tx, &w.data.info), None);
}

#[test]
fn spends_funding_finds_the_funding_input_at_any_index() {
    let w = World::busy(13, ChannelType::AnchorsZeroFeeHtlc);
    let mut tx = w.tx(Party::Remote, 3);
    let funding_input = tx.input[0].clone();
    let mut other = funding_input.clone();
    other.previous_output = OutPoint {
        txid: Txid::from_byte_array([9; 32]),
        vout: 3,
    };
    tx.input = vec![other.clone(), other, funding_input];
    assert_eq!(spends_funding(&tx, &w.data.info), Some((2, w.sim.funding)));
    let c = w.classify(&tx);
    assert_eq!(
        c.spend().map(|s| (s.input_index, s.funding_index)),
        Some((2, 0))
    );
    // Three inputs is no commitment shape, and no shutdown scripts are known.
    assert_eq!(
        c.close(),
        Some(&Close::Unknown {
            reason: UnknownReason::NoShutdownScripts
        })
    );
}

#[test]
fn a_tx_without_inputs_or_with_ten_thousand_outputs_does_not_panic() {
    for ct in TYPES {
        let w = World::busy(14, ct);
        let mut no_inputs = w.tx(Party::Remote, 3);
        no_inputs.input.clear();
        assert_eq!(w.classify(&no_inputs), Classification::NotAFundingSpend);
        let mut nothing = no_inputs.clone();
        nothing.output.clear();
        assert_eq!(w.classify(&nothing), Classification::NotAFundingSpend);

        let revoked = w.tx(Party::Remote, 1);
        let mut many = revoked.clone();
        many.output = revoked
            .output
            .iter()
            .cycle()
            .take(10_000)
            .cloned()
            .collect();
        assert_eq!(
            w.close(&many),
            Close::RemoteRevoked {
                number: 1,
                per_commitment_secret: w.secret(1)
            }
        );
        let garbage = random_outputs();
        let many_garbage = w.restamped(2, garbage.iter().cycle().take(10_000).cloned().collect());
        assert_eq!(
            w.close(&many_garbage),
            Close::Unknown {
                reason: UnknownReason::UnmatchedCommitment { number: 2 }
            }
        );

        // The largest obscured number: it still pays our `to_remote`, so it is a future commitment.
        let mut extremes = w.tx(Party::Remote, 3);
        extremes.lock_time = bitcoin::absolute::LockTime::from_consensus(0x20FF_FFFF);
        extremes.input[0].sequence = bitcoin::Sequence(0x80FF_FFFF);
        let number = MAX_COMMITMENT_NUMBER ^ w.data.info.obscuring_factor;
        assert_eq!(w.close(&extremes), Close::RemoteFuture { number });
        extremes.output = random_outputs();
        assert_eq!(
            w.close(&extremes),
            Close::Unknown {
                reason: UnknownReason::UnmatchedCommitment { number }
            }
        );
        extremes.lock_time = bitcoin::absolute::LockTime::from_consensus(u32::MAX);
        extremes.input[0].sequence = bitcoin::Sequence(u32::MAX);
        assert_eq!(
            w.close(&extremes),
            Close::Unknown {
                reason: UnknownReason::NoShutdownScripts
            }
        );
    }
}

#[test]
fn classifications_map_to_the_report_close_kind() {
    let secret = [3; 32];
    let cases = [
        (Close::Cooperative, CloseKind::Cooperative),
        (
            Close::LocalCurrent { number: 5 },
            CloseKind::Local {
                commitment_number: 5,
            },
        ),
        (
            Close::LocalRevoked { number: 4 },
            CloseKind::OldLocal {
                commitment_number: 4,
            },
        ),
        (
            Close::RemoteCurrent { number: 5 },
            CloseKind::Remote {
                commitment_number: 5,
                pending: false,
            },
        ),
        (
            Close::RemotePending { number: 6 },
            CloseKind::Remote {
                commitment_number: 6,
                pending: true,
            },
        ),
        (
            Close::RemoteRevoked {
                number: 2,
                per_commitment_secret: secret,
            },
            CloseKind::Breach {
                commitment_number: 2,
            },
        ),
        (
            Close::RemoteRevokedUnconfirmed {
                number: 2,
                per_commitment_secret: secret,
            },
            CloseKind::Breach {
                commitment_number: 2,
            },
        ),
        (
            Close::RemoteFuture { number: 9 },
            CloseKind::FutureRemote {
                commitment_number: 9,
            },
        ),
        (
            Close::Unknown {
                reason: UnknownReason::NoShutdownScripts,
            },
            CloseKind::Unknown,
        ),
    ];
    for (close, kind) in cases {
        assert_eq!(CloseKind::from(&close), kind);
        let spend = FundingSpend {
            input_index: 0,
            funding_index: 0,
            funding: FundingOutput {
                outpoint: OutPoint::null(),
                value_sat: 1,
            },
        };
        let c = Classification::FundingSpent {
            spend,
            close: close.clone(),
        };
        assert_eq!(c.close_kind(), Some(kind.clone()));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Classification>(&json).unwrap(), c);
        assert_eq!(CloseKind::from(close), kind);
    }
    assert_eq!(Classification::NotAFundingSpend.close_kind(), None);
}

#[test]
fn unknown_reasons_read_in_lower_case() {
    for r in [
        UnknownReason::NoShutdownScripts,
        UnknownReason::NotOnlyShutdownScripts,
        UnknownReason::UnmatchedCommitment { number: 1 },
    ] {
        let msg = r.to_string();
        assert!(msg.starts_with(|c: char| c.is_lowercase()), "{msg}");
    }
}
