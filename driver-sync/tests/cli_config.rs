//! `contractcourt completions SHELL`, `simulate --config FILE` and `inspect` of a channel still
//! open, run as a user runs them.

use std::path::PathBuf;
use std::process::Command;

mod program;
use program::{open_channel_store, run};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cc-cfg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SUBCOMMANDS: [&str; 4] = ["simulate", "replay", "inspect", "completions"];

#[test]
fn bash_completion_completes_subcommands_and_flags() {
    let o = run(&["completions", "bash"]);
    assert!(o.status.success());
    let dir = scratch("bash");
    let script = dir.join("contractcourt.bash");
    std::fs::write(&script, &o.stdout).expect("write");
    // Sourced by bash, asked what `contractcourt si` and `contractcourt simulate --sv` complete to.
    let probe = format!(
        r#"source {}
complete -p contractcourt >/dev/null || exit 9
COMP_WORDS=(contractcourt si); COMP_CWORD=1; COMP_LINE="contractcourt si"; COMP_POINT=16
_contractcourt contractcourt si contractcourt; echo "1:${{COMPREPLY[*]}}"
COMP_WORDS=(contractcourt simulate --sv); COMP_CWORD=2; COMP_LINE="contractcourt simulate --sv"; COMP_POINT=27
_contractcourt contractcourt --sv simulate; echo "2:${{COMPREPLY[*]}}"
"#,
        script.display()
    );
    let o = Command::new("bash")
        .args(["--norc", "-c", &probe])
        .output()
        .expect("bash runs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("1:simulate"), "{out}");
    assert!(out.contains("2:--svg"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn zsh_and_fish_completions_name_the_program_and_every_subcommand() {
    for (shell, header) in [
        ("zsh", "#compdef contractcourt"),
        ("fish", "complete -c contractcourt"),
    ] {
        let o = run(&["completions", shell]);
        assert!(o.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains(header), "{shell}: {text}");
        for sub in SUBCOMMANDS {
            assert!(text.contains(sub), "{shell} lacks {sub}");
        }
        assert!(
            text.contains("reorg-safety-depth"),
            "{shell}: the settings' flags"
        );
    }
    let o = run(&["completions", "tcsh"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

/// The heights at which a claimed output became final, with the heights it was spent at:
/// (spent, final) for each `final: ... (spent at H)` line.
fn finality(doc: &serde_json::Value) -> Vec<(u64, u64)> {
    doc["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| {
            let text = e["event"].as_str()?;
            let spent = text.split("(spent at ").nth(1)?.trim_end_matches(')');
            Some((spent.parse().ok()?, e["height"].as_u64()?))
        })
        .collect()
}

fn simulate_with(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["simulate", "--json"];
    all.extend_from_slice(args);
    all.push("scenarios/peer-breach.json");
    let o = run(&all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("JSON")
}

#[test]
fn a_config_file_sets_the_engine_and_a_flag_overrides_it() {
    let dir = scratch("precedence");
    let file = dir.join("engine.toml");
    std::fs::write(&file, "reorg_safety_depth = 3\n").expect("write");
    let file = file.to_str().expect("utf-8");
    // With reorg_safety_depth d, an output spent at height h (its first confirmation) is final
    // at its d-th confirmation: h + d - 1.
    for (args, depth) in [
        (vec![], 6), // the engine's default
        (vec!["--config", file], 3),
        (vec!["--config", file, "--reorg-safety-depth", "10"], 10),
        (vec!["--reorg-safety-depth", "10", "--config", file], 10),
    ] {
        let doc = simulate_with(&args);
        let lines = finality(&doc);
        assert!(!lines.is_empty());
        for (spent, fin) in lines {
            assert_eq!(fin, spent + depth - 1, "{args:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_key_in_the_config_file_is_one_line_naming_it() {
    let dir = scratch("badkey");
    for (text, named) in [
        ("reorg_safety_dept = 3\n", "reorg_safety_dept"),
        ("htlc_budget_percent = 120\n", "htlc_budget_percent"),
        ("archive_depth = \"many\"\n", "archive_depth"),
    ] {
        let file = dir.join("engine.toml");
        std::fs::write(&file, text).expect("write");
        let o = run(&[
            "simulate",
            "--config",
            file.to_str().expect("utf-8"),
            "scenarios/peer-breach.json",
        ]);
        assert_eq!(o.status.code(), Some(1), "{text}");
        let err = String::from_utf8_lossy(&o.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(lines[0].starts_with("error: --config "), "{err}");
        assert!(lines[0].contains(&format!("{named}:")), "{err}");
        assert!(o.stdout.is_empty(), "nothing ran");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn inspect_shows_what_a_close_of_an_open_channel_would_give_us() {
    let dir = scratch("inspect-open");
    let db = open_channel_store(&dir);
    let o = run(&["inspect", "--json", "--db", db.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let open = doc["open_channels"].as_array().expect("open channels");
    assert_eq!(open.len(), 1);
    let c = &open[0];
    assert_eq!(c["we_fund"], true);
    // BOLT 3: a static_remotekey commitment with 2 HTLC outputs weighs 724 + 2 * 172 = 1068;
    // at the default 2500 sat/kw its fee is 2500 * 1068 / 1000 = 2670 sat, paid by us (the
    // funder). Our balance: 600,000 less the 90,000 we offered, less the fee.
    assert_eq!(c["commitment_fee_sat"], 2670);
    assert_eq!(c["claimable_on_close_sat"], 600_000 - 90_000 - 2670);
    assert_eq!(c["to_self_delay"], 20);
    let htlcs = c["htlcs"].as_array().expect("htlcs");
    assert_eq!(htlcs.len(), 2);
    let out = htlcs
        .iter()
        .find(|h| h["direction"] == "outgoing")
        .expect("out");
    assert_eq!(out["amount_sat"], 90_000);
    assert_eq!(out["claimable"], "maybe_timeout_claimable");
    let inc = htlcs
        .iter()
        .find(|h| h["direction"] == "incoming")
        .expect("in");
    assert_eq!(inc["amount_sat"], 60_000);
    assert_eq!(inc["claimable"], "maybe_preimage_claimable");
    assert_eq!(inc["preimage_known"], true);
    // Nothing closed: no output of a close.
    assert_eq!(doc["outputs"], serde_json::json!([]));
    let o = run(&["inspect", "--db", db.to_str().expect("utf-8")]);
    let shown = text(&o.stdout);
    assert!(
        shown.contains("our balance 507330 sat after a commitment fee of 2670 sat"),
        "{shown}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
