//! The event and action vocabulary: every variant survives a JSON round trip, and the JSON tags
//! are the stable snake_case names traces and stores depend on.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Message, PublicKey, SecretKey};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{BlockHash, FeeRate, OutPoint, ScriptBuf, TxOut, Txid};
use contractcourt_core::action::*;
use contractcourt_core::bolt3::{secp, ChannelBasepoints, ChannelType, PaymentPreimage};
use contractcourt_core::event::*;
use contractcourt_core::types::*;

fn key(i: u8) -> PublicKey {
    PublicKey::from_secret_key(secp(), &SecretKey::from_slice(&[i; 32]).unwrap())
}

fn sig() -> bitcoin::ecdsa::Signature {
    let sk = SecretKey::from_slice(&[7; 32]).unwrap();
    let msg = Message::from_digest([9; 32]);
    bitcoin::ecdsa::Signature {
        signature: secp().sign_ecdsa(&msg, &sk),
        sighash_type: EcdsaSighashType::All,
    }
}

fn tx() -> RawTx {
    RawTx(bitcoin::Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: outpoint(),
            ..Default::default()
        }],
        output: vec![TxOut {
            value: bitcoin::Amount::from_sat(1000),
            script_pubkey: ScriptBuf::new(),
        }],
    })
}

fn outpoint() -> OutPoint {
    OutPoint {
        txid: Txid::from_byte_array([3; 32]),
        vout: 1,
    }
}

const CHAN: ChannelId = ChannelId([1; 32]);

fn htlc(direction: HtlcDirection) -> HtlcKey {
    HtlcKey {
        channel: CHAN,
        htlc_id: 5,
        direction,
    }
}

fn basepoints(i: u8) -> ChannelBasepoints {
    ChannelBasepoints {
        funding_pubkey: key(i),
        revocation_basepoint: key(i + 1),
        payment_basepoint: key(i + 2),
        delayed_payment_basepoint: key(i + 3),
        htlc_basepoint: key(i + 4),
    }
}

fn block_ref() -> BlockRef {
    BlockRef {
        height: 100,
        hash: BlockHash::from_byte_array([4; 32]),
    }
}

fn request() -> RequestId {
    RequestId {
        claim: ClaimId(3),
        attempt: 1,
    }
}

fn htlc_info() -> CommitmentHtlcInfo {
    CommitmentHtlcInfo {
        htlc_id: 5,
        direction: HtlcDirection::Incoming,
        amount_msat: 5_000_000,
        payment_hash: PaymentPreimage([5; 32]).payment_hash(),
        cltv_expiry: 600,
        output_index: Some(2),
    }
}

