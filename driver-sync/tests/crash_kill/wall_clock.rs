//! SIGKILL at seeded pseudo-random **wall-clock** moments, not at the program's pause points: a
//! kill lands wherever the process is — inside a SQLite commit, between a block's journal write
//! and the engine's step, while the peer's transaction is being mined — over scenarios with a
//! breach, a reorg and the peer's close. Each killed run is started again (and again, until it
//! ends), and its outcome must be the uninterrupted run's.
//!
//! The seed is printed; `CONTRACTCOURT_KILL_SEED=N` repeats the same kill moments.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{closing_txids, outcome, scratch, simulate, Outcome};

/// Kill moments per scenario.
const KILLS: u64 = 8;

/// The scenarios: a breach with HTLCs, a reorg of a close, the peer's close.
const SCENARIOS: [(&str, &str); 3] = [
    ("breach", "scenarios/breach-with-htlcs.json"),
    ("reorg", "scenarios/reorg.json"),
    ("peer", "scenarios/peer-closes.json"),
];

fn seed() -> u64 {
    std::env::var("CONTRACTCOURT_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

/// The `i`-th kill moment of `seed`, below `total_ms` (a 64-bit LCG step, high bits).
fn moment(seed: u64, i: u64, total_ms: u64) -> u64 {
    let x = seed
        .wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (x >> 33) % total_ms.max(1)
}

/// Start `scenario` in `dir` and SIGKILL it `after_ms` later, wherever it is. Whether it was
/// killed (`false`: it had already ended).
fn kill_after(scenario: &str, dir: &Path, after_ms: u64) -> bool {
    let mut child = simulate(scenario, Some(dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the program starts");
    let deadline = Instant::now() + Duration::from_millis(after_ms);
    while Instant::now() < deadline {
        if child.try_wait().expect("the child's status").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let killed = child.try_wait().expect("the child's status").is_none();
    if killed {
        child.kill().expect("SIGKILL");
    }
    let _ = child.wait();
    killed
}

/// Run `scenario` in `dir` to its end: the outcome document, stderr and exit code (a scenario
/// may end with a code of its own: the reorg scenario's alert gives 5), and how long it took.
fn run_whole(scenario: &str, dir: &Path) -> (Value, String, i32, u64) {
    let started = Instant::now();
    let out = simulate(scenario, Some(dir))
        .output()
        .expect("the program runs");
    let ms = started.elapsed().as_millis() as u64;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{scenario}: no outcome document ({e}): {stderr}"));
    (doc, stderr, out.status.code().unwrap_or(-1), ms)
}

struct Played {
    scenario: &'static str,
    moments: Vec<u64>,
    killed: usize,
    doc: Value,
    code: i32,
}

/// Kill at `moments` (one process each, every restart killed again), then run to the end.
fn play(scenario: &'static str, dir: &Path, moments: Vec<u64>) -> Played {
    let killed = moments
        .iter()
        .filter(|&&ms| kill_after(scenario, dir, ms))
        .count();
    let (doc, _, code, _) = run_whole(scenario, dir);
    Played {
        scenario,
        moments,
        killed,
        doc,
        code,
    }
}

#[test]
fn sigkill_at_random_moments_of_a_breach_a_reorg_and_the_peers_close_ends_as_uninterrupted() {
    let seed = seed();
    eprintln!("wall-clock kills: seed {seed} (CONTRACTCOURT_KILL_SEED={seed} repeats them)");
    let base = scratch("wall-clock");
    let mut expected: Vec<(&str, Outcome, Vec<String>, i32)> = Vec::new();
    let mut plans: Vec<(&'static str, Vec<u64>)> = Vec::new();
    for (name, scenario) in SCENARIOS {
        let (doc, stderr, code, total) = run_whole(scenario, &base.join(format!("{name}-whole")));
        let closing = closing_txids(&doc);
        assert!(!closing.is_empty(), "{doc}\n{stderr}");
        expected.push((scenario, outcome(&doc, &closing), closing, code));
        for i in 0..KILLS {
            // Every other plan kills its restart too.
            let first = moment(seed, 2 * i, total);
            let mut moments = vec![first];
            if i % 2 == 1 {
                moments.push(moment(seed, 2 * i + 1, total));
            }
            plans.push((scenario, moments));
        }
    }
    let played: Vec<Played> = super::four_at_a_time(&plans, |i, (scenario, moments)| {
        play(scenario, &base.join(format!("run-{i}")), moments.clone())
    })
    .into_iter()
    .map(|(_, p)| p)
    .collect();
    let mut killed = 0;
    for p in &played {
        let (_, expect, closing, code) = expected
            .iter()
            .find(|(s, ..)| *s == p.scenario)
            .expect("a scenario");
        let why = format!("{} killed at {:?} ms (seed {seed})", p.scenario, p.moments);
        assert_eq!(&outcome(&p.doc, closing), expect, "{why}");
        assert_eq!(p.code, *code, "exit code: {why}");
        killed += p.killed;
    }
    let moments: usize = plans.iter().map(|(_, m)| m.len()).sum();
    eprintln!("{moments} kill moments, {killed} landed while the program ran (seed {seed})");
    // Moments are drawn below a whole run's time: most land while the program runs.
    assert!(2 * killed >= moments, "{killed} of {moments} kills landed");
    let _ = std::fs::remove_dir_all(&base);
}
