//! The layer codec: a directory (or an overlay upperdir) -> a deterministic tar with OCI whiteouts,
//! compressed and stored in one pass; and a layer tar -> a directory, every path kept inside the root.

mod apply;
mod changes;
mod entries;
mod write;

pub use apply::{
    apply, apply_within, resolve_in_root, resolve_parent, set_times, ApplyFormat, ApplyStats,
};
pub use changes::{copy_tree, diff_to_upper, materialize};
pub use entries::{write_entries, EntryKind, PlannedEntry};
pub use write::{write_tar, DirFormat, WriteOptions};

use crate::compress::{ChunkSource, Compression, Compressor, GZIP_LEVEL};
use crate::{io_err, Result, Store, StoreError};
use lighter_oci::{Digest, Sha256Writer};
use std::io::Write;
use std::path::Path;

/// A stored layer: its uncompressed digest (diffID), the compressed blob and its media type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerInfo {
    pub diff_id: Digest,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// Uncompressed size.
    pub uncompressed_size: u64,
}

/// Writes the tar of `dir` through compression into the content store, computing the diffID and the
/// blob digest in the same single pass, and records the layer in the metadata DB.
pub fn store_dir(
    store: &Store,
    dir: &Path,
    format: DirFormat,
    opts: &WriteOptions,
    compression: Compression,
) -> Result<LayerInfo> {
    store_tar(store, dir, compression, |out| {
        write_tar(dir, format, opts, out)
    })
}

/// Writes planned entries (see [`write_entries`]) as a stored layer, like [`store_dir`] does for a
/// directory: one pass computes the diffID and the blob digest.
pub fn store_entries<'a>(
    store: &Store,
    sources: &crate::fsroot::Root,
    entries: impl IntoIterator<Item = (&'a Path, &'a PlannedEntry)>,
    opts: &WriteOptions,
    compression: Compression,
) -> Result<LayerInfo> {
    store_tar(store, Path::new("planned layer"), compression, |out| {
        write_entries(sources, entries, opts, out)
    })
}

