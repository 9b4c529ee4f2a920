//! Loading a store whose channel header names a channel type the engine does not resolve.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ChainArbitrator, Config, LoadError};
use crate::action::{Action, Record, RecordBody, RecordKey};
use crate::bolt3::{ChannelType, UnsupportedChannelType};
use crate::sim::{SimChannel, SimSetup};

/// The store an engine writes for a freshly opened anchors channel.
fn store_of_one_channel() -> BTreeMap<RecordKey, Record> {
    let mut arb = ChainArbitrator::new(Config::default());
    let (_, open) = SimChannel::open(SimSetup::new(21, ChannelType::AnchorsZeroFeeHtlc)).unwrap();
    let (mut store, mut log) = (BTreeMap::new(), BTreeMap::new());
    for event in &open {
        for action in arb.step(event).unwrap() {
            if let Action::Persist(batch) = action {
                batch.apply_to(&mut store, &mut log);
            }
        }
    }
    store
}

/// Replaces every `channel_type` field in `value` with `to`; how many it replaced.
fn retype(value: &mut Value, to: &str) -> usize {
    match value {
        Value::Object(map) => map
            .iter_mut()
            .map(|(k, v)| {
                if k == "channel_type" {
                    *v = Value::String(to.to_string());
                    1
                } else {
                    retype(v, to)
                }
            })
            .sum(),
        Value::Array(items) => items.iter_mut().map(|v| retype(v, to)).sum(),
        _ => 0,
    }
}

/// Issue 21: a store whose channel header says `simple_taproot` (written by a newer build, or
/// edited) is a typed load error naming the record, not a channel loaded and half-handled.
#[test]
fn a_stored_simple_taproot_channel_is_refused_at_load() {
    let mut store = store_of_one_channel();
    assert!(ChainArbitrator::from_records(Config::default(), &store).is_ok());
    let (key, record) = store
        .iter_mut()
        .find(|(k, _)| matches!(k, RecordKey::Channel { .. }))
        .expect("a channel header record");
    let mut body = record.body.to_value();
    assert_eq!(retype(&mut body, "simple_taproot"), 1);
    record.body = RecordBody::from_value(&body);
    let key = key.to_string();
    match ChainArbitrator::from_records(Config::default(), &store) {
        Err(LoadError::ChannelTypeNotResolved(k, e)) => {
            assert_eq!(k, key);
            let channel_type = ChannelType::SimpleTaproot;
            assert_eq!(e, UnsupportedChannelType { channel_type });
        }
        other => panic!("expected a refusal, got {:?}", other.err()),
    }
}
