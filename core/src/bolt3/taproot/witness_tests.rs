//! The second-level transactions of the extension's vectors, spend by spend: each signature in
//! their script-path witnesses is re-made here, byte for byte, with BIP 340 and zero auxiliary
//! randomness (as the "HTLC Resolution Transactions" vector notes say) from the vectors' own
//! basepoint secrets, over the BIP 341 script-path sighash of *our* leaf — the counterparty's under
//! `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY`, the holder's under `SIGHASH_DEFAULT`.
//!
//! `witness::sign_script_path` is checked to make the same signatures.
//!
//! This checks signatures, sighash types, leaf and control block; it is not Bitcoin Core's
//! script interpreter (the `bitcoinconsensus` in this tree cannot verify taproot; DESIGN.md).

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, Message, SecretKey};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::Sequence;

use super::super::{keys, secp};
use super::leaf_hash;
use super::tests::{hex_of, htlcs_of, param_key, tx, vectors};
use super::witness as w;

fn htlc_keypair(v: &serde_json::Value, basepoint_secret: &str) -> Keypair {
    let secret = SecretKey::from_slice(&hex_of(&v["params"]["keys"][basepoint_secret])).unwrap();
    let point = param_key(v, "local_per_commit_point");
    let derived = keys::derive_privkey(&secret, &point).unwrap();
    Keypair::from_secret_key(secp(), &derived)
}

#[test]
fn second_level_signatures_are_remade_over_our_leaf_with_the_extensions_sighash_types() {
    let v = vectors();
    let local = htlc_keypair(&v, "local_htlc_basepoint_secret");
    let remote = htlc_keypair(&v, "remote_htlc_basepoint_secret");
    assert_eq!(
        local.public_key(),
        param_key(&v, "derived_local_htlc_pubkey")
    );
    assert_eq!(
        remote.public_key(),
        param_key(&v, "derived_remote_htlc_pubkey")
    );
    let mut spends = 0;
    for test in v["transactions"].as_array().unwrap() {
        let commitment = tx(&test["expected_commitment_tx_hex"]);
        let htlcs = htlcs_of(&v, test);
        for desc in test["htlc_descs"].as_array().cloned().unwrap_or_default() {
            let resolution = tx(&desc["resolution_tx_hex"]);
            let input = &resolution.input[0];
            let spent = commitment.output[input.previous_output.vout as usize].clone();
            let htlc = htlcs
                .iter()
                .find(|h| h.output.script_pubkey() == spent.script_pubkey)
                .expect("the spent output is one of our HTLC outputs");
            // Version 2, nSequence 1; locktime 0 (success) or cltv_expiry (timeout).
            assert_eq!(resolution.version, bitcoin::transaction::Version::TWO);
            assert_eq!(input.sequence, Sequence(1));
            let locktime = if htlc.incoming { 0 } else { htlc.expiry };
            assert_eq!(resolution.lock_time, LockTime::from_consensus(locktime));

            let witness: Vec<&[u8]> = input.witness.iter().collect();
            let n_args = if htlc.incoming { 3 } else { 2 };
            assert_eq!(
                witness.len(),
                n_args + 2,
                "sigs, [preimage], leaf, control block"
            );
            if htlc.incoming {
                assert_eq!(witness[2], htlc.preimage.as_slice());
            }
            let (remote_sig, local_sig) = (witness[0], witness[1]);
            assert_eq!(
                remote_sig[..64],
                hex_of(&desc["remote_partial_sig_hex"])[..]
            );

            let prevouts = [spent];
            let mut cache = SighashCache::new(&resolution);
            let leaf = leaf_hash(&htlc.leaf_for_claim);
            let mut sign = |ty: TapSighashType, keypair: &Keypair| {
                let sighash = cache
                    .taproot_script_spend_signature_hash(0, &Prevouts::All(&prevouts), leaf, ty)
                    .unwrap();
                let msg = Message::from_digest(sighash.to_byte_array());
                secp().sign_schnorr_with_aux_rand(&msg, keypair, &[0u8; 32])
            };
            let remote_ours = sign(TapSighashType::SinglePlusAnyoneCanPay, &remote);
            assert_eq!(
                remote_sig,
                [remote_ours.as_ref().as_slice(), &[0x83]].concat()
            );
            let local_ours = sign(TapSighashType::Default, &local);
            assert_eq!(
                local_sig,
                local_ours.as_ref().as_slice(),
                "64 bytes: SIGHASH_DEFAULT"
            );
            // The witness module's signing helper makes the same bytes, sighash byte included.
            let helper = |ty, keypair: &Keypair| {
                let secret = keypair.secret_key();
                let leaf = &htlc.leaf_for_claim;
                w::sign_script_path(&resolution, 0, &prevouts, leaf, ty, &secret, &[0u8; 32])
                    .unwrap()
                    .serialize()
            };
            let pair = TapSighashType::SinglePlusAnyoneCanPay;
            assert_eq!(&*helper(pair, &remote), remote_sig);
            assert_eq!(&*helper(TapSighashType::Default, &local), local_sig);
            spends += 1;
        }
    }
    assert_eq!(spends, 7);
}
