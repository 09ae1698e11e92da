//! Reading and writing build caches: in a registry (through `lighter-registry`) or in an OCI
//! layout directory (`type=local`), and the blob fetchers that bring a hit's layer in only when
//! something reads it.

use super::{
    CacheConfig, CacheTo, Exported, Imported, Location, Mode, Used, ARTIFACT_TYPE, CONFIG_TYPE,
    MAX_CONFIG, VERSION,
};
use crate::EngineError;
use lighter_oci::{media, Digest, Reference};
use lighter_registry::{Client, Registry};
use lighter_store::layer::LayerInfo;
use lighter_store::{Store, StoreError};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

fn err(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::msg(format!("{what}: {e}"))
}

fn describe(l: &Location) -> String {
    match l {
        Location::Registry(r) => format!("cache {r}"),
        Location::Local(d) => format!("cache {}", d.display()),
        Location::Inline => "inline cache".into(),
    }
}

/// Reads every `--cache-from`, in order (a key found in an earlier source wins). A cache that does
/// not exist yet or cannot be read is reported through `note` and skipped, as BuildKit does: the
/// build runs without it. Each source's blobs become fetchable by the store.
pub fn import(
    store: &Store,
    client: Option<&Arc<Client>>,
    from: &[Location],
    note: &dyn Fn(String),
) -> Imported {
    let mut imported = Imported::default();
    for l in from {
        match read(client, l, true) {
            Ok(None) => note(format!("{}: not found, building without it", describe(l))),
            Ok(Some(cfg)) => {
                let layers: HashMap<Digest, LayerInfo> = cfg
                    .layers
                    .iter()
                    .map(|x| (x.digest.clone(), x.clone()))
                    .collect();
                note(format!(
                    "{}: {} steps, {} layers",
                    describe(l),
                    cfg.records.len(),
                    cfg.layers.len()
                ));
                for (k, r) in cfg.records {
                    let layer = r.layer.map(|i| cfg.layers[i].clone());
                    imported.records.entry(k).or_insert((layer, r.created));
                }
                for (k, v) in cfg.contents {
                    imported.contents.entry(k).or_insert(v);
                }
                store.add_blob_fetcher(fetcher(
                    store.clone(),
                    client.cloned(),
                    l.clone(),
                    layers,
                    imported.fetched.clone(),
                ));
            }
            Err(e) => note(format!(
                "{}: {}, building without it",
                describe(l),
                e.message
            )),
        }
    }
    imported
}

/// The cache at `l`: `None` when there is none yet. With `inline_ok`, an image that carries an
/// inline cache is read as one; otherwise anything but a cache manifest is an error (an export
/// never overwrites an image).
fn read(
    client: Option<&Arc<Client>>,
    l: &Location,
    inline_ok: bool,
) -> Result<Option<CacheConfig>, EngineError> {
    let what = describe(l);
    let config = match l {
        Location::Registry(r) => {
            let client = client.ok_or_else(|| err(&what, "no registry client"))?;
            let reg = Registry::new(client, r, false);
            let m = match reg.get_manifest(&tag_of(r)) {
                Ok(m) => m,
                Err(e) if e.kind == lighter_registry::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(err(&what, e.message)),
            };
            let v: Value = serde_json::from_slice(&m.bytes).map_err(|e| err(&what, e))?;
            if !is_cache(&v) && inline_ok {
                return inline_of(client, r, &what).map(Some);
            }
            let cd = config_digest(&what, &v)?;
            reg.get_blob_bytes(&cd, MAX_CONFIG)
                .map_err(|e| err(&what, e.message))?
        }
        Location::Inline => return Ok(None),
        Location::Local(dir) => {
            let Some(m) = local_manifest(dir)? else {
                return Ok(None);
            };
            let v: Value = serde_json::from_slice(&m).map_err(|e| err(&what, e))?;
            let cd = config_digest(&what, &v)?;
            read_verified(&blob_path(dir, &cd), &cd, MAX_CONFIG).map_err(|e| err(&what, e))?
        }
    };
    CacheConfig::parse(&config, &what).map(Some)
}

fn is_cache(m: &Value) -> bool {
    m["artifactType"].as_str() == Some(ARTIFACT_TYPE)
        || m["config"]["mediaType"].as_str() == Some(CONFIG_TYPE)
}

/// The inline cache an image carries in its config (`--cache-to type=inline` when it was built).
fn inline_of(client: &Arc<Client>, r: &Reference, what: &str) -> Result<CacheConfig, EngineError> {
    let platform = lighter_registry::pull::Platform::host();
    let m = lighter_registry::pull::fetch_meta(client, r, &platform)
        .map_err(|e| err(what, e.message))?;
    let v: Value = serde_json::from_slice(&m.config).map_err(|e| err(what, e))?;
    match v.get(super::INLINE_KEY) {
        Some(c) => CacheConfig::from_value(c.clone(), what),
        None => Err(err(
            what,
            "not a lighter build cache (an image without an inline cache: build it with --cache-to type=inline)",
        )),
    }
}

