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
