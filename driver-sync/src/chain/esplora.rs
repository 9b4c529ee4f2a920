//! A chain source and broadcaster over an Esplora HTTP server, through the blocking
//! `esplora-client` (no TLS built in: reach an `https` server through a local proxy or tunnel).
//!
//! [`EsploraSource`] polls like [`super::bitcoind::BitcoindSource`] and shares its fork-point
//! walk ([`super::sync`]): `GET /block-height/:height` to find the fork point on the core's
//! locator and the best chain's blocks, `GET /block/:hash/raw` for full blocks,
//! `GET /block/:hash/header` for the parent of an engine block where the locator is sparse and
//! this source did not deliver the block itself (an Esplora server may know only best-chain
//! headers: a deep reorg right after a restart can then end in [`SyncError::UnknownBlock`]),
//! and `GET /blocks/tip/height` (then the hash at that height) for the tip. Broadcasts go to
//! `POST /tx` and `POST /txs/package`; a rejection carries the server's own message.
//!
//! It does not follow the mempool ([`ChainSource::mempool_events`] keeps its default: no
//! events).
//!
//! Every error it returns through [`ChainSource`] is an [`EsploraSyncError`] (downcast the
//! [`SourceError`] to read it).

use bitcoin::block::Header;
use bitcoin::{BlockHash, Transaction};
use contractcourt_core::event::{BroadcastOutcome, Event};
use contractcourt_core::types::{BlockRef, Height};
use esplora_client::{BlockingClient, Builder, SubmitPackageResult};

use super::sync::{self, BlockClient, Delivered, SyncError};
use crate::driver::{Broadcaster, ChainSource, SourceError};

/// The error of every [`ChainSource`] call of an [`EsploraSource`].
pub type EsploraSyncError = SyncError<esplora_client::Error>;

/// A chain source and broadcaster over an Esplora server. See the module documentation.
#[derive(Debug)]
pub struct EsploraSource {
    client: BlockingClient,
    first_height: Height,
    delivered: Delivered,
}

impl EsploraSource {
    /// A source for the Esplora API at `base_url` (with its prefix, e.g.
    /// `http://127.0.0.1:3002/api`), with the client's default settings. Nothing is sent until
    /// the first call. An empty locator is answered from genesis: see
    /// [`EsploraSource::starting_at`].
    pub fn new(base_url: &str) -> EsploraSource {
        EsploraSource::from_client(Builder::new(base_url).build_blocking())
    }

    /// A source over a configured client (timeout, retries, headers, proxy).
    pub fn from_client(client: BlockingClient) -> EsploraSource {
        EsploraSource {
            client,
            first_height: 0,
            delivered: Delivered::default(),
        }
    }

    /// Answer an empty locator with the best chain from `height` on, instead of from genesis.
    pub fn starting_at(mut self, height: Height) -> EsploraSource {
        self.first_height = height;
        self
    }

    /// Answer an empty locator from `height` on from now on (see [`EsploraSource::starting_at`]).
    pub fn set_first_height(&mut self, height: Height) {
        self.first_height = height;
    }

    /// The HTTP client.
    pub fn client(&self) -> &BlockingClient {
        &self.client
    }
}

