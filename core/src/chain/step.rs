//! The chain arbitrator's step: each event applied to the machines it concerns (the channels
//! through their index, the sweeper, the node-wide facts), then what every step does last —
//! node-wide changes followed, claims synced, funding requests ordered, and the changed records
//! gathered into one atomic batch ahead of the effects.

use std::collections::BTreeSet;

use crate::action::{Action, Batch, CloseTrigger, RecordKey, RecordOp};
use crate::channel::step::ChannelInput;
use crate::channel::updates::{apply_update, Applied};
use crate::channel::ChannelArbitrator;
use crate::event::{ChannelUpdate, Event, ForceCloseReason, UpstreamResolution};
use crate::sweeper::step::SweeperInput;
use crate::types::{ChannelId, RequestId};

use super::{records, ChainArbitrator, StepError};

/// What a step gathers before it returns.
#[derive(Default)]
struct Scratch {
    /// Channels whose state may have changed: re-indexed, claims synced, records persisted.
    touched: BTreeSet<ChannelId>,
    /// The effects, in order.
    effects: Vec<Action>,
    /// Records to write besides the touched channels' (the revoked log).
    extra_ops: Vec<RecordOp>,
    /// Closed channels that learned a preimage between blocks: they claim with it now.
    acting: BTreeSet<ChannelId>,
}

impl ChainArbitrator {
    /// Apply one event. On `Err` nothing changed. On success the first action, if any changes
    /// must be made durable, is the `Persist` batch.
    pub fn step(&mut self, event: &Event) -> Result<Vec<Action>, StepError> {
        self.check_loaded(event)?;
        let mut s = Scratch::default();
        self.apply(event, &mut s)?;
        Ok(self.finish(s))
    }

    fn apply(&mut self, event: &Event, s: &mut Scratch) -> Result<(), StepError> {
        match event {
            Event::ChannelUpdate(update) => self.on_channel_update(update, s)?,
            Event::ForceCloseRequested { channel, reason } => {
                if !self.channels.contains_key(channel) {
                    return Err(StepError::UnknownChannel(*channel));
                }
                let trigger = match reason {
                    ForceCloseReason::User => CloseTrigger::User,
                    ForceCloseReason::PeerError { message } => CloseTrigger::PeerError {
                        message: message.clone(),
                    },
                    ForceCloseReason::Node { message } => CloseTrigger::Node {
                        message: message.clone(),
                    },
                };
                s.effects
                    .extend(self.step_channel(*channel, ChannelInput::ForceClose(&trigger)));
                s.touched.insert(*channel);
            }
            Event::CircuitAdded { outgoing, incoming } => {
                self.node.add_circuit(*outgoing, *incoming);
                s.touched.insert(outgoing.channel);
            }
            Event::CircuitRemoved { outgoing } => {
                self.node.remove_circuit(outgoing);
                s.touched.insert(outgoing.channel);
            }
            Event::PreimageLearned { preimage, source } => {
                if self.node.learn(*preimage, source) {
                    let hashes = [preimage.payment_hash()];
                    s.acting = self.on_preimages_learned(&hashes, &mut s.touched, &mut s.effects);
                }
            }
            Event::UpstreamAcked { htlc, resolution } => {
                self.node
                    .ack_upstream(htlc, *resolution == UpstreamResolution::Settled);
            }
            Event::BlockConnected(block) => {
                let actions = self.connect(block, &mut s.touched)?;
                s.effects.extend(actions);
            }
            Event::BlockDisconnected { block } => {
                let actions = self.disconnect(block, &mut s.touched)?;
                s.effects.extend(actions);
            }
            Event::MempoolTx { tx, .. } => {
                let (actions, hashes) = self.mempool_tx(tx, &mut s.touched);
                s.effects.extend(actions);
                s.acting = self.on_preimages_learned(&hashes, &mut s.touched, &mut s.effects);
            }
            Event::FeeConditions(fees) => {
                self.fees = Some(fees.clone());
                self.node.dirty.insert(RecordKey::Node);
            }
            Event::MempoolRemoved { txid, .. } => {
                if let Some(id) = self.index.mempool.get(txid).copied() {
                    let input = ChannelInput::MempoolRemoved(txid);
                    if self.step_channel_full(id, input).is_some_and(|c| c.changed) {
                        s.touched.insert(id);
                    }
                }
            }
            Event::Tick { .. } => {}
            Event::WalletBalance { confirmed_sat } => {
                self.step_sweeper(SweeperInput::WalletBalance(*confirmed_sat));
            }
            Event::Resumed { tip } => s.effects.extend(self.resumed(*tip)),
            Event::BroadcastResult { .. }
            | Event::Signed { .. }
            | Event::WalletFunded { .. }
            | Event::RevokedLogRead { .. } => self.on_result(event, s),
        }
        Ok(())
    }

