//! What the `serve` tests share: `contractcourt serve` as a child process against a loopback
//! bitcoind, the reference client as the node (signing with the `sim` channels' keys), the
//! embedded chain behind the server.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bitcoin::{Amount, FeeRate, OutPoint};
use contractcourt_core::action::{FundingRequest, SignRequest};
use contractcourt_core::bolt3::scripts::funding_script;
use contractcourt_core::bolt3::ChannelType;
use contractcourt_core::event::{Event, FundingOutcome, SignOutcome};
use contractcourt_core::sim::{sign_per_channel, PartySecrets, SimChannel, SimSetup};
use contractcourt_core::types::ChannelId;
use contractcourt_sync::chain::embedded::{EmbeddedChain, TestWallet};
use contractcourt_sync::serve::client::{Answerer, NodeClient};
use contractcourt_sync::serve::protocol::{ErrorCode, Inbound, Outbound};
use serde_json::Value;

use crate::support::{basic_auth, lock, LoopbackServer};

/// A `serve` child process, killed when dropped (a failed test leaves no process behind).
pub struct ServeProcess(pub Child);

impl std::ops::Deref for ServeProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ServeProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run `command` to its end, or kill it and fail after `TIMEOUT`.
pub fn output_within_timeout(command: &mut Command) -> std::process::Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the program starts");
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().expect("waitable").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("its output")
}

pub type Shared = Arc<Mutex<EmbeddedChain>>;

pub const TIMEOUT: Duration = Duration::from_secs(20);

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cc-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// `contractcourt serve` on `dir/engine.sqlite` and `dir/node.sock`, following `url` with the
/// cookie in `dir/cookie`; its log in `dir/serve.log` (appended).
pub fn spawn_serve(dir: &Path, url: &str, extra: &[&str]) -> ServeProcess {
    let cookie = dir.join("cookie");
    let cookie = cookie.to_str().expect("utf-8");
    spawn(
        dir,
        &["--bitcoind", url, "--bitcoind-cookie", cookie],
        extra,
    )
}

/// `contractcourt serve` with these source flags.
pub fn spawn(dir: &Path, source: &[&str], extra: &[&str]) -> ServeProcess {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .expect("log file");
    // A socket left by a killed run is replaced by the new one: wait for that one.
    let _ = std::fs::remove_file(dir.join("node.sock"));
    let child = Command::new(env!("CARGO_BIN_EXE_contractcourt"))
        .arg("serve")
        .arg("--db")
        .arg(dir.join("engine.sqlite"))
        .arg("--socket")
        .arg(dir.join("node.sock"))
        .args(source)
        .args(["--poll-ms", "30", "--max-backoff-ms", "100"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("serve starts");
    let socket = dir.join("node.sock");
    let deadline = Instant::now() + TIMEOUT;
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no socket: {}", log_of(dir));
        std::thread::sleep(Duration::from_millis(10));
    }
    ServeProcess(child)
}

pub fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
}

pub fn write_cookie(dir: &Path, server: &LoopbackServer, password: &str) {
    std::fs::write(dir.join("cookie"), format!("__cookie__:{password}")).expect("cookie");
    *lock(&server.backend.auth) = Some(basic_auth("__cookie__", password));
}

/// The node's signer: the sim's own keys; no wallet.
pub struct SimNode<'a>(pub &'a SimChannel);

impl Answerer for SimNode<'_> {
    fn sign(&mut self, request: &SignRequest) -> SignOutcome {
        self.0.local.sign(request)
    }
    fn fund(&mut self, _: &FundingRequest) -> FundingOutcome {
        FundingOutcome::Failed {
            reason: "no wallet".into(),
        }
    }
}

/// Answers nothing (for tests with no channel).
pub struct NoKeys;

impl Answerer for NoKeys {
    fn sign(&mut self, _: &SignRequest) -> SignOutcome {
        SignOutcome::Failed {
            reason: "no keys".into(),
        }
    }
    fn fund(&mut self, _: &FundingRequest) -> FundingOutcome {
        FundingOutcome::Failed {
            reason: "no wallet".into(),
        }
    }
}