/// `Ok(None)` for a 404.
fn none_on_404<T>(
    result: Result<T, esplora_client::Error>,
) -> Result<Option<T>, esplora_client::Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(esplora_client::Error::HttpResponse { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The rejection reason of a failed call: the server's own message, or the client's error.
pub(crate) fn reason(e: esplora_client::Error) -> String {
    match e {
        esplora_client::Error::HttpResponse { message, .. } => message,
        other => other.to_string(),
    }
}

impl BlockClient for BlockingClient {
    type Error = esplora_client::Error;

    fn best_tip(&mut self) -> Result<BlockRef, Self::Error> {
        let height = self.get_height()?;
        Ok(BlockRef {
            height,
            hash: self.get_block_hash(height)?,
        })
    }

    fn hash_at(&mut self, height: Height) -> Result<Option<BlockHash>, Self::Error> {
        none_on_404(self.get_block_hash(height))
    }

    fn header(&mut self, hash: &BlockHash) -> Result<Option<Header>, Self::Error> {
        none_on_404(self.get_header_by_hash(hash))
    }

    fn block(&mut self, hash: &BlockHash) -> Result<Option<bitcoin::Block>, Self::Error> {
        self.get_block_by_hash(hash)
    }
}

impl ChainSource for EsploraSource {
    fn tip(&mut self) -> Result<Option<BlockRef>, SourceError> {
        match self.client.best_tip() {
            Ok(tip) => Ok(Some(tip)),
            Err(e) => Err(Box::new(EsploraSyncError::Client(e))),
        }
    }

    fn blocks_after(&mut self, locator: &[BlockRef]) -> Result<Vec<Event>, SourceError> {
        Ok(sync::blocks_after(
            &mut self.client,
            locator,
            self.first_height,
            &mut self.delivered,
        )?)
    }
}

/// Whether a failed call carries the server's verdict on the transaction (a 400 with the
/// node's reason, as electrs answers a refused `POST /tx`). Anything else (no connection,
/// another HTTP status, an undecodable reply) is not.
pub fn judged(e: &esplora_client::Error) -> bool {
    matches!(e, esplora_client::Error::HttpResponse { status: 400, .. })
}

impl EsploraSource {
    /// `POST /tx`: the server's verdict, or the error of a call that never got one (see
    /// [`judged`]).
    pub fn submit(&mut self, tx: &Transaction) -> Result<BroadcastOutcome, esplora_client::Error> {
        match self.client.broadcast(tx) {
            Ok(_) => Ok(BroadcastOutcome::Accepted),
            Err(e) if !judged(&e) => Err(e),
            Err(e) => Ok(BroadcastOutcome::Rejected { reason: reason(e) }),
        }
    }

    /// `POST /txs/package [parent, child]`. Accepted when the server's `package_msg` is
    /// `success`; otherwise the reason is `package_msg` followed by each member's error, in
    /// package order (`"<package_msg>; <txid>: <error>"`), all as the server wrote them. A call
    /// that got no verdict is an error, as for [`EsploraSource::submit`].
    pub fn submit_package(
        &mut self,
        parent: &Transaction,
        child: &Transaction,
    ) -> Result<BroadcastOutcome, esplora_client::Error> {
        let result = match self
            .client
            .submit_package(&[parent.clone(), child.clone()], None, None)
        {
            Ok(result) => result,
            Err(e) if !judged(&e) => return Err(e),
            Err(e) => return Ok(BroadcastOutcome::Rejected { reason: reason(e) }),
        };
        Ok(package_verdict(&result, parent, child))
    }
}

/// The verdict of a `POST /txs/package [parent, child]` answer: accepted when its `package_msg`
/// is `success`; otherwise rejected with `package_msg` followed by each member's error, in
/// package order (`"<package_msg>; <txid>: <error>"`), all as the server wrote them.
pub(crate) fn package_verdict(
    result: &SubmitPackageResult,
    parent: &Transaction,
    child: &Transaction,
) -> BroadcastOutcome {
    if result.package_msg == "success" {
        return BroadcastOutcome::Accepted;
    }
    let errors = [parent, child].map(|tx| {
        let error = result
            .tx_results
            .get(&tx.compute_wtxid())
            .and_then(|r| r.error.as_deref());
        (tx.compute_txid(), error)
    });
    BroadcastOutcome::Rejected {
        reason: sync::package_rejection(&result.package_msg, errors),
    }
}

impl Broadcaster for EsploraSource {
    /// [`EsploraSource::submit`]; a call that got no verdict is
    /// [`BroadcastOutcome::NotDelivered`] with the client's error as its reason.
    fn broadcast(&mut self, tx: &Transaction) -> BroadcastOutcome {
        self.submit(tx)
            .unwrap_or_else(|e| BroadcastOutcome::NotDelivered { reason: reason(e) })
    }

    /// [`EsploraSource::submit_package`], as [`Broadcaster::broadcast`].
    fn broadcast_package(&mut self, parent: &Transaction, child: &Transaction) -> BroadcastOutcome {
        self.submit_package(parent, child)
            .unwrap_or_else(|e| BroadcastOutcome::NotDelivered { reason: reason(e) })
    }
}
