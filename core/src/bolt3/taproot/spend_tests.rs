//! Witness builders, sighash helpers, weights and classification of the simple taproot spends.
//! Bitcoin Core's kernel runs the same fixture spends in `contractcourt-sync`
//! (`chain::embedded::taproot_vectors`).

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Message, PublicKey};
use bitcoin::sighash::TapSighashType;
use bitcoin::taproot::Signature;
use bitcoin::Witness;

use super::super::{secp, PaymentPreimage};
use super::classify::{classify_witness, TaprootSpendKind, WitnessClassError};
use super::fixture::{secrets, spend, SpendParams, SpendPath, ALL_PATHS, PREIMAGE};
use super::weights::*;
use super::witness::{self as w, TaprootSpendError};
use super::{offered_htlc, to_local};

fn items(witness: &Witness) -> Vec<Vec<u8>> {
    witness.iter().map(<[u8]>::to_vec).collect()
}

/// The largest parameters: a 4-byte `to_self_delay` push, a 5-byte `cltv_expiry` push, 65-byte
/// signatures.
fn max_params() -> SpendParams {
    SpendParams {
        sighash_type: TapSighashType::All,
        to_self_delay: u16::MAX,
        cltv_expiry: 499_999_999,
        ..SpendParams::default()
    }
}

#[test]
fn weight_constants_are_the_hand_derived_sizes() {
    // Derivations in weights.rs: 1 (count) + per item 1 (length) + bytes.
    assert_eq!(TO_LOCAL_DELAY_WITNESS_WEIGHT, 1 + 66 + 40 + 66);
    assert_eq!(TO_LOCAL_REVOKE_WITNESS_WEIGHT, 202);
    assert_eq!(TO_REMOTE_WITNESS_WEIGHT, 138);
    assert_eq!(KEY_PATH_WITNESS_WEIGHT, 67);
    assert_eq!(ANCHOR_SWEEP_WITNESS_WEIGHT, 38);
    assert_eq!(OFFERED_TIMEOUT_WITNESS_WEIGHT, 268);
    assert_eq!(OFFERED_SUCCESS_WITNESS_WEIGHT, 230);
    assert_eq!(ACCEPTED_SUCCESS_WITNESS_WEIGHT, 328);
    assert_eq!(ACCEPTED_TIMEOUT_WITNESS_WEIGHT, 177);
    assert_eq!(SECOND_LEVEL_DELAY_WITNESS_WEIGHT, 141);
}

#[test]
fn each_path_at_its_largest_parameters_has_exactly_its_max_witness_weight() {
    for path in ALL_PATHS {
        let s = spend(path, &max_params()).unwrap();
        assert_eq!(s.tx.input[0].witness.size(), s.max_weight, "{path:?}");
    }
}

#[test]
fn each_path_with_default_sighash_and_typical_delay_and_expiry_stays_within_its_max_weight() {
    for path in ALL_PATHS {
        let s = spend(path, &SpendParams::default()).unwrap();
        let size = s.tx.input[0].witness.size();
        assert!(size <= s.max_weight, "{path:?}: {size} > {}", s.max_weight);
        // Our SIGHASH_DEFAULT signature is a byte shorter than the maximum; the anchor sweep
        // has no signature and no number.
        if path != SpendPath::AnchorSweep {
            assert!(size < s.max_weight, "{path:?}");
        }
    }
}

#[test]
fn script_path_witnesses_end_with_leaf_and_control_block_and_signatures_are_64_or_65_bytes() {
    for (ty, len) in [(TapSighashType::Default, 64), (TapSighashType::All, 65)] {
        let params = SpendParams {
            sighash_type: ty,
            ..SpendParams::default()
        };
        let s = spend(SpendPath::ToLocalDelay, &params).unwrap();
        let it = items(&s.tx.input[0].witness);
        assert_eq!(it.len(), 3);
        assert_eq!(it[0].len(), len);
        let (delayed, revocation) = (pubkey(0), pubkey(1));
        let out = to_local::to_local(&delayed, &revocation, 144).unwrap();
        assert_eq!(it[1], out.delay_script.as_bytes());
        assert_eq!(
            it[2],
            out.output
                .control_block(&out.delay_script)
                .unwrap()
                .serialize()
        );
        assert_eq!(it[2].len(), 65, "two-leaf tree: depth 1");
    }
    let s = spend(SpendPath::AnchorSweep, &SpendParams::default()).unwrap();
    let it = items(&s.tx.input[0].witness);
    assert_eq!(it[0], [0x60, 0xb2], "OP_16 OP_CSV, no argument");
    assert_eq!(it[1].len(), 33, "one-leaf tree: depth 0");
}

fn pubkey(i: usize) -> PublicKey {
    PublicKey::from_secret_key(secp(), &secrets()[i])
}

