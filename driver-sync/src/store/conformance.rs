//! Behaviour tests every [`Store`] must pass, written once and run against each implementation:
//! a public test kit. Each function takes a fresh, empty store and panics (an assertion) when
//! the store breaks the trait's contract; [`store_conformance_tests!`](crate::store_conformance_tests)
//! makes one `#[test]` of each for a store type. The memory and SQLite stores run it here; the
//! PostgreSQL store runs it against a real server in `tests/store.rs`.

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use contractcourt_core::action::{Batch, CommitmentSlot, Record, RecordBody, RecordKey, RecordOp};
use contractcourt_core::bolt3::PaymentHash;
use contractcourt_core::event::{Event, ForceCloseReason};
use contractcourt_core::types::{ChannelId, ClaimId, HtlcDirection, HtlcKey};
use serde_json::json;

use super::{Records, Store, StoreError};

/// A channel id of 32 bytes `n`.
pub fn chan(n: u8) -> ChannelId {
    ChannelId([n; 32])
}

/// A record of `version` whose body is `body`'s canonical JSON.
pub fn rec(version: u32, body: serde_json::Value) -> Record {
    Record {
        version,
        body: RecordBody::from_value(&body),
    }
}

/// A put of `record` at `key`.
pub fn put(key: RecordKey, record: Record) -> RecordOp {
    RecordOp::Put { key, record }
}

/// An append of `record` to `channel`'s log at `seq`.
pub fn append(channel: ChannelId, seq: u64, record: Record) -> RecordOp {
    RecordOp::Append {
        channel,
        seq,
        record,
    }
}

/// A batch of `ops`.
pub fn batch(ops: Vec<RecordOp>) -> Batch {
    Batch { ops }
}

/// A channel's header, two commitments and a resolver (`n` in every body), in key order.
pub fn channel_records(channel: ChannelId, n: u64) -> Vec<(RecordKey, Record)> {
    let outpoint = OutPoint {
        txid: Txid::from_byte_array([7; 32]),
        vout: 1,
    };
    vec![
        (RecordKey::Channel { channel }, rec(1, json!({"h": n}))),
        (
            RecordKey::Commitment {
                channel,
                slot: CommitmentSlot::Local,
            },
            rec(1, json!({"l": n})),
        ),
        (
            RecordKey::Commitment {
                channel,
                slot: CommitmentSlot::RemoteCurrent,
            },
            rec(1, json!({"r": n})),
        ),
        (
            RecordKey::Resolver { channel, outpoint },
            rec(1, json!({"o": n})),
        ),
    ]
}

/// One key of every kind.
pub fn every_key_kind() -> Vec<RecordKey> {
    let htlc = |direction| HtlcKey {
        channel: chan(2),
        htlc_id: 7,
        direction,
    };
    vec![
        RecordKey::Node,
        RecordKey::Channel { channel: chan(1) },
        RecordKey::Commitment {
            channel: chan(1),
            slot: CommitmentSlot::Local,
        },
        RecordKey::Commitment {
            channel: chan(1),
            slot: CommitmentSlot::RemotePending,
        },
        RecordKey::Resolver {
            channel: chan(1),
            outpoint: OutPoint {
                txid: Txid::from_byte_array([9; 32]),
                vout: 3,
            },
        },
        RecordKey::Claim { claim: ClaimId(42) },
        RecordKey::Preimage {
            payment_hash: PaymentHash([5; 32]),
        },
        RecordKey::Circuit {
            outgoing: htlc(HtlcDirection::Outgoing),
        },
        // Same channel and id, other direction: a distinct key (its `Display` path is not).
        RecordKey::Circuit {
            outgoing: htlc(HtlcDirection::Incoming),
        },
        RecordKey::Upstream {
            htlc: htlc(HtlcDirection::Incoming),
        },
    ]
}

/// A few events of different shapes, in feed order.
pub fn some_events(n: u64) -> Vec<Event> {
    (0..n)
        .map(|i| match i % 3 {
            0 => Event::Tick {
                unix_secs: 1_700_000_000 + i,
            },
            1 => Event::ForceCloseRequested {
                channel: chan(i as u8),
                reason: ForceCloseReason::PeerError {
                    message: format!("error \"{i}\" ✓"),
                },
            },
            _ => Event::Resumed { tip: None },
        })
        .collect()
}

