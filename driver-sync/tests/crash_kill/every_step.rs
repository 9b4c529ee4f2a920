//! SIGKILL at **every** step of scenarios with a reorganisation and the peer's close, not at a
//! sample of them: whatever the step — the fork written to the chain's journal but not yet fed
//! to the engine, a disconnection fed but not the connections after it, a claim broadcast but
//! not recorded — the restarted run must end with the uninterrupted run's outcome and exit
//! code.

use std::path::Path;

use serde_json::Value;

use super::{closing_txids, kill_at, outcome, scratch, simulate, PAUSE_VAR};

/// Run `scenario` in `dir` to its end: the outcome document (none if stdout holds none), the
/// exit code (the reorg scenario's alert gives 5) and stderr.
fn run_whole(scenario: &str, dir: &Path, count_steps: bool) -> (Option<Value>, i32, String) {
    let mut cmd = simulate(scenario, Some(dir));
    if count_steps {
        cmd.env(PAUSE_VAR, u64::MAX.to_string());
    }
    let out = cmd.output().expect("the program runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_slice(&out.stdout).ok();
    (doc, out.status.code().unwrap_or(-1), stderr)
}

fn steps_of(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("contractcourt: ")?.strip_suffix(" steps"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no step count on stderr: {stderr}"))
}

fn every_step_of(name: &str, scenario: &'static str) {
    let base = scratch(&format!("every-step-{name}"));
    let (doc, code, stderr) = run_whole(scenario, &base.join("whole"), true);
    let doc = doc.unwrap_or_else(|| panic!("{scenario}: no outcome document: {stderr}"));
    let total = steps_of(&stderr);
    let closing = closing_txids(&doc);
    assert!(!closing.is_empty(), "{doc}");
    let expect = outcome(&doc, &closing);
    let steps: Vec<u64> = (1..=total).collect();
    let results = super::four_at_a_time(&steps, |_, &step| {
        let dir = base.join(format!("step-{step}"));
        kill_at(scenario, &dir, step);
        let played = run_whole(scenario, &dir, false);
        let _ = std::fs::remove_dir_all(&dir);
        (step, played)
    });
    let mut failed = Vec::new();
    for (_, (step, (doc, got_code, stderr))) in &results {
        let same = doc.as_ref().is_some_and(|d| outcome(d, &closing) == expect);
        if !same || *got_code != code {
            failed.push(format!("step {step}: exit {got_code}: {stderr}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{scenario}: {} of {total} kill steps end otherwise than the uninterrupted run:\n{}",
        failed.len(),
        failed.join("\n")
    );
    eprintln!("{scenario}: killed at each of its {total} steps, every restart ended the same");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn sigkill_at_every_step_of_a_reorg_then_a_restart_ends_as_uninterrupted() {
    every_step_of("reorg", "scenarios/reorg.json");
}
