//! The resolution as a picture: plain SVG (written here, no library), one lane per output over
//! block height — its timelock, deadline, broadcasts, confirmation and final outcome — under
//! the closes, and the fee rate over the same heights below. `simulate --svg FILE` and
//! `inspect --svg FILE` write it.
//!
//! Each lane is a `<g class="lane" data-top=".." data-height="..">` so a reader (or a test) can
//! find the bands.

mod model;

use std::fmt::Write;

pub use model::{Lane, Mark, MarkKind, Picture, PictureError};

/// The drawing's width.
pub const WIDTH: f64 = 1100.0;
/// Where the height axis starts (the labels are left of it).
const PLOT_LEFT: f64 = 320.0;
const PLOT_RIGHT: f64 = WIDTH - 30.0;
/// The first lane's top.
pub const LANES_TOP: f64 = 84.0;
/// A lane's height.
pub const LANE_HEIGHT: f64 = 30.0;
const FEE_PANEL: f64 = 140.0;

/// The colour of an outcome's bar.
fn outcome_colour(end: Option<&(u32, String)>) -> &'static str {
    match end.map(|(_, o)| o.as_str()) {
        Some("Claimed" | "TimedOut") => "#2e8b57",
        Some("LostToPeer" | "UnknownSpend") => "#c0392b",
        Some("Uneconomical" | "ThirdParty") => "#8e8e8e",
        Some("RevokedSecondLevel") => "#2e6f8b",
        Some(_) => "#6a5acd",
        None => "#e67e22",
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG document of `p`.
pub fn render(p: &Picture) -> String {
    let lanes_bottom = LANES_TOP + LANE_HEIGHT * p.lanes.len().max(1) as f64;
    let height = lanes_bottom + 40.0 + FEE_PANEL + 40.0;
    let (lo, hi) = (p.span.0, p.span.1.max(p.span.0 + 1));
    let x = |h: u32| -> f64 {
        let h = h.clamp(lo, hi);
        PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * f64::from(h - lo) / f64::from(hi - lo)
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">{}</text>"#,
        escape(&short(&p.title, 125))
    );
    let several = p.lanes.iter().any(|l| l.channel != p.lanes[0].channel);
    legend(&mut s);
    axis(&mut s, lo, hi, lanes_bottom, &x);
    for (i, lane) in p.lanes.iter().enumerate() {
        draw_lane(&mut s, i, lane, several, hi, &x);
    }
    if p.lanes.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{PLOT_LEFT}" y="{}">no output of ours to resolve</text>"#,
            LANES_TOP + 18.0
        );
    }
    for (i, &h) in p.closes.iter().enumerate() {
        // Labels of closes at nearby heights one above the other.
        let label_y = LANES_TOP - 14.0 - 10.0 * (i % 2) as f64;
        let _ = writeln!(
            s,
            r##"<line class="close" x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{lanes_bottom}" stroke="#000000" stroke-width="1.5"/><text x="{2:.1}" y="{label_y}" font-size="10">close {h}</text>"##,
            x(h),
            label_y + 2.0,
            x(h) + 2.0,
        );
    }
    fee_panel(&mut s, p, lanes_bottom + 40.0, hi, &x);
    s.push_str("</svg>\n");
    s
}

fn legend(s: &mut String) {
    let items = [
        ("#1f5fbf", "timelock ends"),
        ("#c0392b", "deadline"),
        ("#f1c40f", "broadcast"),
        ("#145a32", "confirmed"),
    ];
    for (i, (colour, what)) in items.iter().enumerate() {
        let x = 10.0 + 130.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="30" width="10" height="10" fill="{colour}"/><text x="{}" y="39">{what}</text>"#,
            x + 14.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="540" y="39">bar: green ours, red the peer's, grey left/third party, orange unresolved</text>"#
    );
}

fn axis(s: &mut String, lo: u32, hi: u32, bottom: f64, x: &dyn Fn(u32) -> f64) {
    let step = ((hi - lo) / 10).max(1);
    let mut h = lo;
    while h <= hi {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{bottom}" stroke="#dddddd"/><text x="{0:.1}" y="{2}" font-size="10" text-anchor="middle">{h}</text>"##,
            x(h),
            LANES_TOP,
            bottom + 14.0
        );
        h += step;
    }
}

/// At most `n` characters of `text`, an ellipsis marking a cut.
fn short(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(n - 1).collect();
    cut.push('…');
    cut
}

