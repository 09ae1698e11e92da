//! lighter-store: content-addressed blobs (verified, fsynced, atomically renamed), the metadata DB
//! (redb, transactional), the layer tar codec with whiteouts and parallel compression, and unpacked
//! layer directories that overlay snapshots are made of.

pub mod compress;
pub mod content;
pub mod fsroot;
pub mod layer;
pub mod meta;
mod pargz;
pub mod session;
pub mod snapshot;
pub mod targuard;

use std::path::{Path, PathBuf};

pub use content::{Content, Ingest};
pub use meta::{Meta, Table};

/// On-disk layout version, written to `<root>/version`.
pub const LAYOUT_VERSION: u32 = 1;

/// Errors from the store, each with the path or digest it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("digest mismatch: expected {expected}, got {actual} ({size} bytes)")]
    DigestMismatch {
        expected: lighter_oci::Digest,
        actual: lighter_oci::Digest,
        size: u64,
    },
    #[error("blob {0} not found in the store")]
    NotFound(lighter_oci::Digest),
    #[error("metadata database {path}: {message}")]
    Db { path: PathBuf, message: String },
    #[error("store at {path} has layout version {found}, this lighter understands {expected}")]
    Version {
        path: PathBuf,
        found: String,
        expected: u32,
    },
    #[error("layer entry {entry:?}: {message}")]
    Layer { entry: String, message: String },
    #[error("{0}")]
    Invalid(String),
    /// A blob the store lacks could not be fetched from where it should come from.
    #[error("layer {digest}: {message}")]
    Fetch {
        digest: lighter_oci::Digest,
        message: String,
        /// Where it comes from could not be reached (not: it is not there).
        network: bool,
    },
    /// A snapshot could not be mounted.
    #[error("{0}")]
    Mount(String),
    /// Other processes kept the store longer than an exclusive lock waits.
    #[error(
        "store lock {path} is held by {}; try again when they have finished",
        holders_text(holders)
    )]
    Busy { path: PathBuf, holders: Vec<u32> },
}

fn holders_text(pids: &[u32]) -> String {
    if pids.is_empty() {
        return "other lighter processes".into();
    }
    let named: Vec<String> = pids
        .iter()
        .map(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| {
                    c.split(|b| *b == 0)
                        .filter(|a| !a.is_empty())
                        .take(3)
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            if cmd.is_empty() {
                format!("pid {p}")
            } else {
                format!("pid {p} ({cmd})")
            }
        })
        .collect();
    named.join(", ")
}

/// Bytes in the regular files under `p` (or of `p` itself).
pub fn tree_size(p: &Path) -> u64 {
    walkdir::WalkDir::new(p)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { op, path, source }
}

/// Where blobs this store lacks may come from (a build cache in a registry): given a digest, it
/// stores that blob (and returns true) or says it does not have it (false).
pub type BlobFetcher = std::sync::Arc<dyn Fn(&lighter_oci::Digest) -> Result<bool> + Send + Sync>;

/// The store: a root directory with `blobs/`, `ingest/`, `layers/`, `tmp/` and `meta.redb`.
#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    content: Content,
    meta: Meta,
    remote: std::sync::Arc<std::sync::Mutex<Vec<BlobFetcher>>>,
    settings: Settings,
    session: std::sync::Arc<session::Session>,
}

/// How a store writes and snapshots: resolved by the binary (flags, config, the environment) and
/// handed in, since no library reads the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `SOURCE_DATE_EPOCH`: layer mtimes are clamped to it and new history entries and images
    /// are stamped with it.
    pub source_date_epoch: Option<i64>,
    /// Threads compressing a gzip layer (every core when `None`).
    pub gzip_threads: Option<usize>,
    /// Which snapshotter builds use.
    pub snapshotter: SnapshotterChoice,
}

/// The snapshotter a store's builds use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SnapshotterChoice {
    /// Overlay where this kernel mounts it, else copy.
    #[default]
    Auto,
    Overlay,
    Copy,
}

