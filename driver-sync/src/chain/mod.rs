//! Chain sources: where the driver's blocks, mempool transactions and broadcasts go.
//!
//! - [`embedded`]: an in-process regtest chain whose every block is validated by Bitcoin Core's
//!   own validation code (`libbitcoinkernel`), with a mempool in front of it and a test wallet.
//!   For simulations and tests.
//! - [`bitcoind`]: a bitcoind node over JSON-RPC (`bitcoincore-rpc`): polled blocks with reorgs
//!   found on the core's locator, the mempool as `MempoolTx`/`MempoolRemoved` events,
//!   `sendrawtransaction` and `submitpackage`.
//! - [`esplora`]: an Esplora server over HTTP (`esplora-client`, blocking): the same polled
//!   blocks and broadcasts.
//! - [`sync`]: the fork-point walk both share, and its typed error.

pub mod bitcoind;
pub mod embedded;
pub mod esplora;
pub mod sync;
