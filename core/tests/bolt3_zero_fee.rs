//! BOLT 3 Appendix H (`zero_fee_commitments`, BOLT PR 1228): every commitment and HTLC
//! transaction of `vectors/bolt03-zero-fee-commitments.json` rebuilt, signed with RFC 6979 and
//! compared byte for byte, then run through Bitcoin Core's script interpreter. Every expected
//! value comes from the vector file.

mod common;

use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, Transaction};
use common::appendix_h::{cases, fixture, Case, Fixture};
use contractcourt_core::bolt3::commitment::{
    build_commitment, commitment_weight, funding_witness, sign_commitment, BuiltCommitment,
    CommitmentError, CommitmentSpec, OutputKind, SHARED_ANCHOR_MAX_SAT,
};
use contractcourt_core::bolt3::htlc_tx::{
    htlc_tx_witness, htlc_txs_for_commitment, htlc_witness_script, remote_htlc_sighash_type,
};
use contractcourt_core::bolt3::scripts::{self, PAY_TO_ANCHOR_SCRIPT};
use contractcourt_core::bolt3::{sign, ChannelType};
use contractcourt_core::testkit::verify_with_bitcoin_core;

const ZFC: ChannelType = ChannelType::ZeroFeeCommitments;

fn spec(f: &Fixture, case: &Case) -> CommitmentSpec {
    CommitmentSpec {
        channel_type: ZFC,
        funding_outpoint: f.outpoint,
        funding_sat: f.funding_sat,
        commitment_number: f.commitment_number,
        obscuring_factor: f.factor,
        keys: f.keys,
        local_funding_pubkey: f.local_funding_pubkey,
        remote_funding_pubkey: f.remote_funding_pubkey,
        to_self_delay: f.to_self_delay,
        dust_limit_sat: case.dust_limit_sat,
        feerate_per_kw: 0,
        to_local_msat: case.to_local_msat,
        to_remote_msat: case.to_remote_msat,
        holder_is_funder: true,
        htlcs: case.htlcs.clone(),
    }
}

/// Build and sign (both funding keys) the commitment of `case`.
fn signed_commitment(f: &Fixture, case: &Case) -> (BuiltCommitment, Transaction) {
    let built = build_commitment(&spec(f, case)).unwrap();
    let funding_script = scripts::funding_script(&f.local_funding_pubkey, &f.remote_funding_pubkey);
    let sign = |key| sign_commitment(&built.tx, &funding_script, f.funding_sat, key).unwrap();
    let mut tx = built.tx.clone();
    tx.input[0].witness = funding_witness(
        &f.local_funding_pubkey,
        &sign(&f.local_funding_secret),
        &f.remote_funding_pubkey,
        &sign(&f.remote_funding_secret),
    );
    (built, tx)
}

fn hex_of(tx: &Transaction) -> String {
    hex::encode(bitcoin::consensus::serialize(tx))
}

/// Every HTLC transaction of `case` rebuilt and signed: (HTLC-success, HTLC-timeout), each in
/// commitment output order.
fn signed_htlc_txs(f: &Fixture, case: &Case) -> (Vec<Transaction>, Vec<Transaction>) {
    let spec = spec(f, case);
    let built = build_commitment(&spec).unwrap();
    let (mut success, mut timeout) = (Vec::new(), Vec::new());
    for (htlc, tx) in htlc_txs_for_commitment(&built, &spec) {
        let wscript = htlc_witness_script(&htlc, &f.keys, ZFC);
        let value = Amount::from_sat(htlc.amount_msat / 1000);
        let sign_with = |secret, ty| sign::sign_p2wsh(&tx, 0, &wscript, value, ty, secret).unwrap();
        let local = sign_with(&f.local_htlc_secret, EcdsaSighashType::All);
        let remote = sign_with(&f.remote_htlc_secret, remote_htlc_sighash_type(ZFC));
        let preimage = (!htlc.offered).then(|| f.preimage(&htlc.payment_hash));
        let mut signed = tx.clone();
        signed.input[0].witness = htlc_tx_witness(&remote, &local, preimage.as_ref(), &wscript);
        if htlc.offered {
            timeout.push(signed);
        } else {
            success.push(signed);
        }
    }
    (success, timeout)
}

#[test]
fn appendix_h_all_11_zero_fee_commitments_byte_identical() {
    let f = fixture();
    let all = cases();
    assert_eq!(all.len(), 11);
    for case in &all {
        let (_, tx) = signed_commitment(&f, case);
        assert_eq!(hex_of(&tx), hex_of(&case.commit_tx), "{}", case.name);
    }
}

