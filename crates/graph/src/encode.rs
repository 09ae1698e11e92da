//! The canonical encoding that vertex digests come from: a version tag, then every field as a
//! one-byte type tag and a little-endian u64 length before its bytes, lists as a count before their
//! items. Nothing depends on `Debug` output, map iteration order or a serializer's settings, so
//! the same vertex has the same digest in every build and every version until [`VERSION`] changes.

use sha2::{Digest as _, Sha256};

/// Bumped whenever the encoding or the meaning of a field changes (every digest changes with it).
pub const VERSION: &str = "lighter.graph.v1";

/// A canonical encoder hashing as it goes.
pub struct Encoder {
    h: Sha256,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        let mut e = Encoder { h: Sha256::new() };
        e.str(VERSION);
        e
    }

    fn tagged(&mut self, tag: u8, bytes: &[u8]) -> &mut Self {
        self.h.update([tag]);
        self.h.update((bytes.len() as u64).to_le_bytes());
        self.h.update(bytes);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.tagged(b's', s.as_bytes())
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.tagged(b'b', b)
    }

    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.tagged(b'u', &n.to_le_bytes())
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.tagged(b'?', &[b as u8])
    }

    pub fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.tagged(b'o', &[1]).str(s),
            None => self.tagged(b'o', &[0]),
        }
    }

    pub fn strs<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Self {
        self.tagged(b'l', &(items.len() as u64).to_le_bytes());
        for i in items {
            self.str(i.as_ref());
        }
        self
    }

    pub fn pairs(&mut self, items: &[(String, String)]) -> &mut Self {
        self.tagged(b'm', &(items.len() as u64).to_le_bytes());
        for (k, v) in items {
            self.str(k).str(v);
        }
        self
    }

    /// `sha256:<hex>` of everything written.
    pub fn finish(self) -> lighter_oci::Digest {
        let hex = hex::encode(self.h.finalize());
        format!("sha256:{hex}")
            .parse()
            .expect("a sha256 hex digest is a valid digest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_boundaries_and_types_are_part_of_the_digest() {
        let d = |f: &dyn Fn(&mut Encoder)| {
            let mut e = Encoder::new();
            f(&mut e);
            e.finish()
        };
        assert_ne!(
            d(&|e| {
                e.str("ab").str("c");
            }),
            d(&|e| {
                e.str("a").str("bc");
            })
        );
        assert_ne!(
            d(&|e| {
                e.str("1");
            }),
            d(&|e| {
                e.u64(1);
            })
        );
        assert_ne!(
            d(&|e| {
                e.opt_str(None);
            }),
            d(&|e| {
                e.opt_str(Some(""));
            })
        );
        assert_ne!(
            d(&|e| {
                e.strs(&["a", "b"]);
            }),
            d(&|e| {
                e.strs(&["a"]).str("b");
            })
        );
        assert_eq!(
            d(&|e| {
                e.str("x");
            }),
            d(&|e| {
                e.str("x");
            })
        );
    }
}
