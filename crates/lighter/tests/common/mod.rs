//! Shared helpers for the CLI tests: a temp store, the binary, base-image tarballs, a docker peer.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Env {
    pub root: tempfile::TempDir,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lighter")
}

/// The directory holding `busybox.tar` and `bookworm.tar` (`scripts/make-bases.sh`), or None with the
/// reason printed.
pub fn bases() -> Option<PathBuf> {
    let dir = std::env::var_os("LIGHTER_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/lighter-test"));
    if dir.join("busybox.tar").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: no base images at {} (run scripts/make-bases.sh)",
            dir.display()
        );
        None
    }
}

pub fn is_root() -> bool {
    let ok = std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0"))
            .unwrap_or(false);
    if !ok {
        eprintln!("SKIP: needs root (namespaces, overlay mounts)");
    }
    ok
}

/// A fresh store with busybox:latest imported, or None (reason printed).
pub fn with_busybox() -> Option<Env> {
    if !is_root() {
        return None;
    }
    let bases = bases()?;
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let o = env.lighter(&[
        "import",
        bases.join("busybox.tar").to_str().unwrap(),
        "busybox:latest",
    ]);
    assert!(
        o.status.success(),
        "import: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(env)
}

impl Env {
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("LIGHTER_ROOT", self.root.path());
        c
    }

    pub fn lighter(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run lighter")
    }

    /// Builds `dir` and returns (success, stderr).
    pub fn build(&self, dir: &Path, extra: &[&str]) -> (bool, String, String) {
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(extra);
        let d = dir.to_str().unwrap().to_string();
        args.push(&d);
        let o = self.lighter(&args);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    }
}

impl Env {
    /// Builds `dir` with `-o type=local` into a fresh directory: (success, stderr, that directory).
    pub fn build_local(&self, dir: &Path, extra: &[&str]) -> (bool, String, tempfile::TempDir) {
        let out = tempfile::tempdir().unwrap();
        let dest = format!("type=local,dest={}", out.path().display());
        let mut args = extra.to_vec();
        args.extend(["-o", dest.as_str()]);
        let (ok, err, _) = self.build(dir, &args);
        (ok, err, out)
    }
}

pub fn write(dir: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
}

/// `/usr/bin/docker` when a daemon answers, else None with the reason printed.
pub fn docker() -> Option<&'static str> {
    let d = "/usr/bin/docker";
    match Command::new(d).arg("info").output() {
        Ok(o) if o.status.success() => Some(d),
        _ => {
            eprintln!("SKIP: no Docker engine answers at {d} (scripts/setup-peers.sh starts one)");
            None
        }
    }
}

/// A flattened file tree: path -> (type, mode, uid, gid, content sha256 or link target).
pub fn tree(root: &Path) -> std::collections::BTreeMap<String, String> {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    fn walk(root: &Path, rel: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for e in rd.flatten() {
            let r = rel.join(e.file_name());
            let p = root.join(&r);
            let md = std::fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let what = if ft.is_symlink() {
                format!("link:{}", std::fs::read_link(&p).unwrap().display())
            } else if ft.is_dir() {
                "dir".to_string()
            } else if !ft.is_file() {
                // FIFOs and devices: reading a FIFO would block.
                use std::os::unix::fs::FileTypeExt;
                format!(
                    "{}:{}",
                    if ft.is_fifo() {
                        "fifo"
                    } else if ft.is_char_device() {
                        "char"
                    } else if ft.is_block_device() {
                        "block"
                    } else {
                        "socket"
                    },
                    md.rdev()
                )
            } else {
                format!(
                    "file:{}",
                    hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap_or_default()))
                )
            };
            let mode = if ft.is_symlink() {
                0
            } else {
                md.mode() & 0o7777
            };
            out.insert(
                r.display().to_string(),
                format!("{what} {mode:o} {}:{}", md.uid(), md.gid()),
            );
            if ft.is_dir() {
                walk(root, &r, out);
            }
        }
    }
    walk(root, Path::new(""), &mut out);
    out
}
