//! Crash safety shown with real processes: `contractcourt simulate --db PATH --chain-dir DIR`
//! killed with SIGKILL at chosen steps of a scenario and started again on the same store and
//! chain directory ends with the outcome of the uninterrupted run — who got each output and
//! how much, and the same final ledger (claims rebuilt after a restart may have other txids).
//!
//! The program stops at a step when `CONTRACTCOURT_SIM_PAUSE_AT_STEP` names it (every event fed
//! to the engine, broadcast, call of the node, block mined and transaction of the peer is a
//! step) and says so on stderr; the test then kills it with `Child::kill`, which is SIGKILL on
//! Unix. Nothing is shut down cleanly: the chain survives through its block journal, the
//! engine through its SQLite store, the rest through the run's state file.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use bitcoin::BlockHash;
use contractcourt_sync::chain::embedded::{EmbeddedChain, TestWallet};
use serde_json::Value;

mod program;
use program::root;
#[path = "crash_kill/every_step.rs"]
mod every_step;
#[path = "crash_kill/wall_clock.rs"]
mod wall_clock;

const PAUSE_VAR: &str = "CONTRACTCOURT_SIM_PAUSE_AT_STEP";
const SIGKILL: i32 = 9;

/// A fresh scratch directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "contractcourt-crash-kill-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// `contractcourt simulate --json [--db dir/engine.sqlite --chain-dir dir/chain] scenario`.
fn simulate(scenario: &str, dir: Option<&Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_contractcourt"));
    cmd.current_dir(root()).args(["simulate", "--json"]);
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).expect("the run's directory");
        cmd.arg("--db")
            .arg(dir.join("engine.sqlite"))
            .arg("--chain-dir")
            .arg(dir.join("chain"));
    }
    cmd.arg(scenario).env_remove(PAUSE_VAR);
    cmd
}

/// Run to the end; the outcome and stderr.
fn run_to_end(mut cmd: Command) -> (Value, String) {
    let out = cmd.output().expect("the program runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the run failed: {stderr}");
    let outcome = serde_json::from_slice(&out.stdout).expect("one JSON document");
    (outcome, stderr)
}

/// Start a run that stops at `step`, wait until it is there and kill it with SIGKILL.
fn kill_at(scenario: &str, dir: &Path, step: u64) {
    let mut child = simulate(scenario, Some(dir))
        .env(PAUSE_VAR, step.to_string())
        // Held open: a paused run whose test went away ends when its stdin closes.
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the program starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let wanted = format!("contractcourt: paused at step {step}");
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("stderr is text");
        if line == wanted {
            child.kill().expect("SIGKILL");
            let status = child.wait().expect("the killed process is reaped");
            assert_eq!(status.signal(), Some(SIGKILL), "killed by SIGKILL");
            return;
        }
        seen.push(line);
    }
    let status = child.wait().expect("the process ends");
    panic!(
        "the run ended ({status}) before step {step}: {}",
        seen.join("\n")
    );
}

/// What the test compares: per output of ours, who got it and how much (and the fees it
/// took), and the ledger's totals, channel states and tip. An output is named by its outpoint
/// when it is one of the closing transactions `closing` (deterministic), and by what it is
/// otherwise (a second-level output's txid may differ after a restart).
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    outputs: Vec<(String, String, u64, String, u64)>,
    totals: Value,
    states: Vec<Value>,
    tip: Value,
}

fn outcome(doc: &Value, closing: &[String]) -> Outcome {
    let ledger = &doc["ledger"];
    let channels = ledger["channels"].as_array().expect("ledger channels");
    let mut outputs = Vec::new();
    for ch in channels {
        for out in ch["outputs"].as_array().expect("outputs") {
            let outpoint = out["outpoint"].as_str().expect("an outpoint").to_owned();
            let on_commitment = closing.iter().any(|t| outpoint.starts_with(t.as_str()));
            let key = if on_commitment {
                outpoint
            } else {
                "(second level)".to_owned()
            };
            outputs.push((
                key,
                out["what"].as_str().expect("what").to_owned(),
                out["amount_sat"].as_u64().expect("amount"),
                out["status"]["status"]
                    .as_str()
                    .expect("a status")
                    .to_owned(),
                out["fees_paid_sat"].as_u64().expect("fees"),
            ));
        }
    }
    outputs.sort();
    Outcome {
        outputs,
        totals: ledger["totals"].clone(),
        states: channels.iter().map(|c| c["state"].clone()).collect(),
        tip: ledger["tip"].clone(),
    }
}

