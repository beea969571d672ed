//! The shape of every crate of the workspace: its modules import each other without cycles, and
//! no source file outgrows a reader's head (tests get a little more room). Run alone with
//! `cargo test -p sendpath-core --test it layers`; a failure names the cycle (or the file) to fix.
//!
//! Cycles are looked for twice. Between files: every source file is a node
//! (`send/uring/ring.rs` is `send::uring::ring`). Between modules: the files of a directory
//! module count as that module, so two sibling modules (`wire` and `zerocopy`) whose files
//! import each other are a cycle even when no two files are. A file's edges are the
//! modules its code names: `crate::a::b::Item`, `super::x::Item`, `self::x`, grouped imports
//! (`use crate::{a::X, b}`), and a child module named bare in the file that declares it. A path
//! resolves to the longest module it names; the crate root (`lib.rs`, re-exports only) is not
//! a node. Comments, string literals and each file's own `#[cfg(test)] mod tests` are
//! ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest source file allowed, in lines.
const MAX_LINES: usize = 600;
/// Longest test file allowed, in lines.
const MAX_TEST_LINES: usize = 800;

/// The workspace's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every crate of the workspace, by its directory.
const CRATES: [&str; 5] = ["core", "core/record", "analysis", "harness", "bins"];

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `send::uring::ring` for `src/send/uring/ring.rs`; `send` for `src/send/mod.rs`; "" for lib.rs.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// The code with comments and string/char literals blanked out.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r' && (b[i..].starts_with(b"r\"") || b[i..].starts_with(b"r#")) {
            // Raw string: r"..." or r#"..."#.
            let start = i;
            i += 1;
            let mut hashes = 0;
            while i < b.len() && b[i] == b'#' {
                hashes += 1;
                i += 1;
            }
            if i < b.len() && b[i] == b'"' {
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                i += 1;
                while i < b.len() && !b[i..].starts_with(&close) {
                    i += 1;
                }
                i += close.len();
                out.push_str("\"\"");
            } else {
                out.push_str(&src[start..i]);
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('a', '\n', '\''); lifetimes ('a) stay.
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else {
            let c = src[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Paths (as segment lists) named after `prefix::` at every occurrence, expanding one level of
/// braces: `crate::{a::X, b}` gives `[a, X]` and `[b]`.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let b = code.as_bytes();
    let pat = format!("{prefix}::");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(k) = code[from..].find(&pat) {
        let at = from + k;
        from = at + pat.len();
        if at > 0 && (ident_char(b[at - 1]) || b[at - 1] == b':') {
            continue; // part of a longer path (`foo::crate::`) or identifier
        }
        let rest = &code[from..];
        if let Some(inner) = rest.strip_prefix('{') {
            let end = matching_brace(inner);
            for item in split_top(&inner[..end]) {
                out.push(segments(item.trim()));
            }
        } else {
            out.push(segments(rest));
        }
    }
    out
}

fn matching_brace(s: &str) -> usize {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    s.len()
}

fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `a::b::C` (stopping at anything else) as segments.
fn segments(s: &str) -> Vec<String> {
    let mut segs = Vec::new();
    let mut rest = s;
    loop {
        let n = rest.bytes().take_while(|&c| ident_char(c)).count();
        if n == 0 {
            break;
        }
        segs.push(rest[..n].to_string());
        match rest[n..].strip_prefix("::") {
            Some(r) if !r.starts_with('{') => rest = r,
            Some(r) => {
                // A nested group: its first items still name the module before it.
                let _ = r;
                break;
            }
            None => break,
        }
    }
    segs
}

/// The longest known module that `path` (from the crate root) names.
fn resolve(modules: &BTreeSet<String>, path: &[String]) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains(m))
}

fn parent(m: &str) -> String {
    m.rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_string())
}

/// Each module and the modules it names.
type Edges = BTreeMap<String, BTreeSet<String>>;

