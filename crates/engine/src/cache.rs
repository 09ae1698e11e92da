//! The build cache shared through a registry or a directory (`--cache-to` / `--cache-from`).
//!
//! Format (version 1, documented in docs/cache-format.md): one OCI image manifest, not an index,
//! with `artifactType` [`ARTIFACT_TYPE`]; its config blob ([`CONFIG_TYPE`]) maps step cache keys
//! to the layer each step produced (or none, for a step without a layer) and its creation time;
//! its layers are the ordinary layer blobs, so they are shared with real images, mountable across
//! repositories and kept by registry garbage collection. Reading a cache costs two requests (the
//! manifest and the config), whatever the number of steps.
//!
//! A hit on an imported record does not download its layer: the layer's blob is fetched (and
//! unpacked while it downloads) only when something reads it — a later step that misses and needs
//! the filesystem, or the export of the final image — through the store's blob fetchers.
//!
//! Export merges with what the destination holds (read, merge, write; this build's records win
//! on equal keys): two builds that export one after the other both survive. Two exports racing
//! between the read and the write: the last writer wins (see docs/cache-format.md).

use crate::EngineError;
use lighter_oci::{Digest, Reference};
use lighter_store::layer::LayerInfo;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const ARTIFACT_TYPE: &str = "application/vnd.lighter.buildcache.v1";
pub const CONFIG_TYPE: &str = "application/vnd.lighter.buildcache.config.v1+json";
/// The format version in the config blob.
pub const VERSION: u32 = 1;
/// A cache config larger than this is refused.
const MAX_CONFIG: u64 = 32 << 20;

/// `mode=min` (the final image's steps: the target stage and the stages it is built FROM) or
/// `mode=max` (every step of every stage the build ran).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Min,
    Max,
}

/// Where a cache lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Registry(Reference),
    /// An OCI layout directory.
    Local(PathBuf),
    /// In the built image's own config (`--cache-to type=inline`), read back with
    /// `--cache-from type=registry,ref=IMAGE` once the image is pushed.
    Inline,
}

/// The image config field an inline cache lives in.
pub const INLINE_KEY: &str = "lighter.buildcache.v1";

/// `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTo {
    pub location: Location,
    pub mode: Mode,
    pub ignore_error: bool,
    /// `compression=`: layers in another compression are converted for the cache.
    pub compression: Option<lighter_store::compress::Compression>,
}

/// The `--cache-from` and `--cache-to` of a build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheOptions {
    pub from: Vec<Location>,
    pub to: Vec<CacheTo>,
}

fn bad(spec: &str, why: impl std::fmt::Display) -> EngineError {
    EngineError::msg(format!("{spec}: {why}"))
}

fn fields(flag: &str, spec: &str) -> Result<BTreeMap<String, String>, EngineError> {
    let mut out = BTreeMap::new();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(bad(
                &format!("{flag} {spec}"),
                format!("{part:?} is not KEY=VALUE"),
            ));
        };
        if out
            .insert(k.trim().to_string(), v.trim().to_string())
            .is_some()
        {
            return Err(bad(&format!("{flag} {spec}"), format!("{k} given twice")));
        }
    }
    Ok(out)
}

fn location(
    flag: &str,
    spec: &str,
    f: &mut BTreeMap<String, String>,
    dir_key: &str,
) -> Result<Location, EngineError> {
    let what = format!("{flag} {spec}");
    match f.remove("type").as_deref() {
        Some("registry") => {
            let r = f
                .remove("ref")
                .ok_or_else(|| bad(&what, "type=registry needs ref=NAME[:TAG]"))?;
            let r = Reference::parse(&r).map_err(|e| bad(&what, e))?;
            Ok(Location::Registry(r))
        }
        Some("local") => {
            let d = f
                .remove(dir_key)
                .ok_or_else(|| bad(&what, format!("type=local needs {dir_key}=DIR")))?;
            Ok(Location::Local(PathBuf::from(d)))
        }
        Some("inline") if flag == "--cache-to" => Ok(Location::Inline),
        Some(t @ ("inline" | "gha" | "s3" | "azblob")) => Err(bad(
            &what,
            format!("type={t} is not supported (type=registry or type=local)"),
        )),
        Some(t) => Err(bad(
            &what,
            format!("unknown cache type {t:?} (type=registry or type=local)"),
        )),
        None => Err(bad(&what, "type= is missing (type=registry or type=local)")),
    }
}

