//! The files of a crate and their imports: the module tree from each crate root (`mod`
//! declarations, inline modules, `#[cfg(test)]` modules skipped), and for each file the files its
//! `use` trees and `crate::`/`super::`/`self::` paths lead to.

use crate::circles::circles;
use crate::lexer::{Tok, is_ident, lex, matching};
use crate::toml::unquote;
use crate::workspace::{read_manifest, rel};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// For each file of a crate's `src/` reached from a crate root, the files it imports from, each
/// with the first line that does.
pub(crate) type FileGraph = BTreeMap<PathBuf, BTreeMap<PathBuf, usize>>;

/// One module of a crate: the file its items are in (an inline `mod x { … }` is in the file that
/// declares it) and the folder of its `mod x;` children.
pub(crate) struct Module {
    file: PathBuf,
    children_dir: PathBuf,
    parent: Option<usize>,
    children: BTreeMap<String, usize>,
}

pub(crate) struct ModuleTree {
    modules: Vec<Module>,
    /// `(from file, to file, line)`.
    edges: Vec<(PathBuf, PathBuf, usize)>,
    problems: Vec<String>,
}

/// The import graph of a member's `src/`: every crate root there (`lib.rs`, `main.rs`, `bin/`,
/// and `[lib]`/`[[bin]]` paths) and the files its `mod` declarations reach.
pub(crate) fn file_graph(member_dir: &Path) -> Result<FileGraph, String> {
    let src = member_dir.join("src");
    let mut roots: BTreeSet<PathBuf> = BTreeSet::new();
    for name in ["lib.rs", "main.rs"] {
        if src.join(name).is_file() {
            roots.insert(src.join(name));
        }
    }
    if let Ok(bins) = fs::read_dir(src.join("bin")) {
        for bin in bins.flatten() {
            let path = bin.path();
            if path.extension().is_some_and(|e| e == "rs") {
                roots.insert(path);
            } else if path.join("main.rs").is_file() {
                roots.insert(path.join("main.rs"));
            }
        }
    }
    for e in read_manifest(member_dir)? {
        if (e.table == ["lib"] || e.table == ["bin"]) && e.key == ["path"] {
            let path = member_dir.join(unquote(&e.value));
            if path.starts_with(&src) && path.is_file() {
                roots.insert(path);
            }
        }
    }
    let mut graph = FileGraph::new();
    let mut problems = Vec::new();
    for root in roots {
        let mut tree = ModuleTree {
            modules: vec![Module {
                file: root.clone(),
                children_dir: src.clone(),
                parent: None,
                children: BTreeMap::new(),
            }],
            edges: Vec::new(),
            problems: Vec::new(),
        };
        // Modules first (a `use` may name a module declared further down), then the imports.
        let mut files = Vec::new();
        declare_file(&mut tree, 0, &root, &mut files);
        for (module, tokens, range) in &files {
            scan_imports(&mut tree, *module, tokens, range.clone());
        }
        for m in &tree.modules {
            graph.entry(m.file.clone()).or_default();
        }
        for (from, to, line) in tree.edges {
            if from != to {
                let slot = graph.entry(from).or_default().entry(to).or_insert(line);
                *slot = (*slot).min(line);
            }
        }
        problems.extend(tree.problems);
    }
    if problems.is_empty() {
        Ok(graph)
    } else {
        Err(problems.join("; "))
    }
}

/// Token ranges still to scan for imports: (module, the file's tokens, range).
pub(crate) type Pending = Vec<(usize, std::rc::Rc<Vec<Tok>>, std::ops::Range<usize>)>;

/// Reads `file` as the items of `module`, declaring its child modules (recursively).
pub(crate) fn declare_file(
    tree: &mut ModuleTree,
    module: usize,
    file: &Path,
    pending: &mut Pending,
) {
    let text = match fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            tree.problems
                .push(format!("cannot read {}: {e}", file.display()));
            return;
        }
    };
    let tokens = std::rc::Rc::new(lex(&text));
    let len = tokens.len();
    declare_range(tree, module, file, &tokens, 0..len, pending);
}