fn every_event() -> Vec<Event> {
    let update = |change| {
        Event::ChannelUpdate(ChannelUpdate {
            channel: CHAN,
            update_id: 1,
            change,
        })
    };
    let funding = FundingOutput {
        outpoint: outpoint(),
        value_sat: 1_000_000,
    };
    let events = vec![
        update(ChannelChange::Registered(Box::new(ChannelRegistration {
            channel_type: ChannelType::AnchorsZeroFeeHtlc,
            funding: vec![funding],
            funder: Party::Local,
            local_basepoints: basepoints(10),
            remote_basepoints: basepoints(20),
            local_to_self_delay: 144,
            remote_to_self_delay: 720,
            local_dust_limit_sat: 354,
            remote_dust_limit_sat: 546,
            label: Some("800000x1x0".into()),
            max_accepted_htlcs: None,
        }))),
        update(ChannelChange::FundingChanged {
            funding: vec![funding],
        }),
        update(ChannelChange::LocalCommitment(Box::new(LocalCommitment {
            commitment_number: 7,
            per_commitment_point: key(30),
            feerate_per_kw: 253,
            to_local_msat: 500_000_000,
            to_remote_msat: 400_000_000,
            htlcs: vec![htlc_info()],
            commitment_signature: sig(),
            htlc_signatures: vec![sig()],
        }))),
        update(ChannelChange::RemoteCommitment(Box::new(
            RemoteCommitment {
                commitment_number: 8,
                per_commitment_point: key(31),
                feerate_per_kw: 253,
                to_local_msat: 400_000_000,
                to_remote_msat: 500_000_000,
                htlcs: vec![htlc_info()],
            },
        ))),
        update(ChannelChange::LocalCommitmentRevoked {
            commitment_number: 6,
        }),
        update(ChannelChange::RevocationSecret {
            commitment_number: 7,
            secret: [8; 32],
        }),
        update(ChannelChange::ShutdownScripts {
            local: ScriptBuf::new(),
            remote: ScriptBuf::new(),
        }),
        update(ChannelChange::DataLossDetected {
            remote_next_commitment_number: 12,
            remote_per_commitment_point: Some(key(40)),
        }),
        Event::ForceCloseRequested {
            channel: CHAN,
            reason: ForceCloseReason::PeerError {
                message: "bad sig".into(),
            },
        },
        Event::CircuitAdded {
            outgoing: htlc(HtlcDirection::Outgoing),
            incoming: IncomingLeg {
                htlc: htlc(HtlcDirection::Incoming),
                cltv_expiry: 700,
                amount_msat: 5_001_000,
            },
        },
        Event::CircuitRemoved {
            outgoing: htlc(HtlcDirection::Outgoing),
        },
        Event::PreimageLearned {
            preimage: PaymentPreimage([5; 32]),
            source: PreimageSource::Invoice {
                htlc: htlc(HtlcDirection::Incoming),
            },
        },
        Event::UpstreamAcked {
            htlc: htlc(HtlcDirection::Incoming),
            resolution: UpstreamResolution::Settled,
        },
        Event::BlockConnected(Block {
            height: 101,
            hash: BlockHash::from_byte_array([5; 32]),
            prev_hash: BlockHash::from_byte_array([4; 32]),
            time: 1_700_000_000,
            txs: vec![tx()],
        }),
        Event::BlockDisconnected { block: block_ref() },
        Event::MempoolTx {
            tx: tx(),
            fee_sat: 500,
            vsize: 150,
        },
        Event::MempoolRemoved {
            txid: tx().compute_txid(),
            reason: MempoolRemovalReason::Replaced { by: None },
        },
        Event::FeeConditions(FeeConditions {
            estimates: vec![
                FeeEstimate {
                    target_blocks: 2,
                    feerate: FeeRate::from_sat_per_kwu(2500),
                },
                FeeEstimate {
                    target_blocks: 144,
                    feerate: FeeRate::from_sat_per_kwu(253),
                },
            ],
            mempool_min: FeeRate::from_sat_per_kwu(253),
            min_relay: FeeRate::from_sat_per_kwu(250),
            incremental_relay: FeeRate::from_sat_per_kwu(250),
        }),
        Event::WalletBalance {
            confirmed_sat: 250_000,
        },
        Event::Tick {
            unix_secs: 1_700_000_100,
        },
        Event::BroadcastResult {
            request: request(),
            txid: tx().compute_txid(),
            outcome: BroadcastOutcome::Rejected {
                reason: "min relay fee not met".into(),
            },
        },
        Event::Signed {
            request: request(),
            outcome: SignOutcome::Signed {
                signatures: vec![InputSignature {
                    input: 0,
                    signature: sig(),
                }],
                witnesses: Vec::new(),
            },
        },
        Event::WalletFunded {
            request: request(),
            outcome: FundingOutcome::Funded {
                inputs: vec![WalletInput {
                    outpoint: outpoint(),
                    txout: tx().output[0].clone(),
                    satisfaction_weight: 272,
                    confirmation_height: 90,
                }],
                change: None,
            },
        },
        Event::RevokedLogRead {
            channel: ChannelId([4; 32]),
            commitment_number: 7,
            record: Some(Record {
                version: 1,
                body: RecordBody::from_value(&serde_json::json!({"number": 7})),
            }),
        },
        Event::Resumed {
            tip: Some(block_ref()),
        },
    ];
    // Exhaustive on purpose: a new variant must be added above before this compiles.
    for e in &events {
        match e {
            Event::ChannelUpdate(_)
            | Event::ForceCloseRequested { .. }
            | Event::CircuitAdded { .. }
            | Event::CircuitRemoved { .. }
            | Event::PreimageLearned { .. }
            | Event::UpstreamAcked { .. }
            | Event::BlockConnected(_)
            | Event::BlockDisconnected { .. }
            | Event::MempoolTx { .. }
            | Event::MempoolRemoved { .. }
            | Event::FeeConditions(_)
            | Event::WalletBalance { .. }
            | Event::Tick { .. }
            | Event::BroadcastResult { .. }
            | Event::Signed { .. }
            | Event::WalletFunded { .. }
            | Event::RevokedLogRead { .. }
            | Event::Resumed { .. } => {}
        }
    }
    events
}

