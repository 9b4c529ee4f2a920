//! Who took each output of a close, read from the transaction that spent it, and what we paid to
//! claim it: the one source of the resolution reports' outcomes and fees and of the ledger's
//! statuses and fees (`chain/ledger.rs`), so the two cannot disagree.

use bitcoin::{OutPoint, Transaction};

use crate::action::{CloseKind, Outcome};
use crate::bolt3::classify::{
    classify_anchor_spend, classify_htlc_spend, classify_to_local_spend, describe_witness,
    AnchorSpend, HtlcOutputKind, HtlcSpend, ToLocalSpend,
};
use crate::bolt3::PaymentHash;
use crate::resolver::{Resolver, ResolverKind, Stage, Taken};
use crate::sweeper::Sweeper;
use crate::types::{HtlcKey, Party};

use super::ChannelArbitrator;

/// Whose path a witness took, seen from us.
enum Path {
    Ours,
    Theirs(Taken),
}

impl ChannelArbitrator {
    /// Judge a confirmed spend of `outpoint` (one of our resolvers' outputs) by `tx`: ours when
    /// `known_ours` (it pays our sweep destination, is our second-level transaction or our CPFP
    /// child) or when its witness is one of our paths; otherwise who took it and how.
    /// `peer_second_level`: it is the peer's second-level transaction on its revoked commitment
    /// (recognised by its output). Returns (ours, taken).
    pub(super) fn judge_spend(
        &self,
        outpoint: OutPoint,
        tx: &Transaction,
        known_ours: bool,
        peer_second_level: bool,
    ) -> (bool, Option<Taken>) {
        if known_ours {
            return (true, None);
        }
        let Some(r) = self.resolvers.get(&outpoint) else {
            return (false, None);
        };
        let Some((index, input)) = tx
            .input
            .iter()
            .enumerate()
            .find(|(_, i)| i.previous_output == outpoint)
        else {
            return (false, None);
        };
        let w = &input.witness;
        let unknown = || Taken::Unknown {
            input: u32::try_from(index).unwrap_or(u32::MAX),
            witness: describe_witness(w),
        };
        let holder = match self.close.as_ref().map(|c| &c.kind) {
            Some(CloseKind::Local { .. }) => Party::Local,
            _ => Party::Remote,
        };
        let path = match &r.kind {
            // Only our key spends it, except the revocation path of a `to_local`-style output.
            ResolverKind::CommitSweep { .. } => match classify_to_local_spend(w) {
                ToLocalSpend::Revocation => Path::Theirs(Taken::PeerRevocation),
                _ => Path::Ours,
            },
            ResolverKind::Anchor => match classify_anchor_spend(w) {
                AnchorSpend::Owner => Path::Ours,
                AnchorSpend::Anyone => Path::Theirs(Taken::ThirdParty),
                AnchorSpend::Unknown => Path::Theirs(unknown()),
            },
            ResolverKind::OutgoingHtlc { payment_hash, .. } => {
                outgoing_path(holder, w, payment_hash).unwrap_or_else(|| Path::Theirs(unknown()))
            }
            ResolverKind::IncomingHtlc { payment_hash, .. } => {
                incoming_path(holder, w, payment_hash).unwrap_or_else(|| Path::Theirs(unknown()))
            }
            ResolverKind::Breach { .. } => {
                // Any hash: the revocation path is recognised before the hash is looked at.
                let htlc = classify_htlc_spend(w, HtlcOutputKind::Offered, &PaymentHash([0; 32]));
                if peer_second_level {
                    Path::Theirs(Taken::PeerSecondLevelRevoked)
                } else if htlc == HtlcSpend::Revocation
                    || classify_to_local_spend(w) == ToLocalSpend::Revocation
                {
                    Path::Ours
                } else if classify_to_local_spend(w) == ToLocalSpend::Delayed {
                    Path::Theirs(Taken::PeerDelayed)
                } else {
                    Path::Theirs(unknown())
                }
            }
        };
        match path {
            Path::Ours => (true, None),
            Path::Theirs(t) => (false, Some(t)),
        }
    }

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
    pub fn fees_paid(&self, r: &Resolver, sweeper: &Sweeper) -> u64 {
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

/// An HTLC we offered. On our commitment it is an offered HTLC: ours by our HTLC-timeout
/// transaction, the peer's with the preimage directly, or by revocation. On the peer's it is a
/// received HTLC: ours by timeout directly, the peer's by its HTLC-success transaction.
fn outgoing_path(holder: Party, w: &bitcoin::Witness, hash: &PaymentHash) -> Option<Path> {
    Some(match holder {
        Party::Local => match classify_htlc_spend(w, HtlcOutputKind::Offered, hash) {
            HtlcSpend::SecondLevelTimeout => Path::Ours,
            HtlcSpend::Preimage(_) => Path::Theirs(Taken::PeerPreimage),
            HtlcSpend::Revocation => Path::Theirs(Taken::PeerRevocation),
            _ => return None,
        },
        Party::Remote => match classify_htlc_spend(w, HtlcOutputKind::Received, hash) {
            HtlcSpend::Timeout | HtlcSpend::Revocation => Path::Ours,
            HtlcSpend::SecondLevelSuccess(_) => Path::Theirs(Taken::PeerPreimage),
            _ => return None,
        },
    })
}

/// An HTLC the peer offered. On our commitment it is a received HTLC: ours by our HTLC-success
/// transaction, the peer's by timeout directly, or by revocation. On the peer's it is an offered
/// HTLC: ours with the preimage directly, the peer's by its HTLC-timeout transaction.
fn incoming_path(holder: Party, w: &bitcoin::Witness, hash: &PaymentHash) -> Option<Path> {
    Some(match holder {
        Party::Local => match classify_htlc_spend(w, HtlcOutputKind::Received, hash) {
            HtlcSpend::SecondLevelSuccess(_) => Path::Ours,
            HtlcSpend::Timeout => Path::Theirs(Taken::PeerTimeout),
            HtlcSpend::Revocation => Path::Theirs(Taken::PeerRevocation),
            _ => return None,
        },
        Party::Remote => match classify_htlc_spend(w, HtlcOutputKind::Offered, hash) {
            HtlcSpend::Preimage(_) | HtlcSpend::Revocation => Path::Ours,
            HtlcSpend::SecondLevelTimeout => Path::Theirs(Taken::PeerTimeout),
            _ => return None,
        },
    })
}