/// Declares the modules in `range` of a file's tokens and queues the non-test code for
/// [`scan_imports`].
pub(crate) fn declare_range(
    tree: &mut ModuleTree,
    module: usize,
    file: &Path,
    tokens: &std::rc::Rc<Vec<Tok>>,
    range: std::ops::Range<usize>,
    pending: &mut Pending,
) {
    let t = tokens.as_slice();
    let mut i = range.start;
    let mut chunk_start = i;
    let mut test_attr = false;
    while i < range.end {
        match t[i].text.as_str() {
            "#" => {
                let inner = t.get(i + 1).is_some_and(|x| x.text == "!");
                let open = if inner { i + 2 } else { i + 1 };
                if t.get(open).is_some_and(|x| x.text == "[") {
                    let close = matching(t, open, range.end);
                    if !inner && is_cfg_test(&t[open + 1..close]) {
                        test_attr = true;
                    }
                    i = close + 1;
                } else {
                    i += 1;
                }
                continue;
            }
            "pub" => {
                i += 1;
                if t.get(i).is_some_and(|x| x.text == "(") {
                    i = matching(t, i, range.end) + 1;
                }
                continue;
            }
            "mod" if t.get(i + 1).is_some_and(|x| is_ident(&x.text)) => {
                let name = t[i + 1].text.clone();
                let after = t.get(i + 2).map(|x| x.text.as_str());
                if after == Some(";") {
                    if !test_attr {
                        let dir = tree.modules[module].children_dir.clone();
                        let flat = dir.join(format!("{name}.rs"));
                        let nested = dir.join(&name).join("mod.rs");
                        let (child_file, child_dir) = if flat.is_file() {
                            (flat, dir.join(&name))
                        } else if nested.is_file() {
                            (nested, dir.join(&name))
                        } else {
                            tree.problems.push(format!(
                                "{}: `mod {name};` but neither {} nor {} exists",
                                file.display(),
                                flat.display(),
                                nested.display()
                            ));
                            i += 3;
                            test_attr = false;
                            continue;
                        };
                        let child = add_module(tree, module, &name, child_file.clone(), child_dir);
                        declare_file(tree, child, &child_file, pending);
                    }
                    i += 3;
                } else if after == Some("{") {
                    let close = matching(t, i + 2, range.end);
                    if test_attr {
                        // A test module is ignored entirely.
                        pending.push((module, tokens.clone(), chunk_start..i));
                    } else {
                        pending.push((module, tokens.clone(), chunk_start..i));
                        let dir = tree.modules[module].children_dir.join(&name);
                        let child = add_module(tree, module, &name, file.to_path_buf(), dir);
                        declare_range(tree, child, file, tokens, i + 3..close, pending);
                    }
                    i = close + 1;
                    chunk_start = i;
                } else {
                    i += 1;
                }
                test_attr = false;
                continue;
            }
            _ => {
                test_attr = false;
                i += 1;
            }
        }
    }
    pending.push((module, tokens.clone(), chunk_start..range.end));
}

pub(crate) fn add_module(
    tree: &mut ModuleTree,
    parent: usize,
    name: &str,
    file: PathBuf,
    children_dir: PathBuf,
) -> usize {
    let index = tree.modules.len();
    tree.modules.push(Module {
        file,
        children_dir,
        parent: Some(parent),
        children: BTreeMap::new(),
    });
    tree.modules[parent].children.insert(name.to_owned(), index);
    index
}

/// Whether an attribute's tokens (inside `#[…]`) are a `cfg` that holds only in tests.
pub(crate) fn is_cfg_test(attr: &[Tok]) -> bool {
    attr.first().is_some_and(|t| t.text == "cfg")
        && attr.iter().any(|t| t.text == "test")
        && !attr.iter().any(|t| t.text == "not")
}

/// Records the imports (`use` trees and `crate::`/`super::`/`self::` paths in code) of a range
/// that has no module declarations left in it.
pub(crate) fn scan_imports(
    tree: &mut ModuleTree,
    module: usize,
    tokens: &[Tok],
    range: std::ops::Range<usize>,
) {
    let file = tree.modules[module].file.clone();
    let mut i = range.start;
    while i < range.end {
        let tok = &tokens[i];
        match tok.text.as_str() {
            "use" => {
                let end = (i..range.end)
                    .find(|&j| tokens[j].text == ";")
                    .unwrap_or(range.end);
                let mut paths = Vec::new();
                let mut pos = i + 1;
                parse_use_tree(&tokens[..end], &mut pos, Vec::new(), &mut paths);
                for path in paths {
                    if let Some(target) = resolve(tree, module, &path) {
                        let to = tree.modules[target].file.clone();
                        tree.edges.push((file.clone(), to, tok.line));
                    }
                }
                i = end + 1;
            }
            "crate" | "super" | "self"
                if tokens.get(i + 1).is_some_and(|t| t.text == "::")
                    && !(i > 0 && tokens[i - 1].text == "::") =>
            {
                let mut path = vec![tok.text.clone()];
                let mut j = i + 1;
                while j + 1 < range.end && tokens[j].text == "::" && is_ident(&tokens[j + 1].text) {
                    path.push(tokens[j + 1].text.clone());
                    j += 2;
                }
                if let Some(target) = resolve(tree, module, &path) {
                    let to = tree.modules[target].file.clone();
                    tree.edges.push((file.clone(), to, tok.line));
                }
                i = j;
            }
            _ => i += 1,
        }
    }
}

