//! Directory -> layer tar. Deterministic: entries sorted by name, numeric owners with empty names,
//! mtimes clamped to `SOURCE_DATE_EPOCH` when set, hardlinks found by inode, xattrs as PAX records.
//! From an overlay upperdir, 0/0 character devices become `.wh.<name>` and opaque directories get a
//! `.wh..wh..opq` entry.

use crate::{io_err, Result, StoreError};
use std::collections::{BTreeSet, HashMap};
use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What kind of directory is being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirFormat {
    /// A plain tree: every entry is content.
    Plain,
    /// An overlayfs upperdir: whiteout devices and opaque xattrs become OCI whiteouts.
    OverlayUpper,
}

/// Options for [`write_tar`].
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Relative paths left out (with everything under them), e.g. mountpoints a RUN step created.
    pub skip: BTreeSet<PathBuf>,
    /// Clamp mtimes to this Unix time (`SOURCE_DATE_EPOCH`).
    pub epoch: Option<i64>,
}

impl WriteOptions {
    /// Options with `epoch` from the store's `SOURCE_DATE_EPOCH` setting.
    pub fn for_store(store: &crate::Store) -> WriteOptions {
        WriteOptions {
            skip: BTreeSet::new(),
            epoch: store.settings().source_date_epoch,
        }
    }
}

/// Writes the tar of `dir` to `out`.
pub fn write_tar(
    dir: &Path,
    format: DirFormat,
    opts: &WriteOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    b.follow_symlinks(false);
    let mut w = Walker {
        b,
        root: dir.to_path_buf(),
        format,
        opts,
        links: HashMap::new(),
    };
    w.dir(Path::new(""))?;
    w.b.finish().map_err(io_err("write tar of", dir))?;
    Ok(())
}

struct Walker<'a, W: Write> {
    b: tar::Builder<W>,
    root: PathBuf,
    format: DirFormat,
    opts: &'a WriteOptions,
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Walker<'_, W> {
    fn dir(&mut self, rel: &Path) -> Result<()> {
        let abs = self.root.join(rel);
        let mut names: Vec<_> = std::fs::read_dir(&abs)
            .map_err(io_err("read directory", &abs))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(io_err("read directory", &abs))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child = rel.join(&name);
            if self.opts.skip.contains(&child) {
                continue;
            }
            self.entry(&child, &name)?;
        }
        Ok(())
    }

    fn entry(&mut self, rel: &Path, name: &OsStr) -> Result<()> {
        let abs = self.root.join(rel);
        let md = std::fs::symlink_metadata(&abs).map_err(io_err("stat", &abs))?;
        let ft = md.file_type();
        if self.format == DirFormat::OverlayUpper && ft.is_char_device() && md.rdev() == 0 {
            let mut wh = OsStr::new(".wh.").to_os_string();
            wh.push(name);
            let path = rel.with_file_name(wh);
            return self.whiteout(&path, &md);
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(md.uid() as u64);
        h.set_gid(md.gid() as u64);
        let mtime = match self.opts.epoch {
            Some(e) if md.mtime() > e => e,
            _ => md.mtime(),
        };
        h.set_mtime(mtime.max(0) as u64);
        h.set_size(0);
        let xattrs = read_xattrs(&abs)?;
        let opaque = self.format == DirFormat::OverlayUpper
            && ft.is_dir()
            && xattrs
                .iter()
                .any(|(k, v)| k == "trusted.overlay.opaque" && v == b"y");
        let pax: Vec<(String, Vec<u8>)> = xattrs
            .into_iter()
            .filter(|(k, _)| !k.starts_with("trusted.overlay."))
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
            .collect();
        if !pax.is_empty() {
            self.b
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(io_err("write tar entry", &abs))?;
        }
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            let mut p = rel.as_os_str().to_os_string();
            p.push("/");
            self.b
                .append_data(&mut h, Path::new(&p), std::io::empty())
                .map_err(io_err("write tar entry", &abs))?;
            if opaque {
                self.whiteout(&rel.join(".wh..wh..opq"), &md)?;
            }
            return self.dir(rel);
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(&abs).map_err(io_err("readlink", &abs))?;
            h.set_entry_type(tar::EntryType::Symlink);
            self.b
                .append_link(&mut h, rel, &target)
                .map_err(io_err("write tar entry", &abs))?;
            return Ok(());
        }
        if ft.is_file() {
            if md.nlink() > 1 {
                let key = (md.dev(), md.ino());
                if let Some(first) = self.links.get(&key).cloned() {
                    h.set_entry_type(tar::EntryType::Link);
                    self.b
                        .append_link(&mut h, rel, &first)
                        .map_err(io_err("write tar entry", &abs))?;
                    return Ok(());
                }
                self.links.insert(key, rel.to_path_buf());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(md.len());
            let f = std::fs::File::open(&abs).map_err(io_err("open", &abs))?;
            let r = std::io::Read::take(f, md.len());
            self.b
                .append_data(&mut h, rel, r)
                .map_err(io_err("write tar entry", &abs))?;
            return Ok(());
        }
        let kind = if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else if ft.is_fifo() {
            tar::EntryType::Fifo
        } else {
            // Sockets are not representable in a layer; docker skips them too.
            return Ok(());
        };
        h.set_entry_type(kind);
        let rdev = md.rdev();
        h.set_device_major(libc::major(rdev))
            .map_err(io_err("write tar entry", &abs))?;
        h.set_device_minor(libc::minor(rdev))
            .map_err(io_err("write tar entry", &abs))?;
        self.b
            .append_data(&mut h, rel, std::io::empty())
            .map_err(io_err("write tar entry", &abs))?;
        Ok(())
    }

    fn whiteout(&mut self, path: &Path, md: &std::fs::Metadata) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0);
        h.set_uid(0);
        h.set_gid(0);
        let mtime = match self.opts.epoch {
            Some(e) if md.mtime() > e => e,
            _ => md.mtime(),
        };
        h.set_mtime(mtime.max(0) as u64);
        h.set_size(0);
        self.b
            .append_data(&mut h, path, std::io::empty())
            .map_err(io_err("write whiteout", path))
    }
}

/// Every extended attribute of a path (not following symlinks).
pub(crate) fn read_xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| StoreError::Invalid(format!("path with NUL: {}", path.display())))?;
    // SAFETY: `c` is NUL-terminated; a null buffer of length 0 asks only for the size.
    let size = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    if size <= 0 {
        return Ok(Vec::new());
    }
    let mut names = vec![0u8; size as usize];
    // SAFETY: `c` is NUL-terminated and the pointer and length describe `names`.
    let size = unsafe {
        libc::llistxattr(
            c.as_ptr(),
            names.as_mut_ptr() as *mut libc::c_char,
            names.len(),
        )
    };
    if size <= 0 {
        return Ok(Vec::new());
    }
    names.truncate(size as usize);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        // SAFETY: NUL-terminated path and name; a null buffer of length 0 asks only for the size.
        let vs = unsafe { libc::lgetxattr(c.as_ptr(), cname.as_ptr(), std::ptr::null_mut(), 0) };
        if vs < 0 {
            continue;
        }
        let mut v = vec![0u8; vs as usize];
        // SAFETY: NUL-terminated path and name; the pointer and length describe the value buffer.
        let vs = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                v.as_mut_ptr() as *mut libc::c_void,
                v.len(),
            )
        };
        if vs < 0 {
            continue;
        }
        v.truncate(vs as usize);
        out.push((String::from_utf8_lossy(name).into_owned(), v));
    }
    out.sort();
    Ok(out)
}
