//! COPY and ADD as BuildKit performs them, into a destination root directory: a directory source copies
//! its contents; several sources or a wildcard need a destination ending in `/`; relative destinations
//! are joined to WORKDIR; missing parents are created; symlinks are copied as links (a named source
//! that is a symlink is followed inside its source root); modes and mtimes are kept; owners are
//! `--chown`'s, else the source's for another stage or an image and 0:0 for the context; `--chmod`
//! applies to everything copied; every source and destination path resolves inside its root, and
//! source files are opened inside theirs.

use crate::context::{BuildContext, Selected};
use crate::EngineError;
use lighter_store::layer::resolve_parent;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Parses `--chmod` (octal, or symbolic like `u+x,go-w`).
pub fn parse_chmod(s: &str) -> Result<SymbolicOrOctal, EngineError> {
    if !s.is_empty() && s.chars().all(|c| c.is_digit(8)) {
        return u32::from_str_radix(s, 8)
            .map(SymbolicOrOctal::Octal)
            .map_err(|_| EngineError::msg(format!("invalid chmod {s}")));
    }
    Ok(SymbolicOrOctal::Symbolic(s.to_string()))
}

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymbolicOrOctal {
    Octal(u32),
    Symbolic(String),
}

impl SymbolicOrOctal {
    /// The resulting mode for a file whose current permission bits are `cur`.
    pub fn apply(&self, cur: u32, is_dir: bool) -> u32 {
        match self {
            SymbolicOrOctal::Octal(m) => *m,
            SymbolicOrOctal::Symbolic(s) => {
                let mut mode = cur & 0o7777;
                for clause in s.split(',') {
                    let who_end = clause.find(['+', '-', '=']).unwrap_or(clause.len());
                    let who = &clause[..who_end];
                    let mask = if who.is_empty() || who.contains('a') {
                        0o777
                    } else {
                        (if who.contains('u') { 0o700 } else { 0 })
                            | (if who.contains('g') { 0o070 } else { 0 })
                            | (if who.contains('o') { 0o007 } else { 0 })
                    };
                    let mut rest = &clause[who_end..];
                    while let Some(op) = rest.chars().next() {
                        let perms_end = rest[1..]
                            .find(['+', '-', '='])
                            .map(|i| i + 1)
                            .unwrap_or(rest.len());
                        let perms = &rest[1..perms_end];
                        let mut bits = 0;
                        for p in perms.chars() {
                            bits |= match p {
                                'r' => 0o444,
                                'w' => 0o222,
                                'x' => 0o111,
                                'X' if is_dir || cur & 0o111 != 0 => 0o111,
                                _ => 0,
                            };
                        }
                        let bits = bits & mask;
                        match op {
                            '+' => mode |= bits,
                            '-' => mode &= !bits,
                            _ => mode = (mode & !mask) | bits,
                        }
                        rest = &rest[perms_end..];
                    }
                }
                mode
            }
        }
    }
}

/// A copy request with expanded words.
pub struct CopyRequest<'a> {
    pub sources: &'a BuildContext,
    pub selected: Vec<Selected>,
    /// The destination as written (expanded), absolute or relative to `workdir`.
    pub dest: &'a str,
    pub workdir: &'a str,
    pub owner: Option<(u32, u32)>,
    pub chmod: Option<SymbolicOrOctal>,
    /// Extra exclusion patterns (`--exclude`).
    pub exclude: Vec<String>,
    /// ADD: extract local tar archives into the destination.
    pub extract_archives: bool,
    /// `COPY --parents`: for each selected path, the leading part not kept under the destination
    /// (what comes before a `/./` in the source; empty keeps the whole path).
    pub parents: Option<Vec<PathBuf>>,
}

impl CopyRequest<'_> {
    /// The owner a copied entry gets: `--chown`'s, else the source's where the source keeps owners
    /// (another stage, an image), else root.
    pub(crate) fn owner_of(&self, md: &std::fs::Metadata) -> (u32, u32) {
        match self.owner {
            Some(o) => o,
            None if self.sources.keeps_owners() => (md.uid(), md.gid()),
            None => (0, 0),
        }
    }

    /// With `--parents`, the part of selected path `i` kept under the destination.
    pub(crate) fn kept(&self, i: usize) -> Option<PathBuf> {
        let strips = self.parents.as_ref()?;
        let rel = &self.selected[i].rel;
        let strip = strips.get(i).cloned().unwrap_or_default();
        Some(rel.strip_prefix(&strip).unwrap_or(rel).to_path_buf())
    }
}

