//! The engine's commitment builder (`bolt3::commitment::build_commitment`) and second-level
//! builders (`bolt3::htlc_tx`) for `ChannelType::SimpleTaproot`, fed the same kind of inputs as
//! for every other type (basepoints, per-commitment point, HTLCs, feerate, `to_self_delay`, dust
//! limit, balances), reproduce the extension's three vector commitments and seven HTLC
//! transactions byte for byte: unsigned, then signed — the commitment with the MuSig2 aggregate
//! of both parties' partial signatures re-made over the sighash of *our* transaction, the HTLC
//! transactions with both BIP 340 signatures re-made over *our* transaction and our leaf.

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::{OutPoint, Transaction, TxOut, Witness};
use musig2::{aggregate_partial_signatures, sign_partial, AggNonce, KeyAggContext};
use musig2::{LiftedSignature, PartialSignature, PubNonce, SecNonce};
use serde_json::Value;

use super::super::commitment::{
    build_commitment, obscuring_factor, BuiltCommitment, CommitmentHtlc, CommitmentSpec,
};
use super::super::htlc_tx::htlc_txs_for_commitment;
use super::super::{keys, ChannelBasepoints, ChannelType, CommitmentKeys, PaymentHash};
use super::super::{PaymentPreimage, SIMPLE_TAPROOT_FEATURE_BIT};
use super::tests::{hex_of, param_key, tx, vectors, CSV_DELAY};
use super::{accepted_htlc, offered_htlc, witness as w};

const TAPROOT: ChannelType = ChannelType::SimpleTaproot;

fn secret(v: &Value, name: &str) -> SecretKey {
    SecretKey::from_slice(&hex_of(&v["params"]["keys"][name])).unwrap()
}

/// The commitment keys, derived with BOLT 3 from the vectors' basepoints and per-commitment
/// point (the holder is "local"; the counterparty's revocation basepoint makes the revocation key).
/// The vectors give no holder revocation basepoint nor counterparty delayed basepoint; `derive`
/// uses neither, so they are filled with other keys.
fn commitment_keys(v: &Value) -> CommitmentKeys {
    let p = |n: &str| param_key(v, n);
    let holder = ChannelBasepoints {
        funding_pubkey: p("local_funding_pubkey"),
        revocation_basepoint: p("remote_revocation_basepoint"),
        payment_basepoint: p("local_payment_basepoint"),
        delayed_payment_basepoint: p("local_delayed_payment_basepoint"),
        htlc_basepoint: p("local_htlc_basepoint"),
    };
    let counterparty = ChannelBasepoints {
        funding_pubkey: p("remote_funding_pubkey"),
        revocation_basepoint: p("remote_revocation_basepoint"),
        payment_basepoint: p("remote_payment_basepoint"),
        delayed_payment_basepoint: p("local_delayed_payment_basepoint"),
        htlc_basepoint: p("remote_htlc_basepoint"),
    };
    CommitmentKeys::derive(&p("local_per_commit_point"), &holder, &counterparty).unwrap()
}

fn funding_tx(v: &Value) -> Transaction {
    tx(&v["scripts"]["funding"]["funding_tx_hex"])
}

fn payment_hash(preimage: &[u8]) -> PaymentHash {
    PaymentHash(sha256::Hash::hash(preimage).to_byte_array())
}

/// The vector's HTLCs as the builder takes them: ids in list order, `incoming` = received.
fn htlcs(test: &Value) -> Vec<CommitmentHtlc> {
    let list = test["htlcs"].as_array().cloned().unwrap_or_default();
    (0u64..)
        .zip(list)
        .map(|(id, h)| CommitmentHtlc {
            id,
            offered: !h["incoming"].as_bool().unwrap(),
            amount_msat: h["amount_msat"].as_u64().unwrap(),
            payment_hash: payment_hash(&hex_of(&h["preimage"])),
            cltv_expiry: h["expiry"].as_u64().unwrap() as u32,
        })
        .collect()
}

