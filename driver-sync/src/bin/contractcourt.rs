//! `contractcourt`: simulate a channel close on the embedded chain, replay a trace or a stored
//! flight recorder, inspect a store. Argument parsing and printing only: the work is done by
//! `contractcourt_sync::simulate`, the core's trace replay and the driver.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use contractcourt_core::action::{Action, RecordKey};
use contractcourt_core::chain::{ChainArbitrator, Config};
use contractcourt_core::trace::{line_diff, Expected, Trace, TraceSetup};
use contractcourt_sync::driver::{load_engine, replay_flight_recorder};
use contractcourt_sync::simulate::{self, RunOptions, Scenario};
use contractcourt_sync::store::{SqliteStore, Store};
use serde::Serialize;

/// Lightning on-chain contract resolution: simulate, replay, inspect.
#[derive(Parser)]
#[command(name = "contractcourt", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Dry-run a channel close on the embedded regtest chain and print the timeline, the close
    /// summary and the final ledger.
    Simulate {
        /// The scenario (JSON; see scenarios/README.md).
        scenario: PathBuf,
        /// Print one JSON document instead of tables.
        #[arg(long)]
        json: bool,
        /// Keep the engine's SQLite store at this path (must not exist yet, unless --chain-dir
        /// resumes the run that made it).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Keep the embedded chain in DIR (absent or empty for a new run; needs --db), which
        /// makes the run resumable: after an interruption, the same command continues where the
        /// chain is (state kept in PATH.sim.json).
        #[arg(long, value_name = "DIR", requires = "db")]
        chain_dir: Option<PathBuf>,
    },
    /// Replay a core event trace (or, with --db, a store's flight recorder) and print the action
    /// transcript as JSON lines.
    Replay {
        /// The trace (JSON); omit it with --db.
        #[arg(required_unless_present = "db", conflicts_with = "db")]
        trace: Option<PathBuf>,
        /// Replay the flight recorder of this store instead (read only).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
    /// Show a store's channels, their states, the per-output ledger and pending upstream
    /// decisions (read only).
    ///
    /// `--help` defines each ledger figure (recovered before fees, what each fee covers).
    #[command(after_long_help = simulate::LEDGER_HELP)]
    Inspect {
        /// The store.
        #[arg(long, value_name = "PATH")]
        db: PathBuf,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate {
            scenario,
            json,
            db,
            chain_dir,
        } => simulate_cmd(&scenario, json, db, chain_dir),
        Command::Replay { trace, db } => match (trace, db) {
            (_, Some(db)) => replay_db(&db),
            (Some(trace), None) => replay_trace(&trace),
            (None, None) => Err("replay needs a trace or --db".to_string()),
        },
        Command::Inspect { db, json } => inspect(&db, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the error says.
            let line = e.replace('\n', " ");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn print_out(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing the output: {e}"))
}

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

fn simulate_cmd(
    path: &Path,
    json: bool,
    db: Option<PathBuf>,
    chain_dir: Option<PathBuf>,
) -> Result<(), String> {
    let scenario =
        Scenario::from_json(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
    let pause = pause_at_step()?;
    let steps = Arc::new(AtomicU64::new(0));
    let on_step: Option<Arc<dyn Fn(u64) + Send + Sync>> = pause.map(|at| {
        let steps = steps.clone();
        Arc::new(move |n: u64| {
            steps.store(n, Ordering::SeqCst);
            if n == at {
                eprintln!("contractcourt: paused at step {n}");
                // Until killed; should the test go away first, its end of stdin closes.
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                eprintln!("contractcourt: stdin closed while paused at step {n}");
                std::process::exit(2);
            }
        }) as Arc<dyn Fn(u64) + Send + Sync>
    });
    let tty = std::io::stderr().is_terminal();
    let mut progress = |done: u32, total: u32| {
        if tty && total >= 50 {
            eprint!("\rsimulating: block {done}/{total}");
            if done == total {
                eprint!("\r{:40}\r", "");
            }
        }
    };
    let outcome = simulate::run(
        &scenario,
        RunOptions {
            db,
            chain_dir,
            progress: Some(&mut progress),
            on_step,
        },
    )
    .map_err(|e| e.to_string())?;
    if pause.is_some() {
        eprintln!("contractcourt: {} steps", steps.load(Ordering::SeqCst));
    }
    if json {
        let text = serde_json::to_string_pretty(&outcome).map_err(|e| e.to_string())?;
        print_out(&format!("{text}\n"))
    } else {
        print_out(&simulate::render_text(&outcome))
    }
}

/// One replayed step, as printed.
#[derive(Serialize)]
struct StepLine<'a> {
    step: usize,
    #[serde(flatten)]
    answer: &'a Expected,
}

fn replay_trace(path: &Path) -> Result<(), String> {
    let trace = Trace::from_json(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
    let config: Config = match &trace.setup {
        TraceSetup::Empty => Config::default(),
        TraceSetup::State { state } => serde_json::from_value(state.clone())
            .map_err(|e| format!("{}: the setup is not a configuration: {e}", path.display()))?,
        TraceSetup::Sim { .. } => {
            return Err(format!(
                "{}: traces with a sim setup cannot be replayed by this command",
                path.display()
            ))
        }
    };
    let mut engine = ChainArbitrator::new(config);
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
        writeln!(out, "{line}").map_err(|e| format!("writing the output: {e}"))?;
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
    out.flush().map_err(|e| format!("writing the output: {e}"))
}

fn open_store(path: &Path) -> Result<SqliteStore, String> {
    if !path.exists() {
        return Err(format!("{}: no such file", path.display()));
    }
    SqliteStore::open_read_only(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The configuration the store's engine ran with (kept in its node record), or the default.
fn stored_config(store: &SqliteStore) -> Result<Config, String> {
    let records = store.load().map_err(|e| e.to_string())?;
    Ok(records
        .get(&RecordKey::Node)
        .and_then(|r| r.body.get("config"))
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default())
}

fn replay_db(path: &Path) -> Result<(), String> {
    let store = open_store(path)?;
    let config = stored_config(&store)?;
    let replay =
        replay_flight_recorder(config, &store).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::stdout().lock();
    for action in &replay.transcript {
        let line = serde_json::to_string(action).map_err(|e| e.to_string())?;
        writeln!(out, "{line}").map_err(|e| format!("writing the output: {e}"))?;
    }
    out.flush()
        .map_err(|e| format!("writing the output: {e}"))?;
    eprintln!(
        "replayed {} event(s), {} action(s), {} refused",
        replay.events,
        replay.transcript.len(),
        replay.refused.len()
    );
    Ok(())
}

#[derive(Serialize)]
struct ChannelLine {
    channel: String,
    state: String,
    funding: Vec<String>,
    last_update_id: u64,
}

#[derive(Serialize)]
struct Inspection {
    tip: Option<contractcourt_core::types::BlockRef>,
    channels: Vec<ChannelLine>,
    ledger: contractcourt_core::chain::ledger::Ledger,
    pending_upstream: Vec<Action>,
    known_preimages: usize,
    circuits: usize,
    recorded_events: u64,
}

fn inspect(path: &Path, json: bool) -> Result<(), String> {
    let store = open_store(path)?;
    let config = stored_config(&store)?;
    let engine = load_engine(&config, &store).map_err(|e| format!("{}: {e}", path.display()))?;
    let node = engine.node();
    let inspection = Inspection {
        tip: engine.tip(),
        channels: engine
            .channels()
            .map(|c| ChannelLine {
                channel: c.data.info.id.to_string(),
                state: format!("{:?}", c.state()),
                funding: c
                    .data
                    .info
                    .funding
                    .iter()
                    .map(|f| format!("{} ({} sat)", f.outpoint, f.value_sat))
                    .collect(),
                last_update_id: c.data.last_update_id,
            })
            .collect(),
        ledger: engine.ledger(),
        pending_upstream: node.pending_upstream(),
        known_preimages: node.preimages.len(),
        circuits: node.circuits.len(),
        recorded_events: store.event_count().map_err(|e| e.to_string())?,
    };
    if json {
        let text = serde_json::to_string_pretty(&inspection).map_err(|e| e.to_string())?;
        return print_out(&format!("{text}\n"));
    }
    let mut s = String::new();
    match inspection.tip {
        Some(t) => s.push_str(&format!("tip: {} {}\n", t.height, t.hash)),
        None => s.push_str("tip: none\n"),
    }
    s.push_str(&format!(
        "recorded events: {}, known preimages: {}, circuits: {}\n\nCHANNELS\n",
        inspection.recorded_events, inspection.known_preimages, inspection.circuits
    ));
    if inspection.channels.is_empty() {
        s.push_str("  (none)\n");
    }
    for c in &inspection.channels {
        s.push_str(&format!(
            "  {}  {}  update {}  funding {}\n",
            c.channel,
            c.state,
            c.last_update_id,
            c.funding.join(", ")
        ));
    }
    s.push_str(&simulate::render_ledger(&inspection.ledger));
    s.push_str("\nPENDING UPSTREAM DECISIONS\n");
    if inspection.pending_upstream.is_empty() {
        s.push_str("  (none)\n");
    }
    for a in &inspection.pending_upstream {
        s.push_str(&format!(
            "  {}\n",
            serde_json::to_string(a).map_err(|e| e.to_string())?
        ));
    }
    print_out(&s)
}