    /// A channel update: applied to the channel's data (refused, changing nothing, if it is out
    /// of sequence, does not verify, or names a funding output another channel watches), then
    /// acknowledged with `UpdatePersisted`.
    fn on_channel_update(
        &mut self,
        update: &ChannelUpdate,
        s: &mut Scratch,
    ) -> Result<(), StepError> {
        let data = self.channels.get(&update.channel).map(|c| &c.data);
        let (next, applied) = apply_update(data, update).map_err(|error| StepError::Update {
            channel: update.channel,
            error,
        })?;
        for f in next.iter().flat_map(|n| &n.info.funding) {
            match self.index.outpoints.get(&f.outpoint) {
                Some(by) if by != update.channel => {
                    return Err(StepError::FundingInUse {
                        outpoint: f.outpoint,
                        by,
                    })
                }
                _ => {}
            }
        }
        if let (Some(next), Applied::Changed { revoked }) = (next, applied) {
            match self.channels.get_mut(&update.channel) {
                Some(channel) => channel.data = next,
                None => {
                    self.channels
                        .insert(update.channel, ChannelArbitrator::new(next));
                }
            }
            if let Some(revoked) = revoked {
                s.extra_ops
                    .push(records::revoked_log_entry(update.channel, &revoked));
            }
            s.touched.insert(update.channel);
            s.effects
                .extend(self.step_channel(update.channel, ChannelInput::Updated));
        }
        s.effects.push(Action::UpdatePersisted {
            channel: update.channel,
            update_id: update.update_id,
        });
        Ok(())
    }

    /// The result of an action, routed by its request's claim: to the sweeper if it owns the
    /// claim, otherwise to the channel that does.
    fn on_result(&mut self, event: &Event, s: &mut Scratch) {
        let channel_of =
            |arb: &Self, request: &RequestId| arb.index.claims.get(&request.claim).copied();
        let (id, input) = match event {
            Event::BroadcastResult {
                request,
                txid,
                outcome,
            } => {
                if self.sweeper.owns(request.claim) {
                    let input = SweeperInput::BroadcastResult {
                        request: *request,
                        outcome,
                    };
                    s.effects.extend(self.step_sweeper(input));
                    return;
                }
                let input = ChannelInput::BroadcastResult {
                    request: *request,
                    txid: *txid,
                    outcome,
                };
                (channel_of(self, request), input)
            }
            Event::Signed { request, outcome } => {
                if self.sweeper.owns(request.claim) {
                    let input = SweeperInput::Signed {
                        request: *request,
                        outcome,
                    };
                    s.effects.extend(self.step_sweeper(input));
                    return;
                }
                let input = ChannelInput::Signed {
                    request: *request,
                    outcome,
                };
                (channel_of(self, request), input)
            }
            Event::WalletFunded { request, outcome } => {
                let input = ChannelInput::WalletFunded {
                    request: *request,
                    outcome,
                };
                (channel_of(self, request), input)
            }
            Event::RevokedLogRead {
                channel,
                commitment_number,
                record,
            } => {
                let input = ChannelInput::RevokedLogRead {
                    commitment_number: *commitment_number,
                    record: record.as_ref(),
                };
                (Some(*channel), input)
            }
            _ => return,
        };
        if let Some(id) = id {
            s.effects
                .extend(self.step_touching(id, input, &mut s.touched));
        }
    }

    /// What every step does last: follow node-wide changes, claim with preimages learned now,
    /// re-index and sync the touched channels' claims, check the fee reserve, order funding
    /// requests nearest deadline first, and put the batch of changed records first.
    fn finish(&mut self, s: Scratch) -> Vec<Action> {
        let Scratch {
            mut touched,
            mut effects,
            extra_ops,
            acting,
        } = s;
        self.follow_node_changes(&mut touched);
        effects.extend(self.claim_second_level_now(&acting));
        for id in &touched {
            self.reindex(*id);
            self.sync_claims(*id);
        }
        effects.extend(self.sweep_now(&acting));
        // The reserve follows the channels just reindexed: no scan of every channel.
        let needed = self.fee_reserve();
        effects.extend(self.step_sweeper(SweeperInput::Reserve(&needed)));
        // A wallet too thin for every claim asking this step funds the nearest deadlines.
        crate::funded::fund_nearest_deadlines_first(&mut effects, |claim| {
            let channel = self.index.claims.get(&claim)?;
            Some(self.channels.get(channel)?.funded_claim(claim)?.deadline)
        });
        let mut ops = self.persist_changes(&touched);
        ops.extend(extra_ops);
        let mut actions = Vec::with_capacity(effects.len() + 1);
        if !ops.is_empty() {
            actions.push(Action::Persist(Batch { ops }));
        }
        actions.extend(effects);
        actions
    }
}
