//! One engine per store: a read-write [`super::SqliteStore`] holds an advisory lock (`flock`)
//! on `PATH.lock`, beside the database, for as long as it is open. A second read-write open, in
//! this process or another, finds the lock taken and fails with [`StoreError::Locked`].
//!
//! The lock is kept out of SQLite so that SQLite itself runs in its normal locking mode: in WAL
//! mode readers never block the writer and see its last commit, so `inspect` and `replay` can
//! read a store while a run holds it. (A lock on the database file itself would share the file
//! with SQLite's POSIX locks, which closing any descriptor of the file releases.) The lock file
//! is created once and never written; the kernel drops the lock when the process ends, however
//! it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct OwnerLock {
    _file: File,
}

/// The lock file of the store at `db`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    db.with_file_name(name)
}

impl OwnerLock {
    /// Take the lock of the store at `db`, or fail at once if it is held.
    pub(crate) fn take(db: &Path) -> Result<OwnerLock, StoreError> {
        let path = lock_path(db);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::LockFile {
                path: path.display().to_string(),
                source: e,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(OwnerLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Locked {
                reason: format!("{} is held by another open store", path.display()),
            }),
            Err(TryLockError::Error(e)) => Err(StoreError::LockFile {
                path: path.display().to_string(),
                source: e,
            }),
        }
    }
}
