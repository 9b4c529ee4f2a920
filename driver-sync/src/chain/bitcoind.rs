//! A chain source and broadcaster over Bitcoin Core's JSON-RPC interface, through the
//! `bitcoincore-rpc` client.
//!
//! [`BitcoindSource`] polls: each [`ChainSource::blocks_after`] finds the fork point on the
//! core's locator by asking `getblockhash` at the locator's heights, disconnects the engine's
//! blocks above it from the tip down (following parents with `getblockheader` where the locator
//! is sparse) and connects the best chain's full blocks (`getblock` at verbosity 0) oldest
//! first; see [`super::sync`]. [`ChainSource::mempool_events`] diffs `getrawmempool` (txids)
//! against what it delivered before and fetches a bounded number of new transactions per call
//! (`getmempoolentry` for the fee and virtual size, then `getrawtransaction`). Broadcasts go through `sendrawtransaction` and
//! `submitpackage`; a rejection carries bitcoind's own message.
//!
//! RPC methods used: `getblockchaininfo`, `getblockhash`, `getblockheader` (raw), `getblock`
//! (raw), `getrawmempool`, `getmempoolentry`, `getrawtransaction` (raw), `sendrawtransaction`,
//! `submitpackage`.
//!
//! Every error it returns through [`ChainSource`] is a [`BitcoindSyncError`] (downcast the
//! [`SourceError`] to read it).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bitcoin::block::Header;
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Amount, BlockHash, Transaction, Txid};
use bitcoincore_rpc::jsonrpc;
use bitcoincore_rpc::{Auth, Client, RpcApi};
use contractcourt_core::event::{BroadcastOutcome, Event, MempoolRemovalReason};
use contractcourt_core::types::{BlockRef, Height, RawTx};
use serde::Deserialize;

use super::sync::{self, BlockClient, Delivered, SyncError};
use crate::driver::{Broadcaster, ChainSource, SourceError};

/// The error of every [`ChainSource`] call of a [`BitcoindSource`].
pub type BitcoindSyncError = SyncError<bitcoincore_rpc::Error>;

/// bitcoind's `RPC_INVALID_PARAMETER`: `getblockhash` above the tip.
const RPC_INVALID_PARAMETER: i32 = -8;
/// bitcoind's `RPC_INVALID_ADDRESS_OR_KEY`: an unknown block or transaction.
const RPC_INVALID_ADDRESS_OR_KEY: i32 = -5;

/// A chain source and broadcaster over bitcoind's JSON-RPC. See the module documentation.
pub struct BitcoindSource {
    client: Client,
    first_height: Height,
    delivered: Delivered,
    /// The mempool transactions delivered as `MempoolTx` and not yet as `MempoolRemoved`.
    mempool: BTreeSet<Txid>,
    /// Those of them seen in a block this source connected since.
    confirmed: BTreeSet<Txid>,
    /// The most new mempool transactions fetched per call.
    mempool_batch: usize,
}

/// The most new mempool transactions [`BitcoindSource`] fetches per call, by default (two RPC
/// calls each; the rest wait for the next poll).
pub const MEMPOOL_BATCH: usize = 200;

/// Bitcoin Core's default limit on in-mempool ancestors (`-limitancestorcount`): the most
/// undelivered parents a fetched transaction can need.
pub const MEMPOOL_ANCESTORS: usize = 25;

impl std::fmt::Debug for BitcoindSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BitcoindSource")
            .field("client", &self.client)
            .field("first_height", &self.first_height)
            .field("mempool_len", &self.mempool.len())
            .finish_non_exhaustive()
    }
}

impl BitcoindSource {
    /// A source for the node at `url` (`http://host:port`, plus `/wallet/NAME` if wanted) with
    /// `auth`. Fails only if a cookie file cannot be read; nothing is sent until the first call.
    /// An empty locator is answered from genesis: see [`BitcoindSource::starting_at`].
    pub fn new(url: &str, auth: Auth) -> Result<BitcoindSource, bitcoincore_rpc::Error> {
        Ok(BitcoindSource::from_client(Client::new(url, auth)?))
    }

