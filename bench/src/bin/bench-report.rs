//! `bench-report CRITERION_DIR... [--extra FILE] [--update BENCHMARKS.md]`: the results of the
//! contractcourt benchmarks as Markdown tables, from criterion's estimates
//! (`<dir>/<group>/<bench>/new/estimates.json`) and the extra numbers the benchmarks record
//! (JSON lines). Printed, and with `--update` written between the `<!-- results:begin -->` and
//! `<!-- results:end -->` markers of the given file.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const BEGIN: &str = "<!-- results:begin -->";
const END: &str = "<!-- results:end -->";

/// A criterion estimate: mean and its 95% confidence interval, in nanoseconds.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    mean: f64,
    low: f64,
    high: f64,
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Every benchmark under `dir`, by its full id (`group/function[/parameter]`).
fn estimates(dir: &Path, out: &mut BTreeMap<String, Estimate>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let new = path.join("new");
        if let (Some(bench), Some(est)) = (
            read_json(&new.join("benchmark.json")),
            read_json(&new.join("estimates.json")),
        ) {
            let id = bench["full_id"].as_str().unwrap_or_default().to_string();
            let mean = &est["mean"];
            let num = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
            out.insert(
                id,
                Estimate {
                    mean: num(&mean["point_estimate"]),
                    low: num(&mean["confidence_interval"]["lower_bound"]),
                    high: num(&mean["confidence_interval"]["upper_bound"]),
                },
            );
        } else {
            estimates(&path, out);
        }
    }
}

fn extras(path: &Path) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if let (Some(name), Some(value)) = (v["name"].as_str(), v["value"].as_f64()) {
                out.insert(name.to_string(), value);
            }
        }
    }
    out
}

fn time(ns: f64) -> String {
    if ns.is_nan() {
        "—".into()
    } else if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_nan() || b.is_nan() || b == 0.0 {
        "—".into()
    } else {
        format!("{:.2}×", a / b)
    }
}

fn count(v: Option<&f64>) -> String {
    v.map_or("—".into(), |v| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    })
}

struct Report {
    est: BTreeMap<String, Estimate>,
    extra: BTreeMap<String, f64>,
}

impl Report {
    fn mean(&self, id: &str) -> f64 {
        self.est.get(id).map_or(f64::NAN, |e| e.mean)
    }

    fn cell(&self, id: &str) -> String {
        match self.est.get(id) {
            Some(e) => format!("{} ({}–{})", time(e.mean), time(e.low), time(e.high)),
            None => "—".into(),
        }
    }

    fn x(&self, name: &str) -> Option<&f64> {
        self.extra.get(name)
    }