/// The builder's input for one transaction vector: the local party holds the commitment and
/// opened the channel (it pays the fee and both anchors).
pub(crate) fn spec(v: &Value, test: &Value) -> CommitmentSpec {
    let params = &v["params"];
    let funding = funding_tx(v);
    CommitmentSpec {
        channel_type: TAPROOT,
        funding_outpoint: OutPoint::new(funding.compute_txid(), 0),
        funding_sat: params["funding_amount_satoshis"].as_u64().unwrap(),
        commitment_number: params["commit_height"].as_u64().unwrap(),
        obscuring_factor: obscuring_factor(
            &param_key(v, "local_payment_basepoint"),
            &param_key(v, "remote_payment_basepoint"),
        ),
        keys: commitment_keys(v),
        local_funding_pubkey: param_key(v, "local_funding_pubkey"),
        remote_funding_pubkey: param_key(v, "remote_funding_pubkey"),
        to_self_delay: params["csv_delay"].as_u64().unwrap() as u16,
        dust_limit_sat: test["dust_limit_satoshis"]
            .as_u64()
            .or(params["dust_limit_satoshis"].as_u64())
            .unwrap(),
        feerate_per_kw: test["fee_per_kw"].as_u64().unwrap() as u32,
        to_local_msat: test["local_balance_msat"].as_u64().unwrap(),
        to_remote_msat: test["remote_balance_msat"].as_u64().unwrap(),
        holder_is_funder: true,
        htlcs: htlcs(test),
    }
}

fn unsigned(mut tx: Transaction) -> Transaction {
    for input in &mut tx.input {
        input.witness = Witness::new();
    }
    tx
}

/// The MuSig2 signature of `commitment` (BIP 327 with the BIP 86 tweak, `SIGHASH_DEFAULT`
/// key-path sighash over the funding output): both partial signatures re-made from the vector's
/// secret nonces and aggregated.
fn musig2_signature(v: &Value, test: &Value, commitment: &Transaction) -> LiftedSignature {
    let mut sorted = [
        param_key(v, "local_funding_pubkey"),
        param_key(v, "remote_funding_pubkey"),
    ];
    sorted.sort_by_key(PublicKey::serialize);
    let context = KeyAggContext::new(sorted)
        .unwrap()
        .with_unspendable_taproot_tweak()
        .unwrap();
    let prevouts = [funding_tx(v).output[0].clone()];
    let sighash = SighashCache::new(commitment)
        .taproot_key_spend_signature_hash(0, &Prevouts::All(&prevouts), TapSighashType::Default)
        .unwrap();
    let msg = sighash.to_byte_array();
    let nonce = |name: &str| PubNonce::from_bytes(&hex_of(&test[name])).unwrap();
    let agg_nonce = AggNonce::sum([nonce("local_nonce"), nonce("remote_nonce")]);
    let partial = |sec: &str, key: &str| -> PartialSignature {
        let secnonce = SecNonce::from_bytes(&hex_of(&test[sec])).unwrap();
        sign_partial(&context, secret(v, key), secnonce, &agg_nonce, msg).unwrap()
    };
    let local = partial("local_sec_nonce", "local_funding_privkey");
    let remote = partial("remote_sec_nonce", "remote_funding_privkey");
    aggregate_partial_signatures(&context, &agg_nonce, [local, remote], msg).unwrap()
}

fn built(v: &Value, test: &Value) -> BuiltCommitment {
    build_commitment(&spec(v, test)).unwrap()
}

/// Each balance and anchor output is labelled with the kind whose "scripts" vector it pays (the
/// two anchors are both 330 sat, so the transaction alone does not tell them apart).
fn assert_kinds_pay_the_vectors_scripts(v: &Value, built: &BuiltCommitment) {
    use super::super::commitment::OutputKind;
    for output in &built.outputs {
        let entry = match output.kind {
            OutputKind::ToLocal => "to_local",
            OutputKind::ToRemote => "to_remote",
            OutputKind::LocalAnchor => "local_anchor",
            OutputKind::RemoteAnchor => "remote_anchor",
            _ => continue,
        };
        let spk = &built.tx.output[output.index as usize].script_pubkey;
        assert_eq!(
            spk.as_bytes(),
            hex_of(&v["scripts"][entry]["pkscript"]),
            "{entry}"
        );
    }
}

