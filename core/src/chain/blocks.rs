//! Blocks and the mempool: connecting and disconnecting blocks, routing their transactions to
//! the channels they concern, waking the channels that are due, and catching up after a restart.

use crate::action::{Action, Report};
use crate::bolt3::PaymentHash;
use crate::channel::step::ChannelInput;
use crate::event::{Block, PreimageSource};
use crate::types::{BlockRef, ChannelId, Height};
use std::collections::BTreeSet;

use super::{ChainArbitrator, StepError};
use crate::sweeper::step::SweeperInput;

impl ChainArbitrator {
    pub(super) fn connect(
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
        self.advance_tip(block);
        let mut effects = Vec::new();
        let learned = self.route_block_txs(block, touched, &mut effects);
        // A preimage learned here is acted on in this block: every channel with an incoming
        // HTLC of its hash claims it now (a closed one through its wakeup below).
        let acting = self.on_preimages_learned(&learned, touched, &mut effects);
        effects.extend(self.wake_due(block.height, acting, touched));
        // Claims follow the block's decisions: sync what the touched channels want, then let
        // the sweeper build, bump and rebroadcast.
        for id in touched.iter() {
            self.sync_claims(*id);
        }
        effects.extend(self.step_sweeper(SweeperInput::Block {
            height: block.height,
        }));
        self.archive(block.height, touched);
        Ok(effects)
    }

    /// The block is the new tip: the sweeper's too, and the newest of the recent blocks kept
    /// (`archive_depth` of them, for the locator).
    fn advance_tip(&mut self, block: &Block) {
        let here = BlockRef {
            height: block.height,
            hash: block.hash,
        };
        self.tip = Some(here);
        self.step_sweeper(SweeperInput::Tip(Some(here.height)));
        self.recent.push(here);
        let keep = self.config.close.archive_depth.max(1) as usize;
        if self.recent.len() > keep {
            let drop = self.recent.len() - keep;
            self.recent.drain(..drop);
        }
    }

    /// Each transaction of the block, in block order, to the channels whose watched outputs it
    /// spends (a channel's index is refreshed after each spend, so a spend of an output created
    /// earlier in the same block is seen), and its witnesses to the channels whose close it
    /// spends from. Returns the payment hashes whose preimages were learned.
    fn route_block_txs(
        &mut self,
        block: &Block,
        touched: &mut BTreeSet<ChannelId>,
        effects: &mut Vec<Action>,
    ) -> Vec<PaymentHash> {
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
                let Some(ch) = self.channels.get(&id) else {
                    continue;
                };
                let closing = ch.data.info.funding_output(&prev).is_some();
                let input = ChannelInput::Spend {
                    outpoint: prev,
                    tx,
                    height: block.height,
                    pays_us,
                };
                effects.extend(self.step_channel(id, input));
                if !closing {
                    spends_of.insert(id);
                }
                self.step_sweeper(SweeperInput::Spent {
                    outpoint: &prev,
                    txid: tx.compute_txid(),
                    height: block.height,
                });
                touched.insert(id);
                self.reindex(id);
            }
            let source = PreimageSource::Chain {
                txid: tx.compute_txid(),
                height: block.height,
            };
            for id in spends_of {
                self.read_witnesses(id, tx, &source, effects, &mut learned);
            }
        }
        learned
    }

    /// Channel `id` reads the preimages in `tx`'s witnesses (seen at `source`).
    fn read_witnesses(
        &mut self,
        id: ChannelId,
        tx: &bitcoin::Transaction,
        source: &PreimageSource,
        effects: &mut Vec<Action>,
        learned: &mut Vec<PaymentHash>,
    ) {
        if let Some(stepped) = self.step_channel_full(id, ChannelInput::Witnesses { tx, source }) {
            effects.extend(stepped.actions);
            learned.extend(stepped.learned);
        }
    }

    /// Wake the channels due at `height`: by their wake-up height, every block, or because they
    /// are closed and just learned a preimage.
    fn wake_due(
        &mut self,
        height: Height,
        acting: BTreeSet<ChannelId>,
        touched: &mut BTreeSet<ChannelId>,
    ) -> Vec<Action> {
        let mut effects = Vec::new();
        let mut due: BTreeSet<ChannelId> = self
            .index
            .wakeups
            .range(..=(height, ChannelId([0xff; 32])))
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
            effects.extend(self.step_channel(id, ChannelInput::Block { height }));
        }
        effects
    }

    /// Drop the touched channels that are fully resolved and `archive_depth` deep at `height`.
    fn archive(&mut self, height: Height, touched: &BTreeSet<ChannelId>) {
        let archivable: Vec<ChannelId> = touched
            .iter()
            .filter(|id| {
                self.channels
                    .get(id)
                    .is_some_and(|c| c.archivable(height, &self.config.close))
            })
            .copied()
            .collect();
        for id in archivable {
            self.channels.remove(&id);
            self.reindex(id);
        }
    }

    pub(super) fn disconnect(
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
            let input = ChannelInput::Disconnected {
                height: block.height,
            };
            if let Some(stepped) = self.step_channel_full(id, input) {
                effects.extend(stepped.actions);
                self.step_sweeper(SweeperInput::Disconnected {
                    height: block.height,
                });
                touched.insert(id);
            }
        }
        // The sweeper's tip is the chain's, whether or not a claim was affected.
        self.step_sweeper(SweeperInput::Tip(self.tip.map(|t| t.height)));
        Ok(effects)
    }

    /// A mempool transaction: an early hint. A preimage revealed in it is acted on at once.
    pub(super) fn mempool_tx(
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
                let input = ChannelInput::MempoolCommitment(tx);
                if self.step_channel_full(id, input).is_some_and(|s| s.changed) {
                    touched.insert(id);
                }
                continue;
            }
            if !ch.resolvers.contains_key(&input.previous_output)
                && self.index.closes.get(&input.previous_output.txid) != Some(&id)
            {
                continue;
            }
            let source = PreimageSource::Mempool { txid };
            self.read_witnesses(id, tx, &source, &mut effects, &mut learned);
        }
        (effects, learned)
    }

    /// After a restart: ask for the blocks we missed, and re-emit everything still pending. The
    /// engine acts on its own stored tip; a chain source whose tip (`source`) is below it is
    /// reported: it lost blocks or follows another chain, and nothing new is seen until it
    /// catches up.
    pub(super) fn resumed(&mut self, source: Option<BlockRef>) -> Vec<Action> {
        let mut effects = Vec::new();
        if let (Some(ours), Some(theirs)) = (self.tip, source) {
            if theirs.height < ours.height {
                effects.push(Action::Report(Report::Alert(crate::action::Alert {
                    channel: None,
                    kind: crate::action::AlertKind::ChainSourceBehind,
                    message: format!(
                        "the chain source's tip {} ({}) is below the engine's {} ({}): it lost \
                         blocks or follows another chain; nothing new is seen until it catches up",
                        theirs.height, theirs.hash, ours.height, ours.hash
                    ),
                })));
            }
        }
        if !self.recent.is_empty() {
            effects.push(Action::SyncFrom {
                locator: self.locator(),
            });
        }
        effects.extend(self.node.pending_upstream());
        let tip = self.tip.map(|t| t.height);
        effects.extend(self.step_sweeper(SweeperInput::Resumed { tip }));
        let ids: Vec<ChannelId> = self.channels.keys().copied().collect();
        for id in ids {
            effects.extend(self.step_channel(id, ChannelInput::Resumed));
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
}
