//! Hot standby on PostgreSQL: two `serve --postgres` processes on one store, one holding its
//! lease. The running one is killed by SIGKILL at seeded random moments of a force close with
//! two HTLCs; each time the standby takes over within the lease, a new standby is started, and
//! the close ends exactly as in an uninterrupted run, with no HTLC settled or failed upstream
//! twice (`sigkill.rs` compares). Last, a `serve` frozen (SIGSTOP) past its lease and thawed
//! after the standby took over finds its next commit fenced and stops, writing nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use contractcourt_sync::serve::client::NodeClient;
use serde_json::Value;

use crate::serve_kit::*;
use crate::sigkill::{close_with_htlcs, seed, seeded_kills, Deploy, Serving, KILLS};

/// The lease of the tests' `serve`s: a standby takes over at most this long after a kill.
pub(crate) const LEASE_MS: u64 = 1000;

/// The PostgreSQL test server (`scripts/test` starts one), or a failure saying what is missing.
fn postgres_url() -> String {
    match std::env::var("CONTRACTCOURT_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "CONTRACTCOURT_TEST_POSTGRES is not set: the hot standby tests need a PostgreSQL \
             server. Run them through scripts/test, or `scripts/pg-test-cluster start` and \
             export CONTRACTCOURT_TEST_POSTGRES=<the connection string it prints>"
        ),
    }
}

/// Two `serve`s on one PostgreSQL store: the running one and its standby.
pub(crate) struct HotStandby {
    dir: PathBuf,
    bitcoind: String,
    args: Vec<String>,
    schema: String,
    pub(crate) active: (ServeProcess, PathBuf),
    pub(crate) standby: (ServeProcess, PathBuf),
    started: usize,
    /// How long each takeover took, from the kill to the standby's socket.
    takeovers: Vec<Duration>,
}

impl HotStandby {
    pub(crate) fn start(dir: &Path, bitcoind: &str, args: Vec<String>, schema: &str) -> Self {
        let first = spawn_pg(dir, bitcoind, &args, schema, 0);
        wait_for_socket(&first.1, dir);
        let standby = spawn_pg(dir, bitcoind, &args, schema, 1);
        HotStandby {
            dir: dir.to_path_buf(),
            bitcoind: bitcoind.to_string(),
            args,
            schema: schema.to_string(),
            active: first,
            standby,
            started: 2,
            takeovers: Vec::new(),
        }
    }

    /// The standby took over: it is the running one now; start a new standby.
    fn promote(&mut self) {
        let next = spawn_pg(
            &self.dir,
            &self.bitcoind,
            &self.args,
            &self.schema,
            self.started,
        );
        self.started += 1;
        self.active = std::mem::replace(&mut self.standby, next);
    }
}

/// `serve --postgres` number `n` on the test server, with a socket and a log of its own. It
/// binds its socket only once it holds the lease.
fn spawn_pg(
    dir: &Path,
    bitcoind: &str,
    args: &[String],
    schema: &str,
    n: usize,
) -> (ServeProcess, PathBuf) {
    spawn_pg_on(&postgres_url(), dir, bitcoind, args, schema, n)
}