#[test]
fn signatures_verify_under_the_leaf_keys_and_the_tweaked_output_key() {
    let s = spend(SpendPath::OfferedTimeout, &SpendParams::default()).unwrap();
    let it = items(&s.tx.input[0].witness);
    let leaf = bitcoin::Script::from_bytes(&it[2]);
    let prevouts = [s.prevout.clone()];
    for (sig, key) in [(&it[0], pubkey(3)), (&it[1], pubkey(2))] {
        let sig = Signature::from_slice(sig).unwrap();
        let hash = w::script_path_sighash(&s.tx, 0, &prevouts, leaf, sig.sighash_type).unwrap();
        let msg = Message::from_digest(hash.to_byte_array());
        let x = key.x_only_public_key().0;
        assert_eq!(secp().verify_schnorr(&sig.signature, &msg, &x), Ok(()));
    }
    assert_eq!(
        it[0][64], 0x83,
        "the counterparty signs SINGLE|ANYONECANPAY"
    );
    let s = spend(SpendPath::OfferedRevoke, &SpendParams::default()).unwrap();
    let sig = Signature::from_slice(&items(&s.tx.input[0].witness)[0]).unwrap();
    let hash =
        w::key_path_sighash(&s.tx, 0, std::slice::from_ref(&s.prevout), sig.sighash_type).unwrap();
    let msg = Message::from_digest(hash.to_byte_array());
    let output_key = bitcoin::XOnlyPublicKey::from_slice(&s.prevout.script_pubkey.as_bytes()[2..]);
    assert_eq!(
        secp().verify_schnorr(&sig.signature, &msg, &output_key.unwrap()),
        Ok(())
    );
    // The untweaked revocation key does not verify a key-path signature.
    let untweaked = pubkey(1).x_only_public_key().0;
    assert!(secp()
        .verify_schnorr(&sig.signature, &msg, &untweaked)
        .is_err());
}

#[test]
fn a_sighash_for_a_missing_input_or_prevout_is_an_error_not_a_panic() {
    let s = spend(SpendPath::ToRemote, &SpendParams::default()).unwrap();
    let leaf = bitcoin::ScriptBuf::new();
    let r = w::script_path_sighash(
        &s.tx,
        1,
        std::slice::from_ref(&s.prevout),
        &leaf,
        TapSighashType::All,
    );
    let out_of_range = TaprootSpendError::InputOutOfRange {
        input: 1,
        inputs: 1,
    };
    assert_eq!(r, Err(out_of_range));
    let r = w::key_path_sighash(&s.tx, 0, &[], TapSighashType::Default);
    let missing = TaprootSpendError::PrevoutsMismatch {
        prevouts: 0,
        inputs: 1,
    };
    assert_eq!(r, Err(missing));
}

#[test]
fn a_success_witness_with_a_wrong_preimage_is_refused() {
    let (local, remote) = (pubkey(2), pubkey(3));
    let hash = PaymentPreimage(PREIMAGE).payment_hash();
    let out = offered_htlc::offered_htlc(&pubkey(1), &local, &remote, &hash).unwrap();
    let sig = Signature::from_slice(&[1u8; 64]).unwrap();
    let wrong = PaymentPreimage([0x43; 32]);
    assert_eq!(
        w::offered_success(&out, &sig, &wrong),
        Err(TaprootSpendError::PreimageMismatch)
    );
    assert!(w::offered_success(&out, &sig, &PaymentPreimage(PREIMAGE)).is_ok());
}

#[test]
fn every_built_witness_is_classified_as_its_path_with_the_preimage_of_success_spends() {
    for params in [SpendParams::default(), max_params()] {
        for path in ALL_PATHS {
            let s = spend(path, &params).unwrap();
            assert_eq!(
                classify_witness(&s.tx.input[0].witness),
                Ok(s.kind.clone()),
                "{path:?}"
            );
        }
    }
    let s = spend(SpendPath::AcceptedSuccess, &SpendParams::default()).unwrap();
    let expected = TaprootSpendKind::AcceptedSuccess {
        preimage: PaymentPreimage(PREIMAGE),
    };
    assert_eq!(classify_witness(&s.tx.input[0].witness), Ok(expected));
}

