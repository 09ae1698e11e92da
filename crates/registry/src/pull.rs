//! Pull: the manifest (an index picks the platform, `variant` included), the config, then the
//! layers on several connections at once, each digest-verified into the content store and unpacked
//! as it streams (`lighter_store::layer::store_blob_unpacking`: one pass gives the blob, the diffID
//! and the unpacked directory a build uses) and checked against the config's diffID. A layer
//! the store already has (by diffID) is not downloaded. Nothing is committed here: the caller
//! records the image only once every blob is in, so a failed pull tags nothing.

use crate::api::{Manifest, Registry};
use crate::{Client, ErrorKind, RegistryError, Result};
use lighter_oci::{media, Digest, Reference};
use lighter_store::layer::LayerInfo;
use lighter_store::Store;
use serde_json::Value;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Layers downloaded at once from one registry.
pub const PARALLEL: usize = 4;
/// Downloads of one blob before a broken connection is an error.
const BLOB_ATTEMPTS: u32 = 3;
/// A config larger than this is refused.
const MAX_CONFIG: u64 = 16 << 20;

/// The platform an index is resolved for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn host() -> Platform {
        Platform {
            os: lighter_oci::HOST_OS.into(),
            arch: lighter_oci::HOST_ARCH.into(),
            variant: None,
        }
    }

    /// `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        lighter_oci::parse_platform(s).map(|(os, arch, variant)| Platform { os, arch, variant })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Progress of a pull.
#[derive(Debug, Clone)]
pub enum Event {
    /// The layers to fetch, in the manifest's order, with their sizes (before any download).
    Layers { layers: Vec<(Digest, u64)> },
    /// Bytes of a layer received so far (of `size`).
    Progress {
        digest: Digest,
        done: u64,
        size: u64,
    },
    /// A layer is in the store (`reused`: it was there already).
    LayerDone { digest: Digest, reused: bool },
}

/// What a pull fetched: everything the caller needs to record the image.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub config: Vec<u8>,
    pub layers: Vec<LayerInfo>,
    /// The digest of what the reference names (an index for a multi-platform image).
    pub manifest_digest: Digest,
    /// Bytes downloaded for layers.
    pub downloaded: u64,
}

/// What an image is without its layers: enough for a build to compute cache keys and read the
/// config, with the layers fetched later only if something reads them ([`fetch_layer_blob`]).
#[derive(Debug, Clone)]
pub struct Meta {
    pub config: Vec<u8>,
    /// The layers as the store records them; `uncompressed_size` is 0 until fetched.
    pub layers: Vec<LayerInfo>,
    pub manifest_digest: Digest,
}

/// Fetches `r` for `platform` into `store`.
pub fn fetch(
    client: &Client,
    store: &Store,
    r: &Reference,
    platform: &Platform,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<Fetched> {
    let reg = Registry::new(client, r, false);
    let (top, config, layer_descs, diff_ids) = resolve(&reg, r, platform)?;
    progress(Event::Layers {
        layers: layer_descs
            .iter()
            .map(|d| (d.digest.clone(), d.size))
            .collect(),
    });
    let (layers, downloaded) = fetch_layers(&reg, store, &layer_descs, &diff_ids, progress)?;
    Ok(Fetched {
        config,
        layers,
        manifest_digest: top.digest,
        downloaded,
    })
}

/// The manifest and config of `r` for `platform`, and its layers' descriptors: no layer is
/// downloaded.
pub fn fetch_meta(client: &Client, r: &Reference, platform: &Platform) -> Result<Meta> {
    let reg = Registry::new(client, r, false);
    let (top, config, descs, diff_ids) = resolve(&reg, r, platform)?;
    let layers = descs
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| LayerInfo {
            diff_id,
            digest: d.digest.clone(),
            size: d.size,
            media_type: oci_layer_type(&d.media_type),
            uncompressed_size: 0,
        })
        .collect();
    Ok(Meta {
        config,
        layers,
        manifest_digest: top.digest,
    })
}

/// Downloads one layer blob of `r` into the store (verified, unpacked while it streams, a broken
/// connection retried); `want` is the layer as [`fetch_meta`] described it.
pub fn fetch_layer_blob(
    client: &Client,
    store: &Store,
    r: &Reference,
    want: &LayerInfo,
) -> Result<LayerInfo> {
    let reg = Registry::new(client, r, false);
    let d = LayerDesc {
        digest: want.digest.clone(),
        size: want.size,
        media_type: want.media_type.clone(),
    };
    let total = std::sync::atomic::AtomicU64::new(0);
    fetch_layer(&reg, store, &d, &want.diff_id, &|_| {}, &total, true)
}

type Resolved = (Manifest, Vec<u8>, Vec<LayerDesc>, Vec<Digest>);

