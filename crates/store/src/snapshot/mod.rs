//! Snapshots of a filesystem made of layers, behind one small interface (containerd's is the
//! model): a [`Snapshotter`] prepares an [`ActiveSnapshot`] (writable) or a [`View`] (read-only)
//! over a layer chain; an active snapshot is mounted on the host ([`ActiveSnapshot::mount`]) or
//! handed to a process that mounts it itself ([`ActiveSnapshot::root`], the RUN sandbox in its own
//! mount namespace), and committed into a stored layer. Two implementations:
//! - [`overlay`]: an upperdir + workdir over the unpacked layers (lowerdirs, top first);
//!   committing stores the upperdir as the layer. A view is a read-only overlay mount.
//! - [`copy`], where the kernel cannot mount overlayfs (some containers, user namespaces, old
//!   kernels): the chain is applied into a base tree and copied into a working tree; committing
//!   diffs the two into an overlay-format upper directory, so the layer comes out of the same
//!   writer with the same bytes. Slower (every snapshot is a full copy). One difference in bytes,
//!   none in the tree: a directory removed and made again is an opaque whiteout from overlay and
//!   a whiteout per old entry from copy (the diff cannot tell it from emptying the directory).
//!
//! [`suite`] is the conformance suite both run: the same changes give the same layer bytes.

pub mod copy;
pub mod overlay;
pub mod suite;

use crate::compress::Compression;
use crate::layer::{store_dir, unpacked, DirFormat, LayerInfo, WriteOptions};
use crate::{SnapshotterChoice, Store, StoreError};
use std::path::{Path, PathBuf};

type Result<T> = crate::Result<T>;

/// Makes snapshots of layer chains.
pub trait Snapshotter: Send + Sync {
    fn name(&self) -> &'static str;
    /// A writable snapshot over `parent` (bottom layer first).
    fn prepare(&self, store: &Store, parent: &[LayerInfo]) -> Result<Box<dyn ActiveSnapshot>>;
    /// A read-only view of `parent`.
    fn view(&self, store: &Store, parent: &[LayerInfo]) -> Result<View>;
}

/// A writable snapshot. Lifecycle: prepared, then mounted on the host or handed to a process as
/// its root, then committed (or dropped, which discards it and unmounts what it mounted).
pub trait ActiveSnapshot: Send {
    /// The root a process mounts itself (in its own mount namespace).
    fn root(&mut self, store: &Store) -> Result<Root>;
    /// Mounts the snapshot on the host; returns where.
    fn mount(&mut self, store: &Store) -> Result<&Path>;
    /// Stores the changes as a layer; `None` when nothing changed. `skip`: relative paths of
    /// mountpoint stubs a process left (empty files and directories), which are not changes.
    fn commit(self: Box<Self>, store: &Store, skip: &[String]) -> Result<Option<LayerInfo>>;
}

/// What a process mounts as its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// A directory used as is (writes land in it).
    Dir(PathBuf),
    /// An overlay: `lowers` top first (may be empty), writes land in `upper`; mounted at `merged`.
    Overlay {
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        merged: PathBuf,
    },
}

