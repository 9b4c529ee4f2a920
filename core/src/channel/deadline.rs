//! When must a channel go to chain? (lnd's `checkCommitChainActions`, BOLT 5 "HTLC timeouts".)
//!
//! A channel goes to chain when
//! - an **outgoing** HTLC reaches `cltv_expiry - outgoing_broadcast_delta`: past its expiry the
//!   peer can still claim it with the preimage while our incoming leg's expiry approaches, so we
//!   must be able to time it out on-chain; or
//! - an **incoming** HTLC whose preimage we know reaches `cltv_expiry - incoming_broadcast_delta`:
//!   the peer's timeout (nLockTime = `cltv_expiry`) is final from block `cltv_expiry + 1`, so our
//!   HTLC-success must confirm by block `cltv_expiry` at the latest.
//!
//! Both rules fire at a tip (`fires_at <= tip`), and what they broadcast is offered for the next
//! block: the margins are the configured deltas; no finality off-by-one is hidden in them.
//!
//! HTLCs on any commitment that can confirm count — ours, the peer's current and pending — so an
//! outgoing HTLC only the peer's commitment still carries ("dangling") forces a close too. HTLCs
//! that are dust on every commitment never force a close: there is nothing to claim on-chain.

use serde::{Deserialize, Serialize};

use crate::bolt3::commitment::is_trimmed;
use crate::event::CommitmentHtlcInfo;
use crate::types::{Height, HtlcDirection, HtlcKey, Party};

use super::updates::ChannelData;
use crate::commitments::{ChannelInfo, CommitmentRecord};
pub use crate::node::HtlcContext;

/// When to go to chain for HTLC deadlines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineConfig {
    /// Blocks before an outgoing HTLC's `cltv_expiry` at which we broadcast. Default 0: the
    /// HTLC-timeout cannot confirm before block `cltv_expiry + 1` anyway (its nLockTime is the
    /// expiry, final only in a block above it; under anchors one block later still, after the
    /// commitment's first confirmation), and
    /// broadcasting earlier only force-closes channels the peer might still settle off-chain.
    /// The margin that protects us is the forwarding `cltv_expiry_delta` between the legs.
    pub outgoing_broadcast_delta: u32,
    /// Blocks before an incoming HTLC's `cltv_expiry` at which we broadcast when we hold its
    /// preimage. Default 24: room to confirm the commitment (with a CPFP under fee pressure)
    /// and then the HTLC-success transaction, several blocks each, before the peer may time
    /// it out. lnd uses 16; LDK broadcasts 36 blocks before expiry.
    pub incoming_broadcast_delta: u32,
}

impl Default for DeadlineConfig {
    fn default() -> Self {
        DeadlineConfig {
            outgoing_broadcast_delta: 0,
            incoming_broadcast_delta: 24,
        }
    }
}

/// Why a channel must go to chain now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTrigger {
    /// The HTLC that forces the close.
    pub htlc: HtlcKey,
    /// The height by which it must be resolved on-chain (for an outgoing HTLC, the incoming
    /// leg's expiry when it was forwarded, otherwise its own).
    pub deadline: Height,
    /// The height at which the rule fires.
    pub fires_at: Height,
}

/// Every HTLC on a commitment that can still confirm, with whether it is untrimmed there.
fn live_htlcs(data: &ChannelData) -> impl Iterator<Item = (&CommitmentHtlcInfo, bool)> {
    let c = &data.commitments;
    let local = c.local.as_ref().map(|l| (Party::Local, &l.commitment));
    let remotes = [c.remote_current.as_ref(), c.remote_pending.as_ref()]
        .into_iter()
        .flatten()
        .map(|r| (Party::Remote, r));
    local
        .into_iter()
        .chain(remotes)
        .flat_map(move |(holder, record)| {
            record
                .htlcs
                .iter()
                .map(move |h| (h, !dust(&data.info, holder, record, h)))
        })
}

/// Whether an HTLC is trimmed (dust) on a commitment held by `holder`.
pub fn dust(
    info: &ChannelInfo,
    holder: Party,
    record: &CommitmentRecord,
    h: &CommitmentHtlcInfo,
) -> bool {
    let dust_limit = match holder {
        Party::Local => info.local_dust_limit_sat,
        Party::Remote => info.remote_dust_limit_sat,
    };
    let offered = h.as_commitment_htlc(holder).offered;
    is_trimmed(
        offered,
        h.amount_msat,
        dust_limit,
        record.feerate_per_kw,
        info.channel_type,
    )
}

/// The earliest go-to-chain trigger of a channel, whether or not it has fired yet; `None` if no
/// HTLC can force a close. Ties go to the lowest HTLC key, so the answer is deterministic.
pub fn earliest_trigger(
    data: &ChannelData,
    ctx: &impl HtlcContext,
    cfg: &DeadlineConfig,
) -> Option<ChainTrigger> {
    let mut best: Option<ChainTrigger> = None;
    for (h, untrimmed) in live_htlcs(data) {
        if !untrimmed {
            continue;
        }
        let key = HtlcKey {
            channel: data.info.id,
            htlc_id: h.htlc_id,
            direction: h.direction,
        };
        let trigger = match h.direction {
            HtlcDirection::Outgoing => ChainTrigger {
                htlc: key,
                deadline: ctx.incoming_expiry(&key).unwrap_or(h.cltv_expiry),
                fires_at: h.cltv_expiry.saturating_sub(cfg.outgoing_broadcast_delta),
            },
            HtlcDirection::Incoming if ctx.preimage_known(&key, h) => ChainTrigger {
                htlc: key,
                deadline: h.cltv_expiry,
                fires_at: h.cltv_expiry.saturating_sub(cfg.incoming_broadcast_delta),
            },
            HtlcDirection::Incoming => continue,
        };
        let better = match &best {
            None => true,
            Some(b) => (trigger.fires_at, trigger.htlc) < (b.fires_at, b.htlc),
        };
        if better {
            best = Some(trigger);
        }
    }
    best
}

/// The trigger that has fired at `height`, if any.
pub fn fired(
    data: &ChannelData,
    height: Height,
    ctx: &impl HtlcContext,
    cfg: &DeadlineConfig,
) -> Option<ChainTrigger> {
    earliest_trigger(data, ctx, cfg).filter(|t| t.fires_at <= height)
}

#[cfg(test)]
mod tests;
