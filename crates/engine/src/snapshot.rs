//! Snapshots of a stage's filesystem. Two snapshotters share one lifecycle (new -> mount or rootfs ->
//! commit; views are read-only):
//! - overlay (the default): an active snapshot is an upperdir + workdir over the unpacked layers
//!   (lowerdirs, top first), mounted on the host for file operations or inside the RUN sandbox's own
//!   mount namespace; committing stores the upperdir as a layer. A view is a read-only overlay mount.
//! - copy, where the kernel cannot mount overlayfs (some containers, user namespaces, old kernels) or
//!   `LIGHTER_SNAPSHOTTER=copy`: the layer chain is applied into a base tree and copied into a working
//!   tree; committing diffs the two into an overlay-format upper directory, so the layer comes out of
//!   the same writer with the same bytes. Slower (every snapshot is a full copy), never different.

use crate::EngineError;
use lighter_store::compress::Compression;
use lighter_store::layer::{store_dir, unpacked, DirFormat, LayerInfo, WriteOptions};
use lighter_store::Store;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::{Path, PathBuf};

/// The unpacked directories of `layers`, top first (overlay's lowerdir order).
///
/// A layer that appears twice in a chain (two steps that made identical changes) is listed once, at its
/// topmost position: overlayfs refuses a lowerdir given twice, and the lower copy is fully covered by
/// the upper one (same files, same whiteouts), so the merged view is unchanged.
pub fn lowers(store: &Store, layers: &[LayerInfo]) -> Result<Vec<PathBuf>, EngineError> {
    fetch_missing(store, layers)?;
    let mut out: Vec<PathBuf> = Vec::with_capacity(layers.len());
    for l in layers.iter().rev() {
        let dir = unpacked(store, &l.diff_id, &l.digest)
            .map_err(|e| EngineError::msg(format!("unpack layer {}: {e}", l.diff_id)))?;
        if !out.contains(&dir) {
            out.push(dir);
        }
    }
    Ok(out)
}

/// Layers known only by descriptor (a lazily resolved base image, a build cache hit) are fetched
/// four at a time before they are unpacked, as a pull fetches them.
fn fetch_missing(store: &Store, layers: &[LayerInfo]) -> Result<(), EngineError> {
    let missing: Vec<&LayerInfo> = layers
        .iter()
        .filter(|l| {
            !store.layer_dir(&l.diff_id).join(".complete").exists()
                && !store.content().exists(&l.digest)
        })
        .collect();
    if missing.len() < 2 {
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
                    let msg = format!("layer {}: {e}", l.digest);
                    errors.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
                }
            });
        }
    });
    match errors
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .first()
    {
        Some(e) => Err(EngineError::msg(e.clone()).kind(crate::ErrorKind::Image)),
        None => Ok(()),
    }
}

/// Which snapshotter a store's builds use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshotter {
    Overlay,
    Copy,
}

impl Snapshotter {
    /// The store's setting, or for `auto`, overlay when this kernel mounts it (probed once per
    /// process under the store's temp directory), else copy.
    pub fn get(store: &Store) -> Result<Snapshotter, EngineError> {
        static PROBED: std::sync::OnceLock<Snapshotter> = std::sync::OnceLock::new();
        match store.settings().snapshotter {
            lighter_store::SnapshotterChoice::Overlay => Ok(Snapshotter::Overlay),
            lighter_store::SnapshotterChoice::Copy => Ok(Snapshotter::Copy),
            lighter_store::SnapshotterChoice::Auto => {
                Ok(*PROBED.get_or_init(|| probe_overlay(store)))
            }
        }
    }
}

/// Mounts a one-file overlay and unmounts it: the kernel's answer, not a guess from /proc/filesystems
/// (a container may list overlay and still refuse the mount).
fn probe_overlay(store: &Store) -> Snapshotter {
    let Ok(t) = store.temp_dir("probe-") else {
        return Snapshotter::Overlay;
    };
    let d = |n: &str| t.path().join(n);
    for n in ["l", "u", "w", "m"] {
        if std::fs::create_dir(d(n)).is_err() {
            return Snapshotter::Overlay;
        }
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        d("l").display(),
        d("u").display(),
        d("w").display()
    );
    match mount(
        Some("overlay"),
        &d("m"),
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    ) {
        Ok(()) => {
            let _ = umount2(&d("m"), MntFlags::MNT_DETACH);
            Snapshotter::Overlay
        }
        // Without root nothing mounts: keep overlay so the error says lighter needs root.
        Err(_) if nix::unistd::geteuid().as_raw() != 0 => Snapshotter::Overlay,
        Err(_) => Snapshotter::Copy,
    }
}

/// An active (writable) snapshot.
pub struct Active {
    kind: Snapshotter,
    /// The layer chain (bottom first), for the copy snapshotter's base tree.
    layers: Vec<LayerInfo>,
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    mounted: bool,
    _tmp: tempfile::TempDir,
}

