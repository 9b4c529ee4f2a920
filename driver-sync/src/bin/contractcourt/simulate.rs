//! `contractcourt simulate`: the run, its lines printed as they come, a progress bar on a
//! terminal, and the exit code of what it found.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use contractcourt_sync::simulate::io::{LineSink, TimelineEntry};
use contractcourt_sync::simulate::{
    self, render_head, render_line, render_tail, EngineSettings, RunOptions, Scenario,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::exit::Findings;
use crate::{print_out, read};

/// The crash tests' hook (not a user setting): stop at this step of `simulate`, say so on
/// stderr and wait to be killed (or, should stdin close first, exit with status 2); the step
/// count is printed on stderr at the end of a run.
const PAUSE_AT_STEP_VAR: &str = "CONTRACTCOURT_SIM_PAUSE_AT_STEP";

/// The pause step asked for by [`PAUSE_AT_STEP_VAR`], if any.
fn pause_at_step() -> Result<Option<u64>, String> {
    match std::env::var(PAUSE_AT_STEP_VAR) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{PAUSE_AT_STEP_VAR}: {v:?} is not a step number")),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("{PAUSE_AT_STEP_VAR}: not a step number"))
        }
    }
}

/// The step hook of [`PAUSE_AT_STEP_VAR`], counting into `steps`.
fn step_hook(at: u64, steps: Arc<AtomicU64>) -> Arc<dyn Fn(u64) + Send + Sync> {
    Arc::new(move |n: u64| {
        steps.store(n, Ordering::SeqCst);
        if n == at {
            eprintln!("contractcourt: paused at step {n}");
            // Until killed; should the test go away first, its end of stdin closes.
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            eprintln!("contractcourt: stdin closed while paused at step {n}");
            std::process::exit(2);
        }
    })
}

/// A progress bar over the scenario's blocks, on stderr when it is a terminal only.
fn progress_bar(total: u32) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(u64::from(total));
    if let Ok(style) = ProgressStyle::with_template("simulating {bar:30} block {pos}/{len}") {
        bar.set_style(style);
    }
    Some(bar)
}

/// Prints the text output's lines as they come: the head before the first, each line at once
/// (above the progress bar, if any).
fn line_printer(scenario: &str, bar: Option<ProgressBar>, started: Arc<AtomicBool>) -> LineSink {
    let head = render_head(scenario);
    LineSink(Arc::new(move |entry: &TimelineEntry| {
        let mut text = String::new();
        if !started.swap(true, Ordering::SeqCst) {
            text.push_str(&head);
        }
        text.push_str(&render_line(entry));
        let write = || {
            let mut out = std::io::stdout().lock();
            // A closed stdout must not stop the run; the end reports it.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        };
        match &bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }))
}

/// Run the scenario at `path`.
pub fn run(
    path: &Path,
    json: bool,
    (db, chain_dir): (Option<PathBuf>, Option<PathBuf>),
    svg: Option<PathBuf>,
    engine: EngineSettings,
) -> Result<Findings, String> {
    let scenario =
        Scenario::from_json(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
    let pause = pause_at_step()?;
    let steps = Arc::new(AtomicU64::new(0));
    let on_step = pause.map(|at| step_hook(at, steps.clone()));
    let bar = progress_bar(scenario.run_blocks);
    let started = Arc::new(AtomicBool::new(false));
    let on_line = (!json).then(|| line_printer(&scenario.name, bar.clone(), started.clone()));
    let mut progress = |done: u32, _total: u32| {
        if let Some(bar) = &bar {
            bar.set_position(u64::from(done));
        }
    };
    // A drawing is made from the run's store: a temporary one without --db.
    let temp = match (&svg, &db) {
        (Some(_), None) => Some(crate::draw::TempStore::new()?),
        _ => None,
    };
    let db = db.or_else(|| temp.as_ref().map(|t| t.db()));
    let result = simulate::run(
        &scenario,
        RunOptions {
            db: db.clone(),
            chain_dir,
            progress: Some(&mut progress),
            on_step,
            on_line,
            engine,
        },
    );
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let outcome = result.map_err(|e| e.to_string())?;
    if pause.is_some() {
        eprintln!("contractcourt: {} steps", steps.load(Ordering::SeqCst));
    }
    if json {
        let text = serde_json::to_string_pretty(&outcome).map_err(|e| e.to_string())?;
        print_out(&format!("{text}\n"))?;
    } else if started.load(Ordering::SeqCst) {
        print_out(&render_tail(&outcome))?;
    } else {
        // A finished run printed again: nothing was streamed.
        print_out(&simulate::render_text(&outcome))?;
    }
    if let (Some(out), Some(db)) = (&svg, &db) {
        crate::draw::write_svg(&scenario.name, db, out)?;
    }
    drop(temp);
    Ok(Findings::of_simulation(&outcome))
}
