//! What a quiet open channel needs in memory before it is decoded (see [`super::dormant`]):
//! read from its header and commitment records without decoding their keys or signatures.

use std::collections::BTreeSet;

use bitcoin::OutPoint;
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::action::{CommitmentSlot, Record};
use crate::bolt3::{ChannelType, PaymentHash};
use crate::channel::deadline::DeadlineConfig;
use crate::event::{CommitmentHtlcInfo, FundingOutput};
use crate::sweeper::reserve::ChannelExposure;
use crate::types::{ChannelId, Height, HtlcDirection};

/// A quiet open channel not decoded yet: what the indexes need of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DormantChannel {
    /// Its funding outpoints.
    pub(super) funding: Vec<OutPoint>,
    /// The payment hashes of the incoming HTLCs on its live commitments.
    pub(super) incoming: BTreeSet<PaymentHash>,
    /// The lowest `cltv_expiry` of an incoming HTLC on a live commitment.
    pub(super) earliest_incoming: Option<Height>,
    /// The lowest `cltv_expiry` of an outgoing HTLC on a live commitment.
    pub(super) earliest_outgoing: Option<Height>,
    /// Its fee exposure, if it has anchors (as `exposure::exposure` reads a decoded channel).
    pub(super) exposure: Option<ChannelExposure>,
}

impl DormantChannel {
    /// The height from which a deadline could fire: the decoded channel's go-to-chain rule
    /// fires no earlier (it skips trimmed HTLCs, and incoming HTLCs whose preimage is unknown).
    pub(super) fn wake(&self, cfg: &DeadlineConfig) -> Option<Height> {
        let incoming = self
            .earliest_incoming
            .map(|e| e.saturating_sub(cfg.incoming_broadcast_delta));
        let outgoing = self
            .earliest_outgoing
            .map(|e| e.saturating_sub(cfg.outgoing_broadcast_delta));
        incoming.into_iter().chain(outgoing).min()
    }
}

/// What a channel header says about the channel's activity (the rest of it is skipped, keys and
/// all). Any field present and not null makes the channel busy.
#[derive(Deserialize)]
struct HeaderView {
    info: InfoView,
    data_loss: Option<IgnoredAny>,
    force_close: Option<IgnoredAny>,
    close: Option<IgnoredAny>,
    resolved_at: Option<IgnoredAny>,
    #[serde(default)]
    cpfp: Option<IgnoredAny>,
    #[serde(default)]
    mempool_commitment: Option<IgnoredAny>,
    #[serde(default)]
    retired_cpfp: Option<IgnoredAny>,
    #[serde(default)]
    revoked: Option<IgnoredAny>,
    #[serde(default)]
    reorged_cooperative: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct InfoView {
    id: ChannelId,
    channel_type: ChannelType,
    funding: Vec<FundingOutput>,
}

#[derive(Deserialize)]
struct CommitmentView {
    htlcs: Vec<CommitmentHtlcInfo>,
}

#[derive(Deserialize)]
struct LocalView {
    commitment: CommitmentView,
}

impl HeaderView {
    fn busy(&self) -> bool {
        self.data_loss.is_some()
            || self.force_close.is_some()
            || self.close.is_some()
            || self.resolved_at.is_some()
            || self.cpfp.is_some()
            || self.mempool_commitment.is_some()
            || self.retired_cpfp.is_some()
            || self.revoked.is_some()
            || self.reorged_cooperative.is_some()
    }
}

/// Channel `id` as a dormant one, from its header and commitment records, if they show a quiet
/// open channel of a type the engine resolves; `None` for any other (it is decoded whole, which
/// reports whatever is wrong). A channel with resolvers is never quiet: the caller checks.
pub(super) fn dormant(
    id: ChannelId,
    header: &Record,
    commitments: &[(CommitmentSlot, Record)],
) -> Option<DormantChannel> {
    let header: HeaderView = header.body.decode().ok()?;
    if header.busy() || header.info.id != id || header.info.channel_type.engine_support().is_err() {
        return None;
    }
    let mut htlcs: Vec<CommitmentHtlcInfo> = Vec::new();
    let mut local = None;
    for (slot, record) in commitments {
        let c = match slot {
            CommitmentSlot::Local => {
                let l: LocalView = record.body.decode().ok()?;
                local = Some(l.commitment.htlcs.clone());
                l.commitment
            }
            CommitmentSlot::RemoteCurrent | CommitmentSlot::RemotePending => {
                record.body.decode().ok()?
            }
        };
        htlcs.extend(c.htlcs);
    }
    let earliest = |d: HtlcDirection| {
        htlcs
            .iter()
            .filter(|h| h.direction == d)
            .map(|h| h.cltv_expiry)
            .min()
    };
    let channel_type = header.info.channel_type;
    let exposure = channel_type.has_any_anchor().then(|| ChannelExposure {
        channel: id,
        channel_type,
        htlcs: local
            .unwrap_or_default()
            .iter()
            .filter(|h| h.output_index.is_some())
            .map(|h| (h.direction, h.cltv_expiry))
            .collect(),
    });
    Some(DormantChannel {
        funding: header.info.funding.iter().map(|f| f.outpoint).collect(),
        incoming: htlcs
            .iter()
            .filter(|h| h.direction == HtlcDirection::Incoming)
            .map(|h| h.payment_hash)
            .collect(),
        earliest_incoming: earliest(HtlcDirection::Incoming),
        earliest_outgoing: earliest(HtlcDirection::Outgoing),
        exposure,
    })
}
