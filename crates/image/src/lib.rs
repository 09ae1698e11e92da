//! lighter-image: images in the store (manifest + config + layers, refs as GC roots), the formats users
//! exchange them in (docker-archive, OCI layout, rootfs tarballs), and garbage collection.

pub mod analysis;
mod archive;
pub mod check;
mod gc;
mod layout;
mod model;
mod refs;
pub mod stream;
pub mod view;

pub use archive::{import_rootfs, load, load_dir, save, save_dir, SaveFormat};
pub use gc::{prune, PruneReport};
pub use model::{
    assemble, commit, days_from_civil, now_rfc3339, parse_rfc3339, rfc3339, Image, ImageRecord,
};
pub use refs::{add_repo_digest, list, remove, repo_digests, resolve, tag, Listed};

/// Errors of image operations, each naming the image, file or entry concerned.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] lighter_store::StoreError),
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    Reference(#[from] lighter_oci::ReferenceError),
    #[error("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")]
    InUse { id: String },
    #[error("{path}: {message}")]
    Format { path: String, message: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

pub(crate) fn io_err(
    op: &'static str,
    path: impl std::fmt::Display,
) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.to_string();
    move |source| ImageError::Io { op, path, source }
}

pub(crate) fn format_err(path: impl std::fmt::Display, message: impl Into<String>) -> ImageError {
    ImageError::Format {
        path: path.to_string(),
        message: message.into(),
    }
}
