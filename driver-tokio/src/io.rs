//! The outside world, async: the same parties as the blocking driver's
//! [`contractcourt_sync::driver::io`], with methods that return futures.
//!
//! The traits return boxed futures ([`BoxFuture`]) so they can be used as trait objects in
//! [`AsyncIo`]. [`Blocking`] runs any blocking implementation (the sync crate's traits) on tokio's
//! blocking threads; [`InMemorySigner`] signs inline (it only computes).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bitcoin::Transaction;
use contractcourt_core::action::{FailReason, FundingRequest, Report, SignRequest};
use contractcourt_core::bolt3::PaymentPreimage;
use contractcourt_core::event::{BroadcastOutcome, Event, FundingOutcome, SignOutcome};
use contractcourt_core::types::{BlockRef, ChannelId, ClaimId, HtlcKey};
use contractcourt_sync::driver::io::{Broadcaster, ChainSource, NodeHandle, SourceError, Wallet};
use contractcourt_sync::signer::{InMemorySigner, Signer};
use tokio::task::JoinError;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Signs the core's sign requests (see [`contractcourt_sync::signer::Signer`]).
pub trait AsyncSigner: Send {
    /// Sign every input of `request`, or refuse.
    fn sign<'a>(&'a mut self, request: &'a SignRequest) -> BoxFuture<'a, SignOutcome>;
}

/// Broadcasts transactions; rejections carry the source's own reason, untouched.
pub trait AsyncBroadcaster: Send {
    /// Offer one transaction.
    fn broadcast<'a>(&'a mut self, tx: &'a Transaction) -> BoxFuture<'a, BroadcastOutcome>;
    /// Offer a parent and the child paying for it as a package.
    fn broadcast_package<'a>(
        &'a mut self,
        parent: &'a Transaction,
        child: &'a Transaction,
    ) -> BoxFuture<'a, BroadcastOutcome>;
}

/// Funds claims (see [`contractcourt_sync::driver::io::Wallet`]).
pub trait AsyncWallet: Send {
    /// Offer confirmed inputs and at most one change output for `request`, or say why not.
    fn fund<'a>(&'a mut self, request: &'a FundingRequest) -> BoxFuture<'a, FundingOutcome>;
    /// A claim has ended: its inputs may be used again.
    fn release(&mut self, claim: ClaimId) -> BoxFuture<'_, ()>;
    /// The confirmed balance that could fund claims, if the wallet says.
    fn confirmed_balance(&mut self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async { None })
    }
}

/// Serves blocks (see [`contractcourt_sync::driver::io::ChainSource`]: the same
/// fork-point rule on the core's locator).
pub trait AsyncChainSource: Send {
    /// The best chain's tip.
    fn tip(&mut self) -> BoxFuture<'_, Result<Option<BlockRef>, SourceError>>;
    /// Disconnections down to the fork point found on `locator`, then connections.
    fn blocks_after<'a>(
        &'a mut self,
        locator: &'a [BlockRef],
    ) -> BoxFuture<'a, Result<Vec<Event>, SourceError>>;
    /// The mempool's changes since the last call (none for sources that follow no mempool).
    fn mempool_events(&mut self) -> BoxFuture<'_, Result<Vec<Event>, SourceError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// What the Lightning node receives (see [`contractcourt_sync::driver::io::NodeHandle`]).
pub trait AsyncNodeHandle: Send {
    /// An update is durable.
    fn update_persisted(&mut self, channel: ChannelId, update_id: u64) -> BoxFuture<'_, ()>;
    /// Settle an incoming HTLC upstream.
    fn settle_upstream(&mut self, htlc: HtlcKey, preimage: PaymentPreimage) -> BoxFuture<'_, ()>;
    /// Fail an incoming HTLC upstream.
    fn fail_upstream<'a>(&'a mut self, htlc: HtlcKey, reason: &'a FailReason) -> BoxFuture<'a, ()>;
    /// A report for the operator.
    fn report<'a>(&'a mut self, report: &'a Report) -> BoxFuture<'a, ()>;
}

/// Everything the async driver talks to besides its store.
pub struct AsyncIo {
    /// Signs the core's sign requests.
    pub signer: Box<dyn AsyncSigner>,
    /// Broadcasts transactions.
    pub broadcaster: Box<dyn AsyncBroadcaster>,
    /// Funds claims.
    pub wallet: Box<dyn AsyncWallet>,
    /// Serves blocks.
    pub chain: Box<dyn AsyncChainSource>,
    /// The Lightning node.
    pub node: Box<dyn AsyncNodeHandle>,
}

impl std::fmt::Debug for AsyncIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncIo").finish_non_exhaustive()
    }
}

/// The in-memory signer only computes: it signs inline.
impl AsyncSigner for InMemorySigner {
    fn sign<'a>(&'a mut self, request: &'a SignRequest) -> BoxFuture<'a, SignOutcome> {
        Box::pin(async move { Signer::sign(self, request) })
    }
}

/// A blocking part (an implementation of the sync crate's traits) run on tokio's blocking
/// threads, one call at a time. It is shared: keep a [`Blocking::handle`] to reach it.
///
/// A panic in the part is resumed in the caller, as the blocking driver would see it.
pub struct Blocking<T>(Arc<Mutex<T>>);