/// Puts of every key kind and appends read back exactly; a later batch replaces and deletes.
pub fn round_trip_put_delete_append(mut store: impl Store) {
    assert_eq!(store.load().unwrap(), Records::new());
    let keys = every_key_kind();
    let ops = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            put(
                k.clone(),
                rec(
                    i as u32 + 1,
                    json!({"i": i, "nested": {"list": [1, -2, 3.5, null, true], "s": "é\"\n"},
                           "big": u64::MAX}),
                ),
            )
        })
        .chain([
            append(chan(1), 0, rec(1, json!({"htlcs": [1, 2]}))),
            append(chan(1), u64::MAX, rec(1, json!("last"))),
            append(chan(2), 0, rec(2, json!(null))),
        ])
        .collect();
    store.commit(&batch(ops)).unwrap();

    let loaded = store.load().unwrap();
    assert_eq!(loaded.len(), keys.len(), "every key kind is distinct");
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(loaded[k].version, i as u32 + 1);
        assert_eq!(loaded[k].body.to_value()["nested"]["s"], json!("é\"\n"));
        assert_eq!(loaded[k].body.to_value()["big"], json!(u64::MAX));
    }
    assert_eq!(
        store.read_log(chan(1), 0).unwrap(),
        Some(rec(1, json!({"htlcs": [1, 2]})))
    );
    assert_eq!(
        store.read_log(chan(1), u64::MAX).unwrap(),
        Some(rec(1, json!("last")))
    );
    assert_eq!(
        store.read_log(chan(2), 0).unwrap(),
        Some(rec(2, json!(null)))
    );

    // Replace one, delete two (one of them absent), in one batch.
    store
        .commit(&batch(vec![
            put(RecordKey::Node, rec(1, json!({"tip": 100}))),
            RecordOp::Delete {
                key: RecordKey::Claim { claim: ClaimId(42) },
            },
            RecordOp::Delete {
                key: RecordKey::Claim { claim: ClaimId(43) },
            },
        ]))
        .unwrap();
    let after = store.load().unwrap();
    assert_eq!(after.len(), keys.len() - 1);
    assert_eq!(after[&RecordKey::Node], rec(1, json!({"tip": 100})));
    assert!(!after.contains_key(&RecordKey::Claim { claim: ClaimId(42) }));
}

/// A batch's operations apply in order (a put then a delete of one key leaves none).
pub fn ops_apply_in_order(mut store: impl Store) {
    let a = RecordKey::Claim { claim: ClaimId(1) };
    let b = RecordKey::Claim { claim: ClaimId(2) };
    store
        .commit(&batch(vec![
            put(a.clone(), rec(1, json!(1))),
            RecordOp::Delete { key: a.clone() },
            RecordOp::Delete { key: b.clone() },
            put(b.clone(), rec(1, json!("first"))),
            put(b.clone(), rec(2, json!("second"))),
        ]))
        .unwrap();
    let loaded = store.load().unwrap();
    assert!(!loaded.contains_key(&a));
    assert_eq!(loaded[&b], rec(2, json!("second")));
}

/// Empty batches and an empty group commit and change nothing.
pub fn empty_batch_changes_nothing(mut store: impl Store) {
    store
        .commit(&batch(vec![put(RecordKey::Node, rec(1, json!(1)))]))
        .unwrap();
    store.commit(&Batch::default()).unwrap();
    store.commit_many(&[]).unwrap();
    assert_eq!(store.load().unwrap().len(), 1);
}

/// Appending an existing log entry with the same content is a no-op.
pub fn append_of_same_content_is_idempotent(mut store: impl Store) {
    let entry = rec(1, json!({"htlcs": [{"id": 1}]}));
    store
        .commit(&batch(vec![append(chan(1), 5, entry.clone())]))
        .unwrap();
    // Again, alone and twice within one batch (a batch re-applied after a crash).
    store
        .commit(&batch(vec![
            append(chan(1), 5, entry.clone()),
            append(chan(1), 5, entry.clone()),
            put(RecordKey::Node, rec(1, json!("ok"))),
        ]))
        .unwrap();
    assert_eq!(store.read_log(chan(1), 5).unwrap(), Some(entry));
    assert_eq!(store.load().unwrap()[&RecordKey::Node], rec(1, json!("ok")));
}