/// Where a copy goes: the destination relative to the root, whether it names a directory, and the
/// `--exclude` matcher.
pub(crate) struct Destination {
    pub rel: String,
    pub is_dir: bool,
    pub exclude: Option<lighter_dockerfile::dockerignore::Matcher>,
}

impl Destination {
    pub(crate) fn of(req: &CopyRequest<'_>) -> Result<Destination, EngineError> {
        let dest_abs = if req.dest.starts_with('/') {
            req.dest.to_string()
        } else {
            format!("{}/{}", req.workdir.trim_end_matches('/'), req.dest)
        };
        // BuildKit has no "several sources need a trailing /" rule (that is the classic builder's):
        // each source is copied on its own, into the destination when it is a directory (named
        // with a trailing `/`, or existing), else as it; a wildcard matching one file copies it to
        // a file destination, and ADD unpacks every archive into the destination.
        let is_dir = req.dest.ends_with('/') || req.dest.ends_with("/.") || req.dest == ".";
        let exclude = if req.exclude.is_empty() {
            None
        } else {
            Some(
                lighter_dockerfile::dockerignore::Matcher::new(req.exclude.iter())
                    .map_err(|e| EngineError::msg(format!("--exclude: {e}")))?,
            )
        };
        Ok(Destination {
            rel: crate::context::clean_rel(&dest_abs),
            is_dir,
            exclude,
        })
    }

    pub(crate) fn excluded(&self, rel: &Path) -> bool {
        self.exclude
            .as_ref()
            .is_some_and(|m| m.matches(&rel.to_string_lossy()))
    }
}

/// Performs the copy into `root`. Returns the number of entries written.
pub fn copy(req: &CopyRequest<'_>, root: &Path) -> Result<u64, EngineError> {
    let d = Destination::of(req)?;
    let (dest_rel, dest_is_dir) = (d.rel.clone(), d.is_dir);
    let mut n = 0;
    for (i, sel) in req.selected.iter().enumerate() {
        let md = std::fs::symlink_metadata(req.sources.dir.join(&sel.src))
            .map_err(|e| EngineError::msg(format!("{}: {e}", sel.rel.display())))?;
        let kept = req.kept(i);
        if md.is_dir() {
            // The directory's contents go into the destination directory (with --parents, into the
            // directory's own path under it).
            let target = match kept.as_ref().filter(|k| !k.as_os_str().is_empty()) {
                Some(k) => {
                    let t = Path::new(&dest_rel).join(k);
                    if let Some(parent) = t.parent() {
                        mkdir_all(root, &parent.to_string_lossy(), req.owner)?;
                    }
                    copy_entry(&sel.src, root, &t, req)?;
                    t.to_string_lossy().into_owned()
                }
                None => {
                    mkdir_all(root, &dest_rel, req.owner)?;
                    dest_rel.clone()
                }
            };
            for rel in req.sources.walk(&sel.src).into_iter().skip(1) {
                let inner = rel.strip_prefix(&sel.src).unwrap_or(&rel);
                if d.excluded(inner) {
                    continue;
                }
                let to = Path::new(&target).join(inner);
                copy_entry(&rel, root, &to, req)?;
                n += 1;
            }
        } else {
            let name = sel.rel.file_name().map(PathBuf::from).unwrap_or_default();
            if d.excluded(&sel.rel) {
                continue;
            }
            let existing_dir = resolve_parent(root, Path::new(&dest_rel))
                .map(|p| p.is_dir())
                .unwrap_or(false);
            let to = if let Some(k) = &kept {
                Path::new(&dest_rel).join(k)
            } else if dest_is_dir || existing_dir {
                Path::new(&dest_rel).join(&name)
            } else {
                PathBuf::from(&dest_rel)
            };
            if req.extract_archives && is_archive(req.sources, &sel.src) {
                let target = mkdir_all(root, &dest_rel, req.owner)?;
                extract_archive(req.sources, &sel.src, &target)?;
                n += 1;
                continue;
            }
            if let Some(parent) = to.parent() {
                mkdir_all(root, &parent.to_string_lossy(), req.owner)?;
            }
            copy_entry(&sel.src, root, &to, req)?;
            n += 1;
        }
    }
    Ok(n)
}