/// The top manifest, the config bytes, the layer descriptors and the config's diffIDs.
fn resolve(reg: &Registry<'_>, r: &Reference, platform: &Platform) -> Result<Resolved> {
    let reference = match (&r.digest, &r.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => "latest".to_string(),
    };
    let top = reg.get_manifest(&reference)?;
    let manifest = if top.is_index() {
        let child = select_platform(&reg, &reference, &top, platform)?;
        reg.get_manifest(child.as_str())?
    } else {
        top.clone()
    };
    let (config_desc, layer_descs) = parse_manifest(&reg, &reference, &manifest)?;
    let config = reg.get_blob_bytes(&config_desc, MAX_CONFIG)?;
    let cfg: Value = serde_json::from_slice(&config).map_err(|e| {
        RegistryError::new(
            ErrorKind::Protocol,
            format!("{}: config is not JSON: {e}", reg.what(&reference)),
        )
    })?;
    let diff_ids: Vec<Digest> = cfg
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|d| d.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    if diff_ids.len() != layer_descs.len() {
        return Err(RegistryError::new(
            ErrorKind::Protocol,
            format!(
                "{}: the manifest has {} layers but the config {} diff_ids",
                reg.what(&reference),
                layer_descs.len(),
                diff_ids.len()
            ),
        ));
    }
    Ok((top, config, layer_descs, diff_ids))
}

/// The child manifest of `index` for `platform`; the error lists what the index has.
fn select_platform(
    reg: &Registry<'_>,
    reference: &str,
    index: &Manifest,
    p: &Platform,
) -> Result<Digest> {
    let v: Value = serde_json::from_slice(&index.bytes).map_err(|e| {
        RegistryError::new(
            ErrorKind::Protocol,
            format!("{}: index is not JSON: {e}", reg.what(reference)),
        )
    })?;
    let entries = v["manifests"].as_array().cloned().unwrap_or_default();
    let plat = |e: &Value| {
        let pl = &e["platform"];
        (
            pl["os"].as_str().unwrap_or("").to_string(),
            pl["architecture"].as_str().unwrap_or("").to_string(),
            pl["variant"].as_str().map(str::to_string),
        )
    };
    // An exact variant match first; without a requested variant, the first of that os/arch (arm64
    // images say v8, amd64 ones nothing).
    let pick = entries
        .iter()
        .find(|e| {
            let (os, arch, var) = plat(e);
            os == p.os && arch == p.arch && (p.variant.is_none() || var == p.variant)
        })
        .or_else(|| {
            entries.iter().find(|e| {
                let (os, arch, var) = plat(e);
                os == p.os && arch == p.arch && p.variant.as_deref() == Some("v8") && var.is_none()
            })
        });
    match pick
        .and_then(|e| e["digest"].as_str())
        .and_then(|d| d.parse().ok())
    {
        Some(d) => Ok(d),
        None => {
            let have: Vec<String> = entries
                .iter()
                .map(|e| {
                    let (os, arch, var) = plat(e);
                    match var {
                        Some(v) => format!("{os}/{arch}/{v}"),
                        None => format!("{os}/{arch}"),
                    }
                })
                .collect();
            Err(RegistryError::new(
                ErrorKind::NotFound,
                format!(
                    "{}: no image for platform {p} (the index has: {})",
                    reg.what(reference),
                    have.join(", ")
                ),
            ))
        }
    }
}

/// A layer to fetch: digest, size and media type.
#[derive(Debug, Clone)]
struct LayerDesc {
    digest: Digest,
    size: u64,
    media_type: String,
}

