//! `contractcourt serve`: settings from flags over the `--config` file, logs at `--log-level`,
//! then the serve loop until SIGKILL or SIGTERM (every step is committed before its effects, so
//! nothing is lost when the process is killed).

use std::path::Path;
use std::sync::atomic::AtomicBool;

use contractcourt_sync::serve::{self, ServeSettings};

use crate::exit;

/// Run `serve`.
pub fn run(
    config: Option<&Path>,
    flags: ServeSettings,
    log_level: &str,
) -> Result<exit::Findings, String> {
    let settings = match config {
        Some(path) => {
            let text = crate::read(path)?;
            let file = ServeSettings::from_toml(&text)
                .map_err(|e| format!("--config {}: {e}", path.display()))?;
            flags.over(file)
        }
        None => flags,
    };
    let config = settings.resolve().map_err(|e| e.to_string())?;
    init_logs(log_level)?;
    serve::run(config, &AtomicBool::new(false)).map_err(|e| e.to_string())?;
    Ok(exit::Findings::default())
}

fn init_logs(level: &str) -> Result<(), String> {
    let level: tracing::Level = level
        .parse()
        .map_err(|_| format!("--log-level {level}: one of error, warn, info, debug, trace"))?;
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    Ok(())
}
