//! The raw parser: Dockerfile text -> a tree of [`Node`]s exactly as BuildKit's
//! `frontend/dockerfile/parser` builds it (directives, escapes, continuations, heredocs, flags,
//! per-instruction argument splitting), with line spans and a BuildKit-identical [`Node::dump`].

use crate::shell::Lexer;
use std::fmt::Write as _;

mod args;
pub(crate) use args::parse_json;
use args::{extract_flags, parse_maybe_json, parse_name_val, set_json, ws_words};
pub use args::{heredocs_from_line, parse_heredoc, parse_words};

/// Longest physical line BuildKit's scanner accepts (its buffer is 64 KiB including the newline).
const MAX_LINE: usize = 65535;

/// A parser directive found at the top of the file (`# syntax=...`, `# escape=...`, `# check=...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub value: String,
    /// 1-based line.
    pub line: usize,
}

/// A heredoc attached to an instruction (`<<EOF`, `<<-EOF`, `3<<"EOF"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    /// The raw body, including the final newline; tabs are not stripped here even when `chomp`.
    pub content: String,
    /// False when any part of the delimiter word was quoted: the body is not expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are removed from every body line when the heredoc is used.
    pub chomp: bool,
    /// Leading digits before `<<` (file descriptor), 0 when absent.
    pub fd: u32,
}

impl Heredoc {
    /// The body as it is used: with `<<-`, leading tabs removed from every line.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        let mut out = String::with_capacity(self.content.len());
        for line in self.content.split_inclusive('\n') {
            out.push_str(line.trim_start_matches('\t'));
        }
        out
    }
}

/// One instruction as the raw parser sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The keyword, lowercased (`from`, `run`, ...; unknown keywords are kept as written, lowercased).
    pub keyword: String,
    /// The keyword as written.
    pub keyword_original: String,
    /// The whole logical line (continuations joined, comments dropped).
    pub original: String,
    /// Leading `--flags`, quotes removed, without the `--` terminator.
    pub flags: Vec<String>,
    /// Argument values (see the per-instruction rules in the module docs).
    pub args: Vec<String>,
    /// True when the arguments came from a JSON array (exec form).
    pub json: bool,
    /// For ONBUILD: the nested instruction.
    pub inner: Option<Box<Node>>,
    /// Heredocs read after the instruction line.
    pub heredocs: Vec<Heredoc>,
    /// 1-based first and last physical line.
    pub start_line: usize,
    pub end_line: usize,
    /// Byte offset of the instruction's first line in the source, and of the end of its last line.
    pub start_offset: usize,
    pub end_offset: usize,
    /// 1-based column where the keyword starts on the first line.
    pub start_col: usize,
    /// Comment lines directly above the instruction (without `#`).
    pub comments: Vec<String>,
}

/// A parse warning (BuildKit reports these without failing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawWarning {
    pub short: String,
    pub detail: String,
    pub line: usize,
}

/// The result of raw parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDockerfile {
    pub directives: Vec<Directive>,
    pub escape: char,
    pub nodes: Vec<Node>,
    pub warnings: Vec<RawWarning>,
}

impl RawDockerfile {
    /// BuildKit's `Node.Dump()` of the root plus a final newline, as the conformance `result` files hold it.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            s.push('(');
            s.push_str(&n.dump());
            s.push_str(")\n");
        }
        s
    }

    /// First and last line of all instructions (BuildKit's root node span).
    pub fn line_range(&self) -> Option<(usize, usize)> {
        Some((self.nodes.first()?.start_line, self.nodes.last()?.end_line))
    }

    pub fn directive(&self, name: &str) -> Option<&Directive> {
        self.directives.iter().find(|d| d.name == name)
    }
}

/// A raw parse error with the line range it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RawError {
    pub message: String,
    pub start_line: usize,
    pub end_line: usize,
    /// 1-based column (1 when the error concerns the whole line).
    pub col: usize,
    /// Byte offset of the start of `start_line`.
    pub offset: usize,
}

impl Node {
    /// BuildKit's `Node.Dump()` for one instruction.
    pub fn dump(&self) -> String {
        let mut s = self.keyword.clone();
        if !self.flags.is_empty() {
            s.push_str(" [");
            for (i, f) in self.flags.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(&go_quote(f));
            }
            s.push(']');
        }
        if let Some(inner) = &self.inner {
            s.push_str(" (");
            s.push_str(&inner.dump());
            s.push(')');
        }
        for a in &self.args {
            s.push(' ');
            s.push_str(&go_quote(a));
        }
        s.trim().to_string()
    }

    /// Whether this instruction may carry heredocs (RUN, COPY, ADD, also inside ONBUILD; not JSON form).
    fn can_contain_heredoc(&self) -> bool {
        let node = match (&*self.keyword, &self.inner) {
            ("onbuild", Some(inner)) => inner,
            _ => self,
        };
        matches!(&*node.keyword, "run" | "copy" | "add") && !node.json
    }
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

