//! Paths resolved inside a root directory: the one resolver for every path lighter resolves on behalf
//! of a build (COPY/ADD sources and destinations, WORKDIR, mount sources and targets, layer entries),
//! whether the root is the build context, another stage's or an image's filesystem, or a rootfs.
//!
//! Resolution is as runc's securejoin and BuildKit's `fs.RootPath` do it: every symlink on the way
//! is followed as if the root were `/`, so an absolute target restarts at the root and `..` never
//! climbs above it. A context link `ln -s /etc/shadow link` names `<root>/etc/shadow`, never the
//! build machine's file.
//!
//! Resolving a path and then opening it by name leaves a window in which a component can be swapped
//! for a link. Files whose bytes go into a layer or a cache key are therefore opened through [`Root`]:
//! `openat2(2)` with `RESOLVE_IN_ROOT` on the root's descriptor where the kernel has it, else a
//! component-by-component `openat(2)` with `O_NOFOLLOW` that refuses any link it meets. Either way
//! the file opened is inside the root. Written by hand: no maintained crate offers both the
//! securejoin walk with missing components and the openat2 fallback.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

/// Links followed in one resolution before giving up (the kernel's limit).
pub const MAX_LINKS: usize = 40;

/// `rel` resolved inside `root` as if `root` were `/`: a path relative to `root` free of symlinks,
/// `.` and `..`. Every symlink on the way is followed inside the root, the last component's too when
/// `follow_last`. Components that do not exist are kept as given (for the caller to create or to
/// report); a later `..` may climb back out of them into existing directories, which are resolved
/// again. More than [`MAX_LINKS`] links is `ELOOP`.
pub fn resolve(root: &Path, rel: &Path, follow_last: bool) -> io::Result<PathBuf> {
    let mut todo: Vec<OsString> = components(rel);
    todo.reverse();
    let mut done = PathBuf::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        if todo.is_empty() && !follow_last {
            done.push(c);
            break;
        }
        let cand = done.join(&c);
        match std::fs::symlink_metadata(root.join(&cand)) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(root.join(&cand))?;
                if target.is_absolute() {
                    done = PathBuf::new();
                }
                let mut t = components(&target);
                t.reverse();
                todo.extend(t);
            }
            _ => done = cand,
        }
    }
    Ok(done)
}

/// [`resolve`] with every component followed but the last: where an entry named `rel` is created,
/// replaced or read as itself (a symlink stays a symlink).
pub fn resolve_parent(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    resolve(root, rel, false)
}

/// The normal components of `p` and its `..`s, in order (`.`, `/` and prefixes dropped).
fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// A directory held open, whose files are opened relative to it and never outside it.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    fd: OwnedFd,
}

/// Whether `openat2` works here: 0 unknown, 1 yes, 2 no (ENOSYS, or EPERM from a seccomp profile).
static OPENAT2: AtomicU8 = AtomicU8::new(0);

