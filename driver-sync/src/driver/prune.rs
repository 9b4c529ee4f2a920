//! Keeping the flight recorder to a window: once the tip has advanced `archive_depth` blocks past
//! the replay start the driver set aside, that start becomes the recorder's
//! ([`Store::prune_recorder`]): every earlier event is deleted and replay begins there, from the
//! records as they were. The recorder therefore always holds at least `archive_depth` blocks of
//! events (at most twice that), and replays from its start to the live engine's state.
//!
//! [`commit_step`] is a step's commit as both drivers make it: the recorder's form of the event,
//! the digest of the step's actions and its batches in one write, then the window kept.

use contractcourt_core::action::Action;
use contractcourt_core::event::Event;
use contractcourt_core::types::Height;

use super::agenda;
use super::replay::actions_digest;
use crate::store::{Records, Store, StoreError};

/// One step to commit: the event fed, what the recorder keeps of it
/// (`ChainArbitrator::recordable`, taken before the step), the actions the step produced and the
/// recorder's window (`archive_depth`; 0: never prune).
#[derive(Debug)]
pub struct StepToCommit<'a> {
    /// The event fed.
    pub event: &'a Event,
    /// What the recorder keeps of it: `None` for a mempool event the engine could not route.
    pub recordable: Option<Event>,
    /// The step's actions.
    pub actions: &'a [Action],
    /// The recorder's window, in blocks.
    pub window: u32,
}

/// Commit `step` to `store`, then keep the recorder to its window (a failed prune is logged and
/// tried again at a later block: the step is committed). An event the engine found irrelevant
/// that produced no action is not recorded and nothing is written (`Ok(None)`): it changed
/// nothing, so replay needs no trace of it. Should such a step act after all, it is recorded
/// whole. Otherwise the event's number.
pub fn commit_step<S: Store + ?Sized>(
    store: &mut S,
    pruner: &mut Pruner,
    step: StepToCommit<'_>,
) -> Result<Option<u64>, StoreError> {
    let recorded = match step.recordable {
        Some(recorded) => recorded,
        None if step.actions.is_empty() => return Ok(None),
        None => {
            tracing::warn!("an event found irrelevant acted: recorded whole");
            step.event.clone()
        }
    };
    let batches = agenda::batches(step.actions);
    let seq = store.commit_step(&recorded, &actions_digest(step.actions), &batches)?;
    if let Err(e) = pruner.committed(store, seq, step.event, step.window) {
        // The step is committed; only the recorder's window waits for a later try.
        tracing::warn!(seq, error = %e, "pruning the flight recorder failed");
    }
    Ok(Some(seq))
}

/// A replay start set aside: the records as they were before event `seq`, at tip `height`.
#[derive(Debug)]
struct Pending {
    seq: u64,
    height: Height,
    records: Records,
}

/// A driver's pruning state (in memory: after a restart the first window starts again).
#[derive(Debug, Default)]
pub struct Pruner {
    pending: Option<Pending>,
}

impl Pruner {
    /// After event `seq` was committed: when it connected a block, set a start aside or, a
    /// window after the one set aside, make that one the recorder's start and set a new one
    /// aside. `window` is the engine's `archive_depth` (0: never prune).
    pub fn committed<S: Store + ?Sized>(
        &mut self,
        store: &mut S,
        seq: u64,
        event: &Event,
        window: u32,
    ) -> Result<(), StoreError> {
        let Event::BlockConnected(block) = event else {
            return Ok(());
        };
        if window == 0 {
            return Ok(());
        }
        let due = match &self.pending {
            None => true,
            Some(p) => block.height >= p.height.saturating_add(window),
        };
        if !due {
            return Ok(());
        }
        if let Some(p) = self.pending.take() {
            store.prune_recorder(p.seq, &p.records)?;
        }
        self.pending = Some(Pending {
            seq: seq + 1,
            height: block.height,
            records: store.load()?,
        });
        Ok(())
    }
}
