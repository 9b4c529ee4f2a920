//! Chain sources: where the driver's blocks, mempool transactions and broadcasts go.
//!
//! - [`embedded`]: an in-process regtest chain whose every block is validated by Bitcoin Core's
//!   own validation code (`libbitcoinkernel`), with a mempool in front of it and a test wallet.
//!   For simulations and tests.
//!
//! Other sources (bitcoind JSON-RPC, Esplora) will sit beside it as sibling modules.

pub mod embedded;
