//! Decode a BOLT 3 commitment transaction and explain every output.
//!
//! Reads an Appendix C test vector (by default the one with five untrimmed HTLCs), rebuilds the
//! commitment from the appendix's keys, balances and HTLCs with `contractcourt_core::bolt3`,
//! checks it is byte-identical to the spec's transaction, and prints each output: its value,
//! what it is, and how each party can spend it.
//!
//! ```sh
//! cargo run -p contractcourt-core --example decode_commitment [-- "<vector name>"]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use bitcoin::consensus::encode::deserialize_hex;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{OutPoint, Transaction, Txid};
use contractcourt_core::bolt3::commitment::{
    build_commitment, decode_commitment_number, obscuring_factor, CommitmentHtlc, CommitmentSpec,
    OutputKind,
};
use contractcourt_core::bolt3::{ChannelType, CommitmentKeys, PaymentPreimage};
use serde_json::Value;

const DEFAULT_CASE: &str = "commitment tx with all five HTLCs untrimmed (minimum feerate)";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn hex_str<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v[key]
        .as_str()
        .ok_or_else(|| format!("vector field {key} missing"))
}

fn pubkey(v: &Value, key: &str) -> Result<PublicKey, String> {
    let bytes = hex::decode(hex_str(v, key)?).map_err(|e| format!("{key}: {e}"))?;
    PublicKey::from_slice(&bytes).map_err(|e| format!("{key}: {e}"))
}

fn number(v: &Value, key: &str) -> Result<u64, String> {
    v[key]
        .as_u64()
        .ok_or_else(|| format!("vector field {key} missing"))
}

