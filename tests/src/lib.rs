//! Scenario suite, trace replay and model checks for contractcourt.
//!
//! The scenarios live in `tests/tests/`; this library holds what they share.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use contractcourt_core as core;
