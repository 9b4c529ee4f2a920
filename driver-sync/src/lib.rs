//! Blocking driver for contractcourt.
//!
//! It will execute the core's actions (persist, broadcast, sign, watch) against real I/O, one
//! step at a time, exactly as `DESIGN.md` "Driver contract" says. It makes no decisions: every
//! decision lives in [`contractcourt_core`]. Its store, chain sources and the `contractcourt`
//! program arrive with the drivers issue.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use contractcourt_core as core;
