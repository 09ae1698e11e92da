//! Where an image's bytes go, as plain data (renderers live in the binary): per-layer changes, dive's
//! efficiency score and wasted bytes computed exactly as dive does, our reclaimable bytes (only the
//! copies the final image does not show), top offenders, and image-to-image diffs, all over an [`ImageView`] (each layer's tar headers,
//! read once from wherever the image is).

use crate::Result;
use lighter_store::Store;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

pub use crate::view::Entry;
use crate::view::ImageView;

/// What one layer does.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LayerReport {
    pub index: usize,
    pub diff_id: String,
    pub created_by: String,
    /// `base` for layers of the base image, `build` for layers the Dockerfile made.
    pub origin: String,
    pub size: u64,
    pub compressed_size: u64,
    pub added: u64,
    pub added_bytes: u64,
    pub modified: u64,
    pub modified_bytes: u64,
    pub removed: u64,
    pub removed_bytes: u64,
}

/// A path found in more than one layer.
#[derive(Debug, Clone, Serialize)]
pub struct Offender {
    pub path: String,
    pub copies: usize,
    /// dive's cumulative size (all copies).
    pub cumulative: u64,
    /// Bytes of copies the final image does not show.
    pub reclaimable: u64,
}

/// The whole analysis.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Analysis {
    pub image: String,
    pub size: u64,
    pub compressed_size: u64,
    pub layers: Vec<LayerReport>,
    /// dive's efficiency: sum over paths of the smallest copy / sum of all copies.
    pub efficiency: f64,
    /// dive's wasted bytes: the cumulative size of every path found in two or more layers.
    pub wasted_bytes: u64,
    /// dive's user wasted percent: wasted bytes / bytes of all layers but the first.
    pub user_wasted_percent: f64,
    /// Bytes that deleting or not duplicating would save: copies invisible in the final image.
    pub reclaimable_bytes: u64,
    pub offenders: Vec<Offender>,
    /// dive's file references: every path found in two or more layers (whiteouts included), with
    /// its count and cumulative size, largest first (dive's `fileReference`).
    pub references: Vec<FileReference>,
}

/// One of dive's file references.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileReference {
    pub path: String,
    pub count: usize,
    pub size: u64,
}

/// Reads the tar headers of a stored layer.
pub fn layer_entries(store: &Store, digest: &lighter_oci::Digest) -> Result<Vec<Entry>> {
    let f = store.content().open(digest)?;
    crate::view::read_entries(f, digest.as_str())
}

fn whiteout_target(path: &str) -> Option<(String, bool)> {
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (d.to_string(), n),
        None => (String::new(), path),
    };
    if name == ".wh..wh..opq" {
        return Some((dir, true));
    }
    name.strip_prefix(".wh.").map(|n| {
        (
            if dir.is_empty() {
                n.to_string()
            } else {
                format!("{dir}/{n}")
            },
            false,
        )
    })
}

