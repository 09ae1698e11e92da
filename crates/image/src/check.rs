//! `lighter system check`: is the store sound? Every blob hashes to its name; every name points at
//! an image record; every image's manifest, config and layer blobs exist and agree with each other
//! and with the record; layer records, unpacked layers, the build cache index, the gzip chunk index
//! and repository digests point at data that is there. With `repair`, what is broken or unreachable
//! is removed and nothing that is sound: a corrupt blob, an image that lost data (with its names),
//! a name or record pointing at nothing.
//!
//! Findings are of two kinds. **Damage** makes something fail (a blob that is not what its name
//! says, an image that cannot be read or exported). **Stale** entries are harmless leftovers (a cache
//! record whose layer was pruned answers as a miss; a half-unpacked layer is redone on its next use;
//! a killed process's temporary files): reported, removed by `repair`, and the store is still sound.
//!
//! The check holds the store exclusively, so it sees no build half-way and its findings are exact.

use crate::{ImageRecord, Result};
use lighter_oci::Digest;
use lighter_store::{Store, Table};
use std::collections::{HashMap, HashSet};
use std::io::Read;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Stale,
    Damage,
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// What it concerns: `blob sha256:…`, `image sha256:… (name)`, `ref name`, `layer dir …`.
    pub subject: String,
    pub problem: String,
    /// `repair` removed it.
    pub repaired: bool,
}

/// What a check saw and found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub blobs: usize,
    pub images: usize,
    pub refs: usize,
    pub layer_dirs: usize,
    pub cache_entries: usize,
    pub findings: Vec<Finding>,
}

impl CheckReport {
    pub fn damaged(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Damage)
    }

    /// Damage that is still there (not repaired).
    pub fn unrepaired_damage(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Damage && !f.repaired)
    }
}

struct Checker<'a> {
    store: &'a Store,
    repair: bool,
    report: CheckReport,
}

impl Checker<'_> {
    fn find(&mut self, severity: Severity, subject: String, problem: String, repaired: bool) {
        self.report.findings.push(Finding {
            severity,
            subject,
            problem,
            repaired: repaired && self.repair,
        });
    }
}

/// Checks the store; with `repair`, removes what is broken or unreachable. `waiting` hears the pids
/// of the processes the exclusive hold waits for.
pub fn check(store: &Store, repair: bool, waiting: &mut dyn FnMut(&[u32])) -> Result<CheckReport> {
    let excl = store.exclusive(lighter_store::session::EXCLUSIVE_WAIT, waiting)?;
    let mut c = Checker {
        store,
        repair,
        report: CheckReport::default(),
    };
    let good_blobs = check_blobs(&mut c)?;
    let images = check_images(&mut c, &good_blobs)?;
    check_refs(&mut c, &images)?;
    check_layer_records(&mut c, &good_blobs)?;
    check_layer_dirs(&mut c)?;
    check_indexes(&mut c, &good_blobs)?;
    check_leftovers(&mut c, &excl);
    Ok(c.report)
}

/// Hashes every blob (in parallel); returns the sound ones.
fn check_blobs(c: &mut Checker<'_>) -> Result<HashSet<Digest>> {
    let dir = c.store.root().join("blobs/sha256");
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir)
        .map_err(|e| lighter_store::StoreError::Io {
            op: "read",
            path: dir.clone(),
            source: e,
        })?
        .flatten()
    {
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    c.report.blobs = names.len();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<(String, std::result::Result<(), String>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(n) = names.get(i) else { break };
                        out.push((n.clone(), verify_blob(&dir.join(n), n)));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let mut good = HashSet::new();
    for (name, r) in results {
        match r {
            Ok(()) => {
                good.insert(Digest::from_hex(&name).expect("verified name"));
            }
            Err(problem) => {
                let removed = c.repair && std::fs::remove_file(dir.join(&name)).is_ok();
                c.find(Severity::Damage, format!("blob {name}"), problem, removed);
            }
        }
    }
    Ok(good)
}

fn verify_blob(path: &std::path::Path, name: &str) -> std::result::Result<(), String> {
    let Ok(want) = Digest::from_hex(name) else {
        return Err("not a sha256 digest: a stray file among the blobs".into());
    };
    let mut f = std::fs::File::open(path).map_err(|e| format!("unreadable: {e}"))?;
    let mut h = lighter_oci::Sha256Writer::new(std::io::sink());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("unreadable: {e}"))?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut h, &buf[..n]).map_err(|e| e.to_string())?;
    }
    let (_, got, size) = h.finish();
    if got != want {
        return Err(format!("content hashes to {got} ({size} bytes): corrupt"));
    }
    Ok(())
}

