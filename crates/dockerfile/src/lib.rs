//! lighter-dockerfile: the pure Dockerfile front end (text -> typed AST with spans, word expansion,
//! `.dockerignore` matching, lint). No I/O beyond the strings it is given.

// Word expansion (BuildKit's shell lexer). Owned by the shell/dockerignore work.
pub mod shell;
// `.dockerignore` parsing and matching. Owned by the shell/dockerignore work.
pub mod dockerignore;

// Parser, AST and instruction modules follow (owned by the parser work).
pub mod raw;