fn draw_lane(
    s: &mut String,
    i: usize,
    lane: &Lane,
    several: bool,
    hi: u32,
    x: &dyn Fn(u32) -> f64,
) {
    let top = LANES_TOP + LANE_HEIGHT * i as f64;
    let band = if i.is_multiple_of(2) {
        "#f4f6f8"
    } else {
        "#ffffff"
    };
    let mid = top + LANE_HEIGHT / 2.0;
    let end = lane.end.as_ref().map_or(hi, |(h, _)| *h);
    // With several channels, each label starts with the end of its channel id.
    let channel = if several {
        let id = lane.channel.to_string();
        format!("[{}] ", &id[id.len().saturating_sub(4)..])
    } else {
        String::new()
    };
    let label = format!(
        "{channel}{} {} sat ({}:{})",
        if lane.what.is_empty() {
            "output"
        } else {
            &lane.what
        },
        lane.amount_sat,
        &lane.outpoint.txid.to_string()[..8],
        lane.outpoint.vout
    );
    let _ = writeln!(
        s,
        r#"<g class="lane" data-top="{top}" data-height="{LANE_HEIGHT}"><rect x="0" y="{top}" width="{WIDTH}" height="{LANE_HEIGHT}" fill="{band}"/><text x="10" y="{}">{}</text>"#,
        mid + 4.0,
        escape(&short(&label, 46))
    );
    let _ = writeln!(
        s,
        r#"<rect class="bar" x="{:.1}" y="{}" width="{:.1}" height="8" fill="{}"/>"#,
        x(lane.from),
        mid - 4.0,
        (x(end) - x(lane.from)).max(2.0),
        outcome_colour(lane.end.as_ref())
    );
    for m in &lane.marks {
        draw_mark(s, m, top, mid, x);
    }
    if let Some((h, outcome)) = &lane.end {
        let _ = writeln!(
            s,
            r#"<rect x="{:.1}" y="{}" width="8" height="14" fill="{}"/><text x="{:.1}" y="{}" font-size="10">{}</text>"#,
            x(*h) - 4.0,
            mid - 7.0,
            outcome_colour(lane.end.as_ref()),
            x(*h) + 7.0,
            mid + 4.0,
            escape(outcome)
        );
    }
    s.push_str("</g>\n");
}

fn draw_mark(s: &mut String, m: &Mark, top: f64, mid: f64, x: &dyn Fn(u32) -> f64) {
    let cx = x(m.height);
    let _ = match m.kind {
        MarkKind::Timelock => writeln!(
            s,
            r##"<line x1="{cx:.1}" y1="{}" x2="{cx:.1}" y2="{}" stroke="#1f5fbf" stroke-width="2" stroke-dasharray="3,2"/>"##,
            top + 3.0,
            top + LANE_HEIGHT - 3.0
        ),
        MarkKind::Deadline => writeln!(
            s,
            r##"<line x1="{cx:.1}" y1="{}" x2="{cx:.1}" y2="{}" stroke="#c0392b" stroke-width="2"/>"##,
            top + 3.0,
            top + LANE_HEIGHT - 3.0
        ),
        MarkKind::Broadcast => writeln!(
            s,
            r##"<polygon points="{cx:.1},{} {:.1},{} {:.1},{}" fill="#f1c40f" stroke="#7d6608"/>"##,
            mid - 9.0,
            cx - 5.0,
            mid - 1.0,
            cx + 5.0,
            mid - 1.0
        ),
        MarkKind::Confirmed => writeln!(
            s,
            r##"<circle cx="{cx:.1}" cy="{mid}" r="4" fill="#145a32"/>"##
        ),
    };
}

fn fee_panel(s: &mut String, p: &Picture, top: f64, hi: u32, x: &dyn Fn(u32) -> f64) {
    let max = p.fee_rates.iter().map(|(_, r)| *r).fold(1.0_f64, f64::max);
    let bottom = top + FEE_PANEL;
    let y = |r: f64| bottom - (FEE_PANEL - 10.0) * r / max;
    let _ = writeln!(
        s,
        r##"<g class="fees"><text x="10" y="{}">fee rate (sat/vB), max {max:.1}</text><rect x="{PLOT_LEFT}" y="{top}" width="{:.1}" height="{FEE_PANEL}" fill="none" stroke="#999999"/>"##,
        top + FEE_PANEL / 2.0,
        PLOT_RIGHT - PLOT_LEFT
    );
    let mut points = Vec::new();
    let mut rates = p.fee_rates.clone();
    rates.sort_by_key(|(h, _)| *h);
    for (i, (h, r)) in rates.iter().enumerate() {
        let next = rates.get(i + 1).map_or(hi, |(n, _)| *n);
        points.push(format!("{:.1},{:.1}", x(*h), y(*r)));
        points.push(format!("{:.1},{:.1}", x(next), y(*r)));
    }
    if !points.is_empty() {
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#8e44ad" stroke-width="2"/>"##,
            points.join(" ")
        );
    }
    s.push_str("</g>\n");
}
