//! The store's snapshotters ([`lighter_store::snapshot`]) as builds use them: errors as build
//! errors (a layer that cannot be fetched is an image error), and an active snapshot's root as the
//! sandbox's rootfs.

use crate::EngineError;
use lighter_store::layer::LayerInfo;
use lighter_store::snapshot::{for_store, ActiveSnapshot, Root};
use lighter_store::{Store, StoreError};
use std::path::Path;

pub use lighter_store::snapshot::View;

fn err(what: &str) -> impl FnOnce(StoreError) -> EngineError + '_ {
    move |e| match e {
        StoreError::Fetch { .. } | StoreError::Mount(_) => EngineError::from(e),
        e => {
            let kind = EngineError::from(e);
            EngineError::msg(format!("{what}: {}", kind.message)).kind(kind.kind)
        }
    }
}

/// A read-only view of a layer chain.
pub fn view(store: &Store, layers: &[LayerInfo]) -> Result<View, EngineError> {
    let what = format!("read-only view ({} layers)", layers.len());
    for_store(store).view(store, layers).map_err(err(&what))
}

/// An active (writable) snapshot.
pub struct Active {
    inner: Box<dyn ActiveSnapshot>,
}

impl Active {
    pub fn new(store: &Store, layers: &[LayerInfo]) -> Result<Active, EngineError> {
        let what = format!("snapshot ({} layers)", layers.len());
        let inner = for_store(store)
            .prepare(store, layers)
            .map_err(err(&what))?;
        Ok(Active { inner })
    }

    /// The root filesystem the RUN sandbox works in.
    pub fn rootfs(&mut self, store: &Store) -> Result<lighter_sandbox::Rootfs, EngineError> {
        Ok(match self.inner.root(store).map_err(err("snapshot"))? {
            Root::Dir(d) => lighter_sandbox::Rootfs::Dir(d),
            Root::Overlay {
                lowers,
                upper,
                work,
                merged,
            } => lighter_sandbox::Rootfs::Overlay {
                lowers,
                upper,
                work,
                merged,
            },
        })
    }

    /// Mounts the snapshot on the host (for file operations).
    pub fn mount(&mut self, store: &Store) -> Result<&Path, EngineError> {
        self.inner.mount(store).map_err(err("snapshot"))
    }

    /// Stores the changes as a layer; `None` when the step changed nothing.
    pub fn commit(self, store: &Store, skip: &[String]) -> Result<Option<LayerInfo>, EngineError> {
        self.inner.commit(store, skip).map_err(err("commit layer"))
    }
}
