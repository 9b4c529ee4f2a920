//! `--svg FILE` of `simulate` and `inspect`: the resolution drawn from a store's flight
//! recorder (see `contractcourt_sync::svg`).

use std::path::{Path, PathBuf};

use contractcourt_sync::svg::{render, Picture};

use crate::{open_store, stored_config};

/// Draw the recording of the store at `db` into `out`.
pub fn write_svg(title: &str, db: &Path, out: &Path) -> Result<(), String> {
    let store = open_store(db)?;
    let config = stored_config(&store)?;
    let picture = Picture::from_recording(title, config, &store).map_err(|e| e.to_string())?;
    std::fs::write(out, render(&picture)).map_err(|e| format!("--svg {}: {e}", out.display()))
}

/// A temporary directory for the store of a run drawn without `--db`, removed on drop.
pub struct TempStore(pub PathBuf);

impl TempStore {
    pub fn new() -> Result<TempStore, String> {
        let dir = std::env::temp_dir().join(format!("contractcourt-svg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(TempStore(dir))
    }

    pub fn db(&self) -> PathBuf {
        self.0.join("engine.sqlite")
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
