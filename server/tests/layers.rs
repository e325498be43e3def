//! The server's modules form layers without import circles (docs/ARCHITECTURE.md): the
//! transport-free core and the store know nothing of the transports, and no two modules of
//! one level import each other, directly or around a circle.
//!
//! The imports are read from the sources: every `crate::<module>` path (and, inside a
//! directory module, every `super::<sibling>` of its direct children) outside comments.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules directly inside `dir` (files and subdirectories), without `mod.rs`/`lib.rs`.
fn modules(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            if e.path().is_dir() {
                Some(name)
            } else {
                let stem = name.strip_suffix(".rs")?;
                (stem != "mod" && stem != "lib").then(|| stem.to_owned())
            }
        })
        .collect()
}

/// Every `.rs` file below `dir` with its path relative to `dir`.
fn files(dir: &Path, rel: &Path, out: &mut Vec<(PathBuf, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let r = rel.join(p.file_name().unwrap());
        if p.is_dir() {
            files(&p, &r, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push((r, std::fs::read_to_string(&p).unwrap()));
        }
    }
}

/// Names following `prefix` (identifier characters) anywhere in `line`.
fn names_after<'a>(line: &'a str, prefix: &str) -> impl Iterator<Item = &'a str> {
    line.match_indices(prefix).map(move |(i, _)| {
        let rest = &line[i + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        &rest[..end]
    })
}

/// The import graph among the modules of `dir`; `path` is its path from the crate root
/// (empty for the crate root).
fn graph(dir: &Path, path: &str) -> Graph {
    let mods = modules(dir);
    let mut all = Vec::new();
    files(dir, Path::new(""), &mut all);
    let crate_prefix = if path.is_empty() {
        "crate::".to_owned()
    } else {
        format!("crate::{path}::")
    };
    let mut g = Graph::new();
    for (rel, text) in &all {
        let parts: Vec<_> = rel
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        let top = parts[0].trim_end_matches(".rs").to_owned();
        if top == "mod" || top == "lib" {
            continue;
        }
        // `super::x` names a sibling of `top` only in a direct child file of `dir`.
        let direct_child = parts.len() == 1;
        for line in text.lines() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            let mut found: Vec<&str> = names_after(line, &crate_prefix).collect();
            if direct_child && !path.is_empty() {
                found.extend(names_after(line, "super::"));
            }
            for m in found {
                if m != top && mods.contains(m) {
                    g.entry(top.clone()).or_default().insert(m.to_owned());
                }
            }
        }
    }
    g
}

/// The modules on a circle of imports, if any (Tarjan's strongly connected components).
fn circles(g: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        for w in s.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.stack.contains(&w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_import_circle_between_the_servers_modules() {
    let root = src();
    let mut problems = Vec::new();
    let top = graph(&root, "");
    for c in circles(&top) {
        problems.push(format!("crate: {}", c.join(" <-> ")));
    }
    let mut dirs = 0;
    for m in modules(&root) {
        let dir = root.join(&m);
        if dir.is_dir() {
            dirs += 1;
            for c in circles(&graph(&dir, &m)) {
                problems.push(format!("{m}: {}", c.join(" <-> ")));
            }
        }
    }
    assert!(
        dirs >= 5,
        "expected the directory modules (core, hsm, store, ...)"
    );
    assert!(
        problems.is_empty(),
        "import circles:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_core_and_the_store_know_no_transport() {
    let g = graph(&src(), "");
    let transports = ["service", "rest", "http", "run", "tls", "test_accounts"];
    for layer in ["core", "store", "lockout", "hsm", "signing", "pki", "ca"] {
        let uses: Vec<_> = g
            .get(layer)
            .into_iter()
            .flatten()
            .filter(|m| transports.contains(&m.as_str()))
            .collect();
        assert!(uses.is_empty(), "{layer} imports {uses:?}");
    }
    for m in ["core", "service", "rest"] {
        assert!(
            g.get(m).is_some_and(|d| d.contains("store")),
            "the reader found no import of store in {m}: the scan is broken"
        );
    }
    // The store does not call up into the core.
    assert!(!g.get("store").is_some_and(|d| d.contains("core")));
}

#[test]
fn the_scan_finds_a_circle_when_there_is_one() {
    let mut g = Graph::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    g.entry("d".into()).or_default().insert("a".into());
    assert_eq!(circles(&g), vec![vec!["a", "b", "c"]]);
    g.get_mut("c").unwrap().clear();
    assert!(circles(&g).is_empty());
}