fn store_tar(
    store: &Store,
    what: &Path,
    compression: Compression,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<LayerInfo> {
    let ingest = store.content().ingest()?;
    let compressed = Sha256Writer::new(ingest);
    let source = (compression == Compression::Gzip).then(|| StoredChunks::load(store));
    let threads = store.settings().gzip_threads;
    let compressor = Compressor::with_source(compressed, compression, source.flatten(), threads)
        .map_err(io_err("compress layer of", what))?;
    let mut diff = Sha256Writer::new(compressor);
    write(&mut diff)?;
    let (compressor, diff_id, uncompressed_size) = diff.finish();
    let (compressed, chunks) = compressor
        .finish_with_records()
        .map_err(io_err("compress layer of", what))?;
    let (ingest, digest, _) = compressed.finish();
    let (digest2, size) = ingest.commit(Some(&digest))?;
    debug_assert_eq!(digest, digest2);
    let info = LayerInfo {
        diff_id,
        digest,
        size,
        media_type: compression.oci_media_type().to_string(),
        uncompressed_size,
    };
    record_layer(store, &info)?;
    if !chunks.is_empty() {
        // The index is an accelerator: failing to write it never fails the layer.
        let _ = store.meta().update(|tx| {
            for c in &chunks {
                let key = format!("gz{GZIP_LEVEL}:{}", hex::encode(c.hash));
                let value = format!("{} {} {}", info.digest, c.offset, c.compressed_len);
                tx.put(crate::Table::Chunks, &key, &value)?;
            }
            Ok(())
        });
    }
    Ok(info)
}

/// The chunk index of the store, read once per layer written: chunk sha256 -> (blob file, offset,
/// length) of its gzip member.
struct StoredChunks {
    members: std::collections::HashMap<[u8; 32], (std::path::PathBuf, u64, u64)>,
}

impl StoredChunks {
    fn load(store: &Store) -> Option<std::sync::Arc<dyn ChunkSource>> {
        let prefix = format!("gz{GZIP_LEVEL}:");
        let rows = store
            .meta()
            .list_prefix(crate::Table::Chunks, &prefix)
            .ok()?;
        let mut members = std::collections::HashMap::with_capacity(rows.len());
        for (k, v) in rows {
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(&k[prefix.len()..], &mut hash).is_err() {
                continue;
            }
            let f: Vec<&str> = v.split(' ').collect();
            let (Some(d), Some(off), Some(len)) = (
                f.first().and_then(|d| d.parse::<Digest>().ok()),
                f.get(1).and_then(|o| o.parse().ok()),
                f.get(2).and_then(|l| l.parse().ok()),
            ) else {
                continue;
            };
            members.insert(hash, (store.content().path(&d), off, len));
        }
        if members.is_empty() {
            return None;
        }
        Some(std::sync::Arc::new(StoredChunks { members }))
    }
}

impl ChunkSource for StoredChunks {
    fn member(&self, hash: &[u8; 32]) -> Option<Vec<u8>> {
        use std::io::{Read, Seek};
        let (path, off, len) = self.members.get(hash)?;
        let mut f = std::fs::File::open(path).ok()?;
        f.seek(std::io::SeekFrom::Start(*off)).ok()?;
        let mut buf = vec![0u8; *len as usize];
        f.read_exact(&mut buf).ok()?;
        Some(buf)
    }
}

/// Stores an existing (possibly compressed) layer blob stream: verifies `expected` blob digest when
/// given, computes the diffID by decompressing, and records the layer.
pub fn store_blob(
    store: &Store,
    mut r: impl std::io::Read,
    expected: Option<&Digest>,
    media_type: &str,
) -> Result<LayerInfo> {
    let mut ingest = store.content().ingest()?;
    std::io::copy(&mut r, &mut ingest).map_err(io_err("read layer for", "ingest"))?;
    let (digest, size) = ingest.commit(expected)?;
    let (diff_id, uncompressed_size) = diff_id_of(&store.content().path(&digest), &digest)?;
    let info = LayerInfo {
        diff_id,
        digest,
        size,
        media_type: media_type.to_string(),
        uncompressed_size,
    };
    record_layer(store, &info)?;
    Ok(info)
}

/// Stores a layer blob stream and unpacks it in the same pass, as `docker pull` does: every byte read
/// goes into the content store (verified against `expected`) while the decompressed stream is hashed
/// for the diffID and applied (overlay form) into a store temp directory, which becomes the layer's
/// unpacked directory once the blob is committed. A later build then finds the layer unpacked and a
/// blob is read once, not three times (ingest, diffID, unpack).
///
/// A tar that unpacking refuses (a hostile path, an unsupported entry) still stores the blob: the
/// error comes back when a build needs the layer unpacked, from [`unpacked`]. A failure of `r` is an
/// `Io` error with op `read layer for`, so a caller can retry a broken download.
pub fn store_blob_unpacking(
    store: &Store,
    r: impl std::io::Read,
    expected: &Digest,
    media_type: &str,
    want_diff_id: Option<&Digest>,
) -> Result<LayerInfo> {
    let mut ingest = store.content().ingest()?;
    let tmp = store.temp_dir("unpack-")?;
    let fs = tmp.path().join("fs");
    std::fs::create_dir(&fs).map_err(io_err("create", &fs))?;
    let mut tee = Tee {
        inner: r,
        out: &mut ingest,
        failed: None,
    };
    let read_err = io_err("read layer for", "ingest");
    let (diff_id, uncompressed_size, applied) = {
        let dec = crate::compress::decompress(&mut tee).map_err(read_err)?;
        let mut h = Sha256Reader {
            inner: dec,
            hasher: Sha256Writer::new(std::io::sink()),
        };
        let applied = apply(&mut h, &fs, ApplyFormat::Overlay).is_ok();
        std::io::copy(&mut h, &mut std::io::sink()).map_err(io_err("read layer for", "ingest"))?;
        let (_, d, n) = h.hasher.finish();
        (d, n, applied)
    };
    // Bytes after the end of the compressed stream belong to the blob too.
    std::io::copy(&mut tee, &mut std::io::sink()).map_err(io_err("read layer for", "ingest"))?;
    // A layer whose content is not the diffID its image or cache names is not stored at all.
    if let Some(want) = want_diff_id.filter(|w| **w != diff_id) {
        return Err(StoreError::Invalid(format!(
            "layer {expected}: the digest of its content (diffID) is {diff_id}, not {want}"
        )));
    }
    let (digest, size) = ingest.commit(Some(expected))?;
    let info = LayerInfo {
        diff_id,
        digest,
        size,
        media_type: media_type.to_string(),
        uncompressed_size,
    };
    record_layer(store, &info)?;
    // The blob is stored: a failure to keep the unpacked copy only means a build unpacks it later.
    if applied {
        let _ = fill_layer_dir(store, &info.diff_id, |dst| {
            std::fs::rename(&fs, dst).map_err(io_err("rename into", dst))
        });
    }
    Ok(info)
}

/// Copies what it reads from `inner` into `out`; a failed read stays failed, with the first
/// error's kind and text (so the caller reports the real cause, not the unpacker's view of it).
struct Tee<'a, R> {
    inner: R,
    out: &'a mut crate::content::Ingest,
    failed: Option<(std::io::ErrorKind, String)>,
}

