//! One `.dockerignore` pattern compiled as patternmatcher does: exact, prefix, suffix or regex.

use regex::Regex;
use std::sync::OnceLock;

/// Why a pattern list cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A `!` with nothing after it.
    #[error("illegal exclusion pattern: \"!\"")]
    BareExclusion,
    /// The glob is malformed (Go `filepath.ErrBadPattern`): bad class, trailing `\`.
    #[error("syntax error in pattern: {pattern:?}")]
    BadPattern {
        /// The offending pattern (without `!`).
        pattern: String,
    },
    /// The pattern is over 64 KiB, or compiles to more than the regex engine's size limit (10 MB
    /// of program).
    #[error("pattern too large to compile ({len} bytes): {start:?}...")]
    TooLarge {
        /// The pattern's length in bytes.
        len: usize,
        /// Its first 60 characters.
        start: String,
    },
}

/// The longest pattern compiled (64 KiB, sixteen times Linux's PATH_MAX).
const MAX_PATTERN: usize = 64 << 10;

/// Why `compile` failed.
#[derive(Debug)]
enum CompileError {
    Syntax,
    TooLarge,
}

impl From<()> for CompileError {
    fn from((): ()) -> Self {
        CompileError::Syntax
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Exact(String),
    /// Everything starting with this text (pattern ending in `**`).
    Prefix(String),
    /// Everything ending with this text (pattern starting with `**`), or equal to it minus `/`.
    Suffix(String),
    Regex(Regex),
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub(crate) exclusion: bool,
    kind: Kind,
    /// For regex patterns: `^P(/.*)?$`, matching a path or any of its parents in one pass.
    /// Built on first use: most patterns of a long `.dockerignore` never need it.
    with_parents: OnceLock<Option<Regex>>,
    /// Per-segment matchers used by `could_match_under`; `None` for a segment with `**`;
    /// empty when the pattern must be treated as able to match anywhere.
    /// Built on first use, as `with_parents`.
    segments: OnceLock<Vec<Option<Kind>>>,
    /// The pattern's text, for the lazy parts.
    pattern: String,
}

impl Compiled {
    pub(crate) fn new(pattern: &str, exclusion: bool) -> Result<Compiled, PatternError> {
        let bad = || PatternError::BadPattern {
            pattern: pattern.to_string(),
        };
        // No path a context holds is this long; refused before the regex engine spends
        // hundreds of megabytes finding out that it cannot compile it.
        if pattern.len() > MAX_PATTERN {
            return Err(PatternError::TooLarge {
                len: pattern.len(),
                start: pattern.chars().take(60).collect(),
            });
        }
        validate(pattern).map_err(|()| bad())?;
        let kind = compile(pattern).map_err(|e| match e {
            CompileError::Syntax => bad(),
            CompileError::TooLarge => PatternError::TooLarge {
                len: pattern.len(),
                start: pattern.chars().take(60).collect(),
            },
        })?;
        Ok(Compiled {
            exclusion,
            kind,
            with_parents: OnceLock::new(),
            segments: OnceLock::new(),
            pattern: pattern.to_string(),
        })
    }

    /// For regex patterns: `^P(/.*)?$`. `None` if it does not compile (the pattern itself did,
    /// so only its size could stop it), and the parents are then tried one by one.
    fn with_parents(&self) -> Option<&Regex> {
        self.with_parents
            .get_or_init(|| match &self.kind {
                Kind::Regex(re) => {
                    let inner = &re.as_str()[1..re.as_str().len() - 1];
                    Regex::new(&format!("^(?:{inner})(?s:/.*)?$")).ok()
                }
                _ => None,
            })
            .as_ref()
    }

    /// Escapes and classes can match or hide a `/` (`[^a]` matches it), so segment-wise
    /// reasoning is only sound without them; such patterns stay conservative (empty).
    fn segments(&self) -> &[Option<Kind>] {
        self.segments.get_or_init(|| {
            if self.pattern.contains(['\\', '[']) {
                return Vec::new();
            }
            self.pattern
                .split('/')
                .map(|seg| {
                    if seg.contains("**") {
                        None
                    } else {
                        compile(seg).ok()
                    }
                })
                .collect()
        })
    }

    /// Whether the pattern itself matches `path` (no parent walking).
    pub(crate) fn matches(&self, path: &str) -> bool {
        kind_matches(&self.kind, path)
    }