/// True when the file `rel` of `sources` starts like a tar, gzip or zstd stream.
pub(crate) fn is_archive(sources: &BuildContext, rel: &Path) -> bool {
    let Ok(mut f) = sources.open_file(rel) else {
        return false;
    };
    let mut head = [0u8; 512];
    let Ok(n) = std::io::Read::read(&mut f, &mut head) else {
        return false;
    };
    let head = &head[..n];
    if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return true;
    }
    n >= 262 && &head[257..262] == b"ustar"
}

fn extract_archive(sources: &BuildContext, rel: &Path, target: &Path) -> Result<(), EngineError> {
    let src = sources.dir.join(rel);
    let f = sources
        .open_file(rel)
        .map_err(|e| EngineError::msg(format!("{}: {e}", src.display())))?;
    // The files may add up to what the decompression limit lets the archive's bytes become.
    let max = lighter_store::compress::expansion_limit(f.metadata().map_or(0, |m| m.len()));
    let mut r = lighter_store::compress::decompress(f)
        .map_err(|e| EngineError::msg(format!("{}: {e}", src.display())))?;
    let plain = lighter_store::layer::ApplyFormat::Plain;
    lighter_store::layer::apply_within(&mut r, target, plain, max)
        .map_err(|e| EngineError::msg(format!("ADD {}: {e}", src.display())))?;
    Ok(())
}

/// `mkdir -p` inside root (scoped), new directories 0755 and owned by `owner` (root by default).
pub fn mkdir_all(
    root: &Path,
    rel: &str,
    owner: Option<(u32, u32)>,
) -> Result<PathBuf, EngineError> {
    let mut cur = PathBuf::new();
    let mut abs = root.to_path_buf();
    for comp in rel.split('/').filter(|c| !c.is_empty()) {
        cur.push(comp);
        // Resolve every component, the last one too, inside the root (a symlinked directory is followed
        // scoped to the root, never on the host).
        abs = resolve_parent(root, &cur.join("_"))
            .map_err(|e| EngineError::msg(e.to_string()))?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| root.to_path_buf());
        match std::fs::metadata(&abs) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(EngineError::msg(format!(
                    "cannot create directory /{}: a file is in the way",
                    cur.display()
                )))
            }
            Err(_) => {
                std::fs::create_dir_all(&abs)
                    .map_err(|e| EngineError::msg(format!("mkdir /{}: {e}", cur.display())))?;
                std::fs::set_permissions(&abs, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| EngineError::msg(e.to_string()))?;
                let (u, g) = owner.unwrap_or((0, 0));
                let _ = std::os::unix::fs::lchown(&abs, Some(u), Some(g));
            }
        }
        // Continue from the resolved location (a symlinked directory is followed, inside the root).
        if let Ok(r) = abs.strip_prefix(root) {
            cur = r.to_path_buf();
        }
    }
    Ok(abs)
}

/// Copies the entry `rel` of the source root (resolved or walked: no link on the way) to `to`.
fn copy_entry(
    rel: &Path,
    root: &Path,
    to: &Path,
    req: &CopyRequest<'_>,
) -> Result<(), EngineError> {
    let src = req.sources.dir.join(rel);
    let err = |e: std::io::Error| {
        EngineError::msg(format!("copy {} -> /{}: {e}", src.display(), to.display()))
    };
    let md = std::fs::symlink_metadata(&src).map_err(err)?;
    let dest = resolve_parent(root, to).map_err(|e| EngineError::msg(e.to_string()))?;
    let ft = md.file_type();
    if let Ok(existing) = std::fs::symlink_metadata(&dest) {
        if !(existing.is_dir() && ft.is_dir()) {
            if existing.is_dir() {
                std::fs::remove_dir_all(&dest).map_err(err)?;
            } else {
                std::fs::remove_file(&dest).map_err(err)?;
            }
        }
    }
    if ft.is_dir() {
        if !dest.is_dir() {
            std::fs::create_dir(&dest).map_err(err)?;
        }
    } else if ft.is_symlink() {
        let target = req.sources.read_link(rel).map_err(err)?;
        std::os::unix::fs::symlink(target, &dest).map_err(err)?;
    } else if ft.is_file() {
        let mut from = req.sources.open_file(rel).map_err(err)?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)
            .map_err(err)?;
        std::io::copy(&mut from, &mut out).map_err(err)?;
    } else {
        // Devices, fifos and sockets are skipped, as BuildKit does for the context.
        return Ok(());
    }
    let (uid, gid) = req.owner_of(&md);
    std::os::unix::fs::lchown(&dest, Some(uid), Some(gid)).map_err(err)?;
    if !ft.is_symlink() {
        let mode = match &req.chmod {
            Some(c) => c.apply(md.mode(), ft.is_dir()),
            None => md.mode() & 0o7777,
        };
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    }
    set_times(&dest, md.mtime(), md.mtime_nsec());
    Ok(())
}

