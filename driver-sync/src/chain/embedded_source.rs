//! The embedded chain ([`super::embedded`]) as a polled chain source and broadcaster, for
//! `contractcourt serve --regtest DIR`: blocks through the fork-point walk of [`super::sync`]
//! (the embedded chain knows only its active chain, so the parent of an engine block the source
//! did not deliver itself is [`SyncError::UnknownBlock`] in a reorg right after a restart), its
//! mempool's changes as mempool events, broadcasts to its mempool with Bitcoin Core's reject
//! code first (`<code>, <detail>`, as bitcoind words it).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bitcoin::block::Header;
use bitcoin::{BlockHash, Transaction};
use contractcourt_core::event::{BroadcastOutcome, Event, FeeConditions};
use contractcourt_core::types::{BlockRef, Height};

use super::embedded::{EmbeddedChain, MempoolReject};
use super::fees::LiveSource;
use super::sync::{self, BlockClient, Delivered, SyncError};
use crate::driver::io::lock;
use crate::driver::{Broadcaster, ChainSource, SourceError};

/// The embedded chain as a source. See the module documentation.
pub struct EmbeddedSource {
    chain: Arc<Mutex<EmbeddedChain>>,
    first_height: Height,
    delivered: Delivered,
}

impl std::fmt::Debug for EmbeddedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSource").finish_non_exhaustive()
    }
}

impl EmbeddedSource {
    /// A source over `chain` (shared: a caller may mine blocks on it meanwhile).
    pub fn new(chain: Arc<Mutex<EmbeddedChain>>) -> EmbeddedSource {
        EmbeddedSource {
            chain,
            first_height: 0,
            delivered: Delivered::default(),
        }
    }
}

/// [`ChainSource::blocks_after`] over the embedded chain `chain`, serving blocks from
/// `first_height` on: the fork-point walk of [`super::sync`], the parents of the engine's stale
/// blocks found in `delivered` or among the blocks a reorg left behind.
pub(crate) fn blocks_after(
    chain: &Mutex<EmbeddedChain>,
    locator: &[BlockRef],
    first_height: Height,
    delivered: &mut Delivered,
) -> Result<Vec<Event>, SourceError> {
    sync::blocks_after(&mut Locked(chain), locator, first_height, delivered)
        .map_err(|e: SyncError<Infallible>| -> SourceError { Box::new(e) })
}

/// The chain, locked for one walk.
struct Locked<'a>(&'a Mutex<EmbeddedChain>);

impl BlockClient for Locked<'_> {
    type Error = Infallible;

    fn best_tip(&mut self) -> Result<BlockRef, Infallible> {
        Ok(lock(self.0).tip())
    }

    fn hash_at(&mut self, height: Height) -> Result<Option<BlockHash>, Infallible> {
        Ok(lock(self.0).block_hash_at(height))
    }

    fn header(&mut self, hash: &BlockHash) -> Result<Option<Header>, Infallible> {
        Ok(lock(self.0).header(hash))
    }

    fn block(&mut self, hash: &BlockHash) -> Result<Option<bitcoin::Block>, Infallible> {
        let chain = lock(self.0);
        let height = chain.height();
        Ok((0..=height)
            .rev()
            .filter(|h| chain.block_hash_at(*h) == Some(*hash))
            .find_map(|h| chain.raw_block_at(h).cloned()))
    }
}

/// bitcoind's wording of a mempool refusal: the reject code, a comma, the detail.
fn reason(e: &MempoolReject) -> String {
    e.reason()
}

impl ChainSource for EmbeddedSource {
    fn tip(&mut self) -> Result<Option<BlockRef>, SourceError> {
        Ok(Some(lock(&self.chain).tip()))
    }

    fn blocks_after(&mut self, locator: &[BlockRef]) -> Result<Vec<Event>, SourceError> {
        blocks_after(&self.chain, locator, self.first_height, &mut self.delivered)
    }

    fn mempool_events(&mut self) -> Result<Vec<Event>, SourceError> {
        Ok(lock(&self.chain)
            .take_mempool_changes()
            .iter()
            .map(|change| change.to_event())
            .collect())
    }
}

impl Broadcaster for EmbeddedSource {
    fn broadcast(&mut self, tx: &Transaction) -> BroadcastOutcome {
        match lock(&self.chain).submit(tx.clone()) {
            Ok(_) => BroadcastOutcome::Accepted,
            Err(e) => BroadcastOutcome::Rejected { reason: reason(&e) },
        }
    }

    fn broadcast_package(&mut self, parent: &Transaction, child: &Transaction) -> BroadcastOutcome {
        match lock(&self.chain).submit_package(parent.clone(), child.clone()) {
            Ok(_) => BroadcastOutcome::Accepted,
            Err(e) => BroadcastOutcome::Rejected { reason: reason(&e) },
        }
    }
}

impl LiveSource for EmbeddedSource {
    /// The embedded chain has no fee market: no conditions (the core prices at its fallback).
    fn fee_conditions(&mut self) -> Result<Option<FeeConditions>, SourceError> {
        Ok(None)
    }

    fn start_at(&mut self, height: Height) {
        self.first_height = height;
    }
}