fn is_go_printable(c: char) -> bool {
    // Close enough to Go's unicode.IsPrint for the characters Dockerfiles hold: controls and
    // the C1 range, line/paragraph separators and non-characters are not printable.
    let u = c as u32;
    !(u < 0x20
        || (0x7f..0xa0).contains(&u)
        || u == 0xad
        || u == 0x2028
        || u == 0x2029
        || (0xfff9..=0xfffb).contains(&u)
        || u == 0xfeff
        || (u & 0xfffe) == 0xfffe)
}

fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// `[\t\v\f\r ]+` splitting, as BuildKit's `reWhitespace`.
fn ws_split(s: &str, limit: usize) -> Vec<&str> {
    let is_ws = |c: char| matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ');
    let mut out = Vec::with_capacity(if limit > 0 { limit } else { 4 });
    let mut rest = s;
    loop {
        if limit > 0 && out.len() + 1 == limit {
            out.push(rest);
            return out;
        }
        match rest.find(is_ws) {
            Some(i) => {
                out.push(&rest[..i]);
                let after = &rest[i..];
                let skip = after.len() - after.trim_start_matches(is_ws).len();
                rest = &after[skip..];
            }
            None => {
                out.push(rest);
                return out;
            }
        }
    }
}

struct Lines<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
}

struct PhysLine<'a> {
    /// Without the trailing newline / carriage return.
    text: &'a str,
    /// With its newline, as the heredoc body keeps it.
    raw: &'a str,
    offset: usize,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Result<Option<PhysLine<'a>>, RawError> {
        if self.pos >= self.src.len() {
            return Ok(None);
        }
        let rest = &self.src[self.pos..];
        let (raw, len) = match rest.find('\n') {
            Some(i) => (&rest[..=i], i + 1),
            None => (rest, rest.len()),
        };
        let offset = self.pos;
        self.pos += len;
        self.line += 1;
        let text = raw.strip_suffix('\n').unwrap_or(raw);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.len() > MAX_LINE {
            return Err(RawError {
                message: format!("dockerfile line greater than max allowed size of {MAX_LINE}"),
                start_line: self.line,
                end_line: self.line,
                col: 1,
                offset,
            });
        }
        Ok(Some(PhysLine { text, raw, offset }))
    }
}

fn trim_leading_ws(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

fn is_comment(s: &str) -> bool {
    trim_leading_ws(s).starts_with('#')
}

/// Directive parsing state: only the consecutive directive lines at the very top count.
struct Directives {
    done: bool,
    parsed: Vec<Directive>,
    escape: char,
}

impl Directives {
    fn feed(&mut self, line: &str, lineno: usize, offset: usize) -> Result<(), RawError> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = parse_directive_line(line) else {
            self.done = true;
            return Ok(());
        };
        let name = name.to_ascii_lowercase();
        if !matches!(&*name, "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        let err = |message: String| RawError {
            message,
            start_line: lineno,
            end_line: lineno,
            col: 1,
            offset,
        };
        if self.parsed.iter().any(|d| d.name == name) {
            return Err(err(format!("only one {name} parser directive can be used")));
        }
        if name == "escape" {
            match value {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                _ => {
                    return Err(err(format!(
                        "invalid escape token '{value}' does not match ` or \\"
                    )))
                }
            }
        }
        self.parsed.push(Directive {
            name,
            value: value.to_string(),
            line: lineno,
        });
        Ok(())
    }
}

/// `^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$`
fn parse_directive_line(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?;
    let rest = trim_leading_ws(rest);
    let name_len = rest
        .char_indices()
        .take_while(|(i, c)| {
            if *i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric()
            }
        })
        .count();
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let rest = trim_leading_ws(rest).strip_prefix('=')?;
    let value = trim_leading_ws(rest).trim_end_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

/// Removes a trailing continuation escape: returns the line and whether the instruction ends here.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

