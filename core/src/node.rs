//! Node-wide state shared by every channel: preimages, forwarding circuits and the upstream
//! settle/fail decisions awaiting the node's acknowledgement.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::action::{Action, FailReason, RecordKey, Report};
use crate::bolt3::{PaymentHash, PaymentPreimage};
use crate::event::{CommitmentHtlcInfo, IncomingLeg, PreimageSource};
use crate::types::{Height, HtlcKey};

/// What the deadline rule needs to know beyond the channel itself.
pub trait HtlcContext {
    /// The incoming leg's expiry for a forwarded outgoing HTLC.
    fn incoming_expiry(&self, outgoing: &HtlcKey) -> Option<Height>;
    /// Whether we can settle this incoming HTLC with a preimage we know.
    fn preimage_known(&self, incoming: &HtlcKey, htlc: &CommitmentHtlcInfo) -> bool;
}

/// A preimage we know, and which HTLCs it may settle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownPreimage {
    /// The preimage.
    pub preimage: PaymentPreimage,
    /// `Some`: only this incoming HTLC (an invoice of ours, where we are the final hop);
    /// `None`: any HTLC with this hash (learned downstream or on-chain).
    pub only_for: Option<HtlcKey>,
}

/// What we told the node to do upstream for an incoming HTLC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UpstreamDecision {
    /// Settle with this preimage.
    Settle {
        /// The preimage.
        preimage: PaymentPreimage,
    },
    /// Fail.
    Fail {
        /// Why.
        reason: FailReason,
    },
}

/// An upstream decision and whether the node acknowledged it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// The decision (made once, never changed).
    pub decision: UpstreamDecision,
    /// Whether `UpstreamAcked` arrived (then it is no longer re-emitted).
    pub acked: bool,
    /// Whether a preimage arrived after a fail and the loss was reported.
    #[serde(default)]
    pub loss_reported: bool,
}

/// Node-wide state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// Known preimages by payment hash (never forgotten).
    pub preimages: BTreeMap<PaymentHash, KnownPreimage>,
    /// Forwarding circuits: outgoing HTLC → incoming leg.
    pub circuits: BTreeMap<HtlcKey, IncomingLeg>,
    /// Upstream decisions by incoming HTLC.
    pub upstream: BTreeMap<HtlcKey, Upstream>,
    /// The next claim number.
    pub next_claim: u64,
    /// Keys changed since the last persisted batch (not persisted itself).
    #[serde(skip)]
    pub(crate) dirty: BTreeSet<RecordKey>,
}

impl NodeState {
    /// Record a preimage. A preimage learned from any source but an invoice may settle any HTLC
    /// with its hash; an invoice preimage only the HTLC it names. Returns whether anything new
    /// was learned (a wider scope counts).
    pub fn learn(&mut self, preimage: PaymentPreimage, source: &PreimageSource) -> bool {
        let hash = preimage.payment_hash();
        let only_for = match source {
            PreimageSource::Invoice { htlc } => Some(*htlc),
            _ => None,
        };
        match self.preimages.get_mut(&hash) {
            Some(known) if known.only_for.is_none() || known.only_for == only_for => false,
            Some(known) => {
                // Widen: a non-invoice source makes it usable for every HTLC with this hash.
                if only_for.is_none() {
                    known.only_for = None;
                    self.dirty
                        .insert(RecordKey::Preimage { payment_hash: hash });
                    true
                } else {
                    false
                }
            }
            None => {
                self.preimages
                    .insert(hash, KnownPreimage { preimage, only_for });
                self.dirty
                    .insert(RecordKey::Preimage { payment_hash: hash });
                true
            }
        }
    }

    /// The preimage that may settle `htlc` with `payment_hash`, if we know one.
    pub fn preimage_for(
        &self,
        htlc: &HtlcKey,
        payment_hash: &PaymentHash,
    ) -> Option<PaymentPreimage> {
        self.preimages
            .get(payment_hash)
            .filter(|k| k.only_for.is_none_or(|only| only == *htlc))
            .map(|k| k.preimage)
    }

