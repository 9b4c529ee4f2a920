//! The PostgreSQL store against a real server: the conformance kit, reopening, tampered rows,
//! schema versions, foreign schemas, the owner's lease and fencing, and a writer killed
//! mid-stream. Each test works in a schema of its own, so they run in parallel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use contractcourt_core::action::RecordKey;
use contractcourt_core::event::Event;
use contractcourt_core::types::ClaimId;
use contractcourt_sync::store::conformance::{
    append, batch, chan, channel_records, put, rec, some_events,
};
use contractcourt_sync::store::{PostgresStore, Records, Store, StoreError, PG_SCHEMA_VERSION};
use serde_json::json;

use super::crash_writer::{crash_step, stored_step};
use super::pg_support::{config, fresh_schema, raw, PgTestStore, SchemaGuard};

mod kit {
    use super::PgTestStore;

    contractcourt_sync::store_conformance_tests!(PgTestStore::new());
}

/// A store in a fresh schema holding a record, two log entries and three recorded steps.
fn populated(name: &str) -> (PostgresStore, SchemaGuard) {
    let schema = fresh_schema(name);
    let guard = SchemaGuard(schema.clone());
    let mut store = PostgresStore::open(config(&schema)).unwrap();
    store
        .commit(&batch(vec![
            put(RecordKey::Node, rec(1, json!({"tip": 7}))),
            put(
                RecordKey::Claim { claim: ClaimId(3) },
                rec(2, json!("claim")),
            ),
            append(chan(1), 0, rec(1, json!("revoked 0"))),
            append(chan(1), 1, rec(1, json!("revoked 1"))),
        ]))
        .unwrap();
    for (i, e) in some_events(3).iter().enumerate() {
        store.commit_step(e, &[i as u8; 32], &[]).unwrap();
    }
    (store, guard)
}

#[test]
fn postgres_reopening_gives_back_exactly_what_was_committed() {
    let (store, guard) = populated("reopen");
    let (records, log1) = (store.load().unwrap(), store.read_log(chan(1), 1).unwrap());
    drop(store);
    let again = PostgresStore::open(config(&guard.0)).unwrap();
    assert_eq!(again.load().unwrap(), records);
    assert_eq!(again.read_log(chan(1), 1).unwrap(), log1);
    assert_eq!(again.event_count().unwrap(), 3);
    let events: Vec<Event> = again
        .events(0, 10)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(events, some_events(3));
    assert_eq!(again.step_digests(2, 10).unwrap(), vec![(2, [2; 32])]);
}

#[test]
fn postgres_a_tampered_record_checksum_is_refused_as_corrupt_on_load() {
    let (store, guard) = populated("tamper_rec");
    raw(&guard.0)
        .batch_execute("UPDATE records SET checksum = '\\x00' WHERE path = 'node'")
        .unwrap();
    match store.load() {
        Err(StoreError::Corrupt { what, key, reason }) => {
            assert_eq!(
                (what, key.as_str(), reason.as_str()),
                ("record", "node", "checksum mismatch")
            );
        }
        other => panic!("expected a corrupt record, got {other:?}"),
    }
}

#[test]
fn postgres_a_tampered_record_body_or_moved_row_is_corrupt() {
    let (store, guard) = populated("tamper_body");
    let mut c = raw(&guard.0);
    c.batch_execute("UPDATE records SET body = '{\"tip\":8}' WHERE path = 'node'")
        .unwrap();
    assert!(matches!(
        store.load(),
        Err(StoreError::Corrupt { what: "record", .. })
    ));
    // A log entry moved to another sequence number.
    c.batch_execute("UPDATE log SET seq = 5 WHERE seq = 1")
        .unwrap();
    assert!(matches!(
        store.read_log(chan(1), 5),
        Err(StoreError::Corrupt {
            what: "log entry",
            ..
        })
    ));
    assert_eq!(store.read_log(chan(1), 1).unwrap(), None);
}

