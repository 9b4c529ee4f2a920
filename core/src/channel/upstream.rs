//! The close's upstream rules: incoming HTLCs that expired without a preimage are the peer's; outgoing
//! HTLCs that will never resolve on this chain fail their incoming legs once the close is reorg-safe;
//! the cut-loss rule; a revoked commitment's outgoing HTLCs that the peer can no longer claim.

use super::config::CloseConfig;
use super::{ChannelArbitrator, ConfirmedClose};
use crate::action::{Action, CloseKind, FailReason, Report};
use crate::commitments::CommitmentRecord;
use crate::event::CommitmentHtlcInfo;
use crate::node::NodeState;
use crate::resolver::{ResolverKind, Stage};
use crate::types::{Height, HtlcDirection, HtlcKey, Party};
use bitcoin::OutPoint;

impl ChannelArbitrator {
    /// Outgoing HTLCs that will never be resolved on this chain — dust on the confirmed
    /// commitment, or not on it at all — have their incoming legs failed, unless a preimage is
    /// known (preimage first, always).
    pub(super) fn fail_htlcs_not_on_chain(
        &self,
        close: &ConfirmedClose,
        node: &mut NodeState,
    ) -> Vec<Action> {
        if matches!(
            close.kind,
            CloseKind::FutureRemote { .. } | CloseKind::Unknown | CloseKind::OldLocal { .. }
        ) {
            return Vec::new(); // we cannot know what is on it: never fail on a guess
        }
        let mut on_chain: Vec<HtlcKey> = self
            .resolvers
            .values()
            .filter_map(|r| match r.kind {
                ResolverKind::OutgoingHtlc { htlc, .. } => Some(htlc),
                _ => None,
            })
            .collect();
        if let CloseKind::Breach { .. } = close.kind {
            // The revoked commitment's HTLCs are known only from the revoked log: without it,
            // never fail on a guess (the caller waits for it). Its untrimmed outgoing HTLCs are on chain: the peer may
            // still claim one with the preimage until our justice takes it (settled then), so
            // each is failed only when its output is ours, reorg-safe (`fail_revoked_outgoing`).
            let Some(revoked) = &self.revoked else {
                return Vec::new();
            };
            on_chain.extend(
                revoked
                    .htlcs
                    .iter()
                    .filter(|h| h.direction == HtlcDirection::Outgoing && h.output_index.is_some())
                    .map(|h| self.htlc_key(h)),
            );
        }
        // The HTLCs of the commitment that confirmed (trimmed ones included), when we know it.
        let confirmed: Vec<CommitmentHtlcInfo> = match (&close.kind, &self.revoked) {
            (CloseKind::Breach { .. }, Some(revoked)) => Some(revoked.htlcs.clone()),
            _ => None,
        }
        .or_else(|| {
            self.confirmed_commitment().and_then(|(holder, _, _)| {
                let c = &self.data.commitments;
                match holder {
                    Party::Local => c.local.as_ref().map(|l| l.commitment.htlcs.clone()),
                    Party::Remote => [c.remote_current.as_ref(), c.remote_pending.as_ref()]
                        .into_iter()
                        .flatten()
                        .find(|r| r.txids.contains(&close.txid))
                        .map(|r| r.htlcs.clone()),
                }
            })
        })
        .unwrap_or_default();
        let mut actions = Vec::new();
        // Incoming HTLCs trimmed on the confirmed commitment are lost: their final outcome is a
        // failure (unless a preimage is known, which `fail_upstream` refuses to override).
        for h in confirmed
            .iter()
            .filter(|h| h.direction == HtlcDirection::Incoming && h.output_index.is_none())
        {
            actions.extend(node.fail_upstream(
                self.htlc_key(h),
                &h.payment_hash,
                FailReason::IncomingDust,
            ));
        }
        let c = &self.data.commitments;
        let candidates = c
            .local
            .iter()
            .map(|l| &l.commitment)
            .chain(c.remote_current.iter())
            .chain(c.remote_pending.iter());
        for h in candidates
            .flat_map(|r| r.htlcs.iter())
            .filter(|h| h.direction == HtlcDirection::Outgoing)
        {
            let outgoing = self.htlc_key(h);
            if on_chain.contains(&outgoing) {
                continue;
            }
            let Some(leg) = node.circuits.get(&outgoing).copied() else {
                continue;
            };
            let on_confirmed = confirmed
                .iter()
                .any(|c| c.direction == HtlcDirection::Outgoing && c.htlc_id == h.htlc_id);
            let reason = if on_confirmed {
                FailReason::OutgoingDust { outgoing }
            } else {
                FailReason::OutgoingNotOnChain { outgoing }
            };
            actions.extend(node.fail_upstream(leg.htlc, &h.payment_hash, reason));
        }
        actions
    }

    /// The cut-loss rule: an outgoing HTLC still unresolved on-chain when its incoming leg is
    /// `cut_loss_blocks` from expiry is failed upstream (the incoming leg would otherwise be lost
    /// too), recorded as a possible loss.
    pub(super) fn cut_losses(
        &self,
        tip: Height,
        node: &mut NodeState,
        cfg: &CloseConfig,
    ) -> Vec<Action> {
        let Some(n) = cfg.cut_loss_blocks else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        for r in self.resolvers.values() {
            let ResolverKind::OutgoingHtlc {
                htlc, payment_hash, ..
            } = r.kind
            else {
                continue;
            };
            if !matches!(r.stage, Stage::Active) {
                continue;
            }
            let Some(leg) = node.circuits.get(&htlc).copied() else {
                continue;
            };
            if tip.saturating_add(n) < leg.cltv_expiry || node.upstream.contains_key(&leg.htlc) {
                continue;
            }
            let reason = FailReason::CutLoss {
                outgoing: htlc,
                incoming_expiry: leg.cltv_expiry,
            };
            if let Some(fail) = node.fail_upstream(leg.htlc, &payment_hash, reason) {
                actions.push(fail);
                actions.push(Action::Report(Report::Loss {
                    htlc,
                    amount_msat: leg.amount_msat,
                    detail: format!("outgoing htlc unresolved {n} blocks before the incoming leg expires at {}: failed upstream; if the peer still claims it, this is lost", leg.cltv_expiry),
                }));
            }
        }
        actions
    }
}

/// An HTLC output of the peer's revoked commitment was resolved, reorg-safe: if it was an
/// outgoing HTLC of ours and no preimage appeared (the peer's HTLC-success would have revealed
/// it and settled the incoming leg), the peer can no longer claim it, so its incoming leg fails.
pub(super) fn revoked_outgoing_lost(
    revoked: Option<&CommitmentRecord>,
    close: &ConfirmedClose,
    outpoint: OutPoint,
    channel: crate::types::ChannelId,
    node: &mut NodeState,
) -> Option<Action> {
    if outpoint.txid != close.txid || !matches!(close.kind, CloseKind::Breach { .. }) {
        return None;
    }
    let h = revoked?.htlcs.iter().find(|h| {
        h.direction == HtlcDirection::Outgoing && h.output_index == Some(outpoint.vout)
    })?;
    let outgoing = HtlcKey {
        channel,
        htlc_id: h.htlc_id,
        direction: h.direction,
    };
    let leg = node.circuits.get(&outgoing).copied()?;
    node.fail_upstream(
        leg.htlc,
        &h.payment_hash,
        FailReason::OutgoingRevoked { outgoing },
    )
}
