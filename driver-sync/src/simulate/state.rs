//! What a resumable run (`--db PATH --chain-dir DIR`) keeps next to its store, in
//! `PATH.sim.json`: the scenario it plays, how far its setup got, the channel's funding and
//! start height (not derivable from the scenario), how often it was resumed, and the log as of
//! the last block done (for the printed timeline), and once the run is over its outcome.
//! Everything else is derived on a restart:
//! the scenario's progress from the chain's height, the `sim` channel from the scenario and
//! the funding, the engine from its store.
//!
//! The file is replaced atomically (written aside, synced, renamed, the directory synced), so a
//! kill leaves either the old or the new version.

use std::io::Write;
use std::path::{Path, PathBuf};

use bitcoin::OutPoint;
use contractcourt_core::types::Height;
use serde::{Deserialize, Serialize};

use super::io::Log;
use super::{EngineSettings, Scenario, SimError, SimOutcome};

/// The state file's format version.
pub const STATE_VERSION: u32 = 1;

/// The channel's funding, fixed by the setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Funding {
    /// The 2-of-2 funding output.
    pub outpoint: OutPoint,
    /// The height of the block that confirmed it: the scenario's height 0.
    pub start: Height,
}

/// How far a run got.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Phase {
    /// The setup (wallet coins, funding, the channel fed to the engine) has not finished: a
    /// restart discards the store and the chain and sets up again.
    Setup,
    /// The scenario's blocks are being played.
    Running {
        /// The channel's funding.
        funding: Funding,
        /// The tip when `log` was saved.
        saved_at: Height,
        /// The log as of `saved_at`.
        log: Box<Log>,
    },
    /// The scenario's last block was played: the run's outcome, as printed. Starting the run
    /// again prints it and changes nothing (neither the store nor the chain is opened).
    Finished {
        /// The outcome.
        outcome: Box<SimOutcome>,
    },
}

/// The whole file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The scenario this run plays (a restart must name the same).
    pub scenario: Scenario,
    /// The engine's settings it runs with (a restart must give the same).
    #[serde(default)]
    pub settings: EngineSettings,
    /// How many times the run was resumed.
    pub restarts: u32,
    /// How far it got.
    pub phase: Phase,
}

/// The state file of the store at `db`.
pub fn state_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".sim.json");
    db.with_file_name(name)
}

fn io_err(path: &Path, what: &'static str) -> impl Fn(std::io::Error) -> SimError {
    let path = path.to_path_buf();
    move |e| SimError(format!("{}: {what}: {e}", path.display()))
}

/// Read a state file.
pub fn read(path: &Path) -> Result<SimState, SimError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path, "reading the state"))?;
    let bad = |e: String| SimError(format!("{}: not a simulation state: {e}", path.display()));
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(STATE_VERSION) => {}
        Some(v) => {
            return Err(SimError(format!(
                "{}: simulation state version {v} is unknown (this program reads version \
                 {STATE_VERSION})",
                path.display()
            )))
        }
        None => return Err(bad("no version".into())),
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

/// Replace the state file atomically: the new version is synced to disk before it replaces the
/// old one. With `durable`, the directory is synced too, so that the replacement itself
/// survives a power cut (a kill needs no sync: the kernel keeps what was written). The log
/// saved after every block is not `durable`: an older one is only an older timeline.
pub fn write(path: &Path, state: &SimState, durable: bool) -> Result<(), SimError> {
    let text = serde_json::to_vec(state)
        .map_err(|e| SimError(format!("encoding the simulation state: {e}")))?;
    let mut aside = path.as_os_str().to_os_string();
    aside.push(".tmp");
    let aside = PathBuf::from(aside);
    let mut file = std::fs::File::create(&aside).map_err(io_err(&aside, "writing the state"))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&aside, "writing the state"))?;
    drop(file);
    std::fs::rename(&aside, path).map_err(io_err(path, "replacing the state"))?;
    if !durable {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "syncing the directory"))
}
