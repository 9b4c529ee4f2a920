//! The outside world the core's actions need, as traits: one per kind of party the driver talks
//! to, bundled in [`Io`].
//!
//! Every trait only *answers*: results go back to the core raw (a broadcast rejection is the
//! source's own text, a signer's refusal its own reason), and the core decides what they mean.
//! Each is implemented for `Arc<Mutex<T>>` too, so a caller can keep a handle on a part it gave
//! the driver (to add a channel's keys to a signer, to mine a block in a test chain).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bitcoin::Transaction;
use contractcourt_core::action::{FailReason, FundingRequest, Report};
use contractcourt_core::bolt3::PaymentPreimage;
use contractcourt_core::event::{BroadcastOutcome, Event, FundingOutcome};
use contractcourt_core::types::{BlockRef, ChannelId, ClaimId, HtlcKey};

pub use crate::signer::Signer;

/// Why a chain source could not answer (its own error, kept whole).
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where transactions go: a node's mempool, through whatever API it has.
pub trait Broadcaster: Send {
    /// Offer one transaction. A rejection carries the source's own reason, untouched.
    fn broadcast(&mut self, tx: &Transaction) -> BroadcastOutcome;
    /// Offer a parent and the child paying for it as a package. A rejection carries the
    /// source's own reason, untouched.
    fn broadcast_package(&mut self, parent: &Transaction, child: &Transaction) -> BroadcastOutcome;
}

/// The on-chain wallet that funds claims (CPFP children, zero-fee HTLC transactions).
pub trait Wallet: Send {
    /// Offer confirmed inputs (with their satisfaction weight) and at most one change output
    /// for `request`, or say why not. The core assembles, checks and persists the transaction.
    fn fund(&mut self, request: &FundingRequest) -> FundingOutcome;
    /// A claim has ended: the inputs lent to it may be used again.
    fn release(&mut self, claim: ClaimId);
    /// The confirmed balance, in satoshis, that could fund claims (lent coins included), for
    /// the engine's fee-reserve check; `None` if the wallet does not say. The default says not.
    fn confirmed_balance(&mut self) -> Option<u64> {
        None
    }
}

/// Where blocks come from.
pub trait ChainSource: Send {
    /// The best chain's tip, if the source has one (for `Event::Resumed`).
    fn tip(&mut self) -> Result<Option<BlockRef>, SourceError>;
    /// The chain events that take an engine whose recent blocks are `locator` (newest first,
    /// as the core's `SyncFrom` gives it) to the best chain: first a `BlockDisconnected` for each
    /// of the engine's blocks above the fork point — the newest locator entry still on the best
    /// chain — from the tip down, then a `BlockConnected` for each best-chain block above it,
    /// oldest first. An empty locator asks for the whole chain the source serves.
    fn blocks_after(&mut self, locator: &[BlockRef]) -> Result<Vec<Event>, SourceError>;
    /// The mempool's changes since the last call, as `MempoolTx` (a transaction entered, with
    /// its fee and virtual size) and `MempoolRemoved` events, for sources that follow a mempool.
    /// The default follows none: no events.
    fn mempool_events(&mut self) -> Result<Vec<Event>, SourceError> {
        Ok(Vec::new())
    }
}

/// What the Lightning node receives from the engine.
pub trait NodeHandle: Send {
    /// Update `update_id` of `channel` is durable: the node may now send the
    /// `commitment_signed` or `revoke_and_ack` that depends on it.
    fn update_persisted(&mut self, channel: ChannelId, update_id: u64);
    /// Settle the incoming HTLC `htlc` upstream with `preimage` (at least once: the node
    /// deduplicates and answers with `Event::UpstreamAcked`).
    fn settle_upstream(&mut self, htlc: HtlcKey, preimage: PaymentPreimage);
    /// Fail the incoming HTLC `htlc` upstream (at least once, as for settling).
    fn fail_upstream(&mut self, htlc: HtlcKey, reason: &FailReason);
    /// A report for the operator.
    fn report(&mut self, report: &Report);
}

/// Everything a driver talks to besides its store.
pub struct Io {
    /// Signs the core's sign requests.
    pub signer: Box<dyn Signer>,
    /// Broadcasts transactions.
    pub broadcaster: Box<dyn Broadcaster>,
    /// Funds claims.
    pub wallet: Box<dyn Wallet>,
    /// Serves blocks.
    pub chain: Box<dyn ChainSource>,
    /// The Lightning node.
    pub node: Box<dyn NodeHandle>,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io").finish_non_exhaustive()
    }
}

/// Lock a shared part. A panic in an earlier call poisons the mutex; the part is used anyway
/// (dropping a node notification or a broadcast would be worse than using a part whose last call
/// did not finish).
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Broadcaster + ?Sized> Broadcaster for Arc<Mutex<T>> {
    fn broadcast(&mut self, tx: &Transaction) -> BroadcastOutcome {
        lock(self).broadcast(tx)
    }
    fn broadcast_package(&mut self, parent: &Transaction, child: &Transaction) -> BroadcastOutcome {
        lock(self).broadcast_package(parent, child)
    }
}

impl<T: Wallet + ?Sized> Wallet for Arc<Mutex<T>> {
    fn fund(&mut self, request: &FundingRequest) -> FundingOutcome {
        lock(self).fund(request)
    }
    fn release(&mut self, claim: ClaimId) {
        lock(self).release(claim)
    }
}

impl<T: ChainSource + ?Sized> ChainSource for Arc<Mutex<T>> {
    fn tip(&mut self) -> Result<Option<BlockRef>, SourceError> {
        lock(self).tip()
    }
    fn blocks_after(&mut self, locator: &[BlockRef]) -> Result<Vec<Event>, SourceError> {
        lock(self).blocks_after(locator)
    }
    fn mempool_events(&mut self) -> Result<Vec<Event>, SourceError> {
        lock(self).mempool_events()
    }
}

impl<T: NodeHandle + ?Sized> NodeHandle for Arc<Mutex<T>> {
    fn update_persisted(&mut self, channel: ChannelId, update_id: u64) {
        lock(self).update_persisted(channel, update_id)
    }
    fn settle_upstream(&mut self, htlc: HtlcKey, preimage: PaymentPreimage) {
        lock(self).settle_upstream(htlc, preimage)
    }
    fn fail_upstream(&mut self, htlc: HtlcKey, reason: &FailReason) {
        lock(self).fail_upstream(htlc, reason)
    }
    fn report(&mut self, report: &Report) {
        lock(self).report(report)
    }
}
