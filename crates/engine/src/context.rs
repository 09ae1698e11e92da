//! The build context, read in place: `.dockerignore` filtering (`<Dockerfile>.dockerignore` next to the
//! Dockerfile wins over `<context>/.dockerignore`), source selection with wildcards, and a content
//! digest of exactly the files a COPY/ADD selects (paths, types, modes, link targets, file contents),
//! never of their mtimes.

use crate::EngineError;
use lighter_dockerfile::dockerignore::{parse_dockerignore, Matcher};
use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A context directory with its ignore rules.
pub struct BuildContext {
    pub dir: PathBuf,
    matcher: Option<Matcher>,
    stat_cache: Option<StatCache>,
}

/// `(dev, inode, size, mtime, ctime, mode)` -> content sha256 of context files, persisted per context
/// directory, so a file that has not changed since the last build is not read again.
struct StatCache {
    path: PathBuf,
    entries: std::sync::Mutex<std::collections::HashMap<PathBuf, (Stamp, String)>>,
    dirty: std::sync::atomic::AtomicBool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp([i64; 8]);

impl Stamp {
    fn of(md: &std::fs::Metadata) -> Stamp {
        Stamp([md.dev() as i64, md.ino() as i64, md.size() as i64, md.mtime(), md.mtime_nsec(), md.ctime(), md.ctime_nsec(), md.mode() as i64])
    }
}

const STAT_CACHE_VERSION: &str = "lighter-stat-cache v1";

impl StatCache {
    fn load(path: PathBuf) -> StatCache {
        let mut entries = std::collections::HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut lines = text.lines();
            if lines.next() == Some(STAT_CACHE_VERSION) {
                for l in lines {
                    let f: Vec<&str> = l.split('\t').collect();
                    if f.len() != 10 {
                        continue;
                    }
                    let mut st = [0i64; 8];
                    let ok = f[1..9].iter().enumerate().all(|(i, v)| v.parse().map(|n| st[i] = n).is_ok());
                    if ok {
                        entries.insert(PathBuf::from(f[0]), (Stamp(st), f[9].to_string()));
                    }
                }
            }
        }
        StatCache { path, entries: std::sync::Mutex::new(entries), dirty: std::sync::atomic::AtomicBool::new(false) }
    }

    fn save(&self) {
        if !self.dirty.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
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

/// One selected source: its path relative to the source root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub rel: PathBuf,
}

impl BuildContext {
    /// Opens `dir` like [`BuildContext::open`], keeping content hashes between builds in a stat cache
    /// under `cache_dir`.
    pub fn open_cached(dir: &Path, dockerfile: Option<&Path>, cache_dir: Option<&Path>) -> Result<BuildContext, EngineError> {
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
        Ok(BuildContext {
            dir: dir.to_path_buf(),
            matcher,
            stat_cache: None,
        })
    }

    /// A source root without ignore rules (another stage's or image's filesystem).
    pub fn plain(dir: &Path) -> BuildContext {
        BuildContext {
            dir: dir.to_path_buf(),
            matcher: None,
            stat_cache: None,
        }
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
            let abs = self.dir.join(&rel);
            let exists = std::fs::symlink_metadata(&abs).is_ok();
            if !exists || (!rel.as_os_str().is_empty() && self.ignored(&rel)) {
                return Err(EngineError::msg(format!(
                    "failed to compute cache key: \"/{}\": not found{}",
                    clean,
                    self.suggest(&clean)
                )));
            }
            return Ok(vec![Selected { rel }]);
        }
        let parts: Vec<&str> = clean.split('/').collect();
        let mut out = Vec::new();
        self.glob(Path::new(""), &parts, &mut out)?;
        if out.is_empty() {
            return Err(EngineError::msg(format!(
                "lstat {pattern}: no source files were specified (the pattern matched nothing){}",
                self.suggest(&clean)
            )));
        }
        Ok(out)
    }

    fn glob(
        &self,
        base: &Path,
        parts: &[&str],
        out: &mut Vec<Selected>,
    ) -> Result<(), EngineError> {
        let Some((first, rest)) = parts.split_first() else {
            return Ok(());
        };
        let dir = self.dir.join(base);
        let mut names: Vec<String> = match std::fs::read_dir(&dir) {
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
                out.push(Selected { rel });
            } else if self.dir.join(&rel).is_dir() {
                self.glob(&rel, rest, out)?;
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
        let Ok(rd) = std::fs::read_dir(self.dir.join(parent)) else {
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
        let mut out = Vec::new();
        let abs = self.dir.join(sel);
        let Ok(md) = std::fs::symlink_metadata(&abs) else {
            return out;
        };
        out.push(sel.to_path_buf());
        if md.is_dir() {
            self.walk_dir(sel, &mut out);
        }
        out
    }

    fn walk_dir(&self, rel: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(self.dir.join(rel)) else {
            return;
        };
        let mut names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for n in names {
            let child = rel.join(&n);
            let is_dir = std::fs::symlink_metadata(self.dir.join(&child))
                .map(|m| m.is_dir())
                .unwrap_or(false);
            if self.ignored(&child) {
                // An ignored directory may still hold re-included files (`!` patterns).
                if is_dir && !self.can_skip(&child) {
                    self.walk_dir(&child, out);
                }
                continue;
            }
            out.push(child.clone());
            if is_dir {
                self.walk_dir(&child, out);
            }
        }
    }

    /// The content digest of what `selected` names: for each path (sorted), its relative path, type,
    /// permission bits, link target and content hash.
    pub fn digest(&self, selected: &[Selected]) -> Result<String, EngineError> {
        let mut h = Sha256::new();
        for s in selected {
            for rel in self.walk(&s.rel) {
                let abs = self.dir.join(&rel);
                let md = std::fs::symlink_metadata(&abs)
                    .map_err(|e| EngineError::msg(format!("{}: {e}", abs.display())))?;
                h.update(rel.to_string_lossy().as_bytes());
                h.update([0]);
                h.update((md.mode() & 0o170_7777).to_le_bytes());
                if md.file_type().is_symlink() {
                    h.update(
                        std::fs::read_link(&abs)
                            .map(|t| t.to_string_lossy().into_owned())
                            .unwrap_or_default()
                            .as_bytes(),
                    );
                } else if md.is_file() {
                    let stamp = Stamp::of(&md);
                    if let Some(c) = &self.stat_cache {
                        let hit = c.entries.lock().unwrap_or_else(|e| e.into_inner()).get(&rel).filter(|(s, _)| *s == stamp).map(|(_, h)| h.clone());
                        if let Some(hex) = hit {
                            h.update(hex.as_bytes());
                            h.update([1]);
                            continue;
                        }
                    }
                    let mut f = std::fs::File::open(&abs)
                        .map_err(|e| EngineError::msg(format!("{}: {e}", abs.display())))?;
                    let mut fh = Sha256::new();
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = f
                            .read(&mut buf)
                            .map_err(|e| EngineError::msg(format!("{}: {e}", abs.display())))?;
                        if n == 0 {
                            break;
                        }
                        fh.update(&buf[..n]);
                    }
                    let hex = hex::encode(fh.finalize());
                    h.update(hex.as_bytes());
                    if let Some(c) = &self.stat_cache {
                        c.entries.lock().unwrap_or_else(|e| e.into_inner()).insert(rel.clone(), (stamp, hex));
                        c.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                h.update([1]);
            }
        }
        Ok(hex::encode(h.finalize()))
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
                rel: "main.go".into()
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
}
