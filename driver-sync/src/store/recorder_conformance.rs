//! Behaviour tests of the recorder's step commit and pruning, run for every store type (see
//! `conformance_tests!`).

use contractcourt_core::action::RecordKey;
use contractcourt_core::event::Event;
use serde_json::json;

use super::conformance::{append, batch, chan, put, rec, some_events};
use super::{Records, StepDigest, Store, StoreError};

fn d(n: u8) -> StepDigest {
    [n; 32]
}

/// A step commit records its event, digest and batches together, or none of them.
pub fn a_step_commit_records_event_digest_and_batches_together(mut store: impl Store) {
    let events = some_events(3);
    let first = batch(vec![put(RecordKey::Node, rec(1, json!(1)))]);
    assert_eq!(store.commit_step(&events[0], &d(0), &[&first]).unwrap(), 0);
    let log = batch(vec![append(chan(1), 0, rec(1, json!("x")))]);
    assert_eq!(store.commit_step(&events[1], &d(1), &[&log]).unwrap(), 1);
    // A step whose batch conflicts is not recorded at all.
    let bad = batch(vec![
        put(RecordKey::Node, rec(1, json!(2))),
        append(chan(1), 0, rec(1, json!("y"))),
    ]);
    assert!(matches!(
        store.commit_step(&events[2], &d(2), &[&bad]),
        Err(StoreError::LogConflict { .. })
    ));
    assert_eq!(store.event_count().unwrap(), 2);
    assert_eq!(
        store.step_digests(0, 10).unwrap(),
        vec![(0, d(0)), (1, d(1))]
    );
    assert_eq!(store.load().unwrap()[&RecordKey::Node], rec(1, json!(1)));
    let recorded: Vec<Event> = store
        .events(0, 10)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(recorded, events[..2].to_vec());
    // A step without records, and an event appended the old way (no digest).
    assert_eq!(store.commit_step(&events[2], &d(2), &[]).unwrap(), 2);
    assert_eq!(store.append_event(&events[0]).unwrap(), 3);
    assert_eq!(
        store.step_digests(1, 10).unwrap(),
        vec![(1, d(1)), (2, d(2))]
    );
}

/// Pruning keeps event numbers, stores the replay start and refuses out-of-range starts.
pub fn pruning_keeps_the_numbering_and_the_replay_start(mut store: impl Store) {
    let events = some_events(6);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(store.commit_step(e, &d(i as u8), &[]).unwrap(), i as u64);
    }
    assert_eq!(store.replay_start().unwrap(), None);
    let mut start = Records::new();
    start.insert(RecordKey::Node, rec(1, json!("as before event 4")));
    store.prune_recorder(4, &start).unwrap();
    assert_eq!(store.event_count().unwrap(), 6);
    let kept: Vec<(u64, Event)> = vec![(4, events[4].clone()), (5, events[5].clone())];
    assert_eq!(store.events(0, 10).unwrap(), kept);
    assert_eq!(store.events(5, 10).unwrap(), kept[1..].to_vec());
    assert_eq!(
        store.step_digests(0, 10).unwrap(),
        vec![(4, d(4)), (5, d(5))]
    );
    assert_eq!(store.replay_start().unwrap(), Some((4, start.clone())));
    // Before the start or past the end: refused, nothing changes.
    for bad in [3, 7] {
        assert!(matches!(
            store.prune_recorder(bad, &Records::new()),
            Err(StoreError::OutOfRange { .. })
        ));
    }
    assert_eq!(store.replay_start().unwrap(), Some((4, start)));
    assert_eq!(store.commit_step(&events[0], &d(6), &[]).unwrap(), 6);
    // Everything pruned: numbering goes on from the start.
    store.prune_recorder(7, &Records::new()).unwrap();
    assert_eq!(store.events(0, 10).unwrap(), vec![]);
    assert_eq!(store.event_count().unwrap(), 7);
    assert_eq!(store.commit_step(&events[1], &d(7), &[]).unwrap(), 7);
    assert_eq!(store.events(0, 10).unwrap(), vec![(7, events[1].clone())]);
}
