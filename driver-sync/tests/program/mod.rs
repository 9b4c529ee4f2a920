//! The `contractcourt` program as the tests run it: from the workspace root, as a user would.
#![allow(dead_code)] // each test binary uses its part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (scenarios, docs).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Run the program with `args` from the workspace root.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_contractcourt"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the binary runs")
}

/// A store whose channel never closed (tests/data/open-channel.json, five blocks run).
pub fn open_channel_store(dir: &Path) -> PathBuf {
    let db = dir.join("open.sqlite");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/open-channel.json");
    let (db_arg, path) = (
        db.to_str().expect("utf-8"),
        scenario.to_str().expect("utf-8"),
    );
    let o = run(&["simulate", "--db", db_arg, path]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "not closed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    db
}
