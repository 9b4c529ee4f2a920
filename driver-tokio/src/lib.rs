//! Tokio driver for contractcourt.
//!
//! The same driver contract as `contractcourt-sync` (`DESIGN.md`, "Driver contract"), on an async
//! runtime: load every stored state, feed `Resumed { tip }`, follow `SyncFrom`; then for each
//! event, record it, step, commit the step's batch, and run its effects one at a time in action
//! order, feeding each result back at once. It makes no decisions: every decision lives in
//! [`contractcourt_core`]. The order of feeding and running is the blocking driver's own
//! ([`contractcourt_sync::driver::agenda`]), so both drivers give identical transcripts.
//!
//! - [`AsyncDriver`]: the driver; the (synchronous) store runs on tokio's blocking threads.
//! - [`io`]: the outside world as async traits, bundled in [`AsyncIo`]; [`Blocking`] adapts any
//!   blocking implementation of the sync crate's traits.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod driver;
pub mod io;

pub use contractcourt_core as core;
pub use contractcourt_sync::driver::{DriverError, DriverErrorKind};
pub use driver::AsyncDriver;
pub use io::{
    AsyncBroadcaster, AsyncChainSource, AsyncIo, AsyncNodeHandle, AsyncSigner, AsyncWallet,
    Blocking, BoxFuture,
};