    fn render(&self) -> String {
        let mut s = String::new();
        let sizes = ["1000", "10000", "100000"];
        // 1 and 2.
        let _ = writeln!(s, "### 1–2. Block connect, 3,000 transactions per block\n");
        let _ = writeln!(
            s,
            "| channels | idle: time per block | busy (1% closed in the block): time per block | closes in the busy block | busy: per close |"
        );
        let _ = writeln!(s, "|---:|---|---|---:|---:|");
        for n in sizes {
            let spends = self.x(&format!("block_busy/{n}/spends")).copied();
            let per = spends.map_or("—".into(), |k| {
                time(self.mean(&format!("block_busy/{n}")) / k)
            });
            let _ = writeln!(
                s,
                "| {n} | {} | {} | {} | {per} |",
                self.cell(&format!("block_idle/{n}")),
                self.cell(&format!("block_busy/{n}")),
                count(spends.as_ref()),
            );
        }
        let _ = writeln!(
            s,
            "\n| ratio | idle | busy | busy, per close |\n|---|---:|---:|---:|"
        );
        for (a, b) in [("10000", "1000"), ("100000", "1000")] {
            let per = |n: &str| {
                self.x(&format!("block_busy/{n}/spends"))
                    .map_or(f64::NAN, |k| self.mean(&format!("block_busy/{n}")) / k)
            };
            let _ = writeln!(
                s,
                "| {a} / {b} channels | {} | {} | {} |",
                ratio(
                    self.mean(&format!("block_idle/{a}")),
                    self.mean(&format!("block_idle/{b}"))
                ),
                ratio(
                    self.mean(&format!("block_busy/{a}")),
                    self.mean(&format!("block_busy/{b}"))
                ),
                ratio(per(a), per(b)),
            );
        }
        // 3.
        let _ = writeln!(
            s,
            "\n### 3. Mass force close: 500 channels close in one block\n"
        );
        let _ = writeln!(s, "| measure | time |\n|---|---|");
        let _ = writeln!(
            s,
            "| the block's step (classify, plan, build claims) | {} |",
            self.cell("mass_close/block_step")
        );
        let _ = writeln!(
            s,
            "| step + answering every sign request and broadcast until none is left | {} |",
            self.cell("mass_close/until_all_out")
        );
        let _ = writeln!(
            s,
            "\nThe block's step emits {} actions; answering them: {} sign requests, {} broadcasts, {} wallet funding requests (zero-fee HTLC transactions; left unanswered), {} answers fed back.",
            count(self.x("mass_close/block_actions")),
            count(self.x("mass_close/signs")),
            count(self.x("mass_close/broadcasts")),
            count(self.x("mass_close/funding_requests")),
            count(self.x("mass_close/answers")),
        );
        // 4.
        let _ = writeln!(
            s,
            "\n### 4. Worst-case channel: the peer's commitment with 483 HTLCs each way\n"
        );
        let _ = writeln!(s, "| measure | time |\n|---|---|");
        let _ = writeln!(
            s,
            "| spend block → full action list (one step) | {} |",
            self.cell("worst_channel/close_block")
        );
        let _ = writeln!(
            s,
            "| … + every claim signed and broadcast | {} |",
            self.cell("worst_channel/until_all_out")
        );
        let _ = writeln!(
            s,
            "| next block: the sweeper re-plans those inputs | {} |",
            self.cell("worst_channel/next_block")
        );
        let _ = writeln!(
            s,
            "\nThe commitment has {} outputs; the close step emits {} actions; {} sign requests and {} broadcasts follow; the next block emits {} actions.",
            count(self.x("worst_channel/commitment_outputs")),
            count(self.x("worst_channel/close_actions")),
            count(self.x("worst_channel/signs")),
            count(self.x("worst_channel/broadcasts")),
            count(self.x("worst_channel/next_actions")),
        );
        // 5.
        let _ = writeln!(s, "\n### 5. Restart from SQLite to `Resumed`\n");
        let _ = writeln!(
            s,
            "| channels | total (criterion) | open (checksums) | load | `engine_from_records` (records dropped as decoded) | `Resumed` | peak memory above baseline | resident after | SQLite bytes per channel |"
        );
        let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        for n in ["10000", "100000"] {
            let ms = |k: &str| {
                self.x(&format!("restart/{n}/{k}"))
                    .map_or("—".into(), |v| format!("{v:.0} ms"))
            };
            let mib = |k: &str| {
                self.x(&format!("restart/{n}/{k}"))
                    .map_or("—".into(), |v| format!("{v:.0} MiB"))
            };
            let _ = writeln!(
                s,
                "| {n} | {} | {} | {} | {} | {} | {} | {} | {} |",
                if self.est.contains_key(&format!("restart/{n}")) {
                    self.cell(&format!("restart/{n}"))
                } else {
                    self.x(&format!("restart/{n}/total_ms"))
                        .map_or("—".into(), |v| format!("{} (one run)", time(v * 1e6)))
                },
                ms("open_ms"),
                ms("load_ms"),
                ms("from_records_ms"),
                ms("resumed_ms"),
                mib("peak_mib"),
                mib("resident_mib"),
                count(
                    self.x(&format!("restart/{n}/file_bytes_per_channel"))
                        .map(|v| v.round())
                        .as_ref()
                ),
            );
        }
        let _ = writeln!(
            s,
            "\nThe same restart as the drivers run it (issue 18): quiet open channels loaded lazily — indexed, not decoded — and the channels `Resumed` needs decoded from the store first.\n"
        );
        let _ = writeln!(
            s,
            "| channels | total (criterion) | vs decoding every channel | open (checksums) | `load_engine_lazily` | dormant channels | peak memory above baseline | resident after |"
        );
        let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|---:|");
        for n in ["10000", "100000"] {
            let lazy = |k: &str| self.x(&format!("restart_lazy/{n}/{k}"));
            let ms = |k: &str| lazy(k).map_or("—".into(), |v| format!("{v:.0} ms"));
            let mib = |k: &str| lazy(k).map_or("—".into(), |v| format!("{v:.0} MiB"));
            let key = format!("restart/lazily/{n}");
            let (total, ratio) = if self.est.contains_key(&key) {
                let full = self.mean(&format!("restart/{n}"));
                (self.cell(&key), ratio_cell(full, self.mean(&key)))
            } else {
                let one = lazy("total_ms");
                let full = self.x(&format!("restart/{n}/total_ms"));
                (
                    one.map_or("—".into(), |v| format!("{} (one run)", time(v * 1e6))),
                    ratio_cell(
                        full.copied().unwrap_or(f64::NAN),
                        one.copied().unwrap_or(f64::NAN),
                    ),
                )
            };
            let _ = writeln!(
                s,
                "| {n} | {total} | {ratio} | {} | {} | {} | {} | {} |",
                ms("open_ms"),
                ms("load_lazily_ms"),
                count(lazy("dormant_channels")),
                mib("peak_mib"),
                mib("resident_mib"),
            );
        }
        let _ = writeln!(
            s,
            "\nKeyed records (JSON key + body) per channel: {} bytes with 10 HTLCs, {} bytes with none: {} bytes per HTLC.",
            count(self.x("restart/record_bytes_per_channel")),
            count(self.x("restart/record_bytes_per_channel_no_htlcs")),
            count(self.x("restart/record_bytes_per_htlc")),
        );
        // 6.
        let _ = writeln!(
            s,
            "\n### 6. Persist throughput (SQLite file, WAL, synchronous=FULL)\n"
        );
        let steps = self.x("persist/steps").copied().unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "| transactions | time for {} steps | steps per second | vs one per step |\n|---|---|---:|---:|",
            count(Some(&steps))
        );
        let one = self.mean("persist/one_tx_per_step");
        for (name, label) in [
            ("one_tx_per_step", "one per step"),
            ("grouped_10", "one per 10 steps"),
            ("grouped_100", "one per 100 steps"),
        ] {
            let m = self.mean(&format!("persist/{name}"));
            let _ = writeln!(
                s,
                "| {label} | {} | {:.0} | {} |",
                self.cell(&format!("persist/{name}")),
                steps / (m / 1e9),
                ratio(one, m),
            );
        }
        let _ = writeln!(
            s,
            "\nA step's batch averages {} operations, {} bytes of JSON.",
            count(self.x("persist/ops_per_step")),
            count(self.x("persist/bytes_per_step").map(|v| v.round()).as_ref()),
        );
        // 7.
        let _ = writeln!(
            s,
            "\n### 7. Head-to-head with LDK 0.2 (`ChainMonitor`), 2 HTLCs per channel\n"
        );
        let _ = writeln!(
            s,
            "| channels | block | contractcourt | LDK | LDK / contractcourt | LDK, serialising what it persists | ratio |"
        );
        let _ = writeln!(s, "|---:|---|---|---|---:|---|---:|");
        for n in ["1000", "5000"] {
            for kind in ["full", "empty"] {
                let ours = self.mean(&format!("ldk_vs_contractcourt/contractcourt_{kind}/{n}"));
                let ldk = self.mean(&format!("ldk_vs_contractcourt/ldk_{kind}/{n}"));
                let ser = self.mean(&format!("ldk_vs_contractcourt/ldk_serializing_{kind}/{n}"));
                let _ = writeln!(
                    s,
                    "| {n} | {} | {} | {} | **{}** | {} | {} |",
                    if kind == "full" { "3,000 txs" } else { "empty" },
                    self.cell(&format!("ldk_vs_contractcourt/contractcourt_{kind}/{n}")),
                    self.cell(&format!("ldk_vs_contractcourt/ldk_{kind}/{n}")),
                    ratio(ldk, ours),
                    self.cell(&format!("ldk_vs_contractcourt/ldk_serializing_{kind}/{n}")),
                    ratio(ser, ours),
                );
            }
        }
        self.render_postgres(&mut s);
        s
    }

    /// Section 8: the `*_postgres` groups (`persist_postgres`, `restart_postgres`) beside the
    /// SQLite ones of the same run.
    fn render_postgres(&self, s: &mut String) {
        let _ = writeln!(s, "\n### 8. PostgreSQL store against SQLite (same run)\n");
        let _ = writeln!(
            s,
            "| bench | SQLite | PostgreSQL | PostgreSQL / SQLite |\n|---|---|---|---|"
        );
        let steps = self.x("persist/steps").copied().unwrap_or(f64::NAN);
        for (name, label) in [
            ("one_tx_per_step", "one transaction per step"),
            ("grouped_10", "10 steps per transaction"),
            ("grouped_100", "100 steps per transaction"),
        ] {
            let rate = |group: &str| steps / (self.mean(&format!("{group}/{name}")) / 1e9);
            let (lite, pg) = (rate("persist"), rate("persist_postgres"));
            let _ = writeln!(
                s,
                "| persist, {label} | {} | {} | {} |",
                per_second(lite),
                per_second(pg),
                ratio(pg, lite),
            );
        }
        let _ = writeln!(
            s,
            "| restart, 10k channels (criterion) | {} | {} | {} |",
            time(self.mean("restart/10000")),
            time(self.mean("restart_postgres/10000")),
            ratio(
                self.mean("restart_postgres/10000"),
                self.mean("restart/10000")
            ),
        );
        let _ = writeln!(
            s,
            "\n| channels | phase | SQLite | PostgreSQL | PostgreSQL / SQLite |\n|---:|---|---:|---:|---:|"
        );
        for n in ["10000", "100000"] {
            for (key, phase) in [
                ("open_ms", "open"),
                ("load_ms", "load every record"),
                ("total_ms", "**restart to `Resumed`**"),
            ] {
                let ms = |group: &str| self.x(&format!("{group}/{n}/{key}")).copied();
                let (lite, pg) = (ms("restart"), ms("restart_postgres"));
                let _ = writeln!(
                    s,
                    "| {n} | {phase} | {} | {} | {} |",
                    millis(lite),
                    millis(pg),
                    ratio(pg.unwrap_or(f64::NAN), lite.unwrap_or(f64::NAN)),
                );
            }
        }
    }
}

