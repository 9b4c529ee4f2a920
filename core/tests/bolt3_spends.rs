//! Every spend path the engine takes, on real outputs of the BOLT 3 Appendix C (static remote
//! key) and Appendix F (anchors) vector transactions: built with `witness::build_claim_tx`,
//! signed with `sign`, and checked by Bitcoin Core's script interpreter, the relay policy and
//! finality at the first height the claim is valid (and not one block earlier). Every negative
//! case must be refused. The vectors' own commitment and HTLC transactions are checked too.

mod common;
#[path = "bolt3_spends/fixture.rs"]
mod fixture;

use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{absolute::LockTime, Amount, OutPoint, Sequence, TxOut, Witness};
use common::{tx, vector};
use contractcourt_core::bolt3::classify::{
    classify_anchor_spend, classify_htlc_spend, classify_to_local_spend, find_preimage,
    AnchorSpend, HtlcOutputKind, HtlcSpend, ToLocalSpend,
};
use contractcourt_core::bolt3::weights::{claim_batch_weight, htlc_tx_weight};
use contractcourt_core::bolt3::witness::{build_claim_batch, ClaimPath};
use contractcourt_core::bolt3::{secp, PaymentPreimage};
use contractcourt_core::policy::{check_final, check_standard, PolicyConfig};
use contractcourt_core::testkit::verify_with_bitcoin_core;
use fixture::*;

// ---- to_local ----------------------------------------------------------------------------------

#[test]
fn to_local_delayed_spend_accepted_by_bitcoin_core() {
    for f in both() {
        let case = to_local_delayed(&f, f.output("to_local", None));
        let tx = assert_accepted(&case);
        assert_eq!(tx.input[0].sequence, Sequence(u32::from(f.to_self_delay)));
        assert_eq!(
            case.first_valid_height(),
            COMMIT_HEIGHT + u32::from(f.to_self_delay)
        );
        assert_eq!(
            classify_to_local_spend(&tx.input[0].witness),
            ToLocalSpend::Delayed
        );
    }
}

#[test]
fn to_local_delayed_spend_without_csv_rejected() {
    let f = appendix_c();
    let case = to_local_delayed(&f, f.output("to_local", None));
    let one_short = u32::from(f.to_self_delay) - 1;
    for sequence in [
        Sequence(one_short),
        Sequence::ENABLE_RBF_NO_LOCKTIME,
        Sequence::ZERO,
    ] {
        let tx = case.build_with(&case.key, |tx| tx.input[0].sequence = sequence);
        assert_rejected(&case, &tx);
    }
}

#[test]
fn to_local_delayed_spend_with_wrong_key_rejected() {
    let f = appendix_c();
    let case = to_local_delayed(&f, f.output("to_local", None));
    assert_rejected(&case, &case.build_with(&f.keys.revocation, |_| {}));
}

#[test]
fn to_local_revocation_spend_accepted_by_bitcoin_core() {
    for f in both() {
        let case = to_local_revocation(&f, f.output("to_local", None));
        let tx = assert_accepted(&case);
        assert_eq!(case.first_valid_height(), COMMIT_HEIGHT + 1);
        assert_eq!(
            classify_to_local_spend(&tx.input[0].witness),
            ToLocalSpend::Revocation
        );
    }
}

#[test]
fn to_local_revocation_spend_with_wrong_key_rejected() {
    let f = appendix_c();
    let case = to_local_revocation(&f, f.output("to_local", None));
    assert_rejected(&case, &case.build_with(&f.keys.local_delayed, |_| {}));
}

// ---- second-level HTLC outputs -----------------------------------------------------------------

#[test]
fn htlc_tx_outputs_delayed_spend_accepted_by_bitcoin_core() {
    for f in both() {
        for i in 0..f.htlc_txs.len() {
            let case = to_local_delayed(&f, f.htlc_tx_output(i));
            let tx = assert_accepted(&case);
            assert_eq!(
                case.first_valid_height(),
                HTLC_TX_HEIGHT + u32::from(f.to_self_delay)
            );
            assert_eq!(
                classify_to_local_spend(&tx.input[0].witness),
                ToLocalSpend::Delayed
            );
        }
    }
}

