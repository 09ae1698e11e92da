//! Parse errors with their Dockerfile position, and rendering for people
//! (`file:line:col: error: ...`, the offending line, a caret, what was expected).

use crate::ast::Span;

/// What kind of problem a [`ParseError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text cannot be read as Dockerfile lines (line too long, bad directive, heredoc).
    Syntax,
    /// An unknown instruction keyword.
    UnknownInstruction,
    /// An unknown flag, a flag without its value, a bad flag value.
    Flag,
    /// Missing or extra arguments, malformed arguments.
    Arguments,
    /// A JSON array holding something other than strings.
    Json,
    /// The file has no instructions, or no FROM, or an instruction before the first FROM.
    Structure,
}

/// A Dockerfile that BuildKit would reject, with the position of the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {}: {message}", span.start_line)]
pub struct ParseError {
    pub kind: ErrorKind,
    pub span: Span,
    pub message: String,
    /// What would have been accepted, when that can be said (`a flag value`, `one argument`).
    pub expected: Option<String>,
    /// A suggestion such as `did you mean COPY?`.
    pub hint: Option<String>,
}

impl ParseError {
    pub(crate) fn new(kind: ErrorKind, span: Span, message: impl Into<String>) -> Self {
        ParseError {
            kind,
            span,
            message: message.into(),
            expected: None,
            hint: None,
        }
    }

    pub(crate) fn expected(mut self, e: impl Into<String>) -> Self {
        self.expected = Some(e.into());
        self
    }

    pub(crate) fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }

    /// Renders the error for people: `file:line:col: error: message`, the line, a caret.
    pub fn render(&self, file: &str, source: &str) -> String {
        render_at(
            file,
            source,
            &self.span,
            "error",
            &self.message,
            self.expected.as_deref(),
            self.hint.as_deref(),
        )
    }
}

/// Renders a message at a span: `file:line:col: level: message`, the source line with its number, a
/// caret under the column, then `expected:` and `hint:` lines.
pub fn render_at(
    file: &str,
    source: &str,
    span: &Span,
    level: &str,
    message: &str,
    expected: Option<&str>,
    hint: Option<&str>,
) -> String {
    let line_no = span.start_line.max(1);
    let col = span.start_col.max(1);
    let text = source
        .strip_prefix('\u{feff}')
        .unwrap_or(source)
        .split('\n')
        .nth(line_no - 1)
        .unwrap_or("")
        .trim_end_matches('\r');
    let gutter = line_no.to_string().len();
    let mut out = format!("{file}:{line_no}:{col}: {level}: {message}\n");
    out.push_str(&format!("{:gutter$} |\n", ""));
    out.push_str(&format!("{line_no} | {text}\n"));
    let pad: String = text
        .chars()
        .take(col - 1)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    out.push_str(&format!("{:gutter$} | {pad}^\n", ""));
    if span.end_line > span.start_line {
        out.push_str(&format!(
            "{:gutter$} = note: the instruction continues to line {}\n",
            "", span.end_line
        ));
    }
    if let Some(e) = expected {
        out.push_str(&format!("{:gutter$} = expected: {e}\n", ""));
    }
    if let Some(h) = hint {
        out.push_str(&format!("{:gutter$} = hint: {h}\n", ""));
    }
    out
}

/// Edit distance counting an adjacent transposition as one edit (optimal string alignment), for
/// "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// The closest candidate within a small distance (BuildKit's `suggest.Search` spirit).
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    let max = (w.len() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(&w, &c.to_ascii_lowercase()), *c))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("COPPY", &["copy", "run", "cmd"]), Some("copy"));
        assert_eq!(suggest("xyzzy", &["copy", "run"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("form", "from"), 1);
    }

    #[test]
    fn render_has_caret() {
        let span = Span {
            start_line: 2,
            end_line: 2,
            start_col: 1,
            line_offset: 0,
            end_offset: 0,
        };
        let r = render_at(
            "Dockerfile",
            "FROM x\nCOPPY a b\n",
            &span,
            "error",
            "unknown instruction: COPPY",
            None,
            Some("did you mean COPY?"),
        );
        assert!(
            r.starts_with("Dockerfile:2:1: error: unknown instruction: COPPY\n"),
            "{r}"
        );
        assert!(r.contains("2 | COPPY a b\n"), "{r}");
        assert!(r.contains("  | ^\n"), "{r}");
        assert!(r.contains("hint: did you mean COPY?"), "{r}");
    }
}
