//! The chain arbitrator: every channel of a node (lnd's ChainArbitrator).
//!
//! It keeps the tip (a block whose `prev_hash` is not the tip is refused) and the recent blocks,
//! routes each block's transactions to the channels they concern through an index of watched
//! outpoints, and wakes channels from a deadline index — so the cost of a block grows with its
//! relevant transactions and the deadlines due, not with the number of channels. A channel's
//! failure becomes an `Alert` and never stops another.

mod blocks;
mod error;
pub mod exposure;
mod index;
pub mod ledger;
mod outpoints;
mod records;
mod route;

pub use error::StepError;
use index::Index;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::action::{Action, Alert, AlertKind, Batch, CloseTrigger, RecordKey, Report};
use crate::channel::claims::SweepPolicy;
use crate::channel::close::CloseConfig;
use crate::channel::deadline::DeadlineConfig;
use crate::channel::step::ChannelInput;
use crate::channel::updates::{apply_update, Applied};
use crate::channel::ChannelArbitrator;
use crate::event::{Event, ForceCloseReason, UpstreamResolution};
use crate::sweeper::step::SweeperInput;
use crate::sweeper::{Sweeper, SweeperConfig, SweeperPolicy};
use crate::trace::Machine;
use crate::types::{BlockRef, ChannelId, Height};

use crate::node::NodeState;

/// What the channels' claims need to decide fees.
fn fee_context<'a>(
    config: &'a Config,
    fees: Option<&'a crate::event::FeeConditions>,
) -> crate::channel::FeeContext<'a> {
    crate::channel::FeeContext {
        fees,
        policy: &config.sweep,
        fallback: config
            .sweep_to
            .as_ref()
            .map_or(DEFAULT_FALLBACK_FEERATE, |c| c.fallback_feerate),
        destination: config.sweep_to.as_ref().map(|c| &c.destination),
    }
}

/// The fee rate wallet-funded claims start from while no fee estimate is known and no sweeper
/// is configured: 2 sat/vB.
pub const DEFAULT_FALLBACK_FEERATE: bitcoin::FeeRate = bitcoin::FeeRate::from_sat_per_kwu(500);
pub use records::LoadError;

/// Arbitration settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// When HTLC deadlines force a close.
    pub deadlines: DeadlineConfig,
    /// Reorg safety, archiving and cut-loss.
    pub close: CloseConfig,
    /// Fee budgets and deadlines of claims.
    pub sweep: SweepPolicy,
    /// Where sweeps pay to. `None`: nothing is swept (each claim is reported instead) — the
    /// engine never guesses a destination for the operator's money.
    pub sweep_to: Option<SweeperConfig>,
    /// How the sweeper batches, splits and prices claims.
    #[serde(default, skip_serializing_if = "SweeperPolicy::is_default")]
    pub sweeper: SweeperPolicy,
}

/// Every channel of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainArbitrator {
    config: Config,
    tip: Option<BlockRef>,
    /// Recent blocks, oldest first, at most `archive_depth` of them.
    recent: Vec<BlockRef>,
    node: NodeState,
    channels: BTreeMap<ChannelId, ChannelArbitrator>,
    index: Index,
    /// Every claim the sweeper makes.
    sweeper: Sweeper,
    /// The latest fee conditions.
    fees: Option<crate::event::FeeConditions>,
    /// A digest of every persisted record, to write only what changed.
    persisted: BTreeMap<RecordKey, [u8; 32]>,
    /// The recent blocks as persisted (one record each), to write only the new ones.
    persisted_blocks: BTreeMap<Height, bitcoin::BlockHash>,
}

