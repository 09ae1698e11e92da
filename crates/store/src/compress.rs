//! Layer compression: gzip on every core (independent gzip members compressed in parallel and
//! concatenated: RFC 1952 allows several members, and gunzip, Go's `compress/gzip` and Python all read
//! them as one stream), zstd, or none; and decompression chosen by sniffing magic bytes.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

/// How far compressed data may expand: at most `floor + ratio x` the compressed bytes read so far.
///
/// Deflate cannot expand more than about 1032 times (a 258-byte match per 2-bit code at best), so
/// the default ratio of 1100 never refuses a gzip stream; it refuses zstd (whose RLE blocks reach
/// 32,768 times) and future formats beyond what gzip could carry, once past the floor. The check
/// counts the compressed bytes consumed, read-ahead included, so it needs no declared size and
/// holds for streams from a registry as for blobs in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expansion {
    /// Uncompressed bytes always allowed.
    pub floor: u64,
    /// Allowed uncompressed bytes per compressed byte read; 0 lifts the limit.
    pub ratio: u64,
}

impl Expansion {
    /// 256 MiB, then 1100 to 1.
    pub const DEFAULT: Expansion = Expansion {
        floor: 256 << 20,
        ratio: 1100,
    };
}

/// The ratio [`decompress`] applies (0: none), set once by the program (`LIGHTER_MAX_EXPANSION`).
static MAX_RATIO: AtomicU64 = AtomicU64::new(Expansion::DEFAULT.ratio);

/// Sets the ratio every later [`decompress`] applies; 0 lifts the limit.
pub fn set_max_expansion(ratio: u64) {
    MAX_RATIO.store(ratio, Ordering::Relaxed);
}

/// The bytes `compressed` bytes may become under the [`Expansion`] limit in force (`u64::MAX` when
/// lifted): what the files of an unpacked layer or ADD archive may add up to, since a GNU sparse
/// entry can claim 10 GiB in a few KB as a bomb can.
pub fn expansion_limit(compressed: u64) -> u64 {
    match MAX_RATIO.load(Ordering::Relaxed) {
        0 => u64::MAX,
        ratio => Expansion::DEFAULT
            .floor
            .saturating_add(compressed.saturating_mul(ratio)),
    }
}

/// Counts the compressed bytes the decoder pulls.
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The error of a read past the [`Expansion`] limit (inside an `io::Error` of kind `InvalidData`).
#[derive(Debug, thiserror::Error)]
#[error(
    "{format} data expands more than {ratio} times ({out} bytes out of {read}): refused as a \
     decompression bomb (LIGHTER_MAX_EXPANSION sets the ratio, 0 lifts the limit)"
)]
pub struct Bomb {
    format: &'static str,
    ratio: u64,
    out: u64,
    read: u64,
}

/// Whether `e` is (or wraps) a read refused by the [`Expansion`] limit.
pub fn is_bomb(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Bomb>())
}

/// Fails the read that takes the output past the [`Expansion`] of the input counted so far.
struct Limited<D> {
    inner: D,
    read: Arc<AtomicU64>,
    out: u64,
    limit: Expansion,
    format: &'static str,
}

impl<D: Read> Read for Limited<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        let read = self.read.load(Ordering::Relaxed);
        let allowed = read
            .saturating_mul(self.limit.ratio)
            .saturating_add(self.limit.floor);
        if self.limit.ratio > 0 && self.out > allowed {
            let e = Bomb {
                format: self.format,
                ratio: self.limit.ratio,
                out: self.out,
                read,
            };
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(n)
    }
}

/// Wraps a reader so that gzip (all members), zstd or plain data comes out uncompressed, within
/// the process's [`Expansion`] (the default floor and [`set_max_expansion`]'s ratio).
pub fn decompress<'a, R: Read + 'a>(r: R) -> io::Result<Box<dyn Read + 'a>> {
    let limit = Expansion {
        ratio: MAX_RATIO.load(Ordering::Relaxed),
        ..Expansion::DEFAULT
    };
    decompress_within(r, limit)
}

/// [`decompress`] with an explicit limit.
pub fn decompress_within<'a, R: Read + 'a>(
    r: R,
    limit: Expansion,
) -> io::Result<Box<dyn Read + 'a>> {
    let read = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: r,
        read: read.clone(),
    };
    let mut br = BufReader::with_capacity(1 << 20, counted);
    let head = br.fill_buf()?;
    let limited = |inner: Box<dyn Read + 'a>, format| Limited {
        inner,
        read,
        out: 0,
        limit,
        format,
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        let d = flate2::bufread::MultiGzDecoder::new(br);
        Ok(Box::new(limited(Box::new(d), "gzip")))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d = zstd::Decoder::with_buffer(br)?;
        Ok(Box::new(limited(Box::new(d), "zstd")))
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

    /// zstd's RLE blocks: a frame header and `blocks` blocks of 128 KiB of zeros, 4 bytes each.
    fn zstd_rle(blocks: usize) -> Vec<u8> {
        // Magic; frame header: no content size, no checksum; window 2^(10 + 10) = 1 MiB.
        let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 10 << 3];
        for i in 0..blocks {
            let last = (i + 1 == blocks) as u32;
            let header = last | 1 << 1 | (128 << 10) << 3; // RLE block of 128 KiB
            f.extend_from_slice(&header.to_le_bytes()[..3]);
            f.push(0);
        }
        f
    }

    #[test]
    fn bombs_are_refused_past_the_ratio_and_gzip_never_is() {
        let drain = |r: &mut dyn Read| io::copy(r, &mut io::sink());
        // 64 MiB of zeros in 2 KB of zstd: 30,000 to 1.
        let bomb = zstd_rle(512);
        assert!(bomb.len() < 3000);
        let small = Expansion {
            floor: 1 << 20,
            ratio: 1100,
        };
        let e = drain(&mut decompress_within(&bomb[..], small).unwrap()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(is_bomb(&e));
        assert!(
            e.to_string()
                .contains("zstd data expands more than 1100 times"),
            "{e}"
        );
        assert!(e.to_string().contains("LIGHTER_MAX_EXPANSION"), "{e}");
        // Under the floor, or with the limit lifted, the same frame decompresses whole.
        let roomy = Expansion {
            floor: 64 << 20,
            ratio: 1100,
        };
        assert_eq!(
            drain(&mut decompress_within(&bomb[..], roomy).unwrap()).unwrap(),
            64 << 20
        );
        let lifted = Expansion { floor: 0, ratio: 0 };
        assert_eq!(
            drain(&mut decompress_within(&bomb[..], lifted).unwrap()).unwrap(),
            64 << 20
        );
        // gzip at its best (zeros, level 9) stays under 1100 to 1, with no floor at all.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 64 << 20]).unwrap();
        let gz = gz.finish().unwrap();
        assert!(
            (64 << 20) / gz.len() > 1000,
            "ratio {}",
            (64 << 20) / gz.len()
        );
        let strict = Expansion {
            floor: 0,
            ratio: 1100,
        };
        assert_eq!(
            drain(&mut decompress_within(&gz[..], strict).unwrap()).unwrap(),
            64 << 20
        );
        // Plain data is not limited.
        assert_eq!(
            drain(&mut decompress_within(&[7u8; 5000][..], strict).unwrap()).unwrap(),
            5000
        );
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