#[test]
fn the_three_vector_commitments_are_built_byte_exact_unsigned_and_signed() {
    let v = vectors();
    for test in v["transactions"].as_array().unwrap() {
        let name = test["name"].as_str().unwrap();
        let expected = tx(&test["expected_commitment_tx_hex"]);
        let built = built(&v, test);
        assert_kinds_pay_the_vectors_scripts(&v, &built);
        let mut ours = built.tx;
        assert_eq!(ours, unsigned(expected.clone()), "{name}: unsigned");
        let sig = musig2_signature(&v, test, &ours);
        ours.input[0].witness = Witness::from_slice(&[sig.serialize()]);
        assert_eq!(
            serialize_hex(&ours),
            test["expected_commitment_tx_hex"].as_str().unwrap(),
            "{name}: signed"
        );
    }
}

/// The holder's HTLC signing keys (BOLT 3 `derive_privkey` of the vectors' basepoint secrets).
fn htlc_secret(v: &Value, basepoint_secret: &str) -> SecretKey {
    let point = param_key(v, "local_per_commit_point");
    keys::derive_privkey(&secret(v, basepoint_secret), &point).unwrap()
}

/// The witness of the holder's HTLC transaction `htlc_tx` spending `spent`: the counterparty's
/// signature under `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY`, the holder's under `SIGHASH_DEFAULT`
/// (BIP 340, zero aux rand, as the vectors), over our leaf; the preimage for HTLC-success.
fn htlc_witness(
    v: &Value,
    htlc: &CommitmentHtlc,
    htlc_tx: &Transaction,
    spent: TxOut,
    preimage: PaymentPreimage,
) -> Witness {
    let keys = commitment_keys(v);
    let (rev, local, remote) = (
        &keys.revocation_pubkey,
        &keys.local_htlc_pubkey,
        &keys.remote_htlc_pubkey,
    );
    let offered = offered_htlc::offered_htlc(rev, local, remote, &htlc.payment_hash).unwrap();
    let accepted =
        accepted_htlc::accepted_htlc(rev, local, remote, &htlc.payment_hash, htlc.cltv_expiry)
            .unwrap();
    let leaf = if htlc.offered {
        &offered.timeout_script
    } else {
        &accepted.success_script
    };
    let prevouts = [spent];
    let sign = |ty, secret: &SecretKey| {
        w::sign_script_path(htlc_tx, 0, &prevouts, leaf, ty, secret, &[0u8; 32]).unwrap()
    };
    let pair = TapSighashType::SinglePlusAnyoneCanPay;
    let remote_sig = sign(pair, &htlc_secret(v, "remote_htlc_basepoint_secret"));
    let local_sig = sign(
        TapSighashType::Default,
        &htlc_secret(v, "local_htlc_basepoint_secret"),
    );
    if htlc.offered {
        w::offered_timeout(&offered, &remote_sig, &local_sig).unwrap()
    } else {
        w::accepted_success(&accepted, &remote_sig, &local_sig, &preimage).unwrap()
    }
}

fn preimage_of(test: &Value, htlc: &CommitmentHtlc) -> PaymentPreimage {
    let bytes: [u8; 32] = hex_of(&test["htlcs"][htlc.id as usize]["preimage"])
        .try_into()
        .unwrap();
    PaymentPreimage(bytes)
}