/// Every image record against its blobs; returns the ids of the sound images. Broken images are
/// removed by repair with their names and repository digests.
fn check_images(c: &mut Checker<'_>, good: &HashSet<Digest>) -> Result<HashSet<String>> {
    let records = c.store.meta().list(Table::Images)?;
    c.report.images = records.len();
    let refs = c.store.meta().list(Table::Refs)?;
    let mut names: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, id) in &refs {
        names.entry(id.as_str()).or_default().push(name.as_str());
    }
    let mut sound = HashSet::new();
    let mut broken = Vec::new();
    for (id, json) in &records {
        match image_problem(c.store, id, json, good) {
            None => {
                sound.insert(id.clone());
            }
            Some(problem) => {
                let named = names.get(id.as_str()).map(|n| n.join(", "));
                let subject = match named {
                    Some(n) => format!("image {id} ({n})"),
                    None => format!("image {id}"),
                };
                broken.push((id.clone(), subject, problem));
            }
        }
    }
    for (id, subject, problem) in broken {
        let removed = c.repair && remove_image(c.store, &id).is_ok();
        c.find(Severity::Damage, subject, problem, removed);
    }
    Ok(sound)
}

fn image_problem(store: &Store, id: &str, json: &str, good: &HashSet<Digest>) -> Option<String> {
    let rec: ImageRecord = match serde_json::from_str(json) {
        Ok(r) => r,
        Err(e) => return Some(format!("unreadable image record: {e}")),
    };
    if rec.config.as_str() != id {
        return Some(format!("record names config {} instead", rec.config));
    }
    for (what, d) in [("manifest", &rec.manifest), ("config", &rec.config)] {
        if !good.contains(d) {
            return Some(format!("its {what} blob {d} is missing or corrupt"));
        }
    }
    for l in &rec.layers {
        if !good.contains(&l.digest) {
            return Some(format!(
                "its layer blob {} (diffID {}) is missing or corrupt",
                l.digest, l.diff_id
            ));
        }
    }
    let manifest: serde_json::Value = match store
        .content()
        .read(&rec.manifest)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(m) => m,
        None => return Some(format!("manifest {} is not JSON", rec.manifest)),
    };
    if manifest.pointer("/config/digest").and_then(|d| d.as_str()) != Some(rec.config.as_str()) {
        return Some(format!(
            "manifest {} does not name config {}",
            rec.manifest, rec.config
        ));
    }
    let in_manifest: Vec<&str> = manifest["layers"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l["digest"].as_str()).collect())
        .unwrap_or_default();
    let in_record: Vec<&str> = rec.layers.iter().map(|l| l.digest.as_str()).collect();
    if in_manifest != in_record {
        return Some("manifest layers differ from the image record's".into());
    }
    let config: serde_json::Value = match store
        .content()
        .read(&rec.config)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(v) => v,
        None => return Some(format!("config {} is not JSON", rec.config)),
    };
    let diff_ids: Vec<&str> = config
        .pointer("/rootfs/diff_ids")
        .and_then(|d| d.as_array())
        .map(|a| a.iter().filter_map(|d| d.as_str()).collect())
        .unwrap_or_default();
    let recorded: Vec<&str> = rec.layers.iter().map(|l| l.diff_id.as_str()).collect();
    if diff_ids != recorded {
        return Some("config diff_ids differ from the image record's layers".into());
    }
    None
}

/// Removes an image record with every name and repository digest pointing at it.
fn remove_image(store: &Store, id: &str) -> Result<()> {
    store.meta().update(|tx| {
        for table in [Table::Refs, Table::RepoDigests] {
            for (k, v) in tx.list(table)? {
                if v == id {
                    tx.delete(table, &k)?;
                }
            }
        }
        tx.delete(Table::Images, id)?;
        Ok(())
    })?;
    Ok(())
}

/// Names and repository digests that point at no (sound) image.
fn check_refs(c: &mut Checker<'_>, images: &HashSet<String>) -> Result<()> {
    let all_records: HashSet<String> = c
        .store
        .meta()
        .list(Table::Images)?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for (table, what) in [(Table::Refs, "name"), (Table::RepoDigests, "repo digest")] {
        let entries = c.store.meta().list(table)?;
        if table == Table::Refs {
            c.report.refs = entries.len();
        }
        for (k, id) in entries {
            // A name of a broken image went with it (or is reported with it).
            if images.contains(&id) || all_records.contains(&id) {
                continue;
            }
            let removed = c.repair && c.store.meta().delete(table, &k).is_ok();
            c.find(
                Severity::Damage,
                format!("{what} {k}"),
                format!("points at image {id}, which is not in the store"),
                removed,
            );
        }
    }
    Ok(())
}

