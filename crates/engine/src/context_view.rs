//! The build context as a RUN step's bind mount sees it: BuildKit mounts the context it was sent,
//! which `.dockerignore` has already filtered, so `RUN --mount=type=bind,target=/src` must not see
//! an ignored `.env` or `node_modules`. When the mounted part of the context holds ignored entries,
//! its kept entries are copied into a directory of the step's own (links stay links, files are read
//! through the context's root); otherwise the context is bound in place.

use crate::context::BuildContext;
use crate::EngineError;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

impl BuildContext {
    /// True when `.dockerignore` excludes anything below `src` (a path resolved in the context).
    /// A directory that cannot be listed counts as holding something ignored (the filtered copy is
    /// the safe answer).
    pub fn ignores_under(&self, src: &Path) -> bool {
        fn walk(c: &BuildContext, rel: &Path) -> bool {
            let Ok(rd) = c.root().read_dir(rel) else {
                return true;
            };
            rd.into_iter().any(|e| {
                let Ok(e) = e else { return true };
                let child = rel.join(e.file_name());
                c.ignored(&child) || (e.file_type().is_ok_and(|t| t.is_dir()) && walk(c, &child))
            })
        }
        (!src.as_os_str().is_empty() && self.ignored(src)) || walk(self, src)
    }

    /// Copies what the context keeps below `src` into the empty directory `dest`: directories,
    /// links as links, regular files (modes, owners and mtimes kept); ignored entries left out.
    pub fn copy_kept(&self, src: &Path, dest: &Path) -> Result<(), EngineError> {
        let err = |p: &Path, e: std::io::Error| {
            EngineError::msg(format!("context bind mount: {}: {e}", p.display()))
        };
        let mut dirs = Vec::new();
        for (rel, md) in self.walk_md(src).iter() {
            let inner = rel.strip_prefix(src).unwrap_or(rel);
            let to = dest.join(inner);
            let ft = md.file_type();
            // A file re-included (`!pattern`) below an ignored directory: that directory is not in
            // the walk, so it is made here (0755, as the context transfer makes it).
            if let Some(parent) = to.parent().filter(|p| !p.exists()) {
                std::fs::create_dir_all(parent).map_err(|e| err(parent, e))?;
            }
            if ft.is_dir() {
                if !inner.as_os_str().is_empty() {
                    std::fs::create_dir(&to).map_err(|e| err(&to, e))?;
                }
                dirs.push((to, md.clone()));
                continue;
            }
            if ft.is_symlink() {
                let target = self.read_link(rel).map_err(|e| err(rel, e))?;
                std::os::unix::fs::symlink(target, &to).map_err(|e| err(&to, e))?;
            } else if ft.is_file() {
                let mut from = self.open_file(rel).map_err(|e| err(rel, e))?;
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&to)
                    .map_err(|e| err(&to, e))?;
                std::io::copy(&mut from, &mut out).map_err(|e| err(&to, e))?;
                finish(&to, md);
            }
        }
        // Directories last, so adding their entries does not change their times afterwards.
        for (d, md) in dirs.iter().rev() {
            finish(d, md);
        }
        Ok(())
    }
}

/// The source's mode, owner and mtime on a copy (best effort, as the context copy's).
fn finish(p: &Path, md: &std::fs::Metadata) {
    let _ = std::os::unix::fs::lchown(p, Some(md.uid()), Some(md.gid()));
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(md.mode() & 0o7777));
    let _ = lighter_store::layer::set_times(p, md.mtime(), md.mtime_nsec());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_entries_stay_out_of_the_view() {
        let d = tempfile::tempdir().unwrap();
        for (p, c) in [
            ("src/a.txt", "a"),
            ("src/.env", "SECRET"),
            ("node_modules/m/i.js", "m"),
            ("keep.txt", "k"),
        ] {
            let f = d.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, c).unwrap();
        }
        std::os::unix::fs::symlink("a.txt", d.path().join("src/link")).unwrap();
        std::fs::write(
            d.path().join(".dockerignore"),
            "node_modules\n!node_modules/m/i.js\n**/.env\n",
        )
        .unwrap();
        let c = BuildContext::open(d.path(), None).unwrap();
        assert!(c.ignores_under(Path::new("")));
        assert!(c.ignores_under(Path::new("src")));
        let plain = BuildContext::open(&d.path().join("node_modules/m"), None).unwrap();
        assert!(!plain.ignores_under(Path::new("")));
        let out = tempfile::tempdir().unwrap();
        c.copy_kept(Path::new(""), out.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.path().join("src/a.txt")).unwrap(),
            "a"
        );
        assert_eq!(
            std::fs::read_link(out.path().join("src/link")).unwrap(),
            Path::new("a.txt")
        );
        assert!(out.path().join("keep.txt").is_file());
        assert!(!out.path().join("src/.env").exists());
        // Re-included below an ignored directory: there, with its parents.
        assert_eq!(
            std::fs::read_to_string(out.path().join("node_modules/m/i.js")).unwrap(),
            "m"
        );
    }
}
