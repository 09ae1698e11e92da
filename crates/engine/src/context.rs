//! The build context, read in place: `.dockerignore` filtering (`<Dockerfile>.dockerignore` next to the
//! Dockerfile wins over `<context>/.dockerignore`), source selection with wildcards, and a content
//! digest of exactly the files a COPY/ADD selects (paths, types, modes, link targets, file contents),
//! never of their mtimes.
//!
//! Every path is resolved inside the source root ([`lighter_store::fsroot`]): a context link to
//! `/etc/shadow` names `<context>/etc/shadow`, and file bytes are read through the root's
//! descriptor, so nothing outside the root can reach a layer or a cache key.

use crate::EngineError;
use lighter_dockerfile::dockerignore::{parse_dockerignore, Matcher};
use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A context directory with its ignore rules.
pub struct BuildContext {
    pub dir: PathBuf,
    root: lighter_store::fsroot::Root,
    /// Copies keep the owners of this root's files (another stage, an image); else they are root's.
    keep_owners: bool,
    matcher: Option<Matcher>,
    stat_cache: Option<StatCache>,
    /// Walks already done in this build: a COPY's digest and its copy read the same listing.
    walks: std::sync::Mutex<std::collections::HashMap<PathBuf, Walk>>,
}

/// A walk: every path under a source (itself first), not ignored, sorted, with its metadata
/// (not following symlinks).
pub type Walk = std::sync::Arc<Vec<Walked>>;

/// One walked path and its metadata.
pub type Walked = (PathBuf, std::fs::Metadata);

/// `(dev, inode, size, mtime, ctime, mode)` -> content sha256 of context files, persisted per context
/// directory, so a file that has not changed since the last build is not read again.
struct StatCache {
    path: PathBuf,
    entries: std::sync::Mutex<StatEntries>,
    /// The file is parsed on another thread while the context is walked; joined on first use.
    loading: std::sync::Mutex<Option<std::thread::JoinHandle<StatEntries>>>,
    dirty: std::sync::atomic::AtomicBool,
}

/// Keyed by the path's bytes with a multiply-rotate hash: a no-op build looks up every context file,
/// and `Path`'s component-wise SipHash was a sixth of that build's time. Hashes are shared, not copied.
type StatEntries = std::collections::HashMap<
    std::ffi::OsString,
    (Stamp, std::sync::Arc<str>),
    std::hash::BuildHasherDefault<PathHasher>,
>;

/// FxHash's mixing step over 8-byte words (not DoS-resistant; the keys are the context's own paths).
#[derive(Default)]
struct PathHasher(u64);

