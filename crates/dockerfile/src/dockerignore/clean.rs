//! Lexical path cleaning exactly as Go's `path/filepath.Clean` and `Dir` do on Unix.

use std::borrow::Cow;

/// Go `filepath.Clean`: collapse `//`, drop `.` segments, fold `x/..`, drop `..` above a rooted
/// path, remove a trailing `/`; an empty result is `.`.
pub(crate) fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    // Number of leading `..` segments that cannot be folded (relative paths only).
    let mut dotdot = 0usize;
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.len() > dotdot {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                    dotdot += 1;
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go `filepath.Dir`: everything before the last `/`, cleaned (`.` when there is no `/`).
/// Borrows when the prefix is already clean (the common case for walker paths).
pub(crate) fn dir(path: &str) -> Cow<'_, str> {
    match path.rfind('/') {
        Some(0) => Cow::Borrowed("/"),
        Some(i) if is_clean(&path[..i]) => Cow::Borrowed(&path[..i]),
        Some(i) => Cow::Owned(clean(&path[..=i])),
        None => Cow::Borrowed("."),
    }
}

/// Whether `clean` would return `path` unchanged.
fn is_clean(path: &str) -> bool {
    !path.is_empty()
        && !path.ends_with('/')
        && path
            .split('/')
            .enumerate()
            .all(|(i, seg)| seg != "." && seg != ".." && (i == 0 || !seg.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (i, o) in [
            ("", "."),
            ("./foo", "foo"),
            ("dir1//foo", "dir1/foo"),
            ("./dir1/../foo2", "foo2"),
            ("docs/", "docs"),
            ("/../a", "/a"),
            ("../../a/..", "../.."),
            ("/", "/"),
            ("a/b/../../..", ".."),
            ("!foo/../bar", "bar"),
        ] {
            assert_eq!(clean(i), o, "clean({i:?})");
        }
        assert_eq!(dir("a/b/"), "a/b");
        assert_eq!(dir("a"), ".");
        assert_eq!(dir("/a"), "/");
        assert_eq!(dir("a/./b"), "a");
        assert_eq!(dir("a//b"), "a");
        assert_eq!(dir("../b"), "..");
        assert_eq!(dir("/x/y"), "/x");
    }
}
