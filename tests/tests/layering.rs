//! The core's layers (DESIGN.md, "Layers"): nothing in `core/src` names a module of a layer above
//! its own, and there are no circles — neither between the core's top-level modules nor between
//! the sibling files of one folder. Read from the source text, so it fails in CI the moment a
//! lower layer reaches up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The core's top-level modules, bottom up. A module may name modules of its own layer or below.
const LAYERS: &[&[&str]] = &[
    &["types", "bolt3"],
    &["policy"],
    &["action", "event", "trace"],
    &["fee", "commitments", "close", "node"],
    &["resolver", "sweeper", "funded"],
    &["channel"],
    &["chain"],
    // Test and fuzzing support: may use everything, is used by nothing but tests.
    &["sim", "testkit", "fuzzing"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn core_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/src")
}

/// Every non-test source file of the core, as (path relative to `core/src`, text without
/// comments and without inline `#[cfg(test)] mod … { … }` blocks).
fn sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![core_src()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("core/src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "tests") {
                    dirs.push(path);
                }
                continue;
            }
            let rel = path
                .strip_prefix(core_src())
                .expect("under core/src")
                .to_string_lossy()
                .replace('\\', "/");
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let is_test =
                name == "tests.rs" || name.ends_with("_tests.rs") || name == "testutil.rs";
            if !rel.ends_with(".rs") || is_test {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            out.push((rel, code_only(&text)));
        }
    }
    out.sort();
    out
}

/// The text without line comments and without inline test modules.
fn code_only(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let next = lines.get(i + 1).map_or("", |l| l.trim());
        if line == "#[cfg(test)]" && next.starts_with("mod ") && next.ends_with('{') {
            break; // an inline test module: the rest of the file is tests
        }
        if !line.starts_with("//") {
            out.push_str(lines[i]);
            out.push('\n');
        }
        i += 1;
    }
    out
}

/// The file's module path: `chain/mod.rs` → `chain`, `sweeper/block.rs` → `sweeper/block`.
fn module_of(rel: &str) -> String {
    let stem = rel.trim_end_matches(".rs");
    if stem == "lib" {
        return String::new();
    }
    stem.strip_suffix("/mod").unwrap_or(stem).to_string()
}

/// The paths a file names: every `crate::a::b…` and `super::x…`, as module paths.
fn named_paths(module: &str, code: &str) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let is_dir_module = |m: &str| core_src().join(m).is_dir();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent_of(module))] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().last();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let mut path = base.clone();
            for seg in rest.split("::") {
                let seg: String = seg
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if seg.is_empty() {
                    break;
                }
                path.push(seg);
                let joined = path.join("/");
                if !is_dir_module(&joined) {
                    break;
                }
            }
            if !path.is_empty() {
                out.insert(path);
            }
        }
    }
    out
}

/// The folder a file's `super::` names: `sweeper/block` → `sweeper`; a folder's own `mod.rs`
/// (`sweeper`) → its parent folder.
fn parent_of(module: &str) -> Vec<String> {
    let mut parts: Vec<String> = module.split('/').map(str::to_string).collect();
    parts.pop();
    parts
}

#[test]
fn no_core_module_names_a_module_of_a_higher_layer() {
    let mut violations = Vec::new();
    for (rel, code) in sources() {
        let module = module_of(&rel);
        let top = module.split('/').next().unwrap_or_default().to_string();
        if top.is_empty() {
            continue; // lib.rs declares the modules
        }
        let Some(own) = layer_of(&top) else {
            violations.push(format!("{rel}: module `{top}` has no layer in LAYERS"));
            continue;
        };
        for path in named_paths(&module, &code) {
            let Some(layer) = layer_of(&path[0]) else {
                continue;
            };
            if layer > own {
                violations.push(format!(
                    "{rel} (layer {own}, `{top}`) names `{}` (layer {layer})",
                    path.join("::")
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "lower layers reach up:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_core_top_level_modules_form_no_circle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, code) in sources() {
        let module = module_of(&rel);
        let top = module.split('/').next().unwrap_or_default().to_string();
        if top.is_empty() {
            continue;
        }
        for path in named_paths(&module, &code) {
            if path[0] != top && layer_of(&path[0]).is_some() {
                edges
                    .entry(top.clone())
                    .or_default()
                    .insert(path[0].clone());
            }
        }
    }
    assert_eq!(circles(&edges), Vec::<Vec<String>>::new());
}

#[test]
fn no_two_sibling_files_of_a_core_folder_name_each_other() {
    // Edges between files of the same folder; a folder's `mod.rs` declares its children and is
    // left out (it may use them, and they may use what it defines).
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, code) in sources() {
        if rel.ends_with("/mod.rs") || !rel.contains('/') {
            continue;
        }
        let module = module_of(&rel);
        let folder = parent_of(&module);
        for path in named_paths(&module, &code) {
            if path.len() == folder.len() + 1 && path[..folder.len()] == folder[..] {
                let target = path.join("/");
                let is_file = core_src().join(format!("{target}.rs")).is_file()
                    || core_src().join(&target).join("mod.rs").is_file();
                if target != module && is_file {
                    edges.entry(module.clone()).or_default().insert(target);
                }
            }
        }
    }
    assert_eq!(circles(&edges), Vec::<Vec<String>>::new());
}

/// Every circle of the graph, each as the nodes of one strongly connected component of more
/// than one node (Tarjan's algorithm would do; the graphs are tiny, so reachability does).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for m in edges.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    stack.push(m.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|n| (n, reach(n))).collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for (n, r) in &reachable {
        if !r.contains(*n) {
            continue;
        }
        let mut scc: Vec<String> = r
            .iter()
            .filter(|m| reachable.get(m).is_some_and(|back| back.contains(*n)))
            .cloned()
            .collect();
        scc.sort();
        if !out.contains(&scc) {
            out.push(scc);
        }
    }
    out
}
