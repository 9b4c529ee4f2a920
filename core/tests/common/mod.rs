//! Shared helpers for the BOLT 3 vector tests: the vectors are read from the repository's
//! `vectors/` folder at test time, never pasted into code.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod appendix_h;

/// Load one of the BOLT 3 vector files (`vectors/<name>`) as JSON.
pub fn vector(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector file {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("vector file {} is not JSON: {e}", path.display()))
}

/// Decode a hex string from the vectors, with or without a `0x` prefix.
pub fn hex_bytes(v: &serde_json::Value) -> Vec<u8> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a hex string, got {v}"));
    let s = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s}: {e}"))
}

/// Decode exactly 32 bytes of hex.
pub fn hex32(v: &serde_json::Value) -> [u8; 32] {
    hex_bytes(v).try_into().expect("expected 32 bytes")
}

/// A public key from hex.
pub fn pubkey(v: &serde_json::Value) -> bitcoin::secp256k1::PublicKey {
    bitcoin::secp256k1::PublicKey::from_slice(&hex_bytes(v)).expect("valid public key")
}

/// A secret key from the spec's hex (which carries a trailing `01` compressed marker).
pub fn secret(v: &serde_json::Value) -> bitcoin::secp256k1::SecretKey {
    let bytes = hex_bytes(v);
    bitcoin::secp256k1::SecretKey::from_slice(&bytes[..32]).expect("valid secret key")
}

/// A transaction from hex.
pub fn tx(v: &serde_json::Value) -> bitcoin::Transaction {
    bitcoin::consensus::deserialize(&hex_bytes(v)).expect("valid transaction")
}
