//! The checksums every stored row carries, shared by the SQLite and PostgreSQL stores (the same
//! bytes in either: a row copied between them verifies in both).
//!
//! Each is SHA256 over a per-kind domain tag and the row's other columns as stored, each part
//! length-prefixed, so a flipped byte, a truncated value or a row moved to another key fails.

use bitcoin::hashes::{sha256, Hash, HashEngine};
use contractcourt_core::action::{Record, RecordKey};

use super::{Records, StepDigest, StoreError};

/// SHA256 over a domain tag and length-prefixed parts.
pub(crate) fn digest(domain: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    for part in std::iter::once(domain.as_bytes()).chain(parts.iter().copied()) {
        engine.input(&(part.len() as u64).to_be_bytes());
        engine.input(part);
    }
    sha256::Hash::from_engine(engine).to_byte_array()
}

pub(crate) fn record_checksum(key: &str, path: &str, version: i64, body: &str) -> [u8; 32] {
    digest(
        "contractcourt/record",
        &[
            key.as_bytes(),
            path.as_bytes(),
            &version.to_be_bytes(),
            body.as_bytes(),
        ],
    )
}

pub(crate) fn log_checksum(channel: &[u8; 32], seq: i64, version: i64, body: &str) -> [u8; 32] {
    digest(
        "contractcourt/log",
        &[
            channel,
            &seq.to_be_bytes(),
            &version.to_be_bytes(),
            body.as_bytes(),
        ],
    )
}

pub(crate) fn event_checksum(seq: i64, json: &str) -> [u8; 32] {
    digest(
        "contractcourt/event",
        &[&seq.to_be_bytes(), json.as_bytes()],
    )
}

/// The checksum of a stored step digest.
pub(crate) fn digest_checksum(seq: i64, step: &StepDigest) -> [u8; 32] {
    digest("contractcourt/step-digest", &[&seq.to_be_bytes(), step])
}

/// The checksum of the stored replay start.
pub(crate) fn start_checksum(seq: i64, json: &str) -> [u8; 32] {
    digest(
        "contractcourt/recorder-start",
        &[&seq.to_be_bytes(), json.as_bytes()],
    )
}

/// The stored form of a replay start's records: a JSON list of `[key, record]` pairs.
pub(crate) fn encode_start(records: &Records) -> Result<String, StoreError> {
    let pairs: Vec<(&RecordKey, &Record)> = records.iter().collect();
    serde_json::to_string(&pairs).map_err(|e| StoreError::Encode {
        what: "replay start",
        reason: e.to_string(),
    })
}
