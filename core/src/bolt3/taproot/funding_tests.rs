//! The funding output and the commitments' MuSig2 key-path signatures of the extension's
//! vectors: the funding scriptPubKey byte for byte, then, for each of the 3 commitment
//! transactions, both parties' partial signatures re-made with BIP 327 (`musig2` crate) from the
//! vectors' secret nonces, the remote one equal to `remote_partial_sig`, their aggregate equal to
//! the commitment's witness and valid (BIP 340) under our funding output key.

use bitcoin::consensus::deserialize;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{schnorr, Message, PublicKey, SecretKey};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::Transaction;
use musig2::{
    aggregate_partial_signatures, sign_partial, AggNonce, KeyAggContext, LiftedSignature,
    PartialSignature, PubNonce, SecNonce,
};

use super::super::secp;
use super::funding::{combined_funding_key, funding_output};
use super::tests::{hex_of, param_key, vectors};

#[test]
fn funding_output_is_the_bip86_tweak_of_the_sorted_musig2_aggregate_byte_exact() {
    let v = vectors();
    let local = param_key(&v, "local_funding_pubkey");
    let remote = param_key(&v, "remote_funding_pubkey");
    let out = funding_output(&local, &remote).unwrap();
    let entry = &v["scripts"]["funding"];
    assert_eq!(out.script_pubkey().as_bytes(), hex_of(&entry["pkscript"]));
    assert_eq!(
        out.output_key().serialize(),
        hex_of(&entry["combined_key"])[..]
    );
    assert_eq!(out.merkle_root(), None, "BIP 86: no script path");
    let funding: Transaction = deserialize(&hex_of(&entry["funding_tx_hex"])).unwrap();
    assert_eq!(funding.output[0].script_pubkey, out.script_pubkey());
    // KeySort: either order gives the same key.
    assert_eq!(funding_output(&remote, &local).unwrap(), out);
    assert_eq!(
        combined_funding_key(&local, &remote).unwrap(),
        combined_funding_key(&remote, &local).unwrap()
    );
}

fn secret(v: &serde_json::Value, name: &str) -> SecretKey {
    SecretKey::from_slice(&hex_of(&v["params"]["keys"][name])).unwrap()
}

#[test]
fn commitment_musig2_signatures_are_remade_and_verify_under_our_funding_key() {
    let v = vectors();
    let local = param_key(&v, "local_funding_pubkey");
    let remote = param_key(&v, "remote_funding_pubkey");
    let out = funding_output(&local, &remote).unwrap();
    let mut sorted = [local, remote];
    sorted.sort_by_key(PublicKey::serialize);
    let context = KeyAggContext::new(sorted)
        .unwrap()
        .with_unspendable_taproot_tweak()
        .unwrap();
    let funding: Transaction =
        deserialize(&hex_of(&v["scripts"]["funding"]["funding_tx_hex"])).unwrap();
    let prevouts = [funding.output[0].clone()];
    for test in v["transactions"].as_array().unwrap() {
        let commitment: Transaction =
            deserialize(&hex_of(&test["expected_commitment_tx_hex"])).unwrap();
        assert_eq!(
            commitment.input[0].previous_output.txid,
            funding.compute_txid()
        );
        let sighash = SighashCache::new(&commitment)
            .taproot_key_spend_signature_hash(0, &Prevouts::All(&prevouts), TapSighashType::Default)
            .unwrap();
        let msg = sighash.to_byte_array();
        let nonce = |name: &str| PubNonce::from_bytes(&hex_of(&test[name])).unwrap();
        let agg_nonce = AggNonce::sum([nonce("local_nonce"), nonce("remote_nonce")]);
        let partial = |sec: &str, key: &str| -> PartialSignature {
            let secnonce = SecNonce::from_bytes(&hex_of(&test[sec])).unwrap();
            sign_partial(&context, secret(&v, key), secnonce, &agg_nonce, msg).unwrap()
        };
        let remote_partial = partial("remote_sec_nonce", "remote_funding_privkey");
        assert_eq!(
            remote_partial.serialize()[..],
            hex_of(&test["remote_partial_sig"])[..]
        );
        let local_partial = partial("local_sec_nonce", "local_funding_privkey");
        let sig: LiftedSignature = aggregate_partial_signatures(
            &context,
            &agg_nonce,
            [local_partial, remote_partial],
            msg,
        )
        .unwrap();
        let witness: Vec<&[u8]> = commitment.input[0].witness.iter().collect();
        assert_eq!(
            witness,
            vec![&sig.serialize()[..]],
            "64 bytes: SIGHASH_DEFAULT"
        );
        let schnorr_sig = schnorr::Signature::from_slice(witness[0]).unwrap();
        let digest = Message::from_digest(msg);
        let key = out.output_key().to_x_only_public_key();
        assert!(secp().verify_schnorr(&schnorr_sig, &digest, &key).is_ok());
    }
}
