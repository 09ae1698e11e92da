//! Shell patterns of `${v#p}`, `${v%p}` and `${v/p/r}` translated to regexes exactly as BuildKit does.

use regex::Regex;

/// Why a substitution pattern is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternErrorKind {
    /// A backslash escapes something other than `*`, `?` or `\`, or ends the pattern.
    #[error("invalid escape '\\{0}'")]
    InvalidEscape(String),
    /// The translated regex did not compile (should not happen).
    #[error("{0}")]
    Regex(String),
}

/// Translate a shell pattern: `*` any string (lazy unless `greedy`), `?` one character,
/// `\` escapes `*`, `?`, `\` (and is dropped before `}` and `/`); everything else is literal.
pub(crate) fn to_regex_string(
    pattern: &str,
    greedy: bool,
    anchored: bool,
) -> Result<String, PatternErrorKind> {
    let star = if greedy { ".*" } else { ".*?" };
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let mut chars = pattern.chars().peekable();
    while let Some(tok) = chars.next() {
        match tok {
            '*' => out.push_str(star),
            '?' => out.push('.'),
            '\\' => {
                if matches!(chars.peek(), Some('}') | Some('/')) {
                    continue;
                }
                match chars.next() {
                    Some(c @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(c);
                    }
                    Some(c) => return Err(PatternErrorKind::InvalidEscape(c.to_string())),
                    None => return Err(PatternErrorKind::InvalidEscape(String::new())),
                }
            }
            '[' | ']' | '{' | '}' | '.' | '+' | '(' | ')' | '|' | '^' | '$' => {
                out.push('\\');
                out.push(tok);
            }
            // Every other character is literal in both RE2 and Rust's regex syntax.
            _ => out.push(tok),
        }
    }
    Ok(out)
}

/// Compile a pattern to a regex.
pub(crate) fn compile(
    pattern: &str,
    greedy: bool,
    anchored: bool,
) -> Result<Regex, PatternErrorKind> {
    let src = to_regex_string(pattern, greedy, anchored)?;
    // Go's `.` does not match `\n` by default, nor does Rust's: same semantics.
    Regex::new(&src).map_err(|e| PatternErrorKind::Regex(e.to_string()))
}

/// `${v#p}` / `${v##p}`: remove the shortest (or longest) matching prefix.
pub(crate) fn trim_prefix(
    pattern: &str,
    value: &str,
    greedy: bool,
) -> Result<String, PatternErrorKind> {
    let re = compile(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// `${v%p}` / `${v%%p}`: reverse pattern and value, trim the prefix, reverse back.
pub(crate) fn trim_suffix(
    pattern: &str,
    value: &str,
    greedy: bool,
) -> Result<String, PatternErrorKind> {
    let pattern = reverse_pattern(pattern);
    let value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&pattern, &value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverse a pattern keeping each `\x` escape pair in order.
pub(crate) fn reverse_pattern(pattern: &str) -> String {
    let runes: Vec<char> = pattern.chars().collect();
    let n = runes.len();
    let mut out = vec!['\0'; n];
    let mut i = 0;
    while i < n {
        let tok = runes[i];
        let out_idx = n - 1 - i;
        if tok == '\\' && i != n - 1 {
            out[out_idx - 1] = tok;
            out[out_idx] = runes[i + 1];
            i += 2;
        } else {
            out[out_idx] = tok;
            i += 1;
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_suffix_trims() {
        assert_eq!(trim_prefix("*/", "a/b/c", false).unwrap(), "b/c");
        assert_eq!(trim_prefix("*/", "a/b/c", true).unwrap(), "c");
        assert_eq!(trim_suffix("/*", "a/b/c", false).unwrap(), "a/b");
        assert_eq!(trim_suffix("/*", "a/b/c", true).unwrap(), "a");
        assert_eq!(trim_prefix("a-#", "a-#x", false).unwrap(), "x");
    }

    #[test]
    fn regex_translation_and_reversal_match_upstream() {
        assert_eq!(to_regex_string("*", true, true).unwrap(), "^.*");
        assert_eq!(to_regex_string("?", true, true).unwrap(), "^.");
        assert_eq!(to_regex_string("\\*", true, true).unwrap(), "^\\*");
        assert_eq!(
            to_regex_string("(()[]{\\}^$.\\*\\?|\\\\", true, true).unwrap(),
            "^\\(\\(\\)\\[\\]\\{\\}\\^\\$\\.\\*\\?\\|\\\\"
        );
        for bad in ["\\", "\\x", "\\\\\\"] {
            assert!(to_regex_string(bad, true, true).is_err(), "{bad:?}");
        }
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
    }
}