fn under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// Analyses an image in the store.
pub fn analyze(img: &ImageView, name: &str, top: usize) -> Analysis {
    let history: Vec<lighter_oci::config::History> = img
        .history()
        .into_iter()
        .filter(|h| !h.empty_layer)
        .collect();
    // The final tree so far: path -> (layer, size).
    let mut live: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    // dive's per-path data: (cumulative, min, copies).
    let mut eff: HashMap<String, (u64, u64, usize)> = HashMap::new();
    // Every copy of every leaf path: (layer, size) for reclaimable bytes.
    let mut copies: HashMap<String, Vec<(usize, u64)>> = HashMap::new();
    let mut layers = Vec::new();
    for (i, l) in img.layers.iter().enumerate() {
        let entries = &l.entries;
        let h = history.get(i);
        let created_by = h.and_then(|h| h.created_by.clone()).unwrap_or_default();
        let own = h.and_then(|h| h.comment.as_deref()) == Some("buildkit.dockerfile.v0")
            || created_by.ends_with("# buildkit");
        let mut rep = LayerReport {
            index: i,
            diff_id: l.diff_id.to_string(),
            created_by,
            origin: if own { "build".into() } else { "base".into() },
            size: l.uncompressed_size,
            compressed_size: l.size,
            ..LayerReport::default()
        };
        // Leaves of this layer: entries that are not directories holding other entries of this layer.
        let dirs_with_children: std::collections::HashSet<&str> = entries
            .iter()
            .filter_map(|e| e.path.rsplit_once('/').map(|p| p.0))
            .collect();
        for e in entries {
            if let Some((target, opaque)) = whiteout_target(&e.path) {
                let removed: Vec<String> = live
                    .range(target.clone()..)
                    .take_while(|(p, _)| *p == &target || under(p, &target))
                    .filter(|(p, _)| !opaque || under(p, &target))
                    .map(|(p, _)| p.clone())
                    .collect();
                let (mut bytes, mut below) = (0, 0);
                for p in &removed {
                    if let Some((_, s)) = live.remove(p) {
                        bytes += s;
                        if under(p, &target) {
                            below += s;
                        }
                    }
                }
                if opaque {
                    rep.removed += removed.len() as u64;
                    rep.removed_bytes += bytes;
                } else {
                    rep.removed += 1;
                    rep.removed_bytes += bytes;
                    // dive (efficiency.go) sizes a whiteout by what it hides only when the hidden
                    // node was a directory; a whiteout of a file counts 0 bytes.
                    let d = eff.entry(target.clone()).or_insert((0, u64::MAX, 0));
                    d.0 += below;
                    d.1 = d.1.min(below);
                    d.2 += 1;
                }
                continue;
            }
            let existed = live.contains_key(&e.path);
            if !e.is_dir {
                if existed {
                    rep.modified += 1;
                    rep.modified_bytes += e.size;
                } else {
                    rep.added += 1;
                    rep.added_bytes += e.size;
                }
            }
            live.insert(e.path.clone(), (i, e.size));
            let leaf = !e.is_dir || !dirs_with_children.contains(e.path.as_str());
            if leaf {
                let d = eff.entry(e.path.clone()).or_insert((0, u64::MAX, 0));
                d.0 += e.size;
                d.1 = d.1.min(e.size);
                d.2 += 1;
                if !e.is_dir {
                    copies.entry(e.path.clone()).or_default().push((i, e.size));
                }
            }
        }
        layers.push(rep);
    }
    let (mut min_sum, mut cum_sum, mut wasted) = (0u64, 0u64, 0u64);
    let mut references = Vec::new();
    for (path, (cum, min, n)) in &eff {
        min_sum += if *min == u64::MAX { 0 } else { *min };
        cum_sum += cum;
        if *n >= 2 {
            wasted += cum;
            references.push(FileReference {
                path: path.clone(),
                count: *n,
                size: *cum,
            });
        }
    }
    references.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    let efficiency = if cum_sum == 0 {
        1.0
    } else {
        min_sum as f64 / cum_sum as f64
    };
    let mut offenders = Vec::new();
    let mut reclaimable = 0;
    for (path, cs) in &copies {
        let kept = live.get(path).map(|(layer, size)| (*layer, *size));
        let total: u64 = cs.iter().map(|c| c.1).sum();
        let visible = kept
            .filter(|(layer, _)| cs.iter().any(|c| c.0 == *layer))
            .map(|k| k.1)
            .unwrap_or(0);
        let r = total - visible;
        reclaimable += r;
        if cs.len() >= 2 || (r > 0 && kept.is_none()) {
            offenders.push(Offender {
                path: path.clone(),
                copies: cs.len(),
                cumulative: total,
                reclaimable: r,
            });
        }
    }
    offenders.sort_by(|a, b| {
        b.reclaimable
            .cmp(&a.reclaimable)
            .then(b.cumulative.cmp(&a.cumulative))
            .then(a.path.cmp(&b.path))
    });
    offenders.truncate(top);
    let user_size: u64 = layers.iter().skip(1).map(|l| l.size).sum();
    Analysis {
        image: name.to_string(),
        size: img.size(),
        compressed_size: img.compressed_size(),
        layers,
        efficiency,
        wasted_bytes: wasted,
        user_wasted_percent: if user_size == 0 {
            0.0
        } else {
            wasted as f64 / user_size as f64
        },
        reclaimable_bytes: reclaimable,
        offenders,
        references,
    }
}

/// The final file tree of an image: path -> entry (whiteouts applied).
pub fn flatten(img: &ImageView) -> BTreeMap<String, Entry> {
    let mut live: BTreeMap<String, Entry> = BTreeMap::new();
    for l in &img.layers {
        for e in &l.entries {
            if let Some((target, opaque)) = whiteout_target(&e.path) {
                let gone: Vec<String> = live
                    .range(target.clone()..)
                    .take_while(|(p, _)| *p == &target || under(p, &target))
                    .filter(|(p, _)| !opaque || under(p, &target))
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in gone {
                    live.remove(&p);
                }
                continue;
            }
            live.insert(e.path.clone(), e.clone());
        }
    }
    live
}

/// Bytes each layer adds, by directory `depth` levels deep (files directly under `/` count as `/`):
/// the data of the HTML report's treemap.
pub fn layer_dir_sizes(img: &ImageView, depth: usize) -> Vec<BTreeMap<String, u64>> {
    let mut out = Vec::new();
    for l in &img.layers {
        let mut dirs: BTreeMap<String, u64> = BTreeMap::new();
        for e in &l.entries {
            if e.is_dir || e.size == 0 {
                continue;
            }
            let parts: Vec<&str> = e.path.split('/').collect();
            let dir = if parts.len() <= 1 {
                "/".to_string()
            } else {
                format!("/{}", parts[..(parts.len() - 1).min(depth)].join("/"))
            };
            *dirs.entry(dir).or_default() += e.size;
        }
        out.push(dirs);
    }
    out
}

/// How a layer changes a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ChangeKind {
    Added,
    Modified,
    Removed,
}

/// One path a layer adds, modifies or removes (a removed directory lists everything it hid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub path: String,
    pub size: u64,
    pub is_dir: bool,
    pub kind: ChangeKind,
}

