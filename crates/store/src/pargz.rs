//! Gzip on every core, with chunks that can be reused between layers.
//!
//! The input is cut into content-defined chunks (a gear rolling hash over the last 64 bytes picks the
//! cut points, 512 KiB to 4 MiB, about 1 MiB on average) and every chunk is compressed as an
//! independent gzip member by a pool of worker threads while the caller keeps writing; members are
//! written in order. RFC 1952 allows several members, and gunzip, Go's `compress/gzip` and Python all
//! read them as one stream.
//!
//! Because cut points depend only on content, a layer that differs from an earlier one in one file
//! has the same chunks before and after that file. A [`ChunkSource`] hands back the member an earlier
//! layer stored for a chunk (looked up by the chunk's sha256), so only the changed chunks are
//! compressed again. A chunk's member depends only on its bytes and the level, so the output is the
//! same byte for byte whether members were reused or not.

use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

/// Chunks are at least this long...
const MIN: usize = 512 << 10;
/// ...at most this long...
const MAX: usize = 4 << 20;
/// ...and cut where the top `BITS` bits of the rolling hash are zero (on average 2^BITS bytes after MIN).
const BITS: u32 = 19;
/// The gear hash shifts one bit per byte: the hash depends on the last 64 bytes only.
const WINDOW: usize = 64;

/// A fixed table of 256 pseudo-random words (splitmix64 from a constant seed). Cut points, and so the
/// compressed bytes of every layer, depend on it: it must never change.
const GEAR: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut x: u64 = 0x6c69_6768_7465_7221; // "lighter!"
    let mut i = 0;
    while i < 256 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        t[i] = z ^ (z >> 31);
        i += 1;
    }
    t
};

/// Where an earlier layer keeps the gzip member of a chunk.
pub trait ChunkSource: Send + Sync {
    /// The member for the chunk whose uncompressed sha256 is `hash`, if one is known. The writer checks
    /// the member's trailer (CRC-32 and length) against the chunk before using it.
    fn member(&self, hash: &[u8; 32]) -> Option<Vec<u8>>;
}

/// One chunk of a finished stream: its uncompressed sha256 and length, and where its member is in the
/// compressed output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    pub hash: [u8; 32],
    pub len: u64,
    pub offset: u64,
    pub compressed_len: u64,
}

/// What the writer got back for one chunk.
struct Done {
    member: Vec<u8>,
    hash: [u8; 32],
    len: u64,
    reused: bool,
}

/// The parallel gzip writer (see the module docs).
pub struct ParGzWriter<W: Write> {
    inner: Option<W>,
    current: Vec<u8>,
    hash: u64,
    jobs: Option<SyncSender<(usize, Vec<u8>)>>,
    results: Receiver<(usize, io::Result<Done>)>,
    workers: Vec<std::thread::JoinHandle<()>>,
    sent: usize,
    next_write: usize,
    in_flight: usize,
    max_in_flight: usize,
    finished: BTreeMap<usize, Done>,
    records: Vec<ChunkRecord>,
    offset: u64,
    reused: usize,
}

impl<W: Write> ParGzWriter<W> {
    pub fn new(inner: W, level: u32) -> Self {
        ParGzWriter::with_source(inner, level, None, None)
    }

    /// A writer that takes members for chunks it has seen before from `source`.
    /// `threads` pins the worker count (the benchmark compares 1 with every core).
    pub fn with_source(
        inner: W,
        level: u32,
        source: Option<Arc<dyn ChunkSource>>,
        threads: Option<usize>,
    ) -> Self {
        let threads = threads.filter(|n| *n > 0).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        let (jobs, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<u8>)>(threads);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let (tx, results) = std::sync::mpsc::channel();
        let workers = (0..threads)
            .map(|_| {
                let (rx, tx, source) = (rx.clone(), tx.clone(), source.clone());
                std::thread::spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((seq, chunk)) = job else { break };
                    let done = compress_chunk(&chunk, level, source.as_deref());
                    if tx.send((seq, done)).is_err() {
                        break;
                    }
                })
            })
            .collect();
        ParGzWriter {
            inner: Some(inner),
            current: Vec::with_capacity(MIN * 2),
            hash: 0,
            jobs: Some(jobs),
            results,
            workers,
            sent: 0,
            next_write: 0,
            in_flight: 0,
            max_in_flight: threads * 2,
            finished: BTreeMap::new(),
            records: Vec::new(),
            offset: 0,
            reused: 0,
        }
    }

    fn send(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        while self.in_flight >= self.max_in_flight {
            self.receive(true)?;
        }
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("writer finished"))?;
        jobs.send((self.sent, chunk))
            .map_err(|_| io::Error::other("compression workers stopped"))?;
        self.sent += 1;
        self.in_flight += 1;
        while self.in_flight > 0 && self.receive(false)? {}
        Ok(())
    }

    /// Takes one result (waiting for it when `wait`) and writes every member that is next in order.
    fn receive(&mut self, wait: bool) -> io::Result<bool> {
        let got = if wait {
            Some(
                self.results
                    .recv()
                    .map_err(|_| io::Error::other("compression workers stopped"))?,
            )
        } else {
            self.results.try_recv().ok()
        };
        let Some((seq, done)) = got else {
            return Ok(false);
        };
        self.in_flight -= 1;
        self.finished.insert(seq, done?);
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| io::Error::other("writer finished"))?;
        while let Some(d) = self.finished.remove(&self.next_write) {
            inner.write_all(&d.member)?;
            self.records.push(ChunkRecord {
                hash: d.hash,
                len: d.len,
                offset: self.offset,
                compressed_len: d.member.len() as u64,
            });
            self.offset += d.member.len() as u64;
            self.reused += d.reused as usize;
            self.next_write += 1;
        }
        Ok(true)
    }

    /// Compresses what is left and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        self.finish_with_records().map(|(w, _, _)| w)
    }

    /// Like [`ParGzWriter::finish`], with the chunks of the stream and how many members were reused.
    pub fn finish_with_records(mut self) -> io::Result<(W, Vec<ChunkRecord>, usize)> {
        // An empty input still makes one (empty) member: a zero-byte file is not gzip.
        if !self.current.is_empty() || self.sent == 0 {
            let c = std::mem::take(&mut self.current);
            self.send(c)?;
        }
        self.jobs = None;
        while self.in_flight > 0 {
            self.receive(true)?;
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let inner = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("writer finished"))?;
        Ok((inner, std::mem::take(&mut self.records), self.reused))
    }
}

