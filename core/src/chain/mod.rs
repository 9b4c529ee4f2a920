//! The chain arbitrator: every channel of a node (lnd's ChainArbitrator).
//!
//! It keeps the tip (a block whose `prev_hash` is not the tip is refused) and the recent blocks,
//! routes each block's transactions to the channels they concern through an index of watched
//! outpoints, and wakes channels from a deadline index — so the cost of a block grows with its
//! relevant transactions and the deadlines due, not with the number of channels. A channel's
//! failure becomes an `Alert` and never stops another.

pub mod exposure;
pub mod ledger;
mod outpoints;
mod records;

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::OutPoint;
use serde::{Deserialize, Serialize};

use crate::action::{Action, Alert, AlertKind, Batch, CloseTrigger, RecordKey, Report};
use crate::bolt3::PaymentHash;
use crate::channel::claims::SweepPolicy;
use crate::channel::close::CloseConfig;
use crate::channel::deadline::{fired, DeadlineConfig};
use crate::channel::updates::{apply_update, Applied, UpdateError};
use crate::channel::ChannelArbitrator;
use crate::event::{Block, Event, ForceCloseReason, PreimageSource, UpstreamResolution};
use crate::sweeper::{Sweeper, SweeperConfig, SweeperPolicy};
use crate::trace::Machine;
use crate::types::{BlockRef, ChannelId, ClaimId, Height, HtlcDirection, HtlcKey};

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

/// Why an event was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// A block that does not extend the tip.
    BlockDoesNotConnect {
        /// Our tip.
        tip: BlockRef,
        /// The block's height.
        height: Height,
        /// Its parent.
        prev_hash: bitcoin::BlockHash,
    },
    /// A disconnection of a block that is not the tip.
    NotTheTip {
        /// Our tip, if any.
        tip: Option<BlockRef>,
        /// The block named.
        block: BlockRef,
    },
    /// A channel update was refused.
    Update {
        /// The channel.
        channel: ChannelId,
        /// Why.
        error: UpdateError,
    },
    /// An event for a channel that was never registered.
    UnknownChannel(ChannelId),
    /// A channel update naming a funding output another channel already watches (each output
    /// belongs to one channel). The channel updated is the event's.
    FundingInUse {
        /// The funding output.
        outpoint: OutPoint,
        /// The channel that watches it.
        by: ChannelId,
    },
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::BlockDoesNotConnect {
                tip,
                height,
                prev_hash,
            } => write!(
                f,
                "block {height} with parent {prev_hash} does not extend the tip {} at {}",
                tip.hash, tip.height
            ),
            StepError::NotTheTip {
                tip: Some(tip),
                block,
            } => write!(
                f,
                "cannot disconnect block {} at {}: the tip is {} at {}",
                block.hash, block.height, tip.hash, tip.height
            ),
            StepError::NotTheTip { tip: None, block } => {
                write!(
                    f,
                    "cannot disconnect block {} at {}: no blocks are known",
                    block.hash, block.height
                )
            }
            StepError::Update { channel, error } => write!(f, "channel {channel}: {error}"),
            StepError::UnknownChannel(c) => write!(f, "unknown channel {c}"),
            StepError::FundingInUse { outpoint, by } => {
                write!(f, "funding output {outpoint} is already channel {by}'s")
            }
        }
    }
}

impl std::error::Error for StepError {}

/// Indexes derived from the channels (rebuilt on load, never persisted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Index {
    outpoints: outpoints::OutpointIndex,
    wakeups: BTreeSet<(Height, ChannelId)>,
    wakeup_of: BTreeMap<ChannelId, Height>,
    /// Channels that act on every block (rebroadcasting our commitment).
    every_block: BTreeSet<ChannelId>,
    claims: BTreeMap<ClaimId, ChannelId>,
    /// Commitments seen in the mempool, by txid.
    mempool: BTreeMap<bitcoin::Txid, ChannelId>,
    /// Confirmed closes, by txid: a spend of an output no resolver watches (an HTLC of a
    /// future commitment) is still searched for preimages.
    closes: BTreeMap<bitcoin::Txid, ChannelId>,
    /// Channels with an incoming HTLC of a payment hash, on a live commitment or on the
    /// confirmed close: the channels a preimage concerns.
    hashes: BTreeMap<PaymentHash, BTreeSet<ChannelId>>,
    /// The outgoing HTLCs forwarded from each incoming HTLC (the circuits, reversed): the
    /// channels an upstream decision concerns.
    forwarded: BTreeMap<HtlcKey, BTreeSet<HtlcKey>>,
    /// The incoming HTLC of each circuit as indexed in `forwarded`.
    leg_of: BTreeMap<HtlcKey, HtlcKey>,
    /// Channels that had a spend routed at a height (for disconnections).
    touched_at: BTreeMap<Height, BTreeSet<ChannelId>>,
    /// What was indexed for each channel, so it can be removed without scanning.
    of_channel: BTreeMap<ChannelId, Indexed>,
    /// The outpoints each channel has a sweeper claim for (spent ones included).
    swept: BTreeMap<ChannelId, BTreeSet<OutPoint>>,
    /// What the open anchor channels may need from the fee wallet.
    exposure: exposure::ExposureIndex,
}