#[test]
fn htlc_tx_outputs_delayed_spend_without_csv_rejected() {
    let f = appendix_f();
    let case = to_local_delayed(&f, f.htlc_tx_output(0));
    let one_short = Sequence(u32::from(f.to_self_delay) - 1);
    assert_rejected(
        &case,
        &case.build_with(&case.key, |tx| tx.input[0].sequence = one_short),
    );
}

#[test]
fn htlc_tx_outputs_revocation_spend_accepted_by_bitcoin_core() {
    for f in both() {
        for i in 0..f.htlc_txs.len() {
            let case = to_local_revocation(&f, f.htlc_tx_output(i));
            let tx = assert_accepted(&case);
            assert_eq!(
                classify_to_local_spend(&tx.input[0].witness),
                ToLocalSpend::Revocation
            );
        }
    }
}

#[test]
fn htlc_tx_outputs_revocation_spend_with_wrong_key_rejected() {
    let f = appendix_c();
    let case = to_local_revocation(&f, f.htlc_tx_output(0));
    assert_rejected(&case, &case.build_with(&f.keys.local_htlc, |_| {}));
}

// ---- to_remote -----------------------------------------------------------------------------------

#[test]
fn to_remote_p2wpkh_spend_accepted_by_bitcoin_core() {
    let f = appendix_c();
    let tx = assert_accepted(&to_remote(&f));
    assert_eq!(tx.input[0].sequence, Sequence::ENABLE_RBF_NO_LOCKTIME);
}

#[test]
fn to_remote_p2wpkh_spend_with_wrong_key_rejected() {
    let f = appendix_c();
    let case = to_remote(&f);
    assert_rejected(&case, &case.build_with(&f.keys.remote_htlc, |_| {}));
}

#[test]
fn to_remote_anchors_spend_accepted_by_bitcoin_core() {
    let f = appendix_f();
    let case = to_remote(&f);
    let tx = assert_accepted(&case);
    assert_eq!(tx.input[0].sequence, Sequence(1));
    assert_eq!(case.first_valid_height(), COMMIT_HEIGHT + 1);
}

#[test]
fn to_remote_anchors_spend_without_csv_rejected() {
    let f = appendix_f();
    let case = to_remote(&f);
    for sequence in [Sequence::ZERO, Sequence::ENABLE_RBF_NO_LOCKTIME] {
        assert_rejected(
            &case,
            &case.build_with(&case.key, |tx| tx.input[0].sequence = sequence),
        );
    }
}

#[test]
fn to_remote_anchors_spend_with_wrong_key_rejected() {
    let f = appendix_f();
    let case = to_remote(&f);
    assert_rejected(&case, &case.build_with(&f.keys.remote_htlc, |_| {}));
}

// ---- offered HTLC: preimage claim by the remote party (our received HTLC on their commitment) --

#[test]
fn offered_htlc_preimage_claim_accepted_by_bitcoin_core() {
    for f in both() {
        let id = f.offered_id();
        let tx = assert_accepted(&offered_preimage(&f, f.preimage(id)));
        assert_htlc_spend(&f, id, &tx, HtlcSpend::Preimage(f.preimage(id)));
        let hash = f.preimage(id).payment_hash();
        assert_eq!(find_preimage(&tx, &hash), Some(f.preimage(id)));
    }
}

#[test]
fn offered_htlc_preimage_claim_with_wrong_preimage_rejected() {
    for f in both() {
        let other = f.preimage(f.received_id());
        assert_ne!(other, f.preimage(f.offered_id()));
        let case = offered_preimage(&f, other);
        let tx = case.signed();
        assert_rejected(&case, &tx);
        assert_htlc_spend(&f, f.offered_id(), &tx, HtlcSpend::Unknown);
    }
}

