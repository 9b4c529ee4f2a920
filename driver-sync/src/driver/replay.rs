//! Replaying the flight recorder: a store's recorded events, in feed order, through a fresh
//! engine — for `contractcourt replay --db` and for reproducing a field incident bit for bit.
//!
//! The recorder holds every event a driver fed, refused ones included (a refusal changed
//! nothing then and changes nothing now; it is listed in [`Replay::refused`]). Because the core
//! is deterministic and a restarted engine loads back exactly the state it persisted, the replay
//! ends in the live engine's state and produces the live drivers' transcript (every step's
//! actions, in step order).
//!
//! An event is recorded in its step's own commit, with the digest of the actions the step
//! produced ([`actions_digest`]); a step whose commit failed is not recorded at all (the live
//! engine reloaded and lost it too). The replay recomputes each step's digest and compares it
//! with the recorded one: [`Replay::divergence`] is the first step this build does not
//! reproduce. Events recorded before digests existed (a migrated store) are replayed unchecked
//! ([`Replay::unchecked`] counts them).
//!
//! A connected block is recorded reduced to the transactions the engine's index could route
//! (`ChainArbitrator::recordable`); replayed from the same state it gives the same actions.

use contractcourt_core::action::Action;
use contractcourt_core::chain::{ChainArbitrator, Config, StepError};

use bitcoin::hashes::{sha256, Hash, HashEngine};
use contractcourt_core::event::Event;

use crate::store::{StepDigest, Store, StoreError};

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
    /// Where the replay began: the recorder's start (0 unless it was pruned), from the records
    /// stored with it.
    pub first: u64,
    /// The number after the last event replayed (`events - first` were replayed).
    pub events: u64,
    /// The first step whose actions differ from the recorded digest, if any.
    pub divergence: Option<Divergence>,
    /// How many replayed events had a recorded digest to compare with.
    pub checked: u64,
    /// How many replayed events had none (recorded before digests).
    pub unchecked: u64,
}

/// Where a replay first stops reproducing the recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The event's sequence number (the step).
    pub seq: u64,
    /// The digest recorded with it.
    pub expected: StepDigest,
    /// The digest of the actions this build produced.
    pub actual: StepDigest,
    /// The event, as recorded.
    pub event: Event,
}

/// SHA256 over the canonical JSON of every action of a step, in order, each length-prefixed
/// (under a domain tag): a step's fingerprint, equal exactly when the actions serialise equally.
pub fn actions_digest(actions: &[Action]) -> StepDigest {
    let mut engine = sha256::Hash::engine();
    let tag = b"contractcourt/step-actions";
    engine.input(&(tag.len() as u64).to_be_bytes());
    engine.input(tag);
    for action in actions {
        // Serialising an action cannot fail (plain data, string keys); an error still counts.
        let json = serde_json::to_vec(action).unwrap_or_default();
        engine.input(&(json.len() as u64).to_be_bytes());
        engine.input(&json);
    }
    sha256::Hash::from_engine(engine).to_byte_array()
}

/// Why a replay failed.
#[derive(Debug)]
pub enum ReplayError {
    /// The store could not be read (or a recorded event is corrupt).
    Store(StoreError),
    /// The recorder's replay start holds records no engine can load.
    Start(crate::driver::DriverErrorKind),
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
            ReplayError::Start(e) => write!(f, "the flight recorder's replay start: {e}"),
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
            ReplayError::Start(_) | ReplayError::Gap { .. } => None,
        }
    }
}

/// Re-run every event kept in `store` with `config`: from a fresh engine, or after a prune from
/// the engine loaded from the records stored with the recorder's start. Deterministic:
/// the same recording gives the same engine and transcript. Reads only.
pub fn replay_flight_recorder<S: Store + ?Sized>(
    config: Config,
    store: &S,
) -> Result<Replay, ReplayError> {
    let (first, engine) = match store.replay_start().map_err(ReplayError::Store)? {
        None => (0, ChainArbitrator::new(config)),
        Some((seq, records)) => (
            seq,
            crate::driver::engine_from_records(&config, records).map_err(ReplayError::Start)?,
        ),
    };
    let mut out = Replay {
        first,
        engine,
        transcript: Vec::new(),
        refused: Vec::new(),
        events: first,
        divergence: None,
        checked: 0,
        unchecked: 0,
    };
    loop {
        let next = out.events;
        let page = store.events(next, PAGE).map_err(ReplayError::Store)?;
        if page.is_empty() {
            break;
        }
        let mut digests = store
            .step_digests(next, PAGE)
            .map_err(ReplayError::Store)?
            .into_iter()
            .peekable();
        for (seq, event) in page {
            if seq != out.events {
                return Err(ReplayError::Gap {
                    expected: out.events,
                    found: seq,
                });
            }
            let actions = match out.engine.step(&event) {
                Ok(actions) => actions,
                Err(e) => {
                    out.refused.push((seq, e));
                    Vec::new()
                }
            };
            while digests.next_if(|(s, _)| *s < seq).is_some() {}
            match digests.next_if(|(s, _)| *s == seq) {
                Some((_, expected)) => {
                    out.checked += 1;
                    let actual = actions_digest(&actions);
                    if actual != expected && out.divergence.is_none() {
                        out.divergence = Some(Divergence {
                            seq,
                            expected,
                            actual,
                            event,
                        });
                    }
                }
                None => out.unchecked += 1,
            }
            out.transcript.extend(actions);
            out.events += 1;
        }
    }
    Ok(out)
}