/// Layer records (diffID -> blob) whose blob is gone would let a build reference a missing blob.
fn check_layer_records(c: &mut Checker<'_>, good: &HashSet<Digest>) -> Result<()> {
    for (k, v) in c.store.meta().list(Table::Layers)? {
        let blob = serde_json::from_str::<lighter_store::layer::LayerInfo>(&v)
            .ok()
            .map(|l| l.digest);
        // Readers of a layer record check that its blob is there, so a record whose blob is gone
        // only misses; one whose blob is corrupt would hand out bad data.
        let problem = match &blob {
            None => Some((Severity::Damage, "unreadable layer record".to_string())),
            Some(d) if good.contains(d) => None,
            Some(d) if c.store.content().exists(d) => {
                Some((Severity::Damage, format!("its blob {d} is corrupt")))
            }
            Some(d) => Some((Severity::Stale, format!("its blob {d} is missing"))),
        };
        if let Some((severity, problem)) = problem {
            let removed = c.repair && c.store.meta().delete(Table::Layers, &k).is_ok();
            c.find(severity, format!("layer record {k}"), problem, removed);
        }
    }
    Ok(())
}

/// Unpacked layers: complete ones have their tree; an incomplete one whose filler died is stale.
fn check_layer_dirs(c: &mut Checker<'_>) -> Result<()> {
    let dir = c.store.root().join("layers");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        c.report.layer_dirs += 1;
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let (severity, problem) = if Digest::from_hex(&name).is_err() {
            (Severity::Damage, "not a diffID: a stray entry".to_string())
        } else if !p.join(".complete").exists() {
            (
                Severity::Stale,
                "unpacking was interrupted; it is redone on next use".to_string(),
            )
        } else if !p.join("fs").is_dir() {
            (
                Severity::Damage,
                "marked complete but has no tree".to_string(),
            )
        } else {
            continue;
        };
        let removed = c.repair && std::fs::remove_dir_all(&p).is_ok();
        c.find(severity, format!("unpacked layer {name}"), problem, removed);
    }
    Ok(())
}

/// The build cache and gzip chunk indexes: entries whose data is gone answer as misses (stale).
fn check_indexes(c: &mut Checker<'_>, good: &HashSet<Digest>) -> Result<()> {
    let cache = c.store.meta().list(Table::Cache)?;
    c.report.cache_entries = cache.len();
    let mut stale = Vec::new();
    for (k, v) in &cache {
        let Ok(j) = serde_json::from_str::<serde_json::Value>(v) else {
            stale.push((
                Table::Cache,
                k.clone(),
                "unreadable cache record".to_string(),
            ));
            continue;
        };
        if let Some(d) = j.pointer("/layer/digest").and_then(|d| d.as_str()) {
            if !d.parse::<Digest>().is_ok_and(|d| good.contains(&d)) {
                stale.push((
                    Table::Cache,
                    k.clone(),
                    format!("its layer {d} is no longer in the store"),
                ));
            }
        }
    }
    for (k, v) in c.store.meta().list(Table::Chunks)? {
        let mut f = v.split(' ');
        let blob = f.next().and_then(|d| d.parse::<Digest>().ok());
        let (off, len) = (
            f.next().and_then(|n| n.parse::<u64>().ok()),
            f.next().and_then(|n| n.parse::<u64>().ok()),
        );
        let fits = match (&blob, off, len) {
            (Some(b), Some(o), Some(l)) if good.contains(b) => c
                .store
                .content()
                .size(b)
                .is_ok_and(|size| o.checked_add(l).is_some_and(|end| end <= size)),
            _ => false,
        };
        if !fits {
            stale.push((
                Table::Chunks,
                k,
                format!("points at {v}, which is not a member of a blob here"),
            ));
        }
    }
    for (table, k, problem) in stale {
        let removed = c.repair && c.store.meta().delete(table, &k).is_ok();
        let what = if table == Table::Cache {
            "cache record"
        } else {
            "chunk index entry"
        };
        c.find(Severity::Stale, format!("{what} {k}"), problem, removed);
    }
    Ok(())
}

/// Other processes' temporary files (none is running: the store is held exclusively).
fn check_leftovers(c: &mut Checker<'_>, excl: &lighter_store::session::Exclusive) {
    let own = c.store.session().dir().to_path_buf();
    let mut left = Vec::new();
    for sub in ["tmp", "ingest"] {
        for e in std::fs::read_dir(c.store.root().join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.path() != own {
                left.push(e.path());
            }
        }
    }
    if left.is_empty() {
        return;
    }
    let bytes: u64 = left.iter().map(|p| lighter_store::tree_size(p)).sum();
    if c.repair {
        excl.sweep_all(c.store.root());
    }
    let remaining = left.iter().filter(|p| p.exists()).count();
    c.find(
        Severity::Stale,
        format!("{} temporary entries ({bytes} bytes)", left.len()),
        "left by processes that ended mid-write".into(),
        remaining == 0,
    );
}
