//! Entry points for the fuzz targets in `fuzz/`: each target is a one-line call into a function
//! here, so the logic is built and tested with the rest of the core.
//!
//! - [`classify_witness`]: witness classification on arbitrary witnesses.
//! - [`record_roundtrip`]: persisted records decoded from arbitrary JSON, re-encoded and decoded
//!   again; [`ChainArbitrator::from_records`] on whatever decodes.
//! - `event_trace` (feature `sim`): structure-aware event traces against the chain arbitrator,
//!   with the invariants that hold for any input checked after every step.
//! - `classify_close` (feature `sim`): close classification of arbitrary transactions around a
//!   real channel's funding output.
//! - `trace_replay`, `event_json` (feature `sim`): the trace file and JSON event parsers, and
//!   whatever parses fed to a chain arbitrator.
//!
//! Every helper panics on a broken invariant (that is what the fuzzer looks for) and never
//! otherwise.

use std::collections::BTreeMap;

use bitcoin::consensus::Decodable;
use bitcoin::Witness;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::action::{Action, Record, RecordKey, RecordOp};
use crate::bolt3::classify::{
    classify_anchor_spend, classify_htlc_spend, classify_to_local_spend, HtlcOutputKind,
};
use crate::bolt3::PaymentHash;
use crate::chain::{ChainArbitrator, Config};
use crate::event::Event;

#[cfg(feature = "sim")]
mod close_fuzz;
#[cfg(feature = "sim")]
mod parse_fuzz;
#[cfg(feature = "sim")]
mod trace_fuzz;

#[cfg(feature = "sim")]
pub use close_fuzz::classify_close;
#[cfg(feature = "sim")]
pub use parse_fuzz::{event_json, trace_replay};
#[cfg(feature = "sim")]
pub use trace_fuzz::{
    event_trace, event_trace_logged, event_trace_out_of_order, event_trace_records,
};

/// Witness classification on arbitrary bytes: the first 32 bytes are a payment hash, the rest a
/// consensus-encoded witness (anything that does not decode is skipped). Must never panic.
pub fn classify_witness(data: &[u8]) {
    let (hash, rest) = match data.split_first_chunk::<32>() {
        Some((hash, rest)) => (PaymentHash(*hash), rest),
        None => return,
    };
    let mut reader = rest;
    let Ok(witness) = Witness::consensus_decode(&mut reader) else {
        return;
    };
    for kind in [HtlcOutputKind::Offered, HtlcOutputKind::Received] {
        let _ = classify_htlc_spend(&witness, kind, &hash);
    }
    let _ = classify_to_local_spend(&witness);
    let _ = classify_anchor_spend(&witness);
}

/// Decode `data` as JSON into `T`; if it decodes, encoding and decoding again gives the same
/// value.
fn json_roundtrip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let json = serde_json::to_vec(&value)
        .unwrap_or_else(|e| panic!("a decoded value does not encode: {e}: {value:?}"));
    let back: T = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "an encoded value does not decode: {e}: {}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(back, value, "decode → encode → decode changed the value");
}

/// Apply the `Persist` batch among `actions` to a record map (as a store would; the
/// append-only log is not needed here).
fn apply_batch(records: &mut BTreeMap<RecordKey, Record>, actions: &[Action]) {
    let mut log = BTreeMap::new();
    for action in actions {
        if let Action::Persist(batch) = action {
            batch.apply_to(records, &mut log);
        }
    }
}

