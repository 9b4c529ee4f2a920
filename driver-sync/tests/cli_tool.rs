//! The `contractcourt` program as a tool: exit codes, `--version`, output streamed as the run
//! goes, engine settings by flags, logs with `-v`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use contractcourt_sync::simulate::{render_text, SimOutcome};

mod program;
use program::{open_channel_store, root};

fn cc() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_contractcourt"));
    cmd.current_dir(root())
        .env_remove("CONTRACTCOURT_SIM_PAUSE_AT_STEP");
    cmd
}

fn run(args: &[&str]) -> Output {
    cc().args(args).output().expect("the binary runs")
}

/// Start the program with `args`, told to stop at step `step` and wait; returns the child and
/// whether it said it paused there.
fn paused_run(args: &[&str], step: u32, stdout: Stdio) -> (std::process::Child, bool) {
    let mut child = cc()
        .args(args)
        .env("CONTRACTCOURT_SIM_PAUSE_AT_STEP", step.to_string())
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("stderr");
    let expected = format!("contractcourt: paused at step {step}");
    let paused = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .any(|l| l == expected);
    (child, paused)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("contractcourt-tool-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn scenario_json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("scenarios").join(name)).expect("scenario");
    serde_json::from_str(&text).expect("json")
}

#[test]
fn every_exit_code_is_documented_in_the_help() {
    for args in [
        vec!["--help"],
        vec!["simulate", "--help"],
        vec!["replay", "--help"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        let help = text(&o.stdout);
        assert!(help.contains("Exit codes:"), "{args:?}: {help}");
        for code in ["0", "1", "2", "3", "4", "5", "6"] {
            assert!(
                help.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code}  "))),
                "{args:?}: code {code} in {help}"
            );
        }
    }
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    assert!(
        readme.contains("Exit codes"),
        "the README documents them too"
    );
}

#[test]
fn exit_codes_tell_a_resolved_run_from_an_unresolved_one_and_a_malformed_command() {
    let o = run(&["simulate", "scenarios/force-close-htlcs.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // Ended 10 blocks after the close: our to_local is still timelocked.
    let dir = scratch("unresolved");
    let mut short = scenario_json("force-close-htlcs.json");
    short["run_blocks"] = 30.into();
    let path = dir.join("short.json");
    std::fs::write(&path, short.to_string()).expect("write");
    let o = run(&["simulate", "--json", path.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("the whole document");
    assert!(doc["ledger"]["totals"]["timelocked_sat"].as_u64() > Some(0));

    // A malformed command line (clap): 2; an error: 1, in one line.
    let o = run(&[
        "simulate",
        "--no-such-flag",
        "scenarios/force-close-htlcs.json",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["simulate", "no/such/scenario.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).starts_with("error: "));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn version_names_the_commit_and_the_bitcoin_core_kernel() {
    let o = run(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    let version = text(&o.stdout);
    // The commit this checkout is at, asked of git here, independently of the build script.
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |o| text(&o.stdout).trim().to_owned(),
        );
    assert!(
        version.contains(&format!("(commit {commit})")),
        "{version} / {commit}"
    );
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).expect("Cargo.lock");
    let sys = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"libbitcoinkernel-sys\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .and_then(|v| v.strip_suffix('"'))
        .expect("libbitcoinkernel-sys in Cargo.lock");
    assert!(
        version.contains(&format!("libbitcoinkernel-sys {sys}")),
        "{version}"
    );
    assert!(version.contains("Bitcoin Core"), "{version}");
}

#[test]
fn the_text_output_is_printed_as_the_run_goes() {
    // Stopped at its 60th step (about 20 blocks in), the run has printed its first lines.
    let (mut child, paused) = paused_run(
        &["simulate", "scenarios/force-close-htlcs.json"],
        60,
        Stdio::piped(),
    );
    assert!(paused, "the run paused");
    child.kill().expect("kill");
    let _ = child.wait();
    let mut printed = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut printed)
        .expect("read");
    assert!(printed.contains("TIMELINE"), "{printed}");
    assert!(printed.contains("channel open"), "{printed}");
    assert!(
        !printed.contains("LEDGER"),
        "the run is not over: {printed}"
    );
}

#[test]
fn the_streamed_text_is_the_outcomes_text_and_no_progress_bar_is_drawn_off_a_terminal() {
    let o = run(&["simulate", "scenarios/anchors-force-close.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // stderr is a pipe here: no progress bar, nothing at all.
    assert_eq!(text(&o.stderr), "");
    let j = run(&["simulate", "--json", "scenarios/anchors-force-close.json"]);
    let outcome: SimOutcome = serde_json::from_slice(&j.stdout).expect("an outcome");
    assert_eq!(text(&o.stdout), render_text(&outcome));
}

/// The (spent height, final height) of every "final:" line of a run's timeline.
fn finals(doc: &serde_json::Value) -> Vec<(u64, u64)> {
    doc["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| {
            let event = e["event"].as_str()?;
            let spent = event.strip_prefix("final: ")?.rsplit("(spent at ").next()?;
            let spent: u64 = spent.strip_suffix(')')?.parse().ok()?;
            Some((spent, e["height"].as_u64()?))
        })
        .collect()
}

#[test]
fn engine_settings_given_by_flags_reach_the_engine() {
    let o = run(&["simulate", "--json", "scenarios/force-close-htlcs.json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let default = finals(&doc);
    assert!(!default.is_empty());
    // Final once reorg-safe: 6 confirmations by default, the spending block the first.
    assert!(
        default.iter().all(|(spent, fin)| fin - spent == 5),
        "{default:?}"
    );
    let o = run(&[
        "simulate",
        "--json",
        "--reorg-safety-depth",
        "3",
        "scenarios/force-close-htlcs.json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let three = finals(&doc);
    assert_eq!(three.len(), default.len());
    assert!(
        three.iter().all(|(spent, fin)| fin - spent == 2),
        "{three:?}"
    );

    let o = run(&[
        "simulate",
        "--archive-depth",
        "2",
        "scenarios/force-close-htlcs.json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("--archive-depth"),
        "{}",
        text(&o.stderr)
    );
    let help = text(&run(&["simulate", "--help"]).stdout);
    for flag in [
        "--reorg-safety-depth",
        "--archive-depth",
        "--cut-loss-blocks",
        "--outgoing-broadcast-delta",
        "--incoming-broadcast-delta",
        "--htlc-budget-percent",
        "--balance-budget-percent",
        "--balance-deadline-blocks",
        "--htlc-budget-cap-sat",
        "--balance-budget-cap-sat",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
}

#[test]
fn a_resumable_run_keeps_its_engine_settings() {
    let dir = scratch("settings");
    let db = dir.join("engine.sqlite");
    let chain = dir.join("chain");
    let args = |depth: &str| {
        vec![
            "simulate".to_owned(),
            "--reorg-safety-depth".to_owned(),
            depth.to_owned(),
            "--db".to_owned(),
            db.to_str().expect("utf-8").to_owned(),
            "--chain-dir".to_owned(),
            chain.to_str().expect("utf-8").to_owned(),
            "scenarios/force-close-htlcs.json".to_owned(),
        ]
    };
    let o = cc().args(args("3")).output().expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = cc().args(args("4")).output().expect("runs");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("other engine settings"),
        "{}",
        text(&o.stderr)
    );
    let o = cc().args(args("3")).output().expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn verbose_logs_go_to_stderr_and_only_when_asked() {
    let quiet = run(&["simulate", "scenarios/peer-closes.json"]);
    assert_eq!(text(&quiet.stderr), "");
    let v = run(&["-v", "simulate", "scenarios/peer-closes.json"]);
    assert_eq!(v.status.code(), Some(0));
    let logs = text(&v.stderr);
    assert!(logs.contains("INFO"), "{logs}");
    assert!(logs.contains("block mined"), "{logs}");
    assert!(!logs.contains("DEBUG"), "{logs}");
    let vv = run(&["simulate", "-vv", "scenarios/peer-closes.json"]);
    let logs = text(&vv.stderr);
    assert!(logs.contains("DEBUG"), "{logs}");
    assert!(logs.contains("event fed"), "{logs}");
    // The same stdout either way.
    assert_eq!(quiet.stdout, v.stdout);
}

#[test]
fn inspect_and_replay_read_a_store_while_a_run_holds_it() {
    let dir = scratch("live");
    let db = dir.join("engine.sqlite");
    let db_arg = db.to_str().expect("utf-8");
    // The run stops at its 80th step, store open, and waits.
    let (mut child, paused) = paused_run(
        &[
            "simulate",
            "--db",
            db_arg,
            "scenarios/force-close-htlcs.json",
        ],
        80,
        Stdio::null(),
    );
    assert!(paused, "the run paused");
    let inspect = run(&["inspect", "--db", db_arg]);
    let replay = run(&["replay", "--db", db_arg]);
    // A second run on the same store is still refused.
    let second = run(&[
        "simulate",
        "--db",
        db_arg,
        "--chain-dir",
        dir.join("chain").to_str().expect("utf-8"),
        "scenarios/force-close-htlcs.json",
    ]);
    child.kill().expect("kill");
    let _ = child.wait();
    assert_eq!(inspect.status.code(), Some(0), "{}", text(&inspect.stderr));
    let shown = text(&inspect.stdout);
    assert!(shown.contains("CHANNELS"), "{shown}");
    assert!(
        !shown.contains("(none)\n\nLEDGER"),
        "the run's channel: {shown}"
    );
    assert_eq!(replay.status.code(), Some(0), "{}", text(&replay.stderr));
    assert!(text(&replay.stderr).contains(", 0 refused"));
    assert_eq!(second.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(dir);
}

/// Every field path of `v` (`a.b`, `a[].b`), the elements of `pending_upstream` excepted (the
/// core's actions, documented as such).
fn paths(v: &serde_json::Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                if p != "pending_upstream" {
                    paths(child, &p, out);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// A store left by a run of peer-closes.json stopped 12 blocks in: an HTLC we hold the
/// preimage of claimed, one we do not contested, an outgoing one not yet timed out.
fn short_peer_close_store(dir: &Path) -> (PathBuf, serde_json::Value) {
    let mut short = scenario_json("peer-closes.json");
    short["run_blocks"] = 12.into();
    let scenario = dir.join("short.json");
    std::fs::write(&scenario, short.to_string()).expect("write");
    let db = dir.join("engine.sqlite");
    let o = run(&[
        "simulate",
        "--db",
        db.to_str().expect("utf-8"),
        scenario.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(3), "unresolved: {}", text(&o.stderr));
    (db, short)
}

#[test]
fn inspect_shows_each_outputs_maturity_htlc_and_preimage() {
    let dir = scratch("inspect-details");
    let (db, scenario) = short_peer_close_store(&dir);
    let db = db.to_str().expect("utf-8");
    let o = run(&["inspect", "--json", "--db", db]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let tip = doc["tip"]["height"].as_u64().expect("tip");
    let start = tip - 12;
    let outputs = doc["outputs"].as_array().expect("outputs");
    let htlc = |dir: &str, id: u64| {
        outputs
            .iter()
            .find(|o| o["direction"] == dir && o["htlc_id"] == id)
            .unwrap_or_else(|| panic!("{dir} htlc {id}: {outputs:?}"))
    };
    // The scenario's HTLCs: outgoing 0 expires at 30; incoming 0 (preimage known) at 60;
    // incoming 1 (no preimage) at 45.
    assert_eq!(scenario["htlcs"][0]["cltv_expiry"], 30);
    let out0 = htlc("outgoing", 0);
    assert_eq!(out0["amount_sat"], 150_000);
    assert_eq!(out0["maturity_height"], start + 30 + 1);
    assert_eq!(out0["blocks_to_maturity"], start + 31 - tip);
    assert_eq!(out0["status"], "contested");
    assert_eq!(out0["preimage_known"], false);
    assert_eq!(htlc("incoming", 0)["preimage_known"], true);
    assert_eq!(htlc("incoming", 0)["amount_sat"], 80_000);
    let in1 = htlc("incoming", 1);
    assert_eq!(in1["preimage_known"], false);
    assert_eq!(in1["amount_sat"], 25_000);
    let hashes: std::collections::BTreeSet<&str> = outputs
        .iter()
        .filter_map(|o| o["payment_hash"].as_str())
        .collect();
    assert_eq!(hashes.len(), 3, "one hash per HTLC: {hashes:?}");
    assert!(hashes.iter().all(|h| h.len() == 64));

    let o = run(&["inspect", "--db", db]);
    let shown = text(&o.stdout);
    assert!(shown.contains("incoming htlc 1; payment hash "), "{shown}");
    assert!(shown.contains("; no preimage"), "{shown}");
    assert!(
        shown.contains(&format!(
            "matures at {}, in {} block(s)",
            start + 31,
            start + 31 - tip
        )),
        "{shown}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn inspect_json_has_exactly_the_documented_fields_of_its_version() {
    let dir = scratch("inspect-schema");
    let (db, _) = short_peer_close_store(&dir);
    let o = run(&["inspect", "--json", "--db", db.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let spec = std::fs::read_to_string(root().join("docs/inspect-json.md")).expect("the doc");
    assert!(spec.contains("Current version: **1**."));
    assert_eq!(doc["schema"], "contractcourt-inspect");
    assert_eq!(doc["version"], 1);
    let documented: std::collections::BTreeSet<String> = spec
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next().map(str::to_owned))
        .collect();
    let mut found = std::collections::BTreeSet::new();
    paths(&doc, "", &mut found);
    // And a store whose channel is still open (its open_channels entry).
    let open = open_channel_store(&dir);
    let o = run(&["inspect", "--json", "--db", open.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    paths(&doc, "", &mut found);
    assert_eq!(found, documented);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_alert_exits_5_and_a_loss_exits_6() {
    // No fee budget for our balance: the engine alerts that it leaves it unclaimed.
    let o = run(&[
        "simulate",
        "--balance-budget-percent",
        "0",
        "scenarios/anchors-force-close.json",
    ]);
    assert!(text(&o.stdout).contains("ALERT"), "{}", text(&o.stdout));
    assert!(!text(&o.stdout).contains("LOSS"), "{}", text(&o.stdout));
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));

    // No fee budget for HTLC claims, and a run long enough for the peer to time out the
    // incoming HTLC we hold the preimage of: a loss (and alerts, a lower code).
    let dir = scratch("loss");
    let mut long = scenario_json("peer-closes.json");
    long["run_blocks"] = 80.into();
    let path = dir.join("long.json");
    std::fs::write(&path, long.to_string()).expect("write");
    let o = run(&[
        "simulate",
        "--json",
        "--htlc-budget-percent",
        "0",
        path.to_str().expect("utf-8"),
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert!(doc["losses"].as_u64() > Some(0), "{doc}");
    assert!(doc["alerts"].as_u64() > Some(0), "{doc}");
    assert_eq!(o.status.code(), Some(6), "{}", text(&o.stderr));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_progress_bar_is_drawn_on_a_terminal_only_and_never_into_the_output() {
    // `script` (util-linux) runs the program with a pseudo-terminal as its stderr.
    let dir = scratch("tty");
    let out = dir.join("stdout.txt");
    let log = dir.join("tty.log");
    let command = format!(
        "{} simulate scenarios/force-close-htlcs.json > {}",
        env!("CARGO_BIN_EXE_contractcourt"),
        out.display()
    );
    let status = Command::new("script")
        .args(["-qec", &command])
        .arg(&log)
        .current_dir(root())
        .env_remove("CONTRACTCOURT_SIM_PAUSE_AT_STEP")
        .stdin(Stdio::null())
        .status()
        .expect("script (util-linux) runs");
    assert!(status.success(), "{status}");
    let terminal =
        String::from_utf8_lossy(&std::fs::read(&log).expect("the terminal's log")).into_owned();
    assert!(terminal.contains("simulating"), "{terminal}");
    // The bar is redrawn at most a few times a second, so which blocks it shows depends on the
    // machine's speed: any block of the 60 will do.
    assert!(terminal.contains("/60"), "{terminal}");
    let printed = std::fs::read_to_string(&out).expect("stdout");
    let piped = run(&["simulate", "scenarios/force-close-htlcs.json"]);
    assert_eq!(printed, text(&piped.stdout), "the bar never reaches stdout");
    assert!(!text(&piped.stderr).contains("simulating"));
    let _ = std::fs::remove_dir_all(dir);
}
