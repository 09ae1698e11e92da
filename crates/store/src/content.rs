//! Content-addressed blobs: ingest (hash while writing a temp file) -> verify -> fsync -> atomic rename
//! into `blobs/sha256/<hex>`. A reader never sees a partial blob; a mismatch leaves nothing behind.

use crate::{io_err, Result, StoreError};
use lighter_oci::{Digest, Sha256Writer};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The blob store of a [`crate::Store`].
#[derive(Debug, Clone)]
pub struct Content {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl Content {
    /// The blobs of the store at `root`, ingested through `ingest` (this process's session).
    pub(crate) fn new(root: &Path, ingest: PathBuf) -> Content {
        Content {
            blobs: root.join("blobs/sha256"),
            ingest,
        }
    }

    /// Where this process writes blobs before they are verified and renamed into place.
    pub fn ingest_dir(&self) -> &Path {
        &self.ingest
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    pub fn size(&self, d: &Digest) -> Result<u64> {
        let p = self.path(d);
        std::fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|_| StoreError::NotFound(d.clone()))
    }

    pub fn open(&self, d: &Digest) -> Result<File> {
        File::open(self.path(d)).map_err(|_| StoreError::NotFound(d.clone()))
    }

    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.path(d);
        std::fs::read(&p).map_err(|_| StoreError::NotFound(d.clone()))
    }

    /// Starts writing a new blob.
    pub fn ingest(&self) -> Result<Ingest> {
        let tmp = tempfile::Builder::new()
            .prefix("ingest-")
            .tempfile_in(&self.ingest)
            .map_err(io_err("create ingest file in", &self.ingest))?;
        Ok(Ingest {
            writer: Sha256Writer::new(BufWriter::with_capacity(1 << 20, tmp)),
            blobs: self.blobs.clone(),
        })
    }

    /// Stores `bytes` and returns their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::sha256(bytes);
        if self.exists(&d) {
            return Ok(d);
        }
        let mut w = self.ingest()?;
        w.write_all(bytes).map_err(io_err("write", &self.ingest))?;
        w.commit(Some(&d)).map(|(d, _)| d)
    }

    /// Moves a file this process wrote and hashed itself (in a temporary directory of this store, so
    /// on the same filesystem) into place as blob `digest`: fsync, atomic rename. No copy, no second
    /// read. When the blob already exists the file is left where it is.
    pub fn adopt(&self, path: &Path, digest: &Digest) -> Result<()> {
        let dest = self.path(digest);
        if dest.exists() {
            return Ok(());
        }
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(io_err("fsync", path))?;
        std::fs::rename(path, &dest).map_err(io_err("rename into", &dest))?;
        sync_dir(&self.blobs);
        Ok(())
    }

    /// All blob digests.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.blobs).map_err(io_err("read", &self.blobs))? {
            let e = e.map_err(io_err("read", &self.blobs))?;
            if let Some(name) = e.file_name().to_str() {
                if let Ok(d) = Digest::from_hex(name) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Deletes a blob (garbage collection only).
    pub fn delete(&self, d: &Digest) -> Result<u64> {
        let p = self.path(d);
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(size),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(StoreError::Io {
                op: "remove",
                path: p,
                source: e,
            }),
        }
    }
}

/// A blob being written. Dropping it without `commit` removes the temporary file.
pub struct Ingest {
    writer: Sha256Writer<BufWriter<tempfile::NamedTempFile>>,
    blobs: PathBuf,
}

impl Ingest {
    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.writer.count()
    }

    /// Verifies against `expected` (when given), fsyncs and renames into place. Returns the digest and size.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let (buf, digest, size) = self.writer.finish();
        let tmp = buf.into_inner().map_err(|e| StoreError::Io {
            op: "flush",
            path: PathBuf::from("ingest"),
            source: e.into_error(),
        })?;
        if let Some(exp) = expected {
            if *exp != digest {
                return Err(StoreError::DigestMismatch {
                    expected: exp.clone(),
                    actual: digest,
                    size,
                });
            }
        }
        let dest = self.blobs.join(digest.hex());
        if dest.exists() {
            return Ok((digest, size));
        }
        tmp.as_file()
            .sync_all()
            .map_err(io_err("fsync", tmp.path()))?;
        tmp.persist(&dest).map_err(|e| StoreError::Io {
            op: "rename into",
            path: dest.clone(),
            source: e.error,
        })?;
        sync_dir(&self.blobs);
        Ok((digest, size))
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Writes a small file atomically: temp file in `tmp_dir`, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8], tmp_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(tmp_dir).map_err(io_err("create", tmp_dir))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(tmp_dir).map_err(io_err("create temp file in", tmp_dir))?;
    tmp.write_all(bytes)
        .map_err(io_err("write", tmp.path().to_path_buf()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err("fsync", tmp.path().to_path_buf()))?;
    tmp.persist(path).map_err(|e| StoreError::Io {
        op: "rename into",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    if let Some(parent) = path.parent() {
        sync_dir(parent);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c_ingest(store: &crate::Store) -> PathBuf {
        store.content().ingest_dir().to_path_buf()
    }

    #[test]
    fn ingest_verify_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let c = store.content();
        let d = c.put(b"hello").unwrap();
        assert_eq!(c.read(&d).unwrap(), b"hello");
        assert_eq!(c.size(&d).unwrap(), 5);
        // A mismatch leaves nothing behind.
        let mut w = c.ingest().unwrap();
        w.write_all(b"other").unwrap();
        let wrong = Digest::sha256(b"not this");
        assert!(matches!(
            w.commit(Some(&wrong)),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(!c.exists(&wrong));
        assert!(!c.exists(&Digest::sha256(b"other")));
        assert_eq!(std::fs::read_dir(c_ingest(&store)).unwrap().count(), 0);
        // A dropped ingest leaves nothing either.
        let mut w = c.ingest().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(c_ingest(&store)).unwrap().count(), 0);
        assert_eq!(c.list().unwrap(), vec![d]);
    }

    #[test]
    fn concurrent_writers_readers_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let blob: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
        let want = Digest::sha256(&blob);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut w = store.content().ingest().unwrap();
                    for chunk in blob.chunks(64 * 1024) {
                        w.write_all(chunk).unwrap();
                    }
                    assert_eq!(w.commit(Some(&want)).unwrap(), (want.clone(), 4_000_000));
                });
            }
            // A reader sees either no blob or the whole blob, never a prefix.
            s.spawn(|| {
                for _ in 0..200 {
                    if let Ok(bytes) = store.content().read(&want) {
                        assert_eq!(bytes.len(), blob.len());
                    }
                }
            });
        });
        let c = store.content();
        assert_eq!(c.list().unwrap(), vec![want.clone()]);
        assert_eq!(c.size(&want).unwrap(), 4_000_000);
        assert_eq!(c.delete(&want).unwrap(), 4_000_000);
        assert!(!c.exists(&want));
        assert_eq!(
            c.delete(&want).unwrap(),
            0,
            "deleting a missing blob frees nothing"
        );
        assert!(matches!(c.open(&want), Err(StoreError::NotFound(_))));
        assert_eq!(std::fs::read_dir(c_ingest(&store)).unwrap().count(), 0);
    }
}
