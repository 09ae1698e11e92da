//! The character-level state machine behind `Lexer` (BuildKit's `shellWord`).

use std::collections::BTreeSet;

use super::pattern;
use super::{Env, Lexer, ShellError, ShellErrorKind};

/// Everything one run produces.
pub(super) struct Output {
    pub(super) value: String,
    pub(super) words: Vec<String>,
    pub(super) matched: BTreeSet<String>,
    pub(super) unmatched: BTreeSet<String>,
}

pub(super) fn run(lexer: &Lexer, source: &str, env: &dyn Env) -> Result<Output, ShellError> {
    let mut sw = ShellWord {
        chars: source.chars().collect(),
        pos: 0,
        env,
        escape: lexer.escape,
        raw_quotes: lexer.raw_quotes,
        raw_escapes: lexer.raw_escapes,
        skip_unset_env: lexer.skip_unset_env,
        skip_process_quotes: lexer.skip_process_quotes,
        matched: BTreeSet::new(),
        unmatched: BTreeSet::new(),
        depth: 0,
    };
    let raw = sw.raw_escapes;
    match sw.process_stop_on(None, raw) {
        Ok((value, words)) => Ok(Output {
            value,
            words,
            matched: sw.matched,
            unmatched: sw.unmatched,
        }),
        Err(kind) => Err(ShellError {
            word: source.to_string(),
            kind,
        }),
    }
}

type Res<T> = Result<T, ShellErrorKind>;

struct ShellWord<'a> {
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_unset_env: bool,
    skip_process_quotes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
    /// `${` expansions open around the current position.
    depth: usize,
}

