//! The channel arbitrator: one channel's state machine (lnd's ChannelArbitrator).
//!
//! Its state is derived from what it holds, so no two fields can disagree:
//!
//! | state | holds |
//! |---|---|
//! | `Default` | no force close, no confirmed close |
//! | `BroadcastCommit` | a force close decided, our commitment's signature requested |
//! | `CommitmentBroadcasted` | our signed commitment, rebroadcast every block until a close confirms |
//! | `ContractClosed` | a confirmed close whose resolvers are not all created yet |
//! | `WaitingFullResolution` | a confirmed close and its resolvers, some unresolved |
//! | `FullyResolved` | every resolver final and the close reorg-safe |
//!
//! lnd persists `ContractClosed` between two database transactions; here a step is one atomic
//! batch, so a close and its resolvers are written together.

pub mod anchor;
pub mod breach;
pub mod claims;
pub use crate::resolver::{FeeContext, SweepPolicy};
pub mod close;
mod config;
pub mod cooperative;
pub mod deadline;
pub mod force_close;
pub mod outcome;
mod plan;
mod preimages;
mod resolvers;
mod second_level;
pub mod step;
#[cfg(test)]
mod tests;
pub mod updates;
mod upstream;
mod wakeup;
mod zero_fee_htlc;

use std::collections::BTreeMap;

use bitcoin::{OutPoint, Txid};
use serde::{Deserialize, Serialize};

use crate::action::{Action, Alert, AlertKind, CloseKind, CloseTrigger, Report};
use crate::event::FundingOutput;
use crate::resolver::Resolver;
use crate::types::{ClaimId, Height, RawTx};

use updates::ChannelData;

/// The arbitrator's states (lnd's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArbState {
    /// Normal operation.
    Default,
    /// Decided to force close; waiting for our commitment's signature.
    BroadcastCommit,
    /// Our commitment is published; waiting for any commitment to confirm.
    CommitmentBroadcasted,
    /// A close confirmed with nothing to resolve; waiting for it to be reorg-safe.
    ContractClosed,
    /// Resolvers are running.
    WaitingFullResolution,
    /// Everything resolved.
    FullyResolved,
}

/// Our decision to force close.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForceClose {
    /// Why.
    pub trigger: CloseTrigger,
    /// The claim that broadcasts our commitment.
    pub claim: ClaimId,
    /// The attempt of that claim (each re-sign is a new attempt).
    pub attempt: u32,
    /// The commitment number we sign.
    pub commitment_number: u64,
    /// Our signed commitment, once the signature arrived.
    pub signed: Option<RawTx>,
}

/// A close that confirmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmedClose {
    /// What kind.
    pub kind: CloseKind,
    /// What set it off.
    pub trigger: CloseTrigger,
    /// The closing transaction.
    pub tx: RawTx,
    /// Its txid.
    pub txid: Txid,
    /// The height it confirmed at.
    pub height: Height,
    /// The funding output it spent.
    pub funding: FundingOutput,
    /// Whether the reorg-safe decisions (failing dust and dangling HTLCs upstream) were made.
    pub settled_upstream: bool,
    /// The confirmed commitment rebuilt, once asked for (a cache: never stored or compared).
    #[serde(skip)]
    pub rebuilt: claims::RebuiltCommitment,
}

/// One channel's arbitrator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelArbitrator {
    /// The channel's facts and commitments.
    pub data: ChannelData,
    /// Our force close, if decided.
    pub force_close: Option<ForceClose>,
    /// The confirmed close, if any.
    pub close: Option<ConfirmedClose>,
    /// One resolver per output of the confirmed close that matters to us.
    pub resolvers: BTreeMap<OutPoint, Resolver>,
    /// The height at which everything became final.
    pub resolved_at: Option<Height>,
    /// Anchors: the CPFP child that pays for an unconfirmed commitment through our anchor.
    pub cpfp: Option<crate::funded::FundedClaim>,
    /// Anchors: the peer's commitment seen in the mempool, the CPFP's parent.
    pub mempool_commitment: Option<anchor::MempoolCommitment>,
    /// Anchors: the children of CPFP claims given up for a new parent (txid → fee). One may
    /// still be in a mempool and confirm with its parent: it is ours, and so is its fee.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retired_cpfp: BTreeMap<Txid, u64>,
    /// Breach: the revoked commitment that confirmed, read back from the revoked log.
    pub revoked: Option<crate::commitments::CommitmentRecord>,
    /// A cooperative close a reorg took off the chain, rebroadcast every block until a close
    /// confirms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorged_cooperative: Option<cooperative::ReorgedCooperative>,
}

impl ChannelArbitrator {
    /// A new arbitrator for a registered channel.
    pub fn new(data: ChannelData) -> ChannelArbitrator {
        ChannelArbitrator {
            data,
            force_close: None,
            close: None,
            resolvers: BTreeMap::new(),
            resolved_at: None,
            cpfp: None,
            mempool_commitment: None,
            retired_cpfp: BTreeMap::new(),
            revoked: None,
            reorged_cooperative: None,
        }
    }

    /// The current state, derived from what the arbitrator holds.
    pub fn state(&self) -> ArbState {
        match (&self.close, &self.force_close, self.resolved_at) {
            (Some(_), _, Some(_)) => ArbState::FullyResolved,
            (Some(_), _, None) if self.resolvers.is_empty() => ArbState::ContractClosed,
            (Some(_), _, None) => ArbState::WaitingFullResolution,
            (None, Some(f), _) if f.signed.is_some() => ArbState::CommitmentBroadcasted,
            (None, Some(_), _) => ArbState::BroadcastCommit,
            (None, None, _) => ArbState::Default,
        }
    }

    /// An alert about this channel.
    pub(crate) fn alert(&self, kind: AlertKind, message: String) -> Action {
        Action::Report(Report::Alert(Alert {
            channel: Some(self.data.info.id),
            kind,
            message,
        }))
    }

    /// Every outpoint whose spends this channel must see: the funding outputs until a close
    /// confirms, then the outputs its resolvers watch.
    pub fn watched_outpoints(&self) -> Vec<OutPoint> {
        let mut out: Vec<OutPoint> = self.data.info.funding.iter().map(|f| f.outpoint).collect();
        out.extend(self.resolvers.keys().copied());
        out
    }
}