#[test]
fn offered_htlc_preimage_claim_with_wrong_key_rejected() {
    for f in both() {
        let case = offered_preimage(&f, f.preimage(f.offered_id()));
        assert_rejected(&case, &case.build_with(&f.keys.local_htlc, |_| {}));
    }
}

#[test]
fn offered_htlc_preimage_claim_with_anchors_without_csv_rejected() {
    let f = appendix_f();
    let case = offered_preimage(&f, f.preimage(f.offered_id()));
    for sequence in [Sequence::ZERO, Sequence::ENABLE_RBF_NO_LOCKTIME] {
        assert_rejected(
            &case,
            &case.build_with(&case.key, |tx| tx.input[0].sequence = sequence),
        );
    }
}

// ---- received HTLC: timeout claim by the remote party (our offered HTLC on their commitment) ---

#[test]
fn received_htlc_timeout_claim_accepted_by_bitcoin_core() {
    for f in both() {
        let id = f.received_id();
        let case = received_timeout(&f);
        let tx = assert_accepted(&case);
        assert_eq!(tx.lock_time, LockTime::from_consensus(f.expiry(id)));
        assert_eq!(case.first_valid_height(), f.expiry(id) + 1);
        assert_htlc_spend(&f, id, &tx, HtlcSpend::Timeout);
    }
}

#[test]
fn received_htlc_timeout_claim_with_locktime_below_cltv_rejected() {
    for f in both() {
        let case = received_timeout(&f);
        let early = LockTime::from_consensus(f.expiry(f.received_id()) - 1);
        assert_rejected(
            &case,
            &case.build_with(&case.key, |tx| tx.lock_time = early),
        );
    }
}

#[test]
fn received_htlc_timeout_claim_not_final_at_cltv_expiry() {
    // The interpreter only compares nLockTime with the script; mining at the expiry height
    // itself is refused by finality.
    let f = appendix_c();
    let case = received_timeout(&f);
    let tx = case.signed();
    case.core(&tx).unwrap();
    let expiry = f.expiry(f.received_id());
    assert!(check_final(&tx, expiry, &[Some(COMMIT_HEIGHT)]).is_err());
    check_final(&tx, expiry + 1, &[Some(COMMIT_HEIGHT)]).unwrap();
}

#[test]
fn received_htlc_timeout_claim_with_final_sequence_rejected() {
    let f = appendix_c();
    let case = received_timeout(&f);
    assert_rejected(
        &case,
        &case.build_with(&case.key, |tx| tx.input[0].sequence = Sequence::MAX),
    );
}

#[test]
fn received_htlc_timeout_claim_with_wrong_key_rejected() {
    for f in both() {
        let case = received_timeout(&f);
        assert_rejected(&case, &case.build_with(&f.keys.local_htlc, |_| {}));
    }
}

#[test]
fn received_htlc_timeout_claim_with_anchors_without_csv_rejected() {
    let f = appendix_f();
    let case = received_timeout(&f);
    assert_rejected(
        &case,
        &case.build_with(&case.key, |tx| tx.input[0].sequence = Sequence::ZERO),
    );
}

// ---- HTLC revocation -----------------------------------------------------------------------------

#[test]
fn offered_htlc_revocation_spend_accepted_by_bitcoin_core() {
    for f in both() {
        let id = f.offered_id();
        let tx = assert_accepted(&htlc_revocation(&f, id, f.keys.revocation_pubkey));
        assert_htlc_spend(&f, id, &tx, HtlcSpend::Revocation);
    }
}

#[test]
fn received_htlc_revocation_spend_accepted_by_bitcoin_core() {
    for f in both() {
        let id = f.received_id();
        let tx = assert_accepted(&htlc_revocation(&f, id, f.keys.revocation_pubkey));
        assert_htlc_spend(&f, id, &tx, HtlcSpend::Revocation);
    }
}

