//! The chain source `serve` follows, built from its [`SourceConfig`], as one shared object that
//! serves blocks, takes broadcasts and gives fee conditions ([`ServeSource`]).
//!
//! bitcoind with a cookie file: the cookie is read at start and again after any answer with
//! HTTP status 401 (bitcoind writes a new cookie each time it starts), and the call is made once
//! more with the new credentials.
//!
//! A broadcast that gets no verdict from the node (no connection, an HTTP error without the
//! node's answer) is tried again, [`DELIVERY_ATTEMPTS`] times in all with doubling waits, before
//! it goes to the core as [`BroadcastOutcome::NotDelivered`] carrying the client's error: not a
//! refusal (the core keeps the attempt, raises no alert, and offers it again at the next block).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::Transaction;
use bitcoincore_rpc::{jsonrpc, Auth, Client};
use contractcourt_core::event::{BroadcastOutcome, Event, FeeConditions};
use contractcourt_core::types::{BlockRef, Height};

use super::settings::{RpcAuth, SourceConfig};
use crate::chain::bitcoind::{BitcoindSource, BitcoindSyncError};
use crate::chain::embedded::EmbeddedChain;
use crate::chain::embedded_source::EmbeddedSource;
use crate::chain::esplora::EsploraSource;
use crate::chain::fees::LiveSource;
use crate::driver::{Broadcaster, ChainSource, SourceError};

/// Everything `serve` asks of its chain source.
pub trait ServeSource: ChainSource + Broadcaster + LiveSource {}

impl<T: ChainSource + Broadcaster + LiveSource> ServeSource for T {}

/// The source, shared between the driver's chain and broadcaster slots and the serve loop.
pub type SharedSource = Arc<Mutex<dyn ServeSource>>;

impl<T: LiveSource + ?Sized> LiveSource for Arc<Mutex<T>> {
    fn fee_conditions(&mut self) -> Result<Option<FeeConditions>, SourceError> {
        crate::driver::io::lock(self).fee_conditions()
    }
    fn in_initial_download(&mut self) -> Result<bool, SourceError> {
        crate::driver::io::lock(self).in_initial_download()
    }
    fn start_at(&mut self, height: Height) {
        crate::driver::io::lock(self).start_at(height)
    }
}

/// Why a source could not be built.
#[derive(Debug)]
pub enum SourceBuildError {
    /// bitcoind's cookie file could not be read, or the client not made.
    Bitcoind(bitcoincore_rpc::Error),
    /// The embedded chain could not be opened.
    Regtest(String),
}

impl std::fmt::Display for SourceBuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceBuildError::Bitcoind(e) => write!(f, "bitcoind: {e}"),
            SourceBuildError::Regtest(e) => write!(f, "embedded chain: {e}"),
        }
    }
}

impl std::error::Error for SourceBuildError {}

/// The source `config` names.
pub fn build(config: &SourceConfig) -> Result<SharedSource, SourceBuildError> {
    Ok(match config {
        SourceConfig::Bitcoind { url, auth } => {
            Arc::new(Mutex::new(Bitcoind::new(url.clone(), auth.clone())?))
        }
        SourceConfig::Esplora { url } => Arc::new(Mutex::new(Esplora(EsploraSource::new(url)))),
        SourceConfig::Regtest { dir } => {
            std::fs::create_dir_all(dir)
                .map_err(|e| SourceBuildError::Regtest(format!("{}: {e}", dir.display())))?;
            let chain = EmbeddedChain::new(dir)
                .map_err(|e| SourceBuildError::Regtest(format!("{}: {e}", dir.display())))?;
            Arc::new(Mutex::new(EmbeddedSource::new(Arc::new(Mutex::new(chain)))))
        }
    })
}

/// bitcoind, with its cookie re-read after a 401.
pub struct Bitcoind {
    source: BitcoindSource,
    url: String,
    auth: RpcAuth,
}

fn rpc_auth(auth: &RpcAuth) -> Auth {
    match auth {
        RpcAuth::Cookie(path) => Auth::CookieFile(path.clone()),
        RpcAuth::UserPass(user, password) => Auth::UserPass(user.clone(), password.clone()),
        RpcAuth::None => Auth::None,
    }
}

/// Whether `e` is an HTTP 401 from bitcoind (through either of the client's HTTP transports).
pub fn is_unauthorized(e: &bitcoincore_rpc::Error) -> bool {
    let bitcoincore_rpc::Error::JsonRpc(jsonrpc::Error::Transport(t)) = e else {
        return false;
    };
    let simple = matches!(
        t.downcast_ref::<jsonrpc::simple_http::Error>(),
        Some(jsonrpc::simple_http::Error::HttpErrorCode(401))
    );
    let minreq = matches!(
        t.downcast_ref::<jsonrpc::minreq_http::Error>(),
        Some(jsonrpc::minreq_http::Error::Http(h)) if h.status_code == 401
    );
    simple || minreq
}

/// Whether a source error is bitcoind's 401.
fn source_unauthorized(e: &SourceError) -> bool {
    e.downcast_ref::<BitcoindSyncError>()
        .is_some_and(|e| matches!(e, BitcoindSyncError::Client(c) if is_unauthorized(c)))
}

/// How many times a broadcast that got no verdict (the node unreachable) is tried, waiting
/// [`DELIVERY_FIRST_WAIT`] and then twice as long each time, before it is given to the core as
/// [`BroadcastOutcome::NotDelivered`] with the client's error.
pub const DELIVERY_ATTEMPTS: u32 = 5;
/// The first wait between two tries of a broadcast.
pub const DELIVERY_FIRST_WAIT: Duration = Duration::from_millis(100);