    /// Decide to settle an incoming HTLC upstream. Settling wins over everything: a preimage is
    /// never withheld. Returns the action to emit, if the decision is new. If the HTLC was
    /// already failed upstream (a cut-loss, or a reorg deeper than `reorg_safety_depth` that
    /// let the peer claim it after all), a fail cannot be taken back: the loss is reported, once.
    pub fn settle_upstream(
        &mut self,
        leg: &IncomingLeg,
        preimage: PaymentPreimage,
    ) -> Option<Action> {
        let incoming = leg.htlc;
        match self.upstream.get_mut(&incoming) {
            Some(Upstream {
                decision: UpstreamDecision::Settle { .. },
                ..
            }) => None,
            Some(u) => {
                if u.loss_reported {
                    return None;
                }
                u.loss_reported = true;
                self.dirty.insert(RecordKey::Upstream { htlc: incoming });
                Some(Action::Report(Report::Loss {
                    htlc: incoming,
                    amount_msat: leg.amount_msat,
                    detail: "the preimage appeared after this htlc was failed upstream: the peer was paid downstream and we cannot collect upstream".to_string(),
                }))
            }
            None => {
                self.decide(incoming, UpstreamDecision::Settle { preimage });
                Some(Action::SettleUpstream {
                    htlc: incoming,
                    preimage,
                })
            }
        }
    }

    /// Decide to fail an incoming HTLC upstream, unless it is already decided or we know a
    /// preimage that settles it (preimage first, always).
    pub fn fail_upstream(
        &mut self,
        incoming: HtlcKey,
        payment_hash: &PaymentHash,
        reason: FailReason,
    ) -> Option<Action> {
        if self.upstream.contains_key(&incoming)
            || self.preimage_for(&incoming, payment_hash).is_some()
        {
            return None;
        }
        self.decide(
            incoming,
            UpstreamDecision::Fail {
                reason: reason.clone(),
            },
        );
        Some(Action::FailUpstream {
            htlc: incoming,
            reason,
        })
    }

    /// Record a new upstream decision (made once, never changed).
    fn decide(&mut self, incoming: HtlcKey, decision: UpstreamDecision) {
        let upstream = Upstream {
            decision,
            acked: false,
            loss_reported: false,
        };
        self.upstream.insert(incoming, upstream);
        self.dirty.insert(RecordKey::Upstream { htlc: incoming });
    }

    /// Every unacknowledged upstream decision, as actions to re-emit after a restart.
    pub fn pending_upstream(&self) -> Vec<Action> {
        self.upstream
            .iter()
            .filter(|(_, u)| !u.acked)
            .map(|(htlc, u)| match &u.decision {
                UpstreamDecision::Settle { preimage } => Action::SettleUpstream {
                    htlc: *htlc,
                    preimage: *preimage,
                },
                UpstreamDecision::Fail { reason } => Action::FailUpstream {
                    htlc: *htlc,
                    reason: reason.clone(),
                },
            })
            .collect()
    }

    /// Allocate a claim number.
    pub fn new_claim(&mut self) -> crate::types::ClaimId {
        let id = crate::types::ClaimId(self.next_claim);
        self.next_claim += 1;
        self.dirty.insert(RecordKey::Node);
        id
    }
}

impl NodeState {
    /// Add or replace a circuit.
    pub fn add_circuit(&mut self, outgoing: HtlcKey, incoming: IncomingLeg) {
        self.circuits.insert(outgoing, incoming);
        self.dirty.insert(RecordKey::Circuit { outgoing });
    }

    /// Remove a circuit.
    pub fn remove_circuit(&mut self, outgoing: &HtlcKey) {
        if self.circuits.remove(outgoing).is_some() {
            self.dirty.insert(RecordKey::Circuit {
                outgoing: *outgoing,
            });
        }
    }

    /// The node acknowledged an upstream decision.
    pub fn ack_upstream(&mut self, htlc: &HtlcKey, settled: bool) {
        if let Some(u) = self.upstream.get_mut(htlc) {
            let matches = matches!(
                (&u.decision, settled),
                (UpstreamDecision::Settle { .. }, true) | (UpstreamDecision::Fail { .. }, false)
            );
            if matches && !u.acked {
                u.acked = true;
                self.dirty.insert(RecordKey::Upstream { htlc: *htlc });
            }
        }
    }
}

impl HtlcContext for NodeState {
    fn incoming_expiry(&self, outgoing: &HtlcKey) -> Option<Height> {
        self.circuits.get(outgoing).map(|leg| leg.cltv_expiry)
    }

    fn preimage_known(&self, incoming: &HtlcKey, htlc: &CommitmentHtlcInfo) -> bool {
        self.preimage_for(incoming, &htlc.payment_hash).is_some()
    }
}