#[test]
fn htlc_revocation_spend_with_wrong_key_rejected() {
    for f in both() {
        for id in [f.offered_id(), f.received_id()] {
            let case = htlc_revocation(&f, id, f.keys.revocation_pubkey);
            assert_rejected(&case, &case.build_with(&f.keys.remote_htlc, |_| {}));
        }
    }
}

#[test]
fn htlc_revocation_spend_with_wrong_revocation_pubkey_rejected() {
    for f in both() {
        let not_revocation = PublicKey::from_secret_key(secp(), &f.keys.local_htlc);
        for id in [f.offered_id(), f.received_id()] {
            let case = htlc_revocation(&f, id, not_revocation);
            assert_rejected(&case, &case.signed());
        }
    }
}

// ---- anchors ---------------------------------------------------------------------------------------

#[test]
fn anchor_owner_spend_accepted_by_bitcoin_core() {
    let f = appendix_f();
    for (kind, key) in [
        ("to_local_anchor", f.keys.local_funding),
        ("to_remote_anchor", f.keys.remote_funding),
    ] {
        let tx = assert_accepted(&anchor_owner(&f, kind, key));
        assert_eq!(
            classify_anchor_spend(&tx.input[0].witness),
            AnchorSpend::Owner
        );
    }
}

#[test]
fn anchor_owner_spend_with_wrong_key_rejected() {
    let f = appendix_f();
    let case = anchor_owner(&f, "to_local_anchor", f.keys.local_funding);
    assert_rejected(&case, &case.build_with(&f.keys.remote_funding, |_| {}));
}

#[test]
fn anchor_anyone_spend_after_16_blocks_accepted_by_bitcoin_core() {
    let f = appendix_f();
    for kind in ["to_local_anchor", "to_remote_anchor"] {
        let case = anchor_anyone(&f, kind);
        let tx = assert_accepted(&case);
        assert_eq!(case.first_valid_height(), COMMIT_HEIGHT + 16);
        assert_eq!(
            classify_anchor_spend(&tx.input[0].witness),
            AnchorSpend::Anyone
        );
    }
}

#[test]
fn anchor_anyone_spend_before_16_blocks_rejected() {
    let f = appendix_f();
    let case = anchor_anyone(&f, "to_local_anchor");
    assert_rejected(
        &case,
        &case.build_with(&case.key, |tx| tx.input[0].sequence = Sequence(15)),
    );
}

#[test]
fn anchor_and_to_remote_batch_accepted_by_bitcoin_core() {
    // The remote party sweeps its anchor and its anchors `to_remote` in one transaction.
    let f = appendix_f();
    let claims = [
        anchor_owner(&f, "to_remote_anchor", f.keys.remote_funding),
        to_remote(&f),
    ];
    let inputs: Vec<(OutPoint, ClaimPath)> = claims
        .iter()
        .map(|c| (c.prevout.outpoint, c.path))
        .collect();
    let predicted = claim_batch_weight(
        &inputs.iter().map(|(_, p)| *p).collect::<Vec<_>>(),
        &[wallet_script().len()],
    );
    let total: Amount = claims.iter().map(|c| c.prevout.txout.value).sum();
    let fee = Amount::from_sat(predicted.div_ceil(4) * FEE_SAT_PER_VB);
    let output = TxOut {
        value: total - fee,
        script_pubkey: wallet_script(),
    };
    let mut tx = build_claim_batch(&inputs, vec![output]).unwrap();
    let sigs: Vec<Signature> = claims
        .iter()
        .enumerate()
        .map(|(i, c)| sign_input(&tx, i, &c.prevout, &c.key))
        .collect();
    for (i, c) in claims.iter().enumerate() {
        tx.input[i].witness = (c.witness)(&sigs[i], &c.prevout);
    }
    let prevouts: Vec<TxOut> = claims.iter().map(|c| c.prevout.txout.clone()).collect();
    verify_with_bitcoin_core(&tx, &prevouts).unwrap();
    check_standard(&tx, &prevouts, &PolicyConfig::default()).unwrap();
    let confirmed = [Some(COMMIT_HEIGHT); 2];
    check_final(&tx, COMMIT_HEIGHT + 1, &confirmed).unwrap();
    assert!(check_final(&tx, COMMIT_HEIGHT, &confirmed).is_err());
    let actual = tx.weight().to_wu();
    assert!(predicted >= actual && predicted - actual <= 2 * SLACK_PER_SIGNATURE);
}