/// A batch with a conflicting append is refused whole ([`StoreError::LogConflict`]); the store still works.
pub fn batch_is_atomic_when_an_append_conflicts(mut store: impl Store) {
    let before = batch(vec![
        put(RecordKey::Node, rec(1, json!({"tip": 1}))),
        put(
            RecordKey::Channel { channel: chan(1) },
            rec(1, json!("open")),
        ),
        append(chan(1), 0, rec(1, json!("revoked 0"))),
    ]);
    store.commit(&before).unwrap();
    let records = store.load().unwrap();

    // Puts, a delete and a new append come before the conflict: none of them may stick.
    let failing = batch(vec![
        put(RecordKey::Node, rec(1, json!({"tip": 2}))),
        RecordOp::Delete {
            key: RecordKey::Channel { channel: chan(1) },
        },
        put(RecordKey::Claim { claim: ClaimId(1) }, rec(1, json!("new"))),
        append(chan(1), 1, rec(1, json!("revoked 1"))),
        append(chan(1), 0, rec(1, json!("different"))),
        put(
            RecordKey::Claim { claim: ClaimId(2) },
            rec(1, json!("after")),
        ),
    ]);
    match store.commit(&failing) {
        Err(StoreError::LogConflict { channel, seq }) => {
            assert_eq!((channel, seq), (chan(1), 0));
        }
        other => panic!("expected a log conflict, got {other:?}"),
    }
    assert_eq!(store.load().unwrap(), records);
    assert_eq!(store.read_log(chan(1), 1).unwrap(), None);
    assert_eq!(
        store.read_log(chan(1), 0).unwrap(),
        Some(rec(1, json!("revoked 0")))
    );

    // A different version with the same body is also different content.
    assert!(matches!(
        store.commit(&batch(vec![append(chan(1), 0, rec(2, json!("revoked 0")))])),
        Err(StoreError::LogConflict { .. })
    ));

    // The store still works after a refused batch.
    store
        .commit(&batch(vec![append(chan(1), 1, rec(1, json!("revoked 1")))]))
        .unwrap();
    assert_eq!(
        store.read_log(chan(1), 1).unwrap(),
        Some(rec(1, json!("revoked 1")))
    );
}

/// Two different appends at one log position within a batch are refused, nothing applied.
pub fn conflicting_appends_within_one_batch_are_refused(mut store: impl Store) {
    let result = store.commit(&batch(vec![
        put(RecordKey::Node, rec(1, json!(1))),
        append(chan(3), 9, rec(1, json!("a"))),
        append(chan(3), 9, rec(1, json!("b"))),
    ]));
    assert!(matches!(
        result,
        Err(StoreError::LogConflict { seq: 9, .. })
    ));
    assert_eq!(store.load().unwrap(), Records::new());
    assert_eq!(store.read_log(chan(3), 9).unwrap(), None);
}

/// `commit_many` applies all its batches or none.
pub fn commit_many_is_one_atomic_group(mut store: impl Store) {
    let good = batch(vec![
        put(RecordKey::Node, rec(1, json!(1))),
        append(chan(1), 0, rec(1, json!("x"))),
    ]);
    let bad = batch(vec![append(chan(1), 0, rec(1, json!("y")))]);
    assert!(matches!(
        store.commit_many(&[good.clone(), bad]),
        Err(StoreError::LogConflict { .. })
    ));
    assert_eq!(store.load().unwrap(), Records::new());
    assert_eq!(store.read_log(chan(1), 0).unwrap(), None);

    let later = batch(vec![
        put(RecordKey::Node, rec(1, json!(2))),
        append(chan(1), 1, rec(1, json!("z"))),
    ]);
    store.commit_many(&[good, later]).unwrap();
    assert_eq!(store.load().unwrap()[&RecordKey::Node], rec(1, json!(2)));
    assert_eq!(
        store.read_log(chan(1), 0).unwrap(),
        Some(rec(1, json!("x")))
    );
    assert_eq!(
        store.read_log(chan(1), 1).unwrap(),
        Some(rec(1, json!("z")))
    );
}