pub fn connect(dir: &Path, answerer: &mut dyn Answerer) -> NodeClient {
    let mut client = NodeClient::connect(&dir.join("node.sock"), TIMEOUT).expect("connects");
    let reply = client
        .send(
            &Inbound::Hello {
                node: Some("test".into()),
            },
            answerer,
        )
        .expect("welcome");
    assert!(matches!(reply, Outbound::Welcome { .. }), "{reply:?}");
    client
}

/// The engine's tip height, by `ping`.
pub fn engine_height(client: &mut NodeClient, answerer: &mut dyn Answerer) -> Option<u32> {
    match client.send(&Inbound::Ping, answerer).expect("pong") {
        Outbound::Pong { tip, .. } => tip.map(|t| t.height),
        other => panic!("not a pong: {other:?}"),
    }
}

/// Wait until the engine's tip is the chain's (or `timeout`); whether it got there.
pub fn follows(
    client: &mut NodeClient,
    chain: &Shared,
    answerer: &mut dyn Answerer,
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let want = lock(chain).height();
        if engine_height(client, answerer) == Some(want) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        client
            .pump(Duration::from_millis(20), answerer)
            .expect("the engine stays connected");
    }
}

pub fn mine(chain: &Shared, n: u32, wallet: &TestWallet) {
    lock(chain)
        .mine_blocks(n, wallet.script_pubkey())
        .expect("blocks mined");
}

pub fn chain_with(blocks: u32, wallet: &TestWallet) -> Shared {
    let chain = Arc::new(Mutex::new(
        EmbeddedChain::new_temp().expect("the kernel starts"),
    ));
    mine(&chain, blocks, wallet);
    chain
}

pub fn error_code(reply: &Outbound) -> Option<ErrorCode> {
    match reply {
        Outbound::Error { code, .. } => Some(*code),
        _ => None,
    }
}

/// A funded `StaticRemoteKey` channel on `chain` with short delays, and its open events.
pub fn funded_channel(
    chain: &Shared,
    wallet: &TestWallet,
    seed: u64,
) -> (SimChannel, Vec<Event>, u32) {
    let mut setup = SimSetup::new(seed, ChannelType::StaticRemoteKey);
    setup.local_to_self_delay = 6;
    setup.remote_to_self_delay = 6;
    let local = PartySecrets::from_seed(&setup.seed, "local").basepoints();
    let remote = PartySecrets::from_seed(&setup.seed, "remote").basepoints();
    let spk = funding_script(&local.funding_pubkey, &remote.funding_pubkey).to_p2wsh();
    let tx = wallet
        .fund(
            &lock(chain),
            spk.clone(),
            Amount::from_sat(setup.funding_sat),
            FeeRate::from_sat_per_vb_u32(2),
        )
        .unwrap();
    let vout = tx
        .output
        .iter()
        .position(|o| o.script_pubkey == spk)
        .unwrap() as u32;
    let txid = lock(chain).submit(tx).unwrap();
    mine(chain, 1, wallet);
    let start = lock(chain).height();
    setup.funding_outpoint = Some(OutPoint { txid, vout });
    let (sim, events) = SimChannel::open(setup).unwrap();
    (sim, events, start)
}

/// The node's signer for many channels: each channel's sim keys; no wallet.
pub struct SimNodes(pub BTreeMap<ChannelId, PartySecrets>);

impl Answerer for SimNodes {
    fn sign(&mut self, request: &SignRequest) -> SignOutcome {
        sign_per_channel(request, |channel| self.0.get(channel))
    }
    fn fund(&mut self, _: &FundingRequest) -> FundingOutcome {
        FundingOutcome::Failed {
            reason: "no wallet".into(),
        }
    }
}

/// `contractcourt inspect --db PATH --json` (read only, while serve holds the store).
pub fn inspect(dir: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_contractcourt"))
        .arg("inspect")
        .arg("--db")
        .arg(dir.join("engine.sqlite"))
        .arg("--json")
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}
