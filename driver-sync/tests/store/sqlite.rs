//! The SQLite store on real files: reopening, corruption, future versions, foreign files,
//! locking, read-only opens.

use contractcourt_core::action::{Batch, RecordKey, RecordOp};
use contractcourt_core::event::Event;
use contractcourt_sync::store::{MemoryStore, SqliteStore, Store, StoreError, SCHEMA_VERSION};
use serde_json::json;

use super::sqlite_support::*;

#[test]
fn reopening_a_file_gives_back_exactly_what_was_committed() {
    let dir = TempDir::new("reopen");
    populated(&dir);
    let mut reference = MemoryStore::new();
    for b in history() {
        reference.commit(&b).unwrap();
    }
    let store = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(store.load().unwrap(), reference.load().unwrap());
    for (channel, seq) in [(chan(1), 6), (chan(1), 7), (chan(2), 0), (chan(2), 1)] {
        assert_eq!(
            store.read_log(channel, seq).unwrap(),
            reference.read_log(channel, seq).unwrap()
        );
    }
    let recorded: Vec<(u64, Event)> = (0..).zip(events()).collect();
    assert_eq!(store.events(0, usize::MAX).unwrap(), recorded);
    let report = store.verify().unwrap();
    assert_eq!(
        (report.records, report.log_entries, report.events),
        (3, 3, 4)
    );
}

#[test]
fn the_flight_recorder_keeps_feed_order_across_reopens() {
    let dir = TempDir::new("recorder");
    let all: Vec<Event> = (0..12)
        .map(|i| Event::Tick {
            unix_secs: 1_000 + i,
        })
        .collect();
    for chunk in all.chunks(5) {
        let mut store = SqliteStore::open(dir.db()).unwrap();
        let start = store.event_count().unwrap();
        for (i, e) in chunk.iter().enumerate() {
            assert_eq!(store.append_event(e).unwrap(), start + i as u64);
        }
    }
    let store = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(store.event_count().unwrap(), 12);
    let back = store.events(0, usize::MAX).unwrap();
    assert_eq!(back, (0..).zip(all).collect::<Vec<_>>());
}

#[test]
fn one_record_is_read_alone_and_every_load_after_open_gives_the_committed_records() {
    let dir = TempDir::new("one-record");
    populated(&dir);
    let mut reference = MemoryStore::new();
    for b in history() {
        reference.commit(&b).unwrap();
    }
    let expected = reference.load().unwrap();
    let store = SqliteStore::open(dir.db()).unwrap();
    for (key, record) in &expected {
        assert_eq!(store.record(key).unwrap().as_ref(), Some(record), "{key}");
    }
    assert_eq!(
        store.record(&RecordKey::Block { height: 1 << 30 }).unwrap(),
        None
    );
    // The first load hands over what open verified; later ones read the file again.
    assert_eq!(store.load().unwrap(), expected);
    assert_eq!(store.load().unwrap(), expected);
    // A write between open and the first load is seen by it.
    drop(store);
    let mut store = SqliteStore::open(dir.db()).unwrap();
    let delete = Batch {
        ops: vec![RecordOp::Delete {
            key: expected.keys().next().unwrap().clone(),
        }],
    };
    store.commit(&delete).unwrap();
    let mut after = expected.clone();
    after.pop_first();
    assert_eq!(store.load().unwrap(), after);
}

#[test]
fn a_flipped_body_byte_is_refused_as_corrupt_and_changes_nothing() {
    let dir = TempDir::new("flip-body");
    populated(&dir);
    {
        let conn = raw(&dir);
        let body: String = conn
            .query_row("SELECT body FROM records WHERE path = 'node'", [], |r| {
                r.get(0)
            })
            .unwrap();
        let mut bytes = body.into_bytes();
        let i = bytes.iter().position(|b| b.is_ascii_digit()).unwrap();
        bytes[i] ^= 0x01; // one bit: "100" becomes "000" or similar, still valid JSON
        let flipped = String::from_utf8(bytes).unwrap();
        conn.execute(
            "UPDATE records SET body = ?1 WHERE path = 'node'",
            [flipped],
        )
        .unwrap();
    }
    let before = dir.snapshot();
    match SqliteStore::open(dir.db()) {
        Err(StoreError::Corrupt { what, key, reason }) => {
            assert_eq!(
                (what, key.as_str(), reason.as_str()),
                ("record", "node", "checksum mismatch")
            );
        }
        other => panic!("expected a corrupt record, got {other:?}"),
    }
    assert_eq!(dir.snapshot(), before, "a refused open changes no byte");
    assert!(matches!(
        SqliteStore::open_read_only(dir.db()),
        Err(StoreError::Corrupt { .. })
    ));
    assert_eq!(
        dir.snapshot().get("store.sqlite"),
        before.get("store.sqlite")
    );
}