#[test]
fn the_seven_vector_htlc_transactions_are_built_byte_exact_unsigned_and_signed() {
    let v = vectors();
    let mut checked = 0;
    for test in v["transactions"].as_array().unwrap() {
        let spec = spec(&v, test);
        let commitment = build_commitment(&spec).unwrap();
        let ours = htlc_txs_for_commitment(&commitment, &spec);
        let descs = test["htlc_descs"].as_array().cloned().unwrap_or_default();
        assert_eq!(ours.len(), descs.len(), "{}", test["name"]);
        // Both lists are in commitment output order.
        for ((htlc, mut ours), desc) in ours.into_iter().zip(descs) {
            let expected_hex = desc["resolution_tx_hex"].as_str().unwrap();
            let expected = tx(&desc["resolution_tx_hex"]);
            assert_eq!(ours, unsigned(expected), "htlc {}: unsigned", htlc.id);
            let vout = ours.input[0].previous_output.vout as usize;
            let spent = commitment.tx.output[vout].clone();
            let preimage = preimage_of(test, &htlc);
            ours.input[0].witness = htlc_witness(&v, &htlc, &ours, spent, preimage);
            assert_eq!(
                serialize_hex(&ours),
                expected_hex,
                "htlc {}: signed",
                htlc.id
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 7);
}

/// The fee the funder paid in a vector commitment, read from its outputs: its balance minus
/// its `to_local` output minus the two 330-sat anchors.
fn vector_base_fee(test: &Value) -> u64 {
    let expected = tx(&test["expected_commitment_tx_hex"]);
    let to_local = expected.output.last().unwrap().value.to_sat();
    test["local_balance_msat"].as_u64().unwrap() / 1000 - to_local - 2 * 330
}

#[test]
fn base_fee_is_968_plus_172_per_untrimmed_htlc_times_the_feerate() {
    use super::super::fees::{commitment_fee_sat, commitment_weight};
    assert_eq!(commitment_weight(TAPROOT, 0), 968);
    assert_eq!(commitment_weight(TAPROOT, 5), 968 + 5 * 172);
    let v = vectors();
    let untrimmed = [0usize, 5, 2];
    for (test, n) in v["transactions"].as_array().unwrap().iter().zip(untrimmed) {
        let feerate = test["fee_per_kw"].as_u64().unwrap() as u32;
        let built = built(&v, test);
        assert_eq!(built.tx.output.len(), 4 + n);
        assert_eq!(
            built.base_fee_sat,
            vector_base_fee(test),
            "{}",
            test["name"]
        );
        assert_eq!(
            commitment_fee_sat(feerate, TAPROOT, n),
            vector_base_fee(test)
        );
    }
}

#[test]
fn htlcs_are_trimmed_below_the_dust_limit_alone_as_their_transactions_pay_no_fee() {
    use super::super::fees::{htlc_success_fee_sat, htlc_timeout_fee_sat, is_trimmed};
    assert_eq!(htlc_timeout_fee_sat(100_000, TAPROOT), 0);
    assert_eq!(htlc_success_fee_sat(100_000, TAPROOT), 0);
    for offered in [true, false] {
        assert!(is_trimmed(offered, 353_999, 354, 100_000, TAPROOT));
        assert!(!is_trimmed(offered, 354_000, 354, 100_000, TAPROOT));
    }
    // The third vector at dust 2500: the 1000, 2000 and 2000-sat HTLCs go, 3000 and 4000 stay.
    let v = vectors();
    let built = built(&v, &v["transactions"][2]);
    let trimmed: Vec<u64> = built.trimmed_htlcs.iter().map(|h| h.id).collect();
    assert_eq!(trimmed, [0, 1, 2]);
}

#[test]
fn without_htlcs_an_anchor_goes_with_its_partys_missing_balance_output() {
    use super::super::commitment::OutputKind;
    let v = vectors();
    let mut spec = spec(&v, &v["transactions"][0]);
    spec.to_local_msat += spec.to_remote_msat;
    spec.to_remote_msat = 0;
    let built = build_commitment(&spec).unwrap();
    let kinds: Vec<OutputKind> = built.outputs.iter().map(|o| o.kind).collect();
    assert_eq!(kinds, [OutputKind::LocalAnchor, OutputKind::ToLocal]);
    assert!(built.outputs.iter().all(|o| o.witness_script.is_none()));
    // With an HTLC both anchors stay.
    spec.htlcs = htlcs(&v["transactions"][1]);
    spec.to_local_msat -= 12_000_000;
    let built = build_commitment(&spec).unwrap();
    let anchors = built
        .outputs
        .iter()
        .filter(|o| matches!(o.kind, OutputKind::LocalAnchor | OutputKind::RemoteAnchor))
        .count();
    assert_eq!(anchors, 2);
}

#[test]
fn simple_taproot_type_answers() {
    use super::super::AnchorKind;
    assert_eq!(
        serde_json::to_string(&TAPROOT).unwrap(),
        "\"simple_taproot\""
    );
    assert_eq!(
        serde_json::from_str::<ChannelType>("\"simple_taproot\"").unwrap(),
        TAPROOT
    );
    assert_eq!(SIMPLE_TAPROOT_FEATURE_BIT, 80);
    assert_eq!(TAPROOT.tx_version(), bitcoin::transaction::Version::TWO);
    assert_eq!(TAPROOT.max_accepted_htlcs_limit(), 483);
    assert_eq!(TAPROOT.anchor_kind(), Some(AnchorKind::KeyedTaproot));
    assert!(TAPROOT.has_keyed_anchors() && TAPROOT.has_any_anchor());
    assert!(!TAPROOT.has_anchors() && !TAPROOT.has_shared_anchor());
    assert!(TAPROOT.zero_fee_htlc_txs() && !TAPROOT.zero_fee_commitment());
    assert!(TAPROOT.htlc_tx_sequence_one() && TAPROOT.is_taproot());
    let refused = TAPROOT.engine_support().unwrap_err();
    assert_eq!(refused.channel_type, TAPROOT);
    assert!(refused
        .to_string()
        .starts_with("simple taproot channels are not resolved yet"));
    for other in [
        ChannelType::StaticRemoteKey,
        ChannelType::AnchorsZeroFeeHtlc,
        ChannelType::ZeroFeeCommitments,
    ] {
        assert_eq!(other.engine_support(), Ok(()));
        assert!(!other.is_taproot());
    }
}

#[test]
fn the_direct_script_pubkeys_equal_the_tap_outputs_and_the_vectors() {
    use super::commitment as c;
    let v = vectors();
    let keys = commitment_keys(&v);
    let pk = |name: &str| hex_of(&v["scripts"][name]["pkscript"]);
    assert_eq!(
        c::to_local_script_pubkey(&keys, CSV_DELAY).as_bytes(),
        pk("to_local")
    );
    let remote = &keys.remote_payment_pubkey;
    assert_eq!(
        c::to_remote_script_pubkey(remote).as_bytes(),
        pk("to_remote")
    );
    let scripts_remote = super::super::scripts::to_remote_script_pubkey(TAPROOT, remote);
    assert_eq!(scripts_remote.as_bytes(), pk("to_remote"));
    assert_eq!(
        c::anchor_script_pubkey(&keys, true).as_bytes(),
        pk("local_anchor")
    );
    assert_eq!(
        c::anchor_script_pubkey(&keys, false).as_bytes(),
        pk("remote_anchor")
    );
    let second = c::second_level_script_pubkey(&keys, CSV_DELAY);
    assert_eq!(second.as_bytes(), pk("second_level_htlc_success"));
    for htlc in htlcs(&v["transactions"][1]) {
        let (rev, local, remote) = (
            &keys.revocation_pubkey,
            &keys.local_htlc_pubkey,
            &keys.remote_htlc_pubkey,
        );
        let tree = if htlc.offered {
            offered_htlc::offered_htlc(rev, local, remote, &htlc.payment_hash)
                .unwrap()
                .output
        } else {
            let expiry = htlc.cltv_expiry;
            accepted_htlc::accepted_htlc(rev, local, remote, &htlc.payment_hash, expiry)
                .unwrap()
                .output
        };
        assert_eq!(c::htlc_script_pubkey(&keys, &htlc), tree.script_pubkey());
    }
}
