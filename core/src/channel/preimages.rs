//! The one preimage oracle of a channel (BOLT 5 B05-LLO-01, B05-RLO-01, B05-REV-09; DESIGN
//! invariant 2): every transaction that spends an output of this channel's confirmed close — or
//! an output created from one (a second-level transaction) — is searched for a preimage of any
//! HTLC the channel knows, on whichever commitment confirmed: ours, the peer's current, pending
//! or revoked one, or a future one after data loss. A preimage found is learned node-wide and
//! settles every forwarded outgoing HTLC of this channel with its hash, at once.

use std::collections::BTreeSet;

use bitcoin::Transaction;

use crate::action::Action;
use crate::bolt3::classify::find_preimages;
use crate::bolt3::PaymentHash;
use crate::event::{CommitmentHtlcInfo, PreimageSource};
use crate::node::NodeState;
use crate::types::HtlcDirection;

use super::ChannelArbitrator;

impl ChannelArbitrator {
    /// Every HTLC this channel knows of: on our commitment, the peer's current and pending ones,
    /// and the revoked one that confirmed (read back from the revoked log).
    fn known_htlcs(&self) -> impl Iterator<Item = &CommitmentHtlcInfo> {
        let c = &self.data.commitments;
        c.local
            .iter()
            .map(|l| &l.commitment)
            .chain(c.remote_current.iter())
            .chain(c.remote_pending.iter())
            .chain(self.revoked.iter())
            .flat_map(|r| r.htlcs.iter())
    }

    /// Learn every preimage of a known HTLC that `tx` reveals in a witness; settle the incoming
    /// leg of each forwarded outgoing HTLC it pays. Returns the actions and the payment hashes
    /// newly learned (so the caller can act on them in the same step: claims of incoming HTLCs
    /// with the same hash on other channels).
    pub fn learn_preimages(
        &self,
        tx: &Transaction,
        source: &PreimageSource,
        node: &mut NodeState,
    ) -> (Vec<Action>, Vec<PaymentHash>) {
        let hashes: BTreeSet<PaymentHash> = self.known_htlcs().map(|h| h.payment_hash).collect();
        let mut actions = Vec::new();
        let mut learned = Vec::new();
        for (hash, preimage) in find_preimages(tx, &hashes) {
            if node.learn(preimage, source) {
                learned.push(hash);
            }
            let outgoing: BTreeSet<_> = self
                .known_htlcs()
                .filter(|h| h.direction == HtlcDirection::Outgoing && h.payment_hash == hash)
                .map(|h| self.htlc_key(h))
                .collect();
            for htlc in outgoing {
                if let Some(leg) = node.circuits.get(&htlc).copied() {
                    actions.extend(node.settle_upstream(&leg, preimage));
                }
            }
        }
        (actions, learned)
    }
}
