//! The ledger: what every output of every closing channel is worth and where it stands — the
//! operator's view of funds "in limbo". Derived on demand from the confirmed close, its
//! resolvers and the sweeper; nothing here is stored, so it cannot disagree with the engine.
//!
//! Each output is counted once, from the commitment that confirmed: an HTLC that was on several
//! commitments appears only as the output it really is, and a forwarded HTLC appears on each
//! channel only as that channel's output (its other leg is another channel's output).

use bitcoin::{OutPoint, Txid};
use serde::{Deserialize, Serialize};

use crate::channel::{ArbState, ChannelArbitrator};
use crate::resolver::{Resolver, ResolverKind, Stage};
use crate::sweeper::ClaimState;
use crate::types::{ChannelId, Height};

use super::ChainArbitrator;

/// Where one output stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OutputStatus {
    /// Ours once its timelock passes.
    Timelocked {
        /// The first block in which it can be claimed.
        until: Height,
    },
    /// Either side may still take it (an HTLC before its expiry, or without a preimage).
    Contested,
    /// Being claimed by us now.
    Claiming,
    /// Spent, not yet reorg-safe.
    Confirming {
        /// The spending transaction.
        txid: Txid,
        /// The height at which it becomes final.
        final_at: Height,
    },
    /// Final: ours.
    Recovered {
        /// The spending transaction.
        txid: Txid,
    },
    /// Claimed by our second-level HTLC transaction, whose output is listed (and counted) as an
    /// output of its own.
    SecondLevel {
        /// The second-level transaction.
        txid: Txid,
    },
    /// Final: taken by the peer (for an outgoing HTLC with its preimage, the payment succeeded
    /// and the incoming leg was settled).
    TakenByPeer {
        /// The spending transaction.
        txid: Txid,
    },
    /// Final: expired, the peer's. An incoming HTLC past its expiry (reorg-safe) without a
    /// preimage: the peer may take it by timeout whenever it wants (BOLT 5 counts it irrevocably
    /// resolved); counted with what the peer took.
    Expired,
    /// Left unclaimed: worth less than its claim would cost — an anchor once the close is final
    /// (for good), or a dust-sized output the sweeper re-examines every block in case fees fall.
    Uneconomical,
}

/// One output of a closing channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputEntry {
    /// The output.
    pub outpoint: OutPoint,
    /// Its value.
    pub amount_sat: u64,
    /// What it is, in words.
    pub what: String,
    /// Where it stands.
    pub status: OutputStatus,
    /// The height at which the engine next acts on it, if any.
    pub next_step: Option<Height>,
    /// Fees paid so far to claim it.
    pub fees_paid_sat: u64,
}

/// One channel in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelEntry {
    /// The channel.
    pub channel: ChannelId,
    /// Its arbitrator state.
    pub state: ArbState,
    /// Its outputs that matter to us.
    pub outputs: Vec<OutputEntry>,
}

/// Totals for the node, in satoshis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Waiting for a timelock.
    pub timelocked_sat: u64,
    /// Contested.
    pub contested_sat: u64,
    /// Being claimed or confirming.
    pub claiming_sat: u64,
    /// Recovered, before fees.
    pub recovered_sat: u64,
    /// Taken by the peer, or expired and the peer's to take ([`OutputStatus::Expired`]).
    pub taken_by_peer_sat: u64,
    /// Left unclaimed because claiming would cost more than it is worth (anchors, dust-sized
    /// outputs).
    #[serde(default)]
    pub uneconomical_sat: u64,
    /// Fees paid.
    pub fees_sat: u64,
}

/// The node's ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// The tip it was computed at.
    pub tip: Height,
    /// Every channel with a confirmed close, in id order.
    pub channels: Vec<ChannelEntry>,
    /// Totals over all of them.
    pub totals: Totals,
}

fn describe(kind: &ResolverKind) -> String {
    match kind {
        ResolverKind::CommitSweep { .. } => "our balance".to_string(),
        ResolverKind::OutgoingHtlc { htlc, .. } => format!("outgoing htlc {}", htlc.htlc_id),
        ResolverKind::IncomingHtlc { htlc, .. } => format!("incoming htlc {}", htlc.htlc_id),
        ResolverKind::Anchor => "anchor".to_string(),
        ResolverKind::Breach { commitment_number } => {
            format!("revoked commitment {commitment_number} output")
        }
    }
}

impl ChainArbitrator {
    /// The ledger at the current tip.
    pub fn ledger(&self) -> Ledger {
        let tip = self.tip.map_or(0, |t| t.height);
        let depth = self.config.close.reorg_safety_depth;
        let mut totals = Totals::default();
        let mut channels = Vec::new();
        for ch in self.channels.values().filter(|c| c.close.is_some()) {
            let mut outputs = Vec::new();
            for r in ch.resolvers.values() {
                let entry = self.entry(ch, r, tip, depth);
                let v = entry.amount_sat;
                match entry.status {
                    OutputStatus::Timelocked { .. } => totals.timelocked_sat += v,
                    OutputStatus::Contested => totals.contested_sat += v,
                    OutputStatus::Claiming | OutputStatus::Confirming { .. } => {
                        totals.claiming_sat += v
                    }
                    OutputStatus::Recovered { .. } => totals.recovered_sat += v,
                    OutputStatus::TakenByPeer { .. } | OutputStatus::Expired => {
                        totals.taken_by_peer_sat += v
                    }
                    OutputStatus::Uneconomical => totals.uneconomical_sat += v,
                    // Counted once, as the second-level output it became.
                    OutputStatus::SecondLevel { .. } => {}
                }
                totals.fees_sat += entry.fees_paid_sat;
                outputs.push(entry);
            }
            channels.push(ChannelEntry {
                channel: ch.data.info.id,
                state: ch.state(),
                outputs,
            });
        }
        Ledger {
            tip,
            channels,
            totals,
        }
    }