#[test]
fn appendix_h_all_16_zero_fee_htlc_transactions_byte_identical() {
    let f = fixture();
    let mut checked = 0;
    for case in &cases() {
        let (success, timeout) = signed_htlc_txs(&f, case);
        for (ours, theirs, kind) in [
            (&success, &case.success_txs, "success"),
            (&timeout, &case.timeout_txs, "timeout"),
        ] {
            assert_eq!(ours.len(), theirs.len(), "{kind} count, {}", case.name);
            for (a, b) in ours.iter().zip(theirs) {
                assert_eq!(hex_of(a), hex_of(b), "htlc-{kind}, {}", case.name);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 16);
}

#[test]
fn appendix_h_transactions_pass_bitcoin_cores_script_interpreter() {
    let f = fixture();
    let funding = f.funding_txout();
    for case in &cases() {
        verify_with_bitcoin_core(&case.commit_tx, std::slice::from_ref(&funding))
            .unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
        for htlc_tx in case.success_txs.iter().chain(&case.timeout_txs) {
            let spent = htlc_tx.input[0].previous_output;
            assert_eq!(spent.txid, case.commit_tx.compute_txid());
            let prevout = case.commit_tx.output[spent.vout as usize].clone();
            verify_with_bitcoin_core(htlc_tx, &[prevout])
                .unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
        }
    }
}

#[test]
fn shared_anchor_is_the_one_pay_to_anchor_output_and_fee_is_what_it_could_not_take() {
    let f = fixture();
    for case in &cases() {
        let (built, _) = signed_commitment(&f, case);
        let vector_anchors: Vec<_> = (0u32..)
            .zip(&case.commit_tx.output)
            .filter(|(_, o)| o.script_pubkey.as_bytes() == PAY_TO_ANCHOR_SCRIPT)
            .collect();
        let [(index, anchor)] = vector_anchors.as_slice() else {
            panic!("{}: one P2A output expected", case.name);
        };
        let ours = built
            .outputs
            .iter()
            .find(|o| o.kind == OutputKind::SharedAnchor);
        let ours = ours.unwrap_or_else(|| panic!("{}: no shared anchor", case.name));
        assert_eq!(
            (ours.index, ours.value_sat),
            (*index, anchor.value.to_sat())
        );
        assert!(anchor.value.to_sat() <= SHARED_ANCHOR_MAX_SAT);
        let outputs: u64 = case.commit_tx.output.iter().map(|o| o.value.to_sat()).sum();
        assert_eq!(built.fee_sat, f.funding_sat - outputs, "{}", case.name);
        assert_eq!(built.base_fee_sat, 0);
        // The fee is non-zero only once the anchor is full.
        if built.fee_sat > 0 {
            assert_eq!(
                anchor.value.to_sat(),
                SHARED_ANCHOR_MAX_SAT,
                "{}",
                case.name
            );
        }
    }
}

#[test]
fn zero_fee_commitments_and_htlc_txs_are_version_3_with_sequence_0() {
    for case in &cases() {
        assert_eq!(case.commit_tx.version.0, 3);
        for htlc_tx in case.success_txs.iter().chain(&case.timeout_txs) {
            assert_eq!(htlc_tx.version.0, 3);
            assert_eq!(htlc_tx.input[0].sequence.0, 0);
            // Zero fee: the output carries the whole HTLC output.
            let spent = htlc_tx.input[0].previous_output;
            let value = case.commit_tx.output[spent.vout as usize].value;
            assert_eq!(htlc_tx.output[0].value, value);
        }
    }
    assert_eq!(ZFC.tx_version().0, 3);
    assert_eq!(ChannelType::AnchorsZeroFeeHtlc.tx_version().0, 2);
}

#[test]
fn expected_weight_bounds_every_vector_commitment() {
    let mut tight = 0;
    for case in &cases() {
        let htlc_outputs = case.success_txs.len() + case.timeout_txs.len();
        let expected = commitment_weight(ZFC, htlc_outputs);
        let actual = case.commit_tx.weight().to_wu();
        // Expected weights assume both balances present and 73-byte signatures; the vectors'
        // are 71 or 72 bytes, and a trimmed balance makes the commitment lighter still.
        assert!(expected >= actual, "{}: {expected} < {actual}", case.name);
        let both_balances = case.commit_tx.output.len() == htlc_outputs + 3;
        if both_balances {
            assert!(
                expected - actual <= 4,
                "{}: {expected} vs {actual}",
                case.name
            );
            tight += 1;
        }
    }
    assert!(tight > 0);
}

#[test]
fn a_zero_fee_commitment_with_a_feerate_is_refused() {
    let f = fixture();
    let case = &cases()[0];
    let mut s = spec(&f, case);
    s.feerate_per_kw = 253;
    assert_eq!(
        build_commitment(&s),
        Err(CommitmentError::NonZeroFeerate {
            feerate_per_kw: 253
        })
    );
}
