//! `.dockerignore`: reading the file and matching context paths exactly as docker/BuildKit do.
//!
//! [`parse_dockerignore`] is moby/patternmatcher's `ignorefile.ReadAll`; [`Matcher`] is
//! `patternmatcher.PatternMatcher` with `MatchesOrParentMatches` semantics, plus a directory
//! pruning query for the context walker.
//!
//! ```
//! use lighter_dockerfile::dockerignore::{parse_dockerignore, Matcher};
//!
//! let patterns = parse_dockerignore("node_modules\n*.log\n!keep.log\n");
//! let matcher = Matcher::new(&patterns).expect("valid patterns");
//! assert!(matcher.matches("node_modules/x/y.js")); // a parent matches
//! assert!(matcher.matches("debug.log"));
//! assert!(!matcher.matches("keep.log")); // the later exception wins
//! assert!(!matcher.matches("src/debug.log")); // patterns are anchored at the root
//! assert!(matcher.can_skip_dir("node_modules")); // the walker need not descend
//! ```
//!
//! The engine decides which ignore file applies ([`dockerignore_candidates`]) and makes sure
//! the build still reads the Dockerfile and ignore file even when they are excluded from `COPY .`.

mod clean;
mod glob;

use std::path::{Path, PathBuf};

pub use glob::PatternError;

use glob::Compiled;

/// One cleaned `.dockerignore` line, as `ReadAll` returns it (`!` prefix kept for exceptions).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern(String);

impl Pattern {
    /// Wrap a pattern string as given to the matcher (no `ReadAll` clean-up applied).
    pub fn new(text: impl Into<String>) -> Pattern {
        Pattern(text.into())
    }

    /// The pattern text, with its leading `!` when it is an exception.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a `!` exception (re-inclusion) pattern.
    pub fn is_exclusion(&self) -> bool {
        self.0.starts_with('!')
    }
}

impl AsRef<str> for Pattern {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Read a `.dockerignore` file (`ignorefile.ReadAll`): BOM removal, `#` comments in column 1,
/// trimming, blank lines skipped, `!` exceptions, path cleaning, one leading `/` removed.
/// A bare `!` is kept; [`Matcher::new`] rejects it.
pub fn parse_dockerignore(text: &str) -> Vec<Pattern> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.split('\n') {
        // Go's line scanner drops one trailing `\r`.
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean::clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if invert {
            cleaned.insert(0, '!');
        }
        out.push(Pattern(cleaned));
    }
    out
}

/// The two ignore files BuildKit considers for a Dockerfile, in order of precedence:
/// `<dockerfile>.dockerignore` next to the Dockerfile, then `<context>/.dockerignore`.
/// Pure: the caller checks which exists.
pub fn dockerignore_candidates(dockerfile: &Path, context: &Path) -> [PathBuf; 2] {
    let mut name = dockerfile.as_os_str().to_os_string();
    name.push(".dockerignore");
    [PathBuf::from(name), context.join(".dockerignore")]
}

/// A compiled pattern list with patternmatcher's semantics.
#[derive(Debug, Clone)]
pub struct Matcher {
    patterns: Vec<Compiled>,
}

impl Matcher {
    /// Compile patterns (`patternmatcher.New`): trims, drops empty ones, cleans, splits off `!`,
    /// and validates the glob syntax. A bare `!` or a malformed glob is an error.
    pub fn new<I, S>(patterns: I) -> Result<Matcher, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut compiled = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let p = clean::clean(p);
            let (exclusion, body) = match p.strip_prefix('!') {
                Some("") => return Err(PatternError::BareExclusion),
                Some(rest) => (true, rest),
                None => (false, p.as_str()),
            };
            compiled.push(Compiled::new(body, exclusion)?);
        }
        Ok(Matcher { patterns: compiled })
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the slash-separated context-relative path is excluded: the last pattern matching
    /// the path or one of its parents decides (`MatchesOrParentMatches`).
    pub fn matches(&self, rel_path: &str) -> bool {
        if glob::is_simple(rel_path) {
            self.matches_simple(rel_path)
        } else {
            self.matches_general(rel_path)
        }
    }

    /// `MatchesOrParentMatches` step by step, for any path.
    fn matches_general(&self, rel_path: &str) -> bool {
        let parent = clean::dir(rel_path);
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            if pattern.matches(rel_path) || (parent != "." && matches_a_parent(pattern, &parent)) {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// `matches` for a clean relative path: one test per pattern covers the path and its parents.
    fn matches_simple(&self, rel_path: &str) -> bool {
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion == matched && pattern.matches_self_or_parent(rel_path) {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// True only when the directory is excluded and no `!` pattern could re-include anything
    /// at or below it, so the walker may skip the whole subtree.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        if !self.matches(rel_dir) {
            return false;
        }
        let rel_dir = rel_dir.trim_end_matches('/');
        if rel_dir.is_empty() || rel_dir == "." {
            return false;
        }
        // The last pattern matching the directory (or a parent of it) also matches everything
        // below it, so only exceptions after it can re-include anything.
        let parent = clean::dir(rel_dir);
        let decisive = self
            .patterns
            .iter()
            .rposition(|p| p.matches(rel_dir) || (parent != "." && matches_a_parent(p, &parent)));
        let Some(k) = decisive else { return false };
        if self.patterns[k].exclusion {
            return false;
        }
        let segs: Vec<&str> = rel_dir.split('/').collect();
        !self.patterns[k + 1..]
            .iter()
            .any(|p| p.exclusion && p.could_match_under(&segs))
    }

    /// The paths of `paths` that are kept (not excluded), in their input order.
    pub fn filter<'a>(&self, paths: &[&'a str]) -> Vec<&'a str> {
        paths.iter().copied().filter(|p| !self.matches(p)).collect()
    }
}

/// Whether `pattern` matches one of the prefixes `a`, `a/b`, ... of the (cleaned) `parent`.
fn matches_a_parent(pattern: &Compiled, parent: &str) -> bool {
    parent
        .match_indices('/')
        .map(|(i, _)| &parent[..i])
        .chain(std::iter::once(parent))
        .any(|prefix| pattern.matches(prefix))
}

/// Compile `patterns` and return the `paths` that stay in the build context.
pub fn filter_paths<'a, S: AsRef<str>>(
    patterns: &[S],
    paths: &[&'a str],
) -> Result<Vec<&'a str>, PatternError> {
    Ok(Matcher::new(patterns)?.filter(paths))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The one-pass parent test agrees with upstream's step-by-step walk.
        #[test]
        fn fast_path_agrees_with_general(
            pats in proptest::collection::vec(r"!?[ab*?/]{1,6}|!?\*\*/[ab*]{1,3}|!?[ab]{1,2}/\*\*|!?\*\*[ab]", 1..4),
            path in r"[ab]{1,2}(/[ab.]{1,2}){0,3}/?",
        ) {
            if let Ok(m) = Matcher::new(&pats) {
                if glob::is_simple(&path) {
                    prop_assert_eq!(m.matches_simple(&path), m.matches_general(&path), "{:?} {:?}", pats, path);
                }
            }
        }
    }
}
