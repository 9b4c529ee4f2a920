//! Loopback servers for the chain source tests: a tiny HTTP server on `127.0.0.1:0` that speaks
//! either the bitcoind JSON-RPC methods the bitcoind source uses or the Esplora REST endpoints
//! the Esplora source uses, answering from an [`EmbeddedChain`] shared behind a mutex.
//!
//! Like bitcoind, it keeps the header of every block it has seen (stale ones included) for
//! `getblockheader`; like an Esplora server, its `/block/:hash/header` knows only the best chain.
//! Rejections are written as bitcoind writes them: the reject code, a comma, the detail.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use bitcoin::block::Header;
use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::{BlockHash, Transaction, Txid};
use contractcourt_core::types::Height;
use contractcourt_sync::chain::embedded::{EmbeddedChain, MempoolReject};
use serde_json::{json, Value};

/// Which protocol a server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// bitcoind's JSON-RPC.
    Bitcoind,
    /// Esplora's REST API.
    Esplora,
}

/// What a server answers from, and what it saw.
pub struct Backend {
    /// The chain.
    pub chain: Arc<Mutex<EmbeddedChain>>,
    /// Every header seen on the active chain, stale ones included (bitcoind's block index).
    seen: Mutex<BTreeMap<BlockHash, Header>>,
    /// Every call, in order: the RPC method, or `METHOD /path`.
    calls: Mutex<Vec<String>>,
    /// The last rejection text sent.
    last_rejection: Mutex<Option<String>>,
    /// The `Authorization` header every request must carry (`None`: no check); a request
    /// without it is answered 401 with no body, as bitcoind answers.
    pub auth: Mutex<Option<String>>,
    /// What `getblockchaininfo` says of initial block download.
    pub in_download: std::sync::atomic::AtomicBool,
    /// Whether the server answers at all (`false`: every request gets a 503, as from a node
    /// that is down behind a proxy).
    pub up: std::sync::atomic::AtomicBool,
}

/// Lock, using a poisoned mutex anyway (a failed assertion in another test thread must not hide
/// this one's result).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running loopback server; stops when dropped.
pub struct LoopbackServer {
    /// What it answers from.
    pub backend: Arc<Backend>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl LoopbackServer {
    /// Start a server speaking `protocol` over `chain`.
    pub fn start(protocol: Protocol, chain: Arc<Mutex<EmbeddedChain>>) -> LoopbackServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let addr = server
            .server_addr()
            .to_ip()
            .expect("a TCP listener has an IP address");
        let backend = Arc::new(Backend {
            chain,
            seen: Mutex::new(BTreeMap::new()),
            calls: Mutex::new(Vec::new()),
            last_rejection: Mutex::new(None),
            auth: Mutex::new(None),
            in_download: std::sync::atomic::AtomicBool::new(false),
            up: std::sync::atomic::AtomicBool::new(true),
        });
        backend.note_chain();
        let thread = {
            let server = server.clone();
            let backend = backend.clone();
            std::thread::spawn(move || serve(&server, &backend, protocol))
        };
        LoopbackServer {
            backend,
            server,
            thread: Some(thread),
            addr,
        }
    }

    /// The server's URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.backend.calls).clone()
    }

    /// Forget the calls so far.
    pub fn clear_calls(&self) {
        lock(&self.backend.calls).clear();
    }

    /// The last rejection text the server sent.
    pub fn last_rejection(&self) -> Option<String> {
        lock(&self.backend.last_rejection).clone()
    }

    /// Remember the headers of the chain as it is now (call before a reorg, so that the stale
    /// blocks stay known, as bitcoind's block index keeps them).
    pub fn note_chain(&self) {
        self.backend.note_chain();
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A URL on loopback where nothing listens (a port bound and released at once).
pub fn closed_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    drop(listener);
    format!("http://{addr}")
}

