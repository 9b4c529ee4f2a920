//! The PostgreSQL server restarted under a running `serve` (a cluster of the test's own): at
//! seeded moments of the force close with two HTLCs (`sigkill.rs`), `pg_ctl restart` cuts the
//! engine's connections; `serve` reconnects and goes on, never exiting, and the close ends as in
//! an uninterrupted run, with no HTLC settled or failed upstream twice.

use std::path::{Path, PathBuf};
use std::process::Command;

use contractcourt_sync::serve::client::NodeClient;
use serde_json::Value;

use crate::failover::{logs, spawn_pg_on, wait_for_socket};
use crate::pg_cluster::PrivateCluster;
use crate::serve_kit::*;
use crate::sigkill::{close_with_htlcs, seed, seeded_kills, Deploy, Serving, KILLS};

/// One `serve --postgres` on a private cluster that is restarted instead of `serve` killed.
struct ServerRestarted {
    dir: PathBuf,
    schema: String,
    serve: (ServeProcess, PathBuf),
    restarts: usize,
    /// Dropped last: `serve` is stopped before its server.
    cluster: PrivateCluster,
}

impl ServerRestarted {
    fn start(cluster: PrivateCluster, dir: &Path, bitcoind: &str, args: &[String]) -> Self {
        let schema = "close";
        let serve = spawn_pg_on(&cluster.url, dir, bitcoind, args, schema, 0);
        wait_for_socket(&serve.1, dir);
        ServerRestarted {
            cluster,
            dir: dir.to_path_buf(),
            schema: schema.to_string(),
            serve,
            restarts: 0,
        }
    }

    fn assert_running(&mut self) {
        let exited = self.serve.0.try_wait().unwrap();
        assert!(
            exited.is_none(),
            "serve exited ({exited:?}): {}",
            self.log()
        );
    }
}

impl Serving for ServerRestarted {
    fn connect(&mut self, node: &mut SimNode<'_>) -> NodeClient {
        let mut client = NodeClient::connect(&self.serve.1, TIMEOUT).expect("connects");
        let hello = contractcourt_sync::serve::protocol::Inbound::Hello {
            node: Some("test".into()),
        };
        client.send(&hello, node).expect("welcome");
        client
    }

    /// Not a kill: the database server restarts while `serve` works on a block; a block is
    /// mined once it is back.
    fn kill_and_recover(&mut self, meanwhile: &mut dyn FnMut()) {
        self.cluster.restart();
        self.restarts += 1;
        meanwhile();
        self.assert_running();
    }

    fn inspect(&self) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_contractcourt"))
            .args(["inspect", "--postgres", &self.cluster.url])
            .args(["--postgres-schema", &self.schema, "--json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn log(&self) -> String {
        logs(&self.dir)
    }

    fn finish(&mut self, _mine: &mut dyn FnMut()) {
        self.assert_running();
        // A failed renewal is logged once per outage, not at every try.
        let log = self.log();
        let failures = log.matches("renewing the store's lease failed").count();
        assert!(
            failures <= self.restarts,
            "{failures} renewal failures logged: {log}"
        );
    }
}

#[test]
fn serve_rides_through_postgres_restarts_and_the_close_ends_as_uninterrupted() {
    let seed = seed();
    println!("pg restart seed {seed} (CONTRACTCOURT_SIGKILL_SEED={seed} repeats these moments)");
    // A cluster per run: each close starts on an empty store.
    let deploy: Deploy<'_> = &|dir, url, args| {
        let cluster = PrivateCluster::start("serve");
        Box::new(ServerRestarted::start(cluster, dir, url, &args))
    };
    let calm = close_with_htlcs("pg-restart-calm", &[], deploy);
    let restarts = seeded_kills(seed, calm.blocks);
    println!(
        "the close takes {} blocks; restarts: {restarts:?}",
        calm.blocks
    );
    let restarted = close_with_htlcs("pg-restart-restarted", &restarts, deploy);
    assert_eq!(restarted.restarts, KILLS as usize, "seed {seed}");
    assert_eq!(
        restarted.outputs, calm.outputs,
        "seed {seed}: an output ended otherwise"
    );
    assert_eq!(restarted.decided, calm.decided, "seed {seed}");
}