fn config_digest(what: &str, m: &Value) -> Result<Digest, EngineError> {
    if !is_cache(m) {
        return Err(err(
            what,
            "not a lighter build cache (another image or cache format)",
        ));
    }
    m["config"]["digest"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| err(what, "the cache manifest has no config digest"))
}

fn tag_of(r: &Reference) -> String {
    match (&r.tag, &r.digest) {
        (_, Some(d)) => d.to_string(),
        (Some(t), None) => t.clone(),
        (None, None) => "latest".into(),
    }
}

fn blob_path(dir: &Path, d: &Digest) -> std::path::PathBuf {
    dir.join("blobs").join("sha256").join(d.hex())
}

/// A small file read whole and checked against its digest.
fn read_verified(p: &Path, d: &Digest, limit: u64) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(p)
        .map_err(|e| format!("{}: {e}", p.display()))?
        .len();
    if len > limit {
        return Err(format!("{} is larger than {limit} bytes", p.display()));
    }
    let b = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if Digest::sha256(&b) != *d {
        return Err(format!("{} does not match its digest {d}", p.display()));
    }
    Ok(b)
}

/// The manifest an OCI layout's index.json names (the one tagged `latest`, else the first).
fn local_manifest(dir: &Path) -> Result<Option<Vec<u8>>, EngineError> {
    let what = format!("cache {}", dir.display());
    let idx = match std::fs::read(dir.join("index.json")) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(&what, e)),
    };
    let v: Value = serde_json::from_slice(&idx).map_err(|e| err(&what, e))?;
    let ms = v["manifests"].as_array().cloned().unwrap_or_default();
    let pick = ms
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some("latest"))
        .or(ms.first());
    let Some(d) = pick
        .and_then(|m| m["digest"].as_str())
        .and_then(|d| d.parse::<Digest>().ok())
    else {
        return Ok(None);
    };
    read_verified(&blob_path(dir, &d), &d, 4 << 20)
        .map(Some)
        .map_err(|e| err(&what, e))
}

/// Brings a layer blob of this cache into the store (unpacked as it arrives) when asked for one.
fn fetcher(
    store: Store,
    client: Option<Arc<Client>>,
    l: Location,
    layers: HashMap<Digest, LayerInfo>,
    fetched: Arc<super::Fetched>,
) -> lighter_store::BlobFetcher {
    Arc::new(move |d: &Digest| {
        let Some(info) = layers.get(d) else {
            return Ok(false);
        };
        let fail = |e: String| StoreError::Invalid(format!("{}: layer {d}: {e}", describe(&l)));
        match &l {
            // As a pull fetches a layer: the size bounded by the record's, retried when the
            // connection breaks, the diffID checked before anything is stored.
            Location::Registry(r) => {
                let client = client
                    .as_ref()
                    .ok_or_else(|| fail("no registry client".into()))?;
                lighter_registry::pull::fetch_layer_blob(client, &store, r, info).map_err(|e| {
                    StoreError::Fetch {
                        digest: d.clone(),
                        network: e.kind == lighter_registry::ErrorKind::Network,
                        message: format!("{}: {}", describe(&l), e.message),
                    }
                })?;
            }
            Location::Local(dir) => {
                use std::io::Read;
                use std::os::unix::fs::OpenOptionsExt;
                // A regular file of the layout, not a link planted in it.
                let p = blob_path(dir, d);
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                    .open(&p)
                    .map_err(|e| fail(format!("{}: {e}", p.display())))?;
                let md = f.metadata().map_err(|e| fail(e.to_string()))?;
                if !md.is_file() || md.len() != info.size {
                    return Err(fail(format!(
                        "{} is not a {}-byte file",
                        p.display(),
                        info.size
                    )));
                }
                let body = f.take(info.size);
                lighter_store::layer::store_blob_unpacking(
                    &store,
                    body,
                    d,
                    &info.media_type,
                    Some(&info.diff_id),
                )?;
            }
            Location::Inline => return Ok(false),
        }
        use std::sync::atomic::Ordering::Relaxed;
        fetched.layers.fetch_add(1, Relaxed);
        fetched.bytes.fetch_add(info.size, Relaxed);
        Ok(true)
    })
}

