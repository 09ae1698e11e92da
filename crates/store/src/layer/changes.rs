//! The copy snapshotter's half of the layer codec, for machines without overlayfs: a layer chain
//! materialised as one plain tree, a tree copied with everything a layer keeps (owners, modes, mtimes,
//! xattrs, devices, hardlinks), and the changes from a base tree to a changed copy of it written as an
//! overlay-format upper directory (a 0/0 character device for each deletion), so that one layer writer
//! and one unpacked-directory cache serve both snapshotters.
//!
//! Entries compare as containerd's double-walk diff (`fs.Changes`) compares them: type, mode, owner and
//! device number; for non-directories also size, link target and mtime to the nanosecond, and content
//! when both mtimes have no nanoseconds (a truncated timestamp says nothing). Where overlayfs's copy-up
//! (the other snapshotter, which this one must match) sees more than containerd does, so does this
//! diff: every xattr (containerd looks at `security.capability` only) and a link count that grew (a
//! new hardlink to an old file); a link count that shrank is no change.
//! A directory whose own metadata is unchanged is in the upper directory only when something under it
//! changed, which is what overlayfs's copy-up leaves.

use super::apply::{apply, lchown, mknod, set_times, set_xattr, ApplyFormat};
use super::write::read_xattrs;
use super::LayerInfo;
use crate::{io_err, Result, Store};
use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Applies `layers` (bottom first) onto the empty directory `dest`, whiteouts deleting what they name.
pub fn materialize(store: &Store, layers: &[LayerInfo], dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(io_err("create", dest))?;
    for l in layers {
        store.ensure_blob(&l.digest)?;
        let f = store.content().open(&l.digest)?;
        let mut r = crate::compress::decompress(f)
            .map_err(io_err("decompress", store.content().path(&l.digest)))?;
        apply(&mut r, dest, ApplyFormat::Plain)?;
        // The tar's trailing padding.
        std::io::copy(&mut r, &mut std::io::sink())
            .map_err(io_err("read", store.content().path(&l.digest)))?;
    }
    Ok(())
}

/// Copies the tree `src` into `dst` (created; its parent must exist) with owners, modes, mtimes,
/// xattrs, devices and hardlinks as they are.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let mut c = Copier {
        links: HashMap::new(),
        dirs: Vec::new(),
    };
    let md = std::fs::symlink_metadata(src).map_err(io_err("stat", src))?;
    c.copy(src, dst, &md)?;
    c.finish()
}

/// Writes the changes from `base` to `changed` into the empty directory `upper` in overlay format.
/// Returns false when nothing changed (and `upper` stays empty).
pub fn diff_to_upper(base: &Path, changed: &Path, upper: &Path) -> Result<bool> {
    let mut d = Differ {
        base,
        changed,
        upper,
        copier: Copier {
            links: HashMap::new(),
            dirs: Vec::new(),
        },
    };
    let any = d.dir(Path::new(""))?;
    d.copier.finish()?;
    Ok(any)
}

struct Differ<'a> {
    base: &'a Path,
    changed: &'a Path,
    upper: &'a Path,
    copier: Copier,
}

impl Differ<'_> {
    /// Diffs the directory `rel`; true when anything under it changed.
    fn dir(&mut self, rel: &Path) -> Result<bool> {
        let mut names: BTreeSet<OsString> = BTreeSet::new();
        for root in [self.base, self.changed] {
            let d = root.join(rel);
            match std::fs::read_dir(&d) {
                Ok(rd) => {
                    for e in rd {
                        names.insert(e.map_err(io_err("read", &d))?.file_name());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("read", &d)(e)),
            }
        }
        let mut any = false;
        for name in names {
            let r = rel.join(&name);
            let (b, c) = (self.base.join(&r), self.changed.join(&r));
            match (
                std::fs::symlink_metadata(&b).ok(),
                std::fs::symlink_metadata(&c).ok(),
            ) {
                (None, None) => {}
                (Some(_), None) => {
                    self.parent(rel)?;
                    let w = self.upper.join(&r);
                    mknod(&w, libc::S_IFCHR, 0, 0, 0)?;
                    any = true;
                }
                (None, Some(cm)) => {
                    self.parent(rel)?;
                    self.copier.copy(&c, &self.upper.join(&r), &cm)?;
                    any = true;
                }
                (Some(bm), Some(cm)) if bm.is_dir() && cm.is_dir() => {
                    if !same_meta(&b, &bm, &c, &cm)? {
                        self.parent(&r)?;
                        any = true;
                    }
                    any |= self.dir(&r)?;
                }
                (Some(bm), Some(cm)) => {
                    if !same_meta(&b, &bm, &c, &cm)? || !same_content(&b, &bm, &c, &cm)? {
                        self.parent(rel)?;
                        let dst = self.upper.join(&r);
                        self.copier.copy(&c, &dst, &cm)?;
                        any = true;
                    }
                }
            }
        }
        Ok(any)
    }

    /// Makes `rel` and its parents exist in the upper directory with the changed tree's metadata.
    fn parent(&mut self, rel: &Path) -> Result<()> {
        let mut missing = Vec::new();
        let mut cur = Some(rel);
        while let Some(p) = cur.filter(|p| !p.as_os_str().is_empty()) {
            if self.upper.join(p).exists() {
                break;
            }
            missing.push(p.to_path_buf());
            cur = p.parent();
        }
        for p in missing.into_iter().rev() {
            let src = self.changed.join(&p);
            let md = std::fs::symlink_metadata(&src).map_err(io_err("stat", &src))?;
            let dst = self.upper.join(&p);
            std::fs::create_dir(&dst).map_err(io_err("create", &dst))?;
            self.copier.meta(&src, &dst, &md)?;
        }
        Ok(())
    }
}

