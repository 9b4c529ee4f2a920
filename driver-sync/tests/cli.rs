//! The `contractcourt` program, run as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Output;

mod program;
use program::{root, run};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("contractcourt-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn assert_one_line_error(o: &Output) {
    assert!(!o.status.success(), "must fail: {}", stdout(o));
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines.last().is_some_and(|l| l.starts_with("error: ")),
        "ends with one error line: {err}"
    );
}

#[test]
fn simulate_force_close_recovers_every_output_of_ours() {
    let o = run(&["simulate", "scenarios/force-close-htlcs.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("CLOSE SUMMARY"), "{text}");
    assert!(text.contains("close:        our commitment"), "{text}");
    assert!(text.contains("LEDGER"), "{text}");
    assert!(text.contains("0 refused by the mempool"), "{text}");

    let o = run(&["simulate", "--json", "scenarios/force-close-htlcs.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(doc["close_summaries"].as_array().map(Vec::len), Some(1));
    assert_eq!(doc["rejections"], 0);
    let channels = doc["ledger"]["channels"]
        .as_array()
        .expect("ledger channels");
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0]["state"], "fully_resolved");
    let outputs = channels[0]["outputs"].as_array().expect("outputs");
    assert!(!outputs.is_empty());
    for out in outputs {
        let status = out["status"]["status"].as_str().unwrap_or_default();
        // An HTLC claimed through our second-level transaction is listed once more as that
        // transaction's output, which is the one recovered (and counted).
        assert!(status == "recovered" || status == "second_level", "{out}");
    }
    assert_eq!(doc["ledger"]["totals"]["taken_by_peer_sat"], 0);
}

#[test]
fn simulate_anchors_cpfps_our_commitment_and_funds_htlc_transactions_from_the_wallet() {
    let o = run(&["simulate", "--json", "scenarios/anchors-force-close.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    // Every transaction — the commitment, its CPFP child, the wallet-funded zero-fee HTLC
    // transactions and the sweeps — was accepted by the embedded Bitcoin Core mempool and mined.
    assert_eq!(doc["rejections"], 0);
    let channels = doc["ledger"]["channels"]
        .as_array()
        .expect("ledger channels");
    assert_eq!(channels[0]["state"], "fully_resolved");
    let outputs = channels[0]["outputs"].as_array().expect("outputs");
    let anchor = outputs
        .iter()
        .find(|o| o["what"] == "anchor")
        .expect("our anchor in the ledger");
    assert_eq!(
        anchor["status"]["status"], "recovered",
        "spent by our CPFP child"
    );
    assert!(
        anchor["fees_paid_sat"].as_u64() > Some(0),
        "the child's fee"
    );
    let second_level = outputs
        .iter()
        .filter(|o| o["status"]["status"] == "second_level")
        .count();
    assert_eq!(
        second_level, 2,
        "both HTLCs claimed through zero-fee HTLC transactions"
    );
    assert_eq!(doc["ledger"]["totals"]["taken_by_peer_sat"], 0);
}

#[test]
fn simulate_json_is_deterministic() {
    let a = run(&["simulate", "--json", "scenarios/peer-closes.json"]);
    let b = run(&["simulate", "--json", "scenarios/peer-closes.json"]);
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn simulate_peer_claim_with_preimage_is_taken_by_the_peer() {
    let o = run(&[
        "simulate",
        "--json",
        "scenarios/peer-claims-with-preimage.json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert!(doc["ledger"]["totals"]["taken_by_peer_sat"].as_u64() > Some(0));
    assert_eq!(doc["rejections"], 0);
}

fn golden() -> PathBuf {
    root().join("tests/golden/outgoing_deadline_local_close.json")
}

#[test]
fn replay_of_a_golden_trace_succeeds_and_is_deterministic() {
    let path = golden();
    let path = path.to_str().expect("utf-8 path");
    let a = run(&["replay", path]);
    assert!(a.status.success(), "{}", stderr(&a));
    let b = run(&["replay", path]);
    assert_eq!(a.stdout, b.stdout);
    let text = stdout(&a);
    let trace: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden()).expect("golden")).expect("json");
    let steps = trace["steps"].as_array().expect("steps").len();
    assert_eq!(text.lines().count(), steps);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert!(v["step"].is_u64());
    }
}

#[test]
fn replay_of_a_tampered_trace_fails_with_one_line() {
    let text = std::fs::read_to_string(golden()).expect("golden");
    let mut trace: serde_json::Value = serde_json::from_str(&text).expect("json");
    // Expect a refusal where the engine accepts the first event.
    trace["steps"][0]["expect"] = serde_json::json!({ "kind": "refused", "error": "tampered" });
    let dir = scratch("tampered");
    let path = dir.join("tampered.json");
    std::fs::write(&path, serde_json::to_string(&trace).expect("json")).expect("write");
    let o = run(&["replay", path.to_str().expect("utf-8")]);
    assert_one_line_error(&o);
    assert!(stderr(&o).contains("differs"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn replay_of_a_trace_with_a_sim_setup_starts_from_its_channels() {
    use contractcourt_core::bolt3::ChannelType;
    use contractcourt_core::event::{Event, ForceCloseReason};
    use contractcourt_core::sim::{trace_start, SimChannel, SimSetup};
    use contractcourt_core::trace::{Trace, TraceSetup};
    let channel = SimSetup::new(11, ChannelType::StaticRemoteKey);
    let (sim, _) = SimChannel::open(channel.clone()).expect("sim channel");
    let setup = TraceSetup::Sim {
        setup: serde_json::json!({ "channels": [channel] }),
    };
    let mut engine = trace_start(&setup).expect("engine");
    let mut trace = Trace::new("a force close of a sim channel", setup);
    trace.record(
        &mut engine,
        Event::ForceCloseRequested {
            channel: sim.channel_id,
            reason: ForceCloseReason::User,
        },
    );
    let dir = scratch("sim-setup");
    let path = dir.join("sim.json");
    std::fs::write(&path, trace.to_json()).expect("write");
    let o = run(&["replay", path.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    // The same trace's events without its channels: the force close names an unknown channel.
    let mut bare: serde_json::Value = serde_json::from_str(&trace.to_json()).expect("json");
    bare["setup"] = serde_json::json!({ "kind": "empty" });
    std::fs::write(&path, serde_json::to_string(&bare).expect("json")).expect("write");
    assert_one_line_error(&run(&["replay", path.to_str().expect("utf-8")]));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn inspect_and_replay_a_store_left_by_simulate() {
    let dir = scratch("inspect");
    let db = dir.join("engine.sqlite");
    let db = db.to_str().expect("utf-8");
    let o = run(&["simulate", "--db", db, "scenarios/force-close-htlcs.json"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = run(&["inspect", "--db", db]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("CHANNELS"), "{text}");
    assert!(text.contains("fully_resolved"), "{text}");
    assert!(text.contains("OUTPUTS"), "{text}");
    assert!(text.contains("totals: recovered"), "{text}");

    let a = run(&["replay", "--db", db]);
    assert!(a.status.success(), "{}", stderr(&a));
    let b = run(&["replay", "--db", db]);
    assert_eq!(a.stdout, b.stdout);
    assert!(stdout(&a).lines().count() > 10);
    for line in stdout(&a).lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("a JSON line");
    }

    // A simulation never overwrites a store.
    let o = run(&["simulate", "--db", db, "scenarios/force-close-htlcs.json"]);
    assert_one_line_error(&o);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn malformed_scenario_and_missing_files_fail_with_one_line() {
    let dir = scratch("malformed");
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{ "channel_type": "static_remote_key", "capacity_sat": "#,
    )
    .expect("write");
    let o = run(&["simulate", bad.to_str().expect("utf-8")]);
    assert_one_line_error(&o);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));

    let typo = dir.join("typo.json");
    let text = std::fs::read_to_string(root().join("scenarios/force-close-htlcs.json"))
        .expect("scenario")
        .replace("run_blocks", "run_blokcs");
    std::fs::write(&typo, text).expect("write");
    let o = run(&["simulate", typo.to_str().expect("utf-8")]);
    assert_one_line_error(&o);

    let o = run(&["simulate", "no/such/scenario.json"]);
    assert_one_line_error(&o);
    let o = run(&["inspect", "--db", "no/such/store.sqlite"]);
    assert_one_line_error(&o);
    let o = run(&["replay", bad.to_str().expect("utf-8")]);
    assert_one_line_error(&o);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn help_works_for_every_subcommand() {
    for args in [
        vec!["--help"],
        vec!["simulate", "--help"],
        vec!["replay", "--help"],
        vec!["inspect", "--help"],
        vec!["help", "simulate"],
    ] {
        let o = run(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("Usage"), "{args:?}: {}", stdout(&o));
    }
}

#[test]
fn simulate_with_a_chain_dir_resumes_only_its_own_runs_and_says_why_in_one_line() {
    let dir = scratch("chain-dir");
    let db = dir.join("engine.sqlite");
    let chain = dir.join("chain");
    let (db, chain) = (db.to_str().expect("utf-8"), chain.to_str().expect("utf-8"));
    let o = run(&["simulate", "--help"]);
    assert!(stdout(&o).contains("--chain-dir <DIR>"), "{}", stdout(&o));

    let o = run(&[
        "simulate",
        "--db",
        db,
        "--chain-dir",
        chain,
        "scenarios/force-close-htlcs.json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("LEDGER"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("resumed"), "{}", stdout(&o));

    // A store made without --chain-dir is not resumable.
    let plain = dir.join("plain.sqlite");
    let plain = plain.to_str().expect("utf-8");
    let o = run(&[
        "simulate",
        "--db",
        plain,
        "scenarios/force-close-htlcs.json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let other_chain = dir.join("other-chain");
    let o = run(&[
        "simulate",
        "--db",
        plain,
        "--chain-dir",
        other_chain.to_str().expect("utf-8"),
        "scenarios/force-close-htlcs.json",
    ]);
    assert_one_line_error(&o);
    assert!(
        stderr(&o).contains("not a resumable simulation"),
        "{}",
        stderr(&o)
    );

    // A damaged state file is a clear error, not a guess.
    let state = dir.join("engine.sqlite.sim.json");
    std::fs::write(&state, r#"{ "version": 99 }"#).expect("write");
    let o = run(&[
        "simulate",
        "--db",
        db,
        "--chain-dir",
        chain,
        "scenarios/force-close-htlcs.json",
    ]);
    assert_one_line_error(&o);
    assert!(
        stderr(&o).contains("version 99 is unknown"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A scenario file of `value` in `dir`.
fn write_scenario(dir: &Path, name: &str, value: &serde_json::Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).expect("write the scenario");
    path.to_str().expect("utf-8").to_owned()
}

fn scenario_json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("scenarios").join(name)).expect("scenario");
    serde_json::from_str(&text).expect("json")
}

/// The timeline of a `simulate --json` document: (height, event).
fn timeline(doc: &serde_json::Value) -> Vec<(u64, String)> {
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

fn assert_height_order(lines: &[(u64, String)]) {
    for pair in lines.windows(2) {
        assert!(
            pair[0].0 <= pair[1].0,
            "out of height order: {:?} before {:?}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn a_fee_rate_is_in_force_for_the_block_of_its_height() {
    // anchors-force-close.json: 20 sat/vB from height 0, 5 sat/vB from height 40; our to_local
    // (timelocked until 41 blocks after the start) is claimed when block 40 arrives.
    let scenario = scenario_json("anchors-force-close.json");
    assert_eq!(scenario["fee_rates"][1]["from_height"], 40);
    assert_eq!(scenario["fee_rates"][1]["sat_per_vb"], 5);
    let o = run(&["simulate", "--json", "scenarios/anchors-force-close.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let start = doc["start_height"].as_u64().expect("start height");
    let lines = timeline(&doc);
    let claim = lines
        .iter()
        .find(|(_, e)| e.starts_with("our to_local: claiming at"))
        .expect("the to_local claim");
    assert_eq!(claim.0, start + 40, "{claim:?}");
    assert!(
        claim.1.starts_with("our to_local: claiming at 5.0 sat/vB"),
        "{claim:?}"
    );
    let rate_line = lines
        .iter()
        .position(|(_, e)| e == "fee rate 5 sat/vB")
        .expect("the fee rate line");
    let claim_line = lines.iter().position(|l| l == claim).expect("claim");
    assert!(rate_line < claim_line);
    assert_eq!(lines[rate_line].0, start + 40);
}

#[test]
fn the_timeline_starts_with_the_channel_and_stays_in_height_order() {
    // An incoming HTLC we hold the preimage of expires 5 blocks after the start: the engine
    // goes to chain while the channel is being set up.
    let dir = scratch("order");
    let mut early = scenario_json("force-close-htlcs.json");
    early["htlcs"][0]["cltv_expiry"] = 40.into();
    early["htlcs"][1]["cltv_expiry"] = 5.into();
    early["run_blocks"] = 60.into();
    let early = write_scenario(&dir, "early.json", &early);
    let o = run(&["simulate", "--json", &early]);
    // Done, or ended with a claim still out (exit code 3): either way a whole document.
    assert!(matches!(o.status.code(), Some(0 | 3)), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let lines = timeline(&doc);
    assert!(lines[0].1.starts_with("channel open"), "{lines:?}");
    assert_eq!(lines[1].1, "fee rate 2 sat/vB", "{lines:?}");
    assert!(
        lines[2].1 == "broadcast our commitment",
        "the close at once, priced with the scenario's rate: {lines:?}"
    );
    assert_height_order(&lines);
    for name in [
        "force-close-htlcs.json",
        "anchors-force-close.json",
        "peer-closes.json",
        "peer-breach.json",
        "peer-claims-with-preimage.json",
    ] {
        let o = run(&["simulate", "--json", &format!("scenarios/{name}")]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        let lines = timeline(&doc);
        assert!(lines[0].1.starts_with("channel open"), "{name}: {lines:?}");
        assert_height_order(&lines);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_breach_scenario_claims_the_revoked_output_and_its_documentation_says_so() {
    let o = run(&["simulate", "--json", "scenarios/peer-breach.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let outputs = doc["ledger"]["channels"][0]["outputs"]
        .as_array()
        .expect("outputs");
    let revoked = outputs
        .iter()
        .find(|o| {
            o["what"]
                .as_str()
                .is_some_and(|w| w.starts_with("revoked commitment"))
        })
        .expect("the revoked commitment's output in the ledger");
    assert_eq!(revoked["status"]["status"], "recovered", "{revoked}");
    assert_eq!(doc["ledger"]["totals"]["contested_sat"], 0);
    assert_eq!(doc["notes"], serde_json::json!([]));
    // What the documentation and the scenario itself say about it.
    let readme = std::fs::read_to_string(root().join("scenarios/README.md")).expect("readme");
    let name = doc["scenario"].as_str().expect("the scenario's name");
    for text in [readme.as_str(), name] {
        assert!(!text.contains("does not yet claim"), "{text}");
        assert!(
            !text.contains("justice transactions are an open issue"),
            "{text}"
        );
    }
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `peer-breach.json`"))
        .expect("the scenario's row");
    assert!(row.contains("justice transaction"), "{row}");
}

#[test]
fn replay_of_a_store_lists_every_refused_event_with_its_reason() {
    use contractcourt_sync::store::{SqliteStore, Store};
    let dir = scratch("refused");
    let db = dir.join("engine.sqlite");
    let db_arg = db.to_str().expect("utf-8");
    let o = run(&[
        "simulate",
        "--db",
        db_arg,
        "scenarios/force-close-htlcs.json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["replay", "--db", db_arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(", 0 refused"), "{}", stderr(&o));

    // The recorder keeps what a driver fed, refused or not: the tip block fed once more.
    let seq = {
        let mut store = SqliteStore::open(&db).expect("the store");
        let n = store.event_count().expect("count");
        let events = store
            .events(0, usize::try_from(n).expect("n"))
            .expect("events");
        let tip = events
            .iter()
            .rev()
            .find(|(_, e)| matches!(e, contractcourt_core::event::Event::BlockConnected(_)))
            .map(|(_, e)| e.clone())
            .expect("a block");
        store.append_event(&tip).expect("append")
    };
    let o = run(&["replay", "--db", db_arg]);
    let err = stderr(&o);
    assert!(err.contains(", 1 refused"), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with(&format!("event {seq} ")))
        .unwrap_or_else(|| panic!("no line for event {seq}: {err}"));
    assert!(line.contains("block_connected"), "{line}");
    assert!(line.contains("refused: "), "{line}");
    // Exit code 4: something was refused (see --help).
    assert_eq!(o.status.code(), Some(4), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
