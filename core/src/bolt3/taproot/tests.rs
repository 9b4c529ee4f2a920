//! The extension's test vectors (`vectors/bolt-simple-taproot.json`, lightning/bolts PR 995 at
//! `13b211034972f4df37ea88e7d012e569a5aa1dcb`) reproduced byte for byte: the "scripts" section
//! (leaf scripts, leaf hashes, tapscript root, internal key, output key with its parity,
//! scriptPubKey) and, from the "transactions" section, every commitment output and every
//! second-level transaction's revealed leaf, control block and output.

use bitcoin::consensus::deserialize;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Parity, PublicKey};
use bitcoin::{Amount, ScriptBuf, Transaction};
use serde_json::Value;

use super::super::{keys, secp, PaymentHash};
use super::accepted_htlc::accepted_htlc;
use super::anchor::{local_anchor, remote_anchor};
use super::offered_htlc::offered_htlc;
use super::second_level::second_level_htlc;
use super::to_local::to_local;
use super::to_remote::to_remote;
use super::{leaf_hash, simple_taproot_nums, TapOutput, TaprootScriptError};

pub(super) const CSV_DELAY: u16 = 144;

pub(crate) fn vectors() -> Value {
    let text = include_str!("../../../../vectors/bolt-simple-taproot.json");
    serde_json::from_str(text).expect("vector json")
}

pub(super) fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn key(v: &Value) -> PublicKey {
    PublicKey::from_slice(&hex_of(v)).expect("public key")
}

pub(super) fn param_key(v: &Value, name: &str) -> PublicKey {
    key(&v["params"]["keys"][name])
}

/// Checks one "scripts" entry: each named leaf, its TapLeaf hash, the root, the internal key,
/// the output key with its parity byte and the scriptPubKey.
fn check_entry(entry: &Value, leaves: &[(&str, &ScriptBuf)], output: &TapOutput) {
    for (name, script) in leaves {
        assert_eq!(
            script.as_bytes(),
            hex_of(&entry["scripts"][name]),
            "leaf {name}"
        );
        assert_eq!(
            leaf_hash(script).to_string(),
            entry["leaf_hashes"][name].as_str().unwrap(),
            "leaf hash {name}"
        );
    }
    let root = output
        .merkle_root()
        .expect("every output here has a script tree");
    assert_eq!(root.to_string(), entry["tapscript_root"].as_str().unwrap());
    let internal = hex_of(&entry["internal_key"]);
    assert_eq!(
        output.internal_key().serialize(),
        internal[1..],
        "internal key"
    );
    let expected_output = hex_of(&entry["output_key"]);
    let parity = match output.output_key_parity() {
        Parity::Even => 0x02,
        Parity::Odd => 0x03,
    };
    assert_eq!(parity, expected_output[0], "output key parity");
    assert_eq!(
        output.output_key().serialize(),
        expected_output[1..],
        "output key"
    );
    assert_eq!(
        output.script_pubkey().as_bytes(),
        hex_of(&entry["pkscript"])
    );
}

fn payment_hash(preimage_hex: &Value) -> PaymentHash {
    PaymentHash(sha256::Hash::hash(&hex_of(preimage_hex)).to_byte_array())
}

#[test]
fn nums_point_is_the_vectors_and_the_specs_simple_taproot_nums() {
    let v = vectors();
    assert_eq!(simple_taproot_nums(), key(&v["params"]["nums_point"]));
}

#[test]
fn vector_keys_are_bolt3_derivations_of_the_basepoints() {
    let v = vectors();
    let secret: [u8; 32] = hex_of(&v["params"]["keys"]["local_per_commit_secret"])
        .try_into()
        .unwrap();
    let point = keys::per_commitment_point(&secret).unwrap();
    assert_eq!(point, param_key(&v, "local_per_commit_point"));
    let derive = |base: &str| keys::derive_pubkey(&param_key(&v, base), &point).unwrap();
    assert_eq!(
        derive("local_delayed_payment_basepoint"),
        param_key(&v, "derived_local_delayed_pubkey")
    );
    assert_eq!(
        derive("local_htlc_basepoint"),
        param_key(&v, "derived_local_htlc_pubkey")
    );
    assert_eq!(
        derive("remote_htlc_basepoint"),
        param_key(&v, "derived_remote_htlc_pubkey")
    );
    let revocation =
        keys::derive_revocation_pubkey(&param_key(&v, "remote_revocation_basepoint"), &point);
    assert_eq!(
        revocation.unwrap(),
        param_key(&v, "derived_revocation_pubkey")
    );
}

#[test]
fn to_local_is_nums_over_delay_and_revoke_leaves_byte_exact() {
    let v = vectors();
    let out = to_local(
        &param_key(&v, "derived_local_delayed_pubkey"),
        &param_key(&v, "derived_revocation_pubkey"),
        CSV_DELAY,
    )
    .unwrap();
    let leaves = [
        ("settle", &out.delay_script),
        ("revocation", &out.revoke_script),
    ];
    check_entry(&v["scripts"]["to_local"], &leaves, &out.output);
}