    fn entry(&self, ch: &ChannelArbitrator, r: &Resolver, tip: Height, depth: u32) -> OutputEntry {
        // The second-level output this HTLC output became, if our second-level transaction
        // spent it (recognised by the output it created, whatever attempt it was).
        let spend_txid = match r.stage {
            Stage::Spent { txid, .. } | Stage::Resolved { txid, .. } => Some(txid),
            Stage::Active | Stage::Abandoned { .. } | Stage::Expired { .. } => None,
        };
        let became = ch
            .resolvers
            .values()
            .find(|n| n.created_at.is_some() && Some(n.outpoint.txid) == spend_txid);
        // A second-level transaction pays its own (pre-signed) fee out of the HTLC's value.
        let second_level_fee = became.map_or(0, |n| r.value_sat.saturating_sub(n.value_sat));
        // Under anchors the wallet paid it: the fee of the attempt that confirmed (or is out).
        let funded = r.second_level.as_ref().and_then(|c| c.funded.as_ref());
        let second_level_fee = second_level_fee
            + match (funded, spend_txid) {
                (Some(f), Some(t)) if f.is_ours(&t) => f.fee_paid(Some(&t)).unwrap_or(0),
                (Some(f), None) => f.fee_paid(None).unwrap_or(0),
                _ => 0,
            };
        let fees_paid_sat = self.sweeper.fees_paid(&r.outpoint).unwrap_or(0)
            + second_level_fee
            + ch.cpfp_fee(&r.outpoint).unwrap_or(0);
        // Only we can spend our balance; a breach output is ours unless the peer outran us.
        let only_ours = matches!(r.kind, ResolverKind::CommitSweep { .. });
        let (status, next_step) = match &r.stage {
            Stage::Spent { txid, .. } | Stage::Resolved { txid, .. } if became.is_some() => {
                (OutputStatus::SecondLevel { txid: *txid }, None)
            }
            Stage::Resolved { txid, by_us, .. } if *by_us || only_ours => {
                (OutputStatus::Recovered { txid: *txid }, None)
            }
            Stage::Resolved { txid, .. } => (OutputStatus::TakenByPeer { txid: *txid }, None),
            Stage::Abandoned { .. } => (OutputStatus::Uneconomical, None),
            // A preimage arrived after it expired: claimed after all, while the peer lets us.
            Stage::Expired { .. }
                if self.sweeper.claim_for(&r.outpoint).is_some() || r.second_level.is_some() =>
            {
                (OutputStatus::Claiming, Some(tip.saturating_add(1)))
            }
            Stage::Expired { .. } => (OutputStatus::Expired, None),
            Stage::Spent { txid, height, .. } => {
                let final_at = height.saturating_add(depth.saturating_sub(1));
                (
                    OutputStatus::Confirming {
                        txid: *txid,
                        final_at,
                    },
                    Some(final_at),
                )
            }
            Stage::Active => {
                let claim = self
                    .sweeper
                    .claim_for(&r.outpoint)
                    .and_then(|id| self.sweeper.claims().get(&id));
                // A claim the sweeper left alone (it cannot pay for itself) is not being
                // claimed: it is re-examined every block, in case fees fall.
                let left_alone =
                    claim.is_some_and(|c| matches!(c.state, ClaimState::Uneconomical { .. }));
                let claiming = claim.is_some() || r.second_level.is_some();
                match &r.kind {
                    _ if left_alone => (OutputStatus::Uneconomical, Some(tip.saturating_add(1))),
                    ResolverKind::CommitSweep { mature_at }
                        if tip.saturating_add(1) < *mature_at =>
                    {
                        (
                            OutputStatus::Timelocked { until: *mature_at },
                            Some(mature_at.saturating_sub(1)),
                        )
                    }
                    // The peer may claim it with the preimage until its expiry; ours after.
                    ResolverKind::OutgoingHtlc { cltv_expiry, .. }
                        if tip < *cltv_expiry || !claiming =>
                    {
                        (OutputStatus::Contested, Some(*cltv_expiry))
                    }
                    ResolverKind::IncomingHtlc { cltv_expiry, .. } if !claiming => {
                        (OutputStatus::Contested, Some(*cltv_expiry))
                    }
                    _ if claiming => (OutputStatus::Claiming, Some(tip.saturating_add(1))),
                    _ => (OutputStatus::Contested, None),
                }
            }
        };
        OutputEntry {
            outpoint: r.outpoint,
            amount_sat: r.value_sat,
            what: describe(&r.kind),
            status,
            next_step,
            fees_paid_sat,
        }
    }
}
