//! Who is using a store, so that nothing a live process uses is collected and nothing a dead one left
//! behind stays.
//!
//! - **Sessions.** Each process that opens a store owns one directory `tmp/s-<pid>-<random>` for
//!   its temporary files, ingests and snapshot mounts, and holds an exclusive `flock` on it for as
//!   long as it lives. The kernel drops the lock when the process dies, however it dies (SIGKILL,
//!   a crash, power loss), so every open sweeps the sessions whose lock it can take: their mounts are
//!   unmounted (deepest first) and their directories removed. A session is created under a dot
//!   name and renamed into place once locked, so a sweep never sees an unlocked live session.
//! - **The store lock.** `<root>/lock` is held shared by every process using the store, and taken
//!   exclusive by garbage collection and repair, which therefore never run beside a build that is
//!   about to reference a blob. `<root>/gate` gives a waiting collector precedence: a new process
//!   passes the gate (shared, at once released) before it takes the store lock, and a collector
//!   holds the gate while it waits, so a stream of builds cannot starve it. A lock whose holder died
//!   is free at once; a wait for a live holder is bounded and its error names the holders' pids.
//!
//! Within one process every open of the same root shares one session and one store lock (a second
//! `Store::open` in a process must not wait for the process itself).
//!
//! flock is used directly (via libc) rather than through a crate: it is two calls, and the sweep
//! needs the non-blocking try on a directory descriptor, which the lock-file crates do not offer.

use crate::{io_err, Result, StoreError};
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long an exclusive lock waits for the store's other users before it gives up.
pub const EXCLUSIVE_WAIT: Duration = Duration::from_secs(600);

/// One process's hold on a store: its session directory and its shared store lock.
#[derive(Debug)]
pub struct Session {
    dir: PathBuf,
    _dir_lock: File,
    lock: File,
    lock_path: PathBuf,
    gate_path: PathBuf,
    exclusive: Mutex<usize>,
}

/// This process's sessions, by store root.
fn sessions() -> &'static Mutex<HashMap<PathBuf, Weak<Session>>> {
    static S: std::sync::OnceLock<Mutex<HashMap<PathBuf, Weak<Session>>>> =
        std::sync::OnceLock::new();
    S.get_or_init(Default::default)
}

