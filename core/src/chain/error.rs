//! Why a step was refused (nothing changed).

use crate::channel::updates::UpdateError;
use crate::types::{BlockRef, ChannelId, Height};
use bitcoin::OutPoint;

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
    /// The event may change channels loaded lazily and not decoded yet: give them to
    /// `ChainArbitrator::hydrate` and feed the event again.
    NotLoaded(Vec<ChannelId>),
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
            StepError::NotLoaded(ids) => {
                write!(f, "{} channel(s) to load first:", ids.len())?;
                for id in ids {
                    write!(f, " {id}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for StepError {}
