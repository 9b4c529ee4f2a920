//! Keeping the flight recorder to a window: once the tip has advanced `archive_depth` blocks past
//! the replay start the driver set aside, that start becomes the recorder's
//! ([`Store::prune_recorder`]): every earlier event is deleted and replay begins there, from the
//! records as they were. The recorder therefore always holds at least `archive_depth` blocks of
//! events (at most twice that), and replays from its start to the live engine's state.

use contractcourt_core::event::Event;
use contractcourt_core::types::Height;

use crate::store::{Records, Store, StoreError};

/// A replay start set aside: the records as they were before event `seq`, at tip `height`.
#[derive(Debug)]
struct Pending {
    seq: u64,
    height: Height,
    records: Records,
}

/// The driver's pruning state (in memory: after a restart the first window starts again).
#[derive(Debug, Default)]
pub(crate) struct Pruner {
    pending: Option<Pending>,
}

impl Pruner {
    /// After event `seq` was committed: when it connected a block, set a start aside or, a
    /// window after the one set aside, make that one the recorder's start and set a new one
    /// aside. `window` is the engine's `archive_depth` (0: never prune).
    pub(crate) fn committed<S: Store + ?Sized>(
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