/// Persisted records from arbitrary bytes.
///
/// The bytes are tried as JSON of a [`Record`], a [`RecordKey`], a [`RecordOp`] and a whole
/// store: an array of `[key, record]` pairs. Whatever decodes must encode and decode back to the
/// same value. A store that decodes is loaded with [`ChainArbitrator::from_records`] (with and
/// without a sweeper configured), which must not panic; if it loads, loading again gives the same
/// state, the ledger can be computed, and after `Resumed` the records with the step's batch
/// applied load back to the in-memory state.
pub fn record_roundtrip(data: &[u8]) {
    json_roundtrip::<Record>(data);
    json_roundtrip::<RecordKey>(data);
    json_roundtrip::<RecordOp>(data);
    json_roundtrip::<Vec<(RecordKey, Record)>>(data);
    let Ok(pairs) = serde_json::from_slice::<Vec<(RecordKey, Record)>>(data) else {
        return;
    };
    let records: BTreeMap<RecordKey, Record> = pairs.into_iter().collect();
    let sweeping = Config {
        sweep_to: Some(crate::sweeper::SweeperConfig {
            destination: bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_raw_hash(
                bitcoin::hashes::Hash::all_zeros(),
            )),
            fallback_feerate: bitcoin::FeeRate::from_sat_per_vb_u32(2),
            fee_wallet: None,
        }),
        ..Config::default()
    };
    for config in [Config::default(), sweeping] {
        let Ok(mut arb) = ChainArbitrator::from_records(config.clone(), &records) else {
            continue;
        };
        let again = ChainArbitrator::from_records(config.clone(), &records)
            .unwrap_or_else(|e| panic!("records loaded once do not load twice: {e}"));
        assert!(again == arb, "loading the same records twice differs");
        let _ = arb.ledger();
        let tip = arb.tip();
        let before = arb.clone();
        match arb.step(&Event::Resumed { tip }) {
            Err(e) => assert!(arb == before, "a refused Resumed changed the state: {e}"),
            Ok(actions) => {
                let mut store = records.clone();
                apply_batch(&mut store, &actions);
                let loaded = ChainArbitrator::from_records(config, &store)
                    .unwrap_or_else(|e| panic!("the records after Resumed do not load: {e}"));
                if loaded != arb {
                    panic!(
                        "after Resumed, loading the records does not give back the in-memory state (- memory, + loaded):\n{}",
                        crate::trace::line_diff(&format!("{arb:#?}"), &format!("{loaded:#?}"))
                    );
                }
            }
        }
    }
}

/// A cursor over fuzz bytes: reads past the end give zeros.
#[cfg(feature = "sim")]
pub(crate) struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

#[cfg(feature = "sim")]
impl<'a> Bytes<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes { data, pos: 0 }
    }

    /// Whether every byte was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    pub(crate) fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub(crate) fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// An index below `n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::from(self.u8()) % n
        }
    }

    /// One of `items` (which must not be empty).
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        let i = self.below(items.len());
        items[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize, state: &mut u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                *state as u8
            })
            .collect()
    }

    /// Found by the `record_roundtrip` fuzz target
    /// (`fuzz/corpus/record_roundtrip/float-roundtrip`): a number too large for an integer is
    /// read as a float, written back in its shortest form, and — with serde_json's default,
    /// approximate float parser — read back as a neighbouring float. Records may carry such a
    /// number in any JSON value; parsing is exact now (`float_roundtrip`).
    #[test]
    fn a_huge_number_survives_decode_encode_decode() {
        let huge = format!("[{}]", "2003".to_owned() + &"8".repeat(60));
        json_roundtrip::<serde_json::Value>(huge.as_bytes());
        json_roundtrip::<serde_json::Value>(b"[2.003888888888889e122, 1e-320, 0.1]");
    }

    /// Found by `record_roundtrip` (`fuzz/corpus/record_roundtrip/legacy-header-duplicate-height`):
    /// a node header of the older format whose recent blocks held two blocks at one height
    /// loaded, and after `Resumed` one of them was lost (block records are keyed by height).
    /// Such a store is now a typed load error.
    #[test]
    fn a_legacy_header_with_two_blocks_at_one_height_is_refused_not_half_loaded() {
        let data =
            include_bytes!("../../fuzz/corpus/record_roundtrip/legacy-header-duplicate-height");
        record_roundtrip(data);
        let pairs: Vec<(RecordKey, Record)> = serde_json::from_slice(data).unwrap();
        let records = pairs.into_iter().collect();
        let loaded = ChainArbitrator::from_records(Config::default(), &records);
        assert!(
            matches!(&loaded, Err(crate::chain::LoadError::Malformed { key, .. }) if key == "node"),
            "{:?}",
            loaded.err()
        );
    }

    #[test]
    fn classify_witness_takes_any_bytes() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..2_000usize {
            let data = noise(len, &mut state);
            classify_witness(&data);
        }
        // A well-formed witness after the hash is classified too.
        let mut data = vec![0u8; 32];
        data.extend(bitcoin::consensus::serialize(&Witness::from_slice(&[
            vec![1u8; 72],
            vec![],
        ])));
        classify_witness(&data);
    }

    #[test]
    fn record_roundtrip_takes_any_bytes() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..500usize {
            record_roundtrip(&noise(len, &mut state));
        }
        for json in [
            r#"{"version":1,"body":{"a":[1,2.5,"x",null]}}"#,
            r#"{"kind":"node"}"#,
            r#"{"op":"delete","key":{"kind":"claim","claim":3}}"#,
            r#"[]"#,
            r#"[[{"kind":"node"},{"version":1,"body":null}]]"#,
            r#"[[{"kind":"node"},{"version":2,"body":{}}]]"#,
        ] {
            record_roundtrip(json.as_bytes());
        }
    }
}