#[test]
fn a_flipped_byte_in_the_file_is_refused_as_corrupt() {
    let dir = TempDir::new("flip-file");
    populated(&dir);
    let files: Vec<String> = dir.snapshot().into_keys().collect();
    assert_eq!(
        files,
        ["store.sqlite", "store.sqlite.lock"],
        "closing checkpoints the WAL into the main file"
    );
    let mut bytes = std::fs::read(dir.db()).unwrap();
    let marker = b"MARKER-abcdefgh";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap();
    bytes[at + 10] ^= 0x02; // 'c' becomes 'a'
    std::fs::write(dir.db(), &bytes).unwrap();
    match SqliteStore::open(dir.db()) {
        Err(StoreError::Corrupt { what, reason, .. }) => {
            assert_eq!((what, reason.as_str()), ("record", "checksum mismatch"));
        }
        other => panic!("expected a corrupt record, got {other:?}"),
    }
    assert!(
        std::fs::read(dir.db()).unwrap() == bytes,
        "a refused open changes no byte"
    );
}

#[test]
fn a_future_schema_version_is_refused_and_the_file_is_unchanged() {
    let dir = TempDir::new("future");
    populated(&dir);
    let future = SCHEMA_VERSION + 1;
    raw(&dir)
        .execute(
            "UPDATE meta SET value = ?1 WHERE name = 'schema_version'",
            [future.to_string()],
        )
        .unwrap();
    let before = dir.snapshot();
    match SqliteStore::open(dir.db()) {
        Err(e @ StoreError::FutureVersion { found, supported }) => {
            assert_eq!((found, supported), (future, SCHEMA_VERSION));
            assert!(
                e.to_string().contains("newer than this program supports"),
                "{e}"
            );
        }
        other => panic!("expected a future version, got {other:?}"),
    }
    assert_eq!(dir.snapshot(), before, "a refused open changes no byte");
    assert!(matches!(
        SqliteStore::open_read_only(dir.db()),
        Err(StoreError::FutureVersion { .. })
    ));
    assert_eq!(
        dir.snapshot().get("store.sqlite"),
        before.get("store.sqlite")
    );
}

#[test]
fn an_invalid_schema_version_is_corrupt() {
    let dir = TempDir::new("bad-version");
    populated(&dir);
    raw(&dir)
        .execute(
            "UPDATE meta SET value = 'one' WHERE name = 'schema_version'",
            [],
        )
        .unwrap();
    assert!(matches!(
        SqliteStore::open(dir.db()),
        Err(StoreError::Corrupt { what: "schema", .. })
    ));
}

