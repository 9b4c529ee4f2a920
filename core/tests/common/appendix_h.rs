//! BOLT 3 Appendix H (`zero_fee_commitments`, BOLT PR 1228): the vector file
//! `vectors/bolt03-zero-fee-commitments.json` read into a channel fixture (every key derived
//! from the secrets and points it gives) and its commitment cases.

use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::{Amount, OutPoint, Transaction, TxOut, Txid};
use contractcourt_core::bolt3::commitment::{obscuring_factor, CommitmentHtlc};
use contractcourt_core::bolt3::keys::{derive_privkey, derive_pubkey, derive_revocation_pubkey};
use contractcourt_core::bolt3::{scripts, secp, CommitmentKeys, PaymentHash, PaymentPreimage};
use serde_json::Value;

use super::{hex32, hex_bytes, pubkey, vector};

/// The vector file.
pub const FILE: &str = "bolt03-zero-fee-commitments.json";

/// The channel every case shares. Local is the opener (its payment basepoint comes first in
/// the obscuring factor) and the holder of every commitment.
pub struct Fixture {
    pub keys: CommitmentKeys,
    pub outpoint: OutPoint,
    pub funding_sat: u64,
    pub commitment_number: u64,
    pub to_self_delay: u16,
    pub factor: u64,
    pub local_funding_pubkey: PublicKey,
    pub remote_funding_pubkey: PublicKey,
    pub local_funding_secret: SecretKey,
    pub remote_funding_secret: SecretKey,
    /// `local_htlcpubkey`'s secret, derived from the basepoint secret and the point.
    pub local_htlc_secret: SecretKey,
    /// `remote_htlcpubkey`'s secret.
    pub remote_htlc_secret: SecretKey,
    /// `remotepubkey`'s secret (the remote payment basepoint secret: static remote key).
    pub remote_payment_secret: SecretKey,
    /// payment hash → preimage.
    pub preimages: Vec<(PaymentHash, PaymentPreimage)>,
}

/// One commitment of the vectors with its HTLC transactions.
pub struct Case {
    pub name: String,
    pub dust_limit_sat: u64,
    pub to_local_msat: u64,
    pub to_remote_msat: u64,
    /// Received (`incoming_htlcs`, `offered: false`) then offered (`outgoing_htlcs`).
    pub htlcs: Vec<CommitmentHtlc>,
    pub commit_tx: Transaction,
    pub success_txs: Vec<Transaction>,
    pub timeout_txs: Vec<Transaction>,
}

fn secret32(v: &Value) -> SecretKey {
    SecretKey::from_slice(&hex32(v)).expect("valid secret key")
}

fn num(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected an integer, got {v}"))
}

fn tx_of(v: &Value) -> Transaction {
    bitcoin::consensus::deserialize(&hex_bytes(v)).expect("valid transaction")
}

fn point_of(secret: &SecretKey) -> PublicKey {
    PublicKey::from_secret_key(secp(), secret)
}