    /// A source over a configured client (for a transport with a chosen timeout, say).
    pub fn from_client(client: Client) -> BitcoindSource {
        BitcoindSource {
            client,
            first_height: 0,
            delivered: Delivered::default(),
            mempool: BTreeSet::new(),
            confirmed: BTreeSet::new(),
            mempool_batch: MEMPOOL_BATCH,
        }
    }

    /// Answer an empty locator with the best chain from `height` on, instead of from genesis
    /// (a new node need not read the whole chain).
    pub fn starting_at(mut self, height: Height) -> BitcoindSource {
        self.first_height = height;
        self
    }

    /// Answer an empty locator from `height` on from now on (see [`BitcoindSource::starting_at`]).
    pub fn set_first_height(&mut self, height: Height) {
        self.first_height = height;
    }

    /// Fetch at most `n` (at least 1) new mempool transactions per call.
    pub fn with_mempool_batch(mut self, n: usize) -> BitcoindSource {
        self.mempool_batch = n.max(1);
        self
    }

    /// The RPC client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Use another client from now on (the same node with fresh credentials, after bitcoind
    /// rewrote its cookie file), keeping what this source delivered (blocks, mempool).
    pub fn replace_client(&mut self, client: Client) {
        self.client = client;
    }
}

/// The part of `getblockchaininfo` used: the tip's height and hash, read together.
#[derive(Deserialize)]
struct ChainInfo {
    blocks: Height,
    bestblockhash: BlockHash,
}

/// The tip of a `getblockchaininfo` answer (its `blocks` and `bestblockhash`).
pub(crate) fn chain_tip(answer: serde_json::Value) -> Result<BlockRef, serde_json::Error> {
    let info: ChainInfo = serde_json::from_value(answer)?;
    Ok(BlockRef {
        height: info.blocks,
        hash: info.bestblockhash,
    })
}

/// The txids of a `getrawmempool false` answer.
pub(crate) fn mempool_txids(
    answer: serde_json::Value,
) -> Result<BTreeSet<Txid>, serde_json::Error> {
    let txids: Vec<Txid> = serde_json::from_value(answer)?;
    Ok(txids.into_iter().collect())
}

/// The part of a `getmempoolentry` answer used.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct MempoolEntry {
    pub(crate) vsize: u64,
    pub(crate) fees: MempoolFees,
    /// In-mempool ancestors, itself included: sorting by it puts parents before children.
    #[serde(default)]
    pub(crate) ancestorcount: u64,
    /// Its parents in the mempool.
    #[serde(default)]
    pub(crate) depends: Vec<Txid>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct MempoolFees {
    #[serde(with = "bitcoin::amount::serde::as_btc")]
    pub(crate) base: Amount,
}

/// A `getmempoolentry` answer.
pub(crate) fn mempool_entry(answer: serde_json::Value) -> Result<MempoolEntry, serde_json::Error> {
    serde_json::from_value(answer)
}

/// The part of a `submitpackage` answer used.
#[derive(Deserialize)]
struct PackageResult {
    package_msg: String,
    #[serde(rename = "tx-results", default)]
    tx_results: HashMap<String, PackageTxResult>,
}

#[derive(Deserialize)]
struct PackageTxResult {
    #[serde(default)]
    error: Option<String>,
}

/// The verdict of a `submitpackage [parent, child]` answer: accepted when its `package_msg` is
/// `success`; otherwise rejected with `package_msg` followed by each member's error, in package
/// order (`"<package_msg>; <txid>: <error>"`), all as bitcoind wrote them.
pub(crate) fn package_verdict(
    answer: serde_json::Value,
    parent: &Transaction,
    child: &Transaction,
) -> Result<BroadcastOutcome, serde_json::Error> {
    let result: PackageResult = serde_json::from_value(answer)?;
    if result.package_msg == "success" {
        return Ok(BroadcastOutcome::Accepted);
    }
    let errors = [parent, child].map(|tx| {
        let wtxid = tx.compute_wtxid().to_string();
        let error = result
            .tx_results
            .get(&wtxid)
            .and_then(|r| r.error.as_deref());
        (tx.compute_txid(), error)
    });
    let reason = sync::package_rejection(&result.package_msg, errors);
    Ok(BroadcastOutcome::Rejected { reason })
}

/// An answer of the wrong shape, as `bitcoincore-rpc` reports one it fails to decode itself.
pub(crate) fn undecodable(e: serde_json::Error) -> bitcoincore_rpc::Error {
    bitcoincore_rpc::Error::JsonRpc(jsonrpc::Error::Json(e))
}