/// Try `attempt` until it gets a verdict, at most [`DELIVERY_ATTEMPTS`] times.
fn deliver<E: std::fmt::Display>(
    mut attempt: impl FnMut() -> Result<BroadcastOutcome, E>,
) -> BroadcastOutcome {
    let mut wait = DELIVERY_FIRST_WAIT;
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt() {
            Ok(outcome) => return outcome,
            Err(e) if tries >= DELIVERY_ATTEMPTS => {
                tracing::error!(error = %e, tries, "broadcast got no verdict from the node");
                return BroadcastOutcome::NotDelivered {
                    reason: e.to_string(),
                };
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_ms = wait.as_millis() as u64, "broadcast got no verdict; retrying");
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
    }
}

impl Bitcoind {
    /// A source for the node at `url`. A cookie file that cannot be read yet (bitcoind not
    /// started) is not an error: the first call goes without credentials, bitcoind answers 401,
    /// and the cookie is read then.
    pub fn new(url: String, auth: RpcAuth) -> Result<Bitcoind, SourceBuildError> {
        let client = match Client::new(&url, rpc_auth(&auth)) {
            Ok(client) => client,
            Err(e) if matches!(auth, RpcAuth::Cookie(_)) => {
                tracing::warn!(error = %e, "bitcoind's cookie file cannot be read yet");
                Client::new(&url, Auth::None).map_err(SourceBuildError::Bitcoind)?
            }
            Err(e) => return Err(SourceBuildError::Bitcoind(e)),
        };
        Ok(Bitcoind {
            source: BitcoindSource::from_client(client),
            url,
            auth,
        })
    }

    /// Re-read the cookie (a new client with the file's credentials now); whether it changed
    /// anything (only a cookie can be re-read).
    fn refresh(&mut self) -> bool {
        if !matches!(self.auth, RpcAuth::Cookie(_)) {
            return false;
        }
        match Client::new(&self.url, rpc_auth(&self.auth)) {
            Ok(client) => {
                tracing::info!("bitcoind answered 401: cookie file re-read");
                self.source.replace_client(client);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "bitcoind answered 401 and the cookie file cannot be read");
                false
            }
        }
    }

    /// `call`, once more after re-reading the cookie if bitcoind answered 401.
    fn retry<T>(
        &mut self,
        call: impl Fn(&mut BitcoindSource) -> Result<T, SourceError>,
    ) -> Result<T, SourceError> {
        match call(&mut self.source) {
            Err(e) if source_unauthorized(&e) && self.refresh() => call(&mut self.source),
            other => other,
        }
    }
}

impl ChainSource for Bitcoind {
    fn tip(&mut self) -> Result<Option<BlockRef>, SourceError> {
        self.retry(|s| s.tip())
    }
    fn blocks_after(&mut self, locator: &[BlockRef]) -> Result<Vec<Event>, SourceError> {
        self.retry(|s| s.blocks_after(locator))
    }
    fn mempool_events(&mut self) -> Result<Vec<Event>, SourceError> {
        self.retry(|s| s.mempool_events())
    }
}

impl Broadcaster for Bitcoind {
    fn broadcast(&mut self, tx: &Transaction) -> BroadcastOutcome {
        deliver(|| {
            let result = self.source.submit(tx);
            match result {
                Err(e) if is_unauthorized(&e) && self.refresh() => self.source.submit(tx),
                other => other,
            }
        })
    }
    fn broadcast_package(&mut self, parent: &Transaction, child: &Transaction) -> BroadcastOutcome {
        deliver(|| {
            let result = self.source.submit_package(parent, child);
            match result {
                Err(e) if is_unauthorized(&e) && self.refresh() => {
                    self.source.submit_package(parent, child)
                }
                other => other,
            }
        })
    }
}

impl LiveSource for Bitcoind {
    fn fee_conditions(&mut self) -> Result<Option<FeeConditions>, SourceError> {
        self.retry(|s| s.fee_conditions())
    }
    fn in_initial_download(&mut self) -> Result<bool, SourceError> {
        self.retry(|s| s.in_initial_download())
    }
    fn start_at(&mut self, height: Height) {
        self.source.start_at(height)
    }
}

/// An Esplora server, its broadcasts tried again while they get no verdict.
pub struct Esplora(pub EsploraSource);

impl ChainSource for Esplora {
    fn tip(&mut self) -> Result<Option<BlockRef>, SourceError> {
        self.0.tip()
    }
    fn blocks_after(&mut self, locator: &[BlockRef]) -> Result<Vec<Event>, SourceError> {
        self.0.blocks_after(locator)
    }
}

impl Broadcaster for Esplora {
    fn broadcast(&mut self, tx: &Transaction) -> BroadcastOutcome {
        deliver(|| self.0.submit(tx))
    }
    fn broadcast_package(&mut self, parent: &Transaction, child: &Transaction) -> BroadcastOutcome {
        deliver(|| self.0.submit_package(parent, child))
    }
}

impl LiveSource for Esplora {
    fn fee_conditions(&mut self) -> Result<Option<FeeConditions>, SourceError> {
        self.0.fee_conditions()
    }
    fn start_at(&mut self, height: Height) {
        self.0.start_at(height)
    }
}
