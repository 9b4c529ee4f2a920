//! Build facts for `contractcourt --version`: the git commit the program was built from
//! (`unknown` outside a git checkout or without git) and the Bitcoin Core kernel the embedded
//! chain links (the `libbitcoinkernel-sys` crate locked in `Cargo.lock`, and the Bitcoin Core
//! version of its sources when they can be read).

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The commit HEAD names.
fn commit(dir: &Path) -> String {
    let Some(hash) = git(dir, &["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".to_owned();
    };
    // Rebuild when HEAD moves (a commit, a checkout). Only files that exist are named: cargo
    // reruns a build script on every build while a file it names is missing, and a checkout
    // need not have `packed-refs` (nor a loose file for a packed branch).
    for name in ["HEAD", "packed-refs"] {
        if let Some(p) = git(dir, &["rev-parse", "--git-path", name]) {
            rerun_if_exists(&dir.join(p));
        }
    }
    if let Some(head_ref) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git(dir, &["rev-parse", "--git-path", &head_ref]) {
            let path = dir.join(p);
            if !rerun_if_exists(&path) {
                // A packed branch: its next commit writes the loose file in this directory.
                if let Some(parent) = path.parent() {
                    rerun_if_exists(parent);
                }
            }
        }
    }
    hash
}

/// Ask cargo to rerun this script when `path` changes, if it exists; whether it does.
fn rerun_if_exists(path: &Path) -> bool {
    let exists = path.exists();
    if exists {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    exists
}

/// The version of `package` locked in `lock` (a Cargo.lock's text).
fn locked_version(lock: &str, package: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{package}\"") {
            let version = lines.next()?.trim();
            return version
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_owned);
        }
    }
    None
}

/// `MAJOR.MINOR.BUILD` of the Bitcoin Core sources a `libbitcoinkernel-sys` crate builds.
fn core_version(sys_version: &str) -> Option<String> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let src = home.join("registry").join("src");
    for index in std::fs::read_dir(src).ok()?.flatten() {
        let cmake = index
            .path()
            .join(format!("libbitcoinkernel-sys-{sys_version}"))
            .join("bitcoin")
            .join("CMakeLists.txt");
        let Ok(text) = std::fs::read_to_string(&cmake) else {
            continue;
        };
        let part = |name: &str| {
            text.lines().find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("set({name} "))
                    .and_then(|r| r.strip_suffix(')'))
                    .map(str::to_owned)
            })
        };
        let (major, minor, build) = (
            part("CLIENT_VERSION_MAJOR")?,
            part("CLIENT_VERSION_MINOR")?,
            part("CLIENT_VERSION_BUILD")?,
        );
        return Some(format!("{major}.{minor}.{build}"));
    }
    None
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!(
        "cargo:rustc-env=CONTRACTCOURT_GIT_COMMIT={}",
        commit(&manifest)
    );
    let lock_path = manifest.join("..").join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    let lock = std::fs::read_to_string(&lock_path).unwrap_or_default();
    let kernel = match locked_version(&lock, "libbitcoinkernel-sys") {
        Some(v) => match core_version(&v) {
            Some(core) => format!("Bitcoin Core {core} (libbitcoinkernel-sys {v})"),
            None => format!("libbitcoinkernel-sys {v}"),
        },
        None => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=CONTRACTCOURT_KERNEL={kernel}");
    println!("cargo:rerun-if-changed=build.rs");
}
