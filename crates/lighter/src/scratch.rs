//! Private temporary stores: `analyze`, `history` and `diff` of an archive file or layout load it
//! into a store of their own under `$TMPDIR`, which must not outlive the command however it ends.
//!
//! Each is `$TMPDIR/lighter-scratch-<random>`, holding a `scratch.lock` file that its process keeps
//! `flock`ed for as long as it lives. It is created under a dot name and renamed into place once
//! locked, so no one ever sees it unlocked while its owner lives. Dropping it removes it; SIGINT
//! and SIGTERM remove every live one before the process exits ([`remove_all`]); and one left by a
//! killed process (SIGKILL, a crash) has a free lock, so the next command that makes a scratch
//! store removes it. flock comes from nix, as the store's sessions use it.

use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const PREFIX: &str = "lighter-scratch-";
/// Not `lock`: the store opened in the directory takes that one.
const LOCK: &str = "scratch.lock";

/// Directories of this process's live scratch stores.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A scratch directory, locked while it lives and removed when dropped.
pub struct Scratch {
    path: PathBuf,
    _lock: Flock<File>,
}

impl Scratch {
    /// Sweeps the scratch directories of dead processes from `$TMPDIR`, then makes a new one.
    pub fn new() -> anyhow::Result<Scratch> {
        let tmp = std::env::temp_dir();
        sweep(&tmp);
        let hidden = tempfile::Builder::new()
            .prefix(&format!(".{PREFIX}"))
            .tempdir_in(&tmp)?
            .keep();
        let lock = File::create(hidden.join(LOCK))?;
        let lock = Flock::lock(lock, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| anyhow::anyhow!("lock {}: {e}", hidden.display()))?;
        let name = hidden.file_name().unwrap().to_string_lossy();
        let path = tmp.join(name.trim_start_matches('.'));
        std::fs::rename(&hidden, &path)?;
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.clone());
        Ok(Scratch { path, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| p != &self.path);
    }
}

/// Removes this process's scratch directories (the signal handler calls it before exiting).
pub fn remove_all() {
    // try_lock: the signal thread must not wait on a thread it is about to end.
    if let Ok(live) = LIVE.try_lock() {
        for p in live.iter() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// Removes the scratch directories in `tmp` whose lock no live process holds.
fn sweep(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let dir = e.path();
        let Ok(f) = File::open(dir.join(LOCK)) else {
            continue;
        };
        if let Ok(_held) = Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_dirs_are_removed_when_dropped_and_swept_when_orphaned() {
        let s = Scratch::new().unwrap();
        let p = s.path().to_path_buf();
        assert!(p.join(LOCK).is_file());
        assert!(p.file_name().unwrap().to_string_lossy().starts_with(PREFIX));
        // A live one survives a sweep.
        sweep(p.parent().unwrap());
        assert!(p.is_dir());
        drop(s);
        assert!(!p.exists());
        // One whose owner is gone (its lock free) is swept.
        let orphan = std::env::temp_dir().join(format!("{PREFIX}test-{}", std::process::id()));
        std::fs::create_dir_all(&orphan).unwrap();
        File::create(orphan.join(LOCK)).unwrap();
        let s = Scratch::new().unwrap();
        assert!(!orphan.exists());
        drop(s);
    }
}
