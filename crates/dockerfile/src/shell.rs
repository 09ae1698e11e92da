//! Word expansion as BuildKit's shell lexer does it: `$v`, `${v:-w}`, quoting, escapes, word splitting.
