//! What we paid to claim each output of a close, and the second-level output its spend created:
//! with the outcome each resolver read from its spend (`resolver/`), the one source of the
//! resolution reports' outcomes and fees and of the ledger's statuses and fees
//! (`chain/ledger.rs`), so the two cannot disagree.

use crate::action::Outcome;
use crate::resolver::{Resolver, Stage};
use crate::sweeper::Sweeper;
use crate::types::HtlcKey;

use super::ChannelArbitrator;

impl ChannelArbitrator {
    /// The output of our own second-level transaction (or of the peer's, on its revoked
    /// commitment) that the spend of `r` created, if any: listed and counted as an output of
    /// its own.
    pub fn second_level_output(&self, r: &Resolver) -> Option<&Resolver> {
        let spent_by = match r.stage {
            Stage::Spent { txid, .. } | Stage::Resolved { txid, .. } => txid,
            Stage::Active | Stage::Abandoned { .. } | Stage::Expired { .. } => return None,
        };
        self.resolvers
            .values()
            .find(|n| n.created_at.is_some() && n.outpoint.txid == spent_by)
    }

    /// Every fee we paid (or are paying, while a claim is out) to bring `r`'s output to our
    /// wallet or sweep destination: its share of our sweep or justice transaction; the fee of our
    /// second-level transaction (pre-signed, out of the HTLC's value, or paid by wallet inputs
    /// under anchors); the CPFP child's fee paid through our anchor. Nothing for a spend of
    /// someone else's, whatever its fee.
    /// Once final, the fee fixed then.
    pub fn fees_paid(&self, r: &Resolver, sweeper: &Sweeper) -> u64 {
        if let Some(fees) = r.fees_sat {
            return fees;
        }
        let spend_txid = match r.stage {
            Stage::Spent { txid, .. } | Stage::Resolved { txid, .. } => Some(txid),
            Stage::Active | Stage::Abandoned { .. } | Stage::Expired { .. } => None,
        };
        let ours = matches!(r.outcome(), Some(Outcome::Claimed | Outcome::TimedOut));
        // A pre-signed second-level transaction pays its fee out of the HTLC's value.
        let presigned = match self.second_level_output(r) {
            Some(n) if ours => r.value_sat.saturating_sub(n.value_sat),
            _ => 0,
        };
        // Under anchors the wallet pays it: the fee of the attempt that confirmed (or is out).
        let funded = r.second_level.as_ref().and_then(|c| c.funded.as_ref());
        let funded = match (funded, spend_txid) {
            (Some(f), Some(t)) if f.is_ours(&t) => f.fee_paid(Some(&t)).unwrap_or(0),
            (Some(f), None) => f.fee_paid(None).unwrap_or(0),
            _ => 0,
        };
        sweeper.fees_paid(&r.outpoint).unwrap_or(0)
            + presigned
            + funded
            + self.cpfp_fee(&r.outpoint).unwrap_or(0)
    }

    /// The amount of one of this channel's HTLCs, from the commitments that carry it.
    pub(super) fn htlc_amount_msat(&self, htlc: &HtlcKey) -> Option<u64> {
        let c = &self.data.commitments;
        c.local
            .iter()
            .map(|l| &l.commitment)
            .chain(c.remote_current.iter())
            .chain(c.remote_pending.iter())
            .flat_map(|r| r.htlcs.iter())
            .find(|h| h.htlc_id == htlc.htlc_id && h.direction == htlc.direction)
            .map(|h| h.amount_msat)
    }
}
