//! Word expansion as BuildKit's shell lexer does it: `$v`, `${v:-w}`, quoting, escapes, word splitting.
//!
//! This mirrors BuildKit's `frontend/dockerfile/shell` package: [`Lexer::process_word`] is
//! `ProcessWordWithMatches` (one string, no splitting) and [`Lexer::process_words`] is
//! `ProcessWords` (split on unquoted whitespace). Both report which variables were looked up
//! and found (`matched`) and which were looked up but unset (`unmatched`).
//!
//! ```
//! use std::collections::BTreeMap;
//! use lighter_dockerfile::shell::Lexer;
//!
//! let env: BTreeMap<String, String> = [("A".to_string(), "x y".to_string())].into();
//! let lexer = Lexer::new('\\');
//! let one = lexer.process_word("${A}-${B:-dflt}", &env).expect("expands");
//! assert_eq!(one.value, "x y-dflt");
//! assert!(one.matched.contains("A") && one.unmatched.contains("B"));
//! let words = lexer.process_words("$A 'q r'", &env).expect("splits");
//! assert_eq!(words.words, ["x", "y", "q r"]);
//! ```

mod env;
mod pattern;
mod word;

use std::collections::BTreeSet;

pub use env::Env;
pub use pattern::PatternErrorKind;

/// The result of expanding one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded text.
    pub value: String,
    /// Names that were looked up and found (set, possibly empty).
    pub matched: BTreeSet<String>,
    /// Names that were looked up and not found (unset).
    pub unmatched: BTreeSet<String>,
}

/// The result of expanding and splitting a word list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Words {
    /// The words after quote removal, expansion and splitting on unquoted whitespace.
    pub words: Vec<String>,
    /// Names that were looked up and found (set, possibly empty).
    pub matched: BTreeSet<String>,
    /// Names that were looked up and not found (unset).
    pub unmatched: BTreeSet<String>,
}

/// A failure to expand a word; `Display` matches BuildKit's text
/// (`failed to process "<word>": <reason>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {kind}")]
pub struct ShellError {
    /// The whole word being processed.
    pub word: String,
    /// What went wrong.
    pub kind: ShellErrorKind,
}

/// What went wrong while expanding a word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellErrorKind {
    /// A closing character (e.g. `}`) was never found.
    #[error("unexpected end of statement while looking for matching {0}")]
    UnexpectedEnd(char),
    /// `'` without its closing quote.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// `"` without its closing quote.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// `${` without a closing `}`.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${v/p` without the second `/`.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${:x}`, `${{x}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// An operator BuildKit does not support (`:=`, `=`, `:#`, unknown).
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${v?msg}` with `v` unset or `${v:?msg}` with `v` unset or empty.
    #[error("{name}: {message}")]
    Required {
        /// The variable name.
        name: String,
        /// The expanded message, or BuildKit's default text.
        message: String,
    },
    /// A bad `#`, `%` or `/` pattern.
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern {
        /// The pattern text.
        pattern: String,
        /// Why it is invalid.
        reason: PatternErrorKind,
    },
    /// `${}` expansions nested deeper than [`MAX_NESTING`] (BuildKit has no limit; Go's stacks
    /// grow, Rust's do not, and no real Dockerfile comes near it).
    #[error("substitutions nested more than {MAX_NESTING} levels deep")]
    TooDeep,
}

/// How deeply `${...}` expansions may nest in one word.
pub const MAX_NESTING: usize = 100;

/// BuildKit's shell lexer, configured by its escape token and processing options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset_env: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer with the given escape token (`\` or `` ` ``) and BuildKit's default options.
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// The escape token.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Keep quote characters in the output (BuildKit `RawQuotes`).
    pub fn raw_quotes(mut self, on: bool) -> Lexer {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output (BuildKit `RawEscapes`).
    pub fn raw_escapes(mut self, on: bool) -> Lexer {
        self.raw_escapes = on;
        self
    }

    /// Treat quotes as ordinary characters (BuildKit `SkipProcessQuotes`, used for heredocs).
    pub fn skip_process_quotes(mut self, on: bool) -> Lexer {
        self.skip_process_quotes = on;
        self
    }

    /// Leave references to unset variables as written (BuildKit `SkipUnsetEnv`).
    pub fn skip_unset_env(mut self, on: bool) -> Lexer {
        self.skip_unset_env = on;
        self
    }

    /// Expand one word without splitting it (BuildKit `ProcessWordWithMatches`).
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<Expansion, ShellError> {
        let out = word::run(self, word, env)?;
        Ok(Expansion {
            value: out.value,
            matched: out.matched,
            unmatched: out.unmatched,
        })
    }

    /// Expand and split into words on unquoted whitespace (BuildKit `ProcessWords`).
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Words, ShellError> {
        let out = word::run(self, word, env)?;
        Ok(Words {
            words: out.words,
            matched: out.matched,
            unmatched: out.unmatched,
        })
    }
}