/// The import graph of the crate whose sources are in `src`, and each file's length in lines.
fn graph(src: &Path) -> (Edges, Vec<(PathBuf, usize)>) {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    // (A binary's files are crates of their own: `src/bin/x.rs` imports only the library.)
    files.retain(|f| !f.strip_prefix(src).unwrap().starts_with("bin"));
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut lengths = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        lengths.push((f.clone(), text.lines().count()));
        let me = module_of(src, f);
        // A file's own unit tests (`mod tests`, last by convention) may use anything.
        let code = code_only(&text);
        let code = match code.find("#[cfg(test)]\nmod tests") {
            Some(i) => code[..i].to_string(),
            None => code,
        };
        let mut targets = BTreeSet::new();
        for p in paths_after(&code, "crate") {
            targets.extend(resolve(&modules, &p));
        }
        // `super::` from a file is relative to its module's parent (a file's own module for
        // `mod.rs` is the directory, whose parent is one up).
        for p in paths_after(&code, "super") {
            let mut base = parent(&me);
            let mut p = p;
            while p.first().is_some_and(|s| s == "super") {
                base = parent(&base);
                p.remove(0);
            }
            let mut full: Vec<String> = base
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            full.extend(p);
            targets.extend(resolve(&modules, &full));
        }
        for p in paths_after(&code, "self") {
            let mut full: Vec<String> = me
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            full.extend(p);
            targets.extend(resolve(&modules, &full));
        }
        // Child modules this file declares, named bare (`child::item`, `pub use child::X`).
        let children: Vec<&String> = modules
            .iter()
            .filter(|m| parent(m) == me && !m.is_empty())
            .collect();
        for c in children {
            let leaf = c.rsplit("::").next().unwrap();
            let named = paths_after(&code, leaf);
            if !named.is_empty() {
                targets.insert(c.clone());
            }
        }
        targets.remove(&me);
        targets.remove("");
        edges.insert(me, targets);
    }
    (edges, lengths)
}

/// A cycle through the graph, if there is one.
fn find_cycle(edges: &Edges) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        m: &str,
        edges: &Edges,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(m.to_string(), Mark::Open);
        stack.push(m.to_string());
        for t in edges.get(m).into_iter().flatten() {
            match marks.get(t).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let from = stack.iter().position(|s| s == t).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(t.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(t, edges, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(m.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for m in edges.keys() {
        if marks.get(m).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(c) = visit(m, edges, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// The edges between sibling modules: an edge between two files stands for one between the
/// children of their nearest common module that hold them (none when one holds the other).
fn sibling_edges(edges: &Edges) -> Edges {
    let mut out = Edges::new();
    for (from, tos) in edges {
        let a: Vec<&str> = from.split("::").collect();
        for to in tos {
            let b: Vec<&str> = to.split("::").collect();
            let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
            if common < a.len() && common < b.len() {
                out.entry(a[..=common].join("::"))
                    .or_default()
                    .insert(b[..=common].join("::"));
            }
        }
    }
    out
}

fn no_cycle(krate: &str, what: &str, edges: &Edges) -> Result<(), String> {
    match find_cycle(edges) {
        None => Ok(()),
        Some(cycle) => Err(format!(
            "{krate}: an import cycle between {what}: {} (move the shared piece down into a module of its own)",
            cycle.join(" -> ")
        )),
    }
}

#[test]
fn every_crates_modules_import_each_other_without_cycles() {
    let mut failures = Vec::new();
    for krate in CRATES {
        let (edges, _) = graph(&root().join(krate).join("src"));
        assert!(!edges.is_empty(), "{krate}: found no sources");
        failures.extend(no_cycle(krate, "files", &edges).err());
        failures.extend(no_cycle(krate, "modules", &sibling_edges(&edges)).err());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_source_file_is_over_the_limit() {
    let mut long = Vec::new();
    for krate in CRATES {
        for (dir, max) in [("src", MAX_LINES), ("tests", MAX_TEST_LINES)] {
            let mut files = Vec::new();
            let d = root().join(krate).join(dir);
            if d.is_dir() {
                rs_files(&d, &mut files);
            }
            for f in files {
                let n = std::fs::read_to_string(&f).unwrap().lines().count();
                if n > max {
                    long.push(format!("{} ({n} lines, {max} allowed)", f.display()));
                }
            }
        }
    }
    assert!(long.is_empty(), "too long: {}", long.join(", "));
}

#[test]
fn the_checker_sees_imports_and_cycles() {
    let code = code_only(
        "use crate::{a::X, b::{c, d}}; // crate::commented::Out\nlet s = \"crate::in_string\"; super::y::Z; r#\"crate::raw\"#",
    );
    let p = paths_after(&code, "crate");
    assert_eq!(p, vec![vec!["a".to_string(), "X".into()], vec!["b".into()]]);
    assert_eq!(
        paths_after(&code, "super"),
        vec![vec!["y".to_string(), "Z".into()]]
    );
    let mut g: Edges = BTreeMap::new();
    g.insert("a".into(), ["b".to_string()].into());
    g.insert("b".into(), ["c".to_string()].into());
    g.insert("c".into(), BTreeSet::new());
    assert_eq!(find_cycle(&g), None);
    g.get_mut("c").unwrap().insert("a".into());
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    // Two directory modules whose files import each other, no two files both ways.
    let mut g: Edges = BTreeMap::new();
    g.insert("wire::end".into(), ["zerocopy::stats".to_string()].into());
    g.insert("zerocopy::pool".into(), ["wire".to_string()].into());
    g.insert("wire".into(), ["wire::end".to_string()].into());
    assert_eq!(find_cycle(&g), None);
    let s = sibling_edges(&g);
    assert_eq!(s["wire"], ["zerocopy".to_string()].into());
    assert!(find_cycle(&s).is_some());
}
