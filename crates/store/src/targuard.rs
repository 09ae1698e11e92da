//! A reader that watches a tar stream's framing as the `tar` crate reads it, and refuses extension
//! headers (PAX `x`/`g`, GNU long names `L`/`K`) larger than Go's `archive/tar` accepts (1 MiB,
//! its `maxSpecialFileSize`, so BuildKit refuses the same archives).
//!
//! Why a second look at the framing: the `tar` crate reads an extension header whole into memory
//! before it hands out the entry it describes, with no cap, so a layer whose PAX header claims
//! 1 GiB costs 1 GiB of memory (and compresses to a few KB). The crate has no hook for that, so
//! this wrapper follows the same framing rules (512-byte headers; sizes from the header, or from the
//! PAX `size` record for the entry after an `x`; GNU sparse extension blocks; the end at the first
//! zero block) using the crate's own header parsing, and fails the read that would hand over the
//! first byte of an oversized extension. Where it cannot follow (a bad checksum), it stops watching
//! and lets the `tar` crate report the archive as corrupt.

use std::io::{self, Read};

/// Largest extension header accepted (Go's `archive/tar` `maxSpecialFileSize`).
pub const MAX_EXTENSION: u64 = 1 << 20;

const BLOCK: u64 = 512;

enum State {
    /// Collecting a 512-byte header (how much of it is in `header`).
    Header(usize),
    /// Inside an entry's data and padding: bytes left.
    Data(u64),
    /// Inside a PAX `x` header's data (bytes left, padding after): its records are kept for the
    /// `size` of the next entry.
    Pax { left: u64, pad: u64 },
    /// Collecting a GNU sparse extension block; after the last, `data` bytes of the entry follow.
    SparseExt { have: usize, data: u64 },
    /// The end of the archive, or framing this reader cannot follow: it only passes bytes on.
    Done,
}

/// See the module documentation.
pub struct TarGuard<R> {
    inner: R,
    state: State,
    header: [u8; 512],
    pax: Vec<u8>,
    /// The PAX records that describe the next entry.
    pending_pax: Option<Vec<u8>>,
}

impl<R: Read> TarGuard<R> {
    pub fn new(inner: R) -> TarGuard<R> {
        TarGuard {
            inner,
            state: State::Header(0),
            header: [0; 512],
            pax: Vec::new(),
            pending_pax: None,
        }
    }

    /// Follows `bytes` through the framing; an error names the oversized header.
    fn observe(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Done => return Ok(()),
                State::Header(have) => {
                    let n = (512 - *have).min(bytes.len());
                    self.header[*have..*have + n].copy_from_slice(&bytes[..n]);
                    *have += n;
                    bytes = &bytes[n..];
                    if *have == 512 {
                        self.state = self.next_state()?;
                    }
                }
                State::Data(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = State::Header(0);
                    }
                }
                State::Pax { left, pad } => {
                    let n = (*left).min(bytes.len() as u64);
                    self.pax.extend_from_slice(&bytes[..n as usize]);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.pending_pax = Some(std::mem::take(&mut self.pax));
                        self.state = if *pad == 0 {
                            State::Header(0)
                        } else {
                            State::Data(*pad)
                        };
                    }
                }
                State::SparseExt { have, data } => {
                    let n = (512 - *have).min(bytes.len());
                    self.header[*have..*have + n].copy_from_slice(&bytes[..n]);
                    *have += n;
                    bytes = &bytes[n..];
                    if *have == 512 {
                        // `isextended` of a GNU extension block is its byte 504.
                        let data = *data;
                        self.state = if self.header[504] == 1 {
                            State::SparseExt { have: 0, data }
                        } else if data == 0 {
                            State::Header(0)
                        } else {
                            State::Data(data)
                        };
                    }
                }
            }
        }
        Ok(())
    }

    /// The state after a whole header, as the `tar` crate frames it.
    fn next_state(&mut self) -> io::Result<State> {
        if self.header.iter().all(|b| *b == 0) {
            return Ok(State::Done);
        }
        let h = tar::Header::from_byte_slice(&self.header);
        let sum: u32 = self.header[..148]
            .iter()
            .chain(&self.header[156..])
            .map(|b| *b as u32)
            .sum::<u32>()
            + 8 * 32;
        let Ok(size) = h.entry_size() else {
            return Ok(State::Done);
        };
        if h.cksum().ok() != Some(sum) {
            return Ok(State::Done);
        }
        let kind = h.entry_type();
        let recognized = h.as_gnu().is_some() || h.as_ustar().is_some();
        let extension = kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink();
        if extension && recognized && size > MAX_EXTENSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a tar extension header of {size} bytes (type {:?}); at most {MAX_EXTENSION} are accepted",
                    kind.as_byte() as char
                ),
            ));
        }
        let size = match self.pending_pax.as_deref() {
            Some(pax) if !extension => {
                let s = pax_size(pax).unwrap_or(size);
                self.pending_pax = None;
                s
            }
            _ => size,
        };
        let padded = size.div_ceil(BLOCK).saturating_mul(BLOCK);
        if kind.is_pax_local_extensions() && recognized {
            self.pax.clear();
            return Ok(if size == 0 {
                self.pending_pax = Some(Vec::new());
                State::Header(0)
            } else {
                State::Pax {
                    left: size,
                    pad: padded - size,
                }
            });
        }
        if kind.is_gnu_sparse() && h.as_gnu().is_some_and(|g| g.is_extended()) {
            return Ok(State::SparseExt {
                have: 0,
                data: padded,
            });
        }
        Ok(if padded == 0 {
            State::Header(0)
        } else {
            State::Data(padded)
        })
    }
}

