//! BuildKit's parser corpus (`$LIGHTER_CONFORMANCE/dockerfile-parser`): AST dumps byte for byte,
//! negative cases, line numbers and heredoc facts.

mod common;

use lighter_dockerfile::raw::parse_raw;
use std::path::PathBuf;

fn corpus() -> Option<PathBuf> {
    common::corpus("dockerfile-parser")
}

#[test]
fn dumps_match_buildkit() {
    let Some(dir) = corpus() else { return };
    let mut passed = 0;
    let mut failed = Vec::new();
    let mut cases: Vec<_> = std::fs::read_dir(dir.join("testfiles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    for case in &cases {
        let src = std::fs::read_to_string(case.join("Dockerfile")).unwrap();
        let want = std::fs::read_to_string(case.join("result")).unwrap();
        match parse_raw(&src) {
            Ok(d) if d.dump() == want => passed += 1,
            Ok(d) => failed.push(format!(
                "{}:\n--- want\n{want}--- got\n{}",
                case.display(),
                d.dump()
            )),
            Err(e) => failed.push(format!("{}: error {e}", case.display())),
        }
    }
    println!("parser dumps: {passed} passed, {} failed", failed.len());
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert_eq!(passed, 33, "expected the 33 upstream cases");
}

#[test]
fn negative_cases_fail() {
    let Some(dir) = corpus() else { return };
    let mut n = 0;
    for e in std::fs::read_dir(dir.join("testfiles-negative")).unwrap() {
        let p = e.unwrap().path();
        let src = std::fs::read_to_string(p.join("Dockerfile")).unwrap();
        let r = lighter_dockerfile::raw::parse_raw(&src);
        // Empty files and comment-only files parse to no nodes at this level; the typed level
        // rejects them ("file with no instructions").
        let rejected = match &r {
            Err(_) => true,
            Ok(d) => d.nodes.is_empty(),
        };
        assert!(rejected, "{} should be rejected, got {r:?}", p.display());
        n += 1;
    }
    println!("parser negative: {n} passed, 0 failed");
    assert_eq!(n, 4);
}

#[test]
fn line_numbers() {
    let Some(dir) = corpus() else { return };
    let src = std::fs::read_to_string(dir.join("testfile-line/Dockerfile")).unwrap();
    let d = parse_raw(&src).unwrap();
    assert_eq!(d.line_range(), Some((5, 31)));
    let spans: Vec<_> = d.nodes.iter().map(|n| (n.start_line, n.end_line)).collect();
    assert_eq!(spans, vec![(5, 5), (11, 12), (17, 31)]);
}

#[test]
fn empty_continuation_warnings() {
    let Some(dir) = corpus() else { return };
    let src = std::fs::read_to_string(dir.join("derived/empty-continuation-warnings.Dockerfile"))
        .unwrap();
    let d = parse_raw(&src).unwrap();
    assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
    assert!(d.warnings[0]
        .short
        .contains("Empty continuation line found in"));
    assert!(d.warnings[0]
        .short
        .contains("RUN something     following     more"));
    assert!(d.warnings[1].short.contains("RUN another     thing"));
}

#[test]
fn long_line_is_an_error() {
    let src = format!("LABEL test={}\n", "a".repeat(65536));
    let e = parse_raw(&src).unwrap_err();
    assert_eq!(
        e.message,
        "dockerfile line greater than max allowed size of 65535"
    );
}

#[test]
fn heredoc_facts() {
    let Some(dir) = corpus() else { return };
    let h = dir.join("derived/heredoc");
    let src = std::fs::read_to_string(h.join("extracts-heredoc.Dockerfile")).unwrap();
    let facts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(h.join("expected-heredocs.json")).unwrap())
            .unwrap();
    let d = parse_raw(&src).unwrap();
    let children = facts["extract"]["children"].as_array().expect("children");
    let mut passed = 0;
    for c in children {
        let i = c["child"].as_u64().unwrap() as usize;
        let got = &d.nodes[i].heredocs;
        match c["heredocs"].as_array() {
            None => assert!(got.is_empty(), "node {i}: {got:?}"),
            Some(want) => {
                assert_eq!(got.len(), want.len(), "node {i}");
                for (g, w) in got.iter().zip(want) {
                    assert_eq!(g.name, w["name"].as_str().unwrap(), "node {i}");
                    assert_eq!(g.content, w["content"].as_str().unwrap(), "node {i}");
                    assert_eq!(g.expand, w["expand"].as_bool().unwrap(), "node {i}");
                    assert_eq!(g.chomp, w["chomp"].as_bool().unwrap(), "node {i}");
                    assert_eq!(g.fd as u64, w["fd"].as_u64().unwrap_or(0), "node {i}");
                }
            }
        }
        passed += 1;
    }
    println!("heredoc extract: {passed} passed, 0 failed");
}

