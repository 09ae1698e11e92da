//! An image as `analyze`, `history` and `diff` read it: the config and, per layer, its sizes and the
//! headers of its tar (contents are skipped, never held), from wherever the image is: the store
//! ([`ImageView::from_store`]), an archive or layout read as a stream ([`crate::stream`]), or a
//! registry (the binary hands each blob's stream to [`scan_layer`]). Nothing is written anywhere.
//! Layers are read on as many threads as the machine has cores.

use crate::model::Image;
use crate::{format_err, Result};
use lighter_oci::Digest;
use lighter_store::Store;
use serde::Serialize;
use sha2::Digest as _;
use std::io::{BufRead, BufReader, Read};

/// One entry of a layer tar, as analysis needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub path: String,
    pub size: u64,
    pub is_dir: bool,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub link: Option<String>,
    pub mtime: u64,
}

/// One layer: what the image says of it and what its tar holds.
#[derive(Debug, Clone)]
pub struct LayerView {
    pub diff_id: Digest,
    /// The blob's digest (for an uncompressed layer in a docker-archive, the diffID).
    pub digest: Digest,
    /// Bytes of the blob as stored or shipped.
    pub size: u64,
    /// Bytes of the tar.
    pub uncompressed_size: u64,
    pub entries: Vec<Entry>,
}

/// An image read for analysis.
#[derive(Debug, Clone)]
pub struct ImageView {
    /// The image ID (the config's digest).
    pub id: Digest,
    pub config: serde_json::Value,
    pub layers: Vec<LayerView>,
}

impl ImageView {
    /// Reads a store image, every layer from its blob, on all cores.
    pub fn from_store(store: &Store, img: &Image) -> Result<ImageView> {
        let layers = parallel(&img.record.layers, |l| {
            let f = store.content().open(&l.digest)?;
            let entries = read_entries(f, l.digest.as_str())?;
            Ok(LayerView {
                diff_id: l.diff_id.clone(),
                digest: l.digest.clone(),
                size: l.size,
                uncompressed_size: l.uncompressed_size,
                entries,
            })
        })?;
        Ok(ImageView {
            id: img.id.clone(),
            config: img.config.clone(),
            layers,
        })
    }

    /// Uncompressed size (what docker shows as SIZE).
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.uncompressed_size).sum()
    }

    /// Compressed size (what a registry stores and a pull transfers).
    pub fn compressed_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// The config's history entries (a config whose history does not fit the model has none).
    pub fn history(&self) -> Vec<lighter_oci::config::History> {
        self.config
            .get("history")
            .and_then(|h| serde_json::from_value(h.clone()).ok())
            .unwrap_or_default()
    }
}

