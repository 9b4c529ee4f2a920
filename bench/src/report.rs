//! Numbers a criterion timing does not capture (memory, bytes, counts), recorded as JSON lines
//! for `bench-report`, and the process's resident memory from `/proc`.

use std::io::Write;
use std::path::PathBuf;

/// Where extra measurements go: `$CONTRACTCOURT_BENCH_OUT`, or `bench-extra.jsonl` in the
/// working directory.
pub fn extra_path() -> PathBuf {
    std::env::var_os("CONTRACTCOURT_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("bench-extra.jsonl"))
}

/// Record one measurement (replacing none: the report keeps the last value of each name), and
/// print it.
pub fn record(name: &str, value: f64, unit: &str) {
    println!("{name}: {value:.1} {unit}");
    let line = serde_json::json!({ "name": name, "value": value, "unit": unit });
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(extra_path());
    if let Ok(mut f) = file {
        // A failed write loses one number of the report, never the benchmark.
        let _ = writeln!(f, "{line}");
    }
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resident memory now, in bytes (Linux; `None` elsewhere).
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

/// Peak resident memory since the last [`reset_peak`], in bytes (Linux; `None` elsewhere).
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Reset the peak resident memory to the current one (Linux 4.0+: `clear_refs` value 5).
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
