//! The workspace's architecture, checked as a test so that it cannot drift from the tree:
//!
//! 1. no import circle between the files of one crate's `src/`;
//! 2. no circle between the workspace's crates (dev-dependencies counted), and the dependency
//!    graph equals the ```` ```deps ```` block of `docs/architecture.md`;
//! 3. `fast_rtc_swarm_core` pulls in no async runtime, WebRTC stack or browser binding;
//! 4. `cfg(target_arch` appears in `crates/*/src` only in the platform seam.
//!
//! Std only: the Cargo manifests and the Rust sources are read by small parsers that understand
//! exactly as much as these checks need, in `architecture/`: [`workspace`] (members, the crate
//! graph, the doc's block) → [`toml`] (a minimal TOML reader); [`imports`] (each crate's module
//! tree and the files its imports lead to) → [`lexer`] (a minimal Rust lexer), [`workspace`];
//! [`circles`] (strongly connected components).
//!
//! Run: `cargo test -p fast_rtc_testkit --test architecture` (`-- --nocapture` prints what each
//! check found).

#[path = "architecture/circles.rs"]
mod circles;
#[path = "architecture/imports.rs"]
mod imports;
#[path = "architecture/lexer.rs"]
mod lexer;
#[path = "architecture/toml.rs"]
mod toml;
#[path = "architecture/workspace.rs"]
mod workspace;

use circles::circles;
use imports::file_graph;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use workspace::{
    ARCHITECTURE_DOC, Kind, crate_graph, documented_deps, members, rel, workspace_root,
};

/// Where `cfg(target_arch` may appear (check 4), relative to the workspace root: the platform
/// seam of the swarm (`platform/`, one folder per target) and the crate root that declares it.
/// Everything else picks its target through the seam. Do not add files here to make the check
/// pass: move the target-specific code behind the seam.
const TARGET_ARCH_ALLOWED: &[&str] = &[
    "crates/fast_rtc_swarm/src/platform/",
    "crates/fast_rtc_swarm/src/lib.rs",
];

/// The crate that must stay free of I/O runtimes (check 3).
const CORE_CRATE: &str = "fast_rtc_swarm_core";

/// Crate names (a trailing `*` matches any suffix) that the core crate must not depend on, even
/// indirectly: async runtimes, WebRTC, browser bindings.
const BANNED_IN_CORE: &[&str] = &[
    "webrtc*",
    "rtc*",
    "smol*",
    "tokio*",
    "futures*",
    "async-*",
    "web-sys",
    "wasm-bindgen*",
    "js-sys",
];

/// Check 1: no import circle between the files of one crate's `src/`.
#[test]
fn no_import_circle_between_files_of_a_crate() {
    let root = workspace_root();
    let mut problems = Vec::new();
    let members = match members(&root) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    for member in &members {
        let graph = match file_graph(&member.dir) {
            Ok(g) => g,
            Err(e) => {
                problems.push(format!("{}: {e}", member.name));
                continue;
            }
        };
        let circles = circles(&graph);
        if circles.is_empty() {
            println!("{}: no import circle", member.name);
            continue;
        }
        let mut report = format!(
            "{}: {} import circle(s) between files:",
            member.name,
            circles.len()
        );
        for circle in &circles {
            report.push_str(&format!("\n  circle of {} files:", circle.len()));
            for file in circle {
                report.push_str(&format!("\n    {}", rel(&root, file)));
            }
            report.push_str("\n  through these imports:");
            for from in circle {
                for (to, line) in graph.get(from).into_iter().flatten() {
                    if circle.contains(to) {
                        report.push_str(&format!(
                            "\n    {}:{line} -> {}",
                            rel(&root, from),
                            rel(&root, to)
                        ));
                    }
                }
            }
        }
        problems.push(report);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Check 2a: no circle between the workspace's crates, dev-dependencies counted.
#[test]
fn no_circle_between_crates() {
    let root = workspace_root();
    let graph = match crate_graph(&root) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    };
    let mut edges: BTreeMap<String, BTreeMap<String, ()>> = BTreeMap::new();
    for (from, to, _) in &graph {
        edges
            .entry(from.clone())
            .or_default()
            .insert(to.clone(), ());
    }
    let found: Vec<String> = circles(&edges)
        .into_iter()
        .map(|circle| circle.join(", "))
        .collect();
    assert!(
        found.is_empty(),
        "crates depend on each other in a circle (dev-dependencies counted):\n  {}",
        found.join("\n  ")
    );
}

/// Check 2b: the crate graph equals the `deps` block of `docs/architecture.md`.
#[test]
fn crate_graph_matches_the_docs() {
    let root = workspace_root();
    let graph = match crate_graph(&root) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    };
    let actual: BTreeSet<String> = graph
        .iter()
        .map(|(from, to, kind)| match kind {
            Kind::Normal => format!("{from} -> {to}"),
            Kind::Dev => format!("{from} -dev-> {to}"),
        })
        .collect();
    println!("the crate graph:\n{}", lines(&actual));
    let documented = match documented_deps(&root) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let add: BTreeSet<String> = actual.difference(&documented).cloned().collect();
    let remove: BTreeSet<String> = documented.difference(&actual).cloned().collect();
    assert!(
        add.is_empty() && remove.is_empty(),
        "the ```deps block of {ARCHITECTURE_DOC} differs from the Cargo.toml files\n\
         lines to add:\n{}\nlines to remove:\n{}",
        lines(&add),
        lines(&remove)
    );
}

