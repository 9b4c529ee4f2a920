//! The program's exit codes: what a run found, beyond "it ran".

use contractcourt_core::channel::ArbState;
use contractcourt_sync::simulate::SimOutcome;

/// The command did what it was asked and found nothing to report.
pub const OK: u8 = 0;
/// The command failed (bad arguments' content, a missing or corrupt file, an I/O error): one
/// `error:` line on stderr.
pub const ERROR: u8 = 1;
/// The command line itself is malformed (clap's own code).
pub const USAGE: u8 = 2;
/// `simulate`: the run ended with something unresolved (no close confirmed, or a closed channel
/// not fully resolved: an output still timelocked, contested or being claimed).
pub const UNRESOLVED: u8 = 3;
/// `simulate`: the mempool refused a broadcast of the engine's; `replay --db`: the engine
/// refused a recorded event.
pub const REFUSED: u8 = 4;
/// `simulate`: the engine raised an alert.
pub const ALERT: u8 = 5;
/// `simulate`: the engine reported a loss.
pub const LOSS: u8 = 6;
/// `replay --db`: this build does not reproduce a recorded step's actions.
pub const DIVERGED: u8 = 7;

/// The exit codes, for `--help`.
pub const HELP: &str = "\
Exit codes:
  0  done, nothing to report (simulate: every output resolved, as expected)
  1  error (one `error:` line on stderr)
  2  malformed command line
  3  simulate: something unresolved at the end (no close confirmed, or a channel not fully
     resolved)
  4  simulate: the mempool refused a broadcast of the engine's; replay --db: the engine refused
     a recorded event (each is listed on stderr)
  5  simulate: the engine raised an alert
  6  simulate: the engine reported a loss
  7  replay --db: this build does not reproduce the recorded actions (the first step that
     differs is named on stderr)
When several apply, the highest is returned.";

/// What a command found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Something is unresolved at the end.
    pub unresolved: bool,
    /// A broadcast or an event was refused.
    pub refused: bool,
    /// An alert was raised.
    pub alert: bool,
    /// A loss was reported.
    pub loss: bool,
    /// A replay did not reproduce a recorded step.
    pub diverged: bool,
}

impl Findings {
    /// The exit code: the highest that applies.
    pub fn code(self) -> u8 {
        [
            (self.diverged, DIVERGED),
            (self.loss, LOSS),
            (self.alert, ALERT),
            (self.refused, REFUSED),
            (self.unresolved, UNRESOLVED),
        ]
        .into_iter()
        .find_map(|(found, code)| found.then_some(code))
        .unwrap_or(OK)
    }

    /// What a simulation found.
    pub fn of_simulation(o: &SimOutcome) -> Findings {
        let t = &o.ledger.totals;
        let open = t.timelocked_sat + t.contested_sat + t.claiming_sat > 0;
        Findings {
            unresolved: o.close_summaries.is_empty()
                || open
                || o.ledger
                    .channels
                    .iter()
                    .any(|c| c.state != ArbState::FullyResolved),
            refused: o.rejections > 0,
            alert: o.alerts > 0,
            loss: o.losses > 0,
            diverged: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_finding_wins() {
        assert_eq!(Findings::default().code(), OK);
        let unresolved = Findings {
            unresolved: true,
            ..Findings::default()
        };
        assert_eq!(unresolved.code(), UNRESOLVED);
        let refused = Findings {
            refused: true,
            ..unresolved
        };
        assert_eq!(refused.code(), REFUSED);
        let alert = Findings {
            alert: true,
            ..refused
        };
        assert_eq!(alert.code(), ALERT);
        assert_eq!(
            Findings {
                loss: true,
                ..alert
            }
            .code(),
            LOSS
        );
        assert_eq!(
            Findings {
                loss: true,
                ..Findings::default()
            }
            .code(),
            LOSS
        );
        assert_eq!(
            Findings {
                diverged: true,
                ..alert
            }
            .code(),
            DIVERGED
        );
    }
}
