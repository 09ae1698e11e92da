//! Per-instruction argument parsers of the raw parser (BuildKit's `parseJSON`/`parseMaybeJSON`,
//! `parseNameVal`, `parseWords`, `extractBuilderFlags`) and heredoc word parsing.

use super::*;

pub(super) fn ws_words(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    ws_split(rest, 0).into_iter().map(str::to_string).collect()
}

pub(super) fn set_json(node: &mut Node, v: Vec<String>) {
    node.json = true;
    node.args = v;
}

pub(super) fn parse_maybe_json(node: &mut Node, rest: &str) -> Result<(), String> {
    if rest.is_empty() {
        return Ok(());
    }
    match parse_json(rest)? {
        Some(v) => set_json(node, v),
        None => node.args.push(rest.to_string()),
    }
    Ok(())
}

pub(crate) const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// `Ok(Some)` for a JSON array of strings, `Ok(None)` when the text is not a JSON array (shell form),
/// an error for a JSON array holding something other than strings.
pub(crate) fn parse_json(rest: &str) -> Result<Option<Vec<String>>, String> {
    let t = rest.trim_start_matches(is_space);
    if !t.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(t) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(NOT_STRING_ARRAY.to_string()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// ENV / LABEL: `KEY value` (legacy) or `k=v ...`, as key, value, separator triples.
pub(super) fn parse_name_val(rest: &str, key: &str, escape: char) -> Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    if !words[0].contains('=') {
        let parts = ws_split(rest, 2);
        if parts.len() < 2 {
            return Err(format!("{key} must have two arguments"));
        }
        return Ok(vec![
            parts[0].to_string(),
            parts[1].to_string(),
            String::new(),
        ]);
    }
    let mut out = Vec::with_capacity(words.len() * 3);
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(&w)
            ));
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

/// BuildKit's `parseWords`: split on unquoted whitespace, keeping quotes and escapes in the words.
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= chars.len() {
        let at_end = pos == chars.len();
        let ch = if at_end { '\0' } else { chars[pos] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                word.push(chars[pos]);
                pos += 1;
                continue;
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            word.push(ch);
            pos += 1;
            word.push(chars[pos]);
            pos += 1;
            continue;
        }
        word.push(ch);
        pos += 1;
    }
    words
}

/// BuildKit's `extractBuilderFlags`: the leading `--flag` words (quotes and `\` removed), and the rest.
pub(super) fn extract_flags(line: &str) -> (&str, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let b = line.as_bytes();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word: Vec<u8> = Vec::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0;
    let finish = |w: &[u8]| String::from_utf8_lossy(w).into_owned();
    while pos <= b.len() {
        let at_end = pos == b.len();
        let ch = if at_end { 0 } else { b[pos] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_ascii_whitespace() || ch == 0x0b {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return (&line[pos..], words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != b"--" && (blank_ok || !word.is_empty()) {
                words.push(finish(&word));
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_ascii_whitespace() || ch == 0x0b {
                phase = Phase::Spaces;
                if word == b"--" {
                    return (&line[pos..], words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(finish(&word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            if ch == b'\\' {
                if pos + 1 == b.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
            }
            word.push(b[pos]);
            pos += 1;
            continue;
        }
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if ch == b'\\' {
            if pos + 1 == b.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
        }
        word.push(b[pos]);
        pos += 1;
    }
    ("", words)
}

/// BuildKit's `heredocsFromLine`: the heredoc words of an instruction line, in order.
pub fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let lexer = Lexer::new('\\')
        .raw_quotes(true)
        .raw_escapes(true)
        .skip_unset_env(true);
    let empty: Vec<(String, String)> = Vec::new();
    let words = match lexer.process_words(line, &empty) {
        Ok(w) => w.words,
        Err(_) => return Ok(Vec::new()),
    };
    let mut docs = Vec::new();
    let mut i = 0;
    while i < words.len() {
        // A bare operator (`<<`, `<<-`, `3<<`) takes the next word as its delimiter (`<< EOF`).
        let w = &words[i];
        let digits = w.bytes().take_while(u8::is_ascii_digit).count();
        let bare = matches!(&w[digits..], "<<" | "<<-");
        let candidate = if bare && i + 1 < words.len() {
            i += 1;
            format!("{w} {}", words[i])
        } else {
            w.clone()
        };
        if let Some(doc) = parse_heredoc(&candidate)? {
            docs.push(doc);
        }
        i += 1;
    }
    Ok(docs)
}

/// BuildKit's `ParseHeredoc`: `^(\d*)<<(-?)\s*([^<]*)$` plus quote detection on the delimiter word.
pub fn parse_heredoc(src: &str) -> Result<Option<Heredoc>, String> {
    let digits = src.bytes().take_while(u8::is_ascii_digit).count();
    let Some(rest) = src[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(char::is_whitespace);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = src[..digits].parse::<u32>().unwrap_or(0);
    let empty: Vec<(String, String)> = Vec::new();
    let lexer = Lexer::new('\\').skip_unset_env(true);
    let words = lexer
        .process_words(rest, &empty)
        .map_err(|e| e.to_string())?
        .words;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = lexer
        .raw_quotes(true)
        .process_words(rest, &empty)
        .map_err(|e| e.to_string())?
        .words;
    if raw.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    let expand = quotes(&words[0]) == quotes(&raw[0]);
    Ok(Some(Heredoc {
        name: words[0].clone(),
        content: String::new(),
        expand,
        chomp,
        fd,
    }))
}