/// HTTP basic authentication's header value for `user:password`.
// Used by tests/serve/ only.
#[allow(dead_code)]
pub fn basic_auth(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::from("Basic ");
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn authorized(backend: &Backend, request: &tiny_http::Request) -> bool {
    let Some(expected) = lock(&backend.auth).clone() else {
        return true;
    };
    request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Authorization") && h.value.as_str() == expected)
}

fn serve(server: &tiny_http::Server, backend: &Backend, protocol: Protocol) {
    use std::sync::atomic::Ordering;
    for mut request in server.incoming_requests() {
        let mut body = Vec::new();
        let (status, content) = match request.as_reader().read_to_end(&mut body) {
            Err(e) => (400, format!("cannot read the request: {e}").into_bytes()),
            Ok(_) if !backend.up.load(Ordering::SeqCst) => {
                backend.record("503".to_owned());
                (503, b"down".to_vec())
            }
            Ok(_) if !authorized(backend, &request) => {
                backend.record("401".to_owned());
                (401, Vec::new())
            }
            Ok(_) => {
                backend.note_chain();
                match protocol {
                    Protocol::Bitcoind => backend.rpc(&body),
                    Protocol::Esplora => {
                        let method = request.method().as_str().to_owned();
                        let url = request.url().to_owned();
                        backend.rest(&method, &url, &body)
                    }
                }
            }
        };
        let response = tiny_http::Response::from_data(content)
            .with_status_code(status)
            .with_chunked_threshold(usize::MAX);
        let _ = request.respond(response);
    }
}

/// bitcoind's message for a mempool rejection: the reject code, then the detail.
pub fn bitcoind_reason(e: &MempoolReject) -> String {
    format!("{}, {e}", e.code())
}

/// An RPC error: (code, message).
type RpcError = (i64, String);

fn param(params: &[Value], i: usize) -> Result<&Value, RpcError> {
    params.get(i).ok_or((-1, format!("missing parameter {i}")))
}

fn hash_param(params: &[Value], i: usize) -> Result<BlockHash, RpcError> {
    param(params, i)?
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or((-8, "blockhash must be a hash".to_owned()))
}

fn txid_param(params: &[Value], i: usize) -> Result<Txid, RpcError> {
    param(params, i)?
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or((-8, "txid must be a hash".to_owned()))
}

fn tx_from_hex(hex: &str) -> Result<Transaction, RpcError> {
    deserialize_hex(hex).map_err(|_| (-22, "TX decode failed".to_owned()))
}

fn btc(sat: u64) -> f64 {
    bitcoin::Amount::from_sat(sat).to_btc()
}

impl Backend {
    fn note_chain(&self) {
        let chain = lock(&self.chain);
        let mut seen = lock(&self.seen);
        for height in 0..=chain.height() {
            if let Some(block) = chain.raw_block_at(height) {
                seen.insert(block.block_hash(), block.header);
            }
        }
    }

    fn record(&self, call: String) {
        lock(&self.calls).push(call);
    }

    fn reject(&self, text: String) -> String {
        *lock(&self.last_rejection) = Some(text.clone());
        text
    }

    /// The active chain's height of `hash`.
    fn active_height(chain: &EmbeddedChain, hash: &BlockHash) -> Option<Height> {
        (0..=chain.height()).find(|h| chain.block_hash_at(*h) == Some(*hash))
    }

    fn rpc(&self, body: &[u8]) -> (u16, Vec<u8>) {
        let request: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return (400, format!("not JSON: {e}").into_bytes()),
        };
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let method = request
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let params = request
            .get("params")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        self.record(method.clone());
        let (status, reply) = match self.rpc_call(&method, &params) {
            Ok(result) => (200, json!({"result": result, "error": null, "id": id})),
            Err((code, message)) => (
                500,
                json!({"result": null, "error": {"code": code, "message": message}, "id": id}),
            ),
        };
        (status, reply.to_string().into_bytes())
    }

    fn rpc_call(&self, method: &str, params: &[Value]) -> Result<Value, RpcError> {
        match method {
            "getblockchaininfo" => {
                let chain = lock(&self.chain);
                let tip = chain.tip();
                Ok(json!({
                    "chain": "regtest",
                    "initialblockdownload": self.in_download.load(std::sync::atomic::Ordering::SeqCst),
                    "blocks": tip.height,
                    "headers": tip.height,
                    "bestblockhash": tip.hash.to_string(),
                }))
            }
            "getblockhash" => {
                let height = param(params, 0)?
                    .as_u64()
                    .ok_or((-8, "height must be a number".to_owned()))?;
                let chain = lock(&self.chain);
                Height::try_from(height)
                    .ok()
                    .and_then(|h| chain.block_hash_at(h))
                    .map(|h| json!(h.to_string()))
                    .ok_or((-8, "Block height out of range".to_owned()))
            }
            "getblockheader" => {
                let hash = hash_param(params, 0)?;
                if params.get(1).and_then(Value::as_bool) != Some(false) {
                    return Err((-1, "this server serves raw headers only".to_owned()));
                }
                lock(&self.seen)
                    .get(&hash)
                    .map(|h| json!(serialize_hex(h)))
                    .ok_or((-5, "Block not found".to_owned()))
            }
            "getblock" => {
                let hash = hash_param(params, 0)?;
                if params.get(1).and_then(Value::as_u64) != Some(0) {
                    return Err((-1, "this server serves raw blocks only".to_owned()));
                }
                let chain = lock(&self.chain);
                Self::active_height(&chain, &hash)
                    .and_then(|h| chain.raw_block_at(h))
                    .map(|b| json!(serialize_hex(b)))
                    .ok_or((-5, "Block not found".to_owned()))
            }
            "getmempoolentry" => {
                let txid = txid_param(params, 0)?;
                let entries = self.rpc_call("getrawmempool", &[json!(true)])?;
                entries
                    .get(txid.to_string())
                    .cloned()
                    .ok_or((-5, "Transaction not in mempool".to_owned()))
            }
            "getrawmempool" => {
                let verbose = params.first().and_then(Value::as_bool).unwrap_or(false);
                let chain = lock(&self.chain);
                let txs = chain.mempool_txs();
                if !verbose {
                    let txids: Vec<String> = txs.iter().map(|t| t.txid.to_string()).collect();
                    return Ok(json!(txids));
                }
                let in_pool: BTreeSet<Txid> = txs.iter().map(|t| t.txid).collect();
                let parents: BTreeMap<Txid, BTreeSet<Txid>> = txs
                    .iter()
                    .map(|t| {
                        let ps =
                            t.tx.input
                                .iter()
                                .map(|i| i.previous_output.txid)
                                .filter(|p| in_pool.contains(p))
                                .collect();
                        (t.txid, ps)
                    })
                    .collect();
                let mut out = serde_json::Map::new();
                for t in &txs {
                    let ancestors = ancestors_of(&t.txid, &parents);
                    let depends: Vec<String> = parents
                        .get(&t.txid)
                        .into_iter()
                        .flatten()
                        .map(Txid::to_string)
                        .collect();
                    out.insert(
                        t.txid.to_string(),
                        json!({
                            "vsize": t.vsize,
                            "weight": t.weight,
                            "fees": {
                                "base": btc(t.fee_sat),
                                "modified": btc(t.fee_sat),
                            },
                            "ancestorcount": ancestors.len() + 1,
                            "depends": depends,
                        }),
                    );
                }
                Ok(Value::Object(out))
            }
            "getrawtransaction" => {
                let txid = txid_param(params, 0)?;
                lock(&self.chain)
                    .mempool_tx(&txid)
                    .map(|t| json!(serialize_hex(&t.tx)))
                    .ok_or((
                        -5,
                        "No such mempool transaction. Use -txindex or provide a block hash to \
                         enable blockchain transaction queries. Use gettransaction for wallet \
                         transactions."
                            .to_owned(),
                    ))
            }
            "sendrawtransaction" => {
                let hex = param(params, 0)?
                    .as_str()
                    .ok_or((-1, "hexstring must be a string".to_owned()))?;
                let tx = tx_from_hex(hex)?;
                let result = lock(&self.chain).submit(tx);
                match result {
                    Ok(txid) => Ok(json!(txid.to_string())),
                    Err(e) => Err((-26, self.reject(bitcoind_reason(&e)))),
                }
            }
            "submitpackage" => {
                let txs = param(params, 0)?
                    .as_array()
                    .ok_or((-1, "package must be an array".to_owned()))?
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .ok_or((-22, "TX decode failed".to_owned()))
                            .and_then(tx_from_hex)
                    })
                    .collect::<Result<Vec<Transaction>, RpcError>>()?;
                Ok(self.submit_package(txs))
            }
            // Regtest answers: 2 sat/vB for 1 to 6 blocks, 1 sat/vB beyond; bitcoind's default
            // relay floors (BTC per kvB).
            "estimatesmartfee" => {
                let target = param(params, 0)?
                    .as_u64()
                    .ok_or((-8, "conf_target must be a number".to_owned()))?;
                let rate = if target <= 6 { 0.00002 } else { 0.00001 };
                Ok(json!({"feerate": rate, "blocks": target}))
            }
            "getmempoolinfo" => Ok(json!({
                "loaded": true,
                "size": lock(&self.chain).mempool_txs().len(),
                "mempoolminfee": 0.00001,
                "minrelaytxfee": 0.00001,
                "incrementalrelayfee": 0.00001,
            })),
            other => Err((-32601, format!("Method not found: {other}"))),
        }
    }

    /// `submitpackage`'s answer (the same for bitcoind and Esplora).
    fn submit_package(&self, txs: Vec<Transaction>) -> Value {
        let [parent, child]: [Transaction; 2] = match txs.try_into() {
            Ok(pair) => pair,
            Err(_) => {
                return json!({
                    "package_msg": self.reject("package-not-child-with-parents".to_owned()),
                    "tx-results": {},
                })
            }
        };
        let members = [parent.clone(), child.clone()];
        let mut chain = lock(&self.chain);
        match chain.submit_package(parent, child) {
            Ok(_) => {
                let mut results = serde_json::Map::new();
                for tx in &members {
                    let txid = tx.compute_txid();
                    let entry = chain.mempool_tx(&txid);
                    results.insert(
                        tx.compute_wtxid().to_string(),
                        json!({
                            "txid": txid.to_string(),
                            "vsize": entry.as_ref().map(|e| e.vsize),
                            "fees": {"base": btc(entry.map_or(0, |e| e.fee_sat))},
                        }),
                    );
                }
                json!({"package_msg": "success", "tx-results": results, "replaced-transactions": []})
            }
            Err(MempoolReject::PackageMember { index, reject }) => {
                let error = self.reject(bitcoind_reason(&reject));
                let mut results = serde_json::Map::new();
                if let Some(tx) = members.get(index) {
                    results.insert(
                        tx.compute_wtxid().to_string(),
                        json!({"txid": tx.compute_txid().to_string(), "error": error}),
                    );
                }
                json!({"package_msg": "transaction failed", "tx-results": results})
            }
            Err(e) => json!({
                "package_msg": self.reject(bitcoind_reason(&e)),
                "tx-results": {},
            }),
        }
    }

    fn rest(&self, method: &str, url: &str, body: &[u8]) -> (u16, Vec<u8>) {
        self.record(format!("{method} {url}"));
        let path: Vec<&str> = url.trim_start_matches('/').split('/').collect();
        let chain = || lock(&self.chain);
        let not_found = (404, b"Block not found".to_vec());
        match (method, path.as_slice()) {
            ("GET", ["fee-estimates"]) => (
                200,
                json!({"1": 2.0, "6": 2.0, "144": 1.0})
                    .to_string()
                    .into_bytes(),
            ),
            ("GET", ["blocks", "tip", "height"]) => {
                (200, chain().height().to_string().into_bytes())
            }
            ("GET", ["blocks", "tip", "hash"]) => {
                (200, chain().tip().hash.to_string().into_bytes())
            }
            ("GET", ["block-height", height]) => {
                match height
                    .parse::<Height>()
                    .ok()
                    .and_then(|h| chain().block_hash_at(h))
                {
                    Some(hash) => (200, hash.to_string().into_bytes()),
                    None => not_found,
                }
            }
            ("GET", ["block", hash, what]) => {
                let Ok(hash) = hash.parse::<BlockHash>() else {
                    return (400, b"Invalid hex string".to_vec());
                };
                let chain = chain();
                let Some(block) =
                    Self::active_height(&chain, &hash).and_then(|h| chain.raw_block_at(h))
                else {
                    return not_found;
                };
                match *what {
                    "header" => (200, serialize_hex(&block.header).into_bytes()),
                    "raw" => (200, bitcoin::consensus::serialize(block)),
                    _ => (404, b"not found".to_vec()),
                }
            }
            ("POST", ["tx"]) => {
                let hex = String::from_utf8_lossy(body);
                let tx = match tx_from_hex(hex.trim()) {
                    Ok(tx) => tx,
                    Err((code, message)) => return (400, electrs_error(code, &message)),
                };
                let result = chain().submit(tx);
                match result {
                    Ok(txid) => (200, txid.to_string().into_bytes()),
                    Err(e) => {
                        let body = electrs_error(-26, &bitcoind_reason(&e));
                        self.reject(String::from_utf8_lossy(&body).into_owned());
                        (400, body)
                    }
                }
            }
            ("POST", ["txs", "package"]) => {
                let hexes: Vec<String> = match serde_json::from_slice(body) {
                    Ok(h) => h,
                    Err(e) => return (400, format!("invalid package: {e}").into_bytes()),
                };
                let txs = match hexes
                    .iter()
                    .map(|h| tx_from_hex(h))
                    .collect::<Result<Vec<Transaction>, RpcError>>()
                {
                    Ok(txs) => txs,
                    Err((code, message)) => return (400, electrs_error(code, &message)),
                };
                (200, self.submit_package(txs).to_string().into_bytes())
            }
            _ => (404, b"not found".to_vec()),
        }
    }
}

/// How electrs passes a bitcoind RPC error on to an Esplora client.
fn electrs_error(code: i64, message: &str) -> Vec<u8> {
    format!(
        "sendrawtransaction RPC error: {}",
        json!({"code": code, "message": message})
    )
    .into_bytes()
}

fn ancestors_of(txid: &Txid, parents: &BTreeMap<Txid, BTreeSet<Txid>>) -> BTreeSet<Txid> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<Txid> = parents.get(txid).into_iter().flatten().copied().collect();
    while let Some(p) = todo.pop() {
        if out.insert(p) {
            todo.extend(parents.get(&p).into_iter().flatten().copied());
        }
    }
    out
}
