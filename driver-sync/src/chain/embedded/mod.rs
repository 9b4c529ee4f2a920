//! The embedded chain: an in-process regtest chain whose every block is validated by Bitcoin
//! Core (`libbitcoinkernel`, through the `bitcoinkernel` crate).
//!
//! [`EmbeddedChain`] mines blocks (coinbase with the BIP 34 height and the BIP 141 witness
//! commitment, header times `genesis + 600 · height`, regtest proof of work) and hands each one
//! to the kernel's `process_block`; a block counts only if Bitcoin Core accepts it *and* makes
//! it its tip. Scripts, amounts, absolute and relative timelocks (BIP 65/68/112), double spends
//! and coinbase maturity are therefore judged by Bitcoin Core itself. Reorgs are real: a heavier
//! fork built on an earlier block is fed to the kernel, which switches its active chain; the
//! embedded chain then reports what was disconnected and connected ([`ChainUpdate`]).
//!
//! In front of it sits a mempool ([`EmbeddedChain::submit`], [`EmbeddedChain::submit_package`])
//! that verifies every input with Bitcoin Core's script interpreter, applies the core's pure
//! finality and standardness rules ([`contractcourt_core::policy`]) and replace-by-fee, and
//! refuses with a typed [`MempoolReject`]. A [`TestWallet`] mines coinbases to a P2WPKH key
//! derived from a seed and funds tests and CPFP children.
//!
//! Everything is deterministic: the same calls with the same seeds give the same block hashes.

mod accept;
mod blocks;
mod error;
mod journal;
mod kernel;
mod mempool;
mod mining;
mod node_wallet;
mod script;
mod tempdir;
mod truc;
mod utxo;
mod wallet;

#[cfg(test)]
mod taproot_anchors;
#[cfg(test)]
mod taproot_htlc_claims;
#[cfg(test)]
mod taproot_justice;
#[cfg(test)]
mod taproot_test_support;
#[cfg(test)]
mod taproot_vectors;

use std::collections::BTreeMap;
use std::path::Path;

use bitcoin::{BlockHash, OutPoint, Script, TxOut, Txid};
use contractcourt_core::event::{Block, Event};
use contractcourt_core::policy::PolicyConfig;
use contractcourt_core::types::{BlockRef, Height, RawTx};
use serde::{Deserialize, Serialize};

pub use accept::PackageAccepted;
pub use error::{BlockRejectReason, BlockRejection, ChainError, MempoolReject, TxFault};
pub use mempool::{MempoolChange, MempoolTx};
pub use mining::{
    block_subsidy, block_time, BLOCK_SPACING_SECS, COINBASE_MATURITY, MAX_BLOCK_WEIGHT,
    REGTEST_BITS, REGTEST_HALVING_INTERVAL,
};
pub use node_wallet::{ChainWallet, P2WPKH_SATISFACTION_WEIGHT};
pub use utxo::Utxo;
pub use wallet::{TestWallet, WalletError, WalletUtxo};

use journal::Journal;
use kernel::Kernel;
use mempool::Mempool;
use tempdir::TempDir;
use utxo::{Undo, UtxoSet};

/// The mempool's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainConfig {
    /// Standardness and relay fee rules (Bitcoin Core's defaults).
    pub policy: PolicyConfig,
    /// `-incrementalrelayfee` in sat per 1000 vB (default 1000): what a replacement must add
    /// per vB of its own size on top of the fees it evicts.
    pub incremental_relay_fee_sat_per_kvb: u64,
    /// The most transactions one replacement may evict (default 100).
    pub max_replacements: usize,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            policy: PolicyConfig::default(),
            incremental_relay_fee_sat_per_kvb: 1000,
            max_replacements: 100,
        }
    }
}

/// A change of the active chain, in the order a driver feeds it to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainUpdate {
    /// The tip block was disconnected; the new tip is its parent.
    Disconnected(BlockRef),
    /// A block was connected on top of the tip.
    Connected(Block),
}

impl ChainUpdate {
    /// The core's event for it ([`Event::BlockDisconnected`] or [`Event::BlockConnected`]).
    pub fn to_event(&self) -> Event {
        match self {
            ChainUpdate::Disconnected(block) => Event::BlockDisconnected { block: *block },
            ChainUpdate::Connected(block) => Event::BlockConnected(block.clone()),
        }
    }
}

/// A block of the active chain with the coins it spent.
struct ChainBlock {
    block: bitcoin::Block,
    hash: BlockHash,
    undo: Undo,
}