/// A read-only view of a layer chain at `path`, unmounted when dropped.
pub struct View {
    pub path: PathBuf,
    mounted: bool,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for View {
    fn drop(&mut self) {
        if self.mounted {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// The store's snapshotter: its setting, or for `auto`, overlay when this kernel mounts it
/// (probed once per process under the store's temp directory), else copy.
pub fn for_store(store: &Store) -> &'static dyn Snapshotter {
    static PROBED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let overlay = match store.settings().snapshotter {
        SnapshotterChoice::Overlay => true,
        SnapshotterChoice::Copy => false,
        SnapshotterChoice::Auto => *PROBED.get_or_init(|| overlay::probe(store)),
    };
    if overlay {
        &overlay::Overlay
    } else {
        &copy::Copy
    }
}

/// The unpacked directories of `layers`, top first (overlay's lowerdir order).
///
/// A layer that appears twice in a chain (two steps that made identical changes) is listed once,
/// at its topmost position: overlayfs refuses a lowerdir given twice, and the lower copy is fully
/// covered by the upper one (same files, same whiteouts), so the merged view is unchanged.
pub fn lowers(store: &Store, layers: &[LayerInfo]) -> Result<Vec<PathBuf>> {
    fetch_missing(store, layers)?;
    let mut out: Vec<PathBuf> = Vec::with_capacity(layers.len());
    for l in layers.iter().rev() {
        let dir = unpacked(store, &l.diff_id, &l.digest)?;
        if !out.contains(&dir) {
            out.push(dir);
        }
    }
    Ok(out)
}

/// Layers known only by descriptor (a lazily resolved base image, a build cache hit) are fetched
/// four at a time before they are unpacked, as a pull fetches them.
pub fn fetch_missing(store: &Store, layers: &[LayerInfo]) -> Result<()> {
    let missing: Vec<&LayerInfo> = layers
        .iter()
        .filter(|l| {
            !store.layer_dir(&l.diff_id).join(".complete").exists()
                && !store.content().exists(&l.digest)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..missing.len().min(4) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(l) = missing.get(i) else { break };
                if let Err(e) = store.ensure_blob(&l.digest) {
                    let err = match e {
                        e @ StoreError::Fetch { .. } => e,
                        e => StoreError::Fetch {
                            digest: l.digest.clone(),
                            message: e.to_string(),
                            network: false,
                        },
                    };
                    errors.lock().unwrap_or_else(|e| e.into_inner()).push(err);
                }
            });
        }
    });
    match errors
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .next()
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Removes the mountpoint stubs in `skip` (deepest first) from `changes`: only empty files and
/// empty directories, only plain relative names (nothing may reach outside the tree). Returns the
/// stubs' parents, for an overlay to drop directories copied up only to hold them.
fn remove_stubs(changes: &Path, skip: &[String]) -> Vec<PathBuf> {
    let mut parents = Vec::new();
    for s in skip.iter().rev() {
        let rel = Path::new(s);
        if rel.as_os_str().is_empty()
            || !rel
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            continue;
        }
        let p = changes.join(s);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir(&p);
            }
            Ok(m) if m.len() == 0 => {
                let _ = std::fs::remove_file(&p);
            }
            _ => {}
        }
        parents.extend(rel.parent().map(Path::to_path_buf));
    }
    parents
}

/// Stores an overlay-format upper directory as a layer; `None` when it is empty.
fn store_upper(store: &Store, upper: &Path) -> Result<Option<LayerInfo>> {
    let empty = std::fs::read_dir(upper)
        .map(|mut r| r.next().is_none())
        .unwrap_or(true);
    if empty {
        return Ok(None);
    }
    let info = store_dir(
        store,
        upper,
        DirFormat::OverlayUpper,
        &WriteOptions::for_store(store),
        Compression::Gzip,
    )?;
    // The upperdir is this layer unpacked: keep it for the steps that read the layer next. A
    // failure only costs an unpack later.
    let _ = crate::layer::keep_unpacked(store, &info.diff_id, upper);
    Ok(Some(info))
}

/// A hint for a mount that failed without root.
fn root_hint() -> &'static str {
    if nix::unistd::geteuid().as_raw() != 0 {
        " (lighter build needs root for overlay mounts)"
    } else {
        ""
    }
}

/// The directories of an active snapshot, under the store's temp directory.
struct Dirs {
    upper: PathBuf,
    work: PathBuf,
    merged: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Dirs {
    fn new(store: &Store) -> Result<Dirs> {
        let tmp = store.temp_dir("snap-")?;
        let upper = tmp.path().join("upper");
        let work = tmp.path().join("work");
        let merged = tmp.path().join("merged");
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).map_err(crate::io_err("create", d))?;
        }
        Ok(Dirs {
            upper,
            work,
            merged,
            _tmp: tmp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Store {
        Store::open(dir).unwrap().with_settings(crate::Settings {
            source_date_epoch: Some(1_000_000_000),
            ..Default::default()
        })
    }

    #[test]
    fn overlay_and_copy_pass_the_suite_and_write_the_same_bytes() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let copied = suite::run(&store(a.path()), &copy::Copy);
        let s = store(b.path());
        if !overlay::probe(&s) || nix::unistd::geteuid().as_raw() != 0 {
            if std::env::var("LIGHTER_TEST_STRICT").is_ok_and(|v| v == "1") {
                panic!("strict mode: overlayfs does not mount here (needs root)");
            }
            eprintln!("SKIP: overlayfs does not mount here; only the copy snapshotter ran");
            return;
        }
        let overlaid = suite::run(&s, &overlay::Overlay);
        if copied != overlaid {
            eprintln!("DEBUG {} {}", a.path().display(), b.path().display());
            std::mem::forget(a);
            std::mem::forget(b);
        }
        assert_eq!(
            copied, overlaid,
            "the two snapshotters wrote different layers"
        );
    }
}
