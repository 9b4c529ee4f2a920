//! Commitment and second-level HTLC transactions rebuilt from the BOLT 3 Appendix C (static
//! remote key) and Appendix F (anchors) vectors, signed with RFC 6979 and compared byte for byte.

mod common;

use bitcoin::ecdsa::Signature;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, OutPoint, Sequence, Transaction, TxIn, TxOut, Txid};
use common::{hex32, hex_bytes, pubkey, secret, vector};
use contractcourt_core::bolt3::commitment::{
    build_commitment, commitment_fee_sat, decode_commitment_number, encode_commitment_number,
    funding_witness, htlc_success_fee_sat, htlc_timeout_fee_sat, is_trimmed, obscuring_factor,
    sign_commitment, BuiltCommitment, CommitmentError, CommitmentHtlc, CommitmentSpec, OutputKind,
    ANCHOR_OUTPUT_SAT, MAX_COMMITMENT_NUMBER,
};
use contractcourt_core::bolt3::htlc_tx::{
    build_htlc_success, build_htlc_timeout, htlc_tx_witness, htlc_txs_for_commitment,
    htlc_witness_script, remote_htlc_sighash_type, HtlcTxError,
};
use contractcourt_core::bolt3::{scripts, sign, ChannelType, CommitmentKeys, PaymentPreimage};
use serde_json::Value;

const APPENDIX_C: &str = "bolt03-commitment-static-remotekey.json";
const APPENDIX_F: &str = "bolt03-commitment-anchors.json";

/// The channel both appendices share.
struct Fixture {
    keys: CommitmentKeys,
    outpoint: OutPoint,
    funding_sat: u64,
    commitment_number: u64,
    to_self_delay: u16,
    factor: u64,
    local_funding_pubkey: PublicKey,
    remote_funding_pubkey: PublicKey,
    local_funding_secret: SecretKey,
    remote_funding_secret: SecretKey,
    local_htlc_secret: SecretKey,
    remote_htlc_secret: SecretKey,
    htlcs: Vec<(CommitmentHtlc, PaymentPreimage)>,
}

/// One HTLC transaction of a vector case.
struct HtlcCase {
    htlc_id: u64,
    remote_sig: Vec<u8>,
    local_sig: Vec<u8>,
    tx: Vec<u8>,
}

/// One commitment of a vector case.
struct Case {
    name: String,
    htlc_ids: Vec<u64>,
    to_local_msat: u64,
    to_remote_msat: u64,
    feerate_per_kw: u32,
    dust_limit_sat: u64,
    remote_sig: Vec<u8>,
    local_sig: Vec<u8>,
    commit_tx: Vec<u8>,
    base_fee_sat: Option<u64>,
    actual_fee_sat: Option<u64>,
    derived: Value,
    htlc_txs: Vec<HtlcCase>,
}

struct Appendix {
    channel_type: ChannelType,
    fixture: Fixture,
    cases: Vec<Case>,
}

fn arr(v: &Value) -> &[Value] {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
}

fn text(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected an integer, got {v}"))
}

