//! Shared fixtures of the contractcourt benchmarks (`benches/`): many channels built cheaply
//! from one real one ([`fixture`]), full blocks ([`chain`]), a node that answers the engine
//! ([`node`]) and the extra numbers the report shows ([`report`]).
//!
//! Setup never counts: each benchmark times only the engine's step (or steps) it names.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod chain;
pub mod fixture;
pub mod node;
pub mod report;

pub use contractcourt_core as core;
