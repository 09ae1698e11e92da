//! Lowering errors: a kind, a message in BuildKit's words, and the Dockerfile span.

use lighter_dockerfile::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphErrorKind {
    /// The Dockerfile asks for something impossible (a blank base, a variable in `--from`, a cycle).
    Dockerfile,
    /// `--target` names no stage.
    Target,
    /// A base image could not be resolved (the resolver's error).
    Image,
    /// Something lighter does not build yet (a foreign platform).
    NotImplemented,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GraphError {
    pub kind: GraphErrorKind,
    pub message: String,
    pub span: Option<Span>,
}

impl GraphError {
    pub fn new(kind: GraphErrorKind, message: impl Into<String>) -> GraphError {
        GraphError {
            kind,
            message: message.into(),
            span: None,
        }
    }

    pub fn at(mut self, span: Span) -> GraphError {
        self.span.get_or_insert(span);
        self
    }
}

impl From<lighter_dockerfile::shell::ShellError> for GraphError {
    fn from(e: lighter_dockerfile::shell::ShellError) -> GraphError {
        GraphError::new(GraphErrorKind::Dockerfile, e.to_string())
    }
}