fn every_action() -> Vec<Action> {
    let record = Record {
        version: 1,
        body: RecordBody::from_value(&serde_json::json!({"state": "closed"})),
    };
    let actions = vec![
        Action::Persist(Batch {
            ops: vec![
                RecordOp::Put {
                    key: RecordKey::Channel { channel: CHAN },
                    record: record.clone(),
                },
                RecordOp::Delete {
                    key: RecordKey::Resolver {
                        channel: CHAN,
                        outpoint: outpoint(),
                    },
                },
                RecordOp::Append {
                    channel: CHAN,
                    seq: 4,
                    record,
                },
            ],
        }),
        Action::UpdatePersisted {
            channel: CHAN,
            update_id: 9,
        },
        Action::Sign(SignRequest {
            request: request(),
            tx: tx(),
            inputs: vec![SignInput {
                input: 0,
                prevout: outpoint(),
                value_sat: 1000,
                script: ScriptBuf::new(),
                sighash: EcdsaSighashType::All,
                key: SigningKey::Channel {
                    channel: CHAN,
                    basepoint: Basepoint::Revocation,
                    tweak: KeyTweak::Revocation {
                        per_commitment_secret: [6; 32],
                    },
                },
            }],
        }),
        Action::FundFromWallet(FundingRequest {
            request: request(),
            template: tx(),
            template_weight: 700,
            template_inputs_sat: 330,
            parent_fee_sat: 1_000,
            parent_weight: 1_124,
            parent: Some(tx().compute_txid()),
            target_feerate: FeeRate::from_sat_per_kwu(5000),
            max_fee_sat: 20_000,
            reuse: vec![outpoint()],
            change_script: None,
        }),
        Action::ReleaseInputs { claim: ClaimId(3) },
        Action::ReadRevokedLog {
            channel: ChannelId([4; 32]),
            commitment_number: 7,
        },
        Action::Broadcast {
            request: request(),
            tx: tx(),
        },
        Action::BroadcastPackage {
            request: request(),
            parent: tx(),
            child: tx(),
        },
        Action::SyncFrom {
            locator: vec![block_ref()],
        },
        Action::SettleUpstream {
            htlc: htlc(HtlcDirection::Incoming),
            preimage: PaymentPreimage([5; 32]),
        },
        Action::FailUpstream {
            htlc: htlc(HtlcDirection::Incoming),
            reason: FailReason::CutLoss {
                outgoing: htlc(HtlcDirection::Outgoing),
                incoming_expiry: 700,
            },
        },
        Action::Report(Report::CloseSummary(CloseSummary {
            channel: CHAN,
            close: CloseKind::Remote {
                commitment_number: 8,
                pending: true,
            },
            trigger: CloseTrigger::HtlcDeadline {
                htlc: htlc(HtlcDirection::Outgoing),
                deadline: 700,
                height: 690,
            },
            closing_txid: tx().compute_txid(),
            height: 691,
            our_balance_sat: 500_000,
            dust_htlcs: vec![],
            dust_msat: 0,
        })),
        Action::Report(Report::Resolution(Resolution {
            channel: CHAN,
            outpoint: outpoint(),
            outcome: Outcome::Claimed,
            amount_sat: 5000,
            fees_sat: 300,
            spending_txid: None,
            height: 700,
        })),
        Action::Report(Report::Alert(Alert {
            channel: None,
            kind: AlertKind::UnknownSpend,
            message: "funding spent by an unknown transaction".into(),
        })),
    ];
    for a in &actions {
        match a {
            Action::Persist(_)
            | Action::UpdatePersisted { .. }
            | Action::Sign(_)
            | Action::FundFromWallet(_)
            | Action::ReleaseInputs { .. }
            | Action::ReadRevokedLog { .. }
            | Action::Broadcast { .. }
            | Action::BroadcastPackage { .. }
            | Action::SyncFrom { .. }
            | Action::SettleUpstream { .. }
            | Action::FailUpstream { .. }
            | Action::Report(_) => {}
        }
    }
    actions
}

