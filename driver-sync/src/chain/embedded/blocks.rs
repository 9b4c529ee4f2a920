//! Blocks: mining on the tip, explicit blocks, forks, and keeping the embedded view (blocks,
//! UTXOs, confirmation heights, mempool) in step with the kernel's active chain.

use std::collections::BTreeSet;

use bitcoin::{Amount, BlockHash, Script, Transaction};
use contractcourt_core::event::Block;
use contractcourt_core::types::{BlockRef, Height};

use super::mining::{self, BlockTemplate, COINBASE_RESERVED_WEIGHT, MAX_BLOCK_WEIGHT};
use super::utxo::Overlay;
use super::{
    event_block, BlockRejectReason, BlockRejection, ChainBlock, ChainError, ChainUpdate,
    EmbeddedChain,
};

/// Apply `txs` to `view` at `height` and sum the fees of those whose inputs are all there.
fn block_fees(view: &mut Overlay<'_>, txs: &[Transaction], height: Height) -> Amount {
    let total = txs
        .iter()
        .filter_map(|tx| view.apply_tx(tx, height))
        .fold(0u64, u64::saturating_add);
    Amount::from_sat(total)
}

impl EmbeddedChain {
    /// The UTXO view as it was when the active chain's block at `height` was the tip.
    fn view_at(&self, height: Height) -> Overlay<'_> {
        let mut view = Overlay::new(&self.utxos);
        for undone in self.blocks.iter().skip(height as usize + 1).rev() {
            view.undo(&undone.block, &undone.undo);
        }
        view
    }

    fn active_height_of(&self, hash: &BlockHash) -> Option<Height> {
        self.blocks
            .iter()
            .rposition(|b| b.hash == *hash)
            .map(|h| h as Height)
    }

    fn rejection(&self, block: &bitcoin::Block, reason: BlockRejectReason) -> BlockRejection {
        let parent = self.active_height_of(&block.header.prev_blockhash);
        BlockRejection {
            hash: block.block_hash(),
            height: parent.map_or(0, |h| h + 1),
            reason,
            suspect: parent.and_then(|p| self.diagnose(self.view_at(p), block, p + 1)),
        }
    }

    /// Build and mine, without submitting, a block on the tip holding exactly `txs` after the
    /// coinbase, which pays the subsidy plus the fees of the transactions whose inputs exist
    /// to `payout`. Whether the block is valid is for Bitcoin Core to say
    /// ([`EmbeddedChain::submit_block`]); tests may alter it first.
    pub fn build_block(
        &self,
        txs: Vec<Transaction>,
        payout: &Script,
    ) -> Result<bitcoin::Block, ChainError> {
        let height = self.height() + 1;
        let fees = block_fees(&mut Overlay::new(&self.utxos), &txs, height);
        mining::assemble(BlockTemplate {
            prev_hash: self.tip().hash,
            height,
            time: self.block_time_at(height),
            txs,
            payout,
            fees,
            branch: 0,
        })
    }

    /// Feed any block to Bitcoin Core and follow its active chain. Returns the resulting
    /// changes: none if the kernel stored the block on a side branch, a reorg if it made the
    /// kernel switch. A refusal is [`ChainError::BlockRejected`] (the chain does not move).
    pub fn submit_block(&mut self, block: &bitcoin::Block) -> Result<Vec<ChainUpdate>, ChainError> {
        self.submit_journaled(block, true)
    }

    /// [`EmbeddedChain::submit_block`]; a block the kernel took is journaled, and synced to
    /// disk unless `sync` is false (the caller syncs before it returns).
    fn submit_journaled(
        &mut self,
        block: &bitcoin::Block,
        sync: bool,
    ) -> Result<Vec<ChainUpdate>, ChainError> {
        self.kernel.clear_verdicts();
        let verdict = self.kernel.process_block(block)?;
        let journaled = match (&mut self.journal, verdict) {
            (Some(journal), None) if sync => journal.append(block).and_then(|()| journal.sync()),
            (Some(journal), None) => journal.append(block),
            _ => Ok(()),
        };
        let updates = self.sync_with_kernel()?;
        journaled?;
        match verdict {
            Some(reason) => Err(ChainError::BlockRejected(Box::new(
                self.rejection(block, reason),
            ))),
            None => Ok(updates),
        }
    }

    /// Submit a block built on the tip; it counts only if the kernel makes it its tip.
    fn connect_built(&mut self, block: &bitcoin::Block, sync: bool) -> Result<Block, ChainError> {
        let hash = block.block_hash();
        let updates = self.submit_journaled(block, sync)?;
        match updates.last() {
            Some(ChainUpdate::Connected(connected)) if connected.hash == hash => {
                Ok(connected.clone())
            }
            _ => Err(ChainError::BlockRejected(Box::new(
                self.rejection(block, BlockRejectReason::NotConnected),
            ))),
        }
    }

    /// Mine `n` blocks on the tip, each filled from the mempool (highest ancestor fee rate
    /// first, parents before children, up to the block weight) and paying `payout`. Each block
    /// must be accepted by Bitcoin Core and become its tip; on a refusal the blocks mined
    /// before it stay connected ([`EmbeddedChain::tip`]).
    pub fn mine_blocks(&mut self, n: u32, payout: &Script) -> Result<Vec<Block>, ChainError> {
        let mut mined = Vec::with_capacity(n as usize);
        let mut result = Ok(());
        for _ in 0..n {
            let txs = self
                .mempool
                .select(MAX_BLOCK_WEIGHT - COINBASE_RESERVED_WEIGHT);
            match self
                .build_block(txs, payout)
                .and_then(|block| self.connect_built(&block, false))
            {
                Ok(block) => mined.push(block),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // One sync to disk for the journal of all of them.
        if let Some(journal) = &mut self.journal {
            journal.sync()?;
        }
        result.map(|()| mined)
    }

    /// Mine one block on the tip holding exactly `txs` (no mempool transactions), paying
    /// `payout`. Bitcoin Core validates it: an invalid transaction (bad signature, CSV spent
    /// early, double spend, immature coinbase, ...) makes it refuse the block with
    /// [`ChainError::BlockRejected`], and the tip does not move.
    pub fn mine_block_with(
        &mut self,
        txs: Vec<Transaction>,
        payout: &Script,
    ) -> Result<Block, ChainError> {
        let block = self.build_block(txs, payout)?;
        self.connect_built(&block, true)
    }

    /// Reorganise: mine a fork on the active chain's block at `fork_height`, one block per
    /// entry of `blocks` holding exactly those transactions (no mempool transactions), each
    /// coinbase paying `payout`, feed the blocks to Bitcoin Core and let it switch to the
    /// heavier fork. Returns the changes in order: the old blocks disconnected from the tip
    /// down, then the fork's blocks connected. Transactions of disconnected blocks that the
    /// fork does not contain go back to the mempool if still valid.
    ///
    /// The fork must end above the tip (more work). Fork blocks carry a fresh branch number
    /// in their coinbase, so they never coincide with blocks of another branch. If Bitcoin
    /// Core refuses a fork block (or stays on its chain), the error is
    /// [`ChainError::ForkRejected`] with whatever changes did happen.
    pub fn reorg(
        &mut self,
        fork_height: Height,
        blocks: Vec<Vec<Transaction>>,
        payout: &Script,
    ) -> Result<Vec<ChainUpdate>, ChainError> {
        let tip_height = self.height();
        if fork_height > tip_height {
            return Err(ChainError::ForkPointAboveTip {
                fork_height,
                tip_height,
            });
        }
        if blocks.is_empty() {
            return Err(ChainError::EmptyFork);
        }
        let fork_tip_height =
            fork_height.saturating_add(u32::try_from(blocks.len()).unwrap_or(u32::MAX));
        if fork_tip_height <= tip_height {
            return Err(ChainError::ForkNotHeavier {
                fork_tip_height,
                tip_height,
            });
        }
        self.last_branch += 1;
        let branch = self.last_branch;

        let mut built: Vec<bitcoin::Block> = Vec::with_capacity(blocks.len());
        {
            let mut view = self.view_at(fork_height);
            let mut prev_hash = self.blocks[fork_height as usize].hash;
            for (height, txs) in (fork_height + 1..).zip(blocks) {
                let fees = block_fees(&mut view, &txs, height);
                let block = mining::assemble(BlockTemplate {
                    prev_hash,
                    height,
                    time: self.block_time_at(height),
                    txs,
                    payout,
                    fees,
                    branch,
                })?;
                view.apply_tx(&block.txdata[0], height);
                prev_hash = block.block_hash();
                built.push(block);
            }
        }

        self.kernel.clear_verdicts();
        let mut refused = None;
        let mut journaled = Ok(());
        for (index, block) in built.iter().enumerate() {
            if let Some(reason) = self.kernel.process_block(block)? {
                refused = Some((index, reason));
                break;
            }
            if let (Some(journal), true) = (&mut self.journal, journaled.is_ok()) {
                journaled = journal.append(block);
            }
        }
        if let (Some(journal), true) = (&mut self.journal, journaled.is_ok()) {
            journaled = journal.sync();
        }
        // A fork block that failed while being connected was stored first: find its verdict.
        if refused.is_none() {
            refused = built.iter().enumerate().find_map(|(index, block)| {
                self.kernel
                    .failure(&block.block_hash())
                    .map(|reason| (index, reason))
            });
        }
        let applied = self.sync_with_kernel()?;
        journaled?;
        let fork_tip = built.last().map(bitcoin::Block::block_hash);
        if refused.is_none() && fork_tip == Some(self.tip().hash) {
            return Ok(applied);
        }
        let (index, reason) = refused.unwrap_or((built.len() - 1, BlockRejectReason::NotConnected));
        let height = fork_height + 1 + index as Height;
        let mut view = self.view_at(fork_height);
        for (h, block) in (fork_height + 1..).zip(&built[..index]) {
            view.apply_block(block, h);
        }
        let rejection = BlockRejection {
            hash: built[index].block_hash(),
            height,
            reason,
            suspect: self.diagnose(view, &built[index], height),
        };
        Err(ChainError::ForkRejected {
            rejection: Box::new(rejection),
            applied,
        })
    }

    /// Make the embedded view follow the kernel's active chain: disconnect down to the last
    /// common block, connect the kernel's blocks (read back from its block files) up to its
    /// tip, then rebuild the mempool.
    pub(super) fn sync_with_kernel(&mut self) -> Result<Vec<ChainUpdate>, ChainError> {
        let (kernel_height, kernel_tip) = self.kernel.tip()?;
        if kernel_height == self.height() && kernel_tip == self.tip().hash {
            return Ok(Vec::new());
        }
        let mut fork = kernel_height.min(self.height());
        while fork > 0 && self.kernel.hash_at(fork) != Some(self.blocks[fork as usize].hash) {
            fork -= 1;
        }

        let mut updates = Vec::new();
        let mut disconnected = Vec::new();
        while self.height() > fork {
            let height = self.height();
            let Some(old) = self.blocks.pop() else {
                break;
            };
            self.utxos.undo(&old.block, &old.undo);
            for tx in &old.block.txdata {
                let txid = tx.compute_txid();
                if self.tx_heights.get(&txid) == Some(&height) {
                    self.tx_heights.remove(&txid);
                }
            }
            updates.push(ChainUpdate::Disconnected(BlockRef {
                height,
                hash: old.hash,
            }));
            self.stale.insert(old.hash, old.block.header);
            disconnected.push(old.block);
        }

        let mut spent = BTreeSet::new();
        for height in fork + 1..=kernel_height {
            let block = self.kernel.block_at(height)?;
            if block.header.prev_blockhash != self.tip().hash {
                return Err(ChainError::Inconsistent(format!(
                    "the kernel's block at {height} does not extend the view's tip"
                )));
            }
            let undo = self.utxos.apply(&block, height)?;
            for tx in &block.txdata {
                self.tx_heights.insert(tx.compute_txid(), height);
                if !tx.is_coinbase() {
                    spent.extend(tx.input.iter().map(|i| i.previous_output));
                }
            }
            updates.push(ChainUpdate::Connected(event_block(&block, height)));
            self.blocks.push(ChainBlock {
                hash: block.block_hash(),
                block,
                undo,
            });
        }

        // Back to the mempool in chain order (lowest block first), so parents come first.
        let resurrected: Vec<Transaction> = disconnected
            .into_iter()
            .rev()
            .flat_map(|b| b.txdata.into_iter().skip(1))
            .collect();
        self.rebuild_mempool(resurrected, &spent);
        Ok(updates)
    }
}