impl std::hash::Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 =
                (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp([i64; 8]);

impl Stamp {
    fn of(md: &std::fs::Metadata) -> Stamp {
        Stamp([
            md.dev() as i64,
            md.ino() as i64,
            md.size() as i64,
            md.mtime(),
            md.mtime_nsec(),
            md.ctime(),
            md.ctime_nsec(),
            md.mode() as i64,
        ])
    }
}

const STAT_CACHE_VERSION: &str = "lighter-stat-cache v1";

impl StatCache {
    fn load(path: PathBuf) -> StatCache {
        let p = path.clone();
        let loading = std::thread::spawn(move || StatCache::parse(&p));
        StatCache {
            path,
            entries: Default::default(),
            loading: std::sync::Mutex::new(Some(loading)),
            dirty: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn parse(path: &Path) -> StatEntries {
        let mut entries = StatEntries::default();
        if let Ok(text) = std::fs::read_to_string(path) {
            let mut lines = text.lines();
            if lines.next() == Some(STAT_CACHE_VERSION) {
                entries.reserve(text.len() / 96);
                for l in lines {
                    let mut f = l.split('\t');
                    let Some(p) = f.next() else { continue };
                    let mut st = [0i64; 8];
                    let ok = st.iter_mut().all(|n| {
                        f.next()
                            .and_then(|v| v.parse().ok())
                            .map(|v| *n = v)
                            .is_some()
                    });
                    if let (true, Some(hex), None) = (ok, f.next(), f.next()) {
                        entries.insert(p.into(), (Stamp(st), hex.into()));
                    }
                }
            }
        }
        entries
    }

    /// The entries, once loaded.
    fn entries(&self) -> std::sync::MutexGuard<'_, StatEntries> {
        // Lock order: `loading`, then `entries`; no caller sees the map before it is filled.
        let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = loading.take() {
            // A panicked parser leaves an empty cache: every file is read again, nothing is wrong.
            *g = h.join().unwrap_or_default();
        }
        g
    }

    fn save(&self) {
        if !self.dirty.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let entries = self.entries();
        let mut out = String::with_capacity(entries.len() * 96);
        out.push_str(STAT_CACHE_VERSION);
        out.push('\n');
        for (p, (st, h)) in entries.iter() {
            let Some(ps) = p.to_str() else { continue };
            if ps.contains(['\t', '\n']) {
                continue;
            }
            out.push_str(ps);
            for v in st.0 {
                out.push('\t');
                out.push_str(&v.to_string());
            }
            out.push('\t');
            out.push_str(h);
            out.push('\n');
        }
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
            let tmp = self.path.with_extension("tmp");
            if std::fs::write(&tmp, out).is_ok() {
                let _ = std::fs::rename(&tmp, &self.path);
            }
        }
    }
}

/// One selected source: its path relative to the source root as named (what the destination is
/// called after), and that path with its links resolved inside the root (what is read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub rel: PathBuf,
    pub src: PathBuf,
}

impl BuildContext {
    /// Opens `dir` like [`BuildContext::open`], keeping content hashes between builds in a stat cache
    /// under `cache_dir`.
    pub fn open_cached(
        dir: &Path,
        dockerfile: Option<&Path>,
        cache_dir: Option<&Path>,
    ) -> Result<BuildContext, EngineError> {
        let mut c = BuildContext::open(dir, dockerfile)?;
        if let Some(cd) = cache_dir {
            let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
            let name = hex::encode(Sha256::digest(abs.as_os_str().as_encoded_bytes()));
            c.stat_cache = Some(StatCache::load(cd.join(format!("{}.txt", &name[..32]))));
        }
        Ok(c)
    }

    /// Writes the stat cache back (when it changed).
    pub fn save_cache(&self) {
        if let Some(c) = &self.stat_cache {
            c.save();
        }
    }

    /// Opens `dir`; `dockerfile` (when on disk) decides which ignore file applies.
    pub fn open(dir: &Path, dockerfile: Option<&Path>) -> Result<BuildContext, EngineError> {
        let mut candidates = Vec::new();
        if let Some(df) = dockerfile {
            let mut name = df.as_os_str().to_os_string();
            name.push(".dockerignore");
            candidates.push(PathBuf::from(name));
        }
        candidates.push(dir.join(".dockerignore"));
        let mut matcher = None;
        for c in candidates {
            if let Ok(text) = std::fs::read_to_string(&c) {
                let patterns = parse_dockerignore(&text);
                matcher = Some(
                    Matcher::new(patterns)
                        .map_err(|e| EngineError::msg(format!("{}: {e}", c.display())))?,
                );
                break;
            }
        }
        let mut c = BuildContext::plain(dir)?;
        c.matcher = matcher;
        Ok(c)
    }

    /// A source root without ignore rules (another stage's or image's filesystem).
    pub fn plain(dir: &Path) -> Result<BuildContext, EngineError> {
        let root = lighter_store::fsroot::Root::open(dir)
            .map_err(|e| EngineError::msg(format!("source root {}: {e}", dir.display())))?;
        Ok(BuildContext {
            dir: dir.to_path_buf(),
            root,
            keep_owners: false,
            matcher: None,
            stat_cache: None,
            walks: Default::default(),
        })
    }