fn with_items(base: &Witness, edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Witness {
    let mut it = items(base);
    edit(&mut it);
    Witness::from_slice(&it)
}

#[test]
fn an_annex_is_ignored_and_the_spend_under_it_still_classified() {
    let s = spend(SpendPath::OfferedSuccess, &SpendParams::default()).unwrap();
    let annexed = with_items(&s.tx.input[0].witness, |it| it.push(vec![0x50, 1, 2]));
    assert_eq!(classify_witness(&annexed), Ok(s.kind));
    let key = spend(SpendPath::OfferedRevoke, &SpendParams::default()).unwrap();
    let annexed = with_items(&key.tx.input[0].witness, |it| it.push(vec![0x50]));
    assert_eq!(classify_witness(&annexed), Ok(TaprootSpendKind::KeyPath));
    // An annex alone is one item, so not an annex (BIP 341: at least two items).
    let lone = Witness::from_slice(&[vec![0x50]]);
    assert_eq!(
        classify_witness(&lone),
        Err(WitnessClassError::NotAKeyPathSignature)
    );
}

#[test]
fn malformed_witnesses_get_typed_errors() {
    use WitnessClassError as E;
    let base = spend(SpendPath::AcceptedSuccess, &SpendParams::default()).unwrap();
    let base = &base.tx.input[0].witness;
    assert_eq!(classify_witness(&Witness::new()), Err(E::Empty));
    for sig in [
        vec![0; 63],
        vec![0; 66],
        [vec![0; 64], vec![0x00]].concat(),
        [vec![0; 64], vec![0x84]].concat(),
    ] {
        assert_eq!(
            classify_witness(&Witness::from_slice(&[sig])),
            Err(E::NotAKeyPathSignature)
        );
    }
    let cb = |it: &mut Vec<Vec<u8>>| it.last_mut().unwrap().truncate(40);
    assert_eq!(
        classify_witness(&with_items(base, cb)),
        Err(E::BadControlBlock)
    );
    let leaf_version = |it: &mut Vec<Vec<u8>>| it.last_mut().unwrap()[0] ^= 0x02;
    assert_eq!(
        classify_witness(&with_items(base, leaf_version)),
        Err(E::BadControlBlock)
    );
    let n = items(base).len();
    let leaf = |it: &mut Vec<Vec<u8>>| it[n - 2].push(0xac);
    assert_eq!(
        classify_witness(&with_items(base, leaf)),
        Err(E::UnknownLeaf)
    );
    let extra = |it: &mut Vec<Vec<u8>>| it.insert(0, vec![]);
    let wrong_count = E::WrongArgumentCount {
        expected: 3,
        got: 4,
    };
    assert_eq!(classify_witness(&with_items(base, extra)), Err(wrong_count));
    let preimage = |it: &mut Vec<Vec<u8>>| it[2][0] ^= 1;
    assert_eq!(
        classify_witness(&with_items(base, preimage)),
        Err(E::PreimageMismatch)
    );
    let short = |it: &mut Vec<Vec<u8>>| it[2].truncate(31);
    assert_eq!(
        classify_witness(&with_items(base, short)),
        Err(E::PreimageMismatch)
    );
    // The revoke leaf under a one-leaf (depth 0) control block is no output of ours.
    let revoke = spend(SpendPath::ToLocalRevoke, &SpendParams::default()).unwrap();
    let shallow = |it: &mut Vec<Vec<u8>>| it[2].truncate(33);
    let r = classify_witness(&with_items(&revoke.tx.input[0].witness, shallow));
    assert_eq!(r, Err(E::LeafInWrongTree));
}

#[test]
fn the_vectors_second_level_witnesses_are_classified_with_their_preimages() {
    use super::tests::{htlcs_of, tx, vectors};
    let v = vectors();
    let mut checked = 0;
    for test in v["transactions"].as_array().unwrap() {
        let commitment = tx(&test["expected_commitment_tx_hex"]);
        let htlcs = htlcs_of(&v, test);
        for desc in test["htlc_descs"].as_array().cloned().unwrap_or_default() {
            let resolution = tx(&desc["resolution_tx_hex"]);
            let vout = resolution.input[0].previous_output.vout as usize;
            let spent = &commitment.output[vout].script_pubkey;
            let htlc = htlcs
                .iter()
                .find(|h| h.output.script_pubkey() == *spent)
                .unwrap();
            let kind = classify_witness(&resolution.input[0].witness).unwrap();
            if htlc.incoming {
                let preimage = PaymentPreimage(htlc.preimage.clone().try_into().unwrap());
                assert_eq!(kind, TaprootSpendKind::AcceptedSuccess { preimage });
            } else {
                assert_eq!(kind, TaprootSpendKind::OfferedTimeout);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 7);
}

proptest::proptest! {
    #[test]
    fn random_witnesses_never_panic(items in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..120), 0..7)) {
        let _ = classify_witness(&Witness::from_slice(&items));
    }

    #[test]
    fn mutated_real_witnesses_never_panic(path in 0..ALL_PATHS.len(), item in 0usize..6, at in 0usize..130, byte in proptest::num::u8::ANY, cut in proptest::option::of(0usize..130)) {
        let s = spend(ALL_PATHS[path], &SpendParams::default()).unwrap();
        let mut it = items(&s.tx.input[0].witness);
        let i = item % it.len();
        if let Some(b) = it[i].get_mut(at) { *b = byte; }
        if let Some(c) = cut { it[i].truncate(c); }
        let _ = classify_witness(&Witness::from_slice(&it));
    }
}