fn fixture(params: &Value, internal: &Value, htlcs: &Value) -> Fixture {
    let local_payment_basepoint = pubkey(&params["local_payment_basepoint"]);
    let remote_payment_basepoint = pubkey(&params["remote_payment_basepoint"]);
    let keys = CommitmentKeys {
        per_commitment_point: pubkey(&internal["local_per_commitment_point"]),
        revocation_pubkey: pubkey(&params["local_revocation_pubkey"]),
        local_delayed_pubkey: pubkey(&params["local_delayedpubkey"]),
        local_htlc_pubkey: pubkey(&params["local_htlcpubkey"]),
        remote_htlc_pubkey: pubkey(&params["remote_htlcpubkey"]),
        remote_payment_pubkey: remote_payment_basepoint,
    };
    let txid: Txid = text(&params["funding_tx_id"]).parse().unwrap();
    let htlcs = arr(htlcs)
        .iter()
        .map(|h| {
            let preimage = PaymentPreimage(hex32(&h["payment_preimage"]));
            let offered = match text(&h["direction"]) {
                "local->remote" => true,
                "remote->local" => false,
                other => panic!("unknown direction {other}"),
            };
            let htlc = CommitmentHtlc {
                id: u(&h["id"]),
                offered,
                amount_msat: u(&h["amount_msat"]),
                payment_hash: preimage.payment_hash(),
                cltv_expiry: u(&h["expiry"]).try_into().unwrap(),
            };
            (htlc, preimage)
        })
        .collect();
    Fixture {
        keys,
        outpoint: OutPoint {
            txid,
            vout: u(&params["funding_output_index"]).try_into().unwrap(),
        },
        funding_sat: u(&params["funding_amount_satoshi"]),
        commitment_number: u(&params["commitment_number"]),
        to_self_delay: u(&params["local_delay"]).try_into().unwrap(),
        // Local is the opener in both appendices.
        factor: obscuring_factor(&local_payment_basepoint, &remote_payment_basepoint),
        local_funding_pubkey: pubkey(&params["local_funding_pubkey"]),
        remote_funding_pubkey: pubkey(&params["remote_funding_pubkey"]),
        local_funding_secret: secret(&params["local_funding_privkey"]),
        remote_funding_secret: secret(&internal["remote_funding_privkey"]),
        local_htlc_secret: secret(&params["local_privkey"]),
        remote_htlc_secret: secret(&internal["remote_privkey"]),
        htlcs,
    }
}

fn appendix_c() -> Appendix {
    let v = vector(APPENDIX_C);
    let fixture = fixture(
        &v["params"],
        &v["internal_params_from_html_comment"],
        &v["htlcs"],
    );
    let dust = u(&v["params"]["local_dust_limit_satoshi"]);
    let cases = arr(&v["tests"])
        .iter()
        .map(|t| Case {
            name: text(&t["name"]).to_owned(),
            htlc_ids: arr(&t["htlcs_used"]).iter().map(u).collect(),
            to_local_msat: u(&t["to_local_msat"]),
            to_remote_msat: u(&t["to_remote_msat"]),
            feerate_per_kw: u(&t["local_feerate_per_kw"]).try_into().unwrap(),
            dust_limit_sat: dust,
            remote_sig: hex_bytes(&t["remote_signature"]),
            local_sig: hex_bytes(&t["local_signature"]),
            commit_tx: hex_bytes(&t["commit_tx"]),
            base_fee_sat: t.get("base_commitment_fee_satoshis").map(u),
            actual_fee_sat: t.get("actual_commitment_fee_satoshis").map(u),
            derived: t["derived"].clone(),
            htlc_txs: arr(&t["htlc_txs"])
                .iter()
                .map(|h| HtlcCase {
                    htlc_id: u(&h["htlc"]),
                    remote_sig: hex_bytes(&h["remote_htlc_signature"]),
                    local_sig: hex_bytes(&h["local_htlc_signature"]),
                    tx: hex_bytes(&h["tx"]),
                })
                .collect(),
        })
        .collect();
    Appendix {
        channel_type: ChannelType::StaticRemoteKey,
        fixture,
        cases,
    }
}

/// `UseTestHtlcs` as the spec (and lnd) read it: HTLCs 0–4, or 1, 5 and 6 in the "same amount
/// and preimage" case.
fn appendix_f_htlc_ids(t: &Value) -> Vec<u64> {
    if !t["UseTestHtlcs"].as_bool().unwrap() {
        return Vec::new();
    }
    if text(&t["Name"]).contains("same amount and preimage") {
        vec![1, 5, 6]
    } else {
        (0..=4).collect()
    }
}