#[test]
fn another_applications_sqlite_file_is_refused_and_unchanged() {
    let dir = TempDir::new("foreign");
    {
        let conn = raw(&dir);
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let before = dir.snapshot();
    assert!(matches!(
        SqliteStore::open(dir.db()),
        Err(StoreError::NotAStore { .. })
    ));
    assert_eq!(dir.snapshot(), before);

    // Another application id, even with no tables.
    let other = TempDir::new("foreign-id");
    raw(&other)
        .pragma_update(None, "application_id", 0x1234)
        .unwrap();
    let before = other.snapshot();
    assert!(matches!(
        SqliteStore::open(other.db()),
        Err(StoreError::NotAStore { .. })
    ));
    assert_eq!(other.snapshot(), before);
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_unchanged() {
    let dir = TempDir::new("junk");
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.db(), &junk).unwrap();
    match SqliteStore::open(dir.db()) {
        Err(e @ StoreError::NotAStore { .. }) => {
            assert!(
                e.to_string().starts_with("not a contractcourt store"),
                "{e}"
            );
        }
        other => panic!("expected not-a-store, got {other:?}"),
    }
    assert_eq!(std::fs::read(dir.db()).unwrap(), junk);
}

#[test]
fn read_log_reads_one_entry_without_loading_the_others() {
    let dir = TempDir::new("log");
    {
        let mut store = SqliteStore::open(dir.db()).unwrap();
        let ops = (0..100u64)
            .map(|seq| append(chan(1), seq, rec(1, json!({"commitment": seq}))))
            .collect();
        store.commit(&Batch { ops }).unwrap();
    }
    // Damage entry 50 only.
    raw(&dir)
        .execute(
            "UPDATE log SET body = '{\"commitment\":5}' WHERE seq = 50",
            [],
        )
        .unwrap();
    // Opening does not read the logs, and neighbours read fine: nothing but the one entry asked
    // for is read.
    let store = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(
        store.read_log(chan(1), 49).unwrap(),
        Some(rec(1, json!({"commitment": 49})))
    );
    assert_eq!(
        store.read_log(chan(1), 51).unwrap(),
        Some(rec(1, json!({"commitment": 51})))
    );
    match store.read_log(chan(1), 50) {
        Err(StoreError::Corrupt { what, key, .. }) => {
            assert_eq!(what, "log entry");
            assert_eq!(key, format!("{}/50", chan(1)));
        }
        other => panic!("expected a corrupt log entry, got {other:?}"),
    }
    assert!(store.verify().is_err(), "a full check finds it");
}

#[test]
fn a_corrupt_event_is_refused_when_read() {
    let dir = TempDir::new("event");
    populated(&dir);
    raw(&dir)
        .execute(
            "UPDATE events SET event = replace(event, '1700000000', '1700000001')",
            [],
        )
        .unwrap();
    let store = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(store.events(0, 1).unwrap().len(), 1);
    assert!(matches!(
        store.events(0, 10),
        Err(StoreError::Corrupt { what: "event", .. })
    ));
}

#[test]
fn a_second_open_of_a_live_store_is_refused_and_a_reader_sees_its_commits() {
    let dir = TempDir::new("lock");
    // An existing store: opening it writes nothing, and still takes the lock.
    populated(&dir);
    let mut first = SqliteStore::open(dir.db()).unwrap();
    assert!(matches!(
        SqliteStore::open(dir.db()),
        Err(StoreError::Locked { .. })
    ));
    // A reader (inspect, replay) reads the live store, and sees each commit of its owner.
    let reader = SqliteStore::open_read_only(dir.db()).unwrap();
    let before = reader.event_count().unwrap();
    let first_event = reader.events(0, 1).unwrap().remove(0).1;
    first.append_event(&first_event).unwrap();
    assert_eq!(reader.event_count().unwrap(), before + 1);
    assert_eq!(reader.load().unwrap(), first.load().unwrap());
    drop(reader);
    drop(first);
    SqliteStore::open(dir.db()).unwrap();
}

#[test]
fn opening_and_reading_an_existing_store_writes_nothing() {
    let dir = TempDir::new("no-write");
    populated(&dir);
    let before = dir.snapshot();
    {
        let store = SqliteStore::open(dir.db()).unwrap();
        store.load().unwrap();
        store.events(0, 100).unwrap();
        store.read_log(chan(1), 6).unwrap();
        store.verify().unwrap();
    }
    assert_eq!(dir.snapshot(), before);
}

#[test]
fn a_read_only_open_reads_everything_and_changes_no_byte() {
    let dir = TempDir::new("read-only");
    populated(&dir);
    let before = dir.snapshot();
    {
        let mut store = SqliteStore::open_read_only(dir.db()).unwrap();
        assert_eq!(store.load().unwrap().len(), 3);
        assert_eq!(store.events(0, 100).unwrap().len(), 4);
        assert!(store.read_log(chan(1), 6).unwrap().is_some());
        assert!(matches!(
            store.commit(&history()[0]),
            Err(StoreError::ReadOnly)
        ));
        assert!(matches!(
            store.append_event(&Event::Resumed { tip: None }),
            Err(StoreError::ReadOnly)
        ));
        store.verify().unwrap();
    }
    let after = dir.snapshot();
    assert_eq!(after.get("store.sqlite"), before.get("store.sqlite"));
    // An empty file is no store to read.
    let empty = TempDir::new("read-only-empty");
    std::fs::write(empty.db(), b"").unwrap();
    assert!(matches!(
        SqliteStore::open_read_only(empty.db()),
        Err(StoreError::NotAStore { .. })
    ));
}