/// The closing transactions of a run.
fn closing_txids(doc: &Value) -> Vec<String> {
    doc["close_summaries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["closing_txid"].as_str().map(str::to_owned))
        .collect()
}

/// `n` steps spread over `1..=total`, first and last included.
fn spread(n: u64, total: u64) -> Vec<u64> {
    (0..n).map(|i| 1 + i * (total - 1) / (n - 1)).collect()
}

struct Plan {
    scenario: &'static str,
    /// Where the first process is killed.
    first: u64,
    /// Where its restart is killed too, if it is.
    second: Option<u64>,
}

/// Play `plan` in `dir`: the kills, then restarts until a run ends; its outcome document.
fn play(plan: &Plan, dir: &Path) -> Value {
    kill_at(plan.scenario, dir, plan.first);
    if let Some(step) = plan.second {
        kill_at(plan.scenario, dir, step);
    }
    let (doc, stderr) = run_to_end(simulate(plan.scenario, Some(dir)));
    assert!(stderr.is_empty(), "{stderr}");
    doc
}

/// The uninterrupted run: its outcome, checked identical with and without `--chain-dir`, and
/// its number of steps.
fn uninterrupted(scenario: &str, dir: &Path) -> (Value, u64) {
    let (plain, _) = run_to_end(simulate(scenario, None));
    let mut cmd = simulate(scenario, Some(dir));
    cmd.env(PAUSE_VAR, u64::MAX.to_string());
    let (kept, stderr) = run_to_end(cmd);
    assert_eq!(
        kept, plain,
        "a run kept in a chain directory prints what a temporary one does"
    );
    let steps = stderr
        .lines()
        .find_map(|l| l.strip_prefix("contractcourt: ")?.strip_suffix(" steps"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no step count on stderr: {stderr}"));
    (plain, steps)
}

/// `run` on every plan, four at a time (each run mostly waits for its disk syncs): every plan's
/// index with its result, in no particular order.
fn four_at_a_time<P: Sync, R: Send>(
    plans: &[P],
    run: impl Fn(usize, &P) -> R + Sync,
) -> Vec<(usize, R)> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(plan) = plans.get(i) else {
                            return done;
                        };
                        done.push((i, run(i, plan)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker"))
            .collect()
    });
    assert_eq!(results.len(), plans.len());
    results
}

#[test]
fn sigkill_at_twenty_steps_of_each_scenario_then_restarts_end_with_the_uninterrupted_outcome() {
    let started = Instant::now();
    let base = scratch("sim");
    let mut plans = Vec::new();
    let mut expected = BTreeMap::new();
    for (name, scenario, kills) in [
        ("htlcs", "scenarios/force-close-htlcs.json", 20),
        ("anchors", "scenarios/anchors-force-close.json", 20),
    ] {
        let (doc, total) = uninterrupted(scenario, &base.join(format!("{name}-whole")));
        let closing = closing_txids(&doc);
        assert_eq!(closing.len(), 1, "one close: {doc}");
        let expect = outcome(&doc, &closing);
        assert_eq!(expect.states, vec![Value::from("fully_resolved")]);
        assert!(expect.outputs.len() >= 5, "{expect:?}");
        assert!(total > 100, "{total} steps");
        assert!(
            expect.outputs.iter().any(|o| o.0.starts_with(&closing[0])),
            "{expect:?}"
        );
        expected.insert(scenario, (expect, closing));
        for (i, first) in spread(kills, total).into_iter().enumerate() {
            // Every other restart is killed too, halfway through what is left.
            let second = (i % 2 == 1).then_some(1 + (total - first) / 2);
            plans.push(Plan {
                scenario,
                first,
                second,
            });
        }
    }

    let results = four_at_a_time(&plans, |i, plan| play(plan, &base.join(format!("run-{i}"))));
    assert_eq!(results.len(), plans.len());
    let mut restarts = 0;
    for (i, doc) in &results {
        let plan = &plans[*i];
        let (expect, closing) = &expected[plan.scenario];
        assert_eq!(
            &outcome(doc, closing),
            expect,
            "{} killed at step {} then {:?}",
            plan.scenario,
            plan.first,
            plan.second
        );
        let note = doc["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|n| n.starts_with("this run was interrupted and resumed"))
            .unwrap_or_else(|| panic!("no note of the restart: {doc}"));
        let n = 1 + u32::from(plan.second.is_some());
        assert!(note.contains(&format!("resumed {n} time(s)")), "{note}");
        restarts += n;
    }
    eprintln!(
        "{} kill points, {restarts} restarts after SIGKILL, in {:.1?}",
        plans.len(),
        started.elapsed()
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// The bytes of every file of a run (the store, its WAL, the state file, the chain).
fn files_of(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("a directory of the run") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("a file of the run");
                files.insert(path, bytes);
            }
        }
    }
    files
}

#[test]
fn a_finished_run_started_again_prints_its_outcome_and_changes_nothing() {
    let dir = scratch("finished");
    let scenario = "scenarios/force-close-htlcs.json";
    let (first, _) = run_to_end(simulate(scenario, Some(&dir)));
    let before = files_of(&dir);
    for _ in 0..2 {
        let (again, stderr) = run_to_end(simulate(scenario, Some(&dir)));
        // The very same document: no "resumed" line, no note of a restart, no count raised.
        assert_eq!(again, first, "{stderr}");
        assert!(!again.to_string().contains("resumed"), "{again}");
    }
    let after = files_of(&dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &before {
        assert!(after[path] == *bytes, "{} changed", path.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_resumed_run_refuses_another_scenario_and_a_new_run_a_used_chain_directory() {
    let dir = scratch("refusals");
    kill_at("scenarios/force-close-htlcs.json", &dir, 30);
    let out = simulate("scenarios/peer-closes.json", Some(&dir))
        .output()
        .expect("the program runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("another scenario"), "{err}");

    // A new store on the chain directory of another run.
    let out = Command::new(env!("CARGO_BIN_EXE_contractcourt"))
        .current_dir(root())
        .arg("simulate")
        .arg("--db")
        .arg(dir.join("other.sqlite"))
        .arg("--chain-dir")
        .arg(dir.join("chain"))
        .arg("scenarios/force-close-htlcs.json")
        .output()
        .expect("the program runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not empty"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child half of the next test: build a chain with a reorg in `dir`, print its tip, the
/// fork's block at height 4 and the blocks 4 and 5 the reorg left behind, and wait to be killed.
fn chain_child(dir: &Path) {
    let wallet = TestWallet::new(5);
    let mut chain = EmbeddedChain::new(dir).expect("a chain");
    chain.mine_blocks(5, wallet.script_pubkey()).expect("mined");
    let stale = [4, 5].map(|h| chain.block_hash_at(h).expect("a block"));
    println!("STALE {} {}", stale[0], stale[1]);
    chain
        .reorg(3, vec![vec![]; 3], wallet.script_pubkey())
        .expect("a reorg");
    let fork_block = chain.block_hash_at(4).expect("a block at 4");
    println!("TIP {} {} {fork_block}", chain.height(), chain.tip().hash);
    // Until killed (or until the parent goes away and stdin closes).
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
}

#[test]
fn the_embedded_chain_of_a_killed_process_reopens_at_its_tip() {
    const CHILD: &str = "CONTRACTCOURT_CRASH_KILL_CHAIN_CHILD";
    if let Some(dir) = std::env::var_os(CHILD) {
        chain_child(Path::new(&dir));
        return;
    }
    let dir = scratch("chain");
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "the_embedded_chain_of_a_killed_process_reopens_at_its_tip",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let stale_line = lines
        .find(|l| l.starts_with("STALE "))
        .expect("the child reports the blocks its reorg leaves behind");
    let line = lines
        .find(|l| l.starts_with("TIP "))
        .expect("the child reports its tip");
    child.kill().expect("SIGKILL");
    assert_eq!(child.wait().expect("reaped").signal(), Some(SIGKILL));
    let parts: Vec<&str> = line.split(' ').collect();
    let (height, tip, fork_block): (u32, BlockHash, BlockHash) = (
        parts[1].parse().expect("a height"),
        parts[2].parse().expect("a hash"),
        parts[3].parse().expect("a hash"),
    );

    let wallet = TestWallet::new(5);
    let mut chain = EmbeddedChain::new(&dir).expect("the chain reopens");
    assert_eq!((chain.height(), chain.tip().hash), (height, tip));
    assert_eq!(chain.block_hash_at(4), Some(fork_block));
    // The blocks the reorg left behind are known by their headers still (a chain source walks
    // an engine's stale blocks down to the fork point through them).
    let stale: Vec<BlockHash> = stale_line
        .split(' ')
        .skip(1)
        .map(|h| h.parse().expect("a hash"))
        .collect();
    let header = chain.header(&stale[1]).expect("the stale block 5's header");
    assert_eq!(header.block_hash(), stale[1]);
    assert_eq!(
        header.prev_blockhash, stale[0],
        "its parent, the stale block 4"
    );
    // The UTXO view is rebuilt too: the coinbase of block 2 is there, spendable by the wallet.
    assert!(chain
        .utxos_for_script(wallet.script_pubkey())
        .iter()
        .any(|(_, u)| u.height == 2));
    // A new fork gets a branch number of its own: its blocks are new ones.
    chain
        .reorg(3, vec![vec![]; 4], wallet.script_pubkey())
        .expect("another reorg");
    assert_eq!(chain.height(), 7);
    assert_ne!(chain.block_hash_at(4), Some(fork_block));
    drop(chain);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The timeline of an outcome document: (height, event).
fn timeline(doc: &Value) -> Vec<(u64, String)> {
    doc["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .map(|e| {
            (
                e["height"].as_u64().expect("a height"),
                e["event"].as_str().expect("an event").to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_run_killed_around_its_close_reports_the_close_once_and_lists_nothing_twice() {
    // force-close-htlcs.json closes at the 122nd block; steps 50 to 64 are the blocks around
    // its confirmation (the close summary is reported while block 123 is fed, before the
    // run's log is saved).
    let scenario = "scenarios/force-close-htlcs.json";
    let base = scratch("around-close");
    let (whole, _) = run_to_end(simulate(scenario, None));
    let expected = whole["close_summaries"].clone();
    assert_eq!(expected.as_array().map(Vec::len), Some(1), "{whole}");
    for step in 50..=64 {
        let dir = base.join(format!("step-{step}"));
        kill_at(scenario, &dir, step);
        let (doc, _) = run_to_end(simulate(scenario, Some(&dir)));
        assert_eq!(
            doc["close_summaries"], expected,
            "killed at step {step}: {doc}"
        );
        let lines = timeline(&doc);
        let closes = lines
            .iter()
            .filter(|(_, e)| e.starts_with("close confirmed"))
            .count();
        assert_eq!(closes, 1, "killed at step {step}: {lines:?}");
        // The rate the engine has is not fed (nor listed) again after a restart.
        let rates = lines
            .iter()
            .filter(|(_, e)| e == "fee rate 2 sat/vB")
            .count();
        assert_eq!(rates, 1, "killed at step {step}: {lines:?}");
        for pair in lines.windows(2) {
            assert!(pair[0].0 <= pair[1].0, "step {step}: {pair:?}");
        }
        // The driver fed nothing the engine refused (no block fed twice on the resume).
        let replay = Command::new(env!("CARGO_BIN_EXE_contractcourt"))
            .current_dir(root())
            .args(["replay", "--db"])
            .arg(dir.join("engine.sqlite"))
            .output()
            .expect("replay runs");
        let said = String::from_utf8_lossy(&replay.stderr).into_owned();
        assert!(said.contains(", 0 refused"), "step {step}: {said}");
        assert_eq!(replay.status.code(), Some(0), "step {step}: {said}");
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_store_whose_flight_recorder_fails_its_checksums_is_refused_by_every_command() {
    let scenario = "scenarios/force-close-htlcs.json";
    let dir = scratch("corrupt");
    kill_at(scenario, &dir, 30);
    let db = dir.join("engine.sqlite");
    {
        let conn = rusqlite::Connection::open(&db).expect("the store");
        let changed = conn
            .execute(
                "UPDATE events SET checksum = zeroblob(32) WHERE seq = 3",
                [],
            )
            .expect("damage one event");
        assert_eq!(changed, 1);
    }
    let cc = |args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_contractcourt"))
            .current_dir(root())
            .args(args)
            .env_remove(PAUSE_VAR)
            .output()
            .expect("the program runs")
    };
    let db_arg = db.as_os_str();
    for (what, out) in [
        ("replay", cc(&["replay".as_ref(), "--db".as_ref(), db_arg])),
        (
            "inspect",
            cc(&["inspect".as_ref(), "--db".as_ref(), db_arg]),
        ),
        (
            "simulate",
            simulate(scenario, Some(&dir))
                .output()
                .expect("the program runs"),
        ),
    ] {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: "), "{what}: {stderr}");
        assert!(last.contains("checksum mismatch"), "{what}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