fn parse_manifest(
    reg: &Registry<'_>,
    reference: &str,
    m: &Manifest,
) -> Result<(Digest, Vec<LayerDesc>)> {
    let bad = |why: String| {
        RegistryError::new(
            ErrorKind::Protocol,
            format!("{}: {why}", reg.what(reference)),
        )
    };
    if m.media_type != media::OCI_MANIFEST && m.media_type != media::DOCKER_MANIFEST {
        return Err(bad(format!(
            "unsupported manifest type {:?} (schema 1 and artifacts are not images)",
            m.media_type
        )));
    }
    let v: Value =
        serde_json::from_slice(&m.bytes).map_err(|e| bad(format!("manifest is not JSON: {e}")))?;
    if v["schemaVersion"].as_u64() != Some(2) {
        return Err(bad("manifest schemaVersion is not 2".into()));
    }
    let config: Digest = v["config"]["digest"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| bad("manifest has no config digest".into()))?;
    let layers = v["layers"]
        .as_array()
        .ok_or_else(|| bad("manifest has no layers".into()))?
        .iter()
        .map(|l| {
            let media_type = l["mediaType"].as_str().unwrap_or("").to_string();
            if !media::is_layer(&media_type) {
                return Err(bad(format!(
                    "layer media type {media_type:?} is not a layer"
                )));
            }
            Ok(LayerDesc {
                digest: l["digest"]
                    .as_str()
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| bad("a layer has no digest".into()))?,
                size: l["size"]
                    .as_u64()
                    .ok_or_else(|| bad("a layer has no size".into()))?,
                media_type,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((config, layers))
}

/// Docker's layer media types as the OCI ones the store's manifests use.
fn oci_layer_type(t: &str) -> String {
    match t {
        media::DOCKER_LAYER_GZIP => media::OCI_LAYER_GZIP.into(),
        media::DOCKER_LAYER => media::OCI_LAYER.into(),
        other => other.into(),
    }
}

fn fetch_layers(
    reg: &Registry<'_>,
    store: &Store,
    descs: &[LayerDesc],
    diff_ids: &[Digest],
    progress: &(dyn Fn(Event) + Sync),
) -> Result<(Vec<LayerInfo>, u64)> {
    let next = AtomicUsize::new(0);
    let downloaded = std::sync::atomic::AtomicU64::new(0);
    let mut results: Vec<Option<Result<LayerInfo>>> = (0..descs.len()).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL.min(descs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(d) = descs.get(i) else { break };
                let r = fetch_layer(reg, store, d, &diff_ids[i], progress, &downloaded, false);
                let failed = r.is_err();
                slots.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                if failed {
                    // The others stop taking new layers; the first error is reported.
                    next.store(descs.len(), Ordering::Relaxed);
                }
            });
        }
    });
    let mut layers = Vec::new();
    for r in results {
        match r {
            Some(Ok(l)) => layers.push(l),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    if layers.len() != descs.len() {
        return Err(RegistryError::new(
            ErrorKind::Network,
            format!("{}: not every layer was fetched", reg.what("")),
        ));
    }
    Ok((layers, downloaded.into_inner()))
}

/// One layer into the store. `exact`: only this blob will do (a layer the store has under another
/// digest is not reused, as a pull reuses it).
fn fetch_layer(
    reg: &Registry<'_>,
    store: &Store,
    d: &LayerDesc,
    diff_id: &Digest,
    progress: &(dyn Fn(Event) + Sync),
    downloaded: &std::sync::atomic::AtomicU64,
    exact: bool,
) -> Result<LayerInfo> {
    if let Some(have) = lighter_store::layer::lookup(store, diff_id)? {
        if store.content().exists(&have.digest) && (!exact || have.digest == d.digest) {
            progress(Event::LayerDone {
                digest: d.digest.clone(),
                reused: true,
            });
            return Ok(have);
        }
    }
    // A connection that breaks mid-blob is retried from the start (the partial ingest is dropped);
    // content that does not match its digest is not.
    let mut attempt = 1;
    let info = loop {
        let body = reg.get_blob(&d.digest)?;
        let counted = Counted {
            inner: body,
            done: 0,
            size: d.size,
            digest: &d.digest,
            progress,
            total: downloaded,
        };
        let media_type = oci_layer_type(&d.media_type);
        match lighter_store::layer::store_blob_unpacking(
            store,
            counted,
            &d.digest,
            &media_type,
            Some(diff_id),
        ) {
            Ok(info) => break info,
            Err(e) => {
                let kind = match &e {
                    lighter_store::StoreError::DigestMismatch { .. }
                    | lighter_store::StoreError::Invalid(_) => ErrorKind::Digest,
                    _ => ErrorKind::Network,
                };
                if kind == ErrorKind::Network && attempt < BLOB_ATTEMPTS {
                    attempt += 1;
                    continue;
                }
                let what = format!("{} layer {}: {e}", reg.what(""), d.digest);
                return Err(RegistryError::new(kind, what));
            }
        }
    };
    if info.diff_id != *diff_id {
        return Err(RegistryError::new(
            ErrorKind::Digest,
            format!(
                "{} layer {}: its content is {}, the config says {diff_id}",
                reg.what(""),
                d.digest,
                info.diff_id
            ),
        ));
    }
    progress(Event::LayerDone {
        digest: d.digest.clone(),
        reused: false,
    });
    Ok(info)
}

/// A reader that reports progress every 256 KiB.
struct Counted<'a, R> {
    inner: R,
    done: u64,
    size: u64,
    digest: &'a Digest,
    progress: &'a (dyn Fn(Event) + Sync),
    total: &'a std::sync::atomic::AtomicU64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Never more than the manifest's size (+1 to notice a longer body), never less.
        let room = (self.size + 1 - self.done).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        if self.done + n as u64 > self.size || (n == 0 && self.done < self.size) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the blob is {} bytes, its descriptor says {}",
                    if n == 0 {
                        self.done
                    } else {
                        self.done + n as u64
                    },
                    self.size
                ),
            ));
        }
        let before = self.done;
        self.done += n as u64;
        self.total.fetch_add(n as u64, Ordering::Relaxed);
        if n == 0 || before / (256 << 10) != self.done / (256 << 10) {
            (self.progress)(Event::Progress {
                digest: self.digest.clone(),
                done: self.done,
                size: self.size,
            });
        }
        Ok(n)
    }
}