    /// Whether the pattern matches `path` or one of its parent directories. `path` must be
    /// relative and clean apart from an optional trailing `/` (see `is_simple`), so that its
    /// parents are exactly the prefixes that end before a `/`.
    pub(crate) fn matches_self_or_parent(&self, path: &str) -> bool {
        match (&self.kind, self.with_parents()) {
            (_, Some(re)) => re.is_match(path),
            (Kind::Exact(p), _) => path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            (Kind::Prefix(p), _) => path.starts_with(p.as_str()),
            (kind, _) => {
                path.match_indices('/')
                    .any(|(i, _)| kind_matches(kind, &path[..i]))
                    || kind_matches(kind, path)
            }
        }
    }

    /// Conservatively: could this pattern match `dir` (given as segments), an ancestor of it, or
    /// anything below it?
    pub(crate) fn could_match_under(&self, dir: &[&str]) -> bool {
        let segments = self.segments();
        if segments.is_empty() {
            return true;
        }
        for (i, seg) in dir.iter().enumerate() {
            match segments.get(i) {
                // The pattern is an ancestor of `dir`: it matched a parent of everything inside.
                None => return true,
                Some(None) => return true,
                Some(Some(kind)) => {
                    if !kind_matches(kind, seg) {
                        return false;
                    }
                }
            }
        }
        true
    }
}

fn kind_matches(kind: &Kind, path: &str) -> bool {
    match kind {
        Kind::Exact(p) => path == p,
        Kind::Prefix(p) => path.starts_with(p.as_str()),
        Kind::Suffix(s) => {
            path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|rest| path == rest)
        }
        Kind::Regex(re) => re.is_match(path),
    }
}

