//! `contractcourt serve`: the engine as a long-running service on a real chain, for a
//! Lightning node in any language.
//!
//! - [`settings`]: flags and TOML, resolved into a [`ServeConfig`].
//! - [`source`]: the chain source (bitcoind with its cookie re-read after a 401, Esplora, or the
//!   embedded regtest chain).
//! - [`protocol`], [`link`], [`handle`]: the node protocol over a Unix socket
//!   (`docs/node-protocol.md`).
//! - [`run`]: the loop.
//! - [`client`]: a reference client of the node protocol (what the tests use).
//!
//! Like every driver, it decides nothing about channels, HTLCs or fees: it moves events in and
//! actions out.

pub mod client;
pub mod handle;
pub mod link;
pub mod protocol;
#[cfg(feature = "embedded-chain")]
mod run;
pub mod settings;
#[cfg(feature = "embedded-chain")]
pub mod source;

#[cfg(feature = "embedded-chain")]
pub use run::run;
/// The store `serve` runs on: SQLite or PostgreSQL, chosen at start.
pub(crate) type ServeStore = Box<dyn crate::store::Store>;

pub use settings::{ServeConfig, ServeSettings, SettingsError, StoreConfig};

/// Why `serve` stopped.
#[derive(Debug)]
pub enum ServeError {
    /// The store cannot be opened, read or loaded.
    Store(String),
    /// The chain source cannot be set up (an unreadable cookie file, the embedded chain).
    Source(String),
    /// The socket cannot be made.
    Socket(String),
    /// An engine setting is out of range.
    Settings(String),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Store(e) => write!(f, "store: {e}"),
            ServeError::Source(e) => write!(f, "chain source: {e}"),
            ServeError::Socket(e) => write!(f, "socket: {e}"),
            ServeError::Settings(e) => write!(f, "settings: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}
