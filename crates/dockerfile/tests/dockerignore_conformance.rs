//! `.dockerignore` conformance: patternmatcher cases, ReadAll, whole-build context facts, fsutil walks.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use lighter_dockerfile::dockerignore::{filter_paths, parse_dockerignore, Matcher, Pattern};
use serde_json::Value;

fn corpus() -> Option<PathBuf> {
    common::corpus("dockerignore")
}

fn report(name: &str, passed: usize, failures: &[String]) {
    println!("{name}: {passed} passed, {} failed", failures.len());
    for f in failures {
        println!("  FAIL {f}");
    }
    assert!(failures.is_empty(), "{name}: {} failures", failures.len());
}

/// Go `filepath.Clean` for the simple relative paths of the `Matches` rows.
fn go_clean(path: &str) -> String {
    let segs: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if segs.is_empty() {
        ".".to_string()
    } else {
        segs.join("/")
    }
}

#[test]
fn patternmatcher_cases() {
    let Some(dir) = corpus() else { return };
    let text = std::fs::read_to_string(dir.join("patternmatcher-cases.tsv")).expect("read tsv");
    let (mut passed, mut failures) = (0, Vec::new());
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (function, path, expected) = (cols[0], cols[1], cols[2]);
        let patterns: Vec<&str> = cols[4..]
            .iter()
            .copied()
            .filter(|p| !p.is_empty())
            .collect();
        let got = match Matcher::new(&patterns) {
            Err(_) => "error".to_string(),
            Ok(m) => match function {
                "MatchesOrParentMatches" => m.matches(path).to_string(),
                "Matches" => {
                    let cleaned = go_clean(path);
                    (cleaned != "." && m.matches(&cleaned)).to_string()
                }
                other => panic!("unknown function {other}"),
            },
        };
        if got == expected {
            passed += 1;
        } else {
            failures.push(format!(
                "{function} {path:?} {patterns:?}: expected {expected}, got {got}"
            ));
        }
    }
    assert_eq!(passed + failures.len(), 138, "row count");
    report("patternmatcher-cases", passed, &failures);
}

fn load_context(dir: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(dir.join("context-cases.json")).expect("read json");
    serde_json::from_str(&text).expect("parse json")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn readall_cases() {
    let Some(dir) = corpus() else { return };
    let doc = load_context(&dir);
    let (mut passed, mut failures) = (0, Vec::new());
    for case in doc["readall"].as_array().expect("readall") {
        let input = case["input"].as_str().unwrap_or("");
        let got: Vec<String> = parse_dockerignore(input)
            .iter()
            .map(|p| p.to_string())
            .collect();
        let want = strings(&case["patterns"]);
        if got == want {
            passed += 1;
        } else {
            failures.push(format!("{input:?}: expected {want:?}, got {got:?}"));
        }
    }
    report("readall", passed, &failures);
}

/// What `COPY . /dest` sees: the kept files plus every parent directory of a kept file.
fn visible(kept: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in kept {
        let mut acc = String::new();
        for seg in f.split('/') {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(seg);
            out.insert(acc.clone());
        }
    }
    out
}

#[test]
fn context_cases() {
    let Some(dir) = corpus() else { return };
    let doc = load_context(&dir);
    let (mut passed, mut failures) = (0, Vec::new());
    for case in doc["context"].as_array().expect("context") {
        let test = case["source"]["test"].as_str().unwrap_or("?");
        let files = strings(&case["files"]);
        let patterns: Vec<Pattern> =
            parse_dockerignore(case["dockerignore"].as_str().unwrap_or(""));
        // With `-f -` the Dockerfile comes from stdin: an on-disk one is only a context file.
        // The context holds the files and their directories (which may end up empty).
        let entries = visible(&files.iter().map(String::as_str).collect::<Vec<_>>());
        let paths: Vec<&str> = entries.iter().map(String::as_str).collect();
        let kept = match filter_paths(&patterns, &paths) {
            Err(e) => {
                if case.get("error").is_some() {
                    passed += 1;
                } else {
                    failures.push(format!("{test}: unexpected error {e}"));
                }
                continue;
            }
            Ok(k) => k,
        };
        if case.get("error").is_some() {
            failures.push(format!("{test}: expected an error, kept {kept:?}"));
            continue;
        }
        let seen = visible(&kept);
        let mut ok = true;
        for p in strings(&case["present"]) {
            ok &= seen.contains(&p);
        }
        for p in strings(&case["absent"]) {
            ok &= !seen.contains(&p);
        }
        if case.get("listing").is_some() {
            let top: BTreeSet<String> = seen.iter().filter(|p| !p.contains('/')).cloned().collect();
            ok &= top
                == strings(&case["listing"])
                    .into_iter()
                    .collect::<BTreeSet<_>>();
        }
        if ok {
            passed += 1;
        } else {
            failures.push(format!("{test}: kept {kept:?}, case {case}"));
        }
    }
    report("context-cases", passed, &failures);
}

#[test]
fn fsutil_walk_cases() {
    let Some(dir) = corpus() else { return };
    let doc = load_context(&dir);
    let (mut passed, mut failures) = (0, Vec::new());
    for case in doc["fsutil_walk"].as_array().expect("fsutil_walk") {
        let test = case["source"]["test"].as_str().unwrap_or("?");
        let patterns = strings(&case["exclude_patterns"]);
        let matcher = match Matcher::new(&patterns) {
            Err(e) => {
                if case["error"].as_bool() == Some(true) {
                    passed += 1;
                } else {
                    failures.push(format!("{test}: unexpected error {e}"));
                }
                continue;
            }
            Ok(m) => m,
        };
        let tree: Vec<(String, String)> = strings(&case["tree"])
            .iter()
            .filter_map(|e| {
                e.split_once(' ')
                    .map(|(k, p)| (k.to_string(), p.to_string()))
            })
            .collect();
        let walk = walk(&matcher, &tree);
        let mut ok = case.get("walk").is_none_or(|w| walk == strings(w));
        let kept: BTreeSet<&str> = walk
            .iter()
            .filter_map(|e| e.strip_prefix("file "))
            .collect();
        for p in strings(&case["open_ok"]) {
            ok &= kept.contains(p.as_str());
        }
        for p in strings(&case["open_not_exist"]) {
            ok &= !kept.contains(p.as_str());
        }
        if ok {
            passed += 1;
        } else {
            failures.push(format!("{test}: walk {walk:?}, case {case}"));
        }
    }
    report("fsutil-walk", passed, &failures);
}

/// A walker over a sorted in-memory tree like fsutil's: excluded directories are entered unless
/// `can_skip_dir`, and an excluded directory is emitted only before a kept descendant.
fn walk(matcher: &Matcher, tree: &[(String, String)]) -> Vec<String> {
    let mut entries: Vec<&(String, String)> = tree.iter().collect();
    entries.sort_by(|a, b| a.1.split('/').cmp(b.1.split('/')));
    let mut out: Vec<String> = Vec::new();
    let mut skipped: Vec<&str> = Vec::new();
    for (kind, path) in entries {
        if skipped.iter().any(|d| path.starts_with(&format!("{d}/"))) {
            continue;
        }
        if kind == "dir" && matcher.can_skip_dir(path) {
            skipped.push(path);
            continue;
        }
        if matcher.matches(path) {
            continue;
        }
        // Emit excluded parents that were not emitted yet.
        let mut acc = String::new();
        for seg in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, p)| p)
            .unwrap_or(&[])
        {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(seg);
            let entry = format!("dir {acc}");
            if !out.contains(&entry) {
                out.push(entry);
            }
        }
        out.push(format!("{kind} {path}"));
    }
    out
}
