//! Lexical path cleaning exactly as Go's `path/filepath.Clean` and `Dir` do on Unix.

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
pub(crate) fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(&path[..=i]),
        None => ".".to_string(),
    }
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
    }
}
