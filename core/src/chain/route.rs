//! Routing to channels: each input goes to the one channel it concerns, with the node-wide facts
//! passed in; and what a change of those facts (a preimage, a circuit, an upstream decision)
//! means for other channels in the same step.

use crate::action::{Action, RecordKey};
use crate::bolt3::PaymentHash;
use crate::channel::step::{ChannelContext, ChannelInput, Stepped};
use crate::types::{ChannelId, HtlcKey};
use bitcoin::OutPoint;
use std::collections::BTreeSet;

use super::{fee_context, ChainArbitrator};
use crate::sweeper::step::{SweeperContext, SweeperInput};

impl ChainArbitrator {
    /// Step channel `id` with `input`, the node-wide facts passed in; `None` if it is unknown.
    pub(super) fn step_channel_full(
        &mut self,
        id: ChannelId,
        input: ChannelInput<'_>,
    ) -> Option<Stepped> {
        let ch = self.channels.get_mut(&id)?;
        let mut ctx = ChannelContext {
            node: &mut self.node,
            sweeper: &self.sweeper,
            close: &self.config.close,
            deadlines: &self.config.deadlines,
            fees: fee_context(&self.config, self.fees.as_ref()),
            tip: self.tip.map(|t| t.height),
        };
        Some(ch.step(input, &mut ctx))
    }

    /// Step the sweeper with `input`, the node-wide facts and settings passed in.
    pub(super) fn step_sweeper(&mut self, input: SweeperInput<'_>) -> Vec<Action> {
        let mut ctx = SweeperContext {
            node: &mut self.node,
            fees: self.fees.as_ref(),
            cfg: self.config.sweep_to.as_ref(),
            policy: &self.config.sweeper,
            finality_depth: self.config.close.reorg_safety_depth,
        };
        self.sweeper.step(input, &mut ctx)
    }

    /// [`Self::step_channel_full`]'s actions.
    pub(super) fn step_channel(&mut self, id: ChannelId, input: ChannelInput<'_>) -> Vec<Action> {
        self.step_channel_full(id, input)
            .map(|s| s.actions)
            .unwrap_or_default()
    }

    /// [`Self::step_channel`], marking the channel touched when it exists.
    pub(super) fn step_touching(
        &mut self,
        id: ChannelId,
        input: ChannelInput<'_>,
        touched: &mut BTreeSet<ChannelId>,
    ) -> Vec<Action> {
        let Some(stepped) = self.step_channel_full(id, input) else {
            return Vec::new();
        };
        touched.insert(id);
        stepped.actions
    }

    /// Preimages of `hashes` were just learned (from any source): every channel with an
    /// incoming HTLC of one of them is touched and its go-to-chain rule checked now. Returns
    /// those channels, so closed ones claim in this same step.
    pub(super) fn on_preimages_learned(
        &mut self,
        hashes: &[PaymentHash],
        touched: &mut BTreeSet<ChannelId>,
        effects: &mut Vec<Action>,
    ) -> BTreeSet<ChannelId> {
        let concerned: BTreeSet<ChannelId> = hashes
            .iter()
            .flat_map(|h| self.index.hashes.values(h))
            .collect();
        for channel in &concerned {
            touched.insert(*channel);
            effects.extend(self.step_channel(*channel, ChannelInput::Updated));
        }
        concerned
    }

    /// Between blocks, a closed channel that learned a preimage starts the HTLC-success
    /// transaction of our commitment now, for the next block.
    pub(super) fn claim_second_level_now(&mut self, acting: &BTreeSet<ChannelId>) -> Vec<Action> {
        let mut actions = Vec::new();
        for id in acting {
            actions.extend(self.step_channel(*id, ChannelInput::PreimageKnown));
        }
        actions
    }

    /// Between blocks, the sweeper builds the new preimage claims of channels that learned a
    /// preimage now, for the next block, rather than at the next block.
    pub(super) fn sweep_now(&mut self, acting: &BTreeSet<ChannelId>) -> Vec<Action> {
        let (Some(_), Some(tip)) = (&self.config.sweep_to, self.tip.map(|t| t.height)) else {
            return Vec::new();
        };
        let fees = fee_context(&self.config, self.fees.as_ref());
        let outpoints: BTreeSet<OutPoint> = acting
            .iter()
            .filter_map(|id| self.channels.get(id))
            .flat_map(|ch| ch.sweep_requests(&self.node, &fees, &self.config.close))
            .filter(|r| r.preimage.is_some())
            .map(|r| r.outpoint)
            .collect();
        self.step_sweeper(SweeperInput::ClaimNow {
            outpoints: &outpoints,
            tip,
        })
    }

    /// Touch the channels whose plans depend on node-wide state this step changed, whichever
    /// event changed it: a preimage (the channels with an incoming HTLC of its hash, on a live
    /// commitment or on the confirmed close), a circuit (its outgoing HTLC's channel), an
    /// upstream decision (the channels of the outgoing HTLCs forwarded from that incoming HTLC:
    /// their cut-loss wake-ups end with it). A touched channel is reindexed, its claims synced
    /// and its changed records persisted, so its wake-up in memory is what a reload computes.
    /// (Acting on a new preimage — the go-to-chain rule, claims in the same step — is
    /// [`Self::on_preimages_learned`]'s, where the preimage is learned.)
    pub(super) fn follow_node_changes(&mut self, touched: &mut BTreeSet<ChannelId>) {
        let changed: Vec<RecordKey> = self
            .node
            .dirty
            .iter()
            .filter(|k| {
                matches!(
                    k,
                    RecordKey::Preimage { .. }
                        | RecordKey::Circuit { .. }
                        | RecordKey::Upstream { .. }
                )
            })
            .cloned()
            .collect();
        for key in &changed {
            match key {
                RecordKey::Circuit { outgoing } => {
                    self.index_circuit(*outgoing);
                    if self.channels.contains_key(&outgoing.channel) {
                        touched.insert(outgoing.channel);
                    }
                }
                RecordKey::Preimage { payment_hash } => {
                    touched.extend(self.index.hashes.values(payment_hash));
                }
                _ => {}
            }
        }
        // After every circuit of this step is indexed.
        for key in &changed {
            if let RecordKey::Upstream { htlc } = key {
                touched.extend(
                    self.index
                        .forwarded
                        .values(htlc)
                        .map(|o| o.channel)
                        .filter(|id| self.channels.contains_key(id)),
                );
            }
        }
    }

    /// Refresh a circuit's entry in the reversed circuit index.
    pub(super) fn index_circuit(&mut self, outgoing: HtlcKey) {
        if let Some(old) = self.index.leg_of.remove(&outgoing) {
            self.index.forwarded.remove(old, outgoing);
        }
        if let Some(leg) = self.node.circuits.get(&outgoing) {
            self.index.leg_of.insert(outgoing, leg.htlc);
            self.index.forwarded.insert(leg.htlc, outgoing);
        }
    }
}
