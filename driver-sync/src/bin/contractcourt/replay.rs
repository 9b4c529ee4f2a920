//! `contractcourt replay`: a core trace, or a store's flight recorder, through a fresh engine.

use std::io::Write;
use std::path::Path;

use contractcourt_core::event::Event;
use contractcourt_core::trace::{line_diff, Expected, Trace};
use contractcourt_sync::driver::replay_flight_recorder;
use contractcourt_sync::store::Store;
use serde::Serialize;

use crate::exit::Findings;
use crate::{open_store, read, stored_config};

/// One replayed step, as printed.
#[derive(Serialize)]
struct StepLine<'a> {
    step: usize,
    #[serde(flatten)]
    answer: &'a Expected,
}

fn write_err(e: std::io::Error) -> String {
    format!("writing the output: {e}")
}

/// Replay a trace file; a step that differs from the trace's expectation is an error.
pub fn trace(path: &Path) -> Result<Findings, String> {
    let trace = Trace::from_json(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
    // A fresh engine, a configuration, or sim channels opened (`TraceSetup::Sim`).
    let mut engine = contractcourt_core::sim::trace_start(&trace.setup)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::stdout().lock();
    for (i, step) in trace.steps.iter().enumerate() {
        let actual = match engine.step(&step.event) {
            Ok(actions) => Expected::Actions { actions },
            Err(e) => Expected::Refused {
                error: e.to_string(),
            },
        };
        let line = serde_json::to_string(&StepLine {
            step: i,
            answer: &actual,
        })
        .map_err(|e| e.to_string())?;
        writeln!(out, "{line}").map_err(write_err)?;
        if actual != step.expect {
            let _ = out.flush();
            let expected = serde_json::to_string_pretty(&step.expect).unwrap_or_default();
            let actual = serde_json::to_string_pretty(&actual).unwrap_or_default();
            eprintln!(
                "--- expected\n+++ actual\n{}",
                line_diff(&expected, &actual)
            );
            return Err(format!(
                "{}: step {i} differs from the trace's expectation (diff above)",
                path.display()
            ));
        }
    }
    out.flush().map_err(write_err)?;
    Ok(Findings::default())
}

/// An event in a few words: its type, and the height of a block.
pub fn describe_event(event: &Event) -> String {
    let kind = serde_json::to_value(event)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "event".to_owned());
    match event {
        Event::BlockConnected(block) => format!("{kind} at height {}", block.height),
        _ => kind,
    }
}

/// Replay a store's flight recorder: the actions on stdout, a count and every refused event
/// (with the engine's reason) on stderr.
pub fn db(path: &Path) -> Result<Findings, String> {
    let store = open_store(path)?;
    let config = stored_config(&store)?;
    let replay =
        replay_flight_recorder(config, &store).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::stdout().lock();
    for action in &replay.transcript {
        let line = serde_json::to_string(action).map_err(|e| e.to_string())?;
        writeln!(out, "{line}").map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    if replay.first > 0 {
        eprintln!(
            "the recorder was pruned: replay starts at event {} from the records stored with it",
            replay.first
        );
    }
    eprintln!(
        "replayed {} event(s), {} action(s), {} refused",
        replay.events - replay.first,
        replay.transcript.len(),
        replay.refused.len()
    );
    match &replay.divergence {
        None if replay.unchecked == 0 => eprintln!(
            "this build reproduces every recorded step ({} checked)",
            replay.checked
        ),
        None => eprintln!(
            "this build reproduces every recorded step with a digest ({} checked; {} recorded \
             without one, not checked)",
            replay.checked, replay.unchecked
        ),
        Some(d) => eprintln!(
            "diverged at step {}: expected actions digest {}, actual {} (event {}: {})",
            d.seq,
            hex(&d.expected),
            hex(&d.actual),
            d.seq,
            describe_event(&d.event)
        ),
    }
    for (seq, error) in &replay.refused {
        let what = store
            .events(*seq, 1)
            .ok()
            .and_then(|events| events.into_iter().next())
            .map_or_else(|| "event".to_owned(), |(_, e)| describe_event(&e));
        eprintln!("event {seq} ({what}) refused: {error}");
    }
    Ok(Findings {
        refused: !replay.refused.is_empty(),
        diverged: replay.divergence.is_some(),
        ..Findings::default()
    })
}

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
