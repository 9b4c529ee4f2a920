//! A PostgreSQL cluster of a test's own (`scripts/pg-test-cluster` in a fresh directory), for
//! tests that restart the server: restarting the shared test server would cut every other
//! test's sessions. Stopped and removed when dropped. Needs the same PostgreSQL installation as
//! the shared server (`CONTRACTCOURT_TEST_POSTGRES` set says it is there).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// A running private cluster.
pub struct PrivateCluster {
    dir: PathBuf,
    /// Its connection string.
    pub url: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-test-cluster")
}

fn run(command: &str, dir: &std::path::Path) -> String {
    let out = Command::new(script())
        .arg(command)
        .arg(dir)
        .output()
        .expect("scripts/pg-test-cluster runs");
    assert!(
        out.status.success(),
        "pg-test-cluster {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl PrivateCluster {
    /// Make and start one (a few seconds: `initdb`).
    pub fn start(name: &str) -> Self {
        assert!(
            std::env::var_os("CONTRACTCOURT_TEST_POSTGRES").is_some(),
            "CONTRACTCOURT_TEST_POSTGRES is not set: PostgreSQL tests need its installation \
             (run them through scripts/test, or start scripts/pg-test-cluster)"
        );
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cc-pg-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let url = run("start", &dir);
        PrivateCluster { dir, url }
    }

    /// Stop the server (fast: every session is cut) and start it again; returns once it
    /// accepts connections.
    pub fn restart(&self) {
        run("restart", &self.dir);
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).output();
    }
}
