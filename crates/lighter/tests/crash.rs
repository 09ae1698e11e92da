//! A `load` killed at random points never leaves a partial blob visible, never names a half-loaded
//! image, and the same load succeeds afterwards.

mod common;

use common::*;
use sha2::Digest;
use std::time::Duration;

#[test]
fn killed_loads_leave_the_store_consistent() {
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let work = tempfile::tempdir().unwrap();
    // A ~24 MB rootfs of incompressible files, imported and saved as a docker-archive.
    let rootfs = work.path().join("rootfs.tar");
    random_rootfs_tar(&rootfs, 12, 2 << 20, 0x1234_5678);
    assert!(env
        .lighter(&["import", rootfs.to_str().unwrap(), "big:1"])
        .status
        .success());
    let archive = work.path().join("big.tar");
    assert!(env
        .lighter(&["save", "-o", archive.to_str().unwrap(), "big:1"])
        .status
        .success());
    let victim = Env {
        root: tempfile::tempdir().unwrap(),
    };
    for (i, delay_ms) in [5u64, 40, 120, 250, 400, 700].iter().enumerate() {
        let mut child = victim
            .cmd()
            .args(["load", "-q", "-i", archive.to_str().unwrap()])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(*delay_ms));
        let _ = child.kill();
        let status = child.wait().unwrap();
        // Every visible blob is whole: its content hashes to its name. (Killed before it opened
        // the store, the process left no store at all.)
        let blobs = victim.root.path().join("blobs/sha256");
        for e in std::fs::read_dir(&blobs).into_iter().flatten() {
            let p = e.unwrap().path();
            let got = hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap()));
            assert_eq!(
                got,
                p.file_name().unwrap().to_string_lossy(),
                "attempt {i}: partial blob visible"
            );
        }
        // The store still answers; the image is either absent or complete.
        let o = victim.lighter(&["images", "--format", "json"]);
        assert!(
            o.status.success(),
            "attempt {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        if !o.stdout.is_empty() {
            let h = victim.lighter(&["history", "big:1"]);
            assert!(
                h.status.success(),
                "attempt {i} (exit {status:?}): a named image must be complete"
            );
        }
    }
    // After the kills, the same load succeeds and the image is intact.
    let o = victim.lighter(&["load", "-i", archive.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = victim.lighter(&["inspect", "-f", "{{.Id}}", "big:1"]);
    let b = env.lighter(&["inspect", "-f", "{{.Id}}", "big:1"]);
    assert_eq!(a.stdout, b.stdout);
    let o = victim.lighter(&["analyze", "big:1", "--json", "-"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["layers"][0]["added"], 12);
}