#[test]
fn heredoc_helpers() {
    let Some(dir) = corpus() else { return };
    let facts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("derived/heredoc/expected-heredocs.json")).unwrap(),
    )
    .unwrap();
    let mut n = 0;
    for c in facts["parse_heredoc_word"]["cases"].as_array().unwrap() {
        let word = c["word"].as_str().unwrap();
        let got = match lighter_dockerfile::raw::parse_heredoc(word) {
            Ok(Some(h)) => h.name,
            Ok(None) => "none".to_string(),
            Err(_) => "error".to_string(),
        };
        assert_eq!(got, c["result"].as_str().unwrap(), "word {word:?}");
        n += 1;
    }
    for c in facts["heredocs_from_line"]["cases"].as_array().unwrap() {
        let line = c["line"].as_str().unwrap();
        let docs = lighter_dockerfile::raw::heredocs_from_line(line).unwrap();
        let names: Vec<_> = docs.iter().map(|h| h.name.clone()).collect();
        let want: Vec<String> = c["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, want, "line {line:?}");
        n += 1;
    }
    for c in facts["chomp"]["cases"].as_array().unwrap() {
        let h = lighter_dockerfile::raw::Heredoc {
            name: "EOF".into(),
            content: c["input"].as_str().unwrap().into(),
            expand: true,
            chomp: true,
            fd: 0,
        };
        assert_eq!(h.body(), c["output"].as_str().unwrap());
        n += 1;
    }
    let src = std::fs::read_to_string(dir.join("derived/heredoc/json-form-no-heredoc.Dockerfile"))
        .unwrap();
    let d = parse_raw(&src).unwrap();
    assert!(d.nodes.iter().all(|n| n.heredocs.is_empty()));
    println!("heredoc helpers: {n} passed, 0 failed");
}

/// The typed level rejects what BuildKit rejects before building: unknown flags (`flags`, `health`),
/// missing arguments, no FROM (`json`, `jeztah-*` have CMD-only files or bad flags). Everything else in
/// the corpus is a valid Dockerfile.
#[test]
fn typed_level_accepts_and_rejects_like_buildkit() {
    let Some(dir) = corpus() else { return };
    let mut cases: Vec<_> = std::fs::read_dir(dir.join("testfiles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    let mut rejected = Vec::new();
    let mut accepted = 0;
    for case in &cases {
        let src = std::fs::read_to_string(case.join("Dockerfile")).unwrap();
        match lighter_dockerfile::parse(&src) {
            Ok(_) => accepted += 1,
            Err(e) => rejected.push(format!(
                "{} ({})",
                case.file_name().unwrap().to_string_lossy(),
                e.message
            )),
        }
    }
    println!(
        "typed level: {accepted} accepted, {} rejected:\n  {}",
        rejected.len(),
        rejected.join("\n  ")
    );
    let names: Vec<String> = rejected
        .iter()
        .map(|r| r.split(' ').next().unwrap().to_string())
        .collect();
    for must in ["flags", "health", "json"] {
        assert!(
            names.contains(&must.to_string()),
            "{must} must be rejected: {names:?}"
        );
    }
    for n in &names {
        assert!(
            n == "flags" || n == "health" || n == "json" || n.starts_with("jeztah-"),
            "{n} should be accepted by the typed level"
        );
    }
    for e in std::fs::read_dir(dir.join("testfiles-negative")).unwrap() {
        let p = e.unwrap().path();
        let src = std::fs::read_to_string(p.join("Dockerfile")).unwrap();
        assert!(
            lighter_dockerfile::parse(&src).is_err(),
            "{} must fail",
            p.display()
        );
    }
}
