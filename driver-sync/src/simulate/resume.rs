//! Resumable runs (`--db PATH --chain-dir DIR`): starting one, resuming one, saving its log.

use std::collections::BTreeMap;
use std::path::Path;

use contractcourt_core::types::Height;

use super::io::{lock, Log, Steps};
use super::start::lane;
use super::state::{self, Funding, Phase, SimState};
use super::{sim_channel, EngineSettings, Persist, Scenario, Sim, SimError, SimOutcome};
use crate::chain::embedded::EmbeddedChain;

/// Whether `dir` is absent or an empty directory.
fn absent_or_empty(dir: &Path) -> Result<bool, SimError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(SimError(format!("--chain-dir {}: {e}", dir.display()))),
    }
}

/// Remove `path` if it is there.
fn remove_file_if_there(path: &Path) -> Result<(), SimError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SimError(format!("{}: removing it: {e}", path.display()))),
    }
}

/// The outcome of the finished run kept with the store `db`, if the run is finished: starting
/// it again prints that outcome and changes nothing. A run of another scenario is refused.
pub(super) fn finished_outcome(
    scenario: &Scenario,
    settings: &EngineSettings,
    db: &Path,
) -> Result<Option<SimOutcome>, SimError> {
    let path = state::state_path(db);
    if !path.exists() {
        return Ok(None);
    }
    let previous = state::read(&path)?;
    let Phase::Finished { outcome } = previous.phase else {
        return Ok(None);
    };
    if previous.scenario != *scenario {
        return Err(other_scenario(db));
    }
    if previous.settings != *settings {
        return Err(other_settings(db));
    }
    Ok(Some(*outcome))
}

fn other_scenario(db: &Path) -> SimError {
    SimError(format!(
        "--db {}: it holds a run of another scenario (a run resumes with the scenario it was \
         started with)",
        db.display()
    ))
}

fn other_settings(db: &Path) -> SimError {
    SimError(format!(
        "--db {}: it holds a run with other engine settings (a run resumes with the settings it \
         was started with)",
        db.display()
    ))
}

/// Mark the resumable run of `scenario` finished with `outcome` (durably).
pub(super) fn save_finished(
    path: &Path,
    scenario: &Scenario,
    settings: &EngineSettings,
    restarts: u32,
    outcome: &SimOutcome,
) -> Result<(), SimError> {
    let state = SimState {
        version: state::STATE_VERSION,
        scenario: scenario.clone(),
        settings: settings.clone(),
        restarts,
        phase: Phase::Finished {
            outcome: Box::new(outcome.clone()),
        },
    };
    state::write(path, &state, true)
}