fn try_flock(f: &File, op: libc::c_int) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock on a descriptor `f` owns.
        if unsafe { libc::flock(f.as_raw_fd(), op | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

/// Takes `op` on `f`, waiting at most `limit`; `Ok(false)` when the time ran out.
fn flock_within(f: &File, op: libc::c_int, limit: Duration) -> std::io::Result<bool> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        if try_flock(f, op)? {
            return Ok(true);
        }
        if start.elapsed() >= limit {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("open", path))
}

impl Session {
    /// This process's session in the store at `root` (made, and the dead sessions swept, on the
    /// first open).
    pub(crate) fn open(root: &Path) -> Result<Arc<Session>> {
        let key = root.to_path_buf();
        let mut all = sessions().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = all.get(&key).and_then(Weak::upgrade) {
            return Ok(s);
        }
        let s = Arc::new(Session::create(root)?);
        all.insert(key, Arc::downgrade(&s));
        drop(all);
        sweep(&root.join("tmp"), &s.dir);
        Ok(s)
    }

    fn create(root: &Path) -> Result<Session> {
        let lock_path = root.join("lock");
        let gate_path = root.join("gate");
        let gate = open_lock_file(&gate_path)?;
        let lock = open_lock_file(&lock_path)?;
        // Pass the gate (a collector waiting for the store holds it), then hold the store shared.
        let busy = |path: &Path| StoreError::Busy {
            path: path.to_path_buf(),
            holders: holders(path),
        };
        if !flock_within(
            &gate,
            libc::LOCK_SH,
            EXCLUSIVE_WAIT + Duration::from_secs(60),
        )
        .map_err(io_err("lock", &gate_path))?
        {
            return Err(busy(&gate_path));
        }
        if !flock_within(
            &lock,
            libc::LOCK_SH,
            EXCLUSIVE_WAIT + Duration::from_secs(60),
        )
        .map_err(io_err("lock", &lock_path))?
        {
            return Err(busy(&lock_path));
        }
        drop(gate);
        let tmp = root.join("tmp");
        let name = format!("s-{}-{:08x}", std::process::id(), rand_u32());
        let staging = tmp.join(format!(".{name}"));
        std::fs::create_dir(&staging).map_err(io_err("create", &staging))?;
        let dir_lock = File::open(&staging).map_err(io_err("open", &staging))?;
        if !try_flock(&dir_lock, libc::LOCK_EX).map_err(io_err("lock", &staging))? {
            return Err(StoreError::Invalid(format!(
                "{}: a new session directory is locked by another process",
                staging.display()
            )));
        }
        let dir = tmp.join(&name);
        std::fs::rename(&staging, &dir).map_err(io_err("rename into", &dir))?;
        for sub in ["ingest", "work"] {
            let p = dir.join(sub);
            std::fs::create_dir(&p).map_err(io_err("create", &p))?;
        }
        Ok(Session {
            dir,
            _dir_lock: dir_lock,
            lock,
            lock_path,
            gate_path,
            exclusive: Mutex::new(0),
        })
    }

    /// Where this process's ingests are written.
    pub fn ingest_dir(&self) -> PathBuf {
        self.dir.join("ingest")
    }

    /// Where this process's temporary directories are made.
    pub fn work_dir(&self) -> PathBuf {
        self.dir.join("work")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the store exclusively (for garbage collection and repair): waits, at most `limit`,
    /// until every other process using the store has finished. `notify` is called once if the
    /// wait lasts, with the pids of the holders.
    pub fn exclusive(
        self: &Arc<Self>,
        limit: Duration,
        notify: &mut dyn FnMut(&[u32]),
    ) -> Result<Exclusive> {
        let mut depth = self.exclusive.lock().unwrap_or_else(|e| e.into_inner());
        if *depth > 0 {
            *depth += 1;
            return Ok(Exclusive {
                session: self.clone(),
                gate: None,
            });
        }
        let gate = open_lock_file(&self.gate_path)?;
        let start = Instant::now();
        let wait = |f: &File, path: &Path, notified: &mut bool, notify: &mut dyn FnMut(&[u32])| loop {
            if try_flock(f, libc::LOCK_EX).map_err(io_err("lock", path))? {
                return Ok(());
            }
            if !*notified && start.elapsed() > Duration::from_millis(300) {
                *notified = true;
                notify(&holders(&self.lock_path));
            }
            if start.elapsed() >= limit {
                return Err(StoreError::Busy {
                    path: self.lock_path.clone(),
                    holders: holders(&self.lock_path),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut notified = false;
        wait(&gate, &self.gate_path, &mut notified, notify)?;
        // Converting our shared lock to exclusive: we never drop it in between for long, since
        // flock's conversion releases and retakes it; the gate keeps newcomers out meanwhile.
        if let Err(e) = wait(&self.lock, &self.lock_path, &mut notified, notify) {
            // A conversion that could not complete dropped our shared hold: take it back.
            let _ = flock_within(&self.lock, libc::LOCK_SH, EXCLUSIVE_WAIT);
            return Err(e);
        }
        *depth = 1;
        Ok(Exclusive {
            session: self.clone(),
            gate: Some(gate),
        })
    }
}

/// The store held exclusively; dropping it returns to the shared hold.
#[derive(Debug)]
pub struct Exclusive {
    session: Arc<Session>,
    gate: Option<File>,
}

impl Exclusive {
    /// Removes what no live process can own any more: other processes' leftovers in `tmp/` (dead
    /// sessions, pre-session temporary directories) and `ingest/`. Only sound while exclusive.
    pub fn sweep_all(&self, root: &Path) -> u64 {
        let mut bytes = 0;
        for sub in ["tmp", "ingest"] {
            let d = root.join(sub);
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p == self.session.dir {
                    continue;
                }
                if unmount_below(&p) {
                    bytes += crate::tree_size(&p);
                    let _ = remove_any(&p);
                }
            }
        }
        bytes
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        let mut depth = self
            .session
            .exclusive
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *depth = depth.saturating_sub(1);
        if *depth == 0 {
            // Back to shared; then the gate opens (dropping the file releases it).
            let _ = try_flock(&self.session.lock, libc::LOCK_SH);
            self.gate.take();
        }
    }
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) => Err(e),
    }
}

/// Removes the sessions under `tmp` whose process is gone (their lock is free), except `own`.
fn sweep(tmp: &Path, own: &Path) {
    let Ok(rd) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        // A session being created is renamed into place within microseconds of its mkdir; one
        // still staged after a minute belongs to a process that died in between.
        let staged_long_ago = name.starts_with(".s-")
            && e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|a| a > Duration::from_secs(60)));
        if p == own || !(name.starts_with("s-") || staged_long_ago) {
            continue;
        }
        let Ok(f) = File::open(&p) else { continue };
        if matches!(try_flock(&f, libc::LOCK_EX), Ok(true)) && unmount_below(&p) {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

/// Unmounts every mount at or below `dir` (deepest first, detached); true when none is left.
pub fn unmount_below(dir: &Path) -> bool {
    let mut points = mounts_below(dir);
    if points.is_empty() {
        return true;
    }
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in &points {
        let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
    }
    mounts_below(dir).is_empty()
}

/// The mount points at or below `dir` in this process's mount namespace.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    mount_points().map_or_else(
        |_| Vec::new(),
        |m| m.into_iter().filter(|p| p.starts_with(dir)).collect(),
    )
}

/// Every mount point of this process's mount namespace, from `/proc/self/mountinfo` (the one
/// parser of it: the sandbox's read-only remounts use it too).
pub fn mount_points() -> std::io::Result<Vec<PathBuf>> {
    let info = std::fs::read("/proc/self/mountinfo")?;
    Ok(info
        .split(|b| *b == b'\n')
        .filter_map(|l| l.split(|b| *b == b' ').nth(4))
        .map(unescape_mount_path)
        .collect())
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`; other bytes (not UTF-8 either)
/// are the path's own.
fn unescape_mount_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The pids holding a flock on `path` (from /proc/locks), for an error that names them.
pub fn holders(path: &Path) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut pids: Vec<u32> = locks
        .lines()
        .filter_map(|l| {
            // "1: FLOCK  ADVISORY  READ  1234 08:01:5678 0 EOF" (a "->" marks a waiter)
            let f: Vec<&str> = l.split_whitespace().collect();
            let at = f.iter().position(|w| *w == "FLOCK")?;
            if f.get(1) == Some(&"->") {
                return None;
            }
            let pid: u32 = f.get(at + 3)?.parse().ok()?;
            let inode: u64 = f.get(at + 4)?.rsplit(':').next()?.parse().ok()?;
            (inode == m.ino() && pid != me).then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    if getrandom(&mut b) {
        return u32::from_le_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t ^ std::process::id().rotate_left(16)
}

fn getrandom(b: &mut [u8]) -> bool {
    // SAFETY: the pointer and length describe `b`.
    unsafe { libc::getrandom(b.as_mut_ptr() as *mut libc::c_void, b.len(), 0) == b.len() as isize }
}

/// Unmounts and removes every session of this process (a build stopped by SIGINT or SIGTERM), so
/// it leaves the store as a kill followed by the next command's sweep would.
pub fn close_all() {
    let all = sessions().lock().unwrap_or_else(|e| e.into_inner());
    for s in all.values().filter_map(Weak::upgrade) {
        if unmount_below(&s.dir) {
            let _ = std::fs::remove_dir_all(&s.dir);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if unmount_below(&self.dir) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        let u = |s: &[u8]| unescape_mount_path(s);
        assert_eq!(u(br"/a\040b\011c\134d"), Path::new("/a b\tc\\d"));
        assert_eq!(u(br"/x\134y"), Path::new("/x\\y"));
        assert_eq!(u(br"/end\04"), Path::new(r"/end\04"));
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(u(b"/n\xffu").as_os_str().as_bytes(), b"/n\xffu");
    }

    #[test]
    fn one_session_per_process_and_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("tmp")).unwrap();
        let a = Session::open(d.path()).unwrap();
        let b = Session::open(d.path()).unwrap();
        assert_eq!(a.dir, b.dir);
        assert!(a.dir.join("work").is_dir());
        let dir = a.dir.clone();
        drop((a, b));
        assert!(!dir.exists(), "a closed session leaves nothing");
    }

    #[test]
    fn dead_sessions_are_swept_and_live_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let tmp = d.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        // A dead process's session: nobody holds its lock.
        let dead = tmp.join("s-1-deadbeef");
        std::fs::create_dir_all(dead.join("work/x")).unwrap();
        std::fs::write(dead.join("work/x/f"), b"left behind").unwrap();
        // A live one: locked by an open descriptor of its own (here, this test).
        let live = tmp.join("s-2-cafef00d");
        std::fs::create_dir(&live).unwrap();
        let hold = File::open(&live).unwrap();
        assert!(try_flock(&hold, libc::LOCK_EX).unwrap());
        // One being created, not yet renamed into place.
        let staging = tmp.join(".s-3-00000000");
        std::fs::create_dir(&staging).unwrap();
        let s = Session::open(d.path()).unwrap();
        assert!(!dead.exists());
        assert!(live.exists() && staging.exists());
        let x = s.exclusive(Duration::from_secs(1), &mut |_| {}).unwrap();
        x.sweep_all(d.path());
        assert!(!live.exists() && !staging.exists() && s.dir.exists());
    }

    #[test]
    fn exclusive_waits_for_other_holders_and_names_them() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("tmp")).unwrap();
        let s = Session::open(d.path()).unwrap();
        // Another holder of the store lock (as another process's open file description would be).
        let other = open_lock_file(&d.path().join("lock")).unwrap();
        assert!(try_flock(&other, libc::LOCK_SH).unwrap());
        let mut told = 0;
        let e = s
            .exclusive(Duration::from_millis(500), &mut |_| told += 1)
            .unwrap_err();
        assert!(matches!(e, StoreError::Busy { .. }), "{e}");
        assert_eq!(told, 1);
        drop(other);
        let x = s.exclusive(Duration::from_secs(5), &mut |_| {}).unwrap();
        let nested = s.exclusive(Duration::from_secs(5), &mut |_| {}).unwrap();
        drop(nested);
        drop(x);
        // Shared again: another shared holder gets in at once.
        let again = open_lock_file(&d.path().join("lock")).unwrap();
        assert!(try_flock(&again, libc::LOCK_SH).unwrap());
    }
}