/// Parses `--cache-to type=registry,ref=REF[,mode=min|max][,ignore-error=true]` or
/// `type=local,dest=DIR[,...]`. Unknown types and keys are errors.
pub fn parse_cache_to(spec: &str) -> Result<CacheTo, EngineError> {
    let what = format!("--cache-to {spec}");
    let mut f = fields("--cache-to", spec)?;
    let dir_key = if f.get("type").map(String::as_str) == Some("local") {
        "dest"
    } else {
        "ref"
    };
    let location = location("--cache-to", spec, &mut f, dir_key)?;
    let mode = match f.remove("mode").as_deref() {
        None | Some("min") => Mode::Min,
        Some("max") if location == Location::Inline => {
            return Err(bad(
                &what,
                "an inline cache holds the final stage only: mode=min",
            ))
        }
        Some("max") => Mode::Max,
        Some(m) => return Err(bad(&what, format!("mode={m}: expected min or max"))),
    };
    let ignore_error = match f.remove("ignore-error").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(bad(
                &what,
                format!("ignore-error={v}: expected true or false"),
            ))
        }
    };
    let compression = match f.remove("compression") {
        None => None,
        Some(_) if location == Location::Inline => {
            return Err(bad(&what, "compression= does not apply to an inline cache"))
        }
        Some(c) => Some(
            lighter_store::compress::Compression::parse(&c).ok_or_else(|| {
                bad(
                    &what,
                    format!("compression={c}: expected gzip, zstd or uncompressed"),
                )
            })?,
        ),
    };
    if let Some(k) = f.keys().next() {
        return Err(bad(
            &what,
            format!("unknown key {k:?} (mode, ignore-error)"),
        ));
    }
    Ok(CacheTo {
        location,
        mode,
        ignore_error,
        compression,
    })
}

/// Parses `--cache-from type=registry,ref=REF` or `type=local,src=DIR`.
pub fn parse_cache_from(spec: &str) -> Result<Location, EngineError> {
    let mut f = fields("--cache-from", spec)?;
    let dir_key = if f.get("type").map(String::as_str) == Some("local") {
        "src"
    } else {
        "ref"
    };
    let l = location("--cache-from", spec, &mut f, dir_key)?;
    if let Some(k) = f.keys().next() {
        return Err(bad(
            &format!("--cache-from {spec}"),
            format!("unknown key {k:?}"),
        ));
    }
    Ok(l)
}

/// The config blob.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CacheConfig {
    pub version: u32,
    /// Step cache key -> record.
    pub records: BTreeMap<String, Record>,
    /// The layers records point at (by index).
    pub layers: Vec<LayerInfo>,
    /// `COPY --from` selection key -> the content digest of what it selected, so a hit on such a
    /// COPY needs none of the source stage's files.
    #[serde(default)]
    pub contents: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// Index into [`CacheConfig::layers`]; none for a step that made no layer.
    pub layer: Option<usize>,
    pub created: String,
    /// When a build last exported this record (ran or hit the step); records unused for
    /// [`MAX_AGE_DAYS`] are dropped by the next export, so a cache does not grow without end.
    #[serde(default)]
    pub last_used: String,
}

/// Records no export has used for this many days are dropped.
pub const MAX_AGE_DAYS: i64 = 30;

/// A step a build ran or found cached, for export.
#[derive(Debug, Clone)]
pub struct Used {
    pub stage: usize,
    pub key: String,
    pub layer: Option<LayerInfo>,
    pub created: String,
}

/// What a build hands to `--cache-to`.
#[derive(Debug, Clone, Default)]
pub struct Exported {
    pub steps: Vec<Used>,
    /// (stage, selection key, content digest) of `COPY --from` steps.
    pub contents: Vec<(usize, String, String)>,
}

/// The records of every `--cache-from`, merged (the first source that has a key wins).
#[derive(Default)]
pub struct Imported {
    pub records: BTreeMap<String, (Option<LayerInfo>, String)>,
    pub contents: BTreeMap<String, String>,
    /// What the build fetched from these caches.
    pub fetched: std::sync::Arc<Fetched>,
    /// Steps that hit an imported record.
    pub hits: std::sync::atomic::AtomicUsize,
}

/// Layers (and their bytes) fetched from imported caches.
#[derive(Debug, Default)]
pub struct Fetched {
    pub layers: std::sync::atomic::AtomicU64,
    pub bytes: std::sync::atomic::AtomicU64,
}