impl<'a> Sim<'a> {
    /// A resumable run on the store `db` and the chain in `dir`: a fresh one, or the one they
    /// hold resumed.
    pub(super) fn resumable(
        scenario: &'a Scenario,
        settings: &EngineSettings,
        db: &Path,
        dir: &Path,
        steps: Steps,
    ) -> Result<Sim<'a>, SimError> {
        if !scenario.extra_channels.is_empty() {
            return Err(SimError(format!(
                "--chain-dir {}: a resumable run plays a scenario of one channel (this one has \
                 extra_channels); run it without --chain-dir",
                dir.display()
            )));
        }
        let path = state::state_path(db);
        if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(SimError(format!(
                    "--db {}: its directory does not exist",
                    db.display()
                )));
            }
        }
        let previous = if path.exists() {
            Some(state::read(&path)?)
        } else if db.exists() {
            return Err(SimError(format!(
                "--db {}: the store exists but {} does not: not a resumable simulation (a new \
                 run needs a new --db)",
                db.display(),
                path.display()
            )));
        } else {
            None
        };
        let restarts = match previous {
            None => {
                if !absent_or_empty(dir)? {
                    return Err(SimError(format!(
                        "--chain-dir {}: not empty (a new run builds its chain in an empty \
                         directory; to resume a run, pass the --db it was started with)",
                        dir.display()
                    )));
                }
                0
            }
            Some(previous) => {
                if previous.scenario != *scenario {
                    return Err(other_scenario(db));
                }
                if previous.settings != *settings {
                    return Err(other_settings(db));
                }
                let restarts = previous.restarts.saturating_add(1);
                match previous.phase {
                    Phase::Running {
                        funding,
                        saved_at,
                        log,
                    } => {
                        let persist = Persist {
                            path,
                            restarts,
                            funding,
                            settings: settings.clone(),
                            saved: false,
                        };
                        return Sim::resume(
                            scenario,
                            settings,
                            (db, dir),
                            steps,
                            persist,
                            (saved_at, *log),
                        );
                    }
                    Phase::Finished { .. } => {
                        return Err(SimError(format!(
                            "--db {}: the run is finished (its outcome is printed, not resumed)",
                            db.display()
                        )))
                    }
                    Phase::Setup => {}
                }
                // Killed during the setup: nothing of the scenario happened yet. Start over.
                for f in ["", "-wal", "-shm", "-journal"] {
                    let mut p = db.as_os_str().to_os_string();
                    p.push(f);
                    remove_file_if_there(Path::new(&p))?;
                }
                if dir.exists() {
                    std::fs::remove_dir_all(dir)
                        .map_err(|e| SimError(format!("--chain-dir {}: {e}", dir.display())))?;
                }
                restarts
            }
        };
        state::write(
            &path,
            &SimState {
                version: state::STATE_VERSION,
                scenario: scenario.clone(),
                settings: settings.clone(),
                restarts,
                phase: Phase::Setup,
            },
            true,
        )?;
        let chain = EmbeddedChain::new(dir)
            .map_err(|e| SimError(format!("--chain-dir {}: {e}", dir.display())))?;
        let mut sim = Sim::fresh(scenario, settings, chain, db, steps)?;
        sim.persist = Some(Persist {
            path,
            restarts,
            settings: settings.clone(),
            funding: Funding {
                outpoint: sim.lanes[0]
                    .sim
                    .setup()
                    .funding_outpoint
                    .ok_or_else(|| SimError("the channel has no funding outpoint".into()))?,
                start: sim.start,
            },
            saved: false,
        });
        sim.save()?;
        Ok(sim)
    }

    /// A run resumed: the chain reopened from `dir`, the channel rebuilt, the engine reloaded
    /// from its store and resumed.
    fn resume(
        scenario: &'a Scenario,
        settings: &EngineSettings,
        (db, dir): (&Path, &Path),
        steps: Steps,
        persist: Persist,
        (saved_at, log): (Height, Log),
    ) -> Result<Sim<'a>, SimError> {
        if !db.exists() {
            return Err(SimError(format!(
                "--db {}: the store of this run is missing",
                db.display()
            )));
        }
        let chain = EmbeddedChain::new(dir)
            .map_err(|e| SimError(format!("--chain-dir {}: {e}", dir.display())))?;
        let funding = persist.funding;
        if chain.tx_confirmation_height(&funding.outpoint.txid) != Some(funding.start) {
            return Err(SimError(format!(
                "--chain-dir {}: the channel's funding is not confirmed at height {} there: not \
                 the chain of this run",
                dir.display(),
                funding.start
            )));
        }
        let built = sim_channel(scenario, &funding, &[])?;
        let lanes = vec![lane(scenario.clone(), built, String::new())];
        let mut sim = Sim::assemble(scenario, settings, chain, db, steps, &funding, lanes)?;
        // The log as saved (with the names given to second-level outputs on the way).
        *lock(&sim.log) = log;
        // The fee rate the engine has (kept in its store): not fed, nor listed, again.
        sim.fee_rate = sim
            .driver
            .engine()
            .fee_conditions()
            .and_then(|f| f.estimates.first())
            .and_then(|e| u32::try_from(e.feerate.to_sat_per_vb_floor()).ok());
        // The blocks mined after the log was saved, as the uninterrupted run lists them.
        let tip = sim.tip();
        for height in saved_at.saturating_add(1)..=tip {
            let block = lock(&sim.chain).block_at(height);
            if let Some(block) = block {
                sim.log_confirmations(&block, &BTreeMap::new());
            }
        }
        lock(&sim.log).push(
            tip,
            "resumed after an interruption: the engine reloaded from its store",
            None,
            None,
            None,
        );
        sim.persist = Some(persist);
        sim.save()?;
        sim.driver
            .resume()
            .map_err(|e| SimError(format!("engine: {e}")))?;
        sim.steps.tick();
        sim.ack_upstream()?;
        sim.lanes[0].closing = sim.confirmed_closing(0);
        Ok(sim)
    }

    /// Save the log of a resumable run (after every block), durably the first time in a
    /// process (the funding and the count of restarts must survive anything).
    pub(super) fn save(&mut self) -> Result<(), SimError> {
        let Some(persist) = &self.persist else {
            return Ok(());
        };
        let tip = self.tip();
        let mut log = lock(&self.log).clone();
        // The engine re-emits unacknowledged resolutions after a restart.
        log.unacked.clear();
        let state = SimState {
            version: state::STATE_VERSION,
            scenario: self.scenario.clone(),
            settings: persist.settings.clone(),
            restarts: persist.restarts,
            phase: Phase::Running {
                funding: persist.funding,
                saved_at: tip,
                log: Box::new(log),
            },
        };
        state::write(&persist.path, &state, !persist.saved)?;
        if let Some(persist) = &mut self.persist {
            persist.saved = true;
        }
        Ok(())
    }
}