/// Writes this build's records to `to`, merged with what is there. Returns a one-line summary.
pub fn export(
    store: &Store,
    client: Option<&Arc<Client>>,
    to: &CacheTo,
    used: &Exported,
    chain: &std::collections::BTreeSet<usize>,
) -> Result<String, EngineError> {
    let what = describe(&to.location);
    if to.location == Location::Inline {
        let n = used
            .steps
            .iter()
            .filter(|u| chain.contains(&u.stage))
            .count();
        return Ok(format!("{what}: {n} steps in the image config"));
    }
    let mut mine: Vec<Used> = used
        .steps
        .iter()
        .filter(|u| to.mode == Mode::Max || chain.contains(&u.stage))
        .cloned()
        .collect();
    if let Some(c) = to.compression {
        let mut converted: HashMap<Digest, LayerInfo> = HashMap::new();
        for u in &mut mine {
            if let Some(l) = &u.layer {
                let new = match converted.get(&l.digest) {
                    Some(n) => n.clone(),
                    None => {
                        let n = lighter_store::layer::recompress(store, l, c)
                            .map_err(|e| err(&what, e))?;
                        converted.insert(l.digest.clone(), n.clone());
                        n
                    }
                };
                u.layer = Some(new);
            }
        }
    }
    let contents: Vec<(String, String)> = used
        .contents
        .iter()
        .filter(|(stage, _, _)| to.mode == Mode::Max || chain.contains(stage))
        .map(|(_, k, v)| (k.clone(), v.clone()))
        .collect();
    // Merge and retry: read what is there, merge, write, and read back; when another build's export
    // replaced ours in between, merge again (its entries are kept too).
    for _ in 0..3 {
        let existing = read(client, &to.location, false)?.unwrap_or_else(|| CacheConfig {
            version: VERSION,
            ..Default::default()
        });
        let merged = existing.merged_with(&mine, &contents);
        write(store, client, &to.location, &merged, &what)?;
        let now = read(client, &to.location, false)?.unwrap_or_default();
        // Another build of the same steps may have written its own layers for them: as good.
        let kept = mine.iter().all(|u| now.records.contains_key(&u.key));
        if kept {
            return Ok(format!(
                "{what}: exported {} steps ({} in all, {} layers)",
                mine.len(),
                now.records.len(),
                now.layers.len()
            ));
        }
    }
    Err(err(
        &what,
        "other builds replaced the cache three times while this one exported; its entries are not in it",
    ))
}

fn write(
    store: &Store,
    client: Option<&Arc<Client>>,
    location: &Location,
    merged: &CacheConfig,
    what: &str,
) -> Result<(), EngineError> {
    let config = lighter_oci::json::to_vec(merged).map_err(|e| err(what, e))?;
    let manifest = merged.manifest(&config);
    let config_digest = store.content().put(&config).map_err(|e| err(what, e))?;
    match location {
        Location::Registry(r) => {
            let client = client.ok_or_else(|| err(what, "no registry client"))?;
            let mut blobs: Vec<(Digest, u64)> = merged
                .layers
                .iter()
                .map(|l| (l.digest.clone(), l.size))
                .collect();
            blobs.push((config_digest, config.len() as u64));
            let img = lighter_registry::push::Image {
                manifest,
                media_type: media::OCI_MANIFEST.into(),
                blobs,
            };
            lighter_registry::push::push(client, store, r, &img, &[], &|_| {})
                .map_err(|e| err(what, e.message))?;
        }
        Location::Local(dir) => {
            write_layout(store, dir, merged, &config, &manifest).map_err(|e| err(what, e))?
        }
        Location::Inline => {}
    }
    Ok(())
}

/// An OCI layout: blobs first, index.json last (written atomically), so a reader never sees an
/// index naming a blob that is not there.
fn write_layout(
    store: &Store,
    dir: &Path,
    c: &CacheConfig,
    config: &[u8],
    manifest: &[u8],
) -> Result<(), String> {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| format!("{}: {e}", blobs.display()))?;
    let put = |d: &Digest, bytes: &[u8]| -> Result<(), String> {
        let p = blobs.join(d.hex());
        if p.exists() {
            return Ok(());
        }
        lighter_store::content::write_atomic(&p, bytes, dir).map_err(|e| e.to_string())
    };
    for l in &c.layers {
        let p = blobs.join(l.digest.hex());
        if p.exists() {
            continue;
        }
        store.ensure_blob(&l.digest).map_err(|e| e.to_string())?;
        // A private temporary file of this export, renamed into place when complete.
        let mut tmp =
            tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut src = store.content().open(&l.digest).map_err(|e| e.to_string())?;
        std::io::copy(&mut src, tmp.as_file_mut())
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| format!("{}: {e}", p.display()))?;
        tmp.persist(&p)
            .map_err(|e| format!("{}: {}", p.display(), e.error))?;
    }
    put(&Digest::sha256(config), config)?;
    let md = Digest::sha256(manifest);
    put(&md, manifest)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [{
            "mediaType": media::OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "digest": md.as_str(),
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": "latest" },
        }],
    });
    let bytes = lighter_oci::json::to_vec(&index).map_err(|e| e.to_string())?;
    lighter_store::content::write_atomic(&dir.join("index.json"), &bytes, dir)
        .map_err(|e| e.to_string())
}
