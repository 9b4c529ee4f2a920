//! Tokio driver for contractcourt.
//!
//! The same driver contract as `contractcourt-sync`, on an async runtime. It makes no decisions:
//! every decision lives in [`contractcourt_core`]. Its implementation arrives with the drivers
//! issue.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use contractcourt_core as core;
