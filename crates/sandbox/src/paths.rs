//! Mount targets inside an image's rootfs, resolved the way runc resolves them (securejoin): every
//! symlink on the way is followed as if the rootfs were `/`, so an absolute link or a `..` can
//! never lead out of it. The sandbox init runs as host root before its chroot, so a plain
//! `root.join(target)` would follow an image's `/etc -> /host/dir` link onto the host.

use std::path::{Path, PathBuf};

/// `rel` resolved inside `root` ([`lighter_store::fsroot::resolve`], the one resolver): the result
/// is `root` joined with a path free of symlinks, `.` and `..` (missing components are kept as
/// given, for the caller to create). A path whose final component is a symlink is resolved through it.
pub(crate) fn in_root(root: &Path, rel: &str) -> Result<PathBuf, String> {
    match lighter_store::fsroot::resolve(root, Path::new(rel), true) {
        Ok(r) => Ok(root.join(r)),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            Err(format!("/{rel}: too many levels of symbolic links"))
        }
        Err(e) => Err(format!("/{rel}: {e}")),
    }
}

/// `root/name` for the kernel filesystems (`proc`, `sys`, `dev`): it must be an ordinary
/// directory or absent (then it is created), never a symlink, as runc requires ("must be mounted
/// on ordinary directory"). Following a link there would let an image move procfs to a place the
/// masks of `/proc/sys` and the like do not cover.
pub(crate) fn ordinary_dir(root: &Path, name: &str) -> Result<(PathBuf, bool), String> {
    let p = root.join(name);
    match std::fs::symlink_metadata(&p) {
        Ok(md) if md.is_dir() => Ok((p, false)),
        Ok(_) => Err(format!(
            "/{name} in the image is not an ordinary directory (a symlink or a file): it must be one, or absent"
        )),
        Err(_) => {
            std::fs::create_dir(&p).map_err(|e| format!("create mountpoint /{name}: {e}"))?;
            Ok((p, true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("real/sub")).unwrap();
        std::fs::create_dir_all(r.join("run")).unwrap();
        std::fs::create_dir_all(r.join("var")).unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../../../../..", r.join("up")).unwrap();
        symlink("real/sub", r.join("rel")).unwrap();
        symlink("/run", r.join("var/run")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        assert_eq!(in_root(r, "abs/nologin").unwrap(), r.join("etc/nologin"));
        assert_eq!(in_root(r, "up/etc/passwd").unwrap(), r.join("etc/passwd"));
        assert_eq!(in_root(r, "/../../x").unwrap(), r.join("x"));
        assert_eq!(in_root(r, "rel/f").unwrap(), r.join("real/sub/f"));
        assert_eq!(in_root(r, "var/run/cache").unwrap(), r.join("run/cache"));
        assert_eq!(in_root(r, "var/run").unwrap(), r.join("run"));
        assert_eq!(in_root(r, "missing/../real").unwrap(), r.join("real"));
        assert_eq!(in_root(r, "nope/../var/run/x").unwrap(), r.join("run/x"));
        assert!(in_root(r, "loop/x")
            .unwrap_err()
            .contains("too many levels"));
    }

    #[test]
    fn kernel_filesystems_need_ordinary_directories() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir(r.join("z")).unwrap();
        symlink("z", r.join("proc")).unwrap();
        assert!(ordinary_dir(r, "proc")
            .unwrap_err()
            .contains("not an ordinary directory"));
        std::fs::write(r.join("sys"), "").unwrap();
        assert!(ordinary_dir(r, "sys").is_err());
        assert_eq!(ordinary_dir(r, "dev").unwrap(), (r.join("dev"), true));
        assert_eq!(ordinary_dir(r, "dev").unwrap(), (r.join("dev"), false));
    }
}
