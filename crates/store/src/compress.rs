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

pub use crate::pargz::{ChunkRecord, ChunkSource, ParGzWriter};

/// The gzip level of layers lighter writes (gzip's default, as BuildKit's).
pub const GZIP_LEVEL: u32 = 6;

/// A compressing writer for any [`Compression`].
pub enum Compressor<W: Write> {
    None(W),
    Gzip(ParGzWriter<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    pub fn new(inner: W, c: Compression) -> io::Result<Self> {
        Compressor::with_source(inner, c, None, None)
    }

    /// A compressor that reuses gzip members of earlier layers from `source` (gzip only), with
    /// `gzip_threads` workers (every core when `None`).
    pub fn with_source(
        inner: W,
        c: Compression,
        source: Option<std::sync::Arc<dyn ChunkSource>>,
        gzip_threads: Option<usize>,
    ) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Compressor::None(inner),
            Compression::Gzip => Compressor::Gzip(ParGzWriter::with_source(
                inner,
                GZIP_LEVEL,
                source,
                gzip_threads,
            )),
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
        self.finish_with_records().map(|(w, _)| w)
    }

    /// Finishes, with the gzip chunks written (empty for other compressions).
    pub fn finish_with_records(self) -> io::Result<(W, Vec<ChunkRecord>)> {
        match self {
            Compressor::None(w) => Ok((w, Vec::new())),
            Compressor::Gzip(g) => g.finish_with_records().map(|(w, r, _)| (w, r)),
            Compressor::Zstd(z) => z.finish().map(|w| (w, Vec::new())),
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
        let input = data(5 * (1 << 20) + 12345);
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
