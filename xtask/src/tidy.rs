//! `cargo xtask tidy`: the house rules a compiler does not check.
//!
//! - **No import loop.** Within each crate under `crates/`, every source file is a node and
//!   every path it names into the crate (`crate::…`, `super::…`, `self::…`, in `use` items and
//!   in expressions) is an edge to the file that defines the module named. A strongly connected
//!   component of more than one file is a loop and fails the check. Two kinds of path are not
//!   dependencies and make no edge: re-exports (`pub use` / `pub(crate) use`), which only name a
//!   child's item from its parent, and anything inside a `#[cfg(test)]` module.
//! - **No long file without a reason.** A file with more than [`MAX_LINES`] lines of code
//!   (blank lines, comments and `#[cfg(test)]` modules not counted) fails unless its module
//!   docs carry a line `//! Long file: <reason>`.
//!
//! The check is textual (no `syn` in xtask, which must build in seconds): a path is resolved to
//! the longest prefix that names a module file, which is what the module tree of these crates
//! makes unambiguous.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// Lines of code a file may hold without giving a reason.
pub(crate) const MAX_LINES: usize = 600;

/// Runs the check over every crate in `crates/`; prints what is wrong and returns whether
/// nothing is.
pub(crate) fn run(_args: &[String]) -> bool {
    let mut ok = true;
    let mut crates: Vec<PathBuf> = match fs::read_dir("crates") {
        Ok(dir) => dir.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(error) => {
            eprintln!("xtask tidy: cannot read crates/: {error}");
            return false;
        }
    };
    crates.sort();
    for krate in crates {
        let src = krate.join("src");
        if !src.is_dir() {
            continue;
        }
        let name = krate
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files = module_files(&src);
        // Files that are `#[cfg(test)] mod x;` of their parent are tests, not code.
        let test_files: Vec<Vec<String>> = files
            .iter()
            .flat_map(|(module, path)| {
                let text = fs::read_to_string(path).unwrap_or_default();
                test_module_names(&text)
                    .into_iter()
                    .map(|name| {
                        let mut child = module.clone();
                        child.push(name);
                        child
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        for test in &test_files {
            files.remove(test);
        }
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (module, path) in &files {
            let text = match fs::read_to_string(path) {
                Ok(text) => text,
                Err(error) => {
                    eprintln!("xtask tidy: cannot read {}: {error}", path.display());
                    ok = false;
                    continue;
                }
            };
            let code = without_tests(&text);
            let lines = code_lines(&code);
            if lines > MAX_LINES
                && !text
                    .lines()
                    .any(|l| l.trim_start().starts_with("//! Long file:"))
            {
                println!(
                    "tidy: {} has {lines} lines of code (limit {MAX_LINES}); split it along its seams, or say why in a `//! Long file: …` line",
                    path.display()
                );
                ok = false;
            }
            let here = module.clone();
            let targets = graph.entry(key(&here)).or_default();
            for target in paths(&code) {
                let Some(absolute) = absolute(&here, &target) else {
                    continue;
                };
                let resolved = resolve(&files, &absolute);
                if resolved != here {
                    targets.insert(key(&resolved));
                }
            }
        }
        for component in loops(&graph) {
            println!("tidy: import loop in {name}: {}", component.join(" → "));
            ok = false;
        }
    }
    if ok {
        println!("tidy: no import loop, no long file without a reason");
    }
    ok
}

/// Module path (as segments) → file, for every `.rs` file under `src`.
fn module_files(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let Ok(relative) = path.strip_prefix(src) else {
                continue;
            };
            let mut segments: Vec<String> = relative
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            let last = segments.pop().unwrap_or_default();
            let stem = last.trim_end_matches(".rs");
            if !matches!(stem, "mod" | "lib" | "main") {
                segments.push(stem.to_owned());
            } else if stem == "main" && src.join("lib.rs").exists() {
                // A binary beside a library is its own root; leave it out.
                continue;
            }
            out.insert(segments, path);
        }
    }
    out
}

fn key(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// The text with every `#[cfg(test)]` module (and item) removed.
fn without_tests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            // Skip the attributed item: through its matching closing brace, or its `;`.
            let mut depth = 0i32;
            let mut opened = false;
            for next in lines.by_ref() {
                for c in next.chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                if (opened && depth <= 0) || (!opened && next.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The modules a file declares as `#[cfg(test)] mod name;` (tests in their own file).
fn test_module_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut after_cfg_test = false;
    for line in text.lines().map(str::trim) {
        if line == "#[cfg(test)]" {
            after_cfg_test = true;
            continue;
        }
        if after_cfg_test && line.starts_with("#[") {
            continue;
        }
        if after_cfg_test {
            let item = line
                .strip_prefix("pub(crate) ")
                .or_else(|| line.strip_prefix("pub "))
                .unwrap_or(line);
            if let Some(name) = item.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                out.push(name.trim().to_owned());
            }
        }
        after_cfg_test = false;
    }
    out
}

/// Lines that are neither blank nor comments.
fn code_lines(code: &str) -> usize {
    code.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

/// Every crate-relative path named in `code` (as written: starting with `crate`, `super` or
/// `self`), leaving out re-exports.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut statement = String::new();
    let mut in_use = false;
    let mut reexport = false;
    for raw in code.lines() {
        let line = match raw.find("//") {
            Some(i) => &raw[..i],
            None => raw,
        };
        let trimmed = line.trim_start();
        if !in_use {
            let (is_use, is_pub) = use_start(trimmed);
            if is_use {
                in_use = true;
                reexport = is_pub;
                statement.clear();
            } else {
                out.extend(inline_paths(line));
                continue;
            }
        }
        statement.push_str(line);
        statement.push(' ');
        if line.contains(';') {
            in_use = false;
            if !reexport {
                let body = statement.trim_start();
                let body = body[body.find("use ").map_or(0, |i| i + 4)..].trim();
                let body = body.trim_end_matches(|c: char| c == ';' || c.is_whitespace());
                use_tree(body, &mut Vec::new(), &mut out);
            }
        }
    }
    out
}

/// Whether a line starts a `use` item, and whether that item is a re-export.
fn use_start(trimmed: &str) -> (bool, bool) {
    if trimmed.starts_with("use ") {
        return (true, false);
    }
    if let Some(rest) = trimmed.strip_prefix("pub") {
        let rest = if rest.starts_with('(') {
            rest.find(')').map_or("", |i| &rest[i + 1..])
        } else {
            rest
        };
        if rest.trim_start().starts_with("use ") {
            return (true, true);
        }
    }
    (false, false)
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its paths, keeping only crate-relative ones.
fn use_tree(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    // Split at the first top-level `{`.
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let added = segments(head);
        let n = added.len();
        prefix.extend(added);
        for part in split_top(inner) {
            use_tree(part, prefix, out);
        }
        prefix.truncate(prefix.len() - n);
        return;
    }
    let path = tree.split(" as ").next().unwrap_or(tree);
    let mut full = prefix.clone();
    full.extend(segments(path));
    if matches!(
        full.first().map(String::as_str),
        Some("crate" | "super" | "self")
    ) {
        out.push(full);
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "*")
        .map(str::to_owned)
        .collect()
}

/// Splits at commas that are not inside braces.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// `crate::a::b`, `super::x`, `self::y` written in expressions and types.
fn inline_paths(line: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    for root in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = line[from..].find(root) {
            let at = from + i;
            from = at + root.len();
            // Must start an identifier path (not `my_crate::`, not `$crate::`).
            if at > 0 {
                let prev = bytes[at - 1];
                if prev.is_ascii_alphanumeric() || prev == b'_' || prev == b'$' || prev == b':' {
                    continue;
                }
            }
            let rest = &line[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            out.push(segments(&rest[..end]));
        }
    }
    out
}

/// The absolute module path a written path points into.
fn absolute(here: &[String], path: &[String]) -> Option<Vec<String>> {
    // A file's own module is what `self` names; `super` is its parent (module paths already
    // account for `mod.rs`).
    let mut base: Vec<String> = here.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The longest prefix of `path` that is a module with its own file.
fn resolve(files: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Vec<String> {
    for n in (0..=path.len()).rev() {
        if files.contains_key(&path[..n]) {
            return path[..n].to_vec();
        }
    }
    Vec::new()
}

/// Strongly connected components with more than one node (Tarjan), each sorted.
fn loops(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(targets) = s.graph.get(v) {
            for w in targets {
                let w = w.as_str();
                if !s.graph.contains_key(w) {
                    continue;
                }
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low[v];
                    s.low.insert(v, lv.min(lw));
                } else if s.on_stack.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low[v];
                    s.low.insert(v, lv.min(iw));
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(edges: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry((*a).to_owned())
                .or_default()
                .insert((*b).to_owned());
            g.entry((*b).to_owned()).or_default();
        }
        g
    }

    #[test]
    fn finds_a_loop_and_only_the_loop() {
        let g = set(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]);
        assert_eq!(
            loops(&g),
            vec![vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]
        );
        assert!(loops(&set(&[("a", "b"), ("b", "c")])).is_empty());
    }

    #[test]
    fn use_trees_expand_and_reexports_do_not_count() {
        let code = "use crate::{a::{B, c::D}, e};\npub use self::f::G;\nuse std::fmt;\nfn x() { super::h::i(); }\n";
        let got = paths(code);
        let want: Vec<Vec<String>> = vec![
            vec!["crate", "a", "B"],
            vec!["crate", "a", "c", "D"],
            vec!["crate", "e"],
            vec!["super", "h", "i"],
        ]
        .into_iter()
        .map(|v| v.into_iter().map(str::to_owned).collect())
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn test_modules_are_left_out() {
        let code = "fn a() {}\n#[cfg(test)]\nmod tests {\n    use crate::b;\n    fn t() {}\n}\nfn c() {}\n";
        assert_eq!(without_tests(code), "fn a() {}\nfn c() {}\n");
        assert_eq!(code_lines("// c\n\nfn a() {}\n"), 1);
    }

    #[test]
    fn test_module_files_are_found() {
        let text =
            "mod a;\n#[cfg(test)]\nmod tests;\n#[cfg(test)]\n#[path = \"x.rs\"]\nmod more;\n";
        assert_eq!(
            test_module_names(text),
            vec!["tests".to_owned(), "more".to_owned()]
        );
    }

    #[test]
    fn super_and_self_resolve_from_the_file() {
        let here = vec!["store".to_owned(), "sqlite".to_owned()];
        let p: Vec<String> = ["super", "memory", "X"].map(str::to_owned).to_vec();
        assert_eq!(
            absolute(&here, &p),
            Some(vec!["store".into(), "memory".into(), "X".into()])
        );
    }
}
