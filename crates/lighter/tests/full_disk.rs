//! Full disks: a store on a small loop-mounted ext4, and separately `$TMPDIR` on one. A command
//! that runs out of space fails with "no space left on device" naming the path, leaves nothing
//! half-written (`system check` is sound, no mount or session is left), and the store keeps
//! working once space is free again.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A loop-mounted ext4 of `mib` MiB; unmounted (and its loop device freed) when dropped.
struct LoopFs {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl LoopFs {
    fn new(mib: u64) -> LoopFs {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(mib << 20).unwrap();
        let run = |c: &mut Command| {
            let o = c.output().unwrap();
            assert!(
                o.status.success(),
                "{c:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(&img));
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt));
        LoopFs { _dir: dir, mnt }
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

fn no_space(stderr: &str, under: &Path) -> bool {
    eprintln!("full disk: {stderr}");
    stderr.to_lowercase().contains("no space left on device")
        && stderr.contains(under.to_str().unwrap())
}

/// `system check` is sound, and nothing of the failed command is left: no mount, no session.
fn assert_sound(env: &Env, what: &str) {
    let o = env.lighter(&["system", "check"]);
    assert!(
        o.status.success(),
        "{what}: system check: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = env.root.path().to_str().unwrap();
    assert!(
        !mounts.contains(root),
        "{what}: mounts left under the store"
    );
    let sessions: Vec<_> = std::fs::read_dir(env.root.path().join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("s-"))
        .map(|e| e.file_name())
        .collect();
    assert!(sessions.is_empty(), "{what}: sessions left: {sessions:?}");
}

#[test]
fn a_full_store_fails_cleanly_and_keeps_working() {
    if !is_root() {
        return;
    }
    let Some(bases) = bases() else { return };
    let fs = LoopFs::new(96);
    let env = Env {
        root: tempfile::tempdir_in(&fs.mnt).unwrap(),
    };
    let o = env.lighter(&[
        "import",
        bases.join("busybox.tar").to_str().unwrap(),
        "busybox:latest",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ctx = tempfile::tempdir().unwrap();
    random_file(&ctx.path().join("big"), 120 << 20, 1);
    // COPY's layer (tarred from the context into the store) runs past the end of the disk.
    write(
        ctx.path(),
        &[("Dockerfile", "FROM busybox\nCOPY big /big\n")],
    );
    let (ok, err, _) = env.build(ctx.path(), &["--no-cache"]);
    assert!(!ok && no_space(&err, env.root.path()), "COPY: {err}");
    assert_sound(&env, "COPY");
    // A RUN step's file fits, its layer does not (the commit runs out).
    write(
        ctx.path(),
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN head -c 50000000 /dev/urandom > /f\n",
            ),
            (".dockerignore", "big\n"),
        ],
    );
    let (ok, err, _) = env.build(ctx.path(), &["--no-cache"]);
    assert!(!ok && no_space(&err, env.root.path()), "RUN commit: {err}");
    assert_sound(&env, "RUN commit");
    // The space is free again: a build fits, its image runs, the old one still runs.
    write(
        ctx.path(),
        &[("Dockerfile", "FROM busybox\nRUN echo fits > /f\n")],
    );
    let (ok, err, _) = env.build(ctx.path(), &["-t", "fits:1"]);
    assert!(ok, "{err}");
    let o = env.lighter(&["run", "fits:1", "cat", "/f"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "fits\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = env.lighter(&["run", "busybox", "true"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_sound(&env, "after");
    drop(env);
}

#[test]
fn a_full_temp_space_does_not_stop_analyze() {
    if !is_root() {
        return;
    }
    let fs = LoopFs::new(32);
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    // analyze reads an archive in place: a full $TMPDIR does not matter.
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    random_file(&rootfs.join("big"), 48 << 20, 2);
    let layer = dir.path().join("layer.tar");
    let o = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg(".")
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = env.lighter(&["import", layer.to_str().unwrap(), "big:1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let archive = dir.path().join("big.tar");
    let o = env.lighter(&["save", "-o", archive.to_str().unwrap(), "big:1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Fill the temp space to the last block.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(fs.mnt.join("fill")).unwrap();
        let block = vec![7u8; 1 << 20];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&block[..4096]).is_ok() {}
    }
    let o = env
        .cmd()
        .env("TMPDIR", &fs.mnt)
        .args(["analyze", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let left: Vec<_> = std::fs::read_dir(&fs.mnt)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "lost+found" && n != "fill")
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}
