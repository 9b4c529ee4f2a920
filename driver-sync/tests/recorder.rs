//! The flight recorder kept bounded: blocks recorded reduced to what the engine's index routes,
//! each step recorded in its own commit with the digest of its actions, and `replay --db`
//! telling whether this build reproduces them.

use std::path::{Path, PathBuf};

use bitcoin::hashes::{sha256, Hash, HashEngine};
use contractcourt_core::action::RecordKey;
use contractcourt_core::chain::Config;
use contractcourt_core::event::Event;
use contractcourt_sync::driver::replay_flight_recorder;
use contractcourt_sync::store::{SqliteStore, Store};

mod program;
use program::run;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cc-recorder-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `simulate --db` of a scenario into a fresh store in `dir` (the reorg scenario ends with its
/// alert, exit code 5; the others resolve everything, 0).
fn simulate(dir: &Path, scenario: &str) -> PathBuf {
    simulate_with(dir, scenario, &[])
}

fn simulate_with(dir: &Path, scenario: &str, flags: &[&str]) -> PathBuf {
    let db = dir.join(format!("{scenario}.sqlite"));
    let path = format!("scenarios/{scenario}.json");
    let mut args = vec!["simulate", "--db", db.to_str().expect("utf-8")];
    args.extend_from_slice(flags);
    args.push(&path);
    let o = run(&args);
    let expected = if scenario == "reorg" { 5 } else { 0 };
    assert_eq!(
        o.status.code(),
        Some(expected),
        "{scenario}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    db
}

fn stored_config(store: &SqliteStore) -> Config {
    store
        .record(&RecordKey::Node)
        .unwrap()
        .as_ref()
        .and_then(contractcourt_core::chain::stored_config)
        .unwrap_or_default()
}

fn all_events(store: &SqliteStore) -> Vec<Event> {
    store
        .events(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

#[test]
fn pruned_recordings_of_closes_htlcs_a_breach_and_a_reorg_replay_to_the_recorded_actions() {
    let dir = scratch("pruned");
    let (mut disconnects, mut kept_txs, mut blocks, mut block_bytes) = (0, 0, 0, 0);
    for scenario in [
        "force-close-htlcs",
        "breach-with-htlcs",
        "reorg",
        "cooperative-close",
        "peer-claims-with-preimage",
        "multi-channel",
        "peer-breach",
    ] {
        let db = simulate(&dir, scenario);
        let store = SqliteStore::open_read_only(&db).unwrap();
        let events = all_events(&store);
        for event in &events {
            match event {
                Event::BlockConnected(block) => {
                    // The embedded chain mines a coinbase into every block: never relevant.
                    assert!(
                        block.txs.iter().all(|t| !t.is_coinbase()),
                        "{scenario}: a coinbase was recorded at {}",
                        block.height
                    );
                    blocks += 1;
                    kept_txs += block.txs.len();
                    block_bytes += serde_json::to_string(event).unwrap().len();
                }
                Event::BlockDisconnected { .. } => disconnects += 1,
                _ => {}
            }
        }
        let replay = replay_flight_recorder(stored_config(&store), &store).unwrap();
        assert_eq!(replay.divergence, None, "{scenario}");
        assert_eq!(replay.unchecked, 0, "{scenario}: every step has a digest");
        assert_eq!(replay.checked, events.len() as u64, "{scenario}");
        assert!(replay.transcript.len() > 10, "{scenario}");
        // Every step a digest, every digest numbered as its event.
        let digests = store.step_digests(0, usize::MAX).unwrap();
        let numbers: Vec<u64> = digests.iter().map(|(s, _)| *s).collect();
        assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
    }
    assert!(disconnects > 0, "the reorg scenario disconnects blocks");
    assert!(kept_txs > 0, "closes and claims are kept");
    println!(
        "recorded {blocks} blocks, {kept_txs} relevant transactions, {} bytes per block",
        block_bytes / blocks.max(1)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The store's checksum of a step digest row, computed here from the documented format
/// (SHA256 over the length-prefixed domain tag, the big-endian `seq` and the digest).
fn digest_row_checksum(seq: i64, step: &[u8; 32]) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    let seq = seq.to_be_bytes();
    let parts: [&[u8]; 3] = [b"contractcourt/step-digest", &seq, step];
    for part in parts {
        engine.input(&(part.len() as u64).to_be_bytes());
        engine.input(part);
    }
    sha256::Hash::from_engine(engine).to_byte_array()
}

#[test]
fn replay_db_names_the_first_step_whose_recorded_digest_differs() {
    let dir = scratch("tamper");
    let db = simulate(&dir, "force-close-htlcs");
    let ok = run(&["replay", "--db", db.to_str().unwrap()]);
    assert!(ok.status.success());
    let text = String::from_utf8_lossy(&ok.stderr);
    assert!(
        text.contains("this build reproduces every recorded step"),
        "{text}"
    );

    // Step 7 "was recorded by another build": a different digest, with a valid checksum.
    let tampered = [0xab; 32];
    let conn = rusqlite::Connection::open(&db).unwrap();
    let changed = conn
        .execute(
            "UPDATE step_digests SET digest = ?1, checksum = ?2 WHERE seq = 7",
            rusqlite::params![&tampered[..], &digest_row_checksum(7, &tampered)[..]],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);

    let o = run(&["replay", "--db", db.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(7), "the divergence exit code");
    let text = String::from_utf8_lossy(&o.stderr);
    let line = text
        .lines()
        .find(|l| l.starts_with("diverged at step 7:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&format!("expected actions digest {}", "ab".repeat(32))));
    let store = SqliteStore::open_read_only(&db).unwrap();
    let event = store.events(7, 1).unwrap().remove(0).1;
    let kind = serde_json::to_value(&event).unwrap()["type"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(line.contains(&format!("(event 7: {kind}")), "{line}");
    // The same stdout as before: the actions this build produces.
    assert_eq!(o.stdout, ok.stdout);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_recorder_pruned_past_its_window_replays_from_its_start_to_the_live_state() {
    let dir = scratch("window");
    let db = simulate_with(&dir, "breach-with-htlcs", &["--archive-depth", "12"]);
    let store = SqliteStore::open_read_only(&db).unwrap();
    let config = stored_config(&store);
    assert_eq!(config.close.archive_depth, 12);
    let (first, _) = store.replay_start().unwrap().expect("pruned");
    assert!(first > 0);
    let kept = store.events(0, usize::MAX).unwrap();
    assert_eq!(kept.first().map(|(s, _)| *s), Some(first));
    assert_eq!(kept.last().unwrap().0 + 1, store.event_count().unwrap());
    let blocks = kept
        .iter()
        .filter(|(_, e)| matches!(e, Event::BlockConnected(_)))
        .count();
    assert!(
        (12..=2 * 12 + 1).contains(&blocks),
        "the window holds between one and two archive depths of blocks: {blocks}"
    );

    let replay = replay_flight_recorder(config.clone(), &store).unwrap();
    assert_eq!(replay.first, first);
    assert_eq!(replay.divergence, None);
    assert_eq!(replay.checked, kept.len() as u64);
    assert!(replay.checked > 0);
    // The replay ends where the live engine ended: its stored state.
    let live =
        contractcourt_sync::driver::engine_from_records(&config, store.load().unwrap()).unwrap();
    assert_eq!(replay.engine.ledger(), live.ledger());
    assert_eq!(replay.engine.tip(), live.tip());

    let o = run(&["replay", "--db", db.to_str().unwrap()]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(
        text.contains(&format!("replay starts at event {first}")),
        "{text}"
    );
    assert!(
        text.contains("this build reproduces every recorded step"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