#[test]
fn postgres_a_tampered_event_digest_or_gap_is_corrupt() {
    let (mut store, guard) = populated("tamper_ev");
    let mut c = raw(&guard.0);
    c.batch_execute("UPDATE events SET event = '{\"Tick\":{\"unix_secs\":1}}' WHERE seq = 2")
        .unwrap();
    assert!(matches!(
        store.events(0, 10),
        Err(StoreError::Corrupt { what: "event", .. })
    ));
    c.batch_execute("DELETE FROM events WHERE seq = 1").unwrap();
    assert!(matches!(
        store.events(0, 10),
        Err(StoreError::Corrupt {
            what: "event log",
            ..
        })
    ));
    c.batch_execute("UPDATE step_digests SET digest = '\\x00' WHERE seq = 0")
        .unwrap();
    assert!(matches!(
        store.step_digests(0, 10),
        Err(StoreError::Corrupt {
            what: "step digest",
            ..
        })
    ));
    store.prune_recorder(3, &Records::new()).unwrap();
    c.batch_execute("UPDATE recorder_start SET seq = 2")
        .unwrap();
    assert!(matches!(
        store.replay_start(),
        Err(StoreError::Corrupt {
            what: "replay start",
            ..
        })
    ));
    // A wrong column type (a tampered schema) is corrupt too, not a panic.
    c.batch_execute("ALTER TABLE records ALTER COLUMN version TYPE TEXT")
        .unwrap();
    assert!(matches!(
        store.load(),
        Err(StoreError::Corrupt { what: "record", .. })
    ));
}

#[test]
fn postgres_a_future_schema_version_is_refused_and_nothing_changes() {
    let (store, guard) = populated("future");
    drop(store);
    let future = PG_SCHEMA_VERSION + 1;
    let mut c = raw(&guard.0);
    c.execute(
        "UPDATE meta SET value = $1 WHERE name = 'schema_version'",
        &[&future.to_string()],
    )
    .unwrap();
    let token_before: i64 = c.query_one("SELECT token FROM lease", &[]).unwrap().get(0);
    match PostgresStore::open(config(&guard.0)) {
        Err(StoreError::FutureVersion { found, supported }) => {
            assert_eq!((found, supported), (future, PG_SCHEMA_VERSION));
        }
        other => panic!("expected a future version, got {other:?}"),
    }
    let token_after: i64 = c.query_one("SELECT token FROM lease", &[]).unwrap().get(0);
    assert_eq!(token_after, token_before, "the lease was not taken");
    let version: String = c
        .query_one("SELECT value FROM meta WHERE name = 'schema_version'", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, future.to_string());
}

