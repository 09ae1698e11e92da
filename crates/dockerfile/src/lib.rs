//! lighter-dockerfile: the pure Dockerfile front end (text -> typed AST with spans, word expansion,
//! `.dockerignore` matching, lint). No I/O beyond the strings it is given.

// Word expansion (BuildKit's shell lexer). Owned by the shell/dockerignore work.
pub mod shell;
// `.dockerignore` parsing and matching. Owned by the shell/dockerignore work.
pub mod dockerignore;

// Parser, AST and instruction modules follow (owned by the parser work).
pub mod ast;
mod error;
mod flags;
mod instructions;
pub mod lint;
pub mod raw;

pub use ast::*;
pub use error::{edit_distance, render_at, ErrorKind, ParseError};
pub use instructions::KEYWORDS;
pub use lint::{check, CheckConfig, Severity, Warning};
pub use raw::{Directive, Heredoc, RawDockerfile, RawWarning};

use instructions::{parse_node, span_of, Parsed};

/// Parses Dockerfile text into the typed AST, validating it as far as BuildKit does before building:
/// syntax, directives, unknown instructions and flags, arguments, JSON arrays, and the stage structure.
pub fn parse(src: &str) -> Result<Dockerfile, ParseError> {
    let raw = raw::parse_raw(src).map_err(|e| {
        ParseError::new(
            ErrorKind::Syntax,
            Span {
                start_line: e.start_line,
                end_line: e.end_line,
                start_col: e.col,
                line_offset: e.offset,
                end_offset: e.offset,
            },
            e.message,
        )
    })?;
    if raw.nodes.is_empty() {
        return Err(ParseError::new(
            ErrorKind::Structure,
            Span {
                start_line: 1,
                end_line: 1,
                start_col: 1,
                ..Span::default()
            },
            "file with no instructions",
        )
        .expected("at least a FROM instruction"));
    }
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in raw.nodes {
        let node_span = span_of(&node);
        let from_keyword = (node.keyword == "from").then(|| node.keyword_original.clone());
        let comments = node.comments.clone();
        match parse_node(node)? {
            Parsed::From(f) => {
                if let Some(name) = &f.name {
                    if stages.iter().any(|s| s.name.as_deref() == Some(name)) {
                        return Err(ParseError::new(
                            ErrorKind::Structure,
                            node_span,
                            format!("duplicate stage name \"{name}\""),
                        ));
                    }
                }
                stages.push(Stage {
                    name: f.name,
                    name_original: f.name_original,
                    base: f.base,
                    platform: f.platform,
                    as_keyword: f.as_keyword,
                    index: stages.len(),
                    span: node_span,
                    keyword: from_keyword.unwrap_or_default(),
                    comments,
                    instructions: Vec::new(),
                });
            }
            Parsed::Other(i) => match stages.last_mut() {
                Some(stage) => stage.instructions.push(i),
                None if matches!(i.kind, InstructionKind::Arg(_)) => meta_args.push(i),
                None => {
                    return Err(ParseError::new(
                        ErrorKind::Structure,
                        i.span,
                        "no build stage in current context",
                    )
                    .expected("FROM before any instruction other than ARG"))
                }
            },
        }
    }
    if stages.is_empty() {
        let span = meta_args
            .last()
            .map(|i: &Instruction| i.span)
            .unwrap_or_default();
        return Err(ParseError::new(
            ErrorKind::Structure,
            span,
            "dockerfile contains no stages to build",
        )
        .expected("a FROM instruction"));
    }
    Ok(Dockerfile {
        directives: raw.directives,
        escape: raw.escape,
        meta_args,
        stages,
        warnings: raw.warnings,
    })
}