fn appendix_f() -> Appendix {
    let v = vector(APPENDIX_F);
    let fixture = fixture(
        &v["params_from_appendix_c"],
        &v["internal_params_from_appendix_c"],
        &v["htlcs_from_appendix_c"],
    );
    let cases = arr(&v["tests"])
        .iter()
        .map(|t| {
            let htlc_ids = appendix_f_htlc_ids(t);
            let listed: Vec<u64> = arr(&t["derived"]["htlcs_used"]).iter().map(u).collect();
            assert_eq!(htlc_ids, listed, "UseTestHtlcs reading of {}", t["Name"]);
            Case {
                name: text(&t["Name"]).to_owned(),
                htlc_ids,
                to_local_msat: u(&t["LocalBalance"]),
                to_remote_msat: u(&t["RemoteBalance"]),
                feerate_per_kw: u(&t["FeePerKw"]).try_into().unwrap(),
                dust_limit_sat: u(&t["DustLimitSatoshis"]),
                remote_sig: hex_bytes(&t["RemoteSigHex"]),
                local_sig: hex_bytes(&t["derived"]["local_signature"]),
                commit_tx: hex_bytes(&t["ExpectedCommitmentTxHex"]),
                base_fee_sat: t["derived"].get("base_commitment_fee_satoshis").map(u),
                actual_fee_sat: t["derived"].get("actual_commitment_fee_satoshis").map(u),
                derived: t["derived"].clone(),
                htlc_txs: arr(&t["HtlcDescs"])
                    .iter()
                    .map(|h| HtlcCase {
                        htlc_id: u(&h["derived"]["htlc"]),
                        remote_sig: hex_bytes(&h["RemoteSigHex"]),
                        local_sig: hex_bytes(&h["derived"]["local_htlc_signature"]),
                        tx: hex_bytes(&h["ResolutionTxHex"]),
                    })
                    .collect(),
            }
        })
        .collect();
    Appendix {
        channel_type: ChannelType::AnchorsZeroFeeHtlc,
        fixture,
        cases,
    }
}

/// Run `check` on every case of both appendices.
fn each_case(mut check: impl FnMut(&Appendix, &Case)) {
    for app in [appendix_c(), appendix_f()] {
        for case in &app.cases {
            check(&app, case);
        }
    }
}

/// The vector HTLC with `id` (ids are unique across directions in the vectors).
fn htlc(f: &Fixture, id: u64) -> &(CommitmentHtlc, PaymentPreimage) {
    let found = f.htlcs.iter().find(|(h, _)| h.id == id);
    found.unwrap_or_else(|| panic!("no htlc {id}"))
}

fn is_htlc(kind: OutputKind) -> bool {
    matches!(
        kind,
        OutputKind::OfferedHtlc { .. } | OutputKind::ReceivedHtlc { .. }
    )
}

fn spec(app: &Appendix, case: &Case) -> CommitmentSpec {
    let f = &app.fixture;
    let htlcs = case.htlc_ids.iter().map(|id| htlc(f, *id).0).collect();
    CommitmentSpec {
        channel_type: app.channel_type,
        funding_outpoint: f.outpoint,
        funding_sat: f.funding_sat,
        commitment_number: f.commitment_number,
        obscuring_factor: f.factor,
        keys: f.keys,
        local_funding_pubkey: f.local_funding_pubkey,
        remote_funding_pubkey: f.remote_funding_pubkey,
        to_self_delay: f.to_self_delay,
        dust_limit_sat: case.dust_limit_sat,
        feerate_per_kw: case.feerate_per_kw,
        to_local_msat: case.to_local_msat,
        to_remote_msat: case.to_remote_msat,
        holder_is_funder: true,
        htlcs,
    }
}

fn der(sig: &Signature) -> Vec<u8> {
    sig.signature.serialize_der().to_vec()
}

fn funding_txout(f: &Fixture) -> TxOut {
    TxOut {
        value: Amount::from_sat(f.funding_sat),
        script_pubkey: scripts::funding_script(&f.local_funding_pubkey, &f.remote_funding_pubkey)
            .to_p2wsh(),
    }
}