/// Whether the fast parent test of `matches_self_or_parent` applies to `path`: relative, no
/// empty, `.` or `..` segments (a trailing `/` is fine).
pub(crate) fn is_simple(path: &str) -> bool {
    let path = path.strip_suffix('/').unwrap_or(path);
    !path.is_empty()
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// patternmatcher's `compile` with `/` as separator.
fn compile(pattern: &str) -> Result<Kind, CompileError> {
    #[derive(PartialEq)]
    enum T {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut re = String::from("^");
    let mut ty = T::Exact;
    let chars: Vec<char> = pattern.chars().collect();
    let mut pos = 0;
    let mut first = true;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos == chars.len() {
                    if ty == T::Exact {
                        ty = T::Prefix;
                    } else {
                        re.push_str(".*");
                        ty = T::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    ty = T::Regex;
                }
                if first {
                    ty = T::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                ty = T::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                ty = T::Regex;
            }
            '\\' => match chars.get(pos) {
                Some(&next) => {
                    pos += 1;
                    push_literal(&mut re, next);
                    ty = T::Regex;
                }
                None => re.push_str("\\\\"),
            },
            '[' => {
                pos = push_class(&mut re, &chars, pos)?;
                ty = T::Regex;
            }
            ']' => {
                // Upstream passes `]` to the regex, where it is a literal.
                re.push_str("\\]");
                ty = T::Regex;
            }
            c => push_literal(&mut re, c),
        }
        first = false;
    }
    match ty {
        T::Exact => Ok(Kind::Exact(pattern.to_string())),
        T::Prefix => Ok(Kind::Prefix(pattern[..pattern.len() - 2].to_string())),
        T::Suffix => Ok(Kind::Suffix(pattern[2..].to_string())),
        T::Regex => {
            re.push('$');
            Regex::new(&re).map(Kind::Regex).map_err(|e| match e {
                regex::Error::CompiledTooBig(_) => CompileError::TooLarge,
                _ => CompileError::Syntax,
            })
        }
    }
}

fn push_literal(re: &mut String, c: char) {
    let mut buf = [0u8; 4];
    re.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

/// Translate a `[...]` class starting after `[` at `pos`; returns the position after `]`.
/// Items are emitted as escaped literals and ranges, so the class means what the glob says.
fn push_class(re: &mut String, chars: &[char], mut pos: usize) -> Result<usize, ()> {
    re.push('[');
    if chars.get(pos) == Some(&'^') {
        re.push('^');
        pos += 1;
    }
    let mut n = 0;
    loop {
        if chars.get(pos) == Some(&']') && n > 0 {
            re.push(']');
            return Ok(pos + 1);
        }
        let (lo, next) = class_char(chars, pos)?;
        pos = next;
        push_literal(re, lo);
        if chars.get(pos) == Some(&'-') {
            let (hi, next) = class_char(chars, pos + 1)?;
            pos = next;
            if hi < lo {
                // Go's filepath.Match accepts an empty range; RE2 rejects it at match time.
                return Err(());
            }
            re.push('-');
            push_literal(re, hi);
        }
        n += 1;
    }
}

/// Go's `getEsc`: one (possibly escaped) class character; `-` and `]` may not start one, and the
/// class must continue after it.
fn class_char(chars: &[char], mut pos: usize) -> Result<(char, usize), ()> {
    match chars.get(pos) {
        None | Some('-') | Some(']') => return Err(()),
        Some('\\') => pos += 1,
        Some(_) => {}
    }
    let c = *chars.get(pos).ok_or(())?;
    pos += 1;
    if pos >= chars.len() {
        return Err(());
    }
    Ok((c, pos))
}

/// Go `filepath.Match` syntax check (Unix): classes well formed, no trailing `\`.
fn validate(pattern: &str) -> Result<(), ()> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut pos = 0;
    while pos < chars.len() {
        match chars[pos] {
            '\\' => {
                if pos + 1 >= chars.len() {
                    return Err(());
                }
                pos += 2;
            }
            '[' => {
                pos = validate_class(&chars, pos + 1)?;
            }
            _ => pos += 1,
        }
    }
    Ok(())
}

fn validate_class(chars: &[char], mut pos: usize) -> Result<usize, ()> {
    if chars.get(pos) == Some(&'^') {
        pos += 1;
    }
    let mut n = 0;
    loop {
        if chars.get(pos) == Some(&']') && n > 0 {
            return Ok(pos + 1);
        }
        let (_, next) = class_char(chars, pos)?;
        pos = next;
        if chars.get(pos) == Some(&'-') {
            let (_, next) = class_char(chars, pos + 1)?;
            pos = next;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (match type, regex) as upstream's `TestCompile` names them.
    fn describe(pattern: &str) -> (&'static str, String) {
        match compile(pattern).expect("compiles") {
            Kind::Exact(_) => ("exactMatch", String::new()),
            Kind::Prefix(_) => ("prefixMatch", String::new()),
            Kind::Suffix(_) => ("suffixMatch", String::new()),
            Kind::Regex(re) => ("regexpMatch", re.as_str().to_string()),
        }
    }

    #[test]
    fn compile_cases_match_upstream() {
        let root = std::env::var_os("LIGHTER_CONFORMANCE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/conformance")
            });
        let file = root.join("dockerignore/compile-cases.tsv");
        let Ok(text) = std::fs::read_to_string(&file) else {
            eprintln!(
                "SKIP: {} not found (set LIGHTER_CONFORMANCE)",
                file.display()
            );
            return;
        };
        let mut failures = Vec::new();
        let mut passed = 0;
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (ty, re) = describe(cols[0]);
            if ty == cols[1] && re == cols[2] {
                passed += 1;
            } else {
                failures.push(format!(
                    "{:?}: want {} {:?}, got {ty} {re:?}",
                    cols[0], cols[1], cols[2]
                ));
            }
        }
        println!("compile-cases: {passed} passed, {} failed", failures.len());
        assert!(failures.is_empty(), "{failures:#?}");
        assert_eq!(passed, 21);
    }

    #[test]
    fn syntax_errors_are_reported() {
        for bad in [
            "[",
            "[]a]",
            "[x-]",
            "\\",
            "a[",
            "[a-b-c]",
            "[^bc",
            "[Local-Only]/",
        ] {
            assert!(Compiled::new(bad, false).is_err(), "{bad:?} should fail");
        }
        for good in ["[\\]a]", "[\\-x]", "a\\*b", "[a-ζ]*", "**/x"] {
            assert!(
                Compiled::new(good, false).is_ok(),
                "{good:?} should compile"
            );
        }
    }

    #[test]
    fn a_pattern_too_large_for_the_engine_says_so() {
        let huge = "*a".repeat(500_000);
        let e = Compiled::new(&huge, false).unwrap_err().to_string();
        assert!(
            e.starts_with("pattern too large to compile (1000000 bytes): \"*a*a"),
            "{e}"
        );
        assert!(e.len() < 200, "{e}");
        // Under 64 KiB but over the engine's limit: each `?` is a UTF-8 class of its own.
        let e = Compiled::new(&"?".repeat(60_000), false).unwrap_err();
        assert!(
            matches!(e, PatternError::TooLarge { len: 60_000, .. }),
            "{e}"
        );
        // A long pattern that fits is fine, and its lazy parts work.
        let long = format!("**/{}*.log", "x".repeat(10_000));
        let c = Compiled::new(&long, false).unwrap();
        let path = format!("a/{}1.log/inner", "x".repeat(10_000));
        assert!(c.matches_self_or_parent(&path));
        assert!(c.could_match_under(&["a"]));
    }
}
