//! The workspace: its root, its members, the dependencies between them, and the crate graph
//! written in `docs/architecture.md`.

use crate::toml::{Entry, inline_field, inline_flag, string_array, toml_entries, unquote};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The file (relative to the workspace root) that holds the crate graph in a ```` ```deps ````
/// block.
pub(crate) const ARCHITECTURE_DOC: &str = "docs/architecture.md";

/// The workspace root: the nearest ancestor of this crate whose `Cargo.toml` has `[workspace]`.
pub(crate) fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|dir| {
            fs::read_to_string(dir.join("Cargo.toml"))
                .map(|t| toml_entries(&t).iter().any(|e| e.table == ["workspace"]))
                .unwrap_or(false)
        })
        .unwrap_or(here)
        .to_path_buf()
}

/// A path relative to the workspace root, with `/`.
pub(crate) fn rel(root: &Path, path: &Path) -> String {
    let path = path.strip_prefix(root).unwrap_or(path);
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// One workspace member.
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) manifest: Vec<Entry>,
}

/// The workspace's members: `[workspace] members` (a trailing `/*` lists a folder) and the root
/// package, if any.
pub(crate) fn members(root: &Path) -> Result<Vec<Member>, String> {
    let root_manifest = read_manifest(root)?;
    let mut dirs = Vec::new();
    if root_manifest.iter().any(|e| e.table == ["package"]) {
        dirs.push(root.to_path_buf());
    }
    for entry in &root_manifest {
        if entry.table == ["workspace"] && entry.key == ["members"] {
            for pattern in string_array(&entry.value) {
                match pattern.strip_suffix("/*") {
                    Some(parent) => {
                        let list = fs::read_dir(root.join(parent))
                            .map_err(|e| format!("cannot list {parent}: {e}"))?;
                        let mut found: Vec<PathBuf> = list
                            .flatten()
                            .map(|e| e.path())
                            .filter(|p| p.join("Cargo.toml").is_file())
                            .collect();
                        found.sort();
                        dirs.extend(found);
                    }
                    None => dirs.push(root.join(pattern)),
                }
            }
        }
    }
    let mut members = Vec::new();
    for dir in dirs {
        let manifest = read_manifest(&dir)?;
        let name = manifest
            .iter()
            .find(|e| e.table == ["package"] && e.key == ["name"])
            .map(|e| unquote(&e.value))
            .ok_or_else(|| format!("{}: no [package] name", dir.display()))?;
        members.push(Member {
            name,
            dir,
            manifest,
        });
    }
    Ok(members)
}

pub(crate) fn read_manifest(dir: &Path) -> Result<Vec<Entry>, String> {
    let path = dir.join("Cargo.toml");
    fs::read_to_string(&path)
        .map(|t| toml_entries(&t))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// How one crate depends on another.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Kind {
    /// `[dependencies]` or `[build-dependencies]` (any target).
    Normal,
    /// Only `[dev-dependencies]`.
    Dev,
}

/// Every dependency of a workspace member on another member, once, as `(from, to, kind)`; a
/// crate that is both a normal and a dev-dependency counts as normal.
pub(crate) fn crate_graph(root: &Path) -> Result<BTreeSet<(String, String, Kind)>, String> {
    let members = members(root)?;
    let names: BTreeSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
    // `[workspace.dependencies]` may rename: `key = { package = "name", … }`.
    let root_manifest = read_manifest(root)?;
    let workspace_package = |key: &str| -> String {
        root_manifest
            .iter()
            .find(|e| {
                e.table == ["workspace", "dependencies"] && e.key.first().is_some_and(|k| k == key)
            })
            .and_then(|e| inline_field(&e.value, "package"))
            .unwrap_or_else(|| key.to_owned())
    };
    let mut found: BTreeMap<(String, String), Kind> = BTreeMap::new();
    for member in &members {
        // `[dependencies.NAME]` tables: the package of each, when renamed.
        let mut table_package: BTreeMap<Vec<String>, String> = BTreeMap::new();
        for e in &member.manifest {
            if e.key == ["package"] {
                table_package.insert(e.table.clone(), unquote(&e.value));
            }
        }
        let mut seen_tables = BTreeSet::new();
        for e in &member.manifest {
            let Some((kind, rest)) = dependency_table(&e.table) else {
                continue;
            };
            let package = match rest {
                // `[dependencies]`: `key = …` or `key.workspace = true`.
                [] => {
                    let Some(key) = e.key.first() else { continue };
                    if e.key.get(1).is_some_and(|k| k == "workspace")
                        || inline_flag(&e.value, "workspace")
                    {
                        workspace_package(key)
                    } else {
                        inline_field(&e.value, "package").unwrap_or_else(|| key.clone())
                    }
                }
                // `[dependencies.key]`: the table itself is the dependency.
                [key] => {
                    if !seen_tables.insert(e.table.clone()) {
                        continue;
                    }
                    let workspace = member
                        .manifest
                        .iter()
                        .any(|x| x.table == e.table && x.key == ["workspace"]);
                    match table_package.get(&e.table) {
                        Some(p) => p.clone(),
                        None if workspace => workspace_package(key),
                        None => key.clone(),
                    }
                }
                _ => continue,
            };
            if !names.contains(package.as_str()) || package == member.name {
                continue;
            }
            let slot = found.entry((member.name.clone(), package)).or_insert(kind);
            *slot = (*slot).min(kind);
        }
    }
    Ok(found
        .into_iter()
        .map(|((from, to), kind)| (from, to, kind))
        .collect())
}

/// Whether a table holds dependencies, of which kind, and what follows its `dependencies` part
/// (nothing, or the dependency's key for `[dependencies.key]`).
pub(crate) fn dependency_table(table: &[String]) -> Option<(Kind, &[String])> {
    let rest = match table {
        [t, _cfg, rest @ ..] if t == "target" => rest,
        rest => rest,
    };
    let (first, rest) = rest.split_first()?;
    let kind = match first.as_str() {
        "dependencies" | "build-dependencies" | "build_dependencies" => Kind::Normal,
        "dev-dependencies" | "dev_dependencies" => Kind::Dev,
        _ => return None,
    };
    Some((kind, rest))
}

/// The lines of the ```` ```deps ```` block of the architecture doc.
pub(crate) fn documented_deps(root: &Path) -> Result<BTreeSet<String>, String> {
    let path = root.join(ARCHITECTURE_DOC);
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {ARCHITECTURE_DOC}: {e}"))?;
    let mut inside = false;
    let mut found = false;
    let mut deps = BTreeSet::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if inside {
            if trimmed.starts_with("```") {
                inside = false;
            } else if !trimmed.is_empty() {
                // One space around the arrow, whatever the doc uses.
                let words: Vec<&str> = trimmed.split_whitespace().collect();
                deps.insert(words.join(" "));
            }
        } else if trimmed.strip_prefix("```").map(str::trim) == Some("deps") {
            inside = true;
            found = true;
        }
    }
    if found {
        Ok(deps)
    } else {
        Err(format!(
            "{ARCHITECTURE_DOC} has no ```deps block (one `a -> b` or `a -dev-> b` a line)"
        ))
    }
}

#[test]
fn dependency_tables_of_every_kind_and_target() {
    let table = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    let dev = table(&[
        "target",
        "cfg(not(target_arch = \"wasm32\"))",
        "dev-dependencies",
    ]);
    assert!(matches!(dependency_table(&dev), Some((Kind::Dev, []))));
    let build = table(&["build-dependencies"]);
    assert!(matches!(dependency_table(&build), Some((Kind::Normal, []))));
    let named = table(&["dependencies", "w"]);
    assert!(matches!(dependency_table(&named), Some((Kind::Normal, [w])) if w == "w"));
    assert!(dependency_table(&table(&["package"])).is_none());
    assert!(dependency_table(&table(&["target", "cfg(unix)", "features"])).is_none());
}
