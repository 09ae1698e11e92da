//! The overlay snapshotter: an active snapshot is an upperdir + workdir over the unpacked layers,
//! mounted on the host for file operations or inside the RUN sandbox's own mount namespace;
//! committing stores the upperdir. A view of several layers is a read-only overlay mount, of one
//! layer its unpacked directory.

use super::{
    lowers, remove_stubs, root_hint, store_upper, ActiveSnapshot, Dirs, Root, Snapshotter, View,
};
use crate::layer::LayerInfo;
use crate::{Store, StoreError};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::{Path, PathBuf};

type Result<T> = crate::Result<T>;

pub struct Overlay;

/// Mounts a one-file overlay and unmounts it: the kernel's answer, not a guess from
/// /proc/filesystems (a container may list overlay and still refuse the mount).
pub(super) fn probe(store: &Store) -> bool {
    let Ok(t) = store.temp_dir("probe-") else {
        return true;
    };
    let d = |n: &str| t.path().join(n);
    for n in ["l", "u", "w", "m"] {
        if std::fs::create_dir(d(n)).is_err() {
            return true;
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
            true
        }
        // Without root nothing mounts: keep overlay so the error says lighter needs root.
        Err(_) => nix::unistd::geteuid().as_raw() != 0,
    }
}

fn mount_error(what: &str, n: usize, e: nix::Error) -> StoreError {
    StoreError::Mount(format!("mount {what} ({n} layers): {e}{}", root_hint()))
}

impl Snapshotter for Overlay {
    fn name(&self) -> &'static str {
        "overlay"
    }

    fn prepare(&self, store: &Store, parent: &[LayerInfo]) -> Result<Box<dyn ActiveSnapshot>> {
        Ok(Box::new(Active {
            lowers: lowers(store, parent)?,
            dirs: Dirs::new(store)?,
            mounted: false,
        }))
    }

    fn view(&self, store: &Store, parent: &[LayerInfo]) -> Result<View> {
        let lowers = lowers(store, parent)?;
        match lowers.len() {
            0 => {
                let tmp = store.temp_dir("view-")?;
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
            n => {
                let tmp = store.temp_dir("view-")?;
                let opts = format!("lowerdir={}", join(&lowers));
                mount(
                    Some("overlay"),
                    tmp.path(),
                    Some("overlay"),
                    MsFlags::MS_RDONLY,
                    Some(opts.as_str()),
                )
                .map_err(|e| mount_error("read-only view", n, e))?;
                Ok(View {
                    path: tmp.path().to_path_buf(),
                    mounted: true,
                    _tmp: Some(tmp),
                })
            }
        }
    }
}

fn join(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

struct Active {
    lowers: Vec<PathBuf>,
    dirs: Dirs,
    mounted: bool,
}

impl Active {
    fn options(&self) -> Result<String> {
        let lower = if self.lowers.is_empty() {
            let empty = self.dirs.work.with_extension("empty");
            std::fs::create_dir_all(&empty).map_err(crate::io_err("create", &empty))?;
            empty.display().to_string()
        } else {
            join(&self.lowers)
        };
        Ok(format!(
            "lowerdir={lower},upperdir={},workdir={}",
            self.dirs.upper.display(),
            self.dirs.work.display()
        ))
    }

    fn unmount(&mut self) {
        if self.mounted {
            let _ = umount2(&self.dirs.merged, MntFlags::MNT_DETACH);
            self.mounted = false;
        }
    }

    /// True when `rel` is an empty, non-opaque directory in the upperdir whose lower counterpart
    /// has the same type, mode and owner: overlayfs copied it up, nothing in it changed.
    fn copy_up_only(&self, rel: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let up = self.dirs.upper.join(rel);
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

impl ActiveSnapshot for Active {
    fn root(&mut self, _store: &Store) -> Result<Root> {
        Ok(Root::Overlay {
            lowers: self.lowers.clone(),
            upper: self.dirs.upper.clone(),
            work: self.dirs.work.clone(),
            merged: self.dirs.merged.clone(),
        })
    }

    fn mount(&mut self, _store: &Store) -> Result<&Path> {
        if !self.mounted {
            let opts = self.options()?;
            mount(
                Some("overlay"),
                &self.dirs.merged,
                Some("overlay"),
                MsFlags::empty(),
                Some(opts.as_str()),
            )
            .map_err(|e| mount_error("overlay for a file operation", self.lowers.len(), e))?;
            self.mounted = true;
        }
        Ok(&self.dirs.merged)
    }

    fn commit(mut self: Box<Self>, store: &Store, skip: &[String]) -> Result<Option<LayerInfo>> {
        self.unmount();
        for parent in remove_stubs(&self.dirs.upper, skip) {
            // A parent directory copied up only to hold the stub is not a change either.
            let mut at = Some(parent.as_path());
            while let Some(rel) = at.filter(|r| !r.as_os_str().is_empty()) {
                if !self.copy_up_only(rel) {
                    break;
                }
                let _ = std::fs::remove_dir(self.dirs.upper.join(rel));
                at = rel.parent();
            }
        }
        store_upper(store, &self.dirs.upper)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.unmount();
    }
}

fn is_opaque(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))
    else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: `c` is a NUL-terminated path, the name a C string literal, and the pointer and length
    // describe `buf`.
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