/// Best effort, as before: a copied file whose times cannot be set is still copied.
fn set_times(p: &Path, secs: i64, nsec: i64) {
    let _ = lighter_store::layer::set_times(p, secs, nsec);
}

/// The text of `rel` in the filesystem at `root` (links followed inside it), empty when absent.
/// Opened inside the root as a regular file (a FIFO or device there is not read), at most 16 MiB.
fn read_in_root(root: &Path, rel: &str) -> String {
    use std::io::Read;
    let Ok(r) = lighter_store::fsroot::Root::open(root) else {
        return String::new();
    };
    let Ok(f) = r
        .resolve(Path::new(rel), true)
        .and_then(|p| r.open_file(&p))
    else {
        return String::new();
    };
    let mut s = String::new();
    let _ = f.take(16 << 20).read_to_string(&mut s);
    s
}

/// The owner WORKDIR gives the directories it creates under `USER user`, as BuildKit's mkdir with
/// `WithUser`: `root` is 0; a number is that uid and the same gid; a name is looked up in the
/// stage's /etc/passwd (0:0 when it is not there, without an error); a `:group` part sets the gid
/// (a number, or a name in /etc/group).
pub fn workdir_owner(root: &Path, user: &str) -> (u32, u32) {
    let passwd = read_in_root(root, "etc/passwd");
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) if u.is_empty() || u == "root" => (0, 0),
        Err(_) => lighter_sandbox::resolve_user(u, &passwd, "")
            .map(|x| (x.uid, x.gid))
            .unwrap_or((0, 0)),
    };
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let group = read_in_root(root, "etc/group");
                lighter_sandbox::resolve_user(&format!("0:{g}"), "", &group)
                    .map(|x| x.gid)
                    .unwrap_or(gid)
            }
        };
    }
    (uid, gid)
}

