//! A temporary data directory for the kernel, removed on drop (no extra crate needed).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::ChainError;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system's temporary directory, named by process id and a
/// counter, removed with everything in it when dropped.
#[derive(Debug)]
pub(super) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Create a fresh, empty directory (a stale one of a dead process with the same id is
    /// removed first).
    pub(super) fn new() -> Result<TempDir, ChainError> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "contractcourt-embedded-chain-{}-{n}",
            std::process::id()
        ));
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| io_error(&path, &e))?;
        }
        std::fs::create_dir_all(&path).map_err(|e| io_error(&path, &e))?;
        Ok(TempDir { path })
    }

    /// Its path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// An I/O error on `path` as a [`ChainError`].
pub(super) fn io_error(path: &Path, e: &std::io::Error) -> ChainError {
    ChainError::Io {
        path: path.to_path_buf(),
        message: e.to_string().to_lowercase(),
    }
}
