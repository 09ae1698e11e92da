//! Shared by the conformance tests: where the peers' data lives, and the pass/fail report.
#![allow(dead_code)]

use std::path::PathBuf;

/// `$LIGHTER_CONFORMANCE/<topic>` (default `../shared/conformance` beside the repository), or None with
/// a printed reason when it is absent.
pub fn corpus(topic: &str) -> Option<PathBuf> {
    let root = std::env::var_os("LIGHTER_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    let dir = root.join(topic);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: conformance corpus not found at {} (set LIGHTER_CONFORMANCE)",
            dir.display()
        );
        None
    }
}