/// Type, mode, owner, device number and xattrs; for non-directories also size, a grown link count, link
/// target and mtime (seconds and nanoseconds).
fn same_meta(a: &Path, am: &Metadata, b: &Path, bm: &Metadata) -> Result<bool> {
    if am.mode() != bm.mode()
        || am.uid() != bm.uid()
        || am.gid() != bm.gid()
        || am.rdev() != bm.rdev()
    {
        return Ok(false);
    }
    if !am.is_dir() {
        // A new hardlink to a file copies it up in overlayfs; a removed one leaves the other names be.
        if am.size() != bm.size() || bm.nlink() > am.nlink() || am.mtime() != bm.mtime() {
            return Ok(false);
        }
        if am.mtime_nsec() != bm.mtime_nsec() {
            return Ok(false);
        }
        if am.file_type().is_symlink() && std::fs::read_link(a).ok() != std::fs::read_link(b).ok() {
            return Ok(false);
        }
    }
    Ok(read_xattrs(a)? == read_xattrs(b)?)
}

/// For regular files whose mtimes both lack nanoseconds (copied from a tar): the bytes.
fn same_content(a: &Path, am: &Metadata, b: &Path, bm: &Metadata) -> Result<bool> {
    if !am.is_file() || am.mtime_nsec() != 0 || bm.mtime_nsec() != 0 {
        return Ok(true);
    }
    let (mut fa, mut fb) = (
        std::fs::File::open(a).map_err(io_err("open", a))?,
        std::fs::File::open(b).map_err(io_err("open", b))?,
    );
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba).map_err(io_err("read", a))?;
        let m = read_full(&mut fb, &mut bb).map_err(io_err("read", b))?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Copies entries keeping hardlinks (by source inode) and setting directory mtimes last.
struct Copier {
    links: HashMap<(u64, u64), PathBuf>,
    dirs: Vec<(PathBuf, i64, i64)>,
}

