//! Cache keys: what a vertex's result is known by in the cache index. A key is the sha256 of a
//! versioned, length-prefixed encoding ([`lighter_graph::encode`]) of the op's own digest, the
//! cache keys of its inputs (which stand for their content, not for how they were defined) and the
//! named content values the worker read (the digest of the files a COPY selects, a base image's
//! ID). Bumping [`KEY_VERSION`] changes every key, so records of another scheme are never hit.

use lighter_graph::encode::Encoder;
use lighter_oci::Digest;
use std::fmt;

/// Part of every key: change it when what enters a key changes meaning.
pub const KEY_VERSION: &str = "lighter.cachekey.v2";

/// A vertex's cache key: 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key of an op (its digest without inputs) over its inputs' keys and the content it reads.
    pub fn compute(op: &Digest, inputs: &[&CacheKey], content: &[(String, String)]) -> CacheKey {
        let mut e = Encoder::new();
        e.str(KEY_VERSION).str(op.as_str());
        e.strs(&inputs.iter().map(|k| k.as_str()).collect::<Vec<_>>());
        e.pairs(content);
        CacheKey(e.finish().hex().to_string())
    }

    /// A key from its text (as stored in an index or a cache manifest).
    pub fn parse(s: &str) -> Option<CacheKey> {
        (s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| CacheKey(s.to_string()))
    }

    /// A key for a value that is already a digest of everything it stands for (a base image's
    /// ID, a named context's content).
    pub fn of_parts(parts: &[&str]) -> CacheKey {
        let mut e = Encoder::new();
        e.str(KEY_VERSION).strs(parts);
        CacheKey(e.finish().hex().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::sha256(s.as_bytes())
    }

    #[test]
    fn every_part_and_its_boundaries_enter_the_key() {
        let a = CacheKey::of_parts(&["a"]);
        let b = CacheKey::of_parts(&["b"]);
        let base = CacheKey::compute(&d("op"), &[&a], &[]);
        assert_eq!(base, CacheKey::compute(&d("op"), &[&a], &[]));
        assert_ne!(base, CacheKey::compute(&d("op2"), &[&a], &[]));
        assert_ne!(base, CacheKey::compute(&d("op"), &[&b], &[]));
        assert_ne!(base, CacheKey::compute(&d("op"), &[&a, &b], &[]));
        let c = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_ne!(
            CacheKey::compute(&d("op"), &[&a], &c("files", "x")),
            CacheKey::compute(&d("op"), &[&a], &c("files", "y"))
        );
        assert_ne!(
            CacheKey::compute(&d("op"), &[&a], &c("ab", "c")),
            CacheKey::compute(&d("op"), &[&a], &c("a", "bc"))
        );
        assert_ne!(
            CacheKey::of_parts(&["ab", "c"]),
            CacheKey::of_parts(&["a", "bc"])
        );
    }

    #[test]
    fn keys_are_stable_across_versions_of_the_code() {
        // A changed encoding must come with a new KEY_VERSION: this pins today's.
        let k = CacheKey::compute(&d("op"), &[&CacheKey::of_parts(&["scratch"])], &[]);
        assert_eq!(CacheKey::parse(k.as_str()), Some(k.clone()));
        assert_eq!(
            k.as_str(),
            "c2227c55d6ab53fb9ad5bb2e1ef4b3537dfe292ae05bf7b4181a52e2498ab6b8"
        );
    }

    #[test]
    fn parse_takes_only_hex_keys() {
        assert!(CacheKey::parse("x").is_none());
        assert!(CacheKey::parse(&"A".repeat(64)).is_none());
        assert!(CacheKey::parse(&"a".repeat(64)).is_some());
    }
}
