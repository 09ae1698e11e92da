//! COPY/ADD planned as a list of layer entries and written straight to a tar, without an overlay mount
//! or a single file created on disk (see `lighter_store::layer::write_entries` for why).
//!
//! The plan follows [`crate::fileop::copy`] rule for rule and reads the stage's current filesystem (a
//! read-only view of its layers) for what already exists. Whatever the plan cannot express exactly as
//! the overlay copy would do it returns `None` for, and the caller falls back to that copy: a
//! destination that goes through a symlink, a type change (a directory replacing a file or the other
//! way), ADD's archive extraction, special files, unreadable sources. `LIGHTER_COPY=overlay` forces the
//! fallback; a test builds the same Dockerfiles both ways and compares the images.

use crate::fileop::{is_archive, CopyRequest, Destination};
use crate::snapshot::Active;
use crate::EngineError;
use lighter_store::layer::{EntryKind, LayerInfo, PlannedEntry};
use lighter_store::Store;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A planned layer: relative paths (sorted, so parents come first) to entries.
pub type Plan = BTreeMap<PathBuf, PlannedEntry>;

/// The layer that copying `req` onto `base` makes (`view` shows `base`'s filesystem): written straight
/// from the plan (when `planned`; the build request's `plan_copies`), or through the overlay copy
/// when the plan cannot express it. `None`: no change.
pub(crate) fn copy_layer(
    store: &Store,
    req: &CopyRequest<'_>,
    base: &[LayerInfo],
    view: &Path,
    planned: bool,
) -> Result<Option<LayerInfo>, EngineError> {
    if planned {
        if let Some(plan) = plan(req, view)? {
            let info = lighter_store::layer::store_entries(
                store,
                req.sources.root(),
                plan.iter().map(|(p, e)| (p.as_path(), e)),
                &lighter_store::layer::WriteOptions::for_store(store),
                lighter_store::compress::Compression::Gzip,
            )
            .map_err(|e| EngineError::msg(format!("commit layer: {e}")))?;
            return Ok(Some(info));
        }
    }
    let mut snap = Active::new(store, base)?;
    let root = snap.mount(store)?.to_path_buf();
    crate::fileop::copy(req, &root)?;
    snap.commit(store, &[])
}

/// Plans the copy of `req` onto the filesystem at `view` (read only). `Ok(None)`: use the overlay copy.
pub fn plan(req: &CopyRequest<'_>, view: &Path) -> Result<Option<Plan>, EngineError> {
    let d = Destination::of(req)?;
    let mut p = Planner {
        view,
        req,
        out: BTreeMap::new(),
        now: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    Ok(p.run(&d).then_some(p.out))
}

struct Planner<'a> {
    view: &'a Path,
    req: &'a CopyRequest<'a>,
    out: Plan,
    now: i64,
}