    /// This root with its files' owners kept by COPY (BuildKit keeps them for `--from` a stage or
    /// an image; files of the context arrive as root's).
    pub fn keeping_owners(mut self) -> BuildContext {
        self.keep_owners = true;
        self
    }

    /// True when copies keep the owners of this root's files.
    pub fn keeps_owners(&self) -> bool {
        self.keep_owners
    }

    /// The source root, whose files are opened inside it.
    pub fn root(&self) -> &lighter_store::fsroot::Root {
        &self.root
    }

    /// `rel` with its links resolved inside the root (the last component's too).
    pub fn resolve(&self, rel: &Path) -> Result<PathBuf, EngineError> {
        self.root
            .resolve(rel, true)
            .map_err(|e| EngineError::msg(format!("/{}: {e}", rel.display())))
    }

    /// The target of the link `rel` (a walked path), read inside the root.
    pub fn read_link(&self, rel: &Path) -> std::io::Result<PathBuf> {
        self.root.read_link(rel)
    }

    /// Opens the regular file `rel` (a resolved or walked path) inside the root.
    pub fn open_file(&self, rel: &Path) -> std::io::Result<std::fs::File> {
        self.root.open_file(rel)
    }

    /// True when `rel` is excluded by `.dockerignore`.
    pub fn ignored(&self, rel: &Path) -> bool {
        match &self.matcher {
            Some(m) => m.matches(&rel.to_string_lossy()),
            None => false,
        }
    }

    fn can_skip(&self, rel: &Path) -> bool {
        match &self.matcher {
            Some(m) => m.can_skip_dir(&rel.to_string_lossy()),
            None => false,
        }
    }

    /// Resolves a COPY source pattern (already expanded) to the paths it names, as BuildKit: no
    /// wildcard -> that path (an error naming nearby paths when it is missing or ignored); a wildcard
    /// -> every non-ignored path matching it per path element.
    pub fn select(&self, pattern: &str) -> Result<Vec<Selected>, EngineError> {
        let clean = clean_rel(pattern);
        if !has_wildcard(&clean) {
            let rel = PathBuf::from(&clean);
            return Ok(vec![self.selected(rel, &clean)?]);
        }
        let parts: Vec<&str> = clean.split('/').collect();
        let mut out = Vec::new();
        self.glob(Path::new(""), Path::new(""), &parts, &mut out)?;
        if out.is_empty() {
            return Err(EngineError::msg(format!(
                "lstat {pattern}: no source files were specified (the pattern matched nothing){}",
                self.suggest(&clean)
            )));
        }
        Ok(out)
    }

    /// The source named `rel`, resolved inside the root (BuildKit follows a named source's links,
    /// inside the root): an error naming the missing path when it or what its links lead to does
    /// not exist or is ignored.
    fn selected(&self, rel: PathBuf, named: &str) -> Result<Selected, EngineError> {
        let src = self.resolve(&rel)?;
        let exists = std::fs::symlink_metadata(self.dir.join(&src)).is_ok();
        let ignored = |p: &Path| !p.as_os_str().is_empty() && self.ignored(p);
        if !exists || ignored(&rel) || ignored(&src) {
            let (shown, hint) = if src == rel {
                (named.to_string(), self.suggest(named))
            } else {
                (src.to_string_lossy().into_owned(), String::new())
            };
            return Err(EngineError::msg(format!(
                "failed to compute cache key: \"/{shown}\": not found{hint}"
            )));
        }
        Ok(Selected { rel, src })
    }