/// Whether `e` is bitcoind's error `code`.
fn is_rpc_code(e: &bitcoincore_rpc::Error, code: i32) -> bool {
    matches!(e, bitcoincore_rpc::Error::JsonRpc(jsonrpc::Error::Rpc(r)) if r.code == code)
}

/// `Ok(None)` for bitcoind's error `code`.
fn none_on<T>(
    result: Result<T, bitcoincore_rpc::Error>,
    code: i32,
) -> Result<Option<T>, bitcoincore_rpc::Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_rpc_code(&e, code) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The rejection reason of a failed call: bitcoind's own message, or the client's error.
pub(crate) fn reason(e: &bitcoincore_rpc::Error) -> String {
    match e {
        bitcoincore_rpc::Error::JsonRpc(jsonrpc::Error::Rpc(r)) => r.message.clone(),
        other => other.to_string(),
    }
}

impl BlockClient for Client {
    type Error = bitcoincore_rpc::Error;

    fn best_tip(&mut self) -> Result<BlockRef, Self::Error> {
        let answer: serde_json::Value = self.call("getblockchaininfo", &[])?;
        chain_tip(answer).map_err(undecodable)
    }

    fn hash_at(&mut self, height: Height) -> Result<Option<BlockHash>, Self::Error> {
        none_on(
            self.get_block_hash(u64::from(height)),
            RPC_INVALID_PARAMETER,
        )
    }

    fn header(&mut self, hash: &BlockHash) -> Result<Option<Header>, Self::Error> {
        none_on(self.get_block_header(hash), RPC_INVALID_ADDRESS_OR_KEY)
    }

    fn block(&mut self, hash: &BlockHash) -> Result<Option<bitcoin::Block>, Self::Error> {
        none_on(self.get_block(hash), RPC_INVALID_ADDRESS_OR_KEY)
    }
}

impl ChainSource for BitcoindSource {
    fn tip(&mut self) -> Result<Option<BlockRef>, SourceError> {
        match self.client.best_tip() {
            Ok(tip) => Ok(Some(tip)),
            Err(e) => Err(Box::new(BitcoindSyncError::Client(e))),
        }
    }

    fn blocks_after(&mut self, locator: &[BlockRef]) -> Result<Vec<Event>, SourceError> {
        let events = sync::blocks_after(
            &mut self.client,
            locator,
            self.first_height,
            &mut self.delivered,
        )?;
        for event in &events {
            if let Event::BlockConnected(block) = event {
                for tx in &block.txs {
                    let txid = tx.0.compute_txid();
                    if self.mempool.contains(&txid) {
                        self.confirmed.insert(txid);
                    }
                }
            }
        }
        Ok(events)
    }

