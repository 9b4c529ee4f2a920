//! Bitcoin Core's script interpreter (the kernel, every consensus flag including TAPROOT, all
//! spent outputs given) on the simple taproot channel vectors (`vectors/bolt-simple-taproot.json`,
//! issue 21): each second-level HTLC transaction is valid when the output it spends is the HTLC
//! output `contractcourt_core::bolt3::taproot` builds, and invalid when that output belongs to
//! another HTLC or with a flipped signature bit; each commitment is valid spending the MuSig2
//! funding output it builds, at the funding amount only. (`bitcoinconsensus` in core's `testkit`
//! cannot verify taproot spends.)

use bitcoin::consensus::deserialize;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::PublicKey;
use bitcoin::{Amount, ScriptBuf, Transaction, TxOut};
use contractcourt_core::bolt3::taproot::{accepted_htlc, offered_htlc};
use contractcourt_core::bolt3::PaymentHash;
use serde_json::Value;

use super::script::verify_scripts;
use super::MempoolReject;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../vectors/bolt-simple-taproot.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn key(v: &Value, name: &str) -> PublicKey {
    PublicKey::from_slice(&hex_of(&v["params"]["keys"][name])).unwrap()
}

/// The HTLC outputs of one transaction vector as the holder builds them, in vector order.
fn htlc_outputs(v: &Value, test: &Value) -> Vec<TxOut> {
    let revocation = key(v, "derived_revocation_pubkey");
    let local = key(v, "derived_local_htlc_pubkey");
    let remote = key(v, "derived_remote_htlc_pubkey");
    let list = test["htlcs"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|h| {
            let hash = PaymentHash(sha256::Hash::hash(&hex_of(&h["preimage"])).to_byte_array());
            let script_pubkey: ScriptBuf = if h["incoming"].as_bool().unwrap() {
                let expiry = h["expiry"].as_u64().unwrap() as u32;
                let out = accepted_htlc::accepted_htlc(&revocation, &local, &remote, &hash, expiry);
                out.unwrap().output.script_pubkey()
            } else {
                let out = offered_htlc::offered_htlc(&revocation, &local, &remote, &hash);
                out.unwrap().output.script_pubkey()
            };
            let value = Amount::from_sat(h["amount_msat"].as_u64().unwrap() / 1000);
            TxOut {
                value,
                script_pubkey,
            }
        })
        .collect()
}

#[test]
fn bitcoin_core_accepts_each_second_level_spend_of_our_htlc_outputs_and_refuses_others_and_bad_sigs(
) {
    let v = vectors();
    let mut checked = 0;
    for test in v["transactions"].as_array().unwrap() {
        let commitment: Transaction =
            deserialize(&hex_of(&test["expected_commitment_tx_hex"])).unwrap();
        let ours = htlc_outputs(&v, test);
        for desc in test["htlc_descs"].as_array().cloned().unwrap_or_default() {
            let spend: Transaction = deserialize(&hex_of(&desc["resolution_tx_hex"])).unwrap();
            let vout = spend.input[0].previous_output.vout as usize;
            let spent = &commitment.output[vout];
            let prevout = ours
                .iter()
                .find(|o| o.script_pubkey == spent.script_pubkey)
                .expect("the spent commitment output is one we build");
            assert_eq!(prevout, spent);
            assert_eq!(
                verify_scripts(&spend, std::slice::from_ref(prevout)),
                Ok(())
            );
            for other in ours
                .iter()
                .filter(|o| o.script_pubkey != prevout.script_pubkey)
            {
                let wrong = TxOut {
                    value: prevout.value,
                    script_pubkey: other.script_pubkey.clone(),
                };
                let result = verify_scripts(&spend, &[wrong]);
                assert!(
                    matches!(result, Err(MempoolReject::ScriptFailure { input: 0, .. })),
                    "{result:?}"
                );
            }
            let mut tampered = spend.clone();
            let mut items: Vec<Vec<u8>> = tampered.input[0]
                .witness
                .iter()
                .map(<[u8]>::to_vec)
                .collect();
            items[1][0] ^= 1; // the holder's signature
            tampered.input[0].witness = bitcoin::Witness::from_slice(&items);
            let result = verify_scripts(&tampered, std::slice::from_ref(prevout));
            assert!(
                matches!(result, Err(MempoolReject::ScriptFailure { input: 0, .. })),
                "{result:?}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 7);
}

#[test]
fn bitcoin_core_accepts_each_vector_commitment_spending_our_funding_output_at_its_amount_only() {
    let v = vectors();
    let funding_output = contractcourt_core::bolt3::taproot::funding::funding_output(
        &key(&v, "local_funding_pubkey"),
        &key(&v, "remote_funding_pubkey"),
    )
    .unwrap();
    let amount = Amount::from_sat(v["params"]["funding_amount_satoshis"].as_u64().unwrap());
    let prevout = TxOut {
        value: amount,
        script_pubkey: funding_output.script_pubkey(),
    };
    for test in v["transactions"].as_array().unwrap() {
        let commitment: Transaction =
            deserialize(&hex_of(&test["expected_commitment_tx_hex"])).unwrap();
        assert_eq!(
            verify_scripts(&commitment, std::slice::from_ref(&prevout)),
            Ok(())
        );
        // A taproot signature commits to every spent amount.
        let wrong = TxOut {
            value: amount - Amount::from_sat(1),
            script_pubkey: prevout.script_pubkey.clone(),
        };
        let result = verify_scripts(&commitment, &[wrong]);
        assert!(
            matches!(result, Err(MempoolReject::ScriptFailure { input: 0, .. })),
            "{result:?}"
        );
    }
}
