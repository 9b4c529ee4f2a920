//! `simulate --svg` and `inspect --svg`: the SVG is rendered to PNG with resvg (a renderer that
//! does not share a line of code with ours) and checked: not blank, one lane per output of the
//! engine's ledger, each lane band with something drawn in it besides its background.

use std::path::{Path, PathBuf};
use std::process::Command;

mod program;
use program::root;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cc-svg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

fn contractcourt(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_contractcourt"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("runs")
}

/// The lanes' (top, height), read from the SVG's lane groups.
fn lane_bands(svg: &str) -> Vec<(f32, f32)> {
    svg.lines()
        .filter(|l| l.starts_with(r#"<g class="lane""#))
        .map(|l| {
            let attr = |name: &str| -> f32 {
                let at = l.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
                l[at..]
                    .split('"')
                    .next()
                    .expect("value")
                    .parse()
                    .expect("number")
            };
            (attr("data-top"), attr("data-height"))
        })
        .collect()
}

/// Render `svg` to a pixmap.
fn render(svg: &str) -> resvg::tiny_skia::Pixmap {
    let mut options = resvg::usvg::Options::default();
    options.fontdb_mut().load_system_fonts();
    let tree = resvg::usvg::Tree::from_str(svg, &options).expect("an SVG resvg reads");
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).expect("a pixmap");
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap
}

/// Where the height axis begins (left of it: the lanes' labels), as `svg::mod` draws it.
const PLOT_LEFT: usize = 320;

/// The number of distinct colours in rows `top..top+height`, from column `left` on.
fn colours_in(p: &resvg::tiny_skia::Pixmap, top: f32, height: f32, left: usize) -> usize {
    let w = p.width() as usize;
    let data = p.data();
    let mut seen = std::collections::BTreeSet::new();
    let (from, to) = (top.ceil() as usize + 1, (top + height).floor() as usize - 1);
    for y in from..to.min(p.height() as usize) {
        for x in left..w {
            let i = (y * w + x) * 4;
            seen.insert([data[i], data[i + 1], data[i + 2]]);
        }
    }
    seen.len()
}

/// Check a drawing against the run's ledger; save the PNG to `png` if given.
fn check_drawing(svg_path: &Path, outputs: usize, png: Option<&Path>) {
    let svg = std::fs::read_to_string(svg_path).expect("the SVG was written");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    let bands = lane_bands(&svg);
    assert_eq!(bands.len(), outputs, "one lane per output of the ledger");
    let pixmap = render(&svg);
    // Not blank: far more than the background.
    let all = colours_in(&pixmap, 0.0, pixmap.height() as f32, 0);
    assert!(all > 10, "{all} colours");
    for (top, height) in bands {
        // A lane's background is one colour; right of the labels, its bar and marks add more
        // (the grid is under the background).
        let n = colours_in(&pixmap, top, height, PLOT_LEFT);
        assert!(n >= 3, "lane at {top}: {n} colours");
    }
    if let Some(png) = png {
        pixmap.save_png(png).expect("saving the PNG");
    }
}

/// The number of outputs in the ledger of a `simulate --json` document.
fn ledger_outputs(doc: &serde_json::Value) -> usize {
    doc["ledger"]["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .map(|c| c["outputs"].as_array().map_or(0, Vec::len))
        .sum()
}

fn simulate_and_draw(scenario: &str, png: Option<&Path>) {
    let dir = scratch(scenario);
    let svg = dir.join("run.svg");
    let o = contractcourt(&[
        "simulate",
        "--json",
        "--svg",
        svg.to_str().expect("utf-8"),
        &format!("scenarios/{scenario}"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let outputs = ledger_outputs(&doc);
    assert!(outputs > 0);
    check_drawing(&svg, outputs, png);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where a rendered PNG is kept for people to look at (outside the repository), if asked.
fn keep(name: &str) -> Option<PathBuf> {
    std::env::var_os("CONTRACTCOURT_KEEP_PNG").map(|d| PathBuf::from(d).join(name))
}

#[test]
fn simulate_draws_one_lane_per_output_of_a_force_close() {
    let png = keep("force-close-htlcs.png");
    simulate_and_draw("force-close-htlcs.json", png.as_deref());
}

#[test]
fn simulate_draws_every_output_of_several_channels() {
    let png = keep("multi-channel.png");
    simulate_and_draw("multi-channel.json", png.as_deref());
}

#[test]
fn inspect_draws_a_store_left_by_simulate() {
    let dir = scratch("inspect");
    let db = dir.join("engine.sqlite");
    let o = contractcourt(&[
        "simulate",
        "--json",
        "--db",
        db.to_str().expect("utf-8"),
        "scenarios/breach-with-htlcs.json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let svg = dir.join("store.svg");
    let o = contractcourt(&[
        "inspect",
        "--db",
        db.to_str().expect("utf-8"),
        "--svg",
        svg.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_drawing(&svg, ledger_outputs(&doc), None);
    let _ = std::fs::remove_dir_all(&dir);
}
