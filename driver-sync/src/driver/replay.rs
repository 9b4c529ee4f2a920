//! Replaying the flight recorder: a store's recorded events, in feed order, through a fresh
//! engine — for `contractcourt replay --db` and for reproducing a field incident bit for bit.
//!
//! The recorder holds every event a driver fed, refused ones included (a refusal changed
//! nothing then and changes nothing now; it is listed in [`Replay::refused`]). Because the core
//! is deterministic and a restarted engine loads back exactly the state it persisted, the replay
//! ends in the live engine's state and produces the live drivers' transcript (every step's
//! actions, in step order).
//!
//! One thing the recorder cannot show is a failed commit: the live driver reloaded and lost
//! that step's changes, the replay keeps them. A history with a failed commit can therefore end
//! elsewhere (usually the same place: the event is fed again, and repeats are no-ops or refused).

use contractcourt_core::action::Action;
use contractcourt_core::chain::{ChainArbitrator, Config, StepError};

use crate::store::{Store, StoreError};

/// How many recorded events are read at a time.
const PAGE: usize = 1024;

/// The outcome of a replay.
#[derive(Debug)]
pub struct Replay {
    /// The engine after every recorded event.
    pub engine: ChainArbitrator,
    /// Every action of every step, in step order.
    pub transcript: Vec<Action>,
    /// The recorded events the core refused, by sequence number.
    pub refused: Vec<(u64, StepError)>,
    /// How many events were replayed.
    pub events: u64,
}

/// Why a replay failed.
#[derive(Debug)]
pub enum ReplayError {
    /// The store could not be read (or a recorded event is corrupt).
    Store(StoreError),
    /// The recorder's sequence numbers have a gap.
    Gap {
        /// The sequence number expected.
        expected: u64,
        /// The one found.
        found: u64,
    },
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Store(e) => write!(f, "reading the flight recorder: {e}"),
            ReplayError::Gap { expected, found } => write!(
                f,
                "flight recorder gap: expected event {expected}, found {found}"
            ),
        }
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplayError::Store(e) => Some(e),
            ReplayError::Gap { .. } => None,
        }
    }
}

/// Re-run every event recorded in `store` through a fresh engine with `config`. Deterministic:
/// the same recording gives the same engine and transcript. Reads only.
pub fn replay_flight_recorder<S: Store + ?Sized>(
    config: Config,
    store: &S,
) -> Result<Replay, ReplayError> {
    let mut engine = ChainArbitrator::new(config);
    let mut transcript = Vec::new();
    let mut refused = Vec::new();
    let mut next = 0u64;
    loop {
        let page = store.events(next, PAGE).map_err(ReplayError::Store)?;
        if page.is_empty() {
            break;
        }
        for (seq, event) in page {
            if seq != next {
                return Err(ReplayError::Gap {
                    expected: next,
                    found: seq,
                });
            }
            match engine.step(&event) {
                Ok(actions) => transcript.extend(actions),
                Err(e) => refused.push((seq, e)),
            }
            next += 1;
        }
    }
    Ok(Replay {
        engine,
        transcript,
        refused,
        events: next,
    })
}