/// Build, sign with both funding keys (checking both signatures against the vector) and
/// assemble the commitment of `case`.
fn signed_commitment(app: &Appendix, case: &Case) -> (BuiltCommitment, Transaction) {
    let f = &app.fixture;
    let built = build_commitment(&spec(app, case)).unwrap();
    let funding_script = scripts::funding_script(&f.local_funding_pubkey, &f.remote_funding_pubkey);
    let sign = |key| sign_commitment(&built.tx, &funding_script, f.funding_sat, key).unwrap();
    let (local_sig, remote_sig) = (
        sign(&f.local_funding_secret),
        sign(&f.remote_funding_secret),
    );
    assert_eq!(der(&local_sig), case.local_sig, "local sig, {}", case.name);
    assert_eq!(
        der(&remote_sig),
        case.remote_sig,
        "remote sig, {}",
        case.name
    );
    let mut tx = built.tx.clone();
    tx.input[0].witness = funding_witness(
        &f.local_funding_pubkey,
        &local_sig,
        &f.remote_funding_pubkey,
        &remote_sig,
    );
    (built, tx)
}

fn assert_all_commitments_byte_identical(app: &Appendix, expected_cases: usize) {
    assert_eq!(app.cases.len(), expected_cases);
    for case in &app.cases {
        let (_, tx) = signed_commitment(app, case);
        assert_eq!(
            hex::encode(bitcoin::consensus::serialize(&tx)),
            hex::encode(&case.commit_tx),
            "commitment tx, {}",
            case.name
        );
    }
}

