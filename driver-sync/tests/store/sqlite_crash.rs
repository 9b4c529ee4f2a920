//! A SQLite store's writer killed (SIGKILL) mid-stream leaves exactly a committed prefix.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use contractcourt_core::action::RecordKey;
use contractcourt_core::event::Event;
use contractcourt_sync::store::{SqliteStore, Store};
use serde_json::json;

use super::crash_writer::{crash_step, stored_step};
use super::sqlite_support::*;

// ---- A writer killed mid-stream ----

const CHILD_ENV: &str = "CONTRACTCOURT_STORE_CRASH_CHILD";

/// Not a test on its own: the writer process of
/// `a_killed_writer_leaves_exactly_a_committed_prefix`, which runs this test binary with
/// `CHILD_ENV` set. It commits steps (and records one event per step) until it is killed.
#[test]
fn crash_test_writer_process() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut store = SqliteStore::open(path).unwrap();
    let first = stored_step(&store).map_or(0, |s| s + 1);
    // A previous writer may have died between a step's commit and its event.
    while store.event_count().unwrap() < first {
        let missing = store.event_count().unwrap();
        store
            .append_event(&Event::Tick { unix_secs: missing })
            .unwrap();
    }
    for i in first.. {
        store.commit(&crash_step(i)).unwrap();
        store.append_event(&Event::Tick { unix_secs: i }).unwrap();
        println!("committed {i}");
    }
}

#[test]
fn a_killed_writer_leaves_exactly_a_committed_prefix() {
    let dir = TempDir::new("crash");
    let mut acknowledged: Option<u64> = None;
    for round in 1..=4u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sqlite_crash::crash_test_writer_process",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env(CHILD_ENV, dir.db())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            // libtest may print its "test ... " header on the same line as the first step.
            if let Some(n) = line.split("committed ").nth(1) {
                acknowledged = Some(n.trim().parse().unwrap());
                seen += 1;
                // Kill at a different point of the loop each round.
                if seen == 5 + round * 3 {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL: no destructor, no checkpoint
        child.wait().unwrap();

        let store = SqliteStore::open(dir.db()).unwrap();
        let k = stored_step(&store).expect("some step was committed");
        let acked = acknowledged.unwrap();
        eprintln!("round {round}: acknowledged {acked}, stored {k}");
        assert!(
            k >= acked,
            "round {round}: step {acked} was acknowledged, store has {k}"
        );
        // Exactly steps 0..=k, whole: the claims of the last three steps, log entries 0..=k.
        let records = store.load().unwrap();
        let claims: Vec<u64> = records
            .keys()
            .filter_map(|key| match key {
                RecordKey::Claim { claim } => Some(claim.0),
                _ => None,
            })
            .collect();
        assert_eq!(claims, (k.saturating_sub(2)..=k).collect::<Vec<_>>());
        for seq in [0, k / 2, k] {
            let entry = store.read_log(chan(1), seq).unwrap().unwrap();
            assert_eq!(entry.body.to_value()["step"], json!(seq));
        }
        assert_eq!(store.read_log(chan(1), k + 1).unwrap(), None);
        // The event of step i is recorded after its commit.
        let count = store.event_count().unwrap();
        assert!(
            count == k || count == k + 1,
            "round {round}: {count} events, step {k}"
        );
        if let Some(last) = count.checked_sub(1) {
            let (seq, event) = store.events(last, 10).unwrap().remove(0);
            assert_eq!((seq, event), (last, Event::Tick { unix_secs: last }));
        }
        let report = store.verify().unwrap();
        assert_eq!(report.events, count);
        assert_eq!(report.log_entries, k + 1);
    }
}
