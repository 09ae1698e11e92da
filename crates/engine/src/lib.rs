//! lighter-engine: wires the others into `build(BuildRequest) -> BuildResult` with progress events.
//! `build` resolves the base images, lowers the Dockerfile to the build graph (`lighter-graph`:
//! all expansion happens there), and has the solver (`lighter-solver`: scheduling, cache keys,
//! explanations) run it through [`step`]'s local worker over the store, the sandbox, the build
//! context and the registry, with the store's cache index ([`index`]).

// The build context read in place: .dockerignore, selection, content hashing.
pub mod context;
mod context_view;
// COPY/ADD semantics on real filesystems.
pub mod fileop;
// The in-process SSH agent for `--ssh ID=KEYFILE`.
pub mod ssh_agent;
mod ssh_pem;

mod build;
pub mod cache;
pub mod config;
mod copyplan;
pub mod critical;
pub mod images;
mod index;
pub mod lower;
mod named;
mod remote;
// Snapshots of a stage's filesystem (overlay, or copy where overlayfs cannot mount).
pub mod snapshot;
mod step;

pub use build::{build, BuildRequest, BuildResult, Event, NamedContext, Output, Secret};
pub use lower::validate;

use lighter_dockerfile::Span;

/// A build failure: what went wrong, of which kind, and, when it comes from an instruction, where.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    pub message: String,
    pub kind: ErrorKind,
    /// The instruction's position in the Dockerfile.
    pub span: Option<Span>,
    /// Extra lines (a failing RUN's last output lines).
    pub detail: Vec<String>,
}

/// What kind of failure an [`EngineError`] is (the binary maps kinds to exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The Dockerfile asks for something invalid (a blank base, a variable in `--from`, an
    /// expansion error, a missing target or stage).
    Dockerfile,
    /// An image could not be found, pulled or read from a registry.
    Image,
    /// A RUN step exited with this code.
    Step(i32),
    /// A registry could not be reached (connection, TLS, timeouts, after retries).
    Network,
    /// The store could not be read or written (its files, its database, a layer).
    Store,
    /// A file outside the store could not be read or written.
    Io,
    /// The build asks for something lighter does not do yet (another platform, a source kind).
    NotImplemented,
    /// Anything else: bad input that is not the Dockerfile's, the sandbox, a cache export.
    Other,
}

/// The registry's error kind as a build error's: unreachable is `Network`, the rest `Image`.
pub(crate) fn registry_kind(kind: lighter_registry::ErrorKind) -> ErrorKind {
    match kind {
        lighter_registry::ErrorKind::Network => ErrorKind::Network,
        lighter_registry::ErrorKind::Io => ErrorKind::Store,
        _ => ErrorKind::Image,
    }
}

impl From<lighter_store::StoreError> for EngineError {
    fn from(e: lighter_store::StoreError) -> EngineError {
        let kind = match e {
            lighter_store::StoreError::Fetch { network: true, .. } => ErrorKind::Network,
            lighter_store::StoreError::Fetch { .. } => ErrorKind::Image,
            lighter_store::StoreError::Mount(_) => ErrorKind::Other,
            _ => ErrorKind::Store,
        };
        EngineError::msg(e.to_string()).kind(kind)
    }
}

impl EngineError {
    pub fn msg(m: impl Into<String>) -> EngineError {
        EngineError {
            message: m.into(),
            kind: ErrorKind::Other,
            span: None,
            detail: Vec::new(),
        }
    }

    pub fn kind(mut self, kind: ErrorKind) -> EngineError {
        self.kind = kind;
        self
    }

    pub fn at(mut self, span: Span) -> EngineError {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }
}
