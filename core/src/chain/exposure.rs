//! Each open anchor channel's exposure — what the fee wallet may have to pay to close it and
//! claim its HTLCs — read from its arbitrator and kept in an index refreshed one channel at a
//! time, so pricing the fee reserve ([`crate::sweeper::reserve`]) costs nothing per channel.

use crate::channel::ChannelArbitrator;
use crate::event::FeeConditions;
use crate::sweeper::reserve::{exposure_weight, priced, ChannelExposure, FeeReserve};
use crate::sweeper::SweeperPolicy;
use crate::types::ChannelId;

/// The exposure of an open (not closed) channel with anchors (keyed, or a zero-fee commitment's
/// pay-to-anchor output, each priced with its own weights); `None` for any other.
pub fn exposure(c: &ChannelArbitrator) -> Option<ChannelExposure> {
    if c.close.is_some() || !c.data.info.channel_type.has_any_anchor() {
        return None;
    }
    let htlcs = c
        .data
        .commitments
        .local
        .as_ref()
        .map(|l| {
            l.commitment
                .htlcs
                .iter()
                .filter(|h| h.output_index.is_some())
                .map(|h| (h.direction, h.cltv_expiry))
                .collect()
        })
        .unwrap_or_default();
    Some(ChannelExposure {
        channel: c.data.info.id,
        channel_type: c.data.info.channel_type,
        htlcs,
    })
}

/// The exposure of every open (not closed) anchor channel among `channels`.
pub fn exposures<'a>(
    channels: impl IntoIterator<Item = &'a ChannelArbitrator>,
) -> Vec<ChannelExposure> {
    channels.into_iter().filter_map(exposure).collect()
}

/// Every open anchor channel's exposure weight, kept up to date one channel at a time (refreshed
/// whenever a channel changes), so pricing the reserve costs nothing per channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExposureIndex {
    /// Each exposed channel's (weight, HTLCs at stake).
    of_channel: std::collections::BTreeMap<ChannelId, (u64, usize)>,
    /// Their total weight.
    weight: u64,
    /// Their total HTLCs.
    htlcs: usize,
}

impl ExposureIndex {
    /// Refresh channel `id`'s entry from its arbitrator (`None`: it is gone).
    pub fn refresh(&mut self, id: ChannelId, channel: Option<&ChannelArbitrator>) {
        self.set(id, channel.and_then(exposure).as_ref());
    }

    /// Set channel `id`'s entry to `exposure` (`None`: it has none).
    pub fn set(&mut self, id: ChannelId, exposure: Option<&ChannelExposure>) {
        if let Some((weight, htlcs)) = self.of_channel.remove(&id) {
            self.weight = self.weight.saturating_sub(weight);
            self.htlcs = self.htlcs.saturating_sub(htlcs);
        }
        let Some(e) = exposure else {
            return;
        };
        let entry = (exposure_weight(e), e.htlcs.len());
        self.weight = self.weight.saturating_add(entry.0);
        self.htlcs = self.htlcs.saturating_add(entry.1);
        self.of_channel.insert(id, entry);
    }

    /// The reserve of every indexed channel under `fees`: see [`crate::sweeper::reserve::fee_reserve`].
    pub fn fee_reserve(&self, fees: Option<&FeeConditions>, policy: &SweeperPolicy) -> FeeReserve {
        priced(self.weight, self.of_channel.len(), self.htlcs, fees, policy)
    }
}