impl<R: std::io::Read> std::io::Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some((kind, text)) = &self.failed {
            return Err(std::io::Error::new(*kind, text.clone()));
        }
        let r = match self.inner.read(buf) {
            Ok(n) => self.out.write_all(&buf[..n]).map(|_| n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Err(e),
            Err(e) => Err(e),
        };
        if let Err(e) = &r {
            self.failed = Some((e.kind(), e.to_string()));
        }
        r
    }
}

/// Layer `l` with its blob in compression `to`: the same layer when it is already, else a new blob
/// written into the content store (decompressed and compressed again in one pass, the diffID checked).
/// The layer record of the diffID is left as it is.
pub fn recompress(store: &Store, l: &LayerInfo, to: Compression) -> Result<LayerInfo> {
    let now = if l.media_type.ends_with("+gzip") {
        Compression::Gzip
    } else if l.media_type.ends_with("+zstd") {
        Compression::Zstd
    } else {
        Compression::None
    };
    if now == to {
        return Ok(l.clone());
    }
    store.ensure_blob(&l.digest)?;
    let path = store.content().path(&l.digest);
    let f = store.content().open(&l.digest)?;
    let dec = crate::compress::decompress(f).map_err(io_err("decompress", &path))?;
    let mut h = Sha256Reader {
        inner: dec,
        hasher: Sha256Writer::new(std::io::sink()),
    };
    let ingest = store.content().ingest()?;
    let threads = store.settings().gzip_threads;
    let mut out =
        Compressor::with_source(ingest, to, None, threads).map_err(io_err("compress", &path))?;
    std::io::copy(&mut h, &mut out).map_err(io_err("recompress", &path))?;
    let ingest = out.finish().map_err(io_err("compress", &path))?;
    let (_, diff_id, uncompressed_size) = h.hasher.finish();
    if diff_id != l.diff_id {
        return Err(StoreError::DigestMismatch {
            expected: l.diff_id.clone(),
            actual: diff_id,
            size: uncompressed_size,
        });
    }
    let (digest, size) = ingest.commit(None)?;
    Ok(LayerInfo {
        diff_id,
        digest,
        size,
        media_type: to.oci_media_type().to_string(),
        uncompressed_size,
    })
}

/// The diffID and uncompressed size of the layer blob at `path` (gzip, zstd or plain).
fn diff_id_of(path: &Path, digest: &Digest) -> Result<(Digest, u64)> {
    let f = std::fs::File::open(path).map_err(io_err("open", path))?;
    let mut dec = crate::compress::decompress(f).map_err(io_err("decompress", path))?;
    let mut h = Sha256Writer::new(std::io::sink());
    std::io::copy(&mut dec, &mut h).map_err(|e| {
        StoreError::Invalid(if crate::compress::is_bomb(&e) {
            format!("layer {digest}: {e}")
        } else {
            format!("layer {digest} is not a readable (gzip, zstd or plain) tar stream: {e}")
        })
    })?;
    let (_, d, n) = h.finish();
    Ok((d, n))
}

/// Stores a layer blob that this process extracted and hashed itself (`digest`, `size`) by moving the
/// file into the content store (see [`crate::Content::adopt`]). An uncompressed layer's diffID is its
/// digest, so nothing is read again; a compressed one is decompressed once for its diffID. A diffID
/// other than `want` is an error and nothing is stored.
pub fn adopt_blob(
    store: &Store,
    path: &Path,
    digest: &Digest,
    size: u64,
    want: &Digest,
) -> Result<LayerInfo> {
    // Old docker archives share one layer file between images: it may already be in place.
    let src = if store.content().exists(digest) {
        store.content().path(digest)
    } else {
        path.to_path_buf()
    };
    let mut f = std::fs::File::open(&src).map_err(io_err("open", &src))?;
    let mut head = [0u8; 4];
    let n = std::io::Read::read(&mut f, &mut head).map_err(io_err("read", &src))?;
    let kind = crate::compress::sniff(&head[..n]);
    let (diff_id, uncompressed_size) = if kind == Compression::None {
        (digest.clone(), size)
    } else {
        diff_id_of(&src, digest)?
    };
    if diff_id != *want {
        return Err(StoreError::Invalid(format!(
            "layer content has diffID {diff_id} but the config says {want}"
        )));
    }
    store.content().adopt(&src, digest)?;
    let info = LayerInfo {
        diff_id,
        digest: digest.clone(),
        size,
        media_type: kind.oci_media_type().to_string(),
        uncompressed_size,
    };
    record_layer(store, &info)?;
    Ok(info)
}