impl Imported {
    /// `cache: 5 steps from --cache-from, 1 layer fetched (0.1 MB)`, when there was a cache.
    pub fn summary(&self) -> Option<String> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.records.is_empty() {
            return None;
        }
        let n = self.fetched.layers.load(Relaxed);
        Some(format!(
            "cache: {} steps from --cache-from, {n} layer{} fetched ({:.1} MB)",
            self.hits.load(Relaxed),
            if n == 1 { "" } else { "s" },
            self.fetched.bytes.load(Relaxed) as f64 / 1e6
        ))
    }
}

impl CacheConfig {
    fn add(&mut self, key: &str, layer: Option<&LayerInfo>, created: &str) {
        let idx = layer.map(
            |l| match self.layers.iter().position(|x| x.digest == l.digest) {
                Some(i) => i,
                None => {
                    self.layers.push(l.clone());
                    self.layers.len() - 1
                }
            },
        );
        self.records.insert(
            key.to_string(),
            Record {
                layer: idx,
                created: created.to_string(),
                // Real time: records age by the clock, not by SOURCE_DATE_EPOCH.
                last_used: lighter_image::now_rfc3339(None),
            },
        );
    }

    fn merged_with(mut self, newer: &[Used], contents: &[(String, String)]) -> CacheConfig {
        for u in newer {
            self.add(&u.key, u.layer.as_ref(), &u.created);
        }
        for (k, v) in contents {
            self.contents.insert(k.clone(), v.clone());
        }
        let now = lighter_image::parse_rfc3339(&lighter_image::now_rfc3339(None)).unwrap_or(0);
        self.records.retain(|_, r| {
            lighter_image::parse_rfc3339(&r.last_used)
                .is_none_or(|t| now - t <= MAX_AGE_DAYS * 86_400)
        });
        self.prune_layers();
        self
    }

    /// Drops layers no record points at (an overwritten record's old layer).
    fn prune_layers(&mut self) {
        let used: std::collections::BTreeSet<usize> =
            self.records.values().filter_map(|r| r.layer).collect();
        let keep: Vec<usize> = (0..self.layers.len())
            .filter(|i| used.contains(i))
            .collect();
        let remap: BTreeMap<usize, usize> = keep.iter().enumerate().map(|(n, o)| (*o, n)).collect();
        self.layers = keep.iter().map(|i| self.layers[*i].clone()).collect();
        for r in self.records.values_mut() {
            r.layer = r.layer.map(|l| remap[&l]);
        }
    }

    fn parse(bytes: &[u8], what: &str) -> Result<CacheConfig, EngineError> {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| EngineError::msg(format!("{what}: not a lighter build cache: {e}")))?;
        Self::from_value(v, what)
    }

    fn from_value(v: serde_json::Value, what: &str) -> Result<CacheConfig, EngineError> {
        let c: CacheConfig = serde_json::from_value(v)
            .map_err(|e| EngineError::msg(format!("{what}: not a lighter build cache: {e}")))?;
        if c.version != VERSION {
            return Err(EngineError::msg(format!(
                "{what}: build cache format version {} (this lighter reads {VERSION})",
                c.version
            )));
        }
        if c.records
            .values()
            .any(|r| r.layer.is_some_and(|l| l >= c.layers.len()))
        {
            return Err(EngineError::msg(format!(
                "{what}: a record points at a layer the cache does not list"
            )));
        }
        Ok(c)
    }

    fn manifest(&self, config: &[u8]) -> Vec<u8> {
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": lighter_oci::media::OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": { "mediaType": CONFIG_TYPE, "digest": Digest::sha256(config).as_str(), "size": config.len() },
            "layers": self.layers.iter().map(|l| serde_json::json!({
                "mediaType": l.media_type, "digest": l.digest.as_str(), "size": l.size
            })).collect::<Vec<_>>(),
        });
        lighter_oci::json::to_vec(&m).unwrap_or_default()
    }
}