/// As [`spawn_pg`], on the PostgreSQL server at `url`.
pub(crate) fn spawn_pg_on(
    url: &str,
    dir: &Path,
    bitcoind: &str,
    args: &[String],
    schema: &str,
    n: usize,
) -> (ServeProcess, PathBuf) {
    let log = std::fs::File::create(dir.join(format!("serve-{n}.log"))).expect("log file");
    let socket = dir.join(format!("node-{n}.sock"));
    let cookie = dir.join("cookie");
    let child = Command::new(env!("CARGO_BIN_EXE_contractcourt"))
        .arg("serve")
        .args(["--postgres", url, "--postgres-schema", schema])
        .args(["--lease-ms", &LEASE_MS.to_string()])
        .arg("--socket")
        .arg(&socket)
        .args(["--bitcoind", bitcoind, "--bitcoind-cookie"])
        .arg(&cookie)
        .args(["--poll-ms", "30", "--max-backoff-ms", "100"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("serve starts");
    (ServeProcess(child), socket)
}

pub(crate) fn wait_for_socket(socket: &Path, dir: &Path) {
    let deadline = Instant::now() + TIMEOUT;
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "no socket {}: {}",
            socket.display(),
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn logs(dir: &Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| {
            format!(
                "== {}\n{}",
                p.display(),
                std::fs::read_to_string(p).unwrap_or_default()
            )
        })
        .collect()
}

pub(crate) fn signal(process: &ServeProcess, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &process.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

impl Serving for HotStandby {
    fn connect(&mut self, node: &mut SimNode<'_>) -> NodeClient {
        let mut client = NodeClient::connect(&self.active.1, TIMEOUT).expect("connects");
        let hello = contractcourt_sync::serve::protocol::Inbound::Hello {
            node: Some("test".into()),
        };
        client.send(&hello, node).expect("welcome");
        client
    }

    fn kill_and_recover(&mut self, meanwhile: &mut dyn FnMut()) {
        self.active.0.kill().unwrap(); // SIGKILL: the lease is not released; it expires
        let killed = Instant::now();
        let _ = self.active.0.wait();
        meanwhile();
        wait_for_socket(&self.standby.1, &self.dir);
        self.takeovers.push(killed.elapsed());
        self.promote();
    }

    fn inspect(&self) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_contractcourt"))
            .args([
                "inspect",
                "--postgres",
                &postgres_url(),
                "--postgres-schema",
                &self.schema,
            ])
            .arg("--json")
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn log(&self) -> String {
        logs(&self.dir)
    }

    /// Freeze the running `serve` past its lease, let the standby take over, thaw it: its next
    /// commit is fenced and it stops with an error, without writing anything.
    fn finish(&mut self, mine: &mut dyn FnMut()) {
        signal(&self.active.0, "STOP");
        wait_for_socket(&self.standby.1, &self.dir);
        let before = self.inspect();
        signal(&self.active.0, "CONT");
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            mine(); // a block: a step the thawed process must commit
            if let Some(status) = self.active.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the fenced serve still runs: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(!status.success(), "a fenced serve exits with an error");
        let log = std::fs::read_to_string(self.dir.join(format!("serve-{}.log", self.started - 2)))
            .unwrap_or_default();
        assert!(
            log.contains("fenced"),
            "the fenced serve says why it stopped: {log}"
        );
        // The thawed process changed nothing: the outputs are as before (the new owner follows
        // the blocks mined meanwhile, which resolve nothing more).
        assert_eq!(self.inspect()["outputs"], before["outputs"]);
    }
}

impl Drop for HotStandby {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&postgres_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

/// A schema no other run uses.
pub(crate) fn schema(name: &str) -> String {
    format!("failover_{name}_{}", std::process::id())
}

#[test]
fn a_hot_standby_on_postgres_takes_over_after_sigkills_and_the_close_ends_as_uninterrupted() {
    let seed = seed();
    println!("failover seed {seed} (CONTRACTCOURT_SIGKILL_SEED={seed} repeats these kills)");
    let takeovers = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let calm_deploy: Deploy<'_> =
        &|dir, url, args| Box::new(HotStandby::start(dir, url, args, &schema("calm")));
    let calm = close_with_htlcs("pg-calm", &[], calm_deploy);
    let kills = seeded_kills(seed, calm.blocks);
    println!("the close takes {} blocks; kills: {kills:?}", calm.blocks);
    let killed_deploy: Deploy<'_> = &|dir, url, args| {
        Box::new(Recording(
            HotStandby::start(dir, url, args, &schema("killed")),
            takeovers.clone(),
        ))
    };
    let killed = close_with_htlcs("pg-killed", &kills, killed_deploy);
    assert_eq!(
        killed.restarts, KILLS as usize,
        "seed {seed}: every kill came before resolution"
    );
    assert_eq!(
        killed.outputs, calm.outputs,
        "seed {seed}: an output ended otherwise"
    );
    assert_eq!(killed.decided, calm.decided, "seed {seed}");
    let takeovers = takeovers.lock().unwrap().clone();
    println!("takeovers: {takeovers:?}");
    assert_eq!(takeovers.len(), KILLS as usize);
    for took in takeovers {
        assert!(
            took < Duration::from_millis(LEASE_MS) + Duration::from_secs(3),
            "a takeover took {took:?} with a {LEASE_MS} ms lease"
        );
    }
}

/// A [`HotStandby`] that hands its takeover times out when it finishes.
struct Recording(HotStandby, std::sync::Arc<std::sync::Mutex<Vec<Duration>>>);

impl Serving for Recording {
    fn connect(&mut self, node: &mut SimNode<'_>) -> NodeClient {
        self.0.connect(node)
    }
    fn kill_and_recover(&mut self, meanwhile: &mut dyn FnMut()) {
        self.0.kill_and_recover(meanwhile)
    }
    fn inspect(&self) -> Value {
        self.0.inspect()
    }
    fn log(&self) -> String {
        self.0.log()
    }
    fn finish(&mut self, mine: &mut dyn FnMut()) {
        self.0.finish(mine);
        self.1.lock().unwrap().extend(self.0.takeovers.drain(..));
    }
}
