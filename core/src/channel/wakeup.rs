//! When a channel acts next: its wake-up height (a pure function of its state, so a reload computes
//! the same), whether it acts every block, and whether it can be archived.

use super::config::CloseConfig;
use super::ChannelArbitrator;
use crate::action::CloseKind;
use crate::node::NodeState;
use crate::resolver::{depth, ResolverKind, Stage};
use crate::types::Height;

impl ChannelArbitrator {
    /// The next height at which this channel has something to do, independent of the tip (a
    /// height already passed is due at the next block). A channel waiting for its own broadcast
    /// commitment to confirm acts every block instead: see [`ChannelArbitrator::acts_every_block`].
    pub fn next_wakeup(
        &self,
        node: &NodeState,
        cfg: &CloseConfig,
        deadlines: &super::deadline::DeadlineConfig,
    ) -> Option<Height> {
        let Some(close) = &self.close else {
            if self.force_close.is_some() {
                return None;
            }
            return super::deadline::earliest_trigger(&self.data, node, deadlines)
                .map(|t| t.fires_at);
        };
        let mut next: Vec<Height> = self
            .resolvers
            .values()
            .filter_map(|r| r.next_wakeup(cfg.reorg_safety_depth))
            .collect();
        if let Some(at) = self.resolved_at {
            // Fully resolved: archived at `archive_depth` — unless an output already final for
            // us without a spend of ours (an expired incoming HTLC) is spent meanwhile, whose
            // spend is followed until it is reorg-safe.
            next.push(at.saturating_add(cfg.archive_depth.saturating_sub(1)));
            return next.into_iter().min();
        }
        if !close.settled_upstream {
            next.push(
                close
                    .height
                    .saturating_add(cfg.reorg_safety_depth.saturating_sub(1)),
            );
        }
        // What each resolver's machine does next: an incoming contest's end, a second-level
        // claim's start.
        let ours = matches!(close.kind, CloseKind::Local { .. });
        next.extend(
            self.resolvers
                .values()
                .filter_map(|r| r.machine_wakeup(node, ours, close.height, cfg.reorg_safety_depth)),
        );
        // The cut-loss rule (an upstream decision, not the resolver's).
        if let Some(n) = cfg.cut_loss_blocks {
            for r in self.resolvers.values() {
                if let (ResolverKind::OutgoingHtlc { htlc, .. }, Stage::Active) =
                    (&r.kind, &r.stage)
                {
                    if let Some(leg) = node
                        .circuits
                        .get(htlc)
                        .filter(|leg| !node.upstream.contains_key(&leg.htlc))
                    {
                        next.push(leg.cltv_expiry.saturating_sub(n));
                    }
                }
            }
        }
        next.into_iter().min()
    }

    /// Whether the channel acts on every block: our commitment is out and no close confirmed
    /// yet, so it is rebroadcast (or re-signed) each block.
    pub fn acts_every_block(&self) -> bool {
        (self.close.is_none()
            && (self.force_close.is_some()
                || self.mempool_commitment.is_some()
                || self.reorged_cooperative.is_some()))
            || self.second_level_pending()
    }

    /// Whether the channel is fully resolved and `archive_depth` deep at `tip`.
    pub fn archivable(&self, tip: Height, cfg: &CloseConfig) -> bool {
        self.resolved_at
            .is_some_and(|h| depth(h, tip) >= cfg.archive_depth)
    }
}