impl Copier {
    fn copy(&mut self, src: &Path, dst: &Path, md: &Metadata) -> Result<()> {
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(dst).map_err(io_err("create", dst))?;
            self.meta(src, dst, md)?;
            let rd = std::fs::read_dir(src).map_err(io_err("read", src))?;
            for e in rd {
                let e = e.map_err(io_err("read", src))?;
                let p = e.path();
                let m = std::fs::symlink_metadata(&p).map_err(io_err("stat", &p))?;
                self.copy(&p, &dst.join(e.file_name()), &m)?;
            }
            return Ok(());
        }
        if md.nlink() > 1 {
            if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                return std::fs::hard_link(first, dst).map_err(io_err("link", dst));
            }
            self.links.insert((md.dev(), md.ino()), dst.to_path_buf());
        }
        if ft.is_file() {
            std::fs::copy(src, dst).map_err(io_err("copy", src))?;
        } else if ft.is_symlink() {
            let t = std::fs::read_link(src).map_err(io_err("read link", src))?;
            std::os::unix::fs::symlink(&t, dst).map_err(io_err("symlink", dst))?;
        } else {
            let kind = if ft.is_char_device() {
                libc::S_IFCHR
            } else if ft.is_block_device() {
                libc::S_IFBLK
            } else if ft.is_fifo() {
                libc::S_IFIFO
            } else {
                libc::S_IFSOCK
            };
            mknod(
                dst,
                kind,
                md.mode(),
                libc::major(md.rdev()),
                libc::minor(md.rdev()),
            )?;
        }
        self.meta(src, dst, md)
    }

    /// Owner, then mode (chown clears setuid bits), then xattrs; times now for all but directories,
    /// whose mtimes change as entries are added and are set by [`Copier::finish`].
    fn meta(&mut self, src: &Path, dst: &Path, md: &Metadata) -> Result<()> {
        lchown(dst, md.uid().into(), md.gid().into())?;
        if !md.file_type().is_symlink() {
            std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))
                .map_err(io_err("chmod", dst))?;
        }
        for (k, v) in read_xattrs(src)? {
            set_xattr(dst, &k, &v)?;
        }
        if md.is_dir() {
            self.dirs
                .push((dst.to_path_buf(), md.mtime(), md.mtime_nsec()));
            Ok(())
        } else {
            set_times(dst, md.mtime(), md.mtime_nsec())
        }
    }

    fn finish(&mut self) -> Result<()> {
        for (p, s, ns) in self.dirs.drain(..).rev() {
            set_times(&p, s, ns)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn diff_of_a_copy_is_empty_and_changes_become_an_upper_dir() {
        if !root() {
            eprintln!("SKIP: needs root (owners, devices)");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("base");
        std::fs::create_dir_all(base.join("etc/keep")).unwrap();
        std::fs::create_dir_all(base.join("gone/deep")).unwrap();
        std::fs::write(base.join("etc/passwd"), "root\n").unwrap();
        std::fs::write(base.join("etc/keep/a"), "a").unwrap();
        std::fs::write(base.join("gone/deep/x"), "x").unwrap();
        std::fs::write(base.join("owned"), "o").unwrap();
        std::fs::hard_link(base.join("etc/passwd"), base.join("etc/passwd.link")).unwrap();
        std::os::unix::fs::symlink("passwd", base.join("etc/pw")).unwrap();
        let changed = t.path().join("changed");
        copy_tree(&base, &changed).unwrap();
        // A faithful copy: no changes.
        let up0 = t.path().join("up0");
        std::fs::create_dir(&up0).unwrap();
        assert!(!diff_to_upper(&base, &changed, &up0).unwrap());
        assert_eq!(std::fs::read_dir(&up0).unwrap().count(), 0);
        let cm = std::fs::symlink_metadata(changed.join("etc/passwd")).unwrap();
        assert_eq!(cm.nlink(), 2, "hardlinks kept by the copy");
        // Changes: a new file, a modified file, a removed tree, a chown, a symlink retargeted.
        std::fs::write(changed.join("etc/new"), "n").unwrap();
        std::fs::write(changed.join("etc/keep/a"), "A!").unwrap();
        std::fs::remove_dir_all(changed.join("gone")).unwrap();
        std::os::unix::fs::lchown(changed.join("owned"), Some(1000), Some(1000)).unwrap();
        std::fs::remove_file(changed.join("etc/pw")).unwrap();
        std::os::unix::fs::symlink("new", changed.join("etc/pw")).unwrap();
        let up = t.path().join("up");
        std::fs::create_dir(&up).unwrap();
        assert!(diff_to_upper(&base, &changed, &up).unwrap());
        let names = |d: &Path| -> Vec<String> {
            let mut v: Vec<String> = walkdir(d);
            v.sort();
            v
        };
        assert_eq!(
            names(&up),
            [
                "etc",
                "etc/keep",
                "etc/keep/a",
                "etc/new",
                "etc/pw",
                "gone",
                "owned"
            ]
        );
        let g = std::fs::symlink_metadata(up.join("gone")).unwrap();
        assert!(
            g.file_type().is_char_device() && g.rdev() == 0,
            "deletion is a 0/0 whiteout"
        );
        assert_eq!(
            std::fs::read_to_string(up.join("etc/keep/a")).unwrap(),
            "A!"
        );
        assert_eq!(
            std::fs::read_link(up.join("etc/pw")).unwrap(),
            Path::new("new")
        );
        assert_eq!(
            std::fs::symlink_metadata(up.join("owned")).unwrap().uid(),
            1000
        );
        // Same size, same second, no nanoseconds: the bytes decide.
        let base2 = t.path().join("b2");
        let ch2 = t.path().join("c2");
        for (d, body) in [(&base2, "aaaa"), (&ch2, "bbbb")] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("f"), body).unwrap();
            set_times(&d.join("f"), 1000, 0).unwrap();
        }
        let up2 = t.path().join("up2");
        std::fs::create_dir(&up2).unwrap();
        assert!(diff_to_upper(&base2, &ch2, &up2).unwrap());
        assert_eq!(std::fs::read_to_string(up2.join("f")).unwrap(), "bbbb");
    }

    fn walkdir(d: &Path) -> Vec<String> {
        let mut out = Vec::new();
        fn go(root: &Path, rel: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(root.join(rel)).unwrap().flatten() {
                let r = rel.join(e.file_name());
                out.push(r.display().to_string());
                if e.file_type().unwrap().is_dir() {
                    go(root, &r, out);
                }
            }
        }
        go(d, Path::new(""), &mut out);
        out
    }
}
