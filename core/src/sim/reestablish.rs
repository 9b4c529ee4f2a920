//! Closing and reconnecting: the shutdown scripts of a cooperative close, and what a node restored
//! from an old backup sees (its update numbering, the peer's `channel_reestablish`).

use bitcoin::ScriptBuf;

use crate::event::{ChannelChange, Event};

use super::{SimChannel, SimError};

impl SimChannel {
    /// Both sides' `shutdown` scripts exchanged (the start of a cooperative close). Emits
    /// `ShutdownScripts`.
    pub fn shutdown(&mut self, local: ScriptBuf, remote: ScriptBuf) -> Event {
        self.update(ChannelChange::ShutdownScripts { local, remote })
    }

    /// The `update_id` the next channel event gets.
    pub fn next_update_id(&self) -> u64 {
        self.next_update_id
    }

    /// Number the next channel events from `next_update_id`: a node restored from an old backup
    /// (a data loss) knows nothing of the updates after it, so its next event follows the
    /// backup's last one.
    pub fn restore_update_numbering(&mut self, next_update_id: u64) {
        self.next_update_id = next_update_id;
    }

    /// What `channel_reestablish` shows a node that lost the updates after its current
    /// commitments: the peer's next commitment number and current per-commitment point, from the
    /// peer's real state. Emits `DataLossDetected`.
    pub fn data_loss_detected(&mut self) -> Result<Event, SimError> {
        let current = self.remote_number;
        let point = self.remote.per_commitment_point(current)?;
        Ok(self.update(ChannelChange::DataLossDetected {
            remote_next_commitment_number: current.saturating_add(1),
            remote_per_commitment_point: Some(point),
        }))
    }
}
