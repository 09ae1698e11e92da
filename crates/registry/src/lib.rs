//! lighter-registry: the OCI distribution client. Docker's reference rules (in `lighter-oci`) meet
//! the per-host settings (`hosts`: mirrors, plain HTTP, TLS roots), the credentials docker and
//! podman keep (`creds`), the registry's auth challenges (`auth`), a transport that retries, re-
//! authenticates and never forwards credentials across hosts (`transport`), the API calls (`api`),
//! and the two jobs built on them: `pull` into the store and `push` from it.
//!
//! A client of our own on the HTTP crate already in the tree (ureq), because oci-client lacks
//! multi-scope tokens, 401 re-auth and replay, retries and streaming into the store. Settings come
//! in through [`Settings`]: this library reads no environment variable.

pub mod api;
pub mod auth;
pub mod creds;
pub mod hosts;
pub mod limit;
pub mod pull;
pub mod push;
pub mod transport;

pub use api::{Manifest, Registry};
pub use creds::{CredStore, Credential};
pub use hosts::{Endpoint, HostConfig, Hosts};
pub use transport::Client;

use std::path::PathBuf;

/// What went wrong, for the binary's exit codes and hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Credentials missing or refused (401/403 after authenticating).
    Auth,
    /// No such repository, tag, manifest or blob.
    NotFound,
    /// Connection, TLS or timeout, after retries.
    Network,
    /// The registry answered something the protocol does not allow (bad JSON, huge manifest, ...).
    Protocol,
    /// Content did not match its digest.
    Digest,
    /// A settings file or credential helper is wrong.
    Config,
    /// The local store or file system.
    Io,
}

/// A registry error: its kind and a message that names the registry, repository and reference.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RegistryError {
    pub kind: ErrorKind,
    pub message: String,
}

impl RegistryError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> RegistryError {
        RegistryError {
            kind,
            message: message.into(),
        }
    }
}

impl From<lighter_store::StoreError> for RegistryError {
    fn from(e: lighter_store::StoreError) -> Self {
        let kind = match e {
            lighter_store::StoreError::DigestMismatch { .. } => ErrorKind::Digest,
            _ => ErrorKind::Io,
        };
        RegistryError::new(kind, e.to_string())
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Where the client's settings come from; the binary fills these from the environment as docker and
/// podman do (`$DOCKER_CONFIG`, `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR`, ...).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// lighter's registry settings file (`registries.toml`, BuildKit's `[registry."host"]` tables).
    pub config_file: Option<PathBuf>,
    /// Docker's `certs.d` directories (`<dir>/<host>/ca.crt`).
    pub certs_dirs: Vec<PathBuf>,
    /// Docker's `config.json` (read and written by login/logout).
    pub docker_config: Option<PathBuf>,
    /// podman's `auth.json` files, read after docker's config.
    pub auth_files: Vec<PathBuf>,
    /// The system CA bundle TLS starts from.
    pub system_roots: Option<PathBuf>,
}