impl ChainArbitrator {
    /// A node with no channels and no blocks.
    pub fn new(config: Config) -> ChainArbitrator {
        ChainArbitrator {
            config,
            tip: None,
            recent: Vec::new(),
            node: NodeState::default(),
            channels: BTreeMap::new(),
            index: Index::default(),
            sweeper: Sweeper::new(),
            fees: None,
            persisted: BTreeMap::new(),
            persisted_blocks: BTreeMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The tip.
    pub fn tip(&self) -> Option<BlockRef> {
        self.tip
    }

    /// A channel's arbitrator.
    pub fn channel(&self, id: &ChannelId) -> Option<&ChannelArbitrator> {
        self.channels.get(id)
    }

    /// Every channel, in id order.
    pub fn channels(&self) -> impl Iterator<Item = &ChannelArbitrator> {
        self.channels.values()
    }

    /// The height at which a channel next acts (`None`: nothing scheduled). Channels
    /// rebroadcasting our commitment act every block and are not in this index.
    pub fn next_wakeup(&self, id: &ChannelId) -> Option<Height> {
        self.index.wakeup_of.get(id).copied()
    }

    /// The latest fee conditions, if any were told.
    pub fn fee_conditions(&self) -> Option<&crate::event::FeeConditions> {
        self.fees.as_ref()
    }

    /// The fee reserve the open anchor channels need from the fee wallet at the current fee
    /// conditions (kept up to date channel by channel).
    pub fn fee_reserve(&self) -> crate::sweeper::reserve::FeeReserve {
        self.index
            .exposure
            .fee_reserve(self.fees.as_ref(), &self.config.sweeper)
    }

    /// Node-wide state (preimages, circuits, upstream decisions).
    pub fn node(&self) -> &NodeState {
        &self.node
    }

    /// Apply one event. On `Err` nothing changed. On success the first action, if any changes
    /// must be made durable, is the `Persist` batch.
    pub fn step(&mut self, event: &Event) -> Result<Vec<Action>, StepError> {
        let mut touched = BTreeSet::new();
        let mut effects = Vec::new();
        let mut extra_ops = Vec::new();
        // Closed channels that learned a preimage between blocks: they claim with it now.
        let mut acting = BTreeSet::new();
        match event {
            Event::ChannelUpdate(update) => {
                let data = self.channels.get(&update.channel).map(|c| &c.data);
                let (next, applied) =
                    apply_update(data, update).map_err(|error| StepError::Update {
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
                        extra_ops.push(records::revoked_log_entry(update.channel, &revoked));
                    }
                    touched.insert(update.channel);
                    effects.extend(self.step_channel(update.channel, ChannelInput::Updated));
                }
                effects.push(Action::UpdatePersisted {
                    channel: update.channel,
                    update_id: update.update_id,
                });
            }
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
                effects.extend(self.step_channel(*channel, ChannelInput::ForceClose(&trigger)));
                touched.insert(*channel);
            }
            Event::CircuitAdded { outgoing, incoming } => {
                self.node.add_circuit(*outgoing, *incoming);
                touched.insert(outgoing.channel);
            }
            Event::CircuitRemoved { outgoing } => {
                self.node.remove_circuit(outgoing);
                touched.insert(outgoing.channel);
            }
            Event::PreimageLearned { preimage, source } => {
                if self.node.learn(*preimage, source) {
                    let hashes = [preimage.payment_hash()];
                    acting = self.on_preimages_learned(&hashes, &mut touched, &mut effects);
                }
            }
            Event::UpstreamAcked { htlc, resolution } => {
                self.node
                    .ack_upstream(htlc, *resolution == UpstreamResolution::Settled);
            }
            Event::BlockConnected(block) => effects.extend(self.connect(block, &mut touched)?),
            Event::BlockDisconnected { block } => {
                effects.extend(self.disconnect(block, &mut touched)?)
            }
            Event::MempoolTx { tx, .. } => {
                let (actions, hashes) = self.mempool_tx(tx, &mut touched);
                effects.extend(actions);
                acting = self.on_preimages_learned(&hashes, &mut touched, &mut effects);
            }
            Event::FeeConditions(fees) => {
                self.fees = Some(fees.clone());
                self.node.dirty.insert(RecordKey::Node);
            }
            Event::MempoolRemoved { txid, .. } => {
                if let Some(id) = self.index.mempool.get(txid).copied() {
                    if let Some(s) = self.step_channel_full(id, ChannelInput::MempoolRemoved(txid))
                    {
                        if s.changed {
                            touched.insert(id);
                        }
                    }
                }
            }
            Event::Tick { .. } => {}
            Event::WalletBalance { confirmed_sat } => {
                self.step_sweeper(SweeperInput::WalletBalance(*confirmed_sat));
            }
            Event::BroadcastResult {
                request,
                txid,
                outcome,
            } => {
                if self.sweeper.owns(request.claim) {
                    effects.extend(self.step_sweeper(SweeperInput::BroadcastResult {
                        request: *request,
                        outcome,
                    }));
                } else if let Some(id) = self.index.claims.get(&request.claim).copied() {
                    let input = ChannelInput::BroadcastResult {
                        request: *request,
                        txid: *txid,
                        outcome,
                    };
                    effects.extend(self.step_touching(id, input, &mut touched));
                }
            }
            Event::Signed { request, outcome } => {
                if self.sweeper.owns(request.claim) {
                    effects.extend(self.step_sweeper(SweeperInput::Signed {
                        request: *request,
                        outcome,
                    }));
                } else if let Some(id) = self.index.claims.get(&request.claim).copied() {
                    let input = ChannelInput::Signed {
                        request: *request,
                        outcome,
                    };
                    effects.extend(self.step_touching(id, input, &mut touched));
                }
            }
            Event::WalletFunded { request, outcome } => {
                if let Some(id) = self.index.claims.get(&request.claim).copied() {
                    let input = ChannelInput::WalletFunded {
                        request: *request,
                        outcome,
                    };
                    effects.extend(self.step_touching(id, input, &mut touched));
                }
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
                effects.extend(self.step_touching(*channel, input, &mut touched));
            }
            Event::Resumed { .. } => effects.extend(self.resumed()),
        }
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
        Ok(actions)
    }

    /// An alert not tied to a channel.
    pub fn alert(kind: AlertKind, message: String) -> Action {
        Action::Report(Report::Alert(Alert {
            channel: None,
            kind,
            message,
        }))
    }
}

impl Machine for ChainArbitrator {
    type Error = StepError;
    fn step(&mut self, event: &Event) -> Result<Vec<Action>, StepError> {
        ChainArbitrator::step(self, event)
    }
}