/// A rate: `1,222 steps/s` below ten thousand, `10.5k steps/s` from there.
fn per_second(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v >= 1e4 {
        format!("{:.1}k steps/s", v / 1e3)
    } else {
        format!("{} steps/s", thousands(v))
    }
}

/// Milliseconds, rounded, with thousands separators.
fn millis(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or("—".into(), |v| format!("{} ms", thousands(v)))
}

/// `v` rounded to an integer, with `,` between thousands.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

fn main() {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut extra = None;
    let mut update = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--extra" => extra = args.next().map(PathBuf::from),
            "--update" => update = args.next().map(PathBuf::from),
            _ => dirs.push(PathBuf::from(a)),
        }
    }
    let mut est = BTreeMap::new();
    for d in &dirs {
        estimates(d, &mut est);
    }
    let report = Report {
        est,
        extra: extra.as_deref().map(extras).unwrap_or_default(),
    };
    let text = report.render();
    println!("{text}");
    if let Some(path) = update {
        let Ok(doc) = std::fs::read_to_string(&path) else {
            eprintln!("bench-report: cannot read {}", path.display());
            std::process::exit(1);
        };
        let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
            eprintln!(
                "bench-report: {} has no {BEGIN} … {END} markers",
                path.display()
            );
            std::process::exit(1);
        };
        if e < b {
            eprintln!("bench-report: markers out of order in {}", path.display());
            std::process::exit(1);
        }
        let updated = format!("{}{BEGIN}\n{text}\n{}", &doc[..b], &doc[e..]);
        if let Err(err) = std::fs::write(&path, updated) {
            eprintln!("bench-report: cannot write {}: {err}", path.display());
            std::process::exit(1);
        }
    }
}