#[test]
fn postgres_a_version_1_store_migrates_and_loads_a_channel() {
    let (mut store, guard) = populated("v1");
    let (one, two) = (channel_records(chan(1), 1), channel_records(chan(2), 2));
    let puts = one
        .iter()
        .chain(&two)
        .map(|(k, r)| put(k.clone(), r.clone()));
    store.commit(&batch(puts.collect())).unwrap();
    drop(store);
    // Version 1 is version 2 without the index on `records(path)`.
    let mut c = raw(&guard.0);
    c.batch_execute(
        "DROP INDEX records_path; UPDATE meta SET value = '1' WHERE name = 'schema_version'",
    )
    .unwrap();
    let index = |c: &mut postgres::Client| -> i64 {
        c.query_one(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'records_path'",
            &[&guard.0],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(index(&mut c), 0);
    assert!(matches!(
        PostgresStore::open_read_only(config(&guard.0)),
        Err(StoreError::OutdatedVersion {
            found: 1,
            supported: PG_SCHEMA_VERSION
        })
    ));

    let store = PostgresStore::open(config(&guard.0)).unwrap();
    let version: String = c
        .query_one("SELECT value FROM meta WHERE name = 'schema_version'", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, PG_SCHEMA_VERSION.to_string());
    assert_eq!(index(&mut c), 1);
    assert_eq!(store.load_channel(chan(1)).unwrap(), one);
    assert_eq!(store.load_channel(chan(2)).unwrap(), two);
    assert_eq!(store.load_channel(chan(3)).unwrap(), vec![]);
    assert_eq!(store.load().unwrap().len(), 2 + one.len() + two.len());

    // The query (as in `rows.rs`) can use the index: same collation ("C") on both sides.
    c.batch_execute("SET enable_seqscan = off").unwrap();
    let plan: Vec<String> = c
        .query(
            "EXPLAIN SELECT key, path, version, body, checksum FROM records \
             WHERE path COLLATE \"C\" = $1 \
             OR (path COLLATE \"C\" >= $2 AND path COLLATE \"C\" < $3)",
            &[&"channel/x", &"channel/x/", &"channel/x0"],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(plan.iter().any(|l| l.contains("records_path")), "{plan:#?}");

    // Only the channel's own rows are read and verified.
    c.batch_execute(&format!(
        "UPDATE records SET body = '{{\"h\":3}}' WHERE path = '{}'",
        RecordKey::Channel { channel: chan(2) }
    ))
    .unwrap();
    assert_eq!(store.load_channel(chan(1)).unwrap(), one);
    assert!(matches!(
        store.load_channel(chan(2)),
        Err(StoreError::Corrupt { what: "record", .. })
    ));
}

#[test]
fn postgres_a_schema_of_another_application_is_refused_and_unchanged() {
    let schema = fresh_schema("foreign");
    let _guard = SchemaGuard(schema.clone());
    let mut c =
        postgres::Client::connect(&super::pg_support::server_url(), postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".users (name TEXT)"
    ))
    .unwrap();
    assert!(matches!(
        PostgresStore::open(config(&schema)),
        Err(StoreError::NotAStore { .. })
    ));
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1);
}

#[test]
fn postgres_a_read_only_open_reads_without_the_lease_and_refuses_writes() {
    let (owner, guard) = populated("read_only");
    let mut reader = PostgresStore::open_read_only(config(&guard.0)).unwrap();
    assert_eq!(reader.token(), None);
    assert_eq!(reader.load().unwrap(), owner.load().unwrap());
    assert_eq!(reader.event_count().unwrap(), 3);
    assert!(matches!(
        reader.commit(&batch(vec![put(RecordKey::Node, rec(1, json!(0)))])),
        Err(StoreError::ReadOnly)
    ));
    assert!(matches!(
        PostgresStore::open_read_only(config(&fresh_schema("empty"))),
        Err(StoreError::NotAStore { .. })
    ));
}

#[test]
fn postgres_a_bad_schema_name_or_unreachable_server_is_a_typed_error() {
    let mut cfg = config("x");
    cfg.schema = "Robert'); DROP TABLE students;--".into();
    assert!(matches!(
        PostgresStore::open(cfg),
        Err(StoreError::Encode {
            what: "schema name",
            ..
        })
    ));
    let mut cfg = config("x");
    cfg.url = "host=/nonexistent/socket/dir user=nobody dbname=none".into();
    match PostgresStore::open(cfg) {
        Err(
            e @ StoreError::Backend {
                backend: "postgres",
                ..
            },
        ) => {
            assert!(
                e.to_string().starts_with("postgres error while connecting"),
                "{e}"
            );
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[test]
fn postgres_a_second_open_is_locked_while_the_owner_lives_and_free_after_it_closes() {
    let (store, guard) = populated("lock");
    assert!(matches!(
        PostgresStore::open(config(&guard.0)),
        Err(StoreError::Locked { .. })
    ));
    let token = store.token().unwrap();
    drop(store); // an orderly close releases the lease at once
    let next = PostgresStore::open(config(&guard.0)).unwrap();
    assert_eq!(next.token().unwrap(), token + 1);
}

#[test]
fn postgres_a_fenced_owner_cannot_commit_and_its_refused_write_is_invisible() {
    let (old, guard) = populated("fence");
    // A lease long enough that the owner's renewer (every third of it) cannot extend it again
    // between the expiry below and the takeover, however loaded the machine.
    drop(old);
    let mut cfg = config(&guard.0);
    cfg.lease = Duration::from_secs(120);
    let mut old = PostgresStore::open(cfg).unwrap();
    let before = old.load().unwrap();
    // The owner stalls past its lease (as if paused): expire it by hand.
    raw(&guard.0)
        .batch_execute("UPDATE lease SET expires_at = now() - interval '1 second'")
        .unwrap();
    let mut new = PostgresStore::open(config(&guard.0)).unwrap();
    assert_eq!(new.token().unwrap(), old.token().unwrap() + 1);
    let attempt = batch(vec![put(RecordKey::Node, rec(1, json!("stale")))]);
    match old.commit(&attempt) {
        Err(StoreError::Fenced { held, current }) => {
            assert_eq!(
                (held, current),
                (old.token().unwrap(), Some(new.token().unwrap()))
            );
        }
        other => panic!("expected fenced, got {other:?}"),
    }
    assert!(matches!(
        old.commit_step(&Event::Tick { unix_secs: 1 }, &[9; 32], &[&attempt]),
        Err(StoreError::Fenced { .. })
    ));
    assert!(matches!(
        old.append_event(&Event::Tick { unix_secs: 1 }),
        Err(StoreError::Fenced { .. })
    ));
    assert!(matches!(
        old.prune_recorder(1, &Records::new()),
        Err(StoreError::Fenced { .. })
    ));
    assert_eq!(new.load().unwrap(), before);
    assert_eq!(new.event_count().unwrap(), 3);
    new.commit(&batch(vec![put(
        RecordKey::Node,
        rec(1, json!("new owner")),
    )]))
    .unwrap();
    // The old owner's close does not release the new owner's lease.
    drop(old);
    assert!(matches!(
        PostgresStore::open(config(&guard.0)),
        Err(StoreError::Locked { .. })
    ));
}

#[test]
fn postgres_a_renewed_lease_keeps_a_standby_out_until_the_owner_closes() {
    let schema = fresh_schema("standby");
    let _guard = SchemaGuard(schema.clone());
    let mut cfg = config(&schema);
    cfg.lease = Duration::from_millis(600);
    let owner = PostgresStore::open(cfg.clone()).unwrap();
    // The owner's loop runs (beats) without calling the store: its lease is renewed, and a
    // standby waiting two lease lengths does not get in.
    let (watch, stop) = (owner.watch(), Arc::new(AtomicBool::new(false)));
    let beating = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                watch.beat();
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let refused = PostgresStore::open_standby(
        cfg.clone(),
        Duration::from_millis(50),
        Some(Duration::from_millis(1200)),
    );
    assert!(
        matches!(refused, Err(StoreError::Locked { .. })),
        "{refused:?}"
    );
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let store = PostgresStore::open_standby(
            cfg,
            Duration::from_millis(20),
            Some(Duration::from_secs(30)),
        );
        (store.map(|s| s.token()), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    drop(owner); // an orderly stop hands over at once, without waiting for the lease to expire
    let (token, waited) = waiter.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    beating.join().unwrap();
    assert_eq!(token.unwrap(), Some(2));
    assert!(waited < Duration::from_millis(900), "waited {waited:?}");
}

#[test]
fn postgres_an_owner_whose_loop_stops_loses_its_lease_to_a_standby_within_lease_and_poll() {
    let schema = fresh_schema("hung");
    let _guard = SchemaGuard(schema.clone());
    let mut cfg = config(&schema);
    let (lease, poll) = (Duration::from_millis(1000), Duration::from_millis(50));
    cfg.lease = lease;
    let mut owner = PostgresStore::open(cfg.clone()).unwrap();
    // The owner's loop works a while (longer than a lease: renewals happen), then hangs: its
    // process (and renewer thread) lives on, but it calls the store no more.
    let working = Instant::now();
    while working.elapsed() < lease * 2 {
        owner
            .commit(&batch(vec![put(RecordKey::Node, rec(1, json!("alive")))]))
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    owner
        .commit(&batch(vec![put(RecordKey::Node, rec(1, json!("last")))]))
        .unwrap();
    let hung = Instant::now();
    let standby = PostgresStore::open_standby(cfg, poll, Some(lease * 5));
    let took = hung.elapsed();
    let standby = standby.expect("the standby takes the hung owner's lease");
    assert_eq!(standby.token(), owner.token().map(|t| t + 1));
    // Within the lease and one poll of the standby (and a margin for a loaded machine).
    assert!(
        took < lease + poll + Duration::from_millis(500),
        "took {took:?}"
    );
    assert!(took >= lease - Duration::from_millis(100), "took {took:?}");
    // Woken up, the old owner can write nothing.
    assert!(matches!(
        owner.commit(&batch(vec![put(RecordKey::Node, rec(1, json!("late")))])),
        Err(StoreError::Fenced { .. })
    ));
}

// ---- A writer killed mid-stream ----

const CHILD_ENV: &str = "CONTRACTCOURT_PG_CRASH_CHILD";

fn crash_config(schema: &str) -> contractcourt_sync::store::PostgresConfig {
    let mut cfg = config(schema);
    cfg.lease = Duration::from_millis(500);
    cfg
}

/// Not a test on its own: the writer process of
/// `postgres_a_killed_writer_leaves_exactly_a_committed_prefix` (this binary with `CHILD_ENV`
/// set to a schema). It commits steps, each with its event, until it is killed.
#[test]
fn postgres_crash_test_writer_process() {
    let Ok(schema) = std::env::var(CHILD_ENV) else {
        return;
    };
    let cfg = crash_config(&schema);
    let mut store = PostgresStore::open_standby(
        cfg,
        Duration::from_millis(20),
        Some(Duration::from_secs(30)),
    )
    .unwrap();
    let first = stored_step(&store).map_or(0, |s| s + 1);
    for i in first.. {
        let step = crash_step(i);
        store
            .commit_step(&Event::Tick { unix_secs: i }, &[0; 32], &[&step])
            .unwrap();
        println!("committed {i}");
    }
}

#[test]
fn postgres_a_killed_writer_leaves_exactly_a_committed_prefix() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let schema = fresh_schema("crash");
    let guard = SchemaGuard(schema.clone());
    let mut acknowledged: Option<u64> = None;
    for round in 1..=3u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "postgres::postgres_crash_test_writer_process",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env(CHILD_ENV, &guard.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut seen = 0;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            if let Some(n) = line.unwrap().split("committed ").nth(1) {
                acknowledged = Some(n.trim().parse().unwrap());
                seen += 1;
                if seen == 3 + round * 3 {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL: the lease is not released, it expires
        child.wait().unwrap();
        let killed = Instant::now();
        let store = PostgresStore::open_standby(
            crash_config(&guard.0),
            Duration::from_millis(20),
            Some(Duration::from_secs(30)),
        )
        .unwrap();
        // Taken over within the lease (500 ms) and a poll, with slack for a loaded machine.
        let took = killed.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "round {round}: took over after {took:?}"
        );
        let k = stored_step(&store).expect("some step was committed");
        let acked = acknowledged.unwrap();
        assert!(
            k >= acked,
            "round {round}: step {acked} was acknowledged, store has {k}"
        );
        let claims: Vec<u64> = store
            .load()
            .unwrap()
            .keys()
            .filter_map(|key| match key {
                RecordKey::Claim { claim } => Some(claim.0),
                _ => None,
            })
            .collect();
        assert_eq!(claims, (k.saturating_sub(2)..=k).collect::<Vec<_>>());
        assert_eq!(store.read_log(chan(1), k + 1).unwrap(), None);
        assert!(store.read_log(chan(1), k).unwrap().is_some());
        assert_eq!(
            store.event_count().unwrap(),
            k + 1,
            "one event per committed step"
        );
    }
}