/// An in-process regtest chain validated by Bitcoin Core, with a mempool. See the module
/// documentation.
pub struct EmbeddedChain {
    // The kernel is declared first so that it shuts down before a temporary directory goes.
    kernel: Kernel,
    config: ChainConfig,
    genesis_time: u32,
    /// The active chain, indexed by height (genesis at 0), mirroring the kernel's.
    blocks: Vec<ChainBlock>,
    utxos: UtxoSet,
    /// Confirmation height of every transaction of the active chain.
    tx_heights: BTreeMap<Txid, Height>,
    mempool: Mempool,
    /// Mempool changes not yet taken.
    changes: Vec<MempoolChange>,
    /// The last branch number given to a fork (see [`EmbeddedChain::reorg`]).
    last_branch: u32,
    /// The headers of blocks the kernel took that are no longer on the active chain (also
    /// those of a journal replayed on open): a chain source finds the parents of an engine's
    /// stale blocks here after a reorg, even one the engine has not yet been told of.
    stale: BTreeMap<BlockHash, bitcoin::block::Header>,
    /// The block journal of a chain kept on disk (none for a temporary chain).
    journal: Option<Journal>,
    _temp: Option<TempDir>,
}

impl std::fmt::Debug for EmbeddedChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedChain")
            .field("tip", &self.tip())
            .field("mempool_len", &self.mempool.len())
            .finish_non_exhaustive()
    }
}

fn event_block(block: &bitcoin::Block, height: Height) -> Block {
    Block {
        height,
        hash: block.block_hash(),
        prev_hash: block.header.prev_blockhash,
        time: block.header.time,
        txs: block.txdata.iter().cloned().map(RawTx).collect(),
    }
}

impl EmbeddedChain {
    /// Open a regtest chain whose kernel keeps its data in `data_dir` (block files in
    /// `data_dir/blocks`), with the default [`ChainConfig`]. An existing chain there is loaded,
    /// also one a killed process left: every block taken is journaled (synced to disk) before
    /// the call that submitted it returns, and the journal is fed to the kernel again on open
    /// (the kernel itself keeps only what it flushed). Then the kernel's active chain is read
    /// back to rebuild the UTXO view and the confirmation heights; the mempool starts empty.
    pub fn new(data_dir: &Path) -> Result<EmbeddedChain, ChainError> {
        Self::open(data_dir, ChainConfig::default())
    }

    /// [`EmbeddedChain::new`] with a chosen configuration.
    pub fn open(data_dir: &Path, config: ChainConfig) -> Result<EmbeddedChain, ChainError> {
        std::fs::create_dir_all(data_dir).map_err(|e| tempdir::io_error(data_dir, &e))?;
        let kernel = Kernel::open(data_dir, false)?;
        let (journal, journaled) = Journal::open(data_dir)?;
        // In their original order, so that the kernel settles on the same active chain; blocks
        // it still has are duplicates, blocks it refused once it refuses again.
        let mut last_branch = 0;
        for block in &journaled {
            kernel.process_block(block)?;
            last_branch = last_branch.max(mining::branch_of(block).unwrap_or(0));
        }
        kernel.clear_verdicts();
        let mut chain = Self::start(kernel, config, None)?;
        chain.journal = Some(journal);
        chain.last_branch = last_branch;
        let active: std::collections::BTreeSet<BlockHash> =
            chain.blocks.iter().map(|b| b.hash).collect();
        for block in &journaled {
            let hash = block.block_hash();
            if !active.contains(&hash) {
                chain.stale.insert(hash, block.header);
            }
        }
        Ok(chain)
    }

    /// A fresh chain in a temporary directory (removed when the chain is dropped), with the
    /// kernel's databases in memory.
    pub fn new_temp() -> Result<EmbeddedChain, ChainError> {
        Self::new_temp_with(ChainConfig::default())
    }

    /// [`EmbeddedChain::new_temp`] with a chosen configuration.
    pub fn new_temp_with(config: ChainConfig) -> Result<EmbeddedChain, ChainError> {
        let temp = TempDir::new()?;
        let kernel = Kernel::open(temp.path(), true)?;
        Self::start(kernel, config, Some(temp))
    }