/// "N.N× faster" for a time `after` against `before` (both in ns; NaN when unknown: "—").
fn ratio_cell(before: f64, after: f64) -> String {
    if before.is_finite() && after.is_finite() && after > 0.0 {
        format!("{:.1}× faster", before / after)
    } else {
        "—".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A criterion result as criterion writes it: `<dir>/<group>/<bench>/new/`.
    fn bench(dir: &Path, id: &str, mean_ns: f64) {
        let new = dir.join(id.replace('/', "_")).join("new");
        std::fs::create_dir_all(&new).unwrap();
        let full = serde_json::json!({ "full_id": id });
        std::fs::write(new.join("benchmark.json"), full.to_string()).unwrap();
        let est = serde_json::json!({ "mean": { "point_estimate": mean_ns,
            "confidence_interval": { "lower_bound": mean_ns * 0.9, "upper_bound": mean_ns * 1.1 } } });
        std::fs::write(new.join("estimates.json"), est.to_string()).unwrap();
    }

    #[test]
    fn the_postgres_groups_are_rendered_beside_sqlite() {
        let dir = std::env::temp_dir().join(format!("bench-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        bench(&dir.join("persist"), "persist/one_tx_per_step", 0.5e9);
        bench(&dir.join("persist"), "persist/grouped_10", 0.1e9);
        bench(&dir.join("persist"), "persist/grouped_100", 0.02e9);
        bench(&dir.join("pp"), "persist_postgres/one_tx_per_step", 1.0e9);
        bench(&dir.join("pp"), "persist_postgres/grouped_10", 0.25e9);
        bench(&dir.join("restart"), "restart/10000", 1.2e9);
        bench(&dir.join("rp"), "restart_postgres/10000", 1.5e9);
        let lines = [
            r#"{"name":"persist/steps","value":1000,"unit":"steps"}"#,
            r#"{"name":"restart/100000/open_ms","value":1827.2,"unit":"ms"}"#,
            r#"{"name":"restart/100000/total_ms","value":7308,"unit":"ms"}"#,
            r#"{"name":"restart_postgres/100000/open_ms","value":13.4,"unit":"ms"}"#,
            r#"{"name":"restart_postgres/100000/load_ms","value":3715,"unit":"ms"}"#,
            r#"{"name":"restart_postgres/100000/total_ms","value":9025,"unit":"ms"}"#,
        ];
        std::fs::write(dir.join("extra.jsonl"), lines.join("\n")).unwrap();
        let mut est = BTreeMap::new();
        estimates(&dir, &mut est);
        let report = Report {
            est,
            extra: extras(&dir.join("extra.jsonl")),
        };
        let text = report.render();
        let _ = std::fs::remove_dir_all(&dir);
        let section = &text[text.find("### 8.").expect("a PostgreSQL section")..];
        for row in [
            "| persist, one transaction per step | 2,000 steps/s | 1,000 steps/s | 0.50× |",
            "| persist, 10 steps per transaction | 10.0k steps/s | 4,000 steps/s | 0.40× |",
            "| persist, 100 steps per transaction | 50.0k steps/s | — | — |",
            "| restart, 10k channels (criterion) | 1.20 s | 1.50 s | 1.25× |",
            "| 100000 | open | 1,827 ms | 13 ms | 0.01× |",
            "| 100000 | load every record | — | 3,715 ms | — |",
            "| 100000 | **restart to `Resumed`** | 7,308 ms | 9,025 ms | 1.23× |",
            "| 10000 | open | — | — | — |",
        ] {
            assert!(section.contains(row), "{row}\nnot in\n{section}");
        }
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1222.4), "1,222");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-1500.0), "-1,500");
    }
}