impl<W: Write> Drop for ParGzWriter<W> {
    fn drop(&mut self) {
        // Closing the job channel stops the workers once they are idle.
        self.jobs = None;
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len();
        let mut rest = buf;
        while !rest.is_empty() {
            let len = self.current.len();
            if len < MIN - WINDOW {
                let take = (MIN - WINDOW - len).min(rest.len());
                self.current.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                continue;
            }
            let mut h = self.hash;
            let mut cut = None;
            for (k, &b) in rest.iter().enumerate() {
                h = (h << 1).wrapping_add(GEAR[b as usize]);
                let size = len + k + 1;
                if (size >= MIN && h >> (64 - BITS) == 0) || size >= MAX {
                    cut = Some(k + 1);
                    break;
                }
            }
            match cut {
                Some(k) => {
                    self.current.extend_from_slice(&rest[..k]);
                    rest = &rest[k..];
                    self.hash = 0;
                    let full = std::mem::replace(&mut self.current, Vec::with_capacity(MIN * 2));
                    self.send(full)?;
                }
                None => {
                    self.current.extend_from_slice(rest);
                    self.hash = h;
                    rest = &[];
                }
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn compress_chunk(chunk: &[u8], level: u32, source: Option<&dyn ChunkSource>) -> io::Result<Done> {
    let hash: [u8; 32] = Sha256::digest(chunk).into();
    let len = chunk.len() as u64;
    if let Some(member) = source
        .and_then(|s| s.member(&hash))
        .filter(|m| member_matches(m, chunk))
    {
        return Ok(Done {
            member,
            hash,
            len,
            reused: true,
        });
    }
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(chunk.len() / 2 + 64),
        flate2::Compression::new(level),
    );
    e.write_all(chunk)?;
    Ok(Done {
        member: e.finish()?,
        hash,
        len,
        reused: false,
    })
}

/// A stored member is used only if it is one gzip member whose trailer (CRC-32 and length) is the
/// chunk's: a stale or damaged index entry is compressed afresh instead.
fn member_matches(member: &[u8], chunk: &[u8]) -> bool {
    if member.len() < 18 || member[..2] != [0x1f, 0x8b] {
        return false;
    }
    let t = &member[member.len() - 8..];
    let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
    let isize = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
    let mut c = flate2::Crc::new();
    c.update(chunk);
    c.sum() == crc && isize == chunk.len() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn gz(
        input: &[u8],
        source: Option<Arc<dyn ChunkSource>>,
    ) -> (Vec<u8>, Vec<ChunkRecord>, usize) {
        let mut w = ParGzWriter::with_source(Vec::new(), 6, source, None);
        // Odd write sizes: cut points must not depend on how the input is split into writes.
        for part in input.chunks(77_777) {
            w.write_all(part).unwrap();
        }
        w.finish_with_records().unwrap()
    }

    struct Previous(Vec<u8>, Vec<ChunkRecord>);
    impl ChunkSource for Previous {
        fn member(&self, hash: &[u8; 32]) -> Option<Vec<u8>> {
            let r = self.1.iter().find(|r| &r.hash == hash)?;
            Some(self.0[r.offset as usize..(r.offset + r.compressed_len) as usize].to_vec())
        }
    }

    #[test]
    fn cut_points_follow_content_and_members_are_reused() {
        let a = noise(9 << 20, 7);
        let (gz_a, rec_a, reused) = gz(&a, None);
        assert_eq!(reused, 0);
        assert!(rec_a.len() >= 3, "several chunks: {}", rec_a.len());
        assert!(rec_a.iter().all(|r| r.len as usize <= MAX));
        assert_eq!(rec_a.iter().map(|r| r.len).sum::<u64>(), a.len() as u64);
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz_a[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, a);

        // Insert 1000 bytes in the middle: the chunks before and (after resync) after are the same.
        let mut b = a.clone();
        b.splice(4 << 20..4 << 20, noise(1000, 3));
        let prev: Arc<dyn ChunkSource> = Arc::new(Previous(gz_a.clone(), rec_a.clone()));
        let (gz_b, rec_b, reused) = gz(&b, Some(prev));
        assert!(
            reused >= rec_b.len() - 2,
            "reused {reused} of {}",
            rec_b.len()
        );
        // Reuse gives the same bytes as compressing from scratch.
        assert_eq!(gz(&b, None).0, gz_b);
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz_b[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b);
    }

    #[test]
    fn a_bad_stored_member_is_not_used() {
        let a = noise(2 << 20, 11);
        let (gz_a, rec_a, _) = gz(&a, None);
        let mut damaged = gz_a.clone();
        let last = damaged.len() - 5;
        damaged[last] ^= 0xff; // the last member's length field
        let prev: Arc<dyn ChunkSource> = Arc::new(Previous(damaged, rec_a.clone()));
        let (gz_b, _, reused) = gz(&a, Some(prev));
        assert_eq!(reused, rec_a.len() - 1);
        assert_eq!(gz_b, gz_a);
    }
}