    /// The mempool's changes since the last call: a `MempoolRemoved` for each transaction
    /// delivered before and no longer there (reason `Confirmed` if this source connected a
    /// block holding it since, `Unknown` otherwise; in txid order), then a `MempoolTx` for each
    /// new one, parents before children. `getrawmempool` (txids only) is diffed against what
    /// was delivered; of the new transactions at most [`BitcoindSource::with_mempool_batch`]
    /// (default [`MEMPOOL_BATCH`]) are fetched per call (`getmempoolentry`, then
    /// `getrawtransaction`), lowest txid first, with the in-mempool parents they need that were
    /// not delivered yet; the rest come in later calls. A transaction that
    /// leaves before it is fetched is skipped.
    fn mempool_events(&mut self) -> Result<Vec<Event>, SourceError> {
        let client = |e| -> SourceError { Box::new(BitcoindSyncError::Client(e)) };
        let txids = self
            .client
            .call::<serde_json::Value>("getrawmempool", &[serde_json::Value::Bool(false)])
            .and_then(|answer| mempool_txids(answer).map_err(undecodable))
            .map_err(client)?;
        // Nothing is changed until every call succeeded: a failed call loses no event.
        let gone: Vec<Txid> = self.mempool.difference(&txids).copied().collect();
        let mut events: Vec<Event> = gone
            .iter()
            .map(|txid| Event::MempoolRemoved {
                txid: *txid,
                reason: if self.confirmed.contains(txid) {
                    MempoolRemovalReason::Confirmed
                } else {
                    MempoolRemovalReason::Unknown
                },
            })
            .collect();
        // The batch, and the in-mempool parents it needs that were not delivered yet (a
        // mempool chain is at most [`MEMPOOL_ANCESTORS`] long, so this stays bounded).
        let mut queue: Vec<Txid> = txids
            .difference(&self.mempool)
            .take(self.mempool_batch)
            .copied()
            .collect();
        queue.reverse();
        let limit = self.mempool_batch.saturating_add(MEMPOOL_ANCESTORS);
        let mut entries: Vec<(Txid, MempoolEntry)> = Vec::new();
        let mut asked: BTreeSet<Txid> = BTreeSet::new();
        while let Some(txid) = queue.pop() {
            if asked.len() >= limit || !asked.insert(txid) {
                continue;
            }
            let entry: Option<MempoolEntry> = none_on(
                self.client
                    .call::<serde_json::Value>(
                        "getmempoolentry",
                        &[serde_json::Value::String(txid.to_string())],
                    )
                    .and_then(|answer| mempool_entry(answer).map_err(undecodable)),
                RPC_INVALID_ADDRESS_OR_KEY,
            )
            .map_err(client)?;
            let Some(entry) = entry else { continue };
            queue.extend(entry.depends.iter().filter(|p| {
                txids.contains(*p) && !self.mempool.contains(*p) && !asked.contains(*p)
            }));
            entries.push((txid, entry));
        }
        let ready = ready_in_order(entries, &self.mempool);
        let mut fetched = Vec::new();
        for (txid, entry) in ready {
            let tx = none_on(
                self.client.get_raw_transaction(&txid, None),
                RPC_INVALID_ADDRESS_OR_KEY,
            )
            .map_err(client)?;
            let Some(tx) = tx else { continue };
            fetched.push(txid);
            events.push(Event::MempoolTx {
                tx: RawTx(tx),
                fee_sat: entry.fees.base.to_sat(),
                vsize: entry.vsize,
            });
        }

        for txid in &gone {
            self.mempool.remove(txid);
        }
        self.mempool.extend(fetched);
        // Every mark is used: a marked transaction has gone (reported confirmed) or is back in
        // the mempool (its block reorged out: no longer confirmed).
        self.confirmed.clear();
        Ok(events)
    }
}

/// Of the fetched entries, those whose in-mempool parents are delivered or fetched with them,
/// parents before children: by `ancestorcount` (a parent has fewer in-mempool ancestors than its
/// child), raised above the rank of each fetched parent where the answer says otherwise (an
/// answer without `ancestorcount` reads as 0), then by txid.
pub(crate) fn ready_in_order(
    mut pending: Vec<(Txid, MempoolEntry)>,
    delivered: &BTreeSet<Txid>,
) -> Vec<(Txid, MempoolEntry)> {
    let mut ready = Vec::new();
    // The rank of each entry found ready, the rounds in which its parents were found before it.
    let mut rank: BTreeMap<Txid, u128> = BTreeMap::new();
    loop {
        let (now, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, e)| {
            e.depends
                .iter()
                .all(|p| delivered.contains(p) || rank.contains_key(p))
        });
        pending = later;
        if now.is_empty() {
            break;
        }
        for (txid, e) in &now {
            let above_parents = e
                .depends
                .iter()
                .filter_map(|p| rank.get(p))
                .map(|r| r + 1)
                .max()
                .unwrap_or(0);
            rank.insert(*txid, u128::from(e.ancestorcount).max(above_parents));
        }
        ready.extend(now);
    }
    ready.sort_by_key(|(txid, _)| (rank.get(txid).copied().unwrap_or(0), *txid));
    ready
}

impl BitcoindSource {
    /// `sendrawtransaction`: bitcoind's verdict, or the error of a call that never got one
    /// (transport, an HTTP error without a JSON-RPC answer): see [`judged`].
    pub fn submit(&mut self, tx: &Transaction) -> Result<BroadcastOutcome, bitcoincore_rpc::Error> {
        match self.client.send_raw_transaction(tx) {
            Ok(_) => Ok(BroadcastOutcome::Accepted),
            Err(e) if !judged(&e) => Err(e),
            Err(e) => Ok(BroadcastOutcome::Rejected { reason: reason(&e) }),
        }
    }

