//! The ledger: what every output of every closing channel is worth and where it stands — the
//! operator's view of funds "in limbo". Derived on demand from the confirmed close, its
//! resolvers and the sweeper; nothing here is stored, so it cannot disagree with the engine.
//! An output's status comes from [`Resolver::outcome`] and its fees from
//! [`ChannelArbitrator::fees_paid`], the same functions the resolution reports use.
//!
//! Each output is counted once, from the commitment that confirmed: an HTLC that was on several
//! commitments appears only as the output it really is, and a forwarded HTLC appears on each
//! channel only as that channel's output (its other leg is another channel's output).
//!
//! **The figures, each defined once** (satoshis):
//! - an output's *amount* is its value in the transaction that created it;
//! - an output's *fees* are every fee we paid (or are paying, while a claim is out) to bring it
//!   to our wallet or sweep destination: its share of our sweep or justice transaction, the fee
//!   of our second-level HTLC transaction that spent it (pre-signed and taken out of the HTLC's
//!   value on legacy channels, paid by wallet inputs under anchors), and for our anchor the fee
//!   of the CPFP child that spent it. A spend by anyone else costs us nothing;
//! - the totals count each output of the close once, **before fees**, in the bucket of where it
//!   stands: an HTLC output our own second-level transaction spent stands where that
//!   transaction's output stands, and counts at its value on the commitment (the output's row
//!   shows the second-level output's own, smaller, amount on legacy channels); an output of the
//!   peer's second-level transaction on its revoked commitment counts at its own value;
//! - `fees` is the sum of every output's fees, so once everything is final,
//!   **`recovered − fees` is exactly what reached our wallet and sweep destination** from the
//!   close (wallet inputs lent to our claims counted as spent).
//!
//! A cooperative close pays our balance straight to our shutdown script: there is nothing to
//! resolve, and nothing of it is in the ledger.

use std::collections::BTreeMap;

use bitcoin::{OutPoint, Txid};
use serde::{Deserialize, Serialize};

use crate::action::Outcome;
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
    /// Final: taken by a third party (our keyed anchor by its anyone-can-spend path after 16
    /// blocks, or a shared pay-to-anchor output at any time).
    TakenByThirdParty {
        /// The spending transaction.
        txid: Txid,
    },
    /// Final: spent with a witness that fits none of its paths (an `UnknownSpend` alert named
    /// the transaction, the input and the witness); counted as no one's.
    UnknownSpend {
        /// The spending transaction.
        txid: Txid,
    },
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
    /// Recovered: the value on the close of the outputs that ended ours, **before fees** (see
    /// the module documentation).
    pub recovered_sat: u64,
    /// Taken by the peer, or expired and the peer's to take ([`OutputStatus::Expired`]).
    pub taken_by_peer_sat: u64,
    /// Left unclaimed because claiming would cost more than it is worth (anchors, dust-sized
    /// outputs).
    #[serde(default)]
    pub uneconomical_sat: u64,
    /// Taken by a third party (anchors after 16 blocks).
    #[serde(default)]
    pub third_party_sat: u64,
    /// Spent by a witness of no known path.
    #[serde(default)]
    pub unknown_spend_sat: u64,
    /// Every fee we paid to bring the recovered outputs to our wallet or sweep destination (and
    /// are paying for those still being claimed): `recovered − fees` is what reached them.
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

impl Totals {
    fn add(&mut self, status: &OutputStatus, value: u64) {
        let bucket = match status {
            OutputStatus::Timelocked { .. } => &mut self.timelocked_sat,
            OutputStatus::Contested => &mut self.contested_sat,
            OutputStatus::Claiming | OutputStatus::Confirming { .. } => &mut self.claiming_sat,
            OutputStatus::Recovered { .. } => &mut self.recovered_sat,
            OutputStatus::TakenByPeer { .. } | OutputStatus::Expired => &mut self.taken_by_peer_sat,
            OutputStatus::TakenByThirdParty { .. } => &mut self.third_party_sat,
            OutputStatus::UnknownSpend { .. } => &mut self.unknown_spend_sat,
            OutputStatus::Uneconomical => &mut self.uneconomical_sat,
            // Counted once, where the second-level output it became stands.
            OutputStatus::SecondLevel { .. } => return,
        };
        *bucket = bucket.saturating_add(value);
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
            // The fee our own pre-signed second-level transaction took out of an HTLC's value
            // is counted with the output it became, so the HTLC counts at its full value.
            let mut presigned: BTreeMap<OutPoint, u64> = BTreeMap::new();
            for r in ch.resolvers.values() {
                if !matches!(r.outcome(), Some(Outcome::Claimed | Outcome::TimedOut)) {
                    continue;
                }
                if let Some(n) = ch.second_level_output(r) {
                    *presigned.entry(n.outpoint).or_default() +=
                        r.value_sat.saturating_sub(n.value_sat);
                }
            }
            let mut outputs = Vec::new();
            for r in ch.resolvers.values() {
                let entry = self.entry(ch, r, tip, depth);
                let counted = entry
                    .amount_sat
                    .saturating_add(presigned.get(&r.outpoint).copied().unwrap_or(0));
                totals.add(&entry.status, counted);
                totals.fees_sat = totals.fees_sat.saturating_add(entry.fees_paid_sat);
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
        let fees_paid_sat = ch.fees_paid(r, &self.sweeper);
        let became = ch.second_level_output(r).is_some();
        let (status, next_step) = match (&r.stage, r.outcome()) {
            // Counted as the second-level output it became, from its first confirmation.
            (Stage::Spent { txid, .. } | Stage::Resolved { txid, .. }, _) if became => {
                (OutputStatus::SecondLevel { txid: *txid }, None)
            }
            (Stage::Spent { txid, height, .. }, _) => {
                let final_at = height.saturating_add(depth.saturating_sub(1));
                (
                    OutputStatus::Confirming {
                        txid: *txid,
                        final_at,
                    },
                    Some(final_at),
                )
            }
            (Stage::Resolved { txid, .. }, Some(outcome)) => {
                let txid = *txid;
                let status = match outcome {
                    Outcome::Claimed | Outcome::TimedOut => OutputStatus::Recovered { txid },
                    Outcome::LostToPeer => OutputStatus::TakenByPeer { txid },
                    Outcome::ThirdParty => OutputStatus::TakenByThirdParty { txid },
                    Outcome::RevokedSecondLevel => OutputStatus::SecondLevel { txid },
                    Outcome::UnknownSpend => OutputStatus::UnknownSpend { txid },
                    Outcome::Uneconomical => OutputStatus::Uneconomical,
                };
                (status, None)
            }
            (Stage::Abandoned { .. }, _) | (Stage::Resolved { .. }, None) => {
                (OutputStatus::Uneconomical, None)
            }
            // A preimage arrived after it expired: claimed after all, while the peer lets us.
            (Stage::Expired { .. }, _)
                if self.sweeper.claim_for(&r.outpoint).is_some() || r.second_level.is_some() =>
            {
                (OutputStatus::Claiming, Some(tip.saturating_add(1)))
            }
            (Stage::Expired { .. }, _) => (OutputStatus::Expired, None),
            (Stage::Active, _) => {
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
