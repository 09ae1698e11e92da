//! Snapshots of a stage's filesystem over overlayfs: an active snapshot is an upperdir + workdir over the
//! unpacked layers (lowerdirs, top first), mounted on the host for file operations or inside the RUN
//! sandbox's own mount namespace; committing diffs the upperdir into a layer. A view is a read-only
//! mount of a layer chain (for `COPY --from` and `RUN --mount=from=`).

use crate::EngineError;
use lighter_store::compress::Compression;
use lighter_store::layer::{store_dir, unpacked, DirFormat, LayerInfo, WriteOptions};
use lighter_store::Store;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::{Path, PathBuf};

/// The unpacked directories of `layers`, top first (overlay's lowerdir order).
pub fn lowers(store: &Store, layers: &[LayerInfo]) -> Result<Vec<PathBuf>, EngineError> {
    let mut out = Vec::with_capacity(layers.len());
    for l in layers.iter().rev() {
        out.push(
            unpacked(store, &l.diff_id, &l.digest)
                .map_err(|e| EngineError::msg(format!("unpack layer {}: {e}", l.diff_id)))?,
        );
    }
    Ok(out)
}

/// An active (writable) snapshot.
pub struct Active {
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    mounted: bool,
    _tmp: tempfile::TempDir,
}

impl Active {
    pub fn new(store: &Store, layers: &[LayerInfo]) -> Result<Active, EngineError> {
        let lowers = lowers(store, layers)?;
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

    /// Mounts the overlay at `merged` on the host (for file operations).
    pub fn mount(&mut self) -> Result<&Path, EngineError> {
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
        if self.mounted {
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
        for s in skip {
            let p = self.upper.join(s);
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
            &WriteOptions::from_env(),
            Compression::Gzip,
        )
        .map_err(|e| EngineError::msg(format!("commit layer: {e}")))?;
        Ok(Some(info))
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.unmount();
    }
}

fn root_hint() -> &'static str {
    if unsafe { libc::geteuid() } != 0 {
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