/// The crate of the core's time type, pruned from check 3.
const TIME_TYPE_CRATE: &str = "web-time";

/// Check 3: `cargo tree -p fast_rtc_swarm_core -e normal` lists no async runtime, WebRTC crate
/// or browser binding (on any target), but for what the time *type* brings on wasm.
///
/// The core names time with `web_time::Instant` (std's `Instant` natively; on wasm the type
/// Bevy's `Time<Real>` hands out), and never reads it (its `clippy.toml` bans `now`). On wasm,
/// web-time's own implementation of `now` uses js-sys: that subtree is pruned here, and web-time
/// is the one crate allowed to bring it.
#[test]
fn core_crate_has_no_runtime_webrtc_or_browser_dependency() {
    let root = workspace_root();
    let output = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "tree",
            "-p",
            CORE_CRATE,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--target",
            "all",
            "--prune",
            TIME_TYPE_CRATE,
            "--offline",
            "--locked",
        ])
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) => panic!("cannot run cargo tree: {e}"),
    };
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    let banned: BTreeSet<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| BANNED_IN_CORE.iter().any(|p| matches_pattern(p, name)))
        .collect();
    println!(
        "{CORE_CRATE} depends on {} crates (with itself)",
        tree.lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect::<BTreeSet<_>>()
            .len()
    );
    assert!(
        banned.is_empty(),
        "{CORE_CRATE} must stay free of async runtimes, WebRTC and browser bindings, but \
         `cargo tree -p {CORE_CRATE} -e normal` lists: {}",
        banned.into_iter().collect::<Vec<_>>().join(", ")
    );
}

/// Check 4: `cfg(target_arch` in `crates/*/src` only in the platform seam.
#[test]
fn target_arch_only_in_the_platform_seam() {
    let root = workspace_root();
    let mut files = Vec::new();
    let crates = match fs::read_dir(root.join("crates")) {
        Ok(c) => c,
        Err(e) => panic!("cannot list crates/: {e}"),
    };
    for entry in crates.flatten() {
        rust_files(&entry.path().join("src"), &mut files);
    }
    let mut hits = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            hits.push(format!("{}: unreadable", rel(&root, &file)));
            continue;
        };
        let path = rel(&root, &file);
        if TARGET_ARCH_ALLOWED
            .iter()
            .any(|a| path == *a || (a.ends_with('/') && path.starts_with(a)))
        {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if line.contains("cfg(target_arch") {
                hits.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "`cfg(target_arch` outside the platform seam ({}):\n{}",
        TARGET_ARCH_ALLOWED.join(", "),
        hits.join("\n")
    );
}

/// `pattern` is a name, or a prefix followed by `*`.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// The lines of a set, indented, or `(none)`.
fn lines(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        return "  (none)".to_owned();
    }
    set.iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