fn type_tag(json: &serde_json::Value) -> String {
    json["type"]
        .as_str()
        .expect("every variant carries a \"type\" tag")
        .to_string()
}

#[test]
fn every_event_round_trips_through_json_with_a_distinct_tag() {
    let events = every_event();
    let mut tags = std::collections::BTreeSet::new();
    for e in &events {
        let json = serde_json::to_value(e).unwrap();
        tags.insert(type_tag(&json));
        let back: Event = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(&back, e, "round trip of {json}");
    }
    assert_eq!(tags.len(), 18, "one tag per event kind: {tags:?}");
}

#[test]
fn every_action_round_trips_through_json_with_a_stable_tag() {
    for a in every_action() {
        let json = serde_json::to_value(&a).unwrap();
        let tag = type_tag(&json);
        assert!(
            tag.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{tag}"
        );
        let back: Action = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, a, "round trip of {json}");
    }
}

#[test]
fn transactions_appear_as_consensus_hex_in_json() {
    let json = serde_json::to_value(Event::MempoolTx {
        tx: tx(),
        fee_sat: 1,
        vsize: 1,
    })
    .unwrap();
    let hex = json["tx"].as_str().unwrap();
    assert_eq!(hex, bitcoin::consensus::encode::serialize_hex(&tx().0));
}

#[test]
fn malformed_transaction_hex_is_a_decode_error_not_a_panic() {
    for bad in ["\"zz\"", "\"00\"", "\"0200000001\"", "17"] {
        let text = format!(r#"{{"type":"mempool_tx","tx":{bad},"fee_sat":1,"vsize":1}}"#);
        assert!(serde_json::from_str::<Event>(&text).is_err(), "{bad}");
    }
}

#[test]
fn record_keys_have_stable_distinct_paths() {
    let keys = [
        RecordKey::Node,
        RecordKey::Channel { channel: CHAN },
        RecordKey::Commitment {
            channel: CHAN,
            slot: CommitmentSlot::RemotePending,
        },
        RecordKey::Resolver {
            channel: CHAN,
            outpoint: outpoint(),
        },
        RecordKey::Claim { claim: ClaimId(3) },
        RecordKey::Preimage {
            payment_hash: PaymentPreimage([5; 32]).payment_hash(),
        },
        RecordKey::Circuit {
            outgoing: htlc(HtlcDirection::Outgoing),
        },
        RecordKey::Upstream {
            htlc: htlc(HtlcDirection::Incoming),
        },
        RecordKey::Block { height: 7 },
    ];
    let paths: std::collections::BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
    assert_eq!(paths.len(), keys.len());
    assert!(paths.contains(&format!("channel/{}/commitment/remote_pending", CHAN)));
}

#[test]
fn a_broadcast_the_node_never_answered_is_its_own_outcome_in_json() {
    let text = r#"{"kind":"not_delivered","reason":"connection refused"}"#;
    let outcome: BroadcastOutcome = serde_json::from_str(text).unwrap();
    assert_eq!(
        outcome,
        BroadcastOutcome::NotDelivered {
            reason: "connection refused".into()
        }
    );
    assert_eq!(serde_json::to_string(&outcome).unwrap(), text);
}