impl Root {
    /// Opens the directory `path` (following it if it is a link: the root is the caller's choice).
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(io::Error::from)?;
        Ok(Root {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// The root's path, for messages and for building paths of entries that are resolved already.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`resolve`] inside this root.
    pub fn resolve(&self, rel: &Path, follow_last: bool) -> io::Result<PathBuf> {
        resolve(&self.path, rel, follow_last)
    }

    /// Opens the regular file `rel` for reading, inside the root: links on the way are resolved in
    /// the root (openat2) or refused (the fallback); a link as the last component is refused
    /// (`ELOOP`), since callers name entries they resolved or listed themselves. The open does not
    /// block (a FIFO put there would), and anything but a regular file is refused after it.
    pub fn open_file(&self, rel: &Path) -> io::Result<File> {
        let f = self.open_any(rel)?;
        if !f.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a regular file", rel.display()),
            ));
        }
        Ok(f)
    }

    /// `(st_dev, st_ino)` of `rel` (a file or directory), found inside the root as [`Root::open_file`]
    /// finds files: what a later use by path (a bind mount) must still see.
    pub fn identity(&self, rel: &Path) -> io::Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let flags = nix::fcntl::OFlag::O_PATH
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC;
        let md = self.open_with(rel, flags)?.metadata()?;
        Ok((md.dev(), md.ino()))
    }

    /// The entries of directory `rel`, listed from a descriptor opened inside the root (so a
    /// component swapped for a link cannot make the listing show another directory); their
    /// `metadata()` is taken relative to that directory (`fstatat`, not following links). Where
    /// `/proc` is not mounted, the directory is listed by path.
    pub fn read_dir(&self, rel: &Path) -> io::Result<std::fs::ReadDir> {
        use nix::fcntl::OFlag;
        use std::os::fd::AsRawFd;
        let d = self.open_with(
            rel,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        )?;
        // Opening the descriptor's magic link opens that same directory, whatever its path is now.
        match std::fs::read_dir(format!("/proc/self/fd/{}", d.as_raw_fd())) {
            Ok(rd) => Ok(rd),
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::read_dir(self.path.join(rel)),
            Err(e) => Err(e),
        }
    }

    /// The target of the link `rel`, read from its directory's descriptor opened inside the root.
    pub fn read_link(&self, rel: &Path) -> io::Result<PathBuf> {
        use nix::fcntl::OFlag;
        let name = rel.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: no link name", rel.display()),
            )
        })?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let d = self.open_with(
            parent,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        )?;
        Ok(PathBuf::from(nix::fcntl::readlinkat(d.as_fd(), name)?))
    }

    fn open_any(&self, rel: &Path) -> io::Result<File> {
        use nix::fcntl::OFlag;
        self.open_with(
            rel,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        )
    }

    fn open_with(&self, rel: &Path, flags: nix::fcntl::OFlag) -> io::Result<File> {
        use nix::fcntl::ResolveFlag;
        let rel = clean(rel)?;
        if OPENAT2.load(Ordering::Relaxed) != 2 {
            let how = nix::fcntl::OpenHow::new()
                .flags(flags)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            match nix::fcntl::openat2(self.fd.as_fd(), &rel, how) {
                Ok(fd) => {
                    OPENAT2.store(1, Ordering::Relaxed);
                    return Ok(File::from(fd));
                }
                Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::EPERM)
                    if OPENAT2.load(Ordering::Relaxed) == 0 =>
                {
                    OPENAT2.store(2, Ordering::Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.open_walk(&rel, flags)
    }

    /// The fallback: one `openat` per component, none of which may be a link.
    fn open_walk(&self, rel: &Path, flags: nix::fcntl::OFlag) -> io::Result<File> {
        use nix::fcntl::OFlag;
        let comps = components(rel);
        let Some((last, dirs)) = comps.split_last() else {
            let fd =
                nix::fcntl::openat(self.fd.as_fd(), ".", flags, nix::sys::stat::Mode::empty())?;
            return Ok(File::from(fd));
        };
        let mut dir: Option<OwnedFd> = None;
        for c in dirs {
            let at = dir.as_ref().map(|d| d.as_fd()).unwrap_or(self.fd.as_fd());
            let next = nix::fcntl::openat(
                at,
                c.as_os_str(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )?;
            dir = Some(next);
        }
        let at = dir.as_ref().map(|d| d.as_fd()).unwrap_or(self.fd.as_fd());
        let fd = nix::fcntl::openat(at, last.as_os_str(), flags, nix::sys::stat::Mode::empty())?;
        Ok(File::from(fd))
    }
}

/// `rel` as a relative path of normal components; a `..` is refused (callers pass resolved paths).
fn clean(rel: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: a path inside a root may not contain ..", rel.display()),
                ))
            }
            _ => {}
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(r.join("real/sub")).unwrap();
        std::fs::create_dir_all(r.join("run")).unwrap();
        std::fs::write(r.join("etc/passwd"), "inside").unwrap();
        std::fs::write(r.join("real/sub/f"), "f").unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../../../../etc", r.join("up")).unwrap();
        symlink("real/sub", r.join("rel")).unwrap();
        symlink("/run", r.join("var")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        symlink("/etc/passwd", r.join("pw")).unwrap();
        d
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let d = tree();
        let r = d.path();
        let res = |p: &str| resolve(r, Path::new(p), true).unwrap();
        assert_eq!(res("abs/passwd"), Path::new("etc/passwd"));
        assert_eq!(res("up/passwd"), Path::new("etc/passwd"));
        assert_eq!(res("/../../x"), Path::new("x"));
        assert_eq!(res("rel/f"), Path::new("real/sub/f"));
        assert_eq!(res("var/cache"), Path::new("run/cache"));
        assert_eq!(res("pw"), Path::new("etc/passwd"));
        assert_eq!(res("missing/../real"), Path::new("real"));
        assert_eq!(res("nope/../var/x"), Path::new("run/x"));
        assert_eq!(res(""), Path::new(""));
        assert_eq!(
            resolve(r, Path::new("loop/x"), true)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ELOOP)
        );
        // The last component is kept as a link when asked.
        assert_eq!(
            resolve_parent(r, Path::new("abs/pw")).unwrap(),
            Path::new("etc/pw")
        );
        assert_eq!(resolve_parent(r, Path::new("pw")).unwrap(), Path::new("pw"));
    }

    #[test]
    fn open_file_stays_in_the_root() {
        let d = tree();
        let root = Root::open(d.path()).unwrap();
        let read = |p: &str| {
            let mut s = String::new();
            root.open_file(Path::new(p))?.read_to_string(&mut s)?;
            Ok::<_, io::Error>(s)
        };
        assert_eq!(read("etc/passwd").unwrap(), "inside");
        // A link as the last component is refused; links on the way stay inside the root.
        assert!(read("pw").is_err());
        if OPENAT2.load(Ordering::Relaxed) == 1 {
            assert_eq!(read("abs/passwd").unwrap(), "inside");
        }
        assert!(read("../etc/passwd").is_err());
        // The fallback walk refuses every link.
        let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NOFOLLOW;
        assert!(root.open_walk(Path::new("abs/passwd"), flags).is_err());
        let mut s = String::new();
        root.open_walk(Path::new("real/sub/f"), flags)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "f");
    }

    #[test]
    fn listings_come_from_inside_the_root() {
        let d = tree();
        let root = Root::open(d.path()).unwrap();
        let names = |p: &str| -> Vec<String> {
            let mut v: Vec<String> = root
                .read_dir(Path::new(p))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names("real"), ["sub"]);
        assert!(names("").contains(&"abs".to_string()));
        // A link as the last component is not listed through (walks list resolved paths).
        assert!(root.read_dir(Path::new("abs")).is_err());
        assert!(root.read_dir(Path::new("rel")).is_err());
        assert!(
            root.read_dir(Path::new("real/..")).is_err(),
            "callers pass resolved paths"
        );
        assert_eq!(root.read_link(Path::new("abs")).unwrap(), Path::new("/etc"));
        assert!(root.read_link(Path::new("real")).is_err(), "not a link");
    }
}