impl<T> Clone for Blocking<T> {
    fn clone(&self) -> Self {
        Blocking(self.0.clone())
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Blocking<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Blocking").field(&self.0).finish()
    }
}

impl<T: Send + 'static> Blocking<T> {
    /// Wrap a part.
    pub fn new(part: T) -> Blocking<T> {
        Blocking(Arc::new(Mutex::new(part)))
    }

    /// Wrap a part the caller already shares.
    pub fn shared(part: Arc<Mutex<T>>) -> Blocking<T> {
        Blocking(part)
    }

    /// The shared part.
    pub fn handle(&self) -> Arc<Mutex<T>> {
        self.0.clone()
    }

    /// Run `f` on the part on a blocking thread. `Err` only if the runtime is shutting down
    /// (a panic in `f` is resumed here).
    async fn call<R, F>(&self, f: F) -> Result<R, String>
    where
        R: Send + 'static,
        F: FnOnce(&mut T) -> R + Send + 'static,
    {
        let part = self.0.clone();
        let task = tokio::task::spawn_blocking(move || f(&mut lock(&part)));
        task.await.map_err(cancelled)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A blocking task that did not finish: resume its panic, or describe its cancellation.
pub(crate) fn cancelled(e: JoinError) -> String {
    match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(e) => format!("blocking task did not finish: {e}"),
    }
}

impl<T: Signer + 'static> AsyncSigner for Blocking<T> {
    fn sign<'a>(&'a mut self, request: &'a SignRequest) -> BoxFuture<'a, SignOutcome> {
        let request = request.clone();
        Box::pin(async move {
            self.call(move |s| s.sign(&request))
                .await
                .unwrap_or_else(|reason| SignOutcome::Failed { reason })
        })
    }
}

impl<T: Broadcaster + 'static> AsyncBroadcaster for Blocking<T> {
    fn broadcast<'a>(&'a mut self, tx: &'a Transaction) -> BoxFuture<'a, BroadcastOutcome> {
        let tx = tx.clone();
        Box::pin(async move {
            self.call(move |b| b.broadcast(&tx))
                .await
                .unwrap_or_else(|reason| BroadcastOutcome::NotDelivered { reason })
        })
    }
    fn broadcast_package<'a>(
        &'a mut self,
        parent: &'a Transaction,
        child: &'a Transaction,
    ) -> BoxFuture<'a, BroadcastOutcome> {
        let (parent, child) = (parent.clone(), child.clone());
        Box::pin(async move {
            self.call(move |b| b.broadcast_package(&parent, &child))
                .await
                .unwrap_or_else(|reason| BroadcastOutcome::NotDelivered { reason })
        })
    }
}

impl<T: Wallet + 'static> AsyncWallet for Blocking<T> {
    fn fund<'a>(&'a mut self, request: &'a FundingRequest) -> BoxFuture<'a, FundingOutcome> {
        let request = request.clone();
        Box::pin(async move {
            self.call(move |w| w.fund(&request))
                .await
                .unwrap_or_else(|reason| FundingOutcome::Failed { reason })
        })
    }
    fn release(&mut self, claim: ClaimId) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.call(move |w| w.release(claim)).await;
        })
    }
    fn confirmed_balance(&mut self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async move {
            self.call(|w| w.confirmed_balance())
                .await
                .unwrap_or_default()
        })
    }
}

impl<T: ChainSource + 'static> AsyncChainSource for Blocking<T> {
    fn tip(&mut self) -> BoxFuture<'_, Result<Option<BlockRef>, SourceError>> {
        Box::pin(async move { self.call(|c| c.tip()).await? })
    }
    fn blocks_after<'a>(
        &'a mut self,
        locator: &'a [BlockRef],
    ) -> BoxFuture<'a, Result<Vec<Event>, SourceError>> {
        let locator = locator.to_vec();
        Box::pin(async move { self.call(move |c| c.blocks_after(&locator)).await? })
    }
    fn mempool_events(&mut self) -> BoxFuture<'_, Result<Vec<Event>, SourceError>> {
        Box::pin(async move { self.call(|c| c.mempool_events()).await? })
    }
}

impl<T: NodeHandle + 'static> AsyncNodeHandle for Blocking<T> {
    fn update_persisted(&mut self, channel: ChannelId, update_id: u64) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self
                .call(move |n| n.update_persisted(channel, update_id))
                .await;
        })
    }
    fn settle_upstream(&mut self, htlc: HtlcKey, preimage: PaymentPreimage) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.call(move |n| n.settle_upstream(htlc, preimage)).await;
        })
    }
    fn fail_upstream<'a>(&'a mut self, htlc: HtlcKey, reason: &'a FailReason) -> BoxFuture<'a, ()> {
        let reason = reason.clone();
        Box::pin(async move {
            let _ = self.call(move |n| n.fail_upstream(htlc, &reason)).await;
        })
    }
    fn report<'a>(&'a mut self, report: &'a Report) -> BoxFuture<'a, ()> {
        let report = report.clone();
        Box::pin(async move {
            let _ = self.call(move |n| n.report(&report)).await;
        })
    }
}