fn run() -> Result<(), String> {
    let wanted = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_CASE.to_string());
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/bolt03-commitment-static-remotekey.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let params = &v["params"];
    let internal = &v["internal_params_from_html_comment"];
    let case = v["tests"]
        .as_array()
        .and_then(|t| t.iter().find(|c| c["name"] == wanted.as_str()))
        .ok_or_else(|| format!("no Appendix C vector named {wanted:?}"))?;

    let tx: Transaction =
        deserialize_hex(hex_str(case, "commit_tx")?).map_err(|e| e.to_string())?;
    let factor = obscuring_factor(
        &pubkey(params, "local_payment_basepoint")?,
        &pubkey(params, "remote_payment_basepoint")?,
    );
    let keys = CommitmentKeys {
        per_commitment_point: pubkey(internal, "local_per_commitment_point")?,
        revocation_pubkey: pubkey(params, "local_revocation_pubkey")?,
        local_delayed_pubkey: pubkey(params, "local_delayedpubkey")?,
        local_htlc_pubkey: pubkey(params, "local_htlcpubkey")?,
        remote_htlc_pubkey: pubkey(params, "remote_htlcpubkey")?,
        remote_payment_pubkey: pubkey(params, "remote_payment_basepoint")?,
    };
    let all_htlcs = v["htlcs"].as_array().ok_or("vector htlcs missing")?;
    let mut htlcs = Vec::new();
    for i in case["htlcs_used"].as_array().ok_or("htlcs_used missing")? {
        let h = &all_htlcs[i.as_u64().unwrap_or(0) as usize];
        let preimage = hex::decode(hex_str(h, "payment_preimage")?).map_err(|e| e.to_string())?;
        let preimage = PaymentPreimage(
            preimage
                .try_into()
                .map_err(|_| "preimage is not 32 bytes")?,
        );
        htlcs.push(CommitmentHtlc {
            id: number(h, "id")?,
            offered: h["direction"] == "local->remote",
            amount_msat: number(h, "amount_msat")?,
            payment_hash: preimage.payment_hash(),
            cltv_expiry: number(h, "expiry")? as u32,
        });
    }
    let mut txid = hex::decode(hex_str(params, "funding_tx_id")?).map_err(|e| e.to_string())?;
    txid.reverse();
    let txid = Txid::from_slice(&txid).map_err(|e| e.to_string())?;
    let to_self_delay = number(params, "local_delay")? as u16;
    let spec = CommitmentSpec {
        channel_type: ChannelType::StaticRemoteKey,
        funding_outpoint: OutPoint {
            txid,
            vout: number(params, "funding_output_index")? as u32,
        },
        funding_sat: number(params, "funding_amount_satoshi")?,
        commitment_number: number(params, "commitment_number")?,
        obscuring_factor: factor,
        keys,
        local_funding_pubkey: pubkey(params, "local_funding_pubkey")?,
        remote_funding_pubkey: pubkey(params, "remote_funding_pubkey")?,
        to_self_delay,
        dust_limit_sat: number(params, "local_dust_limit_satoshi")?,
        feerate_per_kw: number(case, "local_feerate_per_kw")? as u32,
        to_local_msat: number(case, "to_local_msat")?,
        to_remote_msat: number(case, "to_remote_msat")?,
        holder_is_funder: true,
        htlcs,
    };
    let built = build_commitment(&spec).map_err(|e| e.to_string())?;

    println!("BOLT 3 Appendix C: {wanted}");
    println!("txid               {}", tx.compute_txid());
    println!("spends (funding)   {}", tx.input[0].previous_output);
    match decode_commitment_number(&tx, factor) {
        Some(n) => println!(
            "commitment number  {n} (obscured in nLockTime {:#010x} and nSequence {:#010x})",
            tx.lock_time.to_consensus_u32(),
            tx.input[0].sequence.0
        ),
        None => println!("commitment number  none: not a commitment transaction"),
    }
    println!(
        "fee                {} sat at {} sat/kw, weight {}",
        built.fee_sat,
        spec.feerate_per_kw,
        tx.weight()
    );
    // Segwit txids do not cover witnesses: equal txids mean identical unsigned transactions.
    let identical = built.tx.compute_txid() == tx.compute_txid();
    println!(
        "rebuilt from the appendix's keys and HTLCs: {}",
        if identical {
            "byte-identical"
        } else {
            "DIFFERENT"
        }
    );
    println!();
    println!(
        "{:>3}  {:>10}  {:<16}  how it is spent",
        "out", "sat", "role"
    );
    for out in &built.outputs {
        let (role, spend) = match out.kind {
            OutputKind::ToLocal => ("to_local".to_string(), format!("holder after {to_self_delay} blocks (CSV); peer at once with the revocation key if revoked")),
            OutputKind::ToRemote => ("to_remote".to_string(), "peer at once (P2WPKH to its payment basepoint)".to_string()),
            OutputKind::LocalAnchor | OutputKind::RemoteAnchor => ("anchor".to_string(), "its owner at once; anyone after 16 blocks".to_string()),
            OutputKind::SharedAnchor => ("shared anchor (pay-to-anchor)".to_string(), "anyone, at once".to_string()),
            OutputKind::OfferedHtlc { htlc_id } => {
                let h = spec.htlcs.iter().find(|h| h.offered && h.id == htlc_id);
                let expiry = h.map(|h| h.cltv_expiry).unwrap_or(0);
                (format!("offered htlc {htlc_id}"), format!("peer with the preimage; holder via HTLC-timeout at {expiry}, then {to_self_delay} blocks"))
            }
            OutputKind::ReceivedHtlc { htlc_id } => {
                let h = spec.htlcs.iter().find(|h| !h.offered && h.id == htlc_id);
                let expiry = h.map(|h| h.cltv_expiry).unwrap_or(0);
                (format!("received htlc {htlc_id}"), format!("holder via HTLC-success with the preimage, then {to_self_delay} blocks; peer after {expiry}"))
            }
        };
        println!(
            "{:>3}  {:>10}  {:<16}  {}",
            out.index, out.value_sat, role, spend
        );
    }
    for h in &built.trimmed_htlcs {
        println!(
            "  -  {:>10}  {:<16}  trimmed: below the dust limit, added to the fee",
            h.amount_msat / 1000,
            format!("htlc {}", h.id)
        );
    }
    if !identical {
        return Err("the rebuilt commitment differs from the spec's".into());
    }
    Ok(())
}