#[test]
fn to_remote_is_nums_over_one_block_csv_leaf_byte_exact() {
    let v = vectors();
    let out = to_remote(&param_key(&v, "derived_remote_payment_pubkey")).unwrap();
    check_entry(
        &v["scripts"]["to_remote"],
        &[("settle", &out.script)],
        &out.output,
    );
}

#[test]
fn anchors_are_keyed_by_local_delayed_and_remote_payment_keys_byte_exact() {
    let v = vectors();
    let local = local_anchor(&param_key(&v, "derived_local_delayed_pubkey")).unwrap();
    check_entry(
        &v["scripts"]["local_anchor"],
        &[("sweep", &local.script)],
        &local.output,
    );
    let remote = remote_anchor(&param_key(&v, "derived_remote_payment_pubkey")).unwrap();
    check_entry(
        &v["scripts"]["remote_anchor"],
        &[("sweep", &remote.script)],
        &remote.output,
    );
}

#[test]
fn offered_htlc_is_revocation_over_timeout_and_success_leaves_byte_exact() {
    let v = vectors();
    let hash = payment_hash(&v["transactions"][1]["htlcs"][0]["preimage"]);
    let out = offered_htlc(
        &param_key(&v, "derived_revocation_pubkey"),
        &param_key(&v, "derived_local_htlc_pubkey"),
        &param_key(&v, "derived_remote_htlc_pubkey"),
        &hash,
    )
    .unwrap();
    let leaves = [
        ("timeout", &out.timeout_script),
        ("success", &out.success_script),
    ];
    for entry in ["offered_htlc_local_commit", "offered_htlc_remote_commit"] {
        check_entry(&v["scripts"][entry], &leaves, &out.output);
    }
}

/// The "scripts" entries for accepted HTLCs put `derived_remote_htlc_pubkey` where the section
/// writes `local_htlcpubkey` and `derived_local_htlc_pubkey` as `remote_htlcpubkey` (the
/// receiver's view); the transaction vectors use the keys the other way round (see
/// `every_commitment_output_of_the_transaction_vectors_is_built_byte_exact`). Both agree with
/// the section's leaf templates.
#[test]
fn accepted_htlc_is_revocation_over_timeout_and_success_leaves_byte_exact() {
    let v = vectors();
    let htlc = &v["transactions"][1]["htlcs"][0];
    let out = accepted_htlc(
        &param_key(&v, "derived_revocation_pubkey"),
        &param_key(&v, "derived_remote_htlc_pubkey"),
        &param_key(&v, "derived_local_htlc_pubkey"),
        &payment_hash(&htlc["preimage"]),
        htlc["expiry"].as_u64().unwrap() as u32,
    )
    .unwrap();
    let leaves = [
        ("timeout", &out.timeout_script),
        ("success", &out.success_script),
    ];
    for entry in ["accepted_htlc_local_commit", "accepted_htlc_remote_commit"] {
        check_entry(&v["scripts"][entry], &leaves, &out.output);
    }
}

#[test]
fn second_level_htlc_output_is_revocation_over_delay_leaf_byte_exact() {
    let v = vectors();
    let out = second_level_htlc(
        &param_key(&v, "derived_revocation_pubkey"),
        &param_key(&v, "derived_local_delayed_pubkey"),
        CSV_DELAY,
    )
    .unwrap();
    for entry in ["second_level_htlc_success", "second_level_htlc_timeout"] {
        check_entry(
            &v["scripts"][entry],
            &[("success", &out.delay_script)],
            &out.output,
        );
    }
}

/// One HTLC of a transaction vector, as the holder (local) sees it.
pub(super) struct Htlc {
    pub(super) incoming: bool,
    pub(super) amount: Amount,
    pub(super) expiry: u32,
    pub(super) preimage: Vec<u8>,
    pub(super) leaf_for_claim: ScriptBuf,
    pub(super) output: TapOutput,
}

pub(super) fn htlcs_of(v: &Value, test: &Value) -> Vec<Htlc> {
    let revocation = param_key(v, "derived_revocation_pubkey");
    let local = param_key(v, "derived_local_htlc_pubkey");
    let remote = param_key(v, "derived_remote_htlc_pubkey");
    let list = test["htlcs"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|h| {
            let hash = payment_hash(&h["preimage"]);
            let amount = Amount::from_sat(h["amount_msat"].as_u64().unwrap() / 1000);
            let incoming = h["incoming"].as_bool().unwrap();
            let expiry = h["expiry"].as_u64().unwrap() as u32;
            let (leaf_for_claim, output) = if incoming {
                let out = accepted_htlc(&revocation, &local, &remote, &hash, expiry).unwrap();
                (out.success_script, out.output)
            } else {
                let out = offered_htlc(&revocation, &local, &remote, &hash).unwrap();
                (out.timeout_script, out.output)
            };
            Htlc {
                incoming,
                amount,
                expiry,
                preimage: hex_of(&h["preimage"]),
                leaf_for_claim,
                output,
            }
        })
        .collect()
}

