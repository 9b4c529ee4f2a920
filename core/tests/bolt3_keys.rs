//! BOLT 3 key derivation against Appendix E and the keys of Appendix C.

mod common;

use bitcoin::secp256k1::{PublicKey, SecretKey};
use common::{hex32, pubkey, secret, vector};
use contractcourt_core::bolt3::keys::{
    derive_privkey, derive_pubkey, derive_revocation_privkey, derive_revocation_pubkey,
    per_commitment_point,
};
use contractcourt_core::bolt3::{secp, ChannelBasepoints, CommitmentKeys};

fn public_of(secret: &SecretKey) -> PublicKey {
    PublicKey::from_secret_key(secp(), secret)
}

#[test]
fn appendix_e_all_4_key_derivations_match() {
    let v = vector("bolt03-key-derivation.json");
    let inputs = &v["inputs"];
    let base_secret = SecretKey::from_slice(&hex32(&inputs["base_secret"])).unwrap();
    let commitment_secret_bytes = hex32(&inputs["per_commitment_secret"]);
    let commitment_secret = SecretKey::from_slice(&commitment_secret_bytes).unwrap();
    let base_point = pubkey(&inputs["base_point"]);
    let point = pubkey(&inputs["per_commitment_point"]);

    // The inputs are consistent with the derivations used below.
    assert_eq!(public_of(&base_secret), base_point);
    assert_eq!(
        per_commitment_point(&commitment_secret_bytes).unwrap(),
        point
    );

    let tests = v["tests"].as_array().unwrap();
    let mut checked = 0;
    for t in tests {
        let expected = t["expected"].as_object().unwrap();
        assert_eq!(expected.len(), 1, "{}", t["name"]);
        let (kind, value) = expected.iter().next().unwrap();
        match kind.as_str() {
            "localpubkey" => {
                assert_eq!(derive_pubkey(&base_point, &point).unwrap(), pubkey(value));
            }
            "localprivkey" => {
                let derived = derive_privkey(&base_secret, &point).unwrap();
                assert_eq!(derived.secret_bytes(), hex32(value));
            }
            "revocationpubkey" => {
                let derived = derive_revocation_pubkey(&base_point, &point).unwrap();
                assert_eq!(derived, pubkey(value));
            }
            "revocationprivkey" => {
                let derived = derive_revocation_privkey(&base_secret, &commitment_secret).unwrap();
                assert_eq!(derived.secret_bytes(), hex32(value));
            }
            other => panic!("unknown Appendix E expectation {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
}

/// The Appendix C inputs: holder ("local") and counterparty ("remote") basepoints and secrets.
struct AppendixC {
    params: serde_json::Value,
    point: PublicKey,
    commitment_secret: SecretKey,
    local_payment_basepoint_secret: SecretKey,
    local_delayed_payment_basepoint_secret: SecretKey,
    remote_payment_basepoint_secret: SecretKey,
    remote_revocation_basepoint_secret: SecretKey,
    remote_revocation_basepoint: PublicKey,
    local_delayed_payment_basepoint: PublicKey,
}

fn appendix_c() -> AppendixC {
    let v = vector("bolt03-commitment-static-remotekey.json");
    let internal = &v["internal_params_from_html_comment"];
    AppendixC {
        params: v["params"].clone(),
        point: pubkey(&internal["local_per_commitment_point"]),
        commitment_secret: secret(&internal["x_local_per_commitment_secret"]),
        local_payment_basepoint_secret: secret(&internal["local_payment_basepoint_secret"]),
        local_delayed_payment_basepoint_secret: secret(
            &internal["local_delayed_payment_basepoint_secret"],
        ),
        remote_payment_basepoint_secret: secret(&internal["remote_payment_basepoint_secret"]),
        remote_revocation_basepoint_secret: secret(&internal["remote_revocation_basepoint_secret"]),
        remote_revocation_basepoint: pubkey(&internal["remote_revocation_basepoint"]),
        local_delayed_payment_basepoint: pubkey(&internal["local_delayed_payment_basepoint"]),
    }
}

#[test]
fn appendix_c_keys_rederive_from_internal_secrets_and_basepoints() {
    let c = appendix_c();
    let p = &c.params;

    // The per-commitment point is the point of the per-commitment secret.
    assert_eq!(
        per_commitment_point(&c.commitment_secret.secret_bytes()).unwrap(),
        c.point
    );
    // The basepoints are the points of their secrets (HTLC basepoints equal payment basepoints).
    assert_eq!(
        public_of(&c.local_payment_basepoint_secret),
        pubkey(&p["local_htlc_basepoint"])
    );
    assert_eq!(
        public_of(&c.remote_payment_basepoint_secret),
        pubkey(&p["remote_htlc_basepoint"])
    );
    assert_eq!(
        public_of(&c.local_delayed_payment_basepoint_secret),
        c.local_delayed_payment_basepoint
    );
    assert_eq!(
        public_of(&c.remote_revocation_basepoint_secret),
        c.remote_revocation_basepoint
    );

    // Public keys.
    assert_eq!(
        derive_pubkey(&pubkey(&p["local_htlc_basepoint"]), &c.point).unwrap(),
        pubkey(&p["local_htlcpubkey"])
    );
    assert_eq!(
        derive_pubkey(&pubkey(&p["remote_htlc_basepoint"]), &c.point).unwrap(),
        pubkey(&p["remote_htlcpubkey"])
    );
    assert_eq!(
        derive_pubkey(&c.local_delayed_payment_basepoint, &c.point).unwrap(),
        pubkey(&p["local_delayedpubkey"])
    );
    assert_eq!(
        derive_revocation_pubkey(&c.remote_revocation_basepoint, &c.point).unwrap(),
        pubkey(&p["local_revocation_pubkey"])
    );

    // Private keys: local_privkey is the secret of local_htlcpubkey, remote_privkey the secret of
    // remote_htlcpubkey.
    let local_privkey = derive_privkey(&c.local_payment_basepoint_secret, &c.point).unwrap();
    assert_eq!(local_privkey, secret(&p["local_privkey"]));
    assert_eq!(public_of(&local_privkey), pubkey(&p["local_htlcpubkey"]));

    let v = vector("bolt03-commitment-static-remotekey.json");
    let internal = &v["internal_params_from_html_comment"];
    let delayed_privkey =
        derive_privkey(&c.local_delayed_payment_basepoint_secret, &c.point).unwrap();
    assert_eq!(delayed_privkey, secret(&internal["local_delayed_privkey"]));
    assert_eq!(
        public_of(&delayed_privkey),
        pubkey(&p["local_delayedpubkey"])
    );

    let remote_privkey = derive_privkey(&c.remote_payment_basepoint_secret, &c.point).unwrap();
    assert_eq!(remote_privkey, secret(&internal["remote_privkey"]));
    assert_eq!(public_of(&remote_privkey), pubkey(&p["remote_htlcpubkey"]));

    // The remote party, once given the per-commitment secret, can spend with the revocation key.
    let revocation_privkey =
        derive_revocation_privkey(&c.remote_revocation_basepoint_secret, &c.commitment_secret)
            .unwrap();
    assert_eq!(
        public_of(&revocation_privkey),
        pubkey(&p["local_revocation_pubkey"])
    );
}

#[test]
fn commitment_keys_derive_reproduces_appendix_c_keys() {
    let c = appendix_c();
    let p = &c.params;
    // Appendix C does not give the local revocation basepoint nor the remote delayed-payment
    // basepoint: neither enters the keys of the local commitment, so any point will do.
    let unused = pubkey(&p["local_funding_pubkey"]);
    let holder = ChannelBasepoints {
        funding_pubkey: pubkey(&p["local_funding_pubkey"]),
        revocation_basepoint: unused,
        payment_basepoint: pubkey(&p["local_payment_basepoint"]),
        delayed_payment_basepoint: c.local_delayed_payment_basepoint,
        htlc_basepoint: pubkey(&p["local_htlc_basepoint"]),
    };
    let counterparty = ChannelBasepoints {
        funding_pubkey: pubkey(&p["remote_funding_pubkey"]),
        revocation_basepoint: c.remote_revocation_basepoint,
        payment_basepoint: pubkey(&p["remote_payment_basepoint"]),
        delayed_payment_basepoint: unused,
        htlc_basepoint: pubkey(&p["remote_htlc_basepoint"]),
    };
    let keys = CommitmentKeys::derive(&c.point, &holder, &counterparty).unwrap();
    assert_eq!(keys.per_commitment_point, c.point);
    assert_eq!(
        keys.revocation_pubkey,
        pubkey(&p["local_revocation_pubkey"])
    );
    assert_eq!(keys.local_delayed_pubkey, pubkey(&p["local_delayedpubkey"]));
    assert_eq!(keys.local_htlc_pubkey, pubkey(&p["local_htlcpubkey"]));
    assert_eq!(keys.remote_htlc_pubkey, pubkey(&p["remote_htlcpubkey"]));
    // Static remote key: remotepubkey is the peer's untweaked payment basepoint.
    assert_eq!(
        keys.remote_payment_pubkey,
        pubkey(&p["remote_payment_basepoint"])
    );

    // The unused basepoints really are unused: changing them changes nothing.
    let other = pubkey(&p["remote_funding_pubkey"]);
    let holder2 = ChannelBasepoints {
        revocation_basepoint: other,
        ..holder
    };
    let counterparty2 = ChannelBasepoints {
        delayed_payment_basepoint: other,
        ..counterparty
    };
    assert_eq!(
        CommitmentKeys::derive(&c.point, &holder2, &counterparty2).unwrap(),
        keys
    );

    // Swapping the roles gives the counterparty's commitment keys, which differ.
    let swapped = CommitmentKeys::derive(&c.point, &counterparty, &holder).unwrap();
    assert_ne!(swapped.local_delayed_pubkey, keys.local_delayed_pubkey);
    assert_eq!(swapped.local_htlc_pubkey, keys.remote_htlc_pubkey);
    assert_eq!(swapped.remote_htlc_pubkey, keys.local_htlc_pubkey);
    assert_eq!(
        swapped.remote_payment_pubkey,
        pubkey(&p["local_payment_basepoint"])
    );
}
