use contractcourt_core::event::Event;

use super::store_at_version_1;
use crate::store::{Store, SCHEMA_VERSION};

#[test]
fn a_version_1_store_migrates_keeping_its_events_without_digests() {
    let mut store = store_at_version_1();
    let event = Event::Tick { unix_secs: 1 };
    // Recorded by a version-1 program: the event row alone.
    let json = crate::store::encode_event(&event).unwrap();
    let sum = super::super::event_checksum(0, &json);
    store
        .conn
        .execute(
            super::super::INSERT_EVENT,
            rusqlite::params![0, json, &sum[..]],
        )
        .unwrap();
    super::super::migrate(&mut store.conn, super::super::MIGRATIONS).unwrap();
    assert_eq!(super::super::inspect(&store.conn).unwrap(), SCHEMA_VERSION);
    assert_eq!(store.commit_step(&event, &[9; 32], &[]).unwrap(), 1);
    assert_eq!(store.step_digests(0, 10).unwrap(), vec![(1, [9; 32])]);
    assert_eq!(store.events(0, 10).unwrap().len(), 2);
    assert_eq!(store.verify().unwrap().events, 2);
}

#[test]
fn a_tampered_digest_or_replay_start_is_corrupt() {
    let mut store = store_at_version_1();
    super::super::migrate(&mut store.conn, super::super::MIGRATIONS).unwrap();
    let event = Event::Tick { unix_secs: 1 };
    store.commit_step(&event, &[1; 32], &[]).unwrap();
    store
        .prune_recorder(1, &crate::store::Records::new())
        .unwrap();
    store.commit_step(&event, &[2; 32], &[]).unwrap();
    store
        .conn
        .execute("UPDATE step_digests SET digest = zeroblob(32)", [])
        .unwrap();
    assert!(store.step_digests(0, 10).is_err());
    assert!(store.verify().is_err());
    store
        .conn
        .execute("UPDATE recorder_start SET seq = 0", [])
        .unwrap();
    assert!(store.replay_start().is_err());
}
