//! # contractcourt-core
//!
//! The pure, deterministic heart of contractcourt: every decision about resolving Lightning
//! channel contracts on-chain, and the BOLT 3 transaction layer those decisions stand on.
//!
//! Nothing in this crate performs I/O, reads a clock or draws randomness. Block height is the
//! clock; wall time and everything else arrive as [`event::Event`]s, and every effect leaves as an
//! [`action::Action`] for a driver to execute.
//!
//! Layout:
//! - [`bolt3`]: keys, per-commitment secrets, scripts, commitment and HTLC transactions,
//!   witnesses, witness classification and weights, exactly as BOLT 3 specifies them.
//! - [`policy`]: the standardness and finality rules a mempool applies that Bitcoin Core's
//!   script interpreter does not (finality at a height, MINIMALIF, dust, relay fee, weight).
//! - [`types`], [`event`], [`action`]: the vocabulary between the core and its drivers.
//! - [`trace`]: the versioned trace format and a pure replay with a readable diff.
//! - `sim` (feature `sim`): a deterministic two-party channel model.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod action;
pub mod bolt3;
pub mod chain;
pub mod channel;
pub mod close;
pub mod commitments;
pub mod event;
pub mod fee;
pub mod funded;
#[doc(hidden)]
pub mod fuzzing;
pub mod node;
pub mod policy;
pub mod resolver;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sweeper;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod trace;
pub mod types;
