//! In-memory parts for tests and simulations: a chain source serving a scripted chain (with
//! reorgs), a broadcaster that records what it is given and answers as scripted, a node that
//! records what it is told, and a wallet that has nothing.
//!
//! Wrap one in `Arc<Mutex<_>>` to keep a handle on it after handing it to a driver.

use std::collections::{BTreeMap, VecDeque};

use bitcoin::hashes::{sha256d, Hash, HashEngine};
use bitcoin::{BlockHash, Transaction};
use contractcourt_core::action::{Action, FailReason, FundingRequest, Report};
use contractcourt_core::bolt3::PaymentPreimage;
use contractcourt_core::event::{Block, BroadcastOutcome, Event, FundingOutcome};
use contractcourt_core::types::{BlockRef, ChannelId, ClaimId, Height, HtlcKey, RawTx};

use super::io::{Broadcaster, ChainSource, NodeHandle, SourceError, Wallet};

/// A scripted chain: a best chain of blocks with deterministic hashes, reorganised on request,
/// served as a [`ChainSource`] that finds the fork point on the locator it is given.
#[derive(Clone, Debug)]
pub struct MemoryChain {
    first_height: Height,
    best: Vec<Block>,
    /// Every block this chain ever had: hash → (height, parent hash).
    known: BTreeMap<BlockHash, (Height, BlockHash)>,
    branch: u32,
}

impl MemoryChain {
    /// An empty chain whose first block will be at `first_height` (with an all-zero parent).
    pub fn new(first_height: Height) -> MemoryChain {
        MemoryChain {
            first_height,
            best: Vec::new(),
            known: BTreeMap::new(),
            branch: 0,
        }
    }

    /// The best chain, oldest first.
    pub fn blocks(&self) -> &[Block] {
        &self.best
    }

    /// The best chain's tip.
    pub fn best_tip(&self) -> Option<BlockRef> {
        self.best.last().map(|b| BlockRef {
            height: b.height,
            hash: b.hash,
        })
    }

    /// Mine a block holding `txs` on the tip; returns it.
    pub fn mine(&mut self, txs: Vec<Transaction>) -> Block {
        let (height, prev_hash) = match self.best.last() {
            Some(tip) => (tip.height.saturating_add(1), tip.hash),
            None => (self.first_height, BlockHash::all_zeros()),
        };
        let txs: Vec<RawTx> = txs.into_iter().map(RawTx).collect();
        let mut engine = sha256d::Hash::engine();
        engine.input(prev_hash.as_byte_array());
        engine.input(&height.to_le_bytes());
        engine.input(&self.branch.to_le_bytes());
        for tx in &txs {
            engine.input(tx.compute_txid().as_byte_array());
        }
        let hash = BlockHash::from_raw_hash(sha256d::Hash::from_engine(engine));
        let block = Block {
            height,
            hash,
            prev_hash,
            time: 1_700_000_000u32.saturating_add(height.saturating_mul(600)),
            txs,
        };
        self.known.insert(hash, (height, prev_hash));
        self.best.push(block.clone());
        block
    }

    /// Reorganise: drop the best chain's blocks above `fork_height` and mine one new block per
    /// entry of `blocks` (holding those transactions) on the block at `fork_height`. The new
    /// blocks differ from every earlier block at their height. Returns them.
    pub fn reorg(&mut self, fork_height: Height, blocks: Vec<Vec<Transaction>>) -> Vec<Block> {
        let keep = fork_height
            .saturating_add(1)
            .saturating_sub(self.first_height) as usize;
        self.best.truncate(keep);
        self.branch = self.branch.saturating_add(1);
        blocks.into_iter().map(|txs| self.mine(txs)).collect()
    }

    fn on_best(&self, block: &BlockRef) -> bool {
        block
            .height
            .checked_sub(self.first_height)
            .and_then(|i| self.best.get(i as usize))
            .is_some_and(|b| b.hash == block.hash)
    }
}

impl ChainSource for MemoryChain {
    fn tip(&mut self) -> Result<Option<BlockRef>, SourceError> {
        Ok(self.best_tip())
    }

