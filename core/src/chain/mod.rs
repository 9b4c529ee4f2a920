//! The chain arbitrator: every channel of a node (lnd's ChainArbitrator).
//!
//! It keeps the tip (a block whose `prev_hash` is not the tip is refused) and the recent blocks,
//! routes each block's transactions to the channels they concern through an index of watched
//! outpoints, and wakes channels from a deadline index — so the cost of a block grows with its
//! relevant transactions and the deadlines due, not with the number of channels. A channel's
//! failure becomes an `Alert` and never stops another.

mod blocks;
mod dormant;
#[cfg(test)]
mod dormant_tests;
mod error;
pub mod exposure;
mod index;
pub mod ledger;
mod outpoints;
mod quiet;
mod records;
#[cfg(test)]
mod records_tests;
mod relevant;
mod route;
mod step;
#[cfg(test)]
mod step_tests;

pub use error::StepError;
use index::Index;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::action::{Action, Alert, AlertKind, RecordKey, Report};
use crate::channel::close::CloseConfig;
use crate::channel::deadline::DeadlineConfig;
use crate::channel::ChannelArbitrator;
use crate::event::Event;
use crate::resolver::SweepPolicy;
use crate::sweeper::{Sweeper, SweeperConfig, SweeperPolicy};
use crate::trace::Machine;
use crate::types::{BlockRef, ChannelId, Height};

use crate::node::NodeState;

/// What the channels' claims need to decide fees.
fn fee_context<'a>(
    config: &'a Config,
    fees: Option<&'a crate::event::FeeConditions>,
) -> crate::resolver::FeeContext<'a> {
    crate::resolver::FeeContext {
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
pub use quiet::DormantChannel;
pub use records::{
    decode_channel, load_channel_lazily, stored_config, ChannelRecords, DecodedChannel, LoadError,
    LoadedChannel,
};

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
    /// Quiet open channels loaded lazily, not decoded yet (see [`dormant`]); indexed like the
    /// others, never in `channels` at the same time.
    dormant: BTreeMap<ChannelId, DormantChannel>,
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
            dormant: BTreeMap::new(),
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