/// The `size` record of PAX extensions, as the `tar` crate reads it.
fn pax_size(pax: &[u8]) -> Option<u64> {
    tar::PaxExtensions::new(pax)
        .flatten()
        .find(|e| e.key_bytes() == b"size")
        .and_then(|e| e.value().ok().and_then(|v| v.parse().ok()))
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n])?;
        Ok(n)
    }
}

/// Seeking, for reading an archive in place (`tar::Archive::entries_with_seek`): the `tar` crate
/// seeks only forward over what is left of an entry's data and padding, which the guard follows;
/// any other seek could leave the framing, and is refused.
impl<R: Read + io::Seek> io::Seek for TarGuard<R> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        match (pos, &mut self.state) {
            (io::SeekFrom::Current(0), _) | (_, State::Done) => {}
            (io::SeekFrom::Current(n), State::Data(left)) if n > 0 && n as u64 <= *left => {
                *left -= n as u64;
                if *left == 0 {
                    self.state = State::Header(0);
                }
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a seek that leaves the tar framing",
                ))
            }
        }
        self.inner.seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(pax_len: usize, long_name: usize) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        let rec = |k: &str, v: &str| {
            let body = format!(" {k}={v}\n");
            let mut n = body.len() + 1;
            while format!("{n}{body}").len() != n {
                n += 1;
            }
            format!("{n}{body}")
        };
        let mut pax = rec("path", &"p".repeat(pax_len));
        pax.push_str(&rec("size", "3"));
        h.set_size(pax.len() as u64);
        h.set_cksum();
        b.append(&h, pax.as_bytes()).unwrap();
        // The entry's header says 0; the PAX `size` says 3.
        let mut h = tar::Header::new_ustar();
        h.set_path("short").unwrap();
        h.set_size(0);
        h.set_cksum();
        let raw = b.get_mut();
        raw.extend_from_slice(h.as_bytes());
        raw.extend_from_slice(b"abc");
        raw.resize(raw.len().div_ceil(512) * 512, 0);
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_cksum();
        b.append_data(&mut h, "l".repeat(long_name), &b"x"[..])
            .unwrap();
        b.into_inner().unwrap()
    }

    fn names(raw: &[u8]) -> io::Result<Vec<(String, u64)>> {
        let mut ar = tar::Archive::new(TarGuard::new(raw));
        let mut out = Vec::new();
        for e in ar.entries()? {
            let e = e?;
            out.push((e.path()?.to_string_lossy().into_owned(), e.size()));
        }
        Ok(out)
    }

    #[test]
    fn framing_follows_pax_sizes_and_long_names() {
        let raw = archive(200, 300);
        let got = names(&raw).unwrap();
        assert_eq!(got[0], ("p".repeat(200), 3));
        assert_eq!(got[1], ("l".repeat(300), 1));
        // Read in odd-sized pieces: the same.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(7).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut g = TarGuard::new(Trickle(&raw));
        let mut all = Vec::new();
        g.read_to_end(&mut all).unwrap();
        assert_eq!(all, raw);
    }

    #[test]
    fn oversized_extensions_are_refused() {
        let e = names(&archive(MAX_EXTENSION as usize + 10, 10)).unwrap_err();
        assert!(e.to_string().contains("extension header of"), "{e}");
        let e = names(&archive(10, MAX_EXTENSION as usize + 10)).unwrap_err();
        assert!(e.to_string().contains("type 'L'"), "{e}");
        // Just under the limit is fine.
        assert!(names(&archive(MAX_EXTENSION as usize - 100, 10)).is_ok());
    }
}
