//! The Bitcoin Core side: a regtest `libbitcoinkernel` context and chainstate manager.
//!
//! Every block goes through `ChainstateManager::process_block`. The kernel's answer is only
//! "accepted", "duplicate" or "rejected", and a block that fails while being *connected*
//! (scripts, double spends, BIP 68, amounts) is "accepted" (stored) and then marked invalid
//! without moving the tip. So the kernel's validation interface is hooked: its `BlockChecked`
//! callback reports the validation state of every block it checks, which gives the verdict and
//! its class ([`BlockRejectReason`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bitcoin::hashes::Hash;
use bitcoin::BlockHash;
use bitcoinkernel::prelude::*;
use bitcoinkernel::{
    BlockTreeEntry, BlockValidationResult, BlockValidationStateRef, ChainType, ChainstateManager,
    Context, ContextBuilder, ProcessBlockResult, ValidationMode,
};
use contractcourt_core::types::Height;

use super::tempdir::io_error;
use super::{BlockRejectReason, ChainError};

/// What the `BlockChecked` callback said about one block.
#[derive(Clone, Copy, Debug)]
struct Checked {
    valid: bool,
    reason: BlockRejectReason,
}

type CheckedMap = Arc<Mutex<BTreeMap<[u8; 32], Checked>>>;

/// The kernel: its context, chainstate manager and the verdicts its callback reported.
pub(super) struct Kernel {
    // Declared first so it is dropped before the context it was built from.
    chainman: ChainstateManager,
    _context: Context,
    checked: CheckedMap,
}

fn kernel_error(what: &str, e: impl std::fmt::Display) -> ChainError {
    ChainError::Kernel(format!("{what}: {}", e.to_string().to_lowercase()))
}

fn reason_from(result: BlockValidationResult) -> BlockRejectReason {
    match result {
        BlockValidationResult::Consensus => BlockRejectReason::Consensus,
        BlockValidationResult::CachedInvalid => BlockRejectReason::CachedInvalid,
        BlockValidationResult::InvalidHeader => BlockRejectReason::InvalidHeader,
        BlockValidationResult::Mutated => BlockRejectReason::Mutated,
        BlockValidationResult::MissingPrev => BlockRejectReason::MissingPrev,
        BlockValidationResult::InvalidPrev => BlockRejectReason::InvalidPrev,
        BlockValidationResult::TimeFuture => BlockRejectReason::TimeFuture,
        BlockValidationResult::HeaderLowWork => BlockRejectReason::HeaderLowWork,
        BlockValidationResult::Unset => BlockRejectReason::Unknown,
    }
}

fn entry_hash(entry: &BlockTreeEntry<'_>) -> BlockHash {
    BlockHash::from_byte_array(entry.block_hash().to_bytes())
}

impl Kernel {
    /// Start a regtest kernel with its data directory `data_dir` and block files in
    /// `data_dir/blocks`. With `in_memory`, the block index and chainstate databases live in
    /// memory (block files are still written).
    pub(super) fn open(data_dir: &Path, in_memory: bool) -> Result<Kernel, ChainError> {
        let blocks_dir = data_dir.join("blocks");
        std::fs::create_dir_all(&blocks_dir).map_err(|e| io_error(&blocks_dir, &e))?;
        let utf8 = |p: &Path| {
            p.to_str().map(str::to_owned).ok_or_else(|| ChainError::Io {
                path: p.to_path_buf(),
                message: "path is not valid utf-8".to_owned(),
            })
        };
        let (data, blocks) = (utf8(data_dir)?, utf8(&blocks_dir)?);

        let checked: CheckedMap = Arc::new(Mutex::new(BTreeMap::new()));
        let sink = Arc::clone(&checked);
        let context = ContextBuilder::new()
            .chain_type(ChainType::Regtest)
            .with_block_checked_validation(
                move |block: bitcoinkernel::Block, state: BlockValidationStateRef<'_>| {
                    let verdict = Checked {
                        valid: state.mode() == ValidationMode::Valid,
                        reason: reason_from(state.result()),
                    };
                    if let Ok(mut map) = sink.lock() {
                        map.insert(block.hash().to_bytes(), verdict);
                    }
                },
            )
            .build()
            .map_err(|e| kernel_error("creating the context", e))?;
        let chainman = ChainstateManager::builder(&context, &data, &blocks)
            .map_err(|e| kernel_error("configuring the chainstate manager", e))?
            .block_tree_db_in_memory(in_memory)
            .chainstate_db_in_memory(in_memory)
            .build()
            .map_err(|e| kernel_error("creating the chainstate manager", e))?;
        Ok(Kernel {
            chainman,
            _context: context,
            checked,
        })
    }

    /// Forget every verdict reported so far.
    pub(super) fn clear_verdicts(&self) {
        if let Ok(mut map) = self.checked.lock() {
            map.clear();
        }
    }

    /// The failure the kernel reported for `hash` since [`Kernel::clear_verdicts`], if any.
    pub(super) fn failure(&self, hash: &BlockHash) -> Option<BlockRejectReason> {
        let map = self.checked.lock().ok()?;
        map.get(&hash.to_byte_array())
            .filter(|c| !c.valid)
            .map(|c| c.reason)
    }

    /// Feed `block` to `process_block`. `Ok(None)`: the kernel accepted it (connected, or stored
    /// on a side branch: compare the tip); `Ok(Some(reason))`: it refused it, now or while
    /// connecting it.
    pub(super) fn process_block(
        &self,
        block: &bitcoin::Block,
    ) -> Result<Option<BlockRejectReason>, ChainError> {
        let bytes = bitcoin::consensus::serialize(block);
        let kernel_block =
            bitcoinkernel::Block::new(&bytes).map_err(|e| kernel_error("decoding a block", e))?;
        let hash = block.block_hash();
        match self.chainman.process_block(&kernel_block) {
            ProcessBlockResult::Rejected => Ok(Some(
                self.failure(&hash).unwrap_or(BlockRejectReason::Unknown),
            )),
            ProcessBlockResult::NewBlock | ProcessBlockResult::Duplicate => Ok(self.failure(&hash)),
        }
    }

    /// The height and hash of the kernel's active tip.
    pub(super) fn tip(&self) -> Result<(Height, BlockHash), ChainError> {
        let chain = self.chainman.active_chain();
        let height = u32::try_from(chain.height())
            .map_err(|_| ChainError::Kernel("the active chain is empty".to_owned()))?;
        let entry = chain
            .at_height(height as usize)
            .ok_or_else(|| ChainError::Kernel("the active tip has no entry".to_owned()))?;
        Ok((height, entry_hash(&entry)))
    }

    /// The hash of the active chain's block at `height`.
    pub(super) fn hash_at(&self, height: Height) -> Option<BlockHash> {
        let chain = self.chainman.active_chain();
        chain.at_height(height as usize).map(|e| entry_hash(&e))
    }

    /// The active chain's block at `height`, read back from the kernel's block files.
    pub(super) fn block_at(&self, height: Height) -> Result<bitcoin::Block, ChainError> {
        let chain = self.chainman.active_chain();
        let entry = chain.at_height(height as usize).ok_or_else(|| {
            ChainError::Inconsistent(format!("the kernel has no active block at {height}"))
        })?;
        let block = self
            .chainman
            .read_block_data(&entry)
            .map_err(|e| kernel_error("reading a block", e))?;
        let bytes = block
            .consensus_encode()
            .map_err(|e| kernel_error("encoding a block", e))?;
        bitcoin::consensus::deserialize(&bytes).map_err(|e| kernel_error("decoding a block", e))
    }
}
