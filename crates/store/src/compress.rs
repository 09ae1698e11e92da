//! Layer compression: gzip on every core (independent gzip members compressed in parallel and
//! concatenated: RFC 1952 allows several members, and gunzip, Go's `compress/gzip` and Python all read
//! them as one stream), zstd, or none; and decompression chosen by sniffing magic bytes.

use std::io::{self, BufRead, BufReader, Read, Write};

/// How layers are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => lighter_oci::media::OCI_LAYER,
            Compression::Gzip => lighter_oci::media::OCI_LAYER_GZIP,
            Compression::Zstd => lighter_oci::media::OCI_LAYER_ZSTD,
        }
    }

    pub fn parse(s: &str) -> Option<Compression> {
        match s {
            "uncompressed" | "none" => Some(Compression::None),
            "gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Chunk of input compressed as one gzip member.
const CHUNK: usize = 1 << 20;

/// A writer that gzips with every core: input is cut into 1 MiB chunks, each compressed as an
/// independent gzip member in parallel; members are written in order.
pub struct ParGzWriter<W: Write> {
    inner: Option<W>,
    pending: Vec<Vec<u8>>,
    current: Vec<u8>,
    level: u32,
    batch: usize,
    wrote_any: bool,
}

impl<W: Write> ParGzWriter<W> {
    pub fn new(inner: W, level: u32) -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        ParGzWriter {
            inner: Some(inner),
            pending: Vec::new(),
            current: Vec::with_capacity(CHUNK),
            level,
            batch: threads * 2,
            wrote_any: false,
        }
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let level = flate2::Compression::new(self.level);
        let chunks = std::mem::take(&mut self.pending);
        let compressed: Vec<io::Result<Vec<u8>>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|c| {
                    s.spawn(move || {
                        let mut e =
                            flate2::write::GzEncoder::new(Vec::with_capacity(c.len() / 2), level);
                        e.write_all(c)?;
                        e.finish()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("compression thread panicked")))
                })
                .collect()
        });
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| io::Error::other("writer finished"))?;
        for c in compressed {
            inner.write_all(&c?)?;
            self.wrote_any = true;
        }
        Ok(())
    }

    /// Compresses what is left and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.current.is_empty() || !self.wrote_any {
            let c = std::mem::take(&mut self.current);
            self.pending.push(c);
        }
        self.flush_pending()?;
        self.inner
            .take()
            .ok_or_else(|| io::Error::other("writer finished"))
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let n = buf.len();
        while !buf.is_empty() {
            let room = CHUNK - self.current.len();
            let take = room.min(buf.len());
            self.current.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.current.len() == CHUNK {
                let full = std::mem::replace(&mut self.current, Vec::with_capacity(CHUNK));
                self.pending.push(full);
                if self.pending.len() >= self.batch {
                    self.flush_pending()?;
                }
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A compressing writer for any [`Compression`].
pub enum Compressor<W: Write> {
    None(W),
    Gzip(ParGzWriter<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    pub fn new(inner: W, c: Compression) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Compressor::None(inner),
            Compression::Gzip => Compressor::Gzip(ParGzWriter::new(inner, 6)),
            Compression::Zstd => {
                let mut e = zstd::Encoder::new(inner, 3)?;
                let threads = std::thread::available_parallelism()
                    .map(|n| n.get() as u32)
                    .unwrap_or(1);
                let _ = e.multithread(threads);
                Compressor::Zstd(e)
            }
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(w) => Ok(w),
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(w) => w.write(buf),
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(w) => w.flush(),
            Compressor::Gzip(g) => g.flush(),
            Compressor::Zstd(z) => z.flush(),
        }
    }
}

/// Wraps a reader so that gzip (all members), zstd or plain data comes out uncompressed.
pub fn decompress<'a, R: Read + 'a>(r: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(1 << 20, r);
    let head = br.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(br)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::Decoder::with_buffer(br)?))
    } else {
        Ok(Box::new(br))
    }
}

/// Sniffs the compression of a byte prefix.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 31 + i / 7) % 251) as u8).collect()
    }

    #[test]
    fn parallel_gzip_round_trips_and_gunzip_reads_it() {
        let input = data(5 * CHUNK + 12345);
        let mut w = ParGzWriter::new(Vec::new(), 6);
        w.write_all(&input).unwrap();
        let gz = w.finish().unwrap();
        let mut out = Vec::new();
        decompress(&gz[..]).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, input);
        // The system gunzip reads the multi-member stream as one.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.gz");
        std::fs::write(&p, &gz).unwrap();
        let o = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&p)
            .output()
            .unwrap();
        assert!(o.status.success());
        assert_eq!(o.stdout, input);
    }

    #[test]
    fn zstd_and_none_round_trip() {
        let input = data(300_000);
        for c in [Compression::Zstd, Compression::None, Compression::Gzip] {
            let mut w = Compressor::new(Vec::new(), c).unwrap();
            w.write_all(&input).unwrap();
            let bytes = w.finish().unwrap();
            assert_eq!(sniff(&bytes), c);
            let mut out = Vec::new();
            decompress(&bytes[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, input, "{c:?}");
        }
        // An empty gzip stream is still a valid gzip file.
        let empty = ParGzWriter::new(Vec::new(), 6).finish().unwrap();
        assert_eq!(sniff(&empty), Compression::Gzip);
    }
}
