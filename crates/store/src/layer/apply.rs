//! Layer tar -> directory. Every entry path and hardlink target is resolved inside the root: `..`
//! components are rejected, and parent symlinks are followed scoped to the root (an absolute or
//! climbing link target never leaves it), as containerd's `fs.RootPath` does. Whiteouts are applied
//! (plain trees) or turned into overlayfs whiteouts (unpacked layer directories).
//!
//! Known limit: an overlay-format layer directory is unpacked on its own, so a symlink that lives in a
//! lower layer is not seen when resolving this layer's parents (layers written by docker and lighter
//! never write through symlinks: their paths come from real directories).

use crate::{io_err, Result, StoreError};
use std::collections::HashSet;
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// How whiteouts are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyFormat {
    /// Onto a merged tree: whiteouts delete what they name.
    Plain,
    /// Into an empty overlay layer directory: whiteouts become 0/0 character devices and
    /// `trusted.overlay.opaque=y`.
    Overlay,
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    pub entries: u64,
    pub bytes: u64,
    pub whiteouts: u64,
}

fn bad(entry: &str, message: impl Into<String>) -> StoreError {
    StoreError::Layer {
        entry: entry.to_string(),
        message: message.into(),
    }
}

/// Cleans an entry name into relative components; rejects `..`.
fn clean(name: &str) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(bad(
                    name,
                    "path contains '..': refusing to write outside the root",
                ))
            }
            Component::Prefix(_) => return Err(bad(name, "unsupported path prefix")),
        }
    }
    Ok(out)
}

/// Resolves `rel`'s parent directories inside `root`, following symlinks scoped to the root
/// ([`crate::fsroot::resolve_parent`]). The last component is not followed. Returns the absolute
/// path to write.
pub fn resolve_parent(root: &Path, rel: &Path) -> Result<PathBuf> {
    let r = crate::fsroot::resolve_parent(root, rel).map_err(|e| resolve_err(rel, e))?;
    Ok(root.join(r))
}

/// Resolves `rel` inside `root`, following every symlink (the last component's too) scoped to the
/// root ([`crate::fsroot::resolve`]): an absolute or climbing link target never leaves it. Returns
/// the absolute path.
pub fn resolve_in_root(root: &Path, rel: &Path) -> Result<PathBuf> {
    let r = crate::fsroot::resolve(root, rel, true).map_err(|e| resolve_err(rel, e))?;
    Ok(root.join(r))
}

fn resolve_err(rel: &Path, e: std::io::Error) -> StoreError {
    let msg = if e.raw_os_error() == Some(libc::ELOOP) {
        "too many levels of symbolic links".to_string()
    } else {
        e.to_string()
    };
    bad(&rel.to_string_lossy(), msg)
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| StoreError::Invalid(format!("path with NUL: {}", p.display())))
}

pub(super) fn lchown(p: &Path, uid: u64, gid: u64) -> Result<()> {
    let c = cstr(p)?;
    // SAFETY: `c` is a NUL-terminated path; integers otherwise.
    if unsafe { libc::lchown(c.as_ptr(), uid as u32, gid as u32) } != 0 {
        let e = std::io::Error::last_os_error();
        // Without privileges, owners cannot be kept; the content still can.
        if e.raw_os_error() != Some(libc::EPERM) {
            return Err(io_err("chown", p)(e));
        }
    }
    Ok(())
}

/// Sets the access and modification times of `p` (not following a symlink).
pub fn set_times(p: &Path, secs: i64, nsec: i64) -> Result<()> {
    let c = cstr(p)?;
    let t = libc::timespec {
        tv_sec: secs,
        tv_nsec: nsec,
    };
    let ts = [t, t];
    // SAFETY: `c` is a NUL-terminated path and `ts` the two timespecs utimensat reads.
    if unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } != 0
    {
        return Err(io_err("set times of", p)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Copies file data, leaving runs of 64 KiB zeros as holes (a sparse entry's claimed gigabytes
/// take no disk blocks); returns the bytes of the file.
fn copy_sparse(r: &mut impl std::io::Read, f: &mut std::fs::File) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom, Write};
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    let mut hole_at_end = false;
    loop {
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            break;
        }
        if n == buf.len() && buf.iter().all(|b| *b == 0) {
            f.seek(SeekFrom::Current(n as i64))?;
            hole_at_end = true;
        } else {
            f.write_all(&buf[..n])?;
            hole_at_end = false;
        }
        total += n as u64;
    }
    if hole_at_end {
        f.set_len(total)?;
    }
    Ok(total)
}