/// Rebuild, sign and assemble every HTLC transaction; returns how many were checked.
fn assert_all_htlc_txs_byte_identical(app: &Appendix) -> usize {
    let f = &app.fixture;
    let remote_type = remote_htlc_sighash_type(app.channel_type);
    let mut checked = 0;
    for case in &app.cases {
        let spec = spec(app, case);
        let built = build_commitment(&spec).unwrap();
        let txs = htlc_txs_for_commitment(&built, &spec);
        assert_eq!(txs.len(), case.htlc_txs.len(), "{}", case.name);
        for ((built_htlc, tx), expected) in txs.iter().zip(&case.htlc_txs) {
            let htlc_id = &built_htlc.id;
            assert_eq!(*htlc_id, expected.htlc_id, "signature order, {}", case.name);
            let (htlc, preimage) = htlc(f, *htlc_id);
            let wscript = htlc_witness_script(htlc, &f.keys, app.channel_type);
            let value = Amount::from_sat(htlc.amount_msat / 1000);
            let sign_with = |secret: &SecretKey, ty: EcdsaSighashType| {
                sign::sign_p2wsh(tx, 0, &wscript, value, ty, secret).unwrap()
            };
            let local_sig = sign_with(&f.local_htlc_secret, EcdsaSighashType::All);
            let remote_sig = sign_with(&f.remote_htlc_secret, remote_type);
            assert_eq!(der(&local_sig), expected.local_sig, "local sig {htlc_id}");
            assert_eq!(
                der(&remote_sig),
                expected.remote_sig,
                "remote sig {htlc_id}"
            );
            let preimage = (!htlc.offered).then_some(preimage);
            let mut signed = tx.clone();
            signed.input[0].witness = htlc_tx_witness(&remote_sig, &local_sig, preimage, &wscript);
            assert_eq!(
                hex::encode(bitcoin::consensus::serialize(&signed)),
                hex::encode(&expected.tx),
                "htlc {htlc_id} tx, {}",
                case.name
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn appendix_c_all_16_commitment_transactions_byte_identical() {
    assert_all_commitments_byte_identical(&appendix_c(), 16);
}

#[test]
fn appendix_f_all_9_anchor_commitment_transactions_byte_identical() {
    assert_all_commitments_byte_identical(&appendix_f(), 9);
}

#[test]
fn appendix_c_all_33_htlc_transactions_byte_identical() {
    assert_eq!(assert_all_htlc_txs_byte_identical(&appendix_c()), 33);
}

#[test]
fn appendix_f_all_15_htlc_transactions_byte_identical() {
    assert_eq!(assert_all_htlc_txs_byte_identical(&appendix_f()), 15);
}

#[test]
fn signed_vector_transactions_pass_the_script_interpreter() {
    each_case(|app, case| {
        let funding = funding_txout(&app.fixture);
        let (built, tx) = signed_commitment(app, case);
        tx.verify(|op| (*op == app.fixture.outpoint).then(|| funding.clone()))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        for (i, expected) in case.htlc_txs.iter().enumerate() {
            let htlc_tx: Transaction = bitcoin::consensus::deserialize(&expected.tx).unwrap();
            let spent = htlc_tx.input[0].previous_output;
            assert_eq!(spent.txid, built.tx.compute_txid());
            htlc_tx
                .verify(|op| (op == &spent).then(|| built.tx.output[op.vout as usize].clone()))
                .unwrap_or_else(|e| panic!("{} htlc tx {i}: {e}", case.name));
        }
    });
}

fn parse_hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(text(v).trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn obscured_commitment_number_matches_vector_locktime_and_sequence() {
    each_case(|app, case| {
        let (f, derived) = (&app.fixture, &case.derived);
        assert_eq!(f.factor, parse_hex_u64(&derived["obscuring_factor"]));
        let (lock_time, sequence) = encode_commitment_number(f.commitment_number, f.factor);
        let locktime = u64::from(lock_time.to_consensus_u32());
        assert_eq!(locktime, parse_hex_u64(&derived["locktime"]));
        let sequence = u64::from(sequence.0);
        assert_eq!(sequence, parse_hex_u64(&derived["input_sequence"]));
    });
}

#[test]
fn decode_commitment_number_recovers_the_number_of_every_vector_commitment() {
    let mut decoded = 0;
    each_case(|app, case| {
        let tx: Transaction = bitcoin::consensus::deserialize(&case.commit_tx).unwrap();
        let n = decode_commitment_number(&tx, app.fixture.factor);
        assert_eq!(n, Some(app.fixture.commitment_number), "{}", case.name);
        decoded += 1;
    });
    assert_eq!(decoded, 25);
}

#[test]
fn encode_then_decode_round_trips_across_the_48_bit_range() {
    let template: Transaction =
        bitcoin::consensus::deserialize(&appendix_c().cases[0].commit_tx).unwrap();
    let factors = [0, 1, 0x2bb0_3852_1914, MAX_COMMITMENT_NUMBER, u64::MAX];
    let mut numbers = vec![0, 1, 42, 0xFF_FFFF, 0x100_0000];
    numbers.extend([MAX_COMMITMENT_NUMBER - 1, MAX_COMMITMENT_NUMBER]);
    for factor in factors {
        for &n in &numbers {
            let (lock_time, sequence) = encode_commitment_number(n, factor);
            let mut tx = template.clone();
            tx.lock_time = lock_time;
            tx.input[0].sequence = sequence;
            let decoded = decode_commitment_number(&tx, factor);
            assert_eq!(decoded, Some(n), "n {n} factor {factor}");
        }
    }
}

#[test]
fn decode_commitment_number_is_none_for_non_commitment_shapes() {
    let app = appendix_c();
    let factor = app.fixture.factor;
    let commitment: Transaction = bitcoin::consensus::deserialize(&app.cases[1].commit_tx).unwrap();
    assert!(decode_commitment_number(&commitment, factor).is_some());

    let mut no_inputs = commitment.clone();
    no_inputs.input.clear();
    let mut two_inputs = commitment.clone();
    two_inputs.input.push(TxIn::default());
    let mut zero_locktime = commitment.clone();
    zero_locktime.lock_time = bitcoin::absolute::LockTime::ZERO;
    let mut final_sequence = commitment.clone();
    final_sequence.input[0].sequence = Sequence::MAX;
    let mut swapped_prefixes = commitment.clone();
    swapped_prefixes.lock_time =
        bitcoin::absolute::LockTime::from_consensus(commitment.input[0].sequence.0);
    swapped_prefixes.input[0].sequence = Sequence(commitment.lock_time.to_consensus_u32());
    let htlc_tx: Transaction =
        bitcoin::consensus::deserialize(&app.cases[1].htlc_txs[0].tx).unwrap();
    let shapes = [no_inputs, two_inputs, zero_locktime, final_sequence];
    for tx in shapes.into_iter().chain([swapped_prefixes, htlc_tx]) {
        assert_eq!(decode_commitment_number(&tx, factor), None);
    }
}

#[test]
fn trimming_leaves_exactly_the_vector_htlc_outputs() {
    each_case(|app, case| {
        let s = spec(app, case);
        let (dust, feerate, ty) = (s.dust_limit_sat, s.feerate_per_kw, s.channel_type);
        let trimmed = |h: &&CommitmentHtlc| is_trimmed(h.offered, h.amount_msat, dust, feerate, ty);
        let untrimmed = s.htlcs.len() - s.htlcs.iter().filter(trimmed).count();
        assert_eq!(untrimmed, case.htlc_txs.len(), "{}", case.name);
        let built = build_commitment(&s).unwrap();
        assert_eq!(built.trimmed_htlcs.len(), s.htlcs.len() - untrimmed);
        let htlc_outputs = built.outputs.iter().filter(|o| is_htlc(o.kind)).count();
        assert_eq!(htlc_outputs, untrimmed, "{}", case.name);
    });
}

#[test]
fn base_and_actual_fees_match_the_vectors() {
    each_case(|app, case| {
        let spec = spec(app, case);
        let built = build_commitment(&spec).unwrap();
        let untrimmed = spec.htlcs.len() - built.trimmed_htlcs.len();
        let base = commitment_fee_sat(spec.feerate_per_kw, spec.channel_type, untrimmed);
        assert_eq!(base, built.base_fee_sat);
        if let Some(expected) = case.base_fee_sat {
            assert_eq!(base, expected, "base fee, {}", case.name);
        }
        if let Some(expected) = case.actual_fee_sat {
            assert_eq!(built.fee_sat, expected, "actual fee, {}", case.name);
        }
    });
}

fn derived_kind(f: &Fixture, o: &Value) -> OutputKind {
    match text(&o["kind"]) {
        "to_local" => OutputKind::ToLocal,
        "to_remote" => OutputKind::ToRemote,
        "to_local_anchor" => OutputKind::LocalAnchor,
        "to_remote_anchor" => OutputKind::RemoteAnchor,
        "htlc" => {
            let id = u(&o["htlc"]);
            if htlc(f, id).0.offered {
                OutputKind::OfferedHtlc { htlc_id: id }
            } else {
                OutputKind::ReceivedHtlc { htlc_id: id }
            }
        }
        other => panic!("unknown output kind {other}"),
    }
}

#[test]
fn output_kinds_values_and_scripts_match_the_vector_outputs() {
    each_case(|app, case| {
        let built = build_commitment(&spec(app, case)).unwrap();
        let expected = arr(&case.derived["outputs"]);
        assert_eq!(built.outputs.len(), expected.len(), "{}", case.name);
        for (i, (ours, theirs)) in built.outputs.iter().zip(expected).enumerate() {
            let what = format!("{} output {i}", case.name);
            assert_eq!(ours.index as usize, i);
            assert_eq!(u64::from(ours.index), u(&theirs["index"]));
            assert_eq!(ours.kind, derived_kind(&app.fixture, theirs), "{what}");
            assert_eq!(ours.value_sat, u(&theirs["amount_satoshis"]), "{what}");
            let spk = &built.tx.output[i].script_pubkey;
            assert_eq!(spk.to_bytes(), hex_bytes(&theirs["scriptpubkey"]), "{what}");
            match (&ours.witness_script, theirs.get("wscript")) {
                (Some(ws), Some(w)) => {
                    assert_eq!(ws.to_bytes(), hex_bytes(w), "{what}");
                    assert_eq!(&ws.to_p2wsh(), spk);
                }
                (None, None) => assert!(spk.is_p2wpkh()),
                _ => panic!("{what}: witness script presence differs"),
            }
        }
    });
}

#[test]
fn same_amount_and_preimage_orders_htlc_6_with_cltv_505_before_htlc_5() {
    for app in [appendix_c(), appendix_f()] {
        let case = app
            .cases
            .iter()
            .find(|c| c.name.contains("same amount and preimage"))
            .unwrap();
        let built = build_commitment(&spec(&app, case)).unwrap();
        let six = built.htlc_output_index(true, 6).unwrap();
        let five = built.htlc_output_index(true, 5).unwrap();
        assert!(six < five, "htlc 6 at {six}, htlc 5 at {five}");
        let (six_out, five_out) = (
            &built.tx.output[six as usize],
            &built.tx.output[five as usize],
        );
        assert_eq!(six_out, five_out, "same amount and script");
        assert_eq!(built.htlc_output_index(true, 6), Some(six));
        assert_eq!(built.htlc_output_index(false, 6), None);
        let order: Vec<u64> = htlc_txs_for_commitment(&built, &spec(&app, case))
            .into_iter()
            .map(|(htlc, _)| htlc.id)
            .collect();
        let expected: Vec<u64> = case.htlc_txs.iter().map(|h| h.htlc_id).collect();
        assert_eq!(order, expected);
    }
}

#[test]
fn non_funder_holder_keeps_its_whole_balance_and_the_peer_pays_fee_and_anchors() {
    for app in [appendix_c(), appendix_f()] {
        let case = &app.cases[2];
        let mut spec = spec(&app, case);
        spec.holder_is_funder = false;
        let built = build_commitment(&spec).unwrap();
        let value_of = |kind| {
            built
                .outputs
                .iter()
                .find(|o| o.kind == kind)
                .map(|o| o.value_sat)
        };
        assert_eq!(
            value_of(OutputKind::ToLocal),
            Some(spec.to_local_msat / 1000)
        );
        let anchors = u64::from(app.channel_type.has_anchors()) * 2 * ANCHOR_OUTPUT_SAT;
        let to_remote = spec.to_remote_msat / 1000 - built.base_fee_sat - anchors;
        assert_eq!(value_of(OutputKind::ToRemote), Some(to_remote));
    }
}

#[test]
fn balances_beyond_funding_duplicates_and_wide_numbers_are_errors() {
    let app = appendix_c();
    let good = spec(&app, &app.cases[1]);
    assert!(build_commitment(&good).is_ok());
    let error_of = |change: &dyn Fn(&mut CommitmentSpec)| {
        let mut spec = good.clone();
        change(&mut spec);
        let err = build_commitment(&spec).unwrap_err();
        assert!(err.to_string().chars().all(|c| !c.is_uppercase()), "{err}");
        err
    };
    let err = error_of(&|s| s.to_remote_msat += 1);
    assert!(matches!(err, CommitmentError::BalanceExceedsFunding { .. }));
    let err = error_of(&|s| s.htlcs[0].amount_msat = u64::MAX);
    assert_eq!(err, CommitmentError::BalanceOverflow);
    let err = error_of(&|s| s.htlcs.push(s.htlcs[0]));
    assert!(matches!(err, CommitmentError::DuplicateHtlc { .. }));
    let err = error_of(&|s| s.commitment_number = MAX_COMMITMENT_NUMBER + 1);
    assert!(matches!(
        err,
        CommitmentError::CommitmentNumberTooLarge { .. }
    ));

    // The same id in both directions is allowed: ids are per offerer.
    let mut both_ways = good.clone();
    let mut twin = both_ways.htlcs[0];
    (twin.offered, twin.amount_msat) = (!twin.offered, 0);
    both_ways.htlcs.push(twin);
    assert!(build_commitment(&both_ways).is_ok());
}

#[test]
fn funder_unable_to_pay_for_anchors_is_an_error_not_an_overspend() {
    let app = appendix_f();
    let mut spec = spec(&app, &app.cases[0]);
    spec.feerate_per_kw = 0;
    spec.to_local_msat = 100_000;
    spec.to_remote_msat = spec.funding_sat * 1000 - spec.to_local_msat;
    assert!(matches!(
        build_commitment(&spec),
        Err(CommitmentError::OutputsExceedFunding { .. })
    ));
}

#[test]
fn fee_and_trim_helpers_saturate_on_extreme_inputs() {
    let types = [
        ChannelType::StaticRemoteKey,
        ChannelType::AnchorsZeroFeeHtlc,
    ];
    for ty in types {
        let fee = commitment_fee_sat(u32::MAX, ty, usize::MAX);
        assert!(fee > 0);
        assert!(is_trimmed(true, u64::MAX, u64::MAX, u32::MAX, ty));
        assert!(!is_trimmed(false, u64::MAX, 0, u32::MAX, ty));
        assert!(is_trimmed(false, 0, 1, 0, ty));
        let expected_zero = ty.has_anchors();
        assert_eq!(htlc_timeout_fee_sat(u32::MAX, ty) == 0, expected_zero);
        assert_eq!(htlc_success_fee_sat(u32::MAX, ty) == 0, expected_zero);
    }
}

#[test]
fn htlc_tx_builders_reject_the_wrong_direction_and_an_unaffordable_fee() {
    let app = appendix_c();
    let f = &app.fixture;
    let txid = Txid::from_byte_array(sha256::Hash::hash(b"commitment").to_byte_array());
    let ty = ChannelType::StaticRemoteKey;
    let (offered, _) = f.htlcs.iter().find(|(h, _)| h.offered).unwrap();
    let (received, _) = f.htlcs.iter().find(|(h, _)| !h.offered).unwrap();
    let err = build_htlc_success(txid, 0, offered, &f.keys, 144, 0, ty).unwrap_err();
    assert!(matches!(err, HtlcTxError::WrongDirection { .. }));
    let err = build_htlc_timeout(txid, 0, received, &f.keys, 144, 0, ty).unwrap_err();
    assert!(matches!(err, HtlcTxError::WrongDirection { .. }));
    let err = build_htlc_timeout(txid, 0, offered, &f.keys, 144, u32::MAX, ty).unwrap_err();
    assert!(matches!(err, HtlcTxError::AmountBelowFee { .. }));
    assert!(err.to_string().chars().all(|c| !c.is_uppercase()));
    let anchors = ChannelType::AnchorsZeroFeeHtlc;
    let tx = build_htlc_timeout(txid, 3, offered, &f.keys, 144, u32::MAX, anchors).unwrap();
    assert_eq!(tx.output[0].value.to_sat(), offered.amount_msat / 1000);
    assert_eq!(tx.input[0].sequence, Sequence(1));
    assert_eq!(tx.input[0].previous_output, OutPoint { txid, vout: 3 });
}

#[test]
fn commitment_types_round_trip_through_serde() {
    let app = appendix_f();
    let spec = spec(&app, &app.cases[2]);
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(serde_json::from_str::<CommitmentSpec>(&json).unwrap(), spec);
    let built = build_commitment(&spec).unwrap();
    let json = serde_json::to_string(&built).unwrap();
    let back: BuiltCommitment = serde_json::from_str(&json).unwrap();
    assert_eq!(back, built);
}