/// Runs `f` on every item on up to as many threads as there are cores; results in input order,
/// the first error (in input order) wins.
pub fn parallel<T: Sync, U: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<U> + Sync,
) -> Result<Vec<U>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len())
        .max(1);
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<U>>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                use std::sync::atomic::Ordering;
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() || failed.load(Ordering::Relaxed) {
                    break;
                }
                let r = f(&items[i]);
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    // Items are taken in order and a running one is never stopped, so every item before the first
    // failing one ran, and the first error in input order is that item's.
    let mut out = Vec::with_capacity(items.len());
    let mut first_err = None;
    for s in slots {
        match s.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(u)) => out.push(u),
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// What [`scan_layer`] read.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub entries: Vec<Entry>,
    /// sha256 and length of the bytes read (the blob).
    pub digest: Digest,
    pub size: u64,
    /// sha256 and length of the tar inside (the same as the blob's when it is uncompressed).
    pub diff_id: Digest,
    pub uncompressed_size: u64,
    /// What the blob's first bytes show.
    pub compression: lighter_store::compress::Compression,
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
    n: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: sha2::Sha256::new(),
            n: 0,
        }
    }
    /// Reads the rest, then the digest and length of everything.
    fn finish(mut self, what: &str) -> Result<(Digest, u64)> {
        std::io::copy(&mut self, &mut std::io::sink())
            .map_err(|e| format_err(what, format!("read: {e}")))?;
        let hex = hex::encode(self.hasher.finalize());
        let d = format!("sha256:{hex}")
            .parse()
            .map_err(|_| format_err(what, "digest"))?;
        Ok((d, self.n))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

/// Reads a layer blob (plain, gzip or zstd) once: its tar headers, and the digests a caller checks
/// against what the image claims. `what` names the layer in errors.
pub fn scan_layer(r: impl Read, what: &str) -> Result<Scanned> {
    let mut raw = BufReader::with_capacity(1 << 20, Hashing::new(r));
    let head = raw
        .fill_buf()
        .map_err(|e| format_err(what, format!("read: {e}")))?;
    let compression = lighter_store::compress::sniff(head);
    if compression == lighter_store::compress::Compression::None {
        let entries = read_tar(&mut raw, what)?;
        // The rest of the buffer and stream belong to the blob (and, uncompressed, to the tar).
        std::io::copy(&mut raw, &mut std::io::sink())
            .map_err(|e| format_err(what, format!("read: {e}")))?;
        let (digest, size) = raw.into_inner().finish(what)?;
        return Ok(Scanned {
            entries,
            diff_id: digest.clone(),
            uncompressed_size: size,
            digest,
            size,
            compression,
        });
    }
    let (entries, diff_id, uncompressed_size) = {
        let dec = lighter_store::compress::decompress(&mut raw)
            .map_err(|e| format_err(what, format!("decompress: {e}")))?;
        let mut tar = Hashing::new(dec);
        let entries = read_tar(&mut tar, what)?;
        let (d, n) = tar.finish(what)?;
        (entries, d, n)
    };
    std::io::copy(&mut raw, &mut std::io::sink())
        .map_err(|e| format_err(what, format!("read: {e}")))?;
    let (digest, size) = raw.into_inner().finish(what)?;
    Ok(Scanned {
        entries,
        digest,
        size,
        diff_id,
        uncompressed_size,
        compression,
    })
}

/// Reads the tar headers of a layer blob (plain, gzip or zstd) without hashing it.
pub fn read_entries(r: impl Read, what: &str) -> Result<Vec<Entry>> {
    let r = lighter_store::compress::decompress(r)
        .map_err(|e| format_err(what, format!("decompress: {e}")))?;
    read_tar(r, what)
}

/// The entries of a tar stream, through the tar guard (bounded extension headers).
fn read_tar(r: impl Read, what: &str) -> Result<Vec<Entry>> {
    let mut ar = tar::Archive::new(lighter_store::targuard::TarGuard::new(r));
    let mut out = Vec::new();
    for e in ar.entries().map_err(|e| format_err(what, e.to_string()))? {
        let e = e.map_err(|e| format_err(what, format!("corrupt layer: {e}")))?;
        out.extend(entry_of(&e, what)?);
    }
    Ok(out)
}

/// The entries of an uncompressed layer that can be read in place: headers only, seeking over
/// every file's contents (which analysis never looks at).
pub fn read_tar_in_place(r: impl Read + std::io::Seek, what: &str) -> Result<Vec<Entry>> {
    let mut ar = tar::Archive::new(lighter_store::targuard::TarGuard::new(r));
    let mut out = Vec::new();
    for e in ar
        .entries_with_seek()
        .map_err(|e| format_err(what, e.to_string()))?
    {
        let e = e.map_err(|e| format_err(what, format!("corrupt layer: {e}")))?;
        out.extend(entry_of(&e, what)?);
    }
    Ok(out)
}

fn entry_of<R: Read>(e: &tar::Entry<R>, what: &str) -> Result<Option<Entry>> {
    let h = e.header();
    let path = e
        .path()
        .map_err(|err| format_err(what, err.to_string()))?
        .to_string_lossy()
        .trim_start_matches("./")
        .trim_end_matches('/')
        .to_string();
    if path.is_empty() || path == "." {
        return Ok(None);
    }
    let kind = h.entry_type();
    Ok(Some(Entry {
        size: if kind.is_file() { e.size() } else { 0 },
        is_dir: kind.is_dir(),
        mode: h.mode().unwrap_or(0) & 0o7777,
        uid: h.uid().unwrap_or(0),
        gid: h.gid().unwrap_or(0),
        link: e
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.to_string_lossy().into_owned()),
        mtime: h.mtime().unwrap_or(0),
        path,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, p, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn scan_gives_the_blob_and_tar_digests() {
        let t = tar_of(&[("a", b"hello"), ("d/b", b"xy")]);
        let s = scan_layer(&t[..], "plain").unwrap();
        assert_eq!(s.digest, Digest::sha256(&t));
        assert_eq!(s.diff_id, s.digest);
        assert_eq!(
            (s.size, s.uncompressed_size),
            (t.len() as u64, t.len() as u64)
        );
        let names: Vec<_> = s
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.size))
            .collect();
        assert_eq!(names, [("a", 5), ("d/b", 2)]);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &t).unwrap();
        let gz = gz.finish().unwrap();
        let s = scan_layer(&gz[..], "gzip").unwrap();
        assert_eq!(s.digest, Digest::sha256(&gz));
        assert_eq!(s.diff_id, Digest::sha256(&t));
        assert_eq!(s.size, gz.len() as u64);
        assert_eq!(s.uncompressed_size, t.len() as u64);
        assert_eq!(s.entries.len(), 2);
    }

    #[test]
    fn a_corrupt_layer_is_an_error_naming_it() {
        let mut t = tar_of(&[("a", b"hello")]);
        t[148] ^= 0xff; // the header checksum
        let e = scan_layer(&t[..], "layer 3").unwrap_err().to_string();
        assert!(e.starts_with("layer 3: "), "{e}");
    }

    #[test]
    fn parallel_keeps_order_and_reports_the_first_error() {
        let items: Vec<u32> = (0..20).collect();
        let out = parallel(&items, |i| Ok(i * 2)).unwrap();
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let e = parallel(&items, |i| {
            if *i == 7 || *i == 15 {
                Err(format_err(i, "bad"))
            } else {
                Ok(*i)
            }
        })
        .unwrap_err()
        .to_string();
        assert_eq!(e, "7: bad");
    }
}