    /// `submitpackage [parent, child]`. Accepted when bitcoind's `package_msg` is `success`;
    /// otherwise the reason is `package_msg` followed by each member's error, in package order
    /// (`"<package_msg>; <txid>: <error>"`), all as bitcoind wrote them. A call that got no
    /// verdict is an error, as for [`BitcoindSource::submit`].
    pub fn submit_package(
        &mut self,
        parent: &Transaction,
        child: &Transaction,
    ) -> Result<BroadcastOutcome, bitcoincore_rpc::Error> {
        let package = serde_json::Value::Array(vec![
            serde_json::Value::String(serialize_hex(parent)),
            serde_json::Value::String(serialize_hex(child)),
        ]);
        let answer: serde_json::Value = match self.client.call("submitpackage", &[package]) {
            Ok(answer) => answer,
            Err(e) if !judged(&e) => return Err(e),
            Err(e) => return Ok(BroadcastOutcome::Rejected { reason: reason(&e) }),
        };
        package_verdict(answer, parent, child).map_err(undecodable)
    }
}

/// Whether a failed call carries bitcoind's own answer (a JSON-RPC error): a verdict on the
/// transaction. Anything else (no connection, an HTTP error, an undecodable reply) is not.
pub fn judged(e: &bitcoincore_rpc::Error) -> bool {
    matches!(e, bitcoincore_rpc::Error::JsonRpc(jsonrpc::Error::Rpc(_)))
}

impl Broadcaster for BitcoindSource {
    /// [`BitcoindSource::submit`]; a call that got no verdict is
    /// [`BroadcastOutcome::NotDelivered`] with the client's error as its reason.
    fn broadcast(&mut self, tx: &Transaction) -> BroadcastOutcome {
        self.submit(tx)
            .unwrap_or_else(|e| BroadcastOutcome::NotDelivered { reason: reason(&e) })
    }

    /// [`BitcoindSource::submit_package`], as [`Broadcaster::broadcast`].
    fn broadcast_package(&mut self, parent: &Transaction, child: &Transaction) -> BroadcastOutcome {
        self.submit_package(parent, child)
            .unwrap_or_else(|e| BroadcastOutcome::NotDelivered { reason: reason(&e) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    fn entry(ancestorcount: Option<u64>, depends: &[Txid]) -> MempoolEntry {
        let mut answer = serde_json::json!({"vsize": 141, "fees": {"base": 0.00000282},
                                            "depends": depends});
        if let Some(count) = ancestorcount {
            answer["ancestorcount"] = count.into();
        }
        mempool_entry(answer).unwrap()
    }

    fn order(entries: Vec<(Txid, MempoolEntry)>) -> Vec<Txid> {
        ready_in_order(entries, &BTreeSet::new())
            .into_iter()
            .map(|(txid, _)| txid)
            .collect()
    }

    #[test]
    fn a_mempool_chain_is_delivered_by_ancestor_count_then_txid() {
        let [a, b, c, d] = [[4u8; 32], [3; 32], [2; 32], [1; 32]].map(Txid::from_byte_array);
        // a ← b ← c, and d alone: d and a have no parent here, b and c one each.
        let entries = vec![
            (c, entry(Some(3), &[b])),
            (b, entry(Some(2), &[a])),
            (d, entry(Some(1), &[])),
            (a, entry(Some(1), &[])),
        ];
        assert_eq!(order(entries), vec![d, a, b, c]);
    }

    /// Found by the `bitcoind_answers` fuzz target: an entry without `ancestorcount` (read as
    /// 0) was delivered before its parent, which had 1.
    #[test]
    fn a_child_whose_answer_has_no_ancestor_count_still_comes_after_its_parent() {
        let [parent, child] = [[9u8; 32], [1; 32]].map(Txid::from_byte_array);
        let entries = vec![
            (child, entry(None, &[parent])),
            (parent, entry(Some(1), &[])),
        ];
        assert_eq!(order(entries), vec![parent, child]);
        // A wrong count too: the child claims fewer ancestors than its parent.
        let entries = vec![
            (child, entry(Some(2), &[parent])),
            (parent, entry(Some(5), &[])),
        ];
        assert_eq!(order(entries), vec![parent, child]);
    }
}
