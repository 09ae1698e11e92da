//! `.dockerignore` matcher behaviour beyond the corpus: directory pruning, speed, robustness.

use std::time::Instant;

use lighter_dockerfile::dockerignore::{dockerignore_candidates, parse_dockerignore, Matcher};
use proptest::prelude::*;

fn matcher(text: &str) -> Matcher {
    Matcher::new(parse_dockerignore(text)).expect("valid patterns")
}

#[test]
fn can_skip_dir_without_exceptions() {
    let m = matcher("node_modules\n.git\n*.log\n");
    assert!(m.can_skip_dir("node_modules"));
    assert!(m.can_skip_dir("node_modules/"));
    assert!(m.can_skip_dir(".git"));
    assert!(!m.can_skip_dir("src"));
    assert!(!m.can_skip_dir("."));
    assert!(!m.can_skip_dir(""));
}

#[test]
fn can_skip_dir_respects_exceptions() {
    let m = matcher("node_modules\n!node_modules/keep/**\nbuild\n!src/build.rs\n");
    assert!(
        !m.can_skip_dir("node_modules"),
        "an exception re-includes files below it"
    );
    assert!(m.can_skip_dir("build"), "the exception is elsewhere");
    assert!(!m.can_skip_dir("node_modules/keep"));
    assert!(m.can_skip_dir("node_modules/other"));

    let anywhere = matcher("vendor\n!**/LICENSE\n");
    assert!(
        !anywhere.can_skip_dir("vendor"),
        "`**` exceptions can match anywhere"
    );

    let wild = matcher("dir\n!dir/e*\n");
    assert!(!wild.can_skip_dir("dir"));
    assert!(!wild.can_skip_dir("dir/e-dir"));
    assert!(wild.can_skip_dir("dir/x-dir"));

    // An exception naming a parent re-includes the whole directory: it is not even matched.
    let parent = matcher("a/b\n!a\n");
    assert!(!parent.matches("a/b/c"));
    assert!(!parent.can_skip_dir("a/b"));
}

#[test]
fn skipping_never_hides_a_kept_file() {
    let m = matcher("dir\n!dir/e*\n!dir/dir/foo\n**/*.cc\n!**/*.cc\nnode_modules\n");
    let files = [
        "dir/e",
        "dir/e-dir/foo",
        "dir/dir/foo",
        "dir/a.cc",
        "dir/x/y",
        "node_modules/a/b.js",
        "src/a.cc",
    ];
    for f in files {
        if m.matches(f) {
            continue;
        }
        let mut acc = String::new();
        for seg in f
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, p)| p.to_vec())
            .unwrap_or_default()
        {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(seg);
            assert!(!m.can_skip_dir(&acc), "{acc} would hide kept file {f}");
        }
    }
    assert!(m.can_skip_dir("node_modules"));
}

#[test]
fn matching_50k_paths_is_fast() {
    let m = matcher(
        "node_modules\n.git\n**/*.log\n!keep.log\ndist/**\n**/__pycache__\n*.tmp\ncoverage\n!coverage/summary.json\n",
    );
    let paths: Vec<String> = (0..50_000)
        .map(|i| {
            format!(
                "src/folder{:03}/sub{}/file{i}.{}",
                i % 200,
                i % 7,
                ["rs", "log", "ts", "tmp"][i % 4]
            )
        })
        .collect();
    let start = Instant::now();
    let excluded = paths.iter().filter(|p| m.matches(p)).count();
    let elapsed = start.elapsed();
    println!("matched 50,000 paths in {elapsed:?} ({excluded} excluded)");
    assert_eq!(excluded, 12_500, "every .log file is excluded");
    // The target is well under 50 ms in release; debug builds of this crate get headroom.
    let limit_ms = if cfg!(debug_assertions) { 1_000 } else { 50 };
    assert!(elapsed.as_millis() < limit_ms, "took {elapsed:?}");
}

#[test]
fn candidates_prefer_the_per_dockerfile_file() {
    let [first, second] = dockerignore_candidates(
        std::path::Path::new("/ctx/sub/Dockerfile2"),
        std::path::Path::new("/ctx"),
    );
    assert_eq!(
        first,
        std::path::Path::new("/ctx/sub/Dockerfile2.dockerignore")
    );
    assert_eq!(second, std::path::Path::new("/ctx/.dockerignore"));
}

#[test]
fn bare_exclusion_is_an_error() {
    let err = Matcher::new(parse_dockerignore("foo\n!\n")).expect_err("bare ! is rejected");
    assert_eq!(err.to_string(), "illegal exclusion pattern: \"!\"");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_patterns_and_paths_never_panic(
        text in "[-a-c*?!/\\\\\\[\\]^.#\n ]{0,40}",
        path in "[a-c*./\\\\]{0,20}",
    ) {
        let patterns = parse_dockerignore(&text);
        if let Ok(m) = Matcher::new(&patterns) {
            let matched = m.matches(&path);
            // A directory the walker may skip is itself excluded.
            if m.can_skip_dir(&path) {
                prop_assert!(matched);
            }
        }
    }

    #[test]
    fn skip_is_sound(
        dir in "[ab]{1,2}(/[ab]{1,2}){0,2}",
        child in "[ab]{1,2}(/[ab]{1,2}){0,2}",
        pats in proptest::collection::vec(
            r"!?(\*\*/)?([ab*]|\[\^a\]|\\b){1,2}(/([ab*]|\[\^a\]){1,2}){0,2}",
            1..5,
        ),
    ) {
        if let Ok(m) = Matcher::new(&pats) {
            if m.can_skip_dir(&dir) {
                let full = format!("{dir}/{child}");
                prop_assert!(m.matches(&full), "{full} is kept under skipped {dir} with {pats:?}");
            }
        }
    }
}