/// One channel's entries in the [`Index`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Indexed {
    outpoints: Vec<OutPoint>,
    mempool: Option<bitcoin::Txid>,
    close: Option<bitcoin::Txid>,
    claims: Vec<ClaimId>,
    hashes: Vec<PaymentHash>,
    heights: Vec<Height>,
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
                    effects.extend(self.check_deadline(update.channel));
                }
                effects.push(Action::UpdatePersisted {
                    channel: update.channel,
                    update_id: update.update_id,
                });
            }
            Event::ForceCloseRequested { channel, reason } => {
                let ch = self
                    .channels
                    .get_mut(channel)
                    .ok_or(StepError::UnknownChannel(*channel))?;
                let trigger = match reason {
                    ForceCloseReason::User => CloseTrigger::User,
                    ForceCloseReason::PeerError { message } => CloseTrigger::PeerError {
                        message: message.clone(),
                    },
                    ForceCloseReason::Node { message } => CloseTrigger::Node {
                        message: message.clone(),
                    },
                };
                effects.extend(ch.force_close(trigger, &mut self.node));
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
                    if let Some(ch) = self.channels.get_mut(&id) {
                        if ch.on_mempool_removed(txid) {
                            touched.insert(id);
                        }
                    }
                }
            }
            Event::Tick { .. } => {}
            Event::WalletBalance { confirmed_sat } => {
                self.sweeper.on_wallet_balance(*confirmed_sat);
            }
            Event::BroadcastResult {
                request,
                txid,
                outcome,
            } => {
                if self.sweeper.owns(request.claim) {
                    effects.extend(self.sweeper.on_broadcast_result(*request, outcome));
                } else if let Some(id) = self.index.claims.get(&request.claim).copied() {
                    if let Some(ch) = self.channels.get_mut(&id) {
                        effects.extend(ch.on_claim_broadcast_result(*request, *txid, outcome));
                        touched.insert(id);
                    }
                }
            }
            Event::Signed { request, outcome } => {
                if self.sweeper.owns(request.claim) {
                    effects.extend(self.sweeper.on_signed(*request, outcome));
                } else if let Some(id) = self.index.claims.get(&request.claim).copied() {
                    let fees = fee_context(&self.config, self.fees.as_ref());
                    let tip = self.tip.map_or(0, |t| t.height);
                    if let Some(ch) = self.channels.get_mut(&id) {
                        if let Some(actions) = ch.on_funded_signed(*request, outcome) {
                            effects.extend(actions);
                        } else {
                            match ch.on_second_level_signed(*request, outcome, &self.node) {
                                Some(actions) => effects.extend(actions),
                                None => {
                                    effects.extend(ch.on_signed(*request, outcome));
                                    // Our commitment is out: pay for it at once if it is too
                                    // cheap, rather than a block later.
                                    effects.extend(ch.anchor_cpfp_actions(
                                        tip,
                                        &mut self.node,
                                        &fees,
                                    ));
                                }
                            }
                        }
                        touched.insert(id);
                    }
                }
            }
            Event::WalletFunded { request, outcome } => {
                let tip = self.tip.map_or(0, |t| t.height);
                if let Some(id) = self.index.claims.get(&request.claim).copied() {
                    if let Some(ch) = self.channels.get_mut(&id) {
                        effects.extend(ch.on_wallet_funded(*request, outcome, tip));
                        touched.insert(id);
                    }
                }
            }
            Event::RevokedLogRead {
                channel,
                commitment_number,
                record,
            } => {
                if let Some(ch) = self.channels.get_mut(channel) {
                    effects.extend(ch.on_revoked_log_read(*commitment_number, record.as_ref()));
                    touched.insert(*channel);
                }
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
        if self.sweeper.wallet_balance().is_some() {
            // The reserve follows the channels just reindexed: no scan of every channel.
            let needed = self.fee_reserve();
            effects.extend(self.sweeper.check_reserve(&needed));
        }
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

    /// Preimages of `hashes` were just learned (from any source): every channel with an
    /// incoming HTLC of one of them is touched and its go-to-chain rule checked now. Returns
    /// those channels, so closed ones claim in this same step.
    fn on_preimages_learned(
        &mut self,
        hashes: &[PaymentHash],
        touched: &mut BTreeSet<ChannelId>,
        effects: &mut Vec<Action>,
    ) -> BTreeSet<ChannelId> {
        let concerned: BTreeSet<ChannelId> = hashes
            .iter()
            .filter_map(|h| self.index.hashes.get(h))
            .flatten()
            .copied()
            .collect();
        for channel in &concerned {
            touched.insert(*channel);
            effects.extend(self.check_deadline(*channel));
        }
        concerned
    }

    /// Between blocks, a closed channel that learned a preimage starts the HTLC-success
    /// transaction of our commitment now, for the next block.
    fn claim_second_level_now(&mut self, acting: &BTreeSet<ChannelId>) -> Vec<Action> {
        let Some(tip) = self.tip.map(|t| t.height) else {
            return Vec::new();
        };
        let fees = fee_context(&self.config, self.fees.as_ref());
        let mut actions = Vec::new();
        for id in acting {
            if let Some(ch) = self.channels.get_mut(id).filter(|c| c.close.is_some()) {
                actions.extend(ch.start_second_level(tip, &mut self.node, &fees));
            }
        }
        actions
    }

    /// Between blocks, the sweeper builds the new preimage claims of channels that learned a
    /// preimage now, for the next block, rather than at the next block.
    fn sweep_now(&mut self, acting: &BTreeSet<ChannelId>) -> Vec<Action> {
        let (Some(cfg), Some(tip)) = (&self.config.sweep_to, self.tip.map(|t| t.height)) else {
            return Vec::new();
        };
        let fees = fee_context(&self.config, self.fees.as_ref());
        let outpoints: BTreeSet<OutPoint> = acting
            .iter()
            .filter_map(|id| self.channels.get(id))
            .flat_map(|ch| ch.sweep_requests(&self.node, &fees))
            .filter(|r| r.preimage.is_some())
            .map(|r| r.outpoint)
            .collect();
        self.sweeper.claim_now(
            &outpoints,
            tip,
            self.fees.as_ref(),
            cfg,
            &self.config.sweeper,
        )
    }

    /// Touch the channels whose plans depend on node-wide state this step changed, whichever
    /// event changed it: a preimage (the channels with an incoming HTLC of its hash, on a live
    /// commitment or on the confirmed close), a circuit (its outgoing HTLC's channel), an
    /// upstream decision (the channels of the outgoing HTLCs forwarded from that incoming HTLC:
    /// their cut-loss wake-ups end with it). A touched channel is reindexed, its claims synced
    /// and its changed records persisted, so its wake-up in memory is what a reload computes.
    /// (Acting on a new preimage — the go-to-chain rule, claims in the same step — is
    /// [`Self::on_preimages_learned`]'s, where the preimage is learned.)
    fn follow_node_changes(&mut self, touched: &mut BTreeSet<ChannelId>) {
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
                    if let Some(concerned) = self.index.hashes.get(payment_hash) {
                        touched.extend(concerned.iter().copied());
                    }
                }
                _ => {}
            }
        }
        // After every circuit of this step is indexed.
        for key in &changed {
            if let RecordKey::Upstream { htlc } = key {
                if let Some(outgoing) = self.index.forwarded.get(htlc) {
                    touched.extend(
                        outgoing
                            .iter()
                            .map(|o| o.channel)
                            .filter(|id| self.channels.contains_key(id)),
                    );
                }
            }
        }
    }

    /// Refresh a circuit's entry in the reversed circuit index.
    fn index_circuit(&mut self, outgoing: HtlcKey) {
        if let Some(old) = self.index.leg_of.remove(&outgoing) {
            if let Some(set) = self.index.forwarded.get_mut(&old) {
                set.remove(&outgoing);
                if set.is_empty() {
                    self.index.forwarded.remove(&old);
                }
            }
        }
        if let Some(leg) = self.node.circuits.get(&outgoing) {
            self.index.leg_of.insert(outgoing, leg.htlc);
            self.index
                .forwarded
                .entry(leg.htlc)
                .or_default()
                .insert(outgoing);
        }
    }

    /// If a channel's go-to-chain rule has fired at the tip, force close it.
    fn check_deadline(&mut self, id: ChannelId) -> Vec<Action> {
        let Some(tip) = self.tip else {
            return Vec::new();
        };
        let Some(ch) = self.channels.get_mut(&id) else {
            return Vec::new();
        };
        if ch.close.is_some() || ch.force_close.is_some() {
            return Vec::new();
        }
        match fired(&ch.data, tip.height, &self.node, &self.config.deadlines) {
            Some(t) => ch.force_close(
                CloseTrigger::HtlcDeadline {
                    htlc: t.htlc,
                    deadline: t.deadline,
                    height: tip.height,
                },
                &mut self.node,
            ),
            None => Vec::new(),
        }
    }

    fn connect(
        &mut self,
        block: &Block,
        touched: &mut BTreeSet<ChannelId>,
    ) -> Result<Vec<Action>, StepError> {
        if let Some(tip) = self.tip {
            if block.prev_hash != tip.hash || block.height != tip.height.wrapping_add(1) {
                return Err(StepError::BlockDoesNotConnect {
                    tip,
                    height: block.height,
                    prev_hash: block.prev_hash,
                });
            }
        }
        let here = BlockRef {
            height: block.height,
            hash: block.hash,
        };
        self.tip = Some(here);
        self.sweeper.set_tip(Some(here.height));
        self.recent.push(here);
        let keep = self.config.close.archive_depth.max(1) as usize;
        if self.recent.len() > keep {
            let drop = self.recent.len() - keep;
            self.recent.drain(..drop);
        }
        let mut effects = Vec::new();
        // Transactions in block order; a channel's index is refreshed after each spend so a
        // spend of an output created earlier in the same block is seen.
        let mut learned = Vec::new();
        for tx in &block.txs {
            // Whether the tx pays our sweep destination: looked at only for a relevant tx.
            let mut pays_us = None;
            // The channels whose outputs it spends: each searches its witnesses for preimages.
            let mut spends_of: BTreeSet<ChannelId> = BTreeSet::new();
            for input in &tx.input {
                let prev = input.previous_output;
                let Some(id) = self.index.outpoints.get(&prev) else {
                    // An output of a close no resolver watches (a future commitment's HTLC):
                    // only its preimages matter.
                    if let Some(id) = self.index.closes.get(&prev.txid) {
                        spends_of.insert(*id);
                    }
                    continue;
                };
                let pays_us = *pays_us.get_or_insert_with(|| {
                    self.config
                        .sweep_to
                        .as_ref()
                        .is_some_and(|c| tx.output.iter().any(|o| o.script_pubkey == c.destination))
                });
                let Some(ch) = self.channels.get_mut(&id) else {
                    continue;
                };
                let closing = ch.data.info.funding_output(&prev).is_some();
                effects.extend(ch.on_spend(
                    prev,
                    tx,
                    block.height,
                    &mut self.node,
                    &self.config.close,
                    pays_us,
                ));
                if !closing {
                    spends_of.insert(id);
                }
                if self.sweeper.claim_for(&prev).is_some() {
                    self.sweeper
                        .on_spent(&prev, tx.compute_txid(), block.height);
                }
                touched.insert(id);
                self.reindex(id);
            }
            let source = PreimageSource::Chain {
                txid: tx.compute_txid(),
                height: block.height,
            };
            for id in spends_of {
                if let Some(ch) = self.channels.get(&id) {
                    let (actions, hashes) = ch.learn_preimages(tx, &source, &mut self.node);
                    effects.extend(actions);
                    learned.extend(hashes);
                }
            }
        }
        // A preimage learned here is acted on in this block: every channel with an incoming
        // HTLC of its hash claims it now (a closed one through its wakeup below).
        let acting = self.on_preimages_learned(&learned, touched, &mut effects);
        let mut due: BTreeSet<ChannelId> = self
            .index
            .wakeups
            .range(..=(block.height, ChannelId([0xff; 32])))
            .map(|(_, c)| *c)
            .collect();
        due.extend(self.index.every_block.iter().copied());
        due.extend(
            acting
                .into_iter()
                .filter(|id| self.channels.get(id).is_some_and(|c| c.close.is_some())),
        );
        for id in due {
            touched.insert(id);
            effects.extend(self.wake(id, block.height));
        }
        // Claims follow the block's decisions: sync what the touched channels want, then let
        // the sweeper build, bump and rebroadcast.
        for id in touched.iter() {
            self.sync_claims(*id);
        }
        if let Some(cfg) = &self.config.sweep_to {
            if !self.sweeper.is_idle() {
                effects.extend(self.sweeper.on_block(
                    block.height,
                    self.fees.as_ref(),
                    cfg,
                    &self.config.sweeper,
                ));
            }
        }
        let archivable: Vec<ChannelId> = touched
            .iter()
            .filter(|id| {
                self.channels
                    .get(id)
                    .is_some_and(|c| c.archivable(block.height, &self.config.close))
            })
            .copied()
            .collect();
        for id in archivable {
            self.channels.remove(&id);
            self.reindex(id);
        }
        Ok(effects)
    }

    /// A channel's wakeup is due at `height`.
    fn wake(&mut self, id: ChannelId, height: Height) -> Vec<Action> {
        let Some(ch) = self.channels.get_mut(&id) else {
            return Vec::new();
        };
        if ch.close.is_some() {
            let fees = fee_context(&self.config, self.fees.as_ref());
            return ch.on_block_closed(
                height,
                &mut self.node,
                &self.config.close,
                &self.sweeper,
                &fees,
            );
        }
        let fees = fee_context(&self.config, self.fees.as_ref());
        let mut actions = ch.on_block_before_close();
        actions.extend(ch.anchor_cpfp_actions(height, &mut self.node, &fees));
        if ch.force_close.is_none() {
            actions.extend(self.check_deadline(id));
        }
        actions
    }

    fn disconnect(
        &mut self,
        block: &BlockRef,
        touched: &mut BTreeSet<ChannelId>,
    ) -> Result<Vec<Action>, StepError> {
        if self.tip != Some(*block) {
            return Err(StepError::NotTheTip {
                tip: self.tip,
                block: *block,
            });
        }
        self.recent.pop();
        self.tip = self.recent.last().copied();
        let mut effects = Vec::new();
        let affected = self
            .index
            .touched_at
            .remove(&block.height)
            .unwrap_or_default();
        for id in affected {
            if let Some(ch) = self.channels.get_mut(&id) {
                effects.extend(ch.on_disconnect(block.height));
                self.sweeper.on_disconnect(block.height);
                touched.insert(id);
            }
        }
        // The sweeper's tip is the chain's, whether or not a claim was affected.
        self.sweeper.set_tip(self.tip.map(|t| t.height));
        Ok(effects)
    }

    /// A mempool transaction: an early hint. A preimage revealed in it is acted on at once.
    fn mempool_tx(
        &mut self,
        tx: &bitcoin::Transaction,
        touched: &mut BTreeSet<ChannelId>,
    ) -> (Vec<Action>, Vec<PaymentHash>) {
        let txid = tx.compute_txid();
        let mut effects = Vec::new();
        let mut learned = Vec::new();
        for input in &tx.input {
            let Some(id) = self
                .index
                .outpoints
                .get(&input.previous_output)
                .or_else(|| self.index.closes.get(&input.previous_output.txid).copied())
            else {
                continue;
            };
            let Some(ch) = self.channels.get(&id) else {
                continue;
            };
            if ch.close.is_none()
                && ch
                    .data
                    .info
                    .funding_output(&input.previous_output)
                    .is_some()
            {
                // An early hint of a close: reported now, acted on when it confirms.
                if let Some(kind) =
                    crate::close::classify_close(tx, &ch.data.info, &ch.data.commitments)
                        .close_kind()
                {
                    effects.push(Action::Report(Report::Timeline {
                        channel: id,
                        outpoint: input.previous_output,
                        height: self.tip.map_or(0, |t| t.height),
                        stage: format!("closing transaction seen in the mempool: {kind:?}"),
                        txid: Some(txid),
                    }));
                }
                if let Some(ch) = self.channels.get_mut(&id) {
                    if ch.on_mempool_commitment(tx) {
                        touched.insert(id);
                    }
                }
                continue;
            }
            if !ch.resolvers.contains_key(&input.previous_output)
                && self.index.closes.get(&input.previous_output.txid) != Some(&id)
            {
                continue;
            }
            let (actions, hashes) =
                ch.learn_preimages(tx, &PreimageSource::Mempool { txid }, &mut self.node);
            effects.extend(actions);
            learned.extend(hashes);
        }
        (effects, learned)
    }

    /// After a restart: ask for the blocks we missed, and re-emit everything still pending.
    fn resumed(&mut self) -> Vec<Action> {
        let mut effects = Vec::new();
        if !self.recent.is_empty() {
            effects.push(Action::SyncFrom {
                locator: self.locator(),
            });
        }
        effects.extend(self.node.pending_upstream());
        let tip = self.tip.map(|t| t.height);
        effects.extend(self.sweeper.pending_after_restart(tip));
        let pending: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|(_, c)| c.close.is_none() && c.force_close.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in pending {
            if let Some(ch) = self.channels.get_mut(&id) {
                effects.extend(ch.on_block_before_close());
            }
        }
        for ch in self.channels.values() {
            effects.extend(ch.funded_pending_after_restart());
            effects.extend(ch.revoked_log_request());
        }
        effects
    }

    /// Recent block hashes, newest first, dense near the tip then doubling back.
    pub fn locator(&self) -> Vec<BlockRef> {
        let mut out = Vec::new();
        let mut step = 1usize;
        let mut i = self.recent.len();
        while i > 0 {
            out.push(self.recent[i - 1]);
            if out.len() >= 10 {
                step *= 2;
            }
            i = i.saturating_sub(step);
        }
        if let (Some(first), Some(last)) = (self.recent.first(), out.last()) {
            if last != first {
                out.push(*first);
            }
        }
        out
    }

    /// Make the sweeper's requests for a channel match what the channel wants now: new or
    /// changed requests registered, requests no longer wanted (a reorged close, an archived
    /// channel) cancelled. Without a configured destination nothing is registered.
    fn sync_claims(&mut self, id: ChannelId) {
        if self.config.sweep_to.is_none() {
            return;
        }
        let wanted = self
            .channels
            .get(&id)
            .map(|ch| ch.sweep_requests(&self.node, &fee_context(&self.config, self.fees.as_ref())))
            .unwrap_or_default();
        let had = self.index.swept.remove(&id).unwrap_or_default();
        if wanted.is_empty() && had.is_empty() {
            return;
        }
        let keep: BTreeSet<OutPoint> = wanted.iter().map(|r| r.outpoint).collect();
        // The channel's claims no longer wanted, in claim order: found through the channel's
        // own entries, not by scanning every claim of the node.
        let mut stale: Vec<(ClaimId, OutPoint)> = had
            .iter()
            .filter(|o| !keep.contains(o))
            .filter_map(|o| {
                let claim = self.sweeper.claim_for(o)?;
                let c = self.sweeper.claims().get(&claim)?;
                let live = !matches!(c.state, crate::sweeper::ClaimState::Spent { .. });
                (c.request.channel == id && live).then_some((claim, *o))
            })
            .collect();
        stale.sort_unstable();
        for (_, outpoint) in stale {
            self.sweeper.cancel(&outpoint);
        }
        for request in wanted {
            self.sweeper.request(request, &mut self.node);
        }
        let now: BTreeSet<OutPoint> = had
            .into_iter()
            .chain(keep)
            .filter(|o| self.claim_of_channel(id, o))
            .collect();
        if !now.is_empty() {
            self.index.swept.insert(id, now);
        }
    }

    /// Whether the sweeper holds a claim of `outpoint` for channel `id`.
    fn claim_of_channel(&self, id: ChannelId, outpoint: &OutPoint) -> bool {
        self.sweeper
            .claim_for(outpoint)
            .and_then(|claim| self.sweeper.claims().get(&claim))
            .is_some_and(|c| c.request.channel == id)
    }

    /// Refresh a channel's entries in the indexes.
    fn reindex(&mut self, id: ChannelId) {
        // Remove exactly what was indexed for this channel last time: the cost is the
        // channel's own size, never the number of channels.
        if let Some(old) = self.index.of_channel.remove(&id) {
            for o in &old.outpoints {
                if self.index.outpoints.get(o) == Some(id) {
                    self.index.outpoints.remove(o);
                }
            }
            for c in &old.claims {
                self.index.claims.remove(c);
            }
            if let Some(t) = &old.mempool {
                self.index.mempool.remove(t);
            }
            if let Some(t) = &old.close {
                self.index.closes.remove(t);
            }
            for h in &old.hashes {
                if let Some(set) = self.index.hashes.get_mut(h) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.index.hashes.remove(h);
                    }
                }
            }
            for h in &old.heights {
                if let Some(set) = self.index.touched_at.get_mut(h) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.index.touched_at.remove(h);
                    }
                }
            }
        }
        if let Some(ch) = self.channels.get_mut(&id) {
            ch.refresh_confirmed_commitment();
        }
        self.index.exposure.refresh(id, self.channels.get(&id));
        self.index.every_block.remove(&id);
        if let Some(h) = self.index.wakeup_of.remove(&id) {
            self.index.wakeups.remove(&(h, id));
        }
        let Some(ch) = self.channels.get(&id) else {
            return;
        };
        let mut entry = Indexed::default();
        for o in ch.watched_outpoints() {
            self.index.outpoints.insert(o, id);
            entry.outpoints.push(o);
        }
        let second_level = ch
            .resolvers
            .values()
            .filter_map(|r| r.second_level.as_ref())
            .map(|c| c.claim);
        let claims = ch
            .force_close
            .iter()
            .map(|fc| fc.claim)
            .chain(second_level)
            .chain(ch.cpfp.iter().map(|f| f.claim));
        if let Some(c) = &ch.close {
            self.index.closes.insert(c.txid, id);
            entry.close = Some(c.txid);
        }
        if let Some(m) = &ch.mempool_commitment {
            let txid = m.tx.compute_txid();
            self.index.mempool.insert(txid, id);
            entry.mempool = Some(txid);
        }
        for claim in claims {
            self.index.claims.insert(claim, id);
            entry.claims.push(claim);
        }
        let heights = ch
            .close
            .iter()
            .map(|c| c.height)
            .chain(ch.resolvers.values().filter_map(|r| match r.stage {
                crate::resolver::Stage::Spent { height, .. }
                | crate::resolver::Stage::Resolved { height, .. } => Some(height),
                crate::resolver::Stage::Active
                | crate::resolver::Stage::Abandoned { .. }
                | crate::resolver::Stage::Expired { .. } => None,
            }));
        for h in heights {
            self.index.touched_at.entry(h).or_default().insert(id);
            entry.heights.push(h);
        }
        let c = &ch.data.commitments;
        let records = c
            .local
            .iter()
            .map(|l| &l.commitment)
            .chain(c.remote_current.iter())
            .chain(c.remote_pending.iter());
        // Incoming HTLCs of the live commitments, and of the confirmed close (updates may
        // have removed them from every live commitment since).
        let on_close = ch.resolvers.values().filter_map(|r| match r.kind {
            crate::resolver::ResolverKind::IncomingHtlc { payment_hash, .. } => Some(payment_hash),
            _ => None,
        });
        let incoming: BTreeSet<PaymentHash> = records
            .flat_map(|r| r.htlcs.iter())
            .filter(|h| h.direction == HtlcDirection::Incoming)
            .map(|h| h.payment_hash)
            .chain(on_close)
            .collect();
        for hash in incoming {
            self.index.hashes.entry(hash).or_default().insert(id);
            entry.hashes.push(hash);
        }
        if ch.acts_every_block() {
            self.index.every_block.insert(id);
        }
        if let Some(h) = ch.next_wakeup(&self.node, &self.config.close, &self.config.deadlines) {
            self.index.wakeups.insert((h, id));
            self.index.wakeup_of.insert(id, h);
        }
        self.index.of_channel.insert(id, entry);
    }

    /// Rebuild every index (after loading).
    fn reindex_all(&mut self) {
        self.index = Index::default();
        for c in self.sweeper.claims().values() {
            self.index
                .swept
                .entry(c.request.channel)
                .or_default()
                .insert(c.request.outpoint);
        }
        let ids: Vec<ChannelId> = self.channels.keys().copied().collect();
        for id in ids {
            self.reindex(id);
        }
        let circuits: Vec<HtlcKey> = self.node.circuits.keys().copied().collect();
        for outgoing in circuits {
            self.index_circuit(outgoing);
        }
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