/// Every layer's changes, sorted by path: what the interactive explorer shows.
pub fn layer_changes(img: &ImageView) -> Vec<Vec<Change>> {
    let mut live: BTreeMap<String, (u64, bool)> = BTreeMap::new();
    let mut out = Vec::new();
    for l in &img.layers {
        let mut changes = Vec::new();
        for e in &l.entries {
            if let Some((target, opaque)) = whiteout_target(&e.path) {
                let gone: Vec<String> = live
                    .range(target.clone()..)
                    .take_while(|(p, _)| *p == &target || under(p, &target))
                    .filter(|(p, _)| !opaque || under(p, &target))
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in gone {
                    if let Some((size, is_dir)) = live.remove(&p) {
                        changes.push(Change {
                            path: p,
                            size,
                            is_dir,
                            kind: ChangeKind::Removed,
                        });
                    }
                }
                continue;
            }
            let kind = if live.contains_key(&e.path) {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            };
            live.insert(e.path.clone(), (e.size, e.is_dir));
            changes.push(Change {
                path: e.path.clone(),
                size: e.size,
                is_dir: e.is_dir,
                kind,
            });
        }
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        out.push(changes);
    }
    out
}

/// A file-level comparison of two images.
#[derive(Debug, Clone, Serialize)]
pub struct ImageDiff {
    pub added: Vec<(String, u64)>,
    pub removed: Vec<(String, u64)>,
    pub changed: Vec<(String, i64)>,
    /// Size delta per directory (two levels deep), largest magnitude first.
    pub dirs: Vec<(String, i64)>,
    pub size_a: u64,
    pub size_b: u64,
    pub shared_layers: usize,
    pub layers_a: usize,
    pub layers_b: usize,
    /// Config fields that differ: (field, value in A, value in B).
    pub config: Vec<(String, serde_json::Value, serde_json::Value)>,
}

/// Compares image A with image B.
pub fn diff(a: &ImageView, b: &ImageView, top: usize) -> ImageDiff {
    let fa = flatten(a);
    let fb = flatten(b);
    let mut d = ImageDiff {
        added: vec![],
        removed: vec![],
        changed: vec![],
        dirs: vec![],
        size_a: a.size(),
        size_b: b.size(),
        shared_layers: 0,
        layers_a: a.layers.len(),
        layers_b: b.layers.len(),
        config: vec![],
    };
    let mut dirs: BTreeMap<String, i64> = BTreeMap::new();
    // The bucket of a path: its first two directory levels (`usr/local` for `usr/local/go/bin/go`).
    let dir_of = |p: &str| -> String {
        let parts: Vec<&str> = p.split('/').collect();
        if parts.len() == 1 {
            "/".to_string()
        } else {
            parts[..2.min(parts.len() - 1)].join("/")
        }
    };
    for (p, e) in &fb {
        match fa.get(p) {
            None => {
                if !e.is_dir {
                    d.added.push((p.clone(), e.size));
                }
                *dirs.entry(dir_of(p)).or_default() += e.size as i64;
            }
            Some(o)
                if !e.is_dir
                    && (o.size != e.size
                        || o.mode != e.mode
                        || o.link != e.link
                        || o.uid != e.uid
                        || o.gid != e.gid
                        || o.mtime != e.mtime) =>
            {
                d.changed.push((p.clone(), e.size as i64 - o.size as i64));
                *dirs.entry(dir_of(p)).or_default() += e.size as i64 - o.size as i64;
            }
            _ => {}
        }
    }
    for (p, e) in &fa {
        if !fb.contains_key(p) {
            if !e.is_dir {
                d.removed.push((p.clone(), e.size));
            }
            *dirs.entry(dir_of(p)).or_default() -= e.size as i64;
        }
    }
    let mut dv: Vec<(String, i64)> = dirs.into_iter().filter(|(_, v)| *v != 0).collect();
    dv.sort_by(|x, y| {
        y.1.unsigned_abs()
            .cmp(&x.1.unsigned_abs())
            .then(x.0.cmp(&y.0))
    });
    dv.truncate(top);
    d.dirs = dv;
    let la: std::collections::HashSet<_> = a.layers.iter().map(|l| &l.diff_id).collect();
    d.shared_layers = b.layers.iter().filter(|l| la.contains(&l.diff_id)).count();
    let (ca, cb) = (
        a.config.get("config").cloned().unwrap_or_default(),
        b.config.get("config").cloned().unwrap_or_default(),
    );
    for k in [
        "Env",
        "Cmd",
        "Entrypoint",
        "User",
        "WorkingDir",
        "ExposedPorts",
        "Volumes",
        "Labels",
        "StopSignal",
        "Healthcheck",
    ] {
        let (x, y) = (
            ca.get(k).cloned().unwrap_or(serde_json::Value::Null),
            cb.get(k).cloned().unwrap_or(serde_json::Value::Null),
        );
        if x != y {
            d.config.push((k.to_string(), x, y));
        }
    }
    d
}