    /// Matches `parts` below `base` (as named) whose links resolve to `real` (inside the root).
    fn glob(
        &self,
        base: &Path,
        real: &Path,
        parts: &[&str],
        out: &mut Vec<Selected>,
    ) -> Result<(), EngineError> {
        let Some((first, rest)) = parts.split_first() else {
            return Ok(());
        };
        let mut names: Vec<String> = match self.root.read_dir(real) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => return Ok(()),
        };
        names.sort();
        for n in names {
            if !glob_match(first, &n) {
                continue;
            }
            let rel = base.join(&n);
            if self.ignored(&rel) {
                continue;
            }
            if rest.is_empty() {
                out.push(self.selected(rel, "")?);
                continue;
            }
            let sub = self.resolve(&real.join(&n))?;
            if std::fs::symlink_metadata(self.dir.join(&sub)).is_ok_and(|m| m.is_dir()) {
                self.glob(&rel, &sub, rest, out)?;
            }
        }
        Ok(())
    }

    fn suggest(&self, missing: &str) -> String {
        let name = Path::new(missing)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = Path::new(missing).parent().unwrap_or(Path::new(""));
        let Ok(real) = self.resolve(parent) else {
            return String::new();
        };
        let Ok(rd) = std::fs::read_dir(self.dir.join(real)) else {
            return String::new();
        };
        let mut best: Vec<(usize, String)> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !self.ignored(&parent.join(n)))
            .map(|n| (lighter_dockerfile::edit_distance(&name, &n), n))
            .filter(|(d, n)| *d <= (name.len().max(n.len()) / 3).max(2))
            .collect();
        best.sort();
        match best.first() {
            Some((_, n)) => format!(" (did you mean {}?)", parent.join(n).display()),
            None => String::new(),
        }
    }

    /// Every path under `sel` (itself first), skipping ignored ones, sorted.
    pub fn walk(&self, sel: &Path) -> Vec<PathBuf> {
        self.walk_md(sel).iter().map(|(p, _)| p.clone()).collect()
    }

    /// [`BuildContext::walk`] with each path's metadata. One `statx` per entry, relative to its
    /// directory; the result is kept for the rest of the build.
    pub fn walk_md(&self, sel: &Path) -> Walk {
        let memo = |w: &Walk| {
            self.walks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(sel.to_path_buf(), w.clone());
        };
        if let Some(w) = self
            .walks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sel)
        {
            return w.clone();
        }
        let mut out = Vec::new();
        if let Ok(md) = std::fs::symlink_metadata(self.dir.join(sel)) {
            let is_dir = md.is_dir();
            out.push((sel.to_path_buf(), md));
            if is_dir {
                self.walk_dir(sel, &mut out);
            }
        }
        let w = Walk::new(out);
        memo(&w);
        w
    }

    /// Walks `rel`'s subtree into `out`. At the first level that holds enough subdirectories to walk
    /// (twice the cores; ignored ones that can be skipped do not count), their subtrees are walked on
    /// every core and joined in order (a walk is mostly `statx` calls); above it, the walk descends
    /// looking for such a level. (Splitting at the first level with two directories left a context of
    /// `src/` and an ignored `node_modules/` walking all of `src` on one core.)
    fn walk_dir(&self, rel: &Path, out: &mut Vec<Walked>) {
        let entries = self.list(rel);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let walkable = entries
            .iter()
            .filter(|(c, md, ignored)| md.is_dir() && (!*ignored || !self.can_skip(c)))
            .count();
        if walkable < 2 * threads || threads < 2 {
            for (child, md, ignored) in entries {
                self.visit(child, md, ignored, out, &|c, o| self.walk_dir(c, o));
            }
            return;
        }
        // Subtrees of the directories, walked in parallel, each serially.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut subtrees: Vec<Vec<Walked>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..threads.min(walkable))
                .map(|_| {
                    let (entries, next) = (&entries, &next);
                    sc.spawn(move || {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some((child, md, ignored)) = entries.get(i) else {
                                break;
                            };
                            if md.is_dir() && (!*ignored || !self.can_skip(child)) {
                                let mut sub = Vec::new();
                                self.walk_serial(child, &mut sub);
                                mine.push((i, sub));
                            }
                        }
                        mine
                    })
                })
                .collect();
            let mut all: Vec<(usize, Vec<_>)> = hs
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect();
            all.sort_by_key(|(i, _)| *i);
            let mut by_index: Vec<Vec<_>> = (0..entries.len()).map(|_| Vec::new()).collect();
            for (i, sub) in all {
                by_index[i] = sub;
            }
            by_index
        });
        for (i, (child, md, ignored)) in entries.into_iter().enumerate() {
            let sub = std::mem::take(&mut subtrees[i]);
            self.visit(child, md, ignored, out, &move |_, o| {
                o.extend(sub.iter().cloned())
            });
        }
    }

    fn walk_serial(&self, rel: &Path, out: &mut Vec<Walked>) {
        for (child, md, ignored) in self.list(rel) {
            self.visit(child, md, ignored, out, &|c, o| self.walk_serial(c, o));
        }
    }

    /// One listed entry: kept unless ignored, then its subtree (`sub`) when it is a directory; an
    /// ignored directory may still hold re-included files (`!` patterns).
    fn visit(
        &self,
        child: PathBuf,
        md: std::fs::Metadata,
        ignored: bool,
        out: &mut Vec<Walked>,
        sub: &dyn Fn(&Path, &mut Vec<Walked>),
    ) {
        let is_dir = md.is_dir();
        if ignored {
            if is_dir && !self.can_skip(&child) {
                sub(&child, out);
            }
            return;
        }
        out.push((child.clone(), md));
        if is_dir {
            sub(&child, out);
        }
    }

    /// The entries of one directory, sorted by name, with metadata (an `fstatat` on the open
    /// directory, no path walk from the root) and whether `.dockerignore` excludes them.
    fn list(&self, rel: &Path) -> Vec<(PathBuf, std::fs::Metadata, bool)> {
        // Listed through the root's descriptor: a directory swapped for a link mid-build cannot
        // make the walk list (and copy the names and modes of) a directory outside the context.
        let Ok(rd) = self.root.read_dir(rel) else {
            return Vec::new();
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        entries
            .into_iter()
            .filter_map(|e| {
                let child = rel.join(e.file_name());
                let md = e.metadata().ok()?;
                let ignored = self.ignored(&child);
                Some((child, md, ignored))
            })
            .collect()
    }

    /// The content digest of what `selected` names: for each path (sorted), its relative path, type,
    /// permission bits, link target and content hash; a source named through a link adds its name.
    pub fn digest(&self, selected: &[Selected]) -> Result<String, EngineError> {
        let walks: Vec<Walk> = selected.iter().map(|s| self.walk_md(&s.src)).collect();
        let entries: Vec<&Walked> = walks.iter().flat_map(|w| w.iter()).collect();
        // Content hashes: from the stat cache when the file's stamp is unchanged, else read (on every
        // core: a cold build reads the whole selection).
        let mut hashes: Vec<Option<std::sync::Arc<str>>> = vec![None; entries.len()];
        let mut todo = Vec::new();
        {
            let cache = self.stat_cache.as_ref().map(|c| c.entries());
            for (i, (rel, md)) in entries.iter().enumerate() {
                if !md.is_file() {
                    continue;
                }
                match cache
                    .as_ref()
                    .and_then(|c| c.get(rel.as_os_str()))
                    .filter(|(st, _)| *st == Stamp::of(md))
                {
                    Some((_, hex)) => hashes[i] = Some(hex.clone()),
                    None => todo.push(i),
                }
            }
        }
        if !todo.is_empty() {
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(todo.len());
            let per = todo.len().div_ceil(threads);
            let results: Vec<Result<Vec<(usize, String)>, EngineError>> =
                std::thread::scope(|sc| {
                    let hs: Vec<_> = todo
                        .chunks(per)
                        .map(|part| {
                            let entries = &entries;
                            sc.spawn(move || {
                                let mut buf = vec![0u8; 64 * 1024];
                                part.iter()
                                    .map(|&i| Ok((i, self.hash_file(&entries[i].0, &mut buf)?)))
                                    .collect()
                            })
                        })
                        .collect();
                    hs.into_iter()
                        .map(|h| {
                            h.join().unwrap_or_else(|_| {
                                Err(EngineError::msg("hashing thread panicked"))
                            })
                        })
                        .collect()
                });
            let mut cache = self.stat_cache.as_ref().map(|c| c.entries());
            for r in results {
                for (i, hex) in r? {
                    let hex: std::sync::Arc<str> = hex.into();
                    let (rel, md) = entries[i];
                    if let Some(c) = cache.as_mut() {
                        c.insert(rel.as_os_str().to_owned(), (Stamp::of(md), hex.clone()));
                    }
                    hashes[i] = Some(hex);
                }
            }
            if let Some(c) = &self.stat_cache {
                c.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let mut h = Sha256::new();
        for s in selected.iter().filter(|s| s.rel != s.src) {
            h.update(b"named\0");
            h.update(s.rel.as_os_str().as_encoded_bytes());
            h.update([0]);
        }
        for ((rel, md), hex) in entries.iter().zip(hashes) {
            h.update(rel.to_string_lossy().as_bytes());
            h.update([0]);
            h.update((md.mode() & 0o170_7777).to_le_bytes());
            if md.file_type().is_symlink() {
                h.update(
                    self.read_link(rel)
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default()
                        .as_bytes(),
                );
            } else if let Some(hex) = hex {
                h.update(hex.as_bytes());
            }
            h.update([1]);
        }
        Ok(hex::encode(h.finalize()))
    }

    fn hash_file(&self, rel: &Path, buf: &mut [u8]) -> Result<String, EngineError> {
        let abs = self.dir.join(rel);
        let err = |e: std::io::Error| EngineError::msg(format!("{}: {e}", abs.display()));
        let mut f = self.root.open_file(rel).map_err(err)?;
        let mut fh = Sha256::new();
        loop {
            let n = f.read(buf).map_err(err)?;
            if n == 0 {
                break;
            }
            fh.update(&buf[..n]);
        }
        Ok(hex::encode(fh.finalize()))
    }
}

/// Cleans a source path to a relative, slash-separated form (`..` cannot leave the root).
pub fn clean_rel(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

fn has_wildcard(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

/// Go's `filepath.Match` for one path element: `*`, `?`, `[...]` classes with ranges and `^`/`!`, `\` escapes.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn m(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| m(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && m(&p[1..], &n[1..]),
            Some('[') => {
                let Some(c) = n.first() else { return false };
                let mut i = 1;
                let negate = matches!(p.get(1), Some('^') | Some('!'));
                if negate {
                    i += 1;
                }
                let mut matched = false;
                let mut first = true;
                while i < p.len() && (first || p[i] != ']') {
                    first = false;
                    let lo = if p[i] == '\\' && i + 1 < p.len() {
                        i += 1;
                        p[i]
                    } else {
                        p[i]
                    };
                    let mut hi = lo;
                    if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                        hi = p[i + 2];
                        i += 2;
                    }
                    if lo <= *c && *c <= hi {
                        matched = true;
                    }
                    i += 1;
                }
                if i >= p.len() {
                    return false;
                }
                matched != negate && m(&p[i + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => !n.is_empty() && n[0] == p[1] && m(&p[2..], &n[1..]),
            Some(c) => !n.is_empty() && n[0] == *c && m(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    m(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(glob_match("*.go", "main.go"));
        assert!(!glob_match("*.go", "main.rs"));
        assert!(glob_match("f?o", "foo"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[^a-c]x", "bx"));
        assert_eq!(clean_rel("./a/../b/./c/"), "b/c");
        assert_eq!(clean_rel("../../etc"), "etc");
    }

    #[test]
    fn selection_ignores_and_suggests() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("main.go"), "package main").unwrap();
        std::fs::write(d.path().join("go.mod"), "module x").unwrap();
        std::fs::create_dir(d.path().join("node_modules")).unwrap();
        std::fs::write(d.path().join("node_modules/x"), "x").unwrap();
        std::fs::write(d.path().join(".dockerignore"), "node_modules\n").unwrap();
        let c = BuildContext::open(d.path(), None).unwrap();
        assert_eq!(
            c.select("*.go").unwrap(),
            vec![Selected {
                rel: "main.go".into(),
                src: "main.go".into()
            }]
        );
        let e = c.select("mian.go").unwrap_err().to_string();
        assert!(
            e.contains("not found") && e.contains("did you mean main.go?"),
            "{e}"
        );
        assert!(c.select("node_modules").is_err());
        let all = c.walk(Path::new(""));
        assert!(
            all.iter().all(|p| !p.starts_with("node_modules")),
            "{all:?}"
        );
        let d1 = c.digest(&c.select(".").unwrap()).unwrap();
        std::fs::write(d.path().join("node_modules/x"), "changed").unwrap();
        assert_eq!(
            d1,
            c.digest(&c.select(".").unwrap()).unwrap(),
            "ignored files do not change the key"
        );
        std::fs::write(d.path().join("main.go"), "package main // 2").unwrap();
        assert_ne!(d1, c.digest(&c.select(".").unwrap()).unwrap());
    }

    /// The walk that splits below the root (an ignored `node_modules/` beside one `src/` of many
    /// directories) lists the same paths, in the same order, as a serial walk; ignored directories
    /// with a re-included file are still entered.
    #[test]
    fn parallel_walk_matches_the_serial_walk() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..12 {
            for j in 0..3 {
                let dir = d.path().join(format!("src/d{i:02}/s{j}"));
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("f.txt"), format!("{i} {j}")).unwrap();
                std::fs::write(dir.join("skip.log"), "x").unwrap();
            }
        }
        std::fs::create_dir_all(d.path().join("node_modules/pkg")).unwrap();
        std::fs::write(d.path().join("node_modules/pkg/keep.txt"), "k").unwrap();
        std::fs::write(d.path().join("node_modules/pkg/drop.txt"), "d").unwrap();
        std::fs::write(
            d.path().join(".dockerignore"),
            "node_modules\n!node_modules/pkg/keep.txt\n**/*.log\n",
        )
        .unwrap();
        let c = BuildContext::open(d.path(), None).unwrap();
        let parallel = c.walk(Path::new(""));
        let mut serial = Vec::new();
        BuildContext::open(d.path(), None)
            .unwrap()
            .walk_serial(Path::new(""), &mut serial);
        let serial: Vec<PathBuf> = serial.into_iter().map(|(p, _)| p).collect();
        // `walk` lists the selection itself first.
        assert_eq!(parallel[0], PathBuf::from(""));
        assert_eq!(parallel[1..], serial[..]);
        assert!(
            parallel.contains(&PathBuf::from("node_modules/pkg/keep.txt")),
            "{parallel:?}"
        );
        assert!(!parallel
            .iter()
            .any(|p| p.ends_with("drop.txt") || p.extension().is_some_and(|e| e == "log")));
        // 12 x 3 directories and files, 12 + 1 directories above them, the re-included file.
        assert_eq!(parallel.iter().filter(|p| p.ends_with("f.txt")).count(), 36);
    }

    /// The stat cache written by one build is read by the next: same digest, and a file whose stamp
    /// changed is read again.
    #[test]
    fn stat_cache_round_trips_and_notices_changes() {
        let d = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/x"), "one").unwrap();
        std::fs::write(d.path().join("y"), "two").unwrap();
        let digest = || {
            let c = BuildContext::open_cached(d.path(), None, Some(cache.path())).unwrap();
            let dg = c.digest(&c.select(".").unwrap()).unwrap();
            c.save_cache();
            (dg, c.stat_cache.as_ref().map(|s| s.entries().len()))
        };
        let (first, n) = digest();
        assert_eq!(n, Some(2), "both files hashed and remembered");
        assert_eq!(
            digest(),
            (first.clone(), Some(2)),
            "read back from the saved cache"
        );
        std::fs::write(d.path().join("a/x"), "ONE, longer").unwrap();
        let (changed, _) = digest();
        assert_ne!(changed, first);
    }
}