impl std::str::FromStr for SnapshotterChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "" | "auto" => Ok(SnapshotterChoice::Auto),
            "overlay" => Ok(SnapshotterChoice::Overlay),
            "copy" => Ok(SnapshotterChoice::Copy),
            other => Err(format!("{other}: expected overlay, copy or auto")),
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

impl Store {
    /// Opens (creating when missing) the store at `root`.
    /// The store with these settings.
    pub fn with_settings(mut self, settings: Settings) -> Store {
        self.settings = settings;
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn open(root: &Path) -> Result<Store> {
        for d in ["blobs/sha256", "ingest", "layers", "tmp", "cache-mounts"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        // Unpacked layers and snapshots hold images' files as they are, device nodes and setuid
        // programs among them: only the store's owner may reach them (docker's root is 0710).
        use std::os::unix::fs::PermissionsExt;
        for d in ["layers", "tmp", "cache-mounts"] {
            let p = root.join(d);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err("chmod", &p))?;
        }
        let vpath = root.join("version");
        match std::fs::read_to_string(&vpath) {
            Ok(v) if v.trim() == LAYOUT_VERSION.to_string() => {}
            Ok(v) => {
                return Err(StoreError::Version {
                    path: root.to_path_buf(),
                    found: v.trim().to_string(),
                    expected: LAYOUT_VERSION,
                })
            }
            Err(_) => content::write_atomic(
                &vpath,
                LAYOUT_VERSION.to_string().as_bytes(),
                &root.join("tmp"),
            )?,
        }
        let session = session::Session::open(root)?;
        Ok(Store {
            root: root.to_path_buf(),
            content: Content::new(root, session.ingest_dir()),
            meta: Meta::new(root.join("meta.redb")),
            remote: Default::default(),
            settings: Settings::default(),
            session,
        })
    }

    /// This process's session in the store (see [`session`]).
    pub fn session(&self) -> &std::sync::Arc<session::Session> {
        &self.session
    }

    /// Takes the store exclusively (garbage collection, repair): waits at most `limit` for every
    /// other process using it to finish; `notify` hears the holders' pids once if that takes a while.
    pub fn exclusive(
        &self,
        limit: std::time::Duration,
        notify: &mut dyn FnMut(&[u32]),
    ) -> Result<session::Exclusive> {
        self.session.exclusive(limit, notify)
    }

    /// Adds a source for blobs the store lacks, asked in the order added (see [`Store::ensure_blob`]).
    pub fn add_blob_fetcher(&self, f: BlobFetcher) {
        self.remote
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(f);
    }

    /// Makes sure blob `d` is in the store: fetched from a blob fetcher when it is not (a layer that
    /// a build cache hit referenced and a later step reads). `NotFound` when nobody has it.
    pub fn ensure_blob(&self, d: &lighter_oci::Digest) -> Result<()> {
        if self.content.exists(d) {
            return Ok(());
        }
        let fetchers = self
            .remote
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // A source that fails is reported only when no other has the blob.
        let mut first_error = None;
        for f in fetchers {
            match f(d) {
                Ok(true) if self.content.exists(d) => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| StoreError::NotFound(d.clone())))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn content(&self) -> &Content {
        &self.content
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// A fresh private temporary directory inside the store (same filesystem, so renames are atomic).
    pub fn temp_dir(&self, prefix: &str) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.session.work_dir())
            .map_err(io_err("create temp dir in", self.session.work_dir()))
    }

    /// Where the unpacked (overlay-format) directory of a layer with this diffID lives.
    pub fn layer_dir(&self, diff_id: &lighter_oci::Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// Directory for `RUN --mount=type=cache` with this id.
    pub fn cache_mount_dir(&self, id: &str) -> PathBuf {
        let key = lighter_oci::Digest::sha256(id.as_bytes());
        self.root.join("cache-mounts").join(&key.hex()[..32])
    }
}