/// `--chown` names resolved through the destination's /etc/passwd and /etc/group (numbers as is).
pub fn resolve_chown(root: &Path, spec: &str) -> Result<(u32, u32), EngineError> {
    let passwd = read_in_root(root, "etc/passwd");
    let group = read_in_root(root, "etc/group");
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = match u.parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            lighter_sandbox::resolve_user(u, &passwd, &group)
                .map_err(|e| EngineError::msg(format!("--chown={spec}: {e}")))?
                .uid
        }
    };
    let gid = match g {
        // `--chown=user` alone: the group is the same as the user (BuildKit uses uid for gid when only a
        // user is given by number, and the user's name looked up as a group otherwise).
        None => match u.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lighter_sandbox::resolve_user(&format!("{u}:{u}"), &passwd, &group)
                .map(|x| x.gid)
                .or_else(|_| lighter_sandbox::resolve_user(u, &passwd, &group).map(|x| x.gid))
                .map_err(|e| EngineError::msg(format!("--chown={spec}: {e}")))?,
        },
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                lighter_sandbox::resolve_user(&format!("0:{g}"), &passwd, &group)
                    .map_err(|e| EngineError::msg(format!("--chown={spec}: {e}")))?
                    .gid
            }
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolic_chmod() {
        let s = SymbolicOrOctal::Symbolic("u+x,go-w".into());
        assert_eq!(s.apply(0o666, false), 0o744);
        assert_eq!(
            SymbolicOrOctal::Symbolic("a=r".into()).apply(0o777, false),
            0o444
        );
        assert_eq!(SymbolicOrOctal::Octal(0o700).apply(0o644, false), 0o700);
    }

    #[test]
    fn copy_rules() {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ctx.path().join("src/sub")).unwrap();
        std::fs::write(ctx.path().join("src/a.txt"), "a").unwrap();
        std::fs::write(ctx.path().join("src/sub/b.txt"), "b").unwrap();
        std::os::unix::fs::symlink("a.txt", ctx.path().join("src/link")).unwrap();
        let root = tempfile::tempdir().unwrap();
        let c = BuildContext::open(ctx.path(), None).unwrap();
        copy(
            &plain_copy(&c, c.select("src").unwrap(), "/app/"),
            root.path(),
        )
        .unwrap();
        // The directory's contents, not the directory itself.
        assert!(root.path().join("app/a.txt").is_file());
        assert!(root.path().join("app/sub/b.txt").is_file());
        assert_eq!(
            std::fs::read_link(root.path().join("app/link")).unwrap(),
            Path::new("a.txt")
        );
        // A file to a relative destination against WORKDIR, renamed.
        let req = CopyRequest {
            sources: &c,
            selected: c.select("src/a.txt").unwrap(),
            dest: "renamed.txt",
            workdir: "/work",
            owner: Some((1000, 1000)),
            chmod: Some(SymbolicOrOctal::Octal(0o600)),
            exclude: vec![],
            extract_archives: false,
            parents: None,
        };
        copy(&req, root.path()).unwrap();
        let md = std::fs::metadata(root.path().join("work/renamed.txt")).unwrap();
        assert_eq!(md.mode() & 0o777, 0o600);
        if nix::unistd::geteuid().as_raw() == 0 {
            assert_eq!((md.uid(), md.gid()), (1000, 1000));
        }
        // A wildcard matching one file, to a destination without a trailing slash: that file.
        let req = plain_copy(&c, c.select("src/*.txt").unwrap(), "/x");
        copy(&req, root.path()).unwrap();
        assert_eq!(std::fs::read_to_string(root.path().join("x")).unwrap(), "a");
        // Destination symlinks never lead outside the root.
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();
        let req = plain_copy(&c, c.select("src/a.txt").unwrap(), "/escape/");
        copy(&req, root.path()).unwrap();
        assert!(!outside.path().join("a.txt").exists());
    }

    /// A copy of `selected` to `dest` with no flags.
    fn plain_copy<'a>(
        c: &'a BuildContext,
        selected: Vec<Selected>,
        dest: &'a str,
    ) -> CopyRequest<'a> {
        CopyRequest {
            sources: c,
            selected,
            dest,
            workdir: "/",
            owner: None,
            chmod: None,
            exclude: vec![],
            extract_archives: false,
            parents: None,
        }
    }

    /// Source links resolve inside the source root: a link to a host file names the root's own
    /// path (here missing: not found), a link inside the root is followed, and the copy's name is
    /// the link's.
    #[test]
    fn source_links_stay_in_their_root() {
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("secret"), "HOST SECRET").unwrap();
        let ctx = tempfile::tempdir().unwrap();
        let depth = ctx.path().components().count();
        let climb = format!("{}{}", "../".repeat(depth + 2), host.path().display());
        std::os::unix::fs::symlink(host.path().join("secret"), ctx.path().join("abs")).unwrap();
        std::os::unix::fs::symlink(format!("{climb}/secret"), ctx.path().join("rel")).unwrap();
        std::os::unix::fs::symlink(host.path(), ctx.path().join("dirlink")).unwrap();
        std::fs::create_dir(ctx.path().join("real")).unwrap();
        std::fs::write(ctx.path().join("real/own"), "mine").unwrap();
        std::os::unix::fs::symlink("/real/own", ctx.path().join("inside")).unwrap();
        let c = BuildContext::open(ctx.path(), None).unwrap();
        for name in ["abs", "rel", "dirlink/secret", "a*", "re?", "dirlink/*"] {
            let e = c.select(name).map(|_| ()).unwrap_err().to_string();
            assert!(
                e.contains("not found") || e.contains("matched nothing"),
                "{name}: {e}"
            );
        }
        let sel = c.select("inside").unwrap();
        assert_eq!(sel[0].src, Path::new("real/own"));
        let root = tempfile::tempdir().unwrap();
        copy(&plain_copy(&c, sel, "/d/"), root.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("d/inside")).unwrap(),
            "mine"
        );
    }
}
