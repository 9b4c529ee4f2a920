//! `contractcourt`: simulate a channel close on the embedded chain, serve a node on a real chain,
//! replay a trace or a stored flight recorder, inspect a store. Argument parsing and printing only: the work is done by
//! `contractcourt_sync::simulate`, the core's trace replay and the driver.

mod draw;
mod exit;
mod inspect;
mod inspect_open;
mod inspect_text;
mod replay;
mod serve;
mod simulate;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgAction, CommandFactory, Parser, Subcommand};
use contractcourt_core::action::RecordKey;
use contractcourt_core::chain::Config;
use contractcourt_sync::simulate::{EngineSettings, LEDGER_HELP};
use contractcourt_sync::store::SqliteStore;

/// What `--version` prints: the crate's version, the git commit it was built from and the
/// Bitcoin Core kernel of the embedded chain (both captured by `build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CONTRACTCOURT_GIT_COMMIT"),
    ")\nembedded chain: ",
    env!("CONTRACTCOURT_KERNEL"),
);

/// Lightning on-chain contract resolution: simulate, replay, inspect.
#[derive(Parser)]
#[command(name = "contractcourt", version = VERSION, about, long_about = None)]
#[command(after_help = exit::HELP)]
struct Cli {
    /// Log what the driver does on stderr (-v: info, -vv: debug, -vvv: trace).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the largest variant (serve's settings) does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Dry-run a channel close on the embedded regtest chain and print the timeline (as it
    /// happens), the close summary and the final ledger.
    #[command(after_help = exit::HELP)]
    Simulate {
        /// The scenario (JSON; see scenarios/README.md).
        scenario: PathBuf,
        /// Print one JSON document at the end instead of tables.
        #[arg(long)]
        json: bool,
        /// Keep the engine's SQLite store at this path (must not exist yet, unless --chain-dir
        /// resumes the run that made it).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Keep the embedded chain in DIR (absent or empty for a new run; needs --db), which
        /// makes the run resumable: after an interruption, the same command continues where the
        /// chain is (state kept in PATH.sim.json); a finished run prints its outcome again.
        #[arg(long, value_name = "DIR", requires = "db")]
        chain_dir: Option<PathBuf>,
        /// Also draw the resolution as SVG into FILE: one lane per output over block height
        /// (timelocks, broadcasts, confirmations, deadlines, outcome) and the fee rate.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Read engine settings from a TOML file (keys: the settings' flag names with `_`
        /// for `-`, e.g. `reorg_safety_depth = 3`); a flag given here overrides the file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten, next_help_heading = "Engine settings")]
        engine: EngineSettings,
    },
    /// Replay a core event trace (or, with --db, a store's flight recorder) and print the action
    /// transcript as JSON lines.
    #[command(after_help = exit::HELP)]
    Replay {
        /// The trace (JSON); omit it with --db.
        #[arg(required_unless_present = "db", conflicts_with = "db")]
        trace: Option<PathBuf>,
        /// Replay the flight recorder of this store instead (read only).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
    /// Show a store's channels, their states, the per-output ledger and pending upstream
    /// decisions (read only; works while a run holds the store).
    ///
    /// `--help` defines each ledger figure (recovered before fees, what each fee covers).
    #[command(after_long_help = LEDGER_HELP)]
    Inspect {
        /// The store (a SQLite file). Give this or --postgres.
        #[arg(long, value_name = "PATH", required_unless_present = "postgres")]
        db: Option<PathBuf>,
        /// A PostgreSQL store's connection string (see serve --postgres); read without taking
        /// its lease, while a serve runs on it.
        #[arg(long, value_name = "URL", conflicts_with_all = ["db", "svg"])]
        postgres: Option<String>,
        /// The PostgreSQL schema holding the store [default: contractcourt].
        #[arg(long, value_name = "NAME", requires = "postgres")]
        postgres_schema: Option<String>,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
        /// Also draw the resolution as SVG into FILE (see simulate --svg).
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
    /// Run the engine as a service: follow a chain (bitcoind, Esplora or the embedded regtest
    /// chain), serve a Lightning node over a Unix socket (docs/node-protocol.md), commit every
    /// step to the store. Runs until killed.
    Serve {
        /// Read the settings from a TOML file (keys: the flags' names with `_` for `-`, e.g.
        /// `poll_ms = 500`; the engine settings in an `[engine]` table); a flag given here
        /// overrides the file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Log level on stderr: error, warn, info, debug or trace.
        #[arg(long, value_name = "LEVEL", default_value = "info")]
        log_level: String,
        #[command(flatten)]
        settings: contractcourt_sync::serve::ServeSettings,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) on stdout, e.g.
    /// `contractcourt completions bash > /etc/bash_completion.d/contractcourt`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Logs on stderr at the level `-v` asks for; nothing without it.
fn init_logs(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version go to stdout with 0; a malformed command line to stderr.
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logs(cli.verbose);
    let result = match cli.command {
        Command::Simulate {
            scenario,
            json,
            db,
            chain_dir,
            svg,
            config,
            engine,
        } => settings(config.as_deref(), engine)
            .and_then(|engine| simulate::run(&scenario, json, (db, chain_dir), svg, engine)),
        Command::Replay { trace, db } => match (trace, db) {
            (_, Some(db)) => replay::db(&db),
            (Some(trace), None) => replay::trace(&trace),
            (None, None) => Err("replay needs a trace or --db".to_string()),
        },
        Command::Inspect {
            db,
            postgres,
            postgres_schema,
            json,
            svg,
        } => match (db, postgres) {
            (_, Some(url)) => {
                let mut pg = contractcourt_sync::store::PostgresConfig::new(url);
                if let Some(schema) = postgres_schema {
                    pg.schema = schema;
                }
                inspect::inspect_postgres(pg, json)
            }
            (Some(db), None) => inspect::inspect(&db, json, svg.as_deref()),
            (None, None) => Err("inspect needs --db or --postgres".to_string()),
        },
        Command::Serve {
            config,
            log_level,
            settings,
        } => serve::run(config.as_deref(), settings, &log_level),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "contractcourt", &mut out);
            print_out(&String::from_utf8_lossy(&out)).map(|()| exit::Findings::default())
        }
    };
    match result {
        Ok(findings) => ExitCode::from(findings.code()),
        Err(e) => {
            // One line, whatever the error says.
            let line = e.replace('\n', " ");
            eprintln!("error: {line}");
            ExitCode::from(exit::ERROR)
        }
    }
}

/// The engine settings of the flags over those of the `--config` file, if any.
fn settings(file: Option<&Path>, flags: EngineSettings) -> Result<EngineSettings, String> {
    let Some(path) = file else {
        return Ok(flags);
    };
    let from_file = EngineSettings::from_toml(&read(path)?)
        .map_err(|e| format!("--config {}: {e}", path.display()))?;
    Ok(flags.over(from_file))
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

fn open_store(path: &Path) -> Result<SqliteStore, String> {
    if !path.exists() {
        return Err(format!("{}: no such file", path.display()));
    }
    SqliteStore::open_read_only(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The configuration the store's engine ran with (kept in its node record), or the default.
fn stored_config(store: &SqliteStore) -> Result<Config, String> {
    let node = store.record(&RecordKey::Node).map_err(|e| e.to_string())?;
    Ok(node
        .as_ref()
        .and_then(contractcourt_core::chain::stored_config)
        .unwrap_or_default())
}
