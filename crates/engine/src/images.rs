//! Images a build reads (`FROM`, `COPY --from=IMAGE`, `RUN --mount=from=IMAGE`, named contexts
//! `docker-image://`): from the store, pulled from the registry when missing, or checked against
//! the registry first with `--pull` (a manifest HEAD; nothing is downloaded when it is unchanged).
//! Also [`pull`], the one pull-and-record used by `lighter pull` and by builds.

use crate::EngineError;
use lighter_image::Image;
use lighter_oci::{Digest, Reference};
use lighter_registry::pull::{Event, Platform};
use lighter_registry::Client;
use lighter_store::{Store, Table};

/// How a build finds images.
#[derive(Clone, Default)]
pub struct ImageSource {
    /// The registry client; `None`: the store only.
    pub registry: Option<std::sync::Arc<Client>>,
    /// `--pull`: ask the registry whether the tag moved, even when the store has the image.
    pub always_check: bool,
    /// `--platform` to pull for (the host's by default).
    pub platform: Option<Platform>,
    /// An image the store lacks is resolved to its manifest and config only; its layers are
    /// fetched when something reads them (builds with `--cache-from`, where steps may all hit).
    pub lazy: bool,
    /// Layers (and bytes) of lazily resolved images fetched so far.
    pub fetched: std::sync::Arc<crate::cache::Fetched>,
    /// Lazily resolved images of this build by name: resolved once, so every stage sees one image.
    pub resolved: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Image>>>,
}

impl std::fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageSource")
            .field("registry", &self.registry.is_some())
            .field("always_check", &self.always_check)
            .finish()
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub id: Digest,
    /// The digest the registry has for the reference (RepoDigest).
    pub digest: Digest,
    /// False when the store had every layer already.
    pub downloaded: u64,
}

/// Pulls `r` into the store and records it: tagged (when pulled by tag) and with its RepoDigest,
/// once every blob is verified.
pub fn pull(
    store: &Store,
    client: &Client,
    r: &Reference,
    platform: &Platform,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<Pulled, EngineError> {
    let f = lighter_registry::pull::fetch(client, store, r, platform, progress)
        .map_err(|e| EngineError::msg(e.message).kind(crate::registry_kind(e.kind)))?;
    let tags: Vec<Reference> = if r.digest.is_none() {
        vec![r.clone()]
    } else {
        Vec::new()
    };
    let id = lighter_image::commit(store, &f.config, &f.layers, &tags).map_err(|e| {
        EngineError::msg(format!("record {}: {e}", r.familiar())).kind(crate::ErrorKind::Store)
    })?;
    lighter_image::add_repo_digest(store, r, &f.manifest_digest, &id)
        .map_err(|e| EngineError::msg(e.to_string()))?;
    Ok(Pulled {
        id,
        digest: f.manifest_digest,
        downloaded: f.downloaded,
    })
}

impl ImageSource {
    /// The image `name` names: from the store, or pulled. `what` says who asks, for messages.
    pub fn resolve(&self, store: &Store, name: &str, what: &str) -> Result<Image, EngineError> {
        self.find(store, name, what).map_err(|e| match e.kind {
            crate::ErrorKind::Other => e.kind(crate::ErrorKind::Image),
            _ => e,
        })
    }

    fn find(&self, store: &Store, name: &str, what: &str) -> Result<Image, EngineError> {
        let local = lighter_image::resolve(store, name).ok();
        let Some(client) = &self.registry else {
            return local.ok_or_else(|| {
                EngineError::msg(format!(
                    "{what}: image \"{name}\" is not in the store and no registry is configured"
                ))
            });
        };
        let Ok(r) = Reference::parse(name) else {
            return local.ok_or_else(|| {
                EngineError::msg(format!("{what}: \"{name}\" is not a valid image reference"))
            });
        };
        if let Some(img) = &local {
            if !self.always_check || r.digest.is_some() {
                return Ok(img.clone());
            }
            // --pull: unchanged when the registry's digest for the tag is one this image has.
            let reg = lighter_registry::Registry::new(client, &r, false);
            let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
            if let Ok(Some(remote)) = reg.head_manifest(&tag) {
                if has_repo_digest(store, &r, &remote, &img.id) {
                    return Ok(img.clone());
                }
            }
        }
        let platform = self.platform.clone().unwrap_or_else(Platform::host);
        if self.lazy && local.is_none() {
            let mut seen = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(img) = seen.get(name) {
                return Ok(img.clone());
            }
            let img = lazy_image(store, client, &r, &platform, &self.fetched).map_err(|e| {
                EngineError::msg(format!("{what}: {}", e.message))
                    .kind(crate::registry_kind(e.kind))
            })?;
            seen.insert(name.to_string(), img.clone());
            return Ok(img);
        }
        let pulled = pull(store, client, &r, &platform, &|_| {}).map_err(|e| {
            let hint = if local.is_none() {
                format!(" (the store does not have it either: pull it, load it with `lighter load -i FILE`, or make it with `lighter import ROOTFS.tar {name}`)")
            } else {
                String::new()
            };
            EngineError::msg(format!("{what}: {}{hint}", e.message)).kind(e.kind)
        })?;
        lighter_image::Image::read(store, &pulled.id).map_err(|e| EngineError::msg(e.to_string()))
    }
}

/// `r` as its manifest and config, not recorded in the store: its layer blobs become fetchable by
/// the store (downloaded and unpacked when a step reads them).
fn lazy_image(
    store: &Store,
    client: &std::sync::Arc<Client>,
    r: &Reference,
    platform: &Platform,
    fetched: &std::sync::Arc<crate::cache::Fetched>,
) -> Result<Image, lighter_registry::RegistryError> {
    let m = lighter_registry::pull::fetch_meta(client, r, platform)?;
    let fetched = fetched.clone();
    let config: serde_json::Value = serde_json::from_slice(&m.config).map_err(|e| {
        lighter_registry::RegistryError::new(
            lighter_registry::ErrorKind::Protocol,
            format!("{r}: config is not JSON: {e}"),
        )
    })?;
    let id = Digest::sha256(&m.config);
    let layers: std::collections::HashMap<Digest, lighter_store::layer::LayerInfo> = m
        .layers
        .iter()
        .map(|l| (l.digest.clone(), l.clone()))
        .collect();
    let (st, c, reference) = (store.clone(), client.clone(), r.clone());
    store.add_blob_fetcher(std::sync::Arc::new(move |d: &Digest| {
        let Some(want) = layers.get(d) else {
            return Ok(false);
        };
        lighter_registry::pull::fetch_layer_blob(&c, &st, &reference, want).map_err(|e| {
            lighter_store::StoreError::Fetch {
                digest: d.clone(),
                network: e.kind == lighter_registry::ErrorKind::Network,
                message: e.message,
            }
        })?;
        use std::sync::atomic::Ordering::Relaxed;
        fetched.layers.fetch_add(1, Relaxed);
        fetched.bytes.fetch_add(want.size, Relaxed);
        Ok(true)
    }));
    Ok(Image {
        id: id.clone(),
        record: lighter_image::ImageRecord {
            manifest: m.manifest_digest,
            config: id,
            layers: m.layers,
            added: String::new(),
        },
        config,
    })
}

fn has_repo_digest(store: &Store, r: &Reference, digest: &Digest, id: &Digest) -> bool {
    let key = format!("{}@{digest}", r.name());
    matches!(store.meta().get(Table::RepoDigests, &key), Ok(Some(v)) if v == id.as_str())
}
