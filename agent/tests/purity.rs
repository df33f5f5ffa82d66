//! The decision core (`agent/src/ha/`) stays pure (STYLE.md §2): it may use only the standard
//! library's data types, `serde` (derives), its own modules, and `proptest` in its tests. This
//! is an allow-list: any other crate, any module of the agent outside `ha`, and any clock,
//! file, process, network or logging call is refused, with the file and line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// Paths into the standard library `ha/` may name (data types and formatting only).
const ALLOWED_STD: &[&str] = &[
    "collections",
    "fmt",
    "cmp",
    "ops",
    "iter",
    "mem",
    "num",
    "str",
    "string",
    "vec",
    "borrow",
    "convert",
    "option",
    "result",
    "slice",
];

/// Crates `ha/` may use: serde's derives, and proptest in its tests.
const ALLOWED_CRATES: &[&str] = &["serde", "proptest"];

/// Calls that reach outside the process state, whatever the import.
const FORBIDDEN: &[&str] = &[
    "Instant::now",
    "SystemTime::now",
    "std::fs",
    "std::net",
    "std::process",
    "std::thread",
    "std::time::Instant",
    "std::time::SystemTime",
    "std::env",
    "std::io",
    "println!",
    "eprintln!",
    "dbg!",
    "unsafe ",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read ha/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `a::b::...` path written on `line` (outside a comment).
fn paths(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let chars: Vec<char> = code.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if ident(chars[i]) && (i == 0 || !ident(chars[i - 1])) {
            let mut j = i;
            while j < chars.len() && ident(chars[j]) {
                j += 1;
            }
            let word: String = chars[i..j].iter().collect();
            if word.contains("::") && !word.starts_with(':') {
                out.push(word);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// The agent's dependencies, as Rust names (`etcd-client` -> `etcd_client`).
fn dependencies() -> Vec<String> {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .expect("read Cargo.toml");
    let mut deps = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_deps = t.contains("dependencies");
            continue;
        }
        if in_deps && let Some((name, _)) = t.split_once('=') {
            let name = name
                .trim()
                .split('.')
                .next()
                .unwrap_or("")
                .replace('-', "_");
            if !name.is_empty() && !name.starts_with('#') {
                deps.push(name);
            }
        }
    }
    deps
}

/// Why `path` may not appear in `ha/`, if it may not.
fn refused(path: &str, deps: &[String]) -> Option<&'static str> {
    let mut seg = path.split("::");
    let head = seg.next().unwrap_or("");
    let next = seg.next().unwrap_or("");
    match head {
        "crate" if next != "ha" => Some("the shell (only crate::ha is allowed)"),
        "std" | "core" | "alloc" if !ALLOWED_STD.contains(&next) => {
            Some("a part of the standard library that does I/O, reads clocks or threads")
        }
        h if deps.iter().any(|d| d == h) && !ALLOWED_CRATES.contains(&h) => {
            Some("a crate outside the allow-list")
        }
        _ => None,
    }
}

#[test]
fn the_decision_core_uses_only_what_the_allow_list_permits() {
    let ha = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ha");
    let mut files = Vec::new();
    rust_files(&ha, &mut files);
    assert!(files.len() > 10, "found the core's files: {files:?}");
    let deps = dependencies();
    assert!(
        deps.iter().any(|d| d == "tokio"),
        "read the dependencies: {deps:?}"
    );
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for word in FORBIDDEN {
                if line.contains(word) {
                    bad.push(format!("{}:{}: {word}: {line}", f.display(), n + 1));
                }
            }
            for path in paths(line) {
                if let Some(why) = refused(&path, &deps) {
                    bad.push(format!("{}:{}: {path} is {why}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "agent/src/ha must not do I/O, read clocks, log or depend on the shell:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_allow_list_check_catches_what_it_is_for() {
    let deps = dependencies();
    let flagged = |line: &str| {
        paths(line).iter().any(|p| refused(p, &deps).is_some())
            || FORBIDDEN.iter().any(|w| line.contains(w))
    };
    assert!(flagged("use tokio::time::sleep;"));
    assert!(flagged("use crate::runtime::Runtime;"));
    assert!(flagged("    tracing::info!(\"x\");"));
    assert!(flagged("let t = std::time::Instant::now();"));
    assert!(flagged("let f = std::fs::read(p);"));
    assert!(flagged("use etcd_client::Client;"));
    assert!(!flagged("use std::collections::BTreeMap;"));
    assert!(!flagged("use crate::ha::Millis;"));
    assert!(!flagged("    let at = timing::demote_at(until, cfg);"));
    assert!(!flagged("impl fmt::Display for Lsn {"));
}