/// The inline cache of a build (`--cache-to type=inline`): the records of the final image's stages
/// (the target and the stages it is built FROM), as the value of [`INLINE_KEY`] in the image config.
/// It is part of the image, so it depends on nothing but the build: steps in key order (not the
/// order they finished in) and each record's `last_used` its creation time.
pub fn inline(used: &Exported, chain: &std::collections::BTreeSet<usize>) -> serde_json::Value {
    let mut steps: Vec<Used> = used
        .steps
        .iter()
        .filter(|u| chain.contains(&u.stage))
        .cloned()
        .collect();
    steps.sort_by(|a, b| a.key.cmp(&b.key));
    let mut contents: Vec<(String, String)> = used
        .contents
        .iter()
        .filter(|(s, _, _)| chain.contains(s))
        .map(|(_, k, v)| (k.clone(), v.clone()))
        .collect();
    contents.sort();
    let mut c = CacheConfig {
        version: VERSION,
        ..Default::default()
    }
    .merged_with(&steps, &contents);
    for r in c.records.values_mut() {
        r.last_used = r.created.clone();
    }
    serde_json::to_value(&c).unwrap_or_default()
}

#[path = "cache_io.rs"]
mod io;
pub use io::{export, import};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_strictly() {
        let t = parse_cache_to("type=registry,ref=127.0.0.1:5000/c:1,mode=max").unwrap();
        assert_eq!(t.mode, Mode::Max);
        assert!(matches!(t.location, Location::Registry(_)));
        let t = parse_cache_to("type=local,dest=/tmp/c,ignore-error=true").unwrap();
        assert!(t.ignore_error && t.location == Location::Local("/tmp/c".into()));
        for bad in [
            "type=registry",
            "type=registry,ref=x,mode=all",
            "type=registry,ref=x,colour=red",
            "type=registry,ref=x,compression=brotli",
            "type=inline,compression=zstd",
            "type=inline,mode=max",
            "type=nope,ref=x",
            "ref=x",
            "type=local,src=/x",
        ] {
            assert!(parse_cache_to(bad).is_err(), "{bad}");
        }
        assert!(parse_cache_from("type=local,src=/x").is_ok());
        let z = parse_cache_to("type=registry,ref=x,compression=zstd").unwrap();
        assert_eq!(
            z.compression,
            Some(lighter_store::compress::Compression::Zstd)
        );
        assert_eq!(
            parse_cache_to("type=inline").unwrap().location,
            Location::Inline
        );
        assert!(parse_cache_from("type=inline").is_err());
        assert!(parse_cache_from("type=registry,ref=x,mode=max").is_err());
    }

    #[test]
    fn foreign_or_corrupt_configs_are_refused_with_the_reason() {
        let e = CacheConfig::parse(b"{\"version\": 1, \"records\": 7}", "cache x").unwrap_err();
        assert!(
            e.message.contains("not a lighter build cache"),
            "{}",
            e.message
        );
        let e = CacheConfig::parse(
            b"{\"version\": 9, \"records\": {}, \"layers\": []}",
            "cache x",
        )
        .unwrap_err();
        assert!(e.message.contains("format version 9"), "{}", e.message);
        let bad_index =
            br#"{"version": 1, "records": {"k": {"layer": 3, "created": ""}}, "layers": []}"#;
        let e = CacheConfig::parse(bad_index, "cache x").unwrap_err();
        assert!(e.message.contains("does not list"), "{}", e.message);
    }

    #[test]
    fn merging_keeps_older_records_and_drops_unreferenced_layers() {
        let l = |n: u8| LayerInfo {
            diff_id: Digest::sha256(&[n]),
            digest: Digest::sha256(&[n, n]),
            size: 1,
            media_type: lighter_oci::media::OCI_LAYER_GZIP.into(),
            uncompressed_size: 1,
        };
        let mut old = CacheConfig {
            version: VERSION,
            ..Default::default()
        };
        old.add("a", Some(&l(1)), "t1");
        old.add("b", Some(&l(2)), "t1");
        let newer = [
            Used {
                stage: 0,
                key: "b".into(),
                layer: Some(l(3)),
                created: "t2".into(),
            },
            Used {
                stage: 0,
                key: "c".into(),
                layer: None,
                created: "t2".into(),
            },
        ];
        let m = old.merged_with(&newer, &[("sel".into(), "digest".into())]);
        assert_eq!(m.contents["sel"], "digest");
        assert_eq!(m.records.len(), 3);
        assert_eq!(m.layers.len(), 2, "layer 2 is no longer referenced");
        assert_eq!(m.layers[m.records["b"].layer.unwrap()], l(3));
        assert_eq!(m.layers[m.records["a"].layer.unwrap()], l(1));
        assert_eq!(m.records["c"].layer, None);
    }
}