impl Active {
    pub fn new(store: &Store, layers: &[LayerInfo]) -> Result<Active, EngineError> {
        let kind = Snapshotter::get(store)?;
        let lowers = match kind {
            Snapshotter::Overlay => lowers(store, layers)?,
            Snapshotter::Copy => Vec::new(),
        };
        let tmp = store
            .temp_dir("snap-")
            .map_err(|e| EngineError::msg(e.to_string()))?;
        let upper = tmp.path().join("upper");
        let work = tmp.path().join("work");
        let merged = tmp.path().join("merged");
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d)
                .map_err(|e| EngineError::msg(format!("create {}: {e}", d.display())))?;
        }
        Ok(Active {
            kind,
            layers: layers.to_vec(),
            lowers,
            upper,
            work,
            merged,
            mounted: false,
            _tmp: tmp,
        })
    }

    fn options(&self) -> Result<String, EngineError> {
        let lower = if self.lowers.is_empty() {
            let empty = self.work.with_extension("empty");
            std::fs::create_dir_all(&empty).map_err(|e| EngineError::msg(e.to_string()))?;
            empty.display().to_string()
        } else {
            self.lowers
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        };
        Ok(format!(
            "lowerdir={lower},upperdir={},workdir={}",
            self.upper.display(),
            self.work.display()
        ))
    }

    /// The copy snapshotter's trees: the layers applied into `work` (the base, kept for the diff) and
    /// copied into `merged` (the working tree).
    fn materialize(&mut self, store: &Store) -> Result<(), EngineError> {
        let err = |e: lighter_store::StoreError| {
            EngineError::msg(format!("copy snapshot ({} layers): {e}", self.layers.len()))
        };
        let base = self.work.join("base");
        lighter_store::layer::materialize(store, &self.layers, &base).map_err(err)?;
        std::fs::remove_dir(&self.merged)
            .map_err(|e| EngineError::msg(format!("copy snapshot: {e}")))?;
        lighter_store::layer::copy_tree(&base, &self.merged).map_err(err)?;
        self.mounted = true;
        Ok(())
    }

    /// The root filesystem the RUN sandbox works in.
    pub fn rootfs(&mut self, store: &Store) -> Result<lighter_sandbox::Rootfs, EngineError> {
        Ok(match self.kind {
            Snapshotter::Overlay => lighter_sandbox::Rootfs::Overlay {
                lowers: self.lowers.clone(),
                upper: self.upper.clone(),
                work: self.work.clone(),
                merged: self.merged.clone(),
            },
            Snapshotter::Copy => {
                if !self.mounted {
                    self.materialize(store)?;
                }
                lighter_sandbox::Rootfs::Dir(self.merged.clone())
            }
        })
    }

    /// Mounts the snapshot at `merged` on the host (for file operations).
    pub fn mount(&mut self, store: &Store) -> Result<&Path, EngineError> {
        if self.kind == Snapshotter::Copy {
            if !self.mounted {
                self.materialize(store)?;
            }
            return Ok(&self.merged);
        }
        if !self.mounted {
            let opts = self.options()?;
            mount(
                Some("overlay"),
                &self.merged,
                Some("overlay"),
                MsFlags::empty(),
                Some(opts.as_str()),
            )
            .map_err(|e| {
                EngineError::msg(format!(
                    "mount overlay for a file operation ({} layers): {e}{}",
                    self.lowers.len(),
                    root_hint()
                ))
            })?;
            self.mounted = true;
        }
        Ok(&self.merged)
    }

    pub fn unmount(&mut self) {
        if self.mounted && self.kind == Snapshotter::Overlay {
            let _ = umount2(&self.merged, MntFlags::MNT_DETACH);
            self.mounted = false;
        }
    }

    /// Diffs the upperdir into a stored layer; `None` when the step changed nothing.
    pub fn commit(
        mut self,
        store: &Store,
        skip: &[String],
    ) -> Result<Option<LayerInfo>, EngineError> {
        self.unmount();
        // The copy snapshotter: the sandbox's mountpoint stubs are in the working tree; the changes
        // go into the upper directory, and the rest is the overlay path.
        let changes = match self.kind {
            Snapshotter::Overlay => self.upper.clone(),
            Snapshotter::Copy => self.merged.clone(),
        };
        // Deepest first (the sandbox lists them top down), so nested stubs empty their parents.
        for s in skip.iter().rev() {
            // Plain relative names only: nothing here may reach outside the layer's tree.
            let rel = std::path::Path::new(s);
            if rel.as_os_str().is_empty()
                || !rel
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
            {
                continue;
            }
            let p = changes.join(s);
            // Only mountpoints the sandbox created: empty files and empty directories.
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {
                    let _ = std::fs::remove_dir(&p);
                }
                Ok(m) if m.len() == 0 => {
                    let _ = std::fs::remove_file(&p);
                }
                _ => {}
            }
            // A parent directory copied up only to hold the stub is not a change either.
            let mut parent = std::path::Path::new(s)
                .parent()
                .filter(|_| self.kind == Snapshotter::Overlay);
            while let Some(rel) = parent.filter(|r| !r.as_os_str().is_empty()) {
                if !self.copy_up_only(rel) {
                    break;
                }
                let _ = std::fs::remove_dir(changes.join(rel));
                parent = rel.parent();
            }
        }
        if self.kind == Snapshotter::Copy {
            if !self.mounted {
                return Ok(None);
            }
            lighter_store::layer::diff_to_upper(&self.work.join("base"), &self.merged, &self.upper)
                .map_err(|e| EngineError::msg(format!("commit layer: {e}")))?;
        }
        let empty = std::fs::read_dir(&self.upper)
            .map(|mut r| r.next().is_none())
            .unwrap_or(true);
        if empty {
            return Ok(None);
        }
        let info = store_dir(
            store,
            &self.upper,
            DirFormat::OverlayUpper,
            &WriteOptions::for_store(store),
            Compression::Gzip,
        )
        .map_err(|e| EngineError::msg(format!("commit layer: {e}")))?;
        // The upperdir is this layer unpacked: keep it for the steps that read the layer next. A
        // failure only costs an unpack later.
        let _ = lighter_store::layer::keep_unpacked(store, &info.diff_id, &self.upper);
        Ok(Some(info))
    }
}