/// `read_log` finds one entry by (channel, seq); logs are not keyed records.
pub fn read_log_reads_one_entry(mut store: impl Store) {
    let ops = (0..50u64)
        .flat_map(|seq| {
            [
                append(
                    chan(1),
                    seq,
                    rec(1, json!({"commitment": seq, "channel": 1})),
                ),
                append(
                    chan(2),
                    seq * 2,
                    rec(1, json!({"commitment": seq, "channel": 2})),
                ),
            ]
        })
        .collect();
    store.commit(&batch(ops)).unwrap();
    assert_eq!(
        store.read_log(chan(1), 17).unwrap(),
        Some(rec(1, json!({"commitment": 17, "channel": 1})))
    );
    assert_eq!(
        store.read_log(chan(2), 34).unwrap(),
        Some(rec(1, json!({"commitment": 17, "channel": 2})))
    );
    assert_eq!(store.read_log(chan(2), 35).unwrap(), None);
    assert_eq!(store.read_log(chan(1), 50).unwrap(), None);
    assert_eq!(store.read_log(chan(3), 0).unwrap(), None);
    // The logs are not part of the keyed records.
    assert_eq!(store.load().unwrap(), Records::new());
}

/// Events are numbered densely from 0 and read back in feed order, windowed.
pub fn flight_recorder_returns_events_in_feed_order(mut store: impl Store) {
    assert_eq!(store.event_count().unwrap(), 0);
    assert_eq!(store.events(0, 10).unwrap(), vec![]);
    let events = some_events(10);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(store.append_event(e).unwrap(), i as u64);
    }
    assert_eq!(store.event_count().unwrap(), 10);
    let all = store.events(0, usize::MAX).unwrap();
    let expected: Vec<(u64, Event)> = (0..).zip(events.iter().cloned()).collect();
    assert_eq!(all, expected);
    assert_eq!(store.events(3, 4).unwrap(), expected[3..7].to_vec());
    assert_eq!(store.events(8, 100).unwrap(), expected[8..].to_vec());
    assert_eq!(store.events(10, 100).unwrap(), vec![]);
    assert_eq!(store.events(u64::MAX, 100).unwrap(), vec![]);
    assert_eq!(store.events(0, 0).unwrap(), vec![]);
    // Events are independent of records.
    assert_eq!(store.load().unwrap(), Records::new());
}