/// Parses Dockerfile text into raw nodes.
pub fn parse_raw(src: &str) -> Result<RawDockerfile, RawError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut lines = Lines {
        src,
        pos: 0,
        line: 0,
    };
    let mut dirs = Directives {
        done: false,
        parsed: Vec::new(),
        escape: '\\',
    };
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();

    while let Some(first) = lines.next()? {
        let start_line = lines.line;
        let text = trim_leading_ws(first.text);
        if is_comment(text) {
            let c = text[1..].trim();
            if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c.to_string());
            }
        }
        dirs.feed(text, start_line, first.offset)?;
        let stripped = if is_comment(text) { "" } else { text };
        let (head, mut ended) = trim_continuation(stripped, dirs.escape);
        if ended && head.is_empty() {
            continue;
        }
        let col = first.text.len() - text.len() + 1;
        let mut line = head.to_string();
        let mut end_offset = first.offset + first.raw.len();
        let mut empty_cont = false;
        while !ended {
            let Some(next) = lines.next()? else { break };
            end_offset = next.offset + next.raw.len();
            if is_comment(next.text) {
                continue;
            }
            if trim_leading_ws(next.text).is_empty() {
                empty_cont = true;
                continue;
            }
            let (part, e) = trim_continuation(next.text, dirs.escape);
            line.push_str(part);
            ended = e;
        }
        if empty_cont {
            warnings.push(RawWarning {
                short: format!("Empty continuation line found in: {line}"),
                detail: "Empty continuation lines will become errors in a future release"
                    .to_string(),
                line: start_line,
            });
        }
        let mut node = node_from_line(&line, dirs.escape).map_err(|message| RawError {
            message,
            start_line,
            end_line: lines.line,
            col,
            offset: first.offset,
        })?;
        let has_heredoc_marker = line.contains("<<");
        node.original = line;
        if has_heredoc_marker && node.can_contain_heredoc() {
            let docs = heredocs_from_line(&node.original).map_err(|message| RawError {
                message,
                start_line,
                end_line: lines.line,
                col,
                offset: first.offset,
            })?;
            for mut doc in docs {
                let mut terminated = false;
                while let Some(body) = lines.next()? {
                    end_offset = body.offset + body.raw.len();
                    let candidate = if doc.chomp {
                        body.text.trim_start_matches('\t')
                    } else {
                        body.text
                    };
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(body.raw);
                }
                if !terminated {
                    return Err(RawError {
                        message: format!("unterminated heredoc {}", doc.name),
                        start_line,
                        end_line: lines.line,
                        col,
                        offset: first.offset,
                    });
                }
                node.heredocs.push(doc);
            }
        }
        node.start_line = start_line;
        node.end_line = lines.line;
        node.start_offset = first.offset;
        node.end_offset = end_offset;
        node.start_col = col;
        node.comments = std::mem::take(&mut comments);
        nodes.push(node);
    }
    Ok(RawDockerfile {
        directives: dirs.parsed,
        escape: dirs.escape,
        nodes,
        warnings,
    })
}

/// BuildKit's `newNodeFromLine`: keyword, flags, then the instruction's own argument parser.
fn node_from_line(line: &str, escape: char) -> Result<Node, String> {
    let parts = ws_split(line.trim(), 2);
    let keyword_original = parts[0].to_string();
    let (rest, flags) = if parts.len() == 2 {
        extract_flags(parts[1])
    } else {
        ("", Vec::new())
    };
    let rest = rest.trim();
    let keyword = keyword_original.to_lowercase();
    let mut node = Node {
        keyword,
        keyword_original,
        flags,
        ..Node::default()
    };
    match node.keyword.as_str() {
        "add" | "copy" | "volume" => match parse_json(rest)? {
            Some(v) => set_json(&mut node, v),
            None => node.args = ws_words(rest),
        },
        "cmd" | "entrypoint" | "run" | "shell" => parse_maybe_json(&mut node, rest)?,
        "env" => node.args = parse_name_val(rest, "ENV", escape)?,
        "label" => node.args = parse_name_val(rest, "LABEL", escape)?,
        "arg" => node.args = parse_words(rest, escape),
        "expose" | "from" => node.args = ws_words(rest),
        "healthcheck" => {
            let sep = rest.find(is_space).unwrap_or(rest.len());
            if sep > 0 {
                node.args.push(rest[..sep].to_string());
                let cmd = rest[sep..].trim_start_matches(is_space);
                let mut sub = Node::default();
                parse_maybe_json(&mut sub, cmd)?;
                node.json = sub.json;
                node.args.extend(sub.args);
            }
        }
        "maintainer" | "stopsignal" | "user" | "workdir" => {
            if !rest.is_empty() {
                node.args.push(rest.to_string());
            }
        }
        "onbuild" => {
            if !rest.is_empty() {
                let mut inner = node_from_line(rest, escape)?;
                inner.original = rest.to_string();
                node.inner = Some(Box::new(inner));
            }
        }
        _ => node.args.push(String::new()),
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_dump() {
        let d = parse_raw("COPY --user=me --doit=true -- foo /tmp/\nCMD --doit [ \"a\", \"b\" ]\n")
            .unwrap();
        assert_eq!(d.dump(), "(copy [\"--user=me\" \"--doit=true\"] \"foo\" \"/tmp/\")\n(cmd [\"--doit\"] \"a\" \"b\")\n");
    }

    #[test]
    fn onbuild_and_heredoc() {
        let d = parse_raw("FROM x\nONBUILD RUN echo test\nRUN <<EOF\nhello\nEOF\n").unwrap();
        assert_eq!(d.nodes[1].dump(), "onbuild (run \"echo test\")");
        assert_eq!(d.nodes[2].heredocs[0].content, "hello\n");
        assert_eq!(d.nodes[2].end_line, 5);
    }

    #[test]
    fn continuation_rules() {
        let d = parse_raw("RUN a \\\n  b\\\\\nRUN c").unwrap();
        assert_eq!(d.nodes[0].args, vec!["a   b\\\\"]);
        assert_eq!(d.nodes.len(), 2);
    }

    #[test]
    fn env_errors() {
        assert_eq!(
            parse_raw("ENV PATH").unwrap_err().message,
            "ENV must have two arguments"
        );
        assert!(parse_raw("CMD [\"a\", 1]")
            .unwrap_err()
            .message
            .contains("strings only"));
    }
}