#[test]
fn vector_commitment_txs_accepted_by_bitcoin_core() {
    let all = vector_commitments();
    assert!(all.iter().any(|v| v.channel_type == STATIC));
    assert!(all.iter().any(|v| v.channel_type == ANCHORS));
    assert!(all.iter().any(|v| v.channel_type == ZERO_FEE));
    for v in &all {
        verify_with_bitcoin_core(&v.commit, std::slice::from_ref(&v.funding)).unwrap();
    }
}

#[test]
fn vector_commitment_tx_with_tampered_signature_rejected() {
    let v = vector_commitments().remove(0);
    let mut items: Vec<Vec<u8>> = v.commit.input[0]
        .witness
        .iter()
        .map(<[u8]>::to_vec)
        .collect();
    // Flip a bit of `s` in the first signature (just before its sighash byte).
    let sig = &mut items[1];
    let at = sig.len() - 2;
    sig[at] ^= 1;
    let mut tampered = v.commit.clone();
    tampered.input[0].witness = Witness::from_slice(&items);
    assert!(verify_with_bitcoin_core(&tampered, &[v.funding]).is_err());
}

#[test]
fn vector_htlc_txs_accepted_by_bitcoin_core() {
    let mut checked = 0;
    for v in vector_commitments() {
        for (htlc_tx, _) in &v.htlc_txs {
            let spent = htlc_tx.input[0].previous_output;
            assert_eq!(spent.txid, v.commit.compute_txid());
            let prevout = v.commit.output[spent.vout as usize].clone();
            verify_with_bitcoin_core(htlc_tx, &[prevout]).unwrap();
            checked += 1;
        }
    }
    assert!(checked > 0);
}

#[test]
fn vector_htlc_txs_weigh_no_more_than_predicted() {
    for v in vector_commitments() {
        for (htlc_tx, expiry) in &v.htlc_txs {
            let success = htlc_tx.lock_time == LockTime::ZERO;
            let predicted = htlc_tx_weight(success, *expiry, v.channel_type);
            let actual = htlc_tx.weight().to_wu();
            assert!(
                predicted >= actual,
                "predicted {predicted} < actual {actual}"
            );
            assert!(predicted - actual <= 2 * SLACK_PER_SIGNATURE);
        }
    }
}

#[test]
fn vector_htlc_success_txs_reveal_their_preimages() {
    let json = vector("bolt03-commitment-static-remotekey.json");
    let mut found = 0;
    for test in json["tests"].as_array().unwrap() {
        for h in test["htlc_txs"].as_array().unwrap() {
            let htlc_tx = tx(&h["tx"]);
            let htlc = &json["htlcs"][h["htlc"].as_u64().unwrap() as usize];
            let preimage = PaymentPreimage(common::hex32(&htlc["payment_preimage"]));
            let hash = preimage.payment_hash();
            let witness = &htlc_tx.input[0].witness;
            if h["type"] == "htlc-success" {
                assert_eq!(find_preimage(&htlc_tx, &hash), Some(preimage));
                let spend = classify_htlc_spend(witness, HtlcOutputKind::Received, &hash);
                assert_eq!(spend, HtlcSpend::SecondLevelSuccess(preimage));
                found += 1;
            } else {
                assert_eq!(find_preimage(&htlc_tx, &hash), None);
                let spend = classify_htlc_spend(witness, HtlcOutputKind::Offered, &hash);
                assert_eq!(spend, HtlcSpend::SecondLevelTimeout);
            }
        }
    }
    assert!(found > 0);
}
