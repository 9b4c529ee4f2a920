//! Contract resolvers: one per output of a confirmed close that matters to us.
//!
//! Every resolver resolves **by outpoint**: any confirmed spend of its output ends its stage,
//! whoever made it, and the stage is final once that spend is `reorg_safety_depth` deep. An
//! incoming HTLC without a preimage is final without a spend once its expiry is reorg-safe
//! ([`Stage::Expired`]: the peer's to take), so an idle peer cannot keep a channel open. The
//! arbitrator creates each resolver with everything it needs (value, scripts' timelocks, the HTLC
//! and its deadline). Claiming — sweep requests to the sweeper, second-level transactions — is
//! layered on this contract by the resolvers issue without changing it.

use bitcoin::{OutPoint, Txid};
use serde::{Deserialize, Serialize};

use crate::bolt3::PaymentHash;
use crate::types::{Height, HtlcKey};

#[cfg(test)]
mod tests;

/// What a resolver resolves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResolverKind {
    /// Our balance: `to_local` on our commitment (after `to_self_delay`), or `to_remote` on the
    /// peer's (at once, or after 1 block with anchors).
    CommitSweep {
        /// The earliest height at which a spend by us can confirm.
        mature_at: Height,
    },
    /// An HTLC we offered: claimable by timeout from its `cltv_expiry` (via the pre-signed
    /// HTLC-timeout transaction on our commitment, directly on theirs); until then the peer may
    /// claim it with the preimage (the outgoing contest).
    OutgoingHtlc {
        /// The HTLC.
        htlc: HtlcKey,
        /// Its payment hash (a peer's preimage claim reveals the preimage).
        payment_hash: PaymentHash,
        /// Its expiry.
        cltv_expiry: Height,
        /// The height by which our claim must confirm (the incoming leg's expiry).
        deadline: Height,
    },
    /// An HTLC the peer offered: ours with the preimage until its `cltv_expiry`, the peer's by
    /// timeout after it (the incoming contest).
    IncomingHtlc {
        /// The HTLC.
        htlc: HtlcKey,
        /// Its payment hash.
        payment_hash: PaymentHash,
        /// Its expiry: our claim must confirm before it.
        cltv_expiry: Height,
    },
    /// Our anchor (anchors channels): used for CPFP, swept only when it pays for itself.
    Anchor,
    /// An output of the peer's revoked commitment, claimable by revocation.
    Breach {
        /// The revoked commitment's number.
        commitment_number: u64,
    },
}

/// Where a resolver stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// Waiting: for maturity, for a preimage, for a spend.
    Active,
    /// Its output was spent in a confirmed transaction, not yet reorg-safe.
    Spent {
        /// The spending transaction.
        txid: Txid,
        /// Its height.
        height: Height,
        /// Whether the spend was ours (a claim paying our sweep destination, or our second-level
        /// transaction), judged from the transaction itself when it confirmed.
        #[serde(default)]
        by_us: bool,
    },
    /// Left unclaimed, final: worth less than its claim would cost (an anchor once the close is
    /// reorg-safe).
    Abandoned {
        /// The height it was given up at.
        height: Height,
    },
    /// An incoming HTLC expired without a preimage, and its expiry is reorg-safe: the peer's to
    /// take, final for us without a spend (BOLT 5 B05-LRO-05, B05-RRO-03). Its output is still
    /// watched until the channel is archived: a preimage that arrives while it is unspent is
    /// still claimed, and any spend of it is still recorded.
    Expired {
        /// The height it was counted resolved at.
        height: Height,
    },
    /// Final.
    Resolved {
        /// The spending transaction.
        txid: Txid,
        /// Its height.
        height: Height,
        /// Whether the spend was ours.
        #[serde(default)]
        by_us: bool,
    },
}

/// One output being resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolver {
    /// The output.
    pub outpoint: OutPoint,
    /// Its value.
    pub value_sat: u64,
    /// What it is.
    pub kind: ResolverKind,
    /// Where it stands.
    pub stage: Stage,
    /// The pre-signed second-level transaction claiming it, for an HTLC on our own commitment.
    #[serde(default)]
    pub second_level: Option<SecondLevelClaim>,
    /// For an output created after the close (a second-level transaction's), the height of the
    /// transaction that created it: a disconnection of that block removes the resolver.
    #[serde(default)]
    pub created_at: Option<Height>,
}

/// Our HTLC-timeout or HTLC-success transaction for an HTLC output of our own commitment: the
/// peer signed it with the commitment; we add our signature (and the preimage) and broadcast it,
/// every block until it confirms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondLevelClaim {
    /// The claim.
    pub claim: crate::types::ClaimId,
    /// Its attempt (a new attempt after a signer failure).
    pub attempt: u32,
    /// The signed transaction, once our signature arrived (legacy channels).
    pub signed: Option<crate::types::RawTx>,
    /// Under anchors: the zero-fee transaction funded with wallet inputs, bumped as its
    /// deadline nears.
    #[serde(default)]
    pub funded: Option<crate::funded::FundedClaim>,
}

impl Resolver {
    /// A new, active resolver.
    pub fn new(outpoint: OutPoint, value_sat: u64, kind: ResolverKind) -> Resolver {
        Resolver {
            outpoint,
            value_sat,
            kind,
            stage: Stage::Active,
            second_level: None,
            created_at: None,
        }
    }

    /// Whether it has reached its end.
    pub fn is_resolved(&self) -> bool {
        matches!(
            self.stage,
            Stage::Resolved { .. } | Stage::Abandoned { .. } | Stage::Expired { .. }
        )
    }

    /// Whether its output is unspent and ours to claim when we can: active, or expired (the
    /// peer's by timeout, still ours with a preimage until the peer spends it).
    pub fn claimable(&self) -> bool {
        matches!(self.stage, Stage::Active | Stage::Expired { .. })
    }

    /// Its output was spent by `txid` confirmed at `height`.
    pub fn on_spend(&mut self, txid: Txid, height: Height, by_us: bool) {
        if self.claimable() {
            self.stage = Stage::Spent {
                txid,
                height,
                by_us,
            };
        }
    }

    /// The block at `height` was disconnected: a spend confirmed at or above it is undone.
    pub fn on_disconnect(&mut self, height: Height) {
        match self.stage {
            Stage::Spent { height: h, .. }
            | Stage::Resolved { height: h, .. }
            | Stage::Expired { height: h }
                if h >= height =>
            {
                self.stage = Stage::Active;
            }
            _ => {}
        }
    }

    /// The tip is at `tip`: a spend `safety_depth` deep becomes final. Returns whether it did now.
    pub fn on_block(&mut self, tip: Height, safety_depth: u32) -> bool {
        if let Stage::Spent {
            txid,
            height,
            by_us,
        } = self.stage
        {
            if depth(height, tip) >= safety_depth {
                self.stage = Stage::Resolved {
                    txid,
                    height,
                    by_us,
                };
                return true;
            }
        }
        false
    }

    /// The next height at which this resolver has something to do, if any.
    pub fn next_wakeup(&self, safety_depth: u32) -> Option<Height> {
        match self.stage {
            Stage::Spent { height, .. } => {
                Some(height.saturating_add(safety_depth.saturating_sub(1)))
            }
            Stage::Active
            | Stage::Resolved { .. }
            | Stage::Abandoned { .. }
            | Stage::Expired { .. } => None,
        }
    }
}

/// Confirmations of a transaction confirmed at `height` when the tip is `tip` (1 in its own block).
pub fn depth(height: Height, tip: Height) -> u32 {
    tip.checked_sub(height).map_or(0, |d| d + 1)
}
