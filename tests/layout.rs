//! The code's layout rules, checked on every `make test`:
//!
//! - the module map in `src/lib.rs` is true: a module uses only modules listed below it (in
//!   non-test code);
//! - protocol state machines stay free of the HTTP framework: nothing under `src/ingest/` uses
//!   `axum` or `crate::api`;
//! - no source file (under `src/` or `tests/`) is over 800 lines unless it says why at its top,
//!   in a line starting `//! Size:`.

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 800;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read dir").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The modules of the map in `src/lib.rs`, top first.
fn module_order(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|l| l.strip_prefix("//! - [`"))
        .filter_map(|l| l.split_once("`]").map(|(m, _)| m.to_owned()))
        .collect()
}

/// Non-test code without comments: everything before the first `#[cfg(test)]`, minus `//` lines.
fn code_of(text: &str) -> String {
    let body = text.find("#[cfg(test)]").map_or(text, |i| &text[..i]);
    body.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every `X` in `crate::X` and `crate::{X, Y::…}`.
fn crate_uses(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(is_ident) {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item.trim().chars().take_while(|c| is_ident(*c)).collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            out.push(rest.chars().take_while(|c| is_ident(*c)).collect());
        }
    }
    out
}

#[test]
fn the_module_map_is_true() {
    let lib = std::fs::read_to_string("src/lib.rs").expect("src/lib.rs");
    let order = module_order(&lib);
    assert!(order.len() > 10, "no module map found in src/lib.rs");
    let rank = |m: &str| order.iter().position(|o| o == m);
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    let mut violations = Vec::new();
    for path in &files {
        let rel = path.strip_prefix("src").expect("under src");
        let top = rel.iter().next().and_then(|c| c.to_str()).unwrap_or("");
        let top = top.strip_suffix(".rs").unwrap_or(top);
        let Some(own) = rank(top) else { continue };
        let code = code_of(&std::fs::read_to_string(path).expect("read"));
        let mut used = crate_uses(&code);
        used.sort();
        used.dedup();
        for u in used {
            if u != top && rank(&u).is_some_and(|r| r < own) {
                violations.push(format!("{}: uses crate::{u}, listed above {top}", path.display()));
            }
        }
        if top == "ingest" && (code.contains("axum::") || code.contains("use axum")) {
            violations.push(format!("{}: HTTP framework code in ingest", path.display()));
        }
    }
    assert!(violations.is_empty(), "module map violations:\n{}", violations.join("\n"));
}

#[test]
fn files_stay_small_or_say_why() {
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    rust_files(Path::new("tests"), &mut files);
    let mut long = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read");
        let lines = text.lines().count();
        let says_why = text.lines().take(40).any(|l| l.trim_start().starts_with("//! Size:"));
        if lines > MAX_LINES && !says_why {
            long.push(format!("{}: {lines} lines", path.display()));
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines with no `//! Size:` reason:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_check() {
    let uses =
        crate_uses("use crate::{video::X, log};\nlet a = crate::api::f(); my_crate::app::g();");
    assert_eq!(uses, ["video", "log", "api"]);
    assert_eq!(module_order("//! - [`app`]: wiring\n//! - [`api`]: http\n"), ["app", "api"]);
    assert_eq!(code_of("a\n// crate::x\nb\n#[cfg(test)]\nc"), "a\nb");
}
