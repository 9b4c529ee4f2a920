//! The versioned trace format and a pure replay.
//!
//! A trace is JSON: a setup (an initial state, or a `sim` channel setup), then steps, each an
//! [`Event`] and what the machine must answer — the exact action list, or a refusal. Replaying a
//! trace feeds its events one by one to a [`Machine`] and stops at the first step whose answer
//! differs, with a readable line diff of expected against actual.
//!
//! Drivers append every event they feed to their store (a flight recorder), so a field incident
//! becomes a trace, and a trace becomes a test.

mod diff;

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::event::Event;

pub use diff::line_diff;

/// The `format` field of every trace.
pub const TRACE_FORMAT: &str = "contractcourt-trace";
/// The trace format version this code reads and writes.
pub const TRACE_VERSION: u32 = 1;

/// A state machine that can be driven by events: the chain arbitrator, or any machine under test.
pub trait Machine {
    /// Why an event was refused (the state is unchanged after a refusal).
    type Error: std::fmt::Display;
    /// Apply one event and return the actions, in order.
    fn step(&mut self, event: &Event) -> Result<Vec<Action>, Self::Error>;
}

/// A whole trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Always [`TRACE_FORMAT`].
    pub format: String,
    /// The format version; only [`TRACE_VERSION`] is read.
    pub version: u32,
    /// What the trace shows, for people.
    #[serde(default)]
    pub description: String,
    /// Where the machine starts.
    pub setup: TraceSetup,
    /// The events and what each must produce.
    pub steps: Vec<TraceStep>,
}

/// Where a replay starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceSetup {
    /// A fresh machine with default configuration.
    Empty,
    /// A serialised machine state (its type is the replaying machine's).
    State {
        /// The state.
        state: serde_json::Value,
    },
    /// A `sim` setup that builds the channels (decoded by the `sim` module).
    Sim {
        /// The setup.
        setup: serde_json::Value,
    },
}

/// One event and the machine's expected answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    /// The event fed to the machine.
    pub event: Event,
    /// What it must answer.
    pub expect: Expected,
}

/// The expected answer to one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Expected {
    /// Exactly these actions, in this order.
    Actions {
        /// The actions.
        actions: Vec<Action>,
    },
    /// A refusal with exactly this message.
    Refused {
        /// The refusal's message.
        error: String,
    },
}

/// Why a trace could not be read.
#[derive(Debug)]
pub enum TraceError {
    /// Not JSON of the trace shape.
    Json(serde_json::Error),
    /// The `format` field is not [`TRACE_FORMAT`].
    NotATrace {
        /// What it said instead.
        format: String,
    },
    /// A version this code does not read.
    UnknownVersion {
        /// The version found.
        version: u32,
    },
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::Json(e) => write!(f, "trace is not valid: {e}"),
            TraceError::NotATrace { format } => {
                write!(f, "not a contractcourt trace (format {format:?}, expected {TRACE_FORMAT:?})")
            }
            TraceError::UnknownVersion { version } => write!(
                f,
                "trace version {version} is not supported (this build reads version {TRACE_VERSION})"
            ),
        }
    }
}

impl std::error::Error for TraceError {}

impl Trace {
    /// A new, empty trace with the current format and version.
    pub fn new(description: impl Into<String>, setup: TraceSetup) -> Trace {
        Trace {
            format: TRACE_FORMAT.to_string(),
            version: TRACE_VERSION,
            description: description.into(),
            setup,
            steps: Vec::new(),
        }
    }

    /// Parse a trace, refusing other formats and unknown versions before reading the steps.
    pub fn from_json(text: &str) -> Result<Trace, TraceError> {
        #[derive(Deserialize)]
        struct Header {
            format: String,
            version: u32,
        }
        let header: Header = serde_json::from_str(text).map_err(TraceError::Json)?;
        if header.format != TRACE_FORMAT {
            return Err(TraceError::NotATrace {
                format: header.format,
            });
        }
        if header.version != TRACE_VERSION {
            return Err(TraceError::UnknownVersion {
                version: header.version,
            });
        }
        serde_json::from_str(text).map_err(TraceError::Json)
    }

    /// The trace as pretty JSON (stable: the same trace always gives the same bytes).
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Feed `event` to `machine` and append the step with whatever it answered: the way golden
    /// traces are recorded.
    pub fn record<M: Machine>(&mut self, machine: &mut M, event: Event) -> &TraceStep {
        let expect = match machine.step(&event) {
            Ok(actions) => Expected::Actions { actions },
            Err(e) => Expected::Refused {
                error: e.to_string(),
            },
        };
        self.steps.push(TraceStep { event, expect });
        let last = self.steps.len() - 1;
        &self.steps[last]
    }
}

/// A step whose answer differed from the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The step's index (0-based).
    pub step: usize,
    /// The event, as JSON.
    pub event: String,
    /// A line diff: `-` expected, `+` actual.
    pub diff: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "trace step {} differs", self.step)?;
        writeln!(f, "event: {}", self.event)?;
        writeln!(f, "--- expected")?;
        writeln!(f, "+++ actual")?;
        f.write_str(&self.diff)
    }
}

impl std::error::Error for Mismatch {}

/// Replay `steps` through `machine`, stopping at the first step whose answer differs.
/// Returns the number of steps replayed.
pub fn replay<M: Machine>(machine: &mut M, steps: &[TraceStep]) -> Result<usize, Mismatch> {
    for (i, step) in steps.iter().enumerate() {
        let actual = match machine.step(&step.event) {
            Ok(actions) => Expected::Actions { actions },
            Err(e) => Expected::Refused {
                error: e.to_string(),
            },
        };
        if actual != step.expect {
            let expected = serde_json::to_string_pretty(&step.expect).unwrap_or_default();
            let actual = serde_json::to_string_pretty(&actual).unwrap_or_default();
            return Err(Mismatch {
                step: i,
                event: serde_json::to_string(&step.event).unwrap_or_default(),
                diff: line_diff(&expected, &actual),
            });
        }
    }
    Ok(steps.len())
}

#[cfg(test)]
mod tests;