/// `load_channel` returns exactly one channel's header, commitments and resolvers, in key
/// order — the part of `load` that names the channel — whatever else the store holds: other
/// channels (ids differing only in the last byte, so their paths differ only in the last hex
/// digit), node-level records (circuits and upstreams naming the channel's HTLCs included)
/// and the channel's log. A deleted record disappears; a channel without records is empty.
pub fn load_channel_returns_exactly_that_channels_records(mut store: impl Store) {
    let id = |last: u8| {
        let mut bytes = [0xab; 32];
        bytes[31] = last;
        ChannelId(bytes)
    };
    let outpoint = |txid: u8, vout: u32| OutPoint {
        txid: Txid::from_byte_array([txid; 32]),
        vout,
    };
    // 0x00 and 0x01 differ in the last hex digit; 0x0f and 0x10 in the last two; 0x02 has no
    // records and sits between them.
    let channels = [id(0x00), id(0x01), id(0x0f), id(0x10), id(0xff), chan(1)];
    let (empty, never) = (id(0x02), chan(0x77));
    let channel_records = |i: usize, channel: ChannelId| -> Vec<(RecordKey, Record)> {
        let n = i as u64;
        let mut v = vec![
            (RecordKey::Channel { channel }, rec(1, json!({"header": n}))),
            (
                RecordKey::Commitment {
                    channel,
                    slot: CommitmentSlot::Local,
                },
                rec(2, json!({"local": n})),
            ),
            (
                RecordKey::Commitment {
                    channel,
                    slot: CommitmentSlot::RemoteCurrent,
                },
                rec(2, json!({"remote": n})),
            ),
            (
                RecordKey::Resolver {
                    channel,
                    outpoint: outpoint(i as u8, 0),
                },
                rec(3, json!({"resolver": n})),
            ),
        ];
        if i == 0 {
            // Key order is not path order: vout 2 before vout 10 (`…:10` < `…:2` as text).
            for vout in [10, 2] {
                v.push((
                    RecordKey::Resolver {
                        channel,
                        outpoint: outpoint(0xee, vout),
                    },
                    rec(3, json!({"vout": vout})),
                ));
            }
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let htlc = |channel| HtlcKey {
        channel,
        htlc_id: 1,
        direction: HtlcDirection::Incoming,
    };
    let node_level = vec![
        (RecordKey::Node, rec(1, json!("node"))),
        (RecordKey::Block { height: 800_000 }, rec(1, json!("tip"))),
        (RecordKey::Block { height: 799_999 }, rec(1, json!("prev"))),
        (
            RecordKey::Preimage {
                payment_hash: PaymentHash([3; 32]),
            },
            rec(1, json!("preimage")),
        ),
        (
            RecordKey::Claim { claim: ClaimId(9) },
            rec(1, json!("claim")),
        ),
        (
            RecordKey::Circuit {
                outgoing: htlc(channels[0]),
            },
            rec(1, json!("circuit")),
        ),
        (
            RecordKey::Upstream {
                htlc: htlc(channels[1]),
            },
            rec(1, json!("upstream")),
        ),
    ];
    let mut ops: Vec<RecordOp> = node_level
        .iter()
        .map(|(k, r)| put(k.clone(), r.clone()))
        .collect();
    for (i, c) in channels.iter().enumerate() {
        ops.extend(channel_records(i, *c).into_iter().map(|(k, r)| put(k, r)));
        ops.push(append(*c, 0, rec(1, json!({"revoked": i}))));
    }
    ops.push(append(empty, 0, rec(1, json!("log only"))));
    store.commit(&batch(ops)).unwrap();

    // The part of `load` whose keys name `channel`, in key order.
    let of = |all: &Records, channel: ChannelId| -> Vec<(RecordKey, Record)> {
        all.iter()
            .filter(|(k, _)| match k {
                RecordKey::Channel { channel: c }
                | RecordKey::Commitment { channel: c, .. }
                | RecordKey::Resolver { channel: c, .. } => *c == channel,
                _ => false,
            })
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect()
    };
    let check = |store: &dyn Store, expected: &[Vec<(RecordKey, Record)>]| {
        for (c, want) in channels.iter().zip(expected) {
            let got = store.load_channel(*c).unwrap();
            assert_eq!(&got, want, "channel {c}");
        }
        assert_eq!(store.load_channel(empty).unwrap(), vec![]);
        assert_eq!(store.load_channel(never).unwrap(), vec![]);
        // It leaves `load` whole, and is the part of it that names the channel.
        let all = store.load().unwrap();
        let per_channel: usize = expected.iter().map(Vec::len).sum();
        assert_eq!(all.len(), node_level.len() + per_channel);
        for (c, want) in channels.iter().zip(expected) {
            assert_eq!(&of(&all, *c), want, "channel {c}");
        }
        for (k, r) in &node_level {
            assert_eq!(all.get(k), Some(r), "{k}");
        }
    };
    let mut expected: Vec<Vec<(RecordKey, Record)>> = channels
        .iter()
        .enumerate()
        .map(|(i, c)| channel_records(i, *c))
        .collect();
    assert_eq!(expected[0].len(), 6);
    check(&store, &expected);

    // A deleted record disappears; a replaced one reads back new; a channel whose every
    // record is deleted is empty (its log stays).
    let gone = expected[0].remove(2);
    expected[0][0].1 = rec(4, json!({"header": "new"}));
    let mut ops = vec![
        RecordOp::Delete { key: gone.0 },
        put(expected[0][0].0.clone(), expected[0][0].1.clone()),
    ];
    ops.extend(
        expected[1]
            .drain(..)
            .map(|(key, _)| RecordOp::Delete { key }),
    );
    store.commit(&batch(ops)).unwrap();
    check(&store, &expected);
    assert_eq!(store.load_channel(channels[1]).unwrap(), vec![]);
    assert_eq!(
        store.read_log(channels[1], 0).unwrap(),
        Some(rec(1, json!({"revoked": 1})))
    );
}

/// Instantiate every behaviour test of the kit for one store type: `$make` is an expression
/// giving a fresh, empty store, evaluated once per test.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        #[test]
        fn round_trip_put_delete_append() {
            $crate::store::conformance::round_trip_put_delete_append($make);
        }
        #[test]
        fn ops_apply_in_order() {
            $crate::store::conformance::ops_apply_in_order($make);
        }
        #[test]
        fn empty_batch_changes_nothing() {
            $crate::store::conformance::empty_batch_changes_nothing($make);
        }
        #[test]
        fn append_of_same_content_is_idempotent() {
            $crate::store::conformance::append_of_same_content_is_idempotent($make);
        }
        #[test]
        fn batch_is_atomic_when_an_append_conflicts() {
            $crate::store::conformance::batch_is_atomic_when_an_append_conflicts($make);
        }
        #[test]
        fn conflicting_appends_within_one_batch_are_refused() {
            $crate::store::conformance::conflicting_appends_within_one_batch_are_refused($make);
        }
        #[test]
        fn commit_many_is_one_atomic_group() {
            $crate::store::conformance::commit_many_is_one_atomic_group($make);
        }
        #[test]
        fn read_log_reads_one_entry() {
            $crate::store::conformance::read_log_reads_one_entry($make);
        }
        #[test]
        fn load_channel_returns_exactly_that_channels_records() {
            $crate::store::conformance::load_channel_returns_exactly_that_channels_records($make);
        }
        #[test]
        fn flight_recorder_returns_events_in_feed_order() {
            $crate::store::conformance::flight_recorder_returns_events_in_feed_order($make);
        }
        #[test]
        fn a_step_commit_records_event_digest_and_batches_together() {
            $crate::store::recorder_conformance::a_step_commit_records_event_digest_and_batches_together($make);
        }
        #[test]
        fn pruning_keeps_the_numbering_and_the_replay_start() {
            $crate::store::recorder_conformance::pruning_keeps_the_numbering_and_the_replay_start($make);
        }
        #[test]
        fn boxed_dyn_store_behaves_the_same() {
            let store: Box<dyn $crate::store::Store> = Box::new($make);
            $crate::store::conformance::batch_is_atomic_when_an_append_conflicts(store);
        }
    };
}

