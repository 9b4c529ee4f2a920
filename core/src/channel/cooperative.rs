//! A cooperative close a reorg took off the chain — or any spend of the funding output that is no
//! commitment (an unknown close: a cooperative close whose shutdown scripts the engine was not
//! told; only both funding keys together can sign one). Both sides signed it, and it needs
//! nothing else of ours: it is rebroadcast every block until a close confirms again — it, or a
//! commitment if one wins the race. A node puts a disconnected block's transactions back in its
//! mempool, but a node that restarted, or was not the one that saw the block, has nothing, and
//! the peer may be gone; without the rebroadcast the channel would stay open on a chain where
//! both sides have agreed to close it.

use serde::{Deserialize, Serialize};

use crate::action::{Action, AlertKind, CloseKind};
use crate::event::BroadcastOutcome;
use crate::node::NodeState;
use crate::policy::reject::is_already_known;
use crate::types::{ClaimId, RawTx, RequestId};

use super::{ChannelArbitrator, ConfirmedClose};

/// A cooperative close to rebroadcast, and the claim its broadcasts are answered under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReorgedCooperative {
    /// The claim its broadcasts go out under.
    pub claim: ClaimId,
    /// The cooperative close, as it confirmed.
    pub tx: RawTx,
}

impl ChannelArbitrator {
    /// `close` was reorged out: a cooperative (or unknown) one is kept to rebroadcast, at once
    /// and every block until a close confirms.
    pub(crate) fn keep_reorged_cooperative(
        &mut self,
        close: &ConfirmedClose,
        node: &mut NodeState,
    ) -> Vec<Action> {
        if !matches!(close.kind, CloseKind::Cooperative | CloseKind::Unknown) {
            return Vec::new();
        }
        let claim = match &self.reorged_cooperative {
            Some(r) => r.claim,
            None => node.new_claim(),
        };
        self.reorged_cooperative = Some(ReorgedCooperative {
            claim,
            tx: close.tx.clone(),
        });
        self.reorged_cooperative_broadcast().into_iter().collect()
    }

    /// The rebroadcast of a reorged-out cooperative close, while no close is confirmed.
    pub(crate) fn reorged_cooperative_broadcast(&self) -> Option<Action> {
        if self.close.is_some() {
            return None;
        }
        let r = self.reorged_cooperative.as_ref()?;
        Some(Action::Broadcast {
            request: RequestId {
                claim: r.claim,
                attempt: 0,
            },
            tx: r.tx.clone(),
        })
    }

    /// The node's answer to that rebroadcast, if `claim` is its claim: a refusal other than
    /// "already known" is reported (a commitment may have won the race; the next block tells).
    pub(crate) fn on_reorged_cooperative_result(
        &self,
        claim: ClaimId,
        outcome: &BroadcastOutcome,
    ) -> Option<Vec<Action>> {
        let r = self.reorged_cooperative.as_ref()?;
        if r.claim != claim {
            return None;
        }
        Some(match outcome {
            BroadcastOutcome::Rejected { reason } if !is_already_known(reason) => {
                vec![self.alert(
                    AlertKind::ChannelFailure,
                    format!(
                        "rebroadcast of the cooperative close {} a reorg dropped was rejected: {reason}",
                        r.tx.0.compute_txid()
                    ),
                )]
            }
            _ => Vec::new(),
        })
    }
}
