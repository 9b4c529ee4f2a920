//! Blocking driver for contractcourt.
//!
//! It executes the core's actions (persist, broadcast, sign, fund, report) against real I/O, one step at
//! a time, exactly as `DESIGN.md` "Driver contract" says. It makes no decisions: every decision
//! lives in [`contractcourt_core`].
//!
//! - [`store`]: durable storage of the core's records (SQLite, the embedded default; and an
//!   in-memory store for tests) and the flight recorder of every event fed to the core.
//! - [`chain`]: chain sources — the embedded regtest chain whose blocks Bitcoin Core's own
//!   validation code checks (with a test wallet that funds claims), bitcoind over JSON-RPC and
//!   Esplora over HTTP.
//! - [`signer`]: an in-memory BOLT 3 signer, and [`signer::NodeSigner`] pairing it with a wallet
//!   for wallet inputs.
//! - [`simulate`]: the `contractcourt simulate` dry run of a close on the embedded chain.
//! - [`serve`]: `contractcourt serve`, the engine as a service for a node over a Unix socket.
//! - [`fuzzing`]: the entry points of the fuzz targets over this driver's parsers.
//!
//! Feature `embedded-chain` (on by default) brings Bitcoin Core's kernel, and with it the
//! embedded chain, `simulate`'s runner, `serve`'s runner and chain source, and the
//! `contractcourt` program. Without it the crate builds in a fraction of the time (what `fuzz/`
//! links).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod chain;
pub mod driver;
pub mod fuzzing;
pub mod parallel;
pub mod serve;
pub mod signer;
pub mod simulate;
pub mod store;
pub mod svg;

pub use contractcourt_core as core;