    fn blocks_after(&mut self, locator: &[BlockRef]) -> Result<Vec<Event>, SourceError> {
        let mut events = Vec::new();
        let fork = match locator.first() {
            None => None,
            Some(tip) => {
                let fork = locator
                    .iter()
                    .find(|b| self.on_best(b))
                    .copied()
                    .ok_or("no block of the locator is on the best chain")?;
                // The engine's blocks above the fork point, from its tip down.
                let mut at = *tip;
                while at != fork {
                    let Some((height, prev)) = self.known.get(&at.hash).copied() else {
                        return Err(format!("unknown block {} at {}", at.hash, at.height).into());
                    };
                    if height != at.height || height <= fork.height {
                        return Err(format!(
                            "block {} at {} does not lead to the fork point",
                            at.hash, at.height
                        )
                        .into());
                    }
                    events.push(Event::BlockDisconnected { block: at });
                    at = BlockRef {
                        height: height - 1,
                        hash: prev,
                    };
                }
                Some(fork)
            }
        };
        events.extend(
            self.best
                .iter()
                .filter(|b| fork.is_none_or(|f| b.height > f.height))
                .cloned()
                .map(Event::BlockConnected),
        );
        Ok(events)
    }
}

/// What a [`RecordingBroadcaster`] was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Broadcasted {
    /// One transaction.
    Tx(Transaction),
    /// A package.
    Package {
        /// The parent.
        parent: Transaction,
        /// The child.
        child: Transaction,
    },
}

/// A broadcaster that records every transaction and answers with scripted outcomes
/// ([`BroadcastOutcome::Accepted`] once the script is used up).
#[derive(Clone, Debug, Default)]
pub struct RecordingBroadcaster {
    /// Everything broadcast, in order.
    pub sent: Vec<Broadcasted>,
    /// The next outcomes to answer with, in order.
    pub script: VecDeque<BroadcastOutcome>,
}

impl RecordingBroadcaster {
    /// A broadcaster that accepts everything.
    pub fn new() -> RecordingBroadcaster {
        RecordingBroadcaster::default()
    }

    /// Answer the next broadcast (after those already scripted) with a rejection carrying
    /// `reason`.
    pub fn reject_next(&mut self, reason: impl Into<String>) {
        self.script.push_back(BroadcastOutcome::Rejected {
            reason: reason.into(),
        });
    }

    /// Every transaction broadcast, packages flattened (parent, then child).
    pub fn txs(&self) -> Vec<&Transaction> {
        self.sent
            .iter()
            .flat_map(|b| match b {
                Broadcasted::Tx(tx) => vec![tx],
                Broadcasted::Package { parent, child } => vec![parent, child],
            })
            .collect()
    }

    fn answer(&mut self) -> BroadcastOutcome {
        self.script
            .pop_front()
            .unwrap_or(BroadcastOutcome::Accepted)
    }
}

impl Broadcaster for RecordingBroadcaster {
    fn broadcast(&mut self, tx: &Transaction) -> BroadcastOutcome {
        self.sent.push(Broadcasted::Tx(tx.clone()));
        self.answer()
    }

    fn broadcast_package(&mut self, parent: &Transaction, child: &Transaction) -> BroadcastOutcome {
        self.sent.push(Broadcasted::Package {
            parent: parent.clone(),
            child: child.clone(),
        });
        self.answer()
    }
}

/// A node that records what it is told, as the actions that told it.
#[derive(Clone, Debug, Default)]
pub struct RecordingNode {
    /// Every `UpdatePersisted`, `SettleUpstream`, `FailUpstream` and `Report`, in order.
    pub received: Vec<Action>,
}

impl RecordingNode {
    /// A node that has been told nothing.
    pub fn new() -> RecordingNode {
        RecordingNode::default()
    }

    /// The reports received, in order.
    pub fn reports(&self) -> Vec<&Report> {
        self.received
            .iter()
            .filter_map(|a| match a {
                Action::Report(r) => Some(r),
                _ => None,
            })
            .collect()
    }
}

impl NodeHandle for RecordingNode {
    fn update_persisted(&mut self, channel: ChannelId, update_id: u64) {
        self.received
            .push(Action::UpdatePersisted { channel, update_id });
    }
    fn settle_upstream(&mut self, htlc: HtlcKey, preimage: PaymentPreimage) {
        self.received
            .push(Action::SettleUpstream { htlc, preimage });
    }
    fn fail_upstream(&mut self, htlc: HtlcKey, reason: &FailReason) {
        self.received.push(Action::FailUpstream {
            htlc,
            reason: reason.clone(),
        });
    }
    fn report(&mut self, report: &Report) {
        self.received.push(Action::Report(report.clone()));
    }
}

/// A wallet with nothing to offer: every funding request fails.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoWallet;

impl Wallet for NoWallet {
    fn fund(&mut self, _request: &FundingRequest) -> FundingOutcome {
        FundingOutcome::Failed {
            reason: "no wallet".to_owned(),
        }
    }
    fn release(&mut self, _claim: ClaimId) {}
}