impl Planner<'_> {
    /// False when the plan cannot express the copy.
    fn run(&mut self, d: &Destination) -> bool {
        let req = self.req;
        for (i, sel) in req.selected.iter().enumerate() {
            // `src` is resolved inside the source root: never a link, never outside it.
            let Ok(md) = std::fs::symlink_metadata(req.sources.dir.join(&sel.src)) else {
                return false;
            };
            let kept = req.kept(i);
            if md.is_dir() {
                let target = match kept.as_ref().filter(|k| !k.as_os_str().is_empty()) {
                    Some(k) => {
                        let t = Path::new(&d.rel).join(k);
                        if !t.parent().is_none_or(|p| self.mkdir_all(p))
                            || !self.entry(&sel.src, &t, md.clone())
                        {
                            return false;
                        }
                        t
                    }
                    None => {
                        if !self.mkdir_all(Path::new(&d.rel)) {
                            return false;
                        }
                        PathBuf::from(&d.rel)
                    }
                };
                for (rel, md) in req.sources.walk_md(&sel.src).iter().skip(1) {
                    let inner = rel.strip_prefix(&sel.src).unwrap_or(rel);
                    if d.excluded(inner) {
                        continue;
                    }
                    let to = target.join(inner);
                    if !self.entry(rel, &to, md.clone()) {
                        return false;
                    }
                }
            } else {
                if d.excluded(&sel.rel) {
                    continue;
                }
                if req.extract_archives && is_archive(req.sources, &sel.src) {
                    return false;
                }
                let name = sel.rel.file_name().map(PathBuf::from).unwrap_or_default();
                let dest = Path::new(&d.rel);
                let existing_dir = match self.kind(dest) {
                    Some(Found::Dir) => true,
                    Some(Found::Other) | None => false,
                    Some(Found::Symlink) => return false,
                };
                let to = if let Some(k) = &kept {
                    dest.join(k)
                } else if d.is_dir || existing_dir {
                    dest.join(&name)
                } else {
                    dest.to_path_buf()
                };
                if let Some(parent) = to.parent() {
                    if !self.mkdir_all(parent) {
                        return false;
                    }
                }
                if !self.entry(&sel.src, &to, md) {
                    return false;
                }
            }
        }
        true
    }

    /// What is at `rel`: in this plan first, then in the view. Only called for paths whose parents
    /// are known to be real directories (planned, or checked in the view).
    fn kind(&self, rel: &Path) -> Option<Found> {
        if rel.as_os_str().is_empty() {
            return Some(Found::Dir);
        }
        if let Some(e) = self.out.get(rel) {
            return Some(match e.kind {
                EntryKind::Dir => Found::Dir,
                EntryKind::Symlink { .. } => Found::Symlink,
                EntryKind::File { .. } => Found::Other,
            });
        }
        let m = std::fs::symlink_metadata(self.view.join(rel)).ok()?;
        Some(if m.is_dir() {
            Found::Dir
        } else if m.file_type().is_symlink() {
            Found::Symlink
        } else {
            Found::Other
        })
    }

    /// `mkdir -p`: new directories are 0755 and owned by the `--chown` owner; existing directories go
    /// into the layer with their metadata (overlayfs copies them up when a child is created).
    fn mkdir_all(&mut self, rel: &Path) -> bool {
        let mut cur = PathBuf::new();
        for comp in rel.components() {
            cur.push(comp);
            if self.out.get(&cur).is_some_and(|e| e.kind == EntryKind::Dir) {
                continue;
            }
            if self.out.contains_key(&cur) {
                return false;
            }
            match std::fs::symlink_metadata(self.view.join(&cur)) {
                Ok(m) if m.is_dir() => {
                    let e = PlannedEntry {
                        kind: EntryKind::Dir,
                        mode: m.mode() & 0o7777,
                        uid: m.uid(),
                        gid: m.gid(),
                        mtime: m.mtime(),
                    };
                    self.out.insert(cur.clone(), e);
                }
                Ok(_) => return false,
                Err(_) => {
                    let (uid, gid) = self.req.owner.unwrap_or((0, 0));
                    let e = PlannedEntry {
                        kind: EntryKind::Dir,
                        mode: 0o755,
                        uid,
                        gid,
                        mtime: self.now,
                    };
                    self.out.insert(cur.clone(), e);
                }
            }
        }
        true
    }

    /// One copied entry at `to` (its parent already planned): `src` relative to the source root
    /// (resolved or walked: no link on the way), `md` its metadata (not following it).
    fn entry(&mut self, src: &Path, to: &Path, md: std::fs::Metadata) -> bool {
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            match self.req.sources.read_link(src) {
                Ok(target) => EntryKind::Symlink { target },
                Err(_) => return false,
            }
        } else if ft.is_file() {
            EntryKind::File {
                src: src.to_path_buf(),
            }
        } else {
            // Devices, fifos and sockets: the overlay copy skips them.
            return false;
        };
        // A type change over what exists (a directory for a file or the other way) is left to the
        // overlay copy, which removes the old entry first.
        match self.kind(to) {
            Some(Found::Dir) if !ft.is_dir() => return false,
            Some(Found::Symlink | Found::Other) if ft.is_dir() => return false,
            _ => {}
        }
        let (uid, gid) = self.req.owner_of(&md);
        let mode = if ft.is_symlink() {
            0o777
        } else {
            match &self.req.chmod {
                Some(c) => c.apply(md.mode(), ft.is_dir()),
                None => md.mode() & 0o7777,
            }
        };
        let e = PlannedEntry {
            kind,
            mode,
            uid,
            gid,
            mtime: md.mtime(),
        };
        self.out.insert(to.to_path_buf(), e);
        true
    }
}

enum Found {
    Dir,
    Symlink,
    Other,
}