/// Parses one use tree at `pos` into full paths (a group's `self` is its prefix; a glob is its
/// module).
pub(crate) fn parse_use_tree(
    t: &[Tok],
    pos: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    let mut path = prefix;
    while *pos < t.len() {
        let text = t[*pos].text.as_str();
        match text {
            "::" => *pos += 1,
            "{" => {
                *pos += 1;
                while *pos < t.len() && t[*pos].text != "}" {
                    let before = *pos;
                    parse_use_tree(t, pos, path.clone(), out);
                    if *pos < t.len() && t[*pos].text == "," {
                        *pos += 1;
                    }
                    if *pos == before {
                        *pos += 1;
                    }
                }
                *pos += 1;
                return;
            }
            "*" => {
                *pos += 1;
                out.push(path);
                return;
            }
            "self" if !path.is_empty() => {
                *pos += 1;
                skip_rename(t, pos);
                out.push(path);
                return;
            }
            _ if is_ident(text) => {
                path.push(text.to_owned());
                *pos += 1;
                if t.get(*pos).is_some_and(|x| x.text == "::") {
                    continue;
                }
                skip_rename(t, pos);
                out.push(path);
                return;
            }
            _ => {
                if !path.is_empty() {
                    out.push(path);
                }
                return;
            }
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

pub(crate) fn skip_rename(t: &[Tok], pos: &mut usize) {
    if t.get(*pos).is_some_and(|x| x.text == "as") {
        *pos += 2;
    }
}

/// The module a path leads to (its deepest module prefix), from `module`; `None` for paths that
/// leave the crate.
pub(crate) fn resolve(tree: &ModuleTree, module: usize, path: &[String]) -> Option<usize> {
    let (first, rest) = path.split_first()?;
    let (mut current, mut rest) = match first.as_str() {
        "crate" => (0, rest),
        "self" => (module, rest),
        "super" => {
            let mut current = tree.modules[module].parent?;
            let mut rest = rest;
            while rest.first().is_some_and(|s| s == "super") {
                current = tree.modules[current].parent?;
                rest = &rest[1..];
            }
            (current, rest)
        }
        // A child module named without `self::` (2018 paths); anything else is another crate.
        name if tree.modules[module].children.contains_key(name) => (module, path),
        _ => return None,
    };
    while let Some((segment, tail)) = rest.split_first() {
        match tree.modules[current].children.get(segment) {
            Some(&child) => {
                current = child;
                rest = tail;
            }
            None => break,
        }
    }
    Some(current)
}

/// A crate in a temporary folder: `(path under src/, text)`.
fn scratch_crate(name: &str, files: &[(&str, &str)]) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("architecture-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    for (path, text) in files {
        let path = dir.join("src").join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, text)?;
    }
    fs::write(dir.join("Cargo.toml"), "[package]\nname = \"scratch\"\n")?;
    Ok(dir)
}

#[test]
fn file_graph_reads_use_trees_inline_paths_and_skips_tests_comments_and_strings() {
    let dir = scratch_crate(
        "files",
        &[
            (
                "lib.rs",
                "//! Docs name crate::b::Y, which is no import.\n\
                 mod a;\n\
                 pub mod b;\n\
                 mod c {\n    pub(crate) use crate::a::X;\n}\n\
                 pub use b::Y;\n\
                 #[cfg(test)]\n\
                 mod tests {\n    use crate::b::*;\n}\n",
            ),
            (
                "a.rs",
                "pub struct X;\n\
                 pub(crate) fn f<'a>(s: &'a str) -> char {\n\
                 \x20   let _ = crate::b::Y;\n\
                 \x20   let _ = \"use crate::c;\";\n\
                 \x20   let _ = r#\"super::c \"# ;\n\
                 \x20   /* crate::c /* nested */ crate::c */\n\
                 \x20   '{'\n\
                 }\n\
                 #[cfg(test)]\n\
                 mod tests {\n    use crate::*;\n    use super::super::c;\n}\n",
            ),
            (
                "b.rs",
                "mod inner;\n\
                 pub struct Y;\n\
                 use super::{a::{self, X as Z}};\n\
                 use std::fmt;\n",
            ),
            ("b/inner.rs", "use super::super::a::X;\n"),
        ],
    )
    .unwrap();
    let graph = file_graph(&dir).unwrap();
    let src = dir.join("src");
    let edges: BTreeSet<(String, String)> = graph
        .iter()
        .flat_map(|(from, to)| {
            to.keys()
                .map(|to| (rel(&src, from), rel(&src, to)))
                .collect::<Vec<_>>()
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("lib.rs", "a.rs"),
        ("lib.rs", "b.rs"),
        ("a.rs", "b.rs"),
        ("b.rs", "a.rs"),
        ("b/inner.rs", "a.rs"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(edges, expected);
    let found: Vec<Vec<String>> = circles(&graph)
        .iter()
        .map(|c| c.iter().map(|f| rel(&src, f)).collect())
        .collect();
    assert_eq!(found, vec![vec!["a.rs".to_owned(), "b.rs".to_owned()]]);
    let _ = fs::remove_dir_all(&dir);
}
