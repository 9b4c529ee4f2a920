//! `inspect`: the channels not closed yet, and what a close of ours would give us now (LDK's
//! `Balance::ClaimableOnChannelClose` and its HTLC balances, lnd's `pendingchannels` for a
//! channel still open): our balance on our latest commitment after the commitment fee (and the
//! anchors) we pay as funder, claimable after our `to_self_delay`, and each HTLC on it that may
//! become ours.

use contractcourt_core::bolt3::commitment::{commitment_fee_sat, is_trimmed};
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::chain::ChainArbitrator;
use contractcourt_core::channel::{ArbState, ChannelArbitrator};
use contractcourt_core::types::{Height, HtlcDirection, HtlcKey, Party};
use serde::Serialize;

/// The value of each anchor output (BOLT 3), paid by the funder.
const ANCHOR_SAT: u64 = 330;

/// A channel no close has confirmed for, with what a close by us would give us.
#[derive(Serialize)]
pub(crate) struct OpenChannel {
    pub(crate) channel: String,
    pub(crate) state: String,
    /// Our latest commitment's number (`null`: none signed yet).
    pub(crate) commitment_number: Option<u64>,
    /// Our balance on it after the commitment fee and anchors we pay as funder: claimable
    /// `to_self_delay` blocks after it confirms.
    pub(crate) claimable_on_close_sat: u64,
    /// The fee of our commitment (paid by the funder).
    pub(crate) commitment_fee_sat: u64,
    pub(crate) we_fund: bool,
    pub(crate) to_self_delay: u16,
    /// HTLCs on it with an output (not trimmed).
    pub(crate) htlcs: Vec<OpenHtlc>,
}

/// An HTLC of an open channel that may become ours on a close.
#[derive(Serialize)]
pub(crate) struct OpenHtlc {
    pub(crate) htlc_id: u64,
    pub(crate) direction: &'static str,
    pub(crate) amount_sat: u64,
    pub(crate) cltv_expiry: Height,
    /// `maybe_timeout_claimable` (ours after its expiry unless the peer claims it with the
    /// preimage) or `maybe_preimage_claimable` (ours with its preimage before its expiry).
    pub(crate) claimable: &'static str,
    pub(crate) preimage_known: bool,
}

/// The channels of `engine` not closed yet.
pub(crate) fn open_channels(engine: &ChainArbitrator) -> Vec<OpenChannel> {
    engine
        .channels()
        .filter(|c| {
            matches!(
                c.state(),
                ArbState::Default | ArbState::BroadcastCommit | ArbState::CommitmentBroadcasted
            )
        })
        .map(|c| open_channel(engine, c))
        .collect()
}

fn open_channel(engine: &ChainArbitrator, c: &ChannelArbitrator) -> OpenChannel {
    let info = &c.data.info;
    let we_fund = info.funder == Party::Local;
    let state = serde_json::to_value(c.state())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{:?}", c.state()));
    let mut open = OpenChannel {
        channel: info.id.to_string(),
        state,
        commitment_number: None,
        claimable_on_close_sat: 0,
        commitment_fee_sat: 0,
        we_fund,
        to_self_delay: info.local_to_self_delay,
        htlcs: Vec::new(),
    };
    let Some(local) = &c.data.commitments.local else {
        return open;
    };
    let commitment = &local.commitment;
    let channel_type = info.channel_type;
    let untrimmed: Vec<_> = commitment
        .htlcs
        .iter()
        .filter(|h| {
            let offered = h.direction == HtlcDirection::Outgoing;
            !is_trimmed(
                offered,
                h.amount_msat,
                info.local_dust_limit_sat,
                commitment.feerate_per_kw,
                channel_type,
            )
        })
        .collect();
    let fee = commitment_fee_sat(commitment.feerate_per_kw, channel_type, untrimmed.len());
    let funder_pays = if we_fund {
        fee + anchors(channel_type)
    } else {
        0
    };
    open.commitment_number = Some(commitment.number);
    open.commitment_fee_sat = fee;
    open.claimable_on_close_sat = (commitment.to_local_msat / 1000).saturating_sub(funder_pays);
    open.htlcs = untrimmed
        .into_iter()
        .map(|h| {
            let key = HtlcKey {
                channel: info.id,
                htlc_id: h.htlc_id,
                direction: h.direction,
            };
            let outgoing = h.direction == HtlcDirection::Outgoing;
            OpenHtlc {
                htlc_id: h.htlc_id,
                direction: if outgoing { "outgoing" } else { "incoming" },
                amount_sat: h.amount_msat / 1000,
                cltv_expiry: h.cltv_expiry,
                claimable: if outgoing {
                    "maybe_timeout_claimable"
                } else {
                    "maybe_preimage_claimable"
                },
                preimage_known: engine.node().preimage_for(&key, &h.payment_hash).is_some(),
            }
        })
        .collect();
    open
}

fn anchors(channel_type: ChannelType) -> u64 {
    if channel_type.has_anchors() {
        2 * ANCHOR_SAT
    } else {
        0
    }
}
