//! JSON bytes as Go's `encoding/json` writes them, which is what BuildKit and Docker hash: `<`, `>` and
//! `&` escaped as `\u003c`, `\u003e`, `\u0026`, and U+2028/U+2029 escaped; manifests indented by two
//! spaces (`json.MarshalIndent(m, "", "  ")`), configs compact. Field order is the value's own
//! (serde_json keeps insertion order in this workspace). Checked byte for byte against BuildKit's
//! exporter goldens (`crates/lighter/tests/oci_schema.rs`).

use serde::Serialize;

/// Compact JSON with Go's escaping (image configs, indexes).
pub fn to_vec<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(v).map(go_escape)
}

/// Two-space indented JSON with Go's escaping (manifests, as BuildKit writes them).
pub fn to_vec_pretty<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map(go_escape)
}

/// In serde_json's output these characters can only occur inside strings (never in structure or
/// numbers), so replacing them anywhere is the same as escaping them in every string.
fn go_escape(bytes: Vec<u8>) -> Vec<u8> {
    let needs = bytes.iter().any(|b| matches!(b, b'<' | b'>' | b'&'))
        || bytes
            .windows(3)
            .any(|w| w == "\u{2028}".as_bytes() || w == "\u{2029}".as_bytes());
    if !needs {
        return bytes;
    }
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let (esc, n): (&[u8], usize) = match rest[0] {
            b'<' => (b"\\u003c", 1),
            b'>' => (b"\\u003e", 1),
            b'&' => (b"\\u0026", 1),
            _ if rest.starts_with("\u{2028}".as_bytes()) => (b"\\u2028", 3),
            _ if rest.starts_with("\u{2029}".as_bytes()) => (b"\\u2029", 3),
            b => {
                out.push(b);
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(esc);
        i += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let v = serde_json::json!({ "a": "x < y && z > \u{2028}", "n": 1 });
        assert_eq!(
            String::from_utf8(to_vec(&v).unwrap()).unwrap(),
            r#"{"a":"x \u003c y \u0026\u0026 z \u003e \u2028","n":1}"#
        );
        // Round trip: the escaped form parses back to the same value.
        let back: serde_json::Value = serde_json::from_slice(&to_vec_pretty(&v).unwrap()).unwrap();
        assert_eq!(back, v);
    }
}