/// Word splitting state (BuildKit's `wordsStruct`).
#[derive(Default)]
struct WordsAcc {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl WordsAcc {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Process until `stop` (consumed) or the end of input; returns the text and its words.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Res<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let out = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn process_stop_on_inner(&mut self, stop: Option<char>) -> Res<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = WordsAcc::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            let special = match ch {
                '$' => Some(self.process_dollar()?),
                '\'' if !self.skip_process_quotes => Some(self.process_single_quote()?),
                '"' if !self.skip_process_quotes => Some(self.process_double_quote()?),
                _ => None,
            };
            if let Some(tmp) = special {
                result.push_str(&tmp);
                if ch == '$' {
                    words.add_string(&tmp);
                } else {
                    words.add_raw_string(&tmp);
                }
                continue;
            }
            self.next();
            if ch == self.escape {
                if self.raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                // The escape token escapes the next character; a trailing one is dropped.
                let Some(escaped) = self.next() else { break };
                words.add_raw_char(escaped);
                result.push(escaped);
            } else {
                words.add_char(ch);
                result.push(ch);
            }
        }
        match stop {
            Some(c) => Err(ShellErrorKind::UnexpectedEnd(c)),
            None => Ok((result, words.finish())),
        }
    }

    fn process_single_quote(&mut self) -> Res<String> {
        let mut result = String::new();
        let open = self.next();
        if self.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(ShellErrorKind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Res<String> {
        let mut result = String::new();
        let open = self.next();
        if self.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(ShellErrorKind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // An escape at the end of the word is ignored.
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.peek().filter(|c| is_digit(*c)) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn process_dollar(&mut self) -> Res<String> {
        self.next(); // the '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // the '{'
        if self.depth >= super::MAX_NESTING {
            return Err(ShellErrorKind::TooDeep);
        }
        self.depth += 1;
        let out = self.process_braced();
        self.depth -= 1;
        out
    }

    /// The rest of `${...}` after the brace.
    fn process_braced(&mut self) -> Res<String> {
        match self.peek() {
            None => return Err(ShellErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ShellErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(mut ch) = self.next() else {
            // Go's scanner yields EOF (-1) here, which falls to "unsupported modifier".
            return Err(ShellErrorKind::MissingBrace);
        };
        let mut chs = ch.to_string();
        let mut null_is_unset = false;
        match ch {
            '}' => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                if ch == ':' {
                    null_is_unset = true;
                    match self.next() {
                        Some(c) => {
                            ch = c;
                            chs.push(c);
                        }
                        None => return Err(ShellErrorKind::MissingBrace),
                    }
                }
                self.process_modifier(&name, ch, &chs, null_is_unset)
            }
            '/' => self.process_replace(&name),
            _ => Err(ShellErrorKind::UnsupportedModifier(chs)),
        }
    }

    fn process_modifier(
        &mut self,
        name: &str,
        ch: char,
        chs: &str,
        null_is_unset: bool,
    ) -> Res<String> {
        let raw = ch == '#' || ch == '%';
        if null_is_unset && raw {
            return Err(ShellErrorKind::UnsupportedModifier(chs.to_string()));
        }
        let mut word = match self.process_stop_on(Some('}'), raw) {
            Ok((w, _)) => w,
            Err(e) => {
                if self.peek().is_none() {
                    return Err(ShellErrorKind::MissingBrace);
                }
                return Err(e);
            }
        };
        let value = self.get_env(name);
        if self.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{chs}{word}}}"));
        }
        let empty = value
            .as_deref()
            .is_none_or(|v| null_is_unset && v.is_empty());
        match ch {
            '-' => Ok(if empty {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if empty { String::new() } else { word }),
            '?' => match value {
                None => Err(required(name, word, "is not allowed to be unset")),
                Some(v) if null_is_unset && v.is_empty() => {
                    Err(required(name, word, "is not allowed to be empty"))
                }
                Some(v) => Ok(v),
            },
            '%' | '#' => {
                let greedy = word.starts_with(ch);
                if greedy {
                    word.remove(0);
                }
                let value = value.unwrap_or_default();
                let trimmed = if ch == '%' {
                    pattern::trim_suffix(&word, &value, greedy)
                } else {
                    pattern::trim_prefix(&word, &value, greedy)
                };
                trimmed.map_err(|reason| ShellErrorKind::InvalidPattern {
                    pattern: word,
                    reason,
                })
            }
            _ => Err(ShellErrorKind::UnsupportedModifier(chs.to_string())),
        }
    }

    fn process_replace(&mut self, name: &str) -> Res<String> {
        let replace_all = self.peek() == Some('/');
        if replace_all {
            self.next();
        }
        let pat = match self.process_stop_on(Some('/'), true) {
            Ok((p, _)) => p,
            Err(e) => {
                if self.peek().is_none() {
                    return Err(ShellErrorKind::MissingSlash);
                }
                return Err(e);
            }
        };
        let replacement = match self.process_stop_on(Some('}'), true) {
            Ok((r, _)) => r,
            Err(e) => {
                if self.peek().is_none() {
                    return Err(ShellErrorKind::MissingBrace);
                }
                return Err(e);
            }
        };
        let value = self.get_env(name);
        if self.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}/{pat}/{replacement}}}"));
        }
        let value = value.unwrap_or_default();
        let re = pattern::compile(&pat, true, false).map_err(|reason| {
            ShellErrorKind::InvalidPattern {
                pattern: pat.clone(),
                reason,
            }
        })?;
        Ok(if replace_all {
            // Go's ReplaceAllString expands `$1`-style references; so does `replace_all`.
            re.replace_all(&value, replacement.as_str()).into_owned()
        } else {
            match re.find(&value) {
                Some(m) => format!(
                    "{}{}{}",
                    &value[..m.start()],
                    replacement,
                    &value[m.end()..]
                ),
                None => value,
            }
        })
    }
}

fn required(name: &str, word: String, default: &str) -> ShellErrorKind {
    let message = if word.is_empty() {
        default.to_string()
    } else {
        word
    };
    ShellErrorKind::Required {
        name: name.to_string(),
        message,
    }
}
