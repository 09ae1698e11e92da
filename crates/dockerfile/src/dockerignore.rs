//! `.dockerignore`: reading the file and matching context paths exactly as docker/BuildKit do.
//!
//! [`parse_dockerignore`] is moby/patternmatcher's `ignorefile.ReadAll`; [`Matcher`] is
//! `patternmatcher.PatternMatcher` with `MatchesOrParentMatches` semantics, plus a directory
//! pruning query for the context walker.

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
    has_exclusions: bool,
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
        let has_exclusions = compiled.iter().any(|c| c.exclusion);
        Ok(Matcher {
            patterns: compiled,
            has_exclusions,
        })
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the slash-separated context-relative path is excluded: the last pattern matching
    /// the path or one of its parents decides (`MatchesOrParentMatches`).
    pub fn matches(&self, rel_path: &str) -> bool {
        let parent = clean::dir(rel_path);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(rel_path);
            if !hit && parent != "." {
                let mut end = 0;
                for (i, seg) in parent_dirs.iter().enumerate() {
                    end += seg.len() + usize::from(i > 0);
                    if pattern.matches(&parent[..end]) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// True only when the directory is excluded and no `!` pattern could re-include anything
    /// at or below it, so the walker may skip the whole subtree.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        let rel_dir = rel_dir.trim_end_matches('/');
        if rel_dir.is_empty() || rel_dir == "." || !self.matches(rel_dir) {
            return false;
        }
        if !self.has_exclusions {
            return true;
        }
        let segs: Vec<&str> = rel_dir.split('/').collect();
        !self
            .patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| p.could_match_under(&segs))
    }

    /// The paths of `paths` that are kept (not excluded), in their input order.
    pub fn filter<'a>(&self, paths: &[&'a str]) -> Vec<&'a str> {
        paths.iter().copied().filter(|p| !self.matches(p)).collect()
    }
}

/// Compile `patterns` and return the `paths` that stay in the build context.
pub fn filter_paths<'a, S: AsRef<str>>(
    patterns: &[S],
    paths: &[&'a str],
) -> Result<Vec<&'a str>, PatternError> {
    Ok(Matcher::new(patterns)?.filter(paths))
}
