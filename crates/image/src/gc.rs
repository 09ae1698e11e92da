//! Garbage collection: every blob and unpacked layer not reachable from an image record (images are
//! kept by their refs, and dangling images until `rmi`) is removed, with the leftovers of processes
//! that died. It runs with the store held exclusively, so no other process is using it; blobs newer
//! than the start of the collection are kept all the same.

use crate::{ImageRecord, Result};
use lighter_store::{Store, Table};
use std::collections::HashSet;
use std::time::SystemTime;

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub blobs: usize,
    pub layer_dirs: usize,
    pub cache_entries: usize,
    pub bytes: u64,
}

/// Removes unreferenced blobs and unpacked layers; with `cache`, also drops the build cache index
/// (entries whose layers are gone would be useless) and cache mounts.
///
/// It holds the store exclusively ([`Store::exclusive`]), so no build is half-way between looking a
/// blob up and referencing it; `waiting` hears the pids of the processes it waits for.
pub fn prune(store: &Store, cache: bool, waiting: &mut dyn FnMut(&[u32])) -> Result<PruneReport> {
    let excl = store.exclusive(lighter_store::session::EXCLUSIVE_WAIT, waiting)?;
    let start = SystemTime::now();
    let mut keep: HashSet<String> = HashSet::new();
    let mut keep_layers: HashSet<String> = HashSet::new();
    for (_, v) in store.meta().list(Table::Images)? {
        if let Ok(rec) = serde_json::from_str::<ImageRecord>(&v) {
            keep.insert(rec.manifest.hex().to_string());
            keep.insert(rec.config.hex().to_string());
            for l in rec.layers {
                keep.insert(l.digest.hex().to_string());
                keep_layers.insert(l.diff_id.hex().to_string());
            }
        }
    }
    let mut report = PruneReport::default();
    if cache {
        report.cache_entries = store.meta().list(Table::Cache)?.len();
        store.meta().update(|tx| {
            for (k, _) in tx.list(Table::Cache)? {
                tx.delete(Table::Cache, &k)?;
            }
            for (k, _) in tx.list(Table::CacheInputs)? {
                tx.delete(Table::CacheInputs, &k)?;
            }
            // ETag validators of ADD downloads: without the cache they only cost a second request.
            for (k, _) in tx.list(Table::HttpCache)? {
                tx.delete(Table::HttpCache, &k)?;
            }
            Ok(())
        })?;
        let mounts = store.root().join("cache-mounts");
        if let Ok(rd) = std::fs::read_dir(&mounts) {
            for e in rd.flatten() {
                report.bytes += lighter_store::tree_size(&e.path());
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    } else {
        // Layers the build cache still points at stay.
        for (_, v) in store.meta().list(Table::Cache)? {
            if let Ok(j) = serde_json::from_str::<serde_json::Value>(&v) {
                if let Some(d) = j.pointer("/layer/digest").and_then(|d| d.as_str()) {
                    keep.insert(d.trim_start_matches("sha256:").to_string());
                }
                if let Some(d) = j.pointer("/layer/diff_id").and_then(|d| d.as_str()) {
                    keep_layers.insert(d.trim_start_matches("sha256:").to_string());
                }
            }
        }
    }
    let mut doomed: HashSet<lighter_oci::Digest> = HashSet::new();
    for d in store.content().list()? {
        if keep.contains(d.hex()) {
            continue;
        }
        let p = store.content().path(&d);
        let young = std::fs::metadata(&p)
            .and_then(|m| m.modified())
            .map(|m| m > start)
            .unwrap_or(true);
        if !young {
            doomed.insert(d);
        }
    }
    // Layer records of doomed blobs go first, in one transaction: a kill between the two steps
    // leaves blobs without records (garbage the next prune removes), never records without blobs.
    store.meta().update(|tx| {
        for (k, v) in tx.list(Table::Layers)? {
            let gone = serde_json::from_str::<lighter_store::layer::LayerInfo>(&v)
                .map(|l| doomed.contains(&l.digest))
                .unwrap_or(false);
            if gone {
                tx.delete(Table::Layers, &k)?;
            }
        }
        Ok(())
    })?;
    for d in &doomed {
        report.bytes += store.content().delete(d)?;
        report.blobs += 1;
    }
    let layers = store.root().join("layers");
    if let Ok(rd) = std::fs::read_dir(&layers) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep_layers.contains(&name) {
                report.bytes += lighter_store::tree_size(&e.path());
                let _ = std::fs::remove_dir_all(e.path());
                report.layer_dirs += 1;
            }
        }
    }
    if cache {
        store.meta().update(|tx| {
            for (k, _) in tx.list(Table::Layers)? {
                if !keep_layers.contains(k.trim_start_matches("sha256:")) {
                    tx.delete(Table::Layers, &k)?;
                }
            }
            Ok(())
        })?;
    }
    // Chunk index entries whose blob is gone (the writer checks members anyway; this keeps it small).
    store.meta().update(|tx| {
        for (k, v) in tx.list(Table::Chunks)? {
            let gone = v
                .split(' ')
                .next()
                .and_then(|d| d.parse::<lighter_oci::Digest>().ok())
                .is_none_or(|d| !store.content().exists(&d));
            if gone {
                tx.delete(Table::Chunks, &k)?;
            }
        }
        Ok(())
    })?;
    // Leftovers of processes that died mid-write (a killed build or `load`): no other process
    // uses the store now, so whatever is in tmp/ and ingest/ that is not ours is theirs, and an
    // unpacked layer without its `.complete` mark was being filled when they died.
    report.bytes += excl.sweep_all(store.root());
    if let Ok(rd) = std::fs::read_dir(&layers) {
        for e in rd.flatten() {
            if !e.path().join(".complete").exists() {
                report.bytes += lighter_store::tree_size(&e.path());
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(report)
}