#[cfg(test)]
mod memory {
    use super::*;
    use crate::store::MemoryStore;

    store_conformance_tests!(MemoryStore::new());

    #[test]
    fn fail_next_commit_fails_once_and_changes_nothing() {
        let mut store = MemoryStore::new();
        store
            .commit(&batch(vec![put(RecordKey::Node, rec(1, json!(1)))]))
            .unwrap();
        store.fail_next_commit();
        let attempt = batch(vec![
            put(RecordKey::Node, rec(1, json!(2))),
            append(chan(1), 0, rec(1, json!("x"))),
        ]);
        assert!(matches!(store.commit(&attempt), Err(StoreError::Injected)));
        assert_eq!(store.load().unwrap()[&RecordKey::Node], rec(1, json!(1)));
        assert_eq!(store.read_log(chan(1), 0).unwrap(), None);
        store.commit(&attempt).unwrap();
        assert_eq!(store.load().unwrap()[&RecordKey::Node], rec(1, json!(2)));
        assert_eq!(store.log_len(), 1);
    }

    #[test]
    fn fail_next_commit_applies_to_commit_many_and_empty_batches() {
        let mut store = MemoryStore::new();
        store.fail_next_commit();
        assert!(matches!(store.commit_many(&[]), Err(StoreError::Injected)));
        store.commit_many(&[]).unwrap();
    }
}

#[cfg(test)]
mod sqlite_in_memory {
    use crate::store::SqliteStore;

    store_conformance_tests!(SqliteStore::open_in_memory().unwrap());
}

#[cfg(test)]
mod sqlite_file {
    use crate::store::sqlite::test_support::TempStore;

    store_conformance_tests!(TempStore::new());
}
