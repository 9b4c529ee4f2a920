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
//! - [`embedded_source`]: the embedded chain as a polled source and broadcaster (`serve
//!   --regtest`), through the same fork-point walk.
//! - [`fees`]: fee conditions and initial-block-download state from bitcoind and Esplora.
//! - [`sync`]: the fork-point walk the polled sources share, and its typed error.

pub mod bitcoind;
#[cfg(feature = "embedded-chain")]
pub mod embedded;
#[cfg(feature = "embedded-chain")]
pub mod embedded_source;
pub mod esplora;
pub mod fees;
pub mod sync;