pub(super) fn set_xattr(p: &Path, k: &str, v: &[u8]) -> Result<()> {
    let c = cstr(p)?;
    let Ok(name) = CString::new(k) else {
        return Ok(());
    };
    // SAFETY: NUL-terminated path and name; the pointer and length describe `v`.
    if unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            name.as_ptr(),
            v.as_ptr() as *const libc::c_void,
            v.len(),
            0,
        )
    } != 0
    {
        let e = std::io::Error::last_os_error();
        // Filesystems without xattr support (or user.* on symlinks) cannot hold them.
        if !matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM)) {
            return Err(io_err("set xattr on", p)(e));
        }
    }
    Ok(())
}

pub(super) fn mknod(p: &Path, kind: libc::mode_t, mode: u32, major: u32, minor: u32) -> Result<()> {
    let c = cstr(p)?;
    // SAFETY: `c` is a NUL-terminated path; integers otherwise.
    if unsafe {
        libc::mknod(
            c.as_ptr(),
            kind | (mode & 0o7777),
            libc::makedev(major, minor),
        )
    } != 0
    {
        return Err(io_err("mknod", p)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Applies a (decompressed) layer tar stream onto `root`.
pub fn apply(r: &mut dyn Read, root: &Path, format: ApplyFormat) -> Result<ApplyStats> {
    apply_within(r, root, format, u64::MAX)
}

/// [`apply`], refusing (before writing it) a file that takes the sizes past `max_bytes`: holes keep a
/// sparse entry's claim off the disk, but reading it still costs its claimed size, and an ADD
/// archive becomes a layer of its real sizes, so a few KB claiming 10 GiB are refused as a bomb
/// (callers pass [`crate::compress::expansion_limit`] of the blob's size).
pub fn apply_within(
    r: &mut dyn Read,
    root: &Path,
    format: ApplyFormat,
    max_bytes: u64,
) -> Result<ApplyStats> {
    let mut ar = tar::Archive::new(crate::targuard::TarGuard::new(r));
    let mut stats = ApplyStats::default();
    let mut dirs: Vec<(PathBuf, u64)> = Vec::new();
    let mut written: HashSet<PathBuf> = HashSet::new();
    let entries = ar
        .entries()
        .map_err(|e| bad("<archive>", format!("not a tar stream: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| bad("<archive>", format!("corrupt or truncated tar: {e}")))?;
        let name_bytes = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&name_bytes).into_owned();
        let rel = clean(&name)?;
        stats.entries += 1;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let file_name = rel
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(hidden) = file_name.strip_prefix(".wh.") {
            stats.whiteouts += 1;
            let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
            let parent = resolve_in_root(root, &parent_rel)?;
            std::fs::create_dir_all(&parent).map_err(io_err("create", &parent))?;
            if hidden == ".wh..opq" {
                match format {
                    ApplyFormat::Overlay => set_xattr(&parent, "trusted.overlay.opaque", b"y")?,
                    ApplyFormat::Plain => remove_not_written(&parent, &parent_rel, &written)?,
                }
            } else {
                // `.wh..` and `.wh...` would name the directory itself or its parent.
                if hidden.is_empty() || hidden.contains('/') || hidden == "." || hidden == ".." {
                    return Err(bad(&name, "malformed whiteout"));
                }
                let target = parent.join(hidden);
                remove_any(&target).map_err(io_err("remove", &target))?;
                if format == ApplyFormat::Overlay {
                    mknod(&target, libc::S_IFCHR, 0, 0, 0)?;
                }
            }
            continue;
        }
        let dest = resolve_parent(root, &rel)?;
        if let Some(parent) = dest.parent() {
            if !parent.exists() {
                std::fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            }
        }
        let h = entry.header().clone();
        let mode = h.mode().map_err(|e| bad(&name, e.to_string()))?;
        let uid = h.uid().unwrap_or(0);
        let gid = h.gid().unwrap_or(0);
        let mtime = h.mtime().unwrap_or(0);
        let kind = h.entry_type();
        let existing = std::fs::symlink_metadata(&dest).ok();
        if !(kind.is_dir() && existing.as_ref().is_some_and(|m| m.is_dir())) {
            remove_any(&dest).map_err(io_err("replace", &dest))?;
        }
        match kind {
            tar::EntryType::Directory => {
                if existing.as_ref().is_none_or(|m| !m.is_dir()) {
                    std::fs::create_dir(&dest).map_err(io_err("create", &dest))?;
                }
                dirs.push((dest.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                if stats.bytes.saturating_add(entry.size()) > max_bytes {
                    return Err(bad(
                        &name,
                        format!(
                            "file sizes add up past {max_bytes} bytes ({} claimed here): refused \
                             as an archive bomb (LIGHTER_MAX_EXPANSION sets the ratio, 0 lifts \
                             the limit)",
                            entry.size()
                        ),
                    ));
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&dest)
                    .map_err(io_err("create", &dest))?;
                stats.bytes += copy_sparse(&mut entry, &mut f)
                    .map_err(|e| bad(&name, format!("truncated file data: {e}")))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| bad(&name, e.to_string()))?
                    .ok_or_else(|| bad(&name, "symlink without a target"))?;
                std::os::unix::fs::symlink(&target, &dest).map_err(io_err("symlink", &dest))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| bad(&name, e.to_string()))?
                    .ok_or_else(|| bad(&name, "hardlink without a target"))?;
                let trel = clean(&target.to_string_lossy())?;
                let tabs = resolve_parent(root, &trel)?;
                if !tabs.starts_with(root) {
                    return Err(bad(&name, "hardlink target outside the root"));
                }
                std::fs::hard_link(&tabs, &dest)
                    .map_err(|e| bad(&name, format!("hardlink to {}: {e}", target.display())))?;
                written.insert(rel.clone());
                continue;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let k = match kind {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                mknod(&dest, k, mode, major, minor)?;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            other => return Err(bad(&name, format!("unsupported tar entry type {other:?}"))),
        }
        // Order matters: chown clears setuid bits and file capabilities, so owner, then mode, then xattrs.
        lchown(&dest, uid, gid)?;
        if kind != tar::EntryType::Symlink {
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(io_err("chmod", &dest))?;
        }
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                if let (Ok(k), v) = (ext.key(), ext.value_bytes()) {
                    // trusted.* is the kernel's and overlayfs' own namespace (an image's
                    // `trusted.overlay.redirect` or `.opaque` would rewrite the snapshot): never
                    // taken from a layer.
                    if let Some(x) = k
                        .strip_prefix("SCHILY.xattr.")
                        .filter(|x| !x.starts_with("trusted."))
                    {
                        set_xattr(&dest, x, v)?;
                    }
                }
            }
        }
        if !kind.is_dir() {
            set_times(&dest, mtime as i64, 0)?;
        }
        written.insert(rel);
    }
    for (d, mtime) in dirs.into_iter().rev() {
        set_times(&d, mtime as i64, 0)?;
    }
    Ok(stats)
}

/// Opaque directory on a plain tree: remove what lower layers put in `dir`, keep what this layer wrote.
fn remove_not_written(dir: &Path, rel: &Path, written: &HashSet<PathBuf>) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let child_rel = rel.join(e.file_name());
        let child = e.path();
        if written.contains(&child_rel) {
            if child.is_dir() && !child.is_symlink() {
                remove_not_written(&child, &child_rel, written)?;
            }
        } else {
            remove_any(&child).map_err(io_err("remove", &child))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{write_tar, DirFormat, WriteOptions};
    use std::os::unix::fs::MetadataExt;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_mtime(1000);
            // Write the raw name so hostile paths reach the reader unchanged.
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn hostile_entries_never_escape() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let dotdot = tar_of(&[("../escape", tar::EntryType::Regular, b"x", None)]);
        let e = apply(&mut &dotdot[..], root.path(), ApplyFormat::Plain).unwrap_err();
        assert!(e.to_string().contains("../escape"), "{e}");
        // Absolute paths are taken relative to the root.
        let abs = tar_of(&[("/etc/evil", tar::EntryType::Regular, b"x", None)]);
        apply(&mut &abs[..], root.path(), ApplyFormat::Plain).unwrap();
        assert!(root.path().join("etc/evil").exists());
        // A symlink to an absolute outside dir, then a write through it, stays inside.
        let target = outside.path().to_str().unwrap().to_string();
        let through = tar_of(&[
            ("link", tar::EntryType::Symlink, b"", Some(&target)),
            ("link/pwned", tar::EntryType::Regular, b"x", None),
        ]);
        apply(&mut &through[..], root.path(), ApplyFormat::Plain).unwrap();
        assert!(!outside.path().join("pwned").exists());
        assert!(root
            .path()
            .join(target.trim_start_matches('/'))
            .join("pwned")
            .exists());
        // A climbing relative symlink is clamped at the root too.
        let climb = tar_of(&[
            ("up", tar::EntryType::Symlink, b"", Some("../../../../..")),
            ("up/tmpfile", tar::EntryType::Regular, b"x", None),
        ]);
        apply(&mut &climb[..], root.path(), ApplyFormat::Plain).unwrap();
        assert!(root.path().join("tmpfile").exists());
        // Hardlinks to outside are rejected.
        let hl = tar_of(&[("h", tar::EntryType::Link, b"", Some("../../etc/passwd"))]);
        assert!(apply(&mut &hl[..], root.path(), ApplyFormat::Plain).is_err());
        // Truncated archives are an error.
        let full = tar_of(&[("big", tar::EntryType::Regular, &[7u8; 5000], None)]);
        assert!(apply(&mut &full[..1200], root.path(), ApplyFormat::Plain).is_err());
    }

    #[test]
    fn whiteouts_of_dot_and_dotdot_are_refused_and_remove_nothing() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/keep"), b"k").unwrap();
        std::fs::write(base.path().join("sibling"), b"s").unwrap();
        for name in [".wh..", ".wh...", "sub/.wh..", "sub/.wh..."] {
            let t = tar_of(&[(name, tar::EntryType::Regular, b"", None)]);
            for format in [ApplyFormat::Plain, ApplyFormat::Overlay] {
                let e = apply(&mut &t[..], &root, format).unwrap_err();
                assert!(e.to_string().contains("malformed whiteout"), "{name}: {e}");
            }
        }
        assert!(root.join("sub/keep").exists() && base.path().join("sibling").exists());
    }

    #[test]
    fn sparse_claims_take_no_blocks_and_trusted_xattrs_are_dropped() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        let zeros = vec![0u8; 8 << 20];
        let t = tar_of(&[("zeros", tar::EntryType::Regular, &zeros, None)]);
        apply(&mut &t[..], root.path(), ApplyFormat::Plain).unwrap();
        let m = std::fs::metadata(root.path().join("zeros")).unwrap();
        assert_eq!(m.len(), 8 << 20);
        assert!(
            m.blocks() * 512 < 1 << 20,
            "zeros written as holes: {} blocks",
            m.blocks()
        );
        assert_eq!(std::fs::read(root.path().join("zeros")).unwrap(), zeros);
        // A PAX trusted.overlay.* xattr from a layer is not set.
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([
            ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
            ("SCHILY.xattr.user.kept", &b"1"[..]),
        ])
        .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "d", &[][..]).unwrap();
        let t = b.into_inner().unwrap();
        apply(&mut &t[..], root.path(), ApplyFormat::Overlay).unwrap();
        let x = crate::layer::write::read_xattrs(&root.path().join("d")).unwrap();
        assert!(!x.iter().any(|(k, _)| k.starts_with("trusted.")), "{x:?}");
    }

    #[test]
    fn apply_within_refuses_sizes_past_the_limit_before_writing() {
        let root = tempfile::tempdir().unwrap();
        let t = tar_of(&[
            ("a", tar::EntryType::Regular, &[1u8; 600][..], None),
            ("b", tar::EntryType::Regular, &[2u8; 600][..], None),
        ]);
        let e = apply_within(&mut &t[..], root.path(), ApplyFormat::Plain, 1000).unwrap_err();
        assert!(e.to_string().contains("archive bomb"), "{e}");
        assert!(e.to_string().contains('b'), "{e}");
        assert!(root.path().join("a").is_file() && !root.path().join("b").exists());
        let ok = apply_within(&mut &t[..], root.path(), ApplyFormat::Plain, 1200).unwrap();
        assert_eq!(ok.bytes, 1200);
    }

    #[test]
    fn whiteouts_both_ways_and_round_trip() {
        let lower = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(lower.path().join("d/sub")).unwrap();
        std::fs::write(lower.path().join("d/sub/old"), b"old").unwrap();
        std::fs::write(lower.path().join("gone"), b"x").unwrap();
        let layer = tar_of(&[
            ("d/", tar::EntryType::Directory, b"", None),
            ("d/.wh..wh..opq", tar::EntryType::Regular, b"", None),
            ("d/new", tar::EntryType::Regular, b"new", None),
            (".wh.gone", tar::EntryType::Regular, b"", None),
        ]);
        apply(&mut &layer[..], lower.path(), ApplyFormat::Plain).unwrap();
        assert!(!lower.path().join("d/sub").exists());
        assert!(lower.path().join("d/new").exists());
        assert!(!lower.path().join("gone").exists());
        if nix::unistd::geteuid().as_raw() != 0 {
            eprintln!("SKIP overlay-format whiteouts: needs root for mknod and trusted.* xattrs");
            return;
        }
        let up = tempfile::tempdir().unwrap();
        apply(&mut &layer[..], up.path(), ApplyFormat::Overlay).unwrap();
        let md = std::fs::symlink_metadata(up.path().join("gone")).unwrap();
        assert_eq!(md.rdev(), 0);
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(
            &md.file_type()
        ));
        // ... and back to OCI whiteouts.
        let mut out = Vec::new();
        write_tar(
            up.path(),
            DirFormat::OverlayUpper,
            &WriteOptions::default(),
            &mut out,
        )
        .unwrap();
        let mut names: Vec<String> = tar::Archive::new(&out[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec![".wh.gone", "d/", "d/.wh..wh..opq", "d/new"]);
    }

    #[test]
    fn round_trip_keeps_modes_owners_links_and_is_deterministic() {
        let src = tempfile::tempdir().unwrap();
        let p = src.path();
        std::fs::create_dir(p.join("bin")).unwrap();
        std::fs::write(p.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(p.join("bin/tool"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        std::os::unix::fs::symlink("tool", p.join("bin/alias")).unwrap();
        std::fs::hard_link(p.join("bin/tool"), p.join("bin/hard")).unwrap();
        let long = "x".repeat(150);
        std::fs::write(p.join(&long), b"long name").unwrap();
        let is_root = nix::unistd::geteuid().as_raw() == 0;
        if is_root {
            // chown clears the setuid bit: set the mode again after it.
            lchown(&p.join("bin/tool"), 1000, 2000).unwrap();
            std::fs::set_permissions(p.join("bin/tool"), std::fs::Permissions::from_mode(0o4755))
                .unwrap();
            set_xattr(
                &p.join("bin/tool"),
                "security.capability",
                &[1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            )
            .unwrap();
        }
        let mut t1 = Vec::new();
        write_tar(p, DirFormat::Plain, &WriteOptions::default(), &mut t1).unwrap();
        let mut t2 = Vec::new();
        write_tar(p, DirFormat::Plain, &WriteOptions::default(), &mut t2).unwrap();
        assert_eq!(t1, t2, "same tree, same bytes");
        let dst = tempfile::tempdir().unwrap();
        apply(&mut &t1[..], dst.path(), ApplyFormat::Plain).unwrap();
        let d = dst.path();
        let md = std::fs::metadata(d.join("bin/tool")).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o4755);
        assert_eq!(
            std::fs::read_link(d.join("bin/alias")).unwrap(),
            Path::new("tool")
        );
        assert_eq!(
            std::fs::metadata(d.join("bin/hard")).unwrap().ino(),
            md.ino()
        );
        assert_eq!(std::fs::read(d.join(&long)).unwrap(), b"long name");
        if is_root {
            assert_eq!((md.uid(), md.gid()), (1000, 2000));
            let x = crate::layer::write::read_xattrs(&d.join("bin/tool")).unwrap();
            assert!(x.iter().any(|(k, _)| k == "security.capability"), "{x:?}");
        }
        // SOURCE_DATE_EPOCH clamps mtimes.
        let mut t3 = Vec::new();
        let opts = WriteOptions {
            epoch: Some(0),
            ..WriteOptions::default()
        };
        write_tar(p, DirFormat::Plain, &opts, &mut t3).unwrap();
        for e in tar::Archive::new(&t3[..]).entries().unwrap() {
            assert_eq!(e.unwrap().header().mtime().unwrap(), 0);
        }
    }
}