fn record_layer(store: &Store, info: &LayerInfo) -> Result<()> {
    let json = serde_json::to_string(info).map_err(|e| StoreError::Invalid(e.to_string()))?;
    store
        .meta()
        .put(crate::Table::Layers, info.diff_id.as_str(), &json)
}

/// The layer record for a diffID, if this store has one.
pub fn lookup(store: &Store, diff_id: &Digest) -> Result<Option<LayerInfo>> {
    match store.meta().get(crate::Table::Layers, diff_id.as_str())? {
        Some(j) => Ok(serde_json::from_str(&j).ok()),
        None => Ok(None),
    }
}

/// Keeps `upper` (an overlay upperdir whose diff was just stored as layer `diff_id`) as that layer's
/// unpacked directory, so a later step that needs the layer does not unpack it again from the blob.
/// The upperdir is the layer in overlay form already: whiteouts as 0/0 devices, opaque directories
/// by xattr. `upper` must be on the store's filesystem (a store temp dir). Does nothing when the layer
/// is unpacked already.
pub fn keep_unpacked(store: &Store, diff_id: &Digest, upper: &Path) -> Result<()> {
    fill_layer_dir(store, diff_id, |fs| {
        std::fs::rename(upper, fs).map_err(io_err("rename into", fs))?;
        // The layer's root as unpacking makes it (a tar has no entry for `/`).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(fs, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err("chmod", fs))?;
        std::os::unix::fs::chown(fs, Some(0), Some(0)).map_err(io_err("chown", fs))
    })
    .map(|_| ())
}

/// The unpacked directory `<root>/layers/<hex>/fs` of a layer, made by `fill` (given the path, which
/// does not exist yet) unless it is complete already. Concurrent callers wait for each other through
/// a lock file; `.complete` is written only after `fill` succeeded.
fn fill_layer_dir(
    store: &Store,
    diff_id: &Digest,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<std::path::PathBuf> {
    let dir = store.layer_dir(diff_id);
    let fs = dir.join("fs");
    if dir.join(".complete").exists() {
        return Ok(fs);
    }
    std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    let lock_path = dir.join(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err("open", &lock_path))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on the descriptor `lock` owns.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io_err("lock", &lock_path)(std::io::Error::last_os_error()));
    }
    if dir.join(".complete").exists() {
        return Ok(fs);
    }
    if fs.exists() {
        std::fs::remove_dir_all(&fs).map_err(io_err("remove", &fs))?;
    }
    fill(&fs)?;
    std::fs::write(dir.join(".complete"), b"").map_err(io_err("write", dir.join(".complete")))?;
    Ok(fs)
}

/// Ensures the layer with this diffID is unpacked (overlay format) under `<root>/layers/<hex>`, unpacking
/// it from `blob` once; concurrent callers wait for each other through a lock file.
pub fn unpacked(store: &Store, diff_id: &Digest, blob: &Digest) -> Result<std::path::PathBuf> {
    if !store.layer_dir(diff_id).join(".complete").exists() {
        store.ensure_blob(blob)?;
    }
    fill_layer_dir(store, diff_id, |fs| {
        std::fs::create_dir_all(fs).map_err(io_err("create", fs))?;
        let f = store.content().open(blob)?;
        let len = f.metadata().map_or(0, |m| m.len());
        let r = crate::compress::decompress(f)
            .map_err(io_err("decompress", store.content().path(blob)))?;
        let mut h = Sha256Reader {
            inner: r,
            hasher: Sha256Writer::new(std::io::sink()),
        };
        let max = crate::compress::expansion_limit(len);
        apply_within(&mut h, fs, ApplyFormat::Overlay, max)?;
        std::io::copy(&mut h, &mut std::io::sink())
            .map_err(io_err("read", store.content().path(blob)))?;
        let (_, got, _) = h.hasher.finish();
        if got != *diff_id {
            let _ = std::fs::remove_dir_all(fs);
            return Err(StoreError::DigestMismatch {
                expected: diff_id.clone(),
                actual: got,
                size: 0,
            });
        }
        Ok(())
    })
}

struct Sha256Reader<R> {
    inner: R,
    hasher: Sha256Writer<std::io::Sink>,
}

impl<R: std::io::Read> std::io::Read for Sha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.write_all(&buf[..n])?;
        Ok(n)
    }
}
