//! Entry points for the fuzz targets in `fuzz/` that reach this driver's parsers of outside
//! input: each target is a one-line call into a function here, so the logic is built, linted and
//! unit tested with the driver. None needs the embedded chain (the fuzz crate builds this crate
//! without its `embedded-chain` feature, so without Bitcoin Core's kernel).
//!
//! - [`scenario_json`]: a `simulate` scenario file.
//! - [`settings_toml`]: a `simulate --config` file and a `serve --config` file.
//! - [`node_protocol`]: the bytes a node writes to `serve`'s socket, cut into lines, and each
//!   line read as a node message (and as an engine message, as the reference client reads).
//! - [`bitcoind_answers`], [`esplora_answers`]: the answers of a chain source the driver
//!   interprets (fee estimates, relay floors, initial block download, the tip, the mempool and
//!   its entries, package verdicts, rejections).
//! - [`raw_block`]: raw blocks, headers and transactions as the sources decode them, and the
//!   core's block made of them.
//! - [`chain_sync`]: the fork-point walk against a server whose answers the bytes choose (true,
//!   stale, missing or lying), its events fed to a chain arbitrator.
//!
//! Every helper returns quietly on input a parser refuses with its typed error, and panics on a
//! broken invariant (what the fuzzer looks for), never otherwise.

mod chain_fuzz;
mod protocol_fuzz;
mod scenario_fuzz;
mod sync_fuzz;

pub use chain_fuzz::{bitcoind_answers, esplora_answers, raw_block};
pub use protocol_fuzz::node_protocol;
pub use scenario_fuzz::{scenario_json, settings_toml};
pub use sync_fuzz::chain_sync;

/// A reader of fuzz bytes: past the end every read is 0 (and [`Bytes::is_empty`] says so).
pub(crate) struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes { data, pos: 0 }
    }

    /// Whether every byte was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(crate) fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    /// An index below `n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::from(self.u8()) % n
        }
    }
}
