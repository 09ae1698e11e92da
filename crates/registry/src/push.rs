//! Push: every blob the registry lacks (HEAD first), mounted from another repository of the same
//! registry where one is known to have it (falling back to an upload when the registry answers
//! 202), else uploaded from the content store; the config; then the manifest under its tag last,
//! so a push that fails part way never leaves a tag pointing at half an image.

use crate::api::Registry;
use crate::{Client, ErrorKind, RegistryError, Result};
use lighter_oci::{Digest, Reference};
use lighter_store::Store;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What to push: the manifest bytes as stored and the blobs it names.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest: Vec<u8>,
    pub media_type: String,
    /// Layers and the config, each with its size.
    pub blobs: Vec<(Digest, u64)>,
}

/// How a blob got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    Existed,
    Mounted,
    Uploaded,
}

/// Progress of a push.
#[derive(Debug, Clone)]
pub enum Event {
    Blob {
        digest: Digest,
        outcome: BlobOutcome,
    },
}

/// Pushes `img` to `r`; `mount_from` names repositories of the same registry that may have its
/// blobs (where it was pulled from). Returns the manifest's digest.
pub fn push(
    client: &Client,
    store: &Store,
    r: &Reference,
    img: &Image,
    mount_from: &[String],
    progress: &(dyn Fn(Event) + Sync),
) -> Result<Digest> {
    let reg = Registry::new(client, r, true);
    let next = AtomicUsize::new(0);
    let first_error = std::sync::Mutex::new(None::<RegistryError>);
    std::thread::scope(|s| {
        for _ in 0..crate::pull::PARALLEL.min(img.blobs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((d, size)) = img.blobs.get(i) else {
                    break;
                };
                match push_blob(&reg, store, d, *size, mount_from) {
                    Ok(outcome) => progress(Event::Blob {
                        digest: d.clone(),
                        outcome,
                    }),
                    Err(e) => {
                        first_error
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                        next.store(img.blobs.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let reference = match (&r.tag, &r.digest) {
        (Some(t), _) => t.clone(),
        (None, Some(d)) => d.to_string(),
        (None, None) => "latest".into(),
    };
    if let Some(d) = &r.digest {
        if Digest::sha256(&img.manifest) != *d {
            return Err(RegistryError::new(
                ErrorKind::Digest,
                format!(
                    "{}: the image's manifest is {}, not {d}",
                    reg.what(&reference),
                    Digest::sha256(&img.manifest)
                ),
            ));
        }
    }
    reg.put_manifest(&reference, &img.manifest, &img.media_type)
}

fn push_blob(
    reg: &Registry<'_>,
    store: &Store,
    d: &Digest,
    size: u64,
    mount_from: &[String],
) -> Result<BlobOutcome> {
    if reg.has_blob(d)? {
        return Ok(BlobOutcome::Existed);
    }
    // A source repository that refuses or lacks the blob is no reason to fail: the next one, then
    // an upload.
    for from in mount_from.iter().filter(|f| **f != reg.repo) {
        if let Ok(true) = reg.mount_blob(d, from) {
            return Ok(BlobOutcome::Mounted);
        }
    }
    let path = store.content().path(d);
    // A blob the store only knows of (a build cache hit) is fetched first.
    if let Err(e) = store.ensure_blob(d) {
        return Err(RegistryError::new(
            ErrorKind::NotFound,
            format!(
                "blob {d} is not in {} (nor in the repositories it could be mounted from) and the store cannot get it: {e}",
                reg.what("")
            ),
        ));
    }
    let _slot = reg.transfer_slot();
    reg.upload_blob(d, &path, size)?;
    Ok(BlobOutcome::Uploaded)
}