pub(crate) fn tx(v: &Value) -> Transaction {
    deserialize(&hex_of(v)).expect("transaction")
}

fn has_output(tx: &Transaction, script: &ScriptBuf, amount: Amount) -> bool {
    tx.output
        .iter()
        .any(|o| &o.script_pubkey == script && o.value == amount)
}

#[test]
fn every_commitment_output_of_the_transaction_vectors_is_built_byte_exact() {
    let v = vectors();
    let delayed = param_key(&v, "derived_local_delayed_pubkey");
    let revocation = param_key(&v, "derived_revocation_pubkey");
    let remote = param_key(&v, "derived_remote_payment_pubkey");
    let fixed = [
        to_local(&delayed, &revocation, CSV_DELAY).unwrap().output,
        to_remote(&remote).unwrap().output,
        local_anchor(&delayed).unwrap().output,
        remote_anchor(&remote).unwrap().output,
    ];
    for test in v["transactions"].as_array().unwrap() {
        let commitment = tx(&test["expected_commitment_tx_hex"]);
        let dust = test["dust_limit_satoshis"]
            .as_u64()
            .or(v["params"]["dust_limit_satoshis"].as_u64())
            .unwrap();
        let htlcs = htlcs_of(&v, test);
        let kept: Vec<&Htlc> = htlcs.iter().filter(|h| h.amount.to_sat() >= dust).collect();
        assert_eq!(
            commitment.output.len(),
            fixed.len() + kept.len(),
            "{}",
            test["name"]
        );
        for out in &fixed {
            let spk = out.script_pubkey();
            assert!(commitment.output.iter().any(|o| o.script_pubkey == spk));
        }
        for htlc in kept {
            assert!(has_output(
                &commitment,
                &htlc.output.script_pubkey(),
                htlc.amount
            ));
        }
    }
}

#[test]
fn second_level_witnesses_reveal_our_leaf_and_control_block_and_pay_our_output() {
    let v = vectors();
    let second = second_level_htlc(
        &param_key(&v, "derived_revocation_pubkey"),
        &param_key(&v, "derived_local_delayed_pubkey"),
        CSV_DELAY,
    )
    .unwrap();
    let mut checked = (0, 0);
    for test in v["transactions"].as_array().unwrap() {
        let commitment = tx(&test["expected_commitment_tx_hex"]);
        let htlcs = htlcs_of(&v, test);
        for desc in test["htlc_descs"].as_array().cloned().unwrap_or_default() {
            let resolution = tx(&desc["resolution_tx_hex"]);
            let input = &resolution.input[0];
            let spent = &commitment.output[input.previous_output.vout as usize].script_pubkey;
            let htlc = htlcs
                .iter()
                .find(|h| &h.output.script_pubkey() == spent)
                .expect("the spent output is one of our HTLC outputs");
            let witness: Vec<&[u8]> = input.witness.iter().collect();
            let (leaf, control) = (witness[witness.len() - 2], witness[witness.len() - 1]);
            assert_eq!(leaf, htlc.leaf_for_claim.as_bytes());
            let ours = htlc.output.control_block(&htlc.leaf_for_claim).unwrap();
            assert_eq!(control, ours.serialize().as_slice());
            assert!(ours.verify_taproot_commitment(
                secp(),
                htlc.output.output_key().to_x_only_public_key(),
                &htlc.leaf_for_claim
            ));
            assert_eq!(
                resolution.output[0].script_pubkey,
                second.output.script_pubkey()
            );
            assert_eq!(resolution.output[0].value, htlc.amount);
            if htlc.incoming {
                checked.0 += 1;
            } else {
                checked.1 += 1;
            }
        }
    }
    // 3 + 1 HTLC-success and 2 + 1 HTLC-timeout transactions in the two HTLC cases.
    assert_eq!(checked, (4, 3));
}

#[test]
fn a_control_block_for_a_leaf_outside_the_tree_is_refused() {
    let v = vectors();
    let delayed = param_key(&v, "derived_local_delayed_pubkey");
    let remote = to_remote(&param_key(&v, "derived_remote_payment_pubkey")).unwrap();
    let foreign = to_local(&delayed, &delayed, CSV_DELAY)
        .unwrap()
        .delay_script;
    assert_eq!(
        remote.output.control_block(&foreign),
        Err(TaprootScriptError::LeafNotInTree {
            leaf_hash: leaf_hash(&foreign)
        })
    );
    assert!(remote.output.control_block(&remote.script).is_ok());
}

#[test]
fn a_tree_without_leaves_is_refused() {
    let v = vectors();
    let key = param_key(&v, "derived_revocation_pubkey");
    assert_eq!(
        TapOutput::new(&key, &[]),
        Err(TaprootScriptError::EmptyTree)
    );
}
