//! The hostile-input corpus (`tests/hostile/`: tars, archives, layouts, Dockerfiles and
//! `.dockerignore` files made to break a builder, each case with its expected clean outcome in
//! `cases.json`) run against this build by `run.py --isolate --fast`: every case but the few marked
//! slow, each in a fresh store under `timeout 60`, with /etc on a throwaway overlay, checked for
//! the recorded exit code and message, no panic, no hang, no escape, nothing left in the working
//! directory or TMPDIR, and a bounded RSS. The full corpus is `python3 tests/hostile/run.py
//! --lighter BIN --isolate` (HARDENING.md).

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

#[test]
fn hostile_corpus_fails_cleanly() {
    if !is_root() {
        missing_peer("the hostile corpus needs root (--isolate mounts an overlay on /etc)");
        return;
    }
    let have = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    for tool in ["python3", "unshare", "timeout"] {
        if !have(tool) {
            missing_peer(&format!("{tool} is not installed"));
            return;
        }
    }
    if !Path::new("/usr/bin/time").is_file() {
        missing_peer("/usr/bin/time is not installed (Debian package time)");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    // Each case has its own 60 s timeout; the whole run is bounded too.
    let o = Command::new("timeout")
        .args(["-k", "10", "900", "python3"])
        .arg(dir.join("run.py"))
        .arg("--lighter")
        .arg(bin())
        .args(["--isolate", "--fast"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let failures: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        o.status.success() && failures.is_empty(),
        "exit {:?}; failed cases:\n{}\n{}",
        o.status.code(),
        failures.join("\n"),
        String::from_utf8_lossy(&o.stderr)
    );
    let ran = out.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(ran >= 200, "only {ran} cases ran:\n{out}");
}