    fn start(
        kernel: Kernel,
        config: ChainConfig,
        temp: Option<TempDir>,
    ) -> Result<EmbeddedChain, ChainError> {
        let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
        let hash = genesis.block_hash();
        if kernel.hash_at(0) != Some(hash) {
            return Err(ChainError::Inconsistent(
                "the kernel's genesis block is not regtest's".to_owned(),
            ));
        }
        let mut chain = EmbeddedChain {
            kernel,
            config,
            genesis_time: genesis.header.time,
            // Bitcoin Core never adds the genesis coinbase to the UTXO set.
            blocks: vec![ChainBlock {
                block: genesis,
                hash,
                undo: Undo::new(),
            }],
            utxos: UtxoSet::default(),
            tx_heights: BTreeMap::new(),
            mempool: Mempool::default(),
            changes: Vec::new(),
            last_branch: 0,
            stale: BTreeMap::new(),
            journal: None,
            _temp: temp,
        };
        chain.sync_with_kernel()?;
        chain.changes.clear();
        Ok(chain)
    }

    /// The configuration.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The tip's height.
    pub fn height(&self) -> Height {
        (self.blocks.len() - 1) as Height
    }

    /// The tip.
    pub fn tip(&self) -> BlockRef {
        BlockRef {
            height: self.height(),
            hash: self.blocks[self.blocks.len() - 1].hash,
        }
    }

    /// The regtest genesis block's hash.
    pub fn genesis_hash(&self) -> BlockHash {
        self.blocks[0].hash
    }

    /// The header time of the block at `height` on this chain.
    pub fn block_time_at(&self, height: Height) -> u32 {
        block_time(self.genesis_time, height)
    }

    /// The active chain's block at `height`, as the core's [`Block`].
    pub fn block_at(&self, height: Height) -> Option<Block> {
        self.blocks
            .get(height as usize)
            .map(|b| event_block(&b.block, height))
    }

    /// The active chain's block at `height`.
    pub fn raw_block_at(&self, height: Height) -> Option<&bitcoin::Block> {
        self.blocks.get(height as usize).map(|b| &b.block)
    }

    /// The hash of the active chain's block at `height`.
    pub fn block_hash_at(&self, height: Height) -> Option<BlockHash> {
        self.blocks.get(height as usize).map(|b| b.hash)
    }

    /// The header of block `hash`: of the active chain, or of a block the kernel took that a
    /// reorg left behind (kept across a reopen through the journal).
    pub fn header(&self, hash: &BlockHash) -> Option<bitcoin::block::Header> {
        self.blocks
            .iter()
            .rev()
            .find(|b| b.hash == *hash)
            .map(|b| b.block.header)
            .or_else(|| self.stale.get(hash).copied())
    }

    /// The unspent output `outpoint` of the active chain (mempool spends not considered).
    pub fn utxo(&self, outpoint: &OutPoint) -> Option<Utxo> {
        self.utxos.get(outpoint).cloned()
    }

    /// Every unspent output of the active chain paying `script_pubkey`, in outpoint order.
    pub fn utxos_for_script(&self, script_pubkey: &Script) -> Vec<(OutPoint, Utxo)> {
        self.utxos
            .iter()
            .filter(|(_, coin)| coin.txout.script_pubkey == *script_pubkey)
            .map(|(outpoint, coin)| (*outpoint, coin.clone()))
            .collect()
    }

    /// The output `outpoint` if it is unspent in the chain or an output of a mempool
    /// transaction (whether or not a mempool transaction spends it).
    pub fn prevout(&self, outpoint: &OutPoint) -> Option<TxOut> {
        self.mempool
            .output(outpoint)
            .cloned()
            .or_else(|| self.utxos.get(outpoint).map(|c| c.txout.clone()))
    }

    /// The height at which `txid` confirmed in the active chain.
    pub fn tx_confirmation_height(&self, txid: &Txid) -> Option<Height> {
        self.tx_heights.get(txid).copied()
    }

    /// The mempool transaction `txid`.
    pub fn mempool_tx(&self, txid: &Txid) -> Option<MempoolTx> {
        self.mempool.get(txid).cloned()
    }

    /// Every mempool transaction with its fee and virtual size, in arrival order (parents
    /// before children).
    pub fn mempool_txs(&self) -> Vec<MempoolTx> {
        self.mempool.in_order().into_iter().cloned().collect()
    }

    /// The mempool transaction spending `outpoint`, if any.
    pub fn mempool_spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.mempool.spender(outpoint)
    }

    /// The mempool changes since the last call, in order (for a driver's `MempoolTx` and
    /// `MempoolRemoved` events).
    pub fn take_mempool_changes(&mut self) -> Vec<MempoolChange> {
        std::mem::take(&mut self.changes)
    }
}