impl Active {
    /// True when `rel` is an empty, non-opaque directory in the upperdir whose lower counterpart has the
    /// same type, mode and owner: overlayfs copied it up, nothing in it changed. (The copy snapshotter
    /// has no copy-up: the diff leaves out a directory the base has alike.)
    fn copy_up_only(&self, rel: &std::path::Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let up = self.upper.join(rel);
        let Ok(m) = std::fs::symlink_metadata(&up) else {
            return false;
        };
        if !m.is_dir()
            || std::fs::read_dir(&up)
                .map(|mut r| r.next().is_some())
                .unwrap_or(true)
            || is_opaque(&up)
        {
            return false;
        }
        self.lowers
            .iter()
            .find_map(|l| std::fs::symlink_metadata(l.join(rel)).ok())
            .is_some_and(|lm| {
                lm.is_dir() && lm.mode() == m.mode() && lm.uid() == m.uid() && lm.gid() == m.gid()
            })
    }
}

fn is_opaque(p: &std::path::Path) -> bool {
    let Ok(c) = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))
    else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: `c` is a NUL-terminated path, the name a C string literal, and the pointer and length describe `buf`.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
        )
    };
    n > 0 && buf[0] == b'y'
}

impl Drop for Active {
    fn drop(&mut self) {
        self.unmount();
    }
}

fn root_hint() -> &'static str {
    if nix::unistd::geteuid().as_raw() != 0 {
        " (lighter build needs root for overlay mounts)"
    } else {
        ""
    }
}

/// A read-only view of a layer chain.
pub struct View {
    pub path: PathBuf,
    mounted: bool,
    _tmp: Option<tempfile::TempDir>,
}

impl View {
    pub fn new(store: &Store, layers: &[LayerInfo]) -> Result<View, EngineError> {
        // The copy snapshotter never unpacks overlay-format directories (their opaque xattrs need
        // privileges a machine without overlayfs may lack): the chain is applied as a plain tree.
        if !layers.is_empty() && Snapshotter::get(store)? == Snapshotter::Copy {
            let tmp = store
                .temp_dir("view-")
                .map_err(|e| EngineError::msg(e.to_string()))?;
            let path = tmp.path().join("v");
            lighter_store::layer::materialize(store, layers, &path).map_err(|e| {
                EngineError::msg(format!("read-only view ({} layers): {e}", layers.len()))
            })?;
            return Ok(View {
                path,
                mounted: false,
                _tmp: Some(tmp),
            });
        }
        let lowers = lowers(store, layers)?;
        match lowers.len() {
            0 => {
                let tmp = store
                    .temp_dir("view-")
                    .map_err(|e| EngineError::msg(e.to_string()))?;
                Ok(View {
                    path: tmp.path().to_path_buf(),
                    mounted: false,
                    _tmp: Some(tmp),
                })
            }
            1 => Ok(View {
                path: lowers[0].clone(),
                mounted: false,
                _tmp: None,
            }),
            _ => {
                let tmp = store
                    .temp_dir("view-")
                    .map_err(|e| EngineError::msg(e.to_string()))?;
                let opts = format!(
                    "lowerdir={}",
                    lowers
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":")
                );
                mount(
                    Some("overlay"),
                    tmp.path(),
                    Some("overlay"),
                    MsFlags::MS_RDONLY,
                    Some(opts.as_str()),
                )
                .map_err(|e| {
                    EngineError::msg(format!(
                        "mount read-only view ({} layers): {e}{}",
                        lowers.len(),
                        root_hint()
                    ))
                })?;
                Ok(View {
                    path: tmp.path().to_path_buf(),
                    mounted: true,
                    _tmp: Some(tmp),
                })
            }
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if self.mounted {
            let _ = umount2(&self.path, MntFlags::MNT_DETACH);
        }
    }
}
