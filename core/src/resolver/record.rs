//! The resolver's record — what is persisted for one output of a close: its kind, where it
//! stands (its stage), and the second-level claim of an HTLC on our own commitment. The machines
//! of `super` move it; this file holds the record and its kind-independent life cycle (spent,
//! final at the safety depth, undone by a disconnect).

use bitcoin::{OutPoint, Txid};
use serde::{Deserialize, Serialize};

use crate::action::Outcome;
use crate::bolt3::PaymentHash;
use crate::types::{Height, HtlcKey};

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
        /// Whether the spend was ours (a claim paying our sweep destination, our second-level
        /// transaction, our CPFP child, or a witness of one of our paths), judged from the
        /// transaction itself when it confirmed.
        #[serde(default)]
        by_us: bool,
        /// Who else took it, and how (read from the witness); `None` when it was ours.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        taken: Option<Taken>,
    },
    /// Left unclaimed, final: worth less than its claim would cost (an anchor once the close is
    /// reorg-safe). Its output is still watched until the channel is archived: a later spend
    /// (anyone's, 16 blocks after the commitment) is recorded as what it is.
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
        /// Who else took it, and how; `None` when it was ours.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        taken: Option<Taken>,
    },
}

/// Who took an output that we did not claim, and by which path — read from the spending input's
/// witness and the spending transaction's outputs when the spend confirmed, never guessed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Taken {
    /// The peer claimed an HTLC we offered with its preimage (directly from our commitment, or
    /// with its HTLC-success transaction from its own).
    PeerPreimage,
    /// The peer timed out an HTLC it offered (directly from our commitment, or with its
    /// HTLC-timeout transaction from its own).
    PeerTimeout,
    /// The peer's second-level HTLC transaction on its own revoked commitment: the output it
    /// creates is still ours by revocation and is resolved as an output of its own.
    PeerSecondLevelRevoked,
    /// The peer swept, after its delay, an output of its revoked commitment (its `to_local`, or
    /// the output of its second-level transaction) before our justice transaction confirmed.
    PeerDelayed,
    /// The peer spent it with the revocation key (an output of a commitment of ours it holds
    /// the revocation secret of).
    PeerRevocation,
    /// Anyone: an anchor's anyone-can-spend path, open 16 blocks after the commitment.
    ThirdParty,
    /// A witness that fits no path of this output: reported by an `UnknownSpend` alert.
    Unknown {
        /// The spending input's index.
        input: u32,
        /// What the witness looked like.
        witness: String,
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
    /// What claiming it cost us, fixed when it became final (the sweeper drops a finished claim,
    /// and with it the transactions the fee is read from). `None` until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fees_sat: Option<u64>,
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
            fees_sat: None,
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

    /// Its output was spent by `txid` confirmed at `height`: by us, or `taken` by someone else.
    /// An output left as uneconomical is still followed: whoever takes it later is recorded.
    pub fn on_spend(&mut self, txid: Txid, height: Height, by_us: bool, taken: Option<Taken>) {
        if self.claimable() || matches!(self.stage, Stage::Abandoned { .. }) {
            self.stage = Stage::Spent {
                txid,
                height,
                by_us,
                taken: if by_us { None } else { taken },
            };
        }
    }

    /// What became of its output, from the spend recorded when it confirmed — the one source of
    /// the resolution report's outcome and the ledger's status. `None` while nothing spent it and
    /// it was not given up. For a spend not yet reorg-safe this is what it will be if it stays.
    pub fn outcome(&self) -> Option<Outcome> {
        match &self.stage {
            Stage::Active => None,
            Stage::Abandoned { .. } => Some(Outcome::Uneconomical),
            // Expired without a preimage, unspent: the peer's by timeout (reported as lost when
            // it expired; a later spend reports the transaction).
            Stage::Expired { .. } => Some(Outcome::LostToPeer),
            Stage::Spent { by_us, taken, .. } | Stage::Resolved { by_us, taken, .. } => {
                Some(spend_outcome(&self.kind, *by_us, taken.as_ref()))
            }
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
                self.fees_sat = None;
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
            taken,
        } = &self.stage
        {
            if depth(*height, tip) >= safety_depth {
                self.stage = Stage::Resolved {
                    txid: *txid,
                    height: *height,
                    by_us: *by_us,
                    taken: taken.clone(),
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

/// The outcome of a spend of an output of `kind`: ours (a timeout for an HTLC we offered, a claim
/// otherwise), or what `taken` says. A record from before `taken` was kept (`None`, not ours) is
/// the peer's, except our balance, which only our key can spend.
fn spend_outcome(kind: &ResolverKind, by_us: bool, taken: Option<&Taken>) -> Outcome {
    match (by_us, taken) {
        (true, _) => match kind {
            ResolverKind::OutgoingHtlc { .. } => Outcome::TimedOut,
            _ => Outcome::Claimed,
        },
        (false, None) if matches!(kind, ResolverKind::CommitSweep { .. }) => Outcome::Claimed,
        (false, None) => Outcome::LostToPeer,
        (false, Some(Taken::PeerSecondLevelRevoked)) => Outcome::RevokedSecondLevel,
        (false, Some(Taken::ThirdParty)) => Outcome::ThirdParty,
        (false, Some(Taken::Unknown { .. })) => Outcome::UnknownSpend,
        (false, Some(_)) => Outcome::LostToPeer,
    }
}

/// Confirmations of a transaction confirmed at `height` when the tip is `tip` (1 in its own block).
pub fn depth(height: Height, tip: Height) -> u32 {
    tip.checked_sub(height).map_or(0, |d| d + 1)
}