/// The fixture of the vector file.
pub fn fixture() -> Fixture {
    let v = vector(FILE);
    let point = pubkey(&v["per_commitment_point"]);
    let local_payment = point_of(&secret32(&v["local_payment_basepoint_secret"]));
    let remote_payment_secret = secret32(&v["remote_payment_basepoint_secret"]);
    let remote_payment = point_of(&remote_payment_secret);
    let local_delayed = point_of(&secret32(&v["local_delayed_payment_basepoint_secret"]));
    let local_htlc_base = secret32(&v["local_htlc_basepoint_secret"]);
    let remote_htlc_base = secret32(&v["remote_htlc_basepoint_secret"]);
    let local_htlc_secret = derive_privkey(&local_htlc_base, &point).unwrap();
    let remote_htlc_secret = derive_privkey(&remote_htlc_base, &point).unwrap();
    let keys = CommitmentKeys {
        per_commitment_point: point,
        revocation_pubkey: derive_revocation_pubkey(&pubkey(&v["revocation_basepoint"]), &point)
            .unwrap(),
        local_delayed_pubkey: derive_pubkey(&local_delayed, &point).unwrap(),
        local_htlc_pubkey: point_of(&local_htlc_secret),
        remote_htlc_pubkey: point_of(&remote_htlc_secret),
        remote_payment_pubkey: remote_payment,
    };
    let local_funding_secret = secret32(&v["local_funding_priv"]);
    let remote_funding_secret = secret32(&v["remote_funding_priv"]);
    let txid: Txid = v["funding_txid"].as_str().unwrap().parse().unwrap();
    let preimages = v["payment_hash_to_preimage"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(h, p)| {
            let hash = PaymentHash(hex32(&Value::String(h.clone())));
            (hash, PaymentPreimage(hex32(p)))
        })
        .collect();
    Fixture {
        keys,
        outpoint: OutPoint {
            txid,
            vout: num(&v["funding_index"]).try_into().unwrap(),
        },
        funding_sat: num(&v["funding_amount_satoshis"]),
        commitment_number: num(&v["commitment_number"]),
        to_self_delay: num(&v["to_self_delay"]).try_into().unwrap(),
        factor: obscuring_factor(&local_payment, &remote_payment),
        local_funding_pubkey: point_of(&local_funding_secret),
        remote_funding_pubkey: point_of(&remote_funding_secret),
        local_funding_secret,
        remote_funding_secret,
        local_htlc_secret,
        remote_htlc_secret,
        remote_payment_secret,
        preimages,
    }
}

impl Fixture {
    /// The preimage of `hash` from the file's `payment_hash_to_preimage`.
    pub fn preimage(&self, hash: &PaymentHash) -> PaymentPreimage {
        let found = self.preimages.iter().find(|(h, _)| h == hash);
        found.unwrap_or_else(|| panic!("no preimage for {hash}")).1
    }

    /// The funding output the commitments spend.
    pub fn funding_txout(&self) -> TxOut {
        TxOut {
            value: Amount::from_sat(self.funding_sat),
            script_pubkey: scripts::funding_script(
                &self.local_funding_pubkey,
                &self.remote_funding_pubkey,
            )
            .to_p2wsh(),
        }
    }
}

fn htlcs_of(t: &Value, key: &str, offered: bool) -> Vec<CommitmentHtlc> {
    let Some(list) = t.get(key) else {
        return Vec::new();
    };
    list.as_array()
        .unwrap()
        .iter()
        .map(|h| CommitmentHtlc {
            id: num(&h["id"]),
            offered,
            amount_msat: num(&h["amount_msat"]),
            payment_hash: PaymentHash(hex32(&h["payment_hash"])),
            cltv_expiry: num(&h["cltv_expiry"]).try_into().unwrap(),
        })
        .collect()
}

fn txs_of(t: &Value, key: &str) -> Vec<Transaction> {
    t.get(key)
        .map(|l| l.as_array().unwrap().iter().map(tx_of).collect())
        .unwrap_or_default()
}

/// Every commitment case of the file, in file order.
pub fn cases() -> Vec<Case> {
    let v = vector(FILE);
    v["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let mut htlcs = htlcs_of(t, "incoming_htlcs", false);
            htlcs.extend(htlcs_of(t, "outgoing_htlcs", true));
            Case {
                name: t["name"].as_str().unwrap().to_owned(),
                dust_limit_sat: num(&t["dust_limit_satoshis"]),
                to_local_msat: num(&t["to_local_msat"]),
                to_remote_msat: num(&t["to_remote_msat"]),
                htlcs,
                commit_tx: tx_of(&t["signed_commit_tx"]),
                success_txs: txs_of(t, "signed_htlc_success_txs"),
                timeout_txs: txs_of(t, "signed_htlc_timeout_txs"),
            }
        })
        .collect()
}
