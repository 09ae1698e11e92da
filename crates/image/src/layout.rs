//! Reading OCI image layouts and the JSON of docker-archives without trusting them: every JSON
//! file is capped in size before it is read, every descriptor's size and digest are checked against
//! its blob, media types must be what the descriptor's place allows (and agree with the blob's own
//! `mediaType` and, for layers, with its compression), and counts and nesting are bounded, so a
//! hostile archive is refused at once with the reason instead of taking minutes and gigabytes.

use crate::{format_err, io_err, Result};
use lighter_oci::{media, Digest, Reference};
use lighter_store::compress::{sniff, Compression};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest JSON file read (manifest.json, index.json, a manifest, a config). containerd takes
/// manifests of at most 4 MiB from registries; configs carry history and can be larger.
pub(crate) const MAX_JSON: u64 = 16 << 20;
/// Layers per image. overlayfs stacks at most 500 lower directories; docker stops at 125.
pub(crate) const MAX_LAYERS: usize = 1000;
/// Images in one archive (manifest.json entries, or manifests an index names in all).
pub(crate) const MAX_IMAGES: usize = 10_000;
/// Indexes nested in indexes.
const MAX_INDEX_DEPTH: usize = 8;

/// Reads a JSON file of the archive, refusing one over [`MAX_JSON`] before reading it.
pub(crate) fn read_capped(p: &Path, name: &str) -> Result<Vec<u8>> {
    let f = std::fs::File::open(p).map_err(io_err("open", name))?;
    let len = f.metadata().map_err(io_err("stat", name))?.len();
    if len > MAX_JSON {
        return Err(format_err(
            name,
            format!("{len} bytes of JSON; lighter reads at most {MAX_JSON}"),
        ));
    }
    let mut b = Vec::with_capacity(len as usize);
    f.take(MAX_JSON + 1)
        .read_to_end(&mut b)
        .map_err(io_err("read", name))?;
    Ok(b)
}

/// [`read_capped`], parsed.
pub(crate) fn read_json(p: &Path, name: &str) -> Result<Value> {
    let b = read_capped(p, name)?;
    serde_json::from_slice(&b).map_err(|e| format_err(name, format!("not valid JSON: {e}")))
}

/// A content descriptor (`mediaType`, `digest`, `size`) as an index or manifest gives it.
#[derive(Debug, Clone)]
pub(crate) struct Descriptor {
    /// Empty when the descriptor has none.
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl Descriptor {
    /// Reads `v`, the descriptor of a `what` in `inside`.
    pub(crate) fn parse(v: &Value, what: &str, inside: &str) -> Result<Self> {
        let digest = v
            .get("digest")
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .parse()
            .map_err(|_| format_err(inside, format!("bad {what} digest")))?;
        let size = v
            .get("size")
            .and_then(|x| x.as_u64())
            .ok_or_else(|| format_err(inside, format!("the {what} {digest} has no size")))?;
        let media_type = v.get("mediaType").and_then(|x| x.as_str()).unwrap_or("");
        Ok(Self {
            media_type: media_type.to_string(),
            digest,
            size,
        })
    }

    /// The blob's path in a layout directory, after checking that its size is the descriptor's.
    pub(crate) fn path_in(&self, dir: &Path, what: &str) -> Result<PathBuf> {
        self.check_len(dir, what)?;
        Ok(dir.join(self.rel()))
    }

    /// Where the blob is in a layout: `blobs/sha256/<hex>`.
    pub(crate) fn rel(&self) -> String {
        format!("blobs/{}/{}", self.digest.algorithm(), self.digest.hex())
    }

    /// Checks that the blob is in `blobs` with the descriptor's size.
    pub(crate) fn check_len<B: Blobs + ?Sized>(&self, blobs: &B, what: &str) -> Result<()> {
        let len = blobs.len_of(&self.rel()).ok_or_else(|| {
            format_err(&self.digest, format!("{what} blob missing from the layout"))
        })?;
        if len != self.size {
            return Err(format_err(
                &self.digest,
                format!(
                    "the {what}'s descriptor gives size {} but the blob has {len} bytes",
                    self.size
                ),
            ));
        }
        Ok(())
    }

    /// The blob (a JSON document), checked against the descriptor's size and digest.
    pub(crate) fn read<B: Blobs + ?Sized>(&self, blobs: &B, what: &str) -> Result<Vec<u8>> {
        self.check_len(blobs, what)?;
        let b = read_capped_in(blobs, &self.rel(), self.digest.as_str())?;
        if Digest::sha256(&b) != self.digest {
            return Err(format_err(
                &self.digest,
                "blob content does not match its digest",
            ));
        }
        Ok(b)
    }
}

/// Where the files of an archive or a layout are read from: a directory, or an archive read in place.
pub(crate) trait Blobs {
    /// The length of the file at `rel`, or `None` when there is none.
    fn len_of(&self, rel: &str) -> Option<u64>;
    /// Opens the file at `rel`.
    fn open(&self, rel: &str) -> std::io::Result<Box<dyn Read + Send + '_>>;
}

impl Blobs for Path {
    fn len_of(&self, rel: &str) -> Option<u64> {
        std::fs::metadata(self.join(rel))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }
    fn open(&self, rel: &str) -> std::io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(std::fs::File::open(self.join(rel))?))
    }
}

/// A JSON file of `blobs`, refused over [`MAX_JSON`] before it is read.
pub(crate) fn read_capped_in<B: Blobs + ?Sized>(
    blobs: &B,
    rel: &str,
    name: &str,
) -> Result<Vec<u8>> {
    let len = blobs
        .len_of(rel)
        .ok_or_else(|| format_err(name, "missing from the archive"))?;
    if len > MAX_JSON {
        return Err(format_err(
            name,
            format!("{len} bytes of JSON; lighter reads at most {MAX_JSON}"),
        ));
    }
    let mut b = Vec::with_capacity(len as usize);
    blobs
        .open(rel)
        .and_then(|f| f.take(MAX_JSON + 1).read_to_end(&mut b))
        .map_err(io_err("read", name))?;
    Ok(b)
}

/// What a JSON blob says it is: its `mediaType`, or, without one, an index when it lists
/// `manifests` and an image manifest when it has a `config`.
fn own_media_type(v: &Value) -> &str {
    match v.get("mediaType").and_then(|m| m.as_str()) {
        Some(m) => m,
        None if v.get("manifests").is_some() => media::OCI_INDEX,
        None if v.get("config").is_some() => media::OCI_MANIFEST,
        None => "",
    }
}

fn is_index(m: &str) -> bool {
    m == media::OCI_INDEX || m == media::DOCKER_MANIFEST_LIST
}

fn is_manifest(m: &str) -> bool {
    m == media::OCI_MANIFEST || m == media::DOCKER_MANIFEST
}

/// Checks the media type of a layer descriptor and that the blob's compression is the one it
/// names; returns the media type to store the layer under.
pub(crate) fn check_layer(d: &Descriptor, blob: &Path) -> Result<String> {
    let mut head = [0u8; 4];
    let n = std::fs::File::open(blob)
        .and_then(|mut f| f.read(&mut head))
        .map_err(io_err("read", &d.digest))?;
    check_layer_kind(d, sniff(&head[..n]))
}

/// [`check_layer`] given the compression the blob's first bytes show.
pub(crate) fn check_layer_kind(d: &Descriptor, found: Compression) -> Result<String> {
    if d.media_type.is_empty() {
        return Ok(found.oci_media_type().to_string());
    }
    if !media::is_layer(&d.media_type) {
        return Err(format_err(
            &d.digest,
            format!("media type {} is not a layer's", d.media_type),
        ));
    }
    let m = d.media_type.as_str();
    let named = if m.ends_with("+zstd") {
        Compression::Zstd
    } else if m.ends_with("+gzip") || m.ends_with(".gzip") {
        Compression::Gzip
    } else {
        Compression::None
    };
    // An uncompressed tar can start with anything; only a compressed claim is checked both ways.
    if named != found && (named != Compression::None || found != Compression::None) {
        return Err(format_err(
            &d.digest,
            format!(
                "media type {m} names {} data, but the blob is {}",
                kind(named),
                kind(found)
            ),
        ));
    }
    Ok(d.media_type.clone())
}

fn kind(c: Compression) -> &'static str {
    match c {
        Compression::None => "uncompressed",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    }
}

/// Checks a config descriptor's media type.
pub(crate) fn check_config(d: &Descriptor) -> Result<()> {
    let m = d.media_type.as_str();
    if m.is_empty() || m == media::OCI_CONFIG || m == media::DOCKER_CONFIG {
        return Ok(());
    }
    Err(format_err(
        &d.digest,
        format!("media type {m} is not an image config's"),
    ))
}

/// An OCI image manifest's config (its bytes, checked against the descriptor, and its JSON) and its
/// layers' descriptors, each with the config's diffID for it (counts and media types checked).
#[allow(clippy::type_complexity)]
pub(crate) fn read_oci_manifest<B: Blobs + ?Sized>(
    blobs: &B,
    mbytes: &[u8],
) -> Result<(Vec<u8>, Value, Vec<(Descriptor, Digest)>)> {
    let m: Value =
        serde_json::from_slice(mbytes).map_err(|e| format_err("manifest", e.to_string()))?;
    let cd = m
        .get("config")
        .ok_or_else(|| format_err("manifest", "no config descriptor"))?;
    let cd = Descriptor::parse(cd, "config", "manifest")?;
    check_config(&cd)?;
    let cfg_bytes = cd.read(blobs, "config")?;
    let cfg: Value = serde_json::from_slice(&cfg_bytes)
        .map_err(|e| format_err(&cd.digest, format!("config is not JSON: {e}")))?;
    let diff_ids = crate::archive::diff_ids_of(&cfg, cd.digest.as_str())?;
    let descs = m
        .get("layers")
        .and_then(|l| l.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    if descs.len() != diff_ids.len() {
        return Err(format_err(
            &cd.digest,
            "layer count does not match diff_ids",
        ));
    }
    let layers = descs
        .iter()
        .zip(diff_ids)
        .map(|(v, id)| Descriptor::parse(v, "layer", "manifest").map(|d| (d, id)))
        .collect::<Result<Vec<_>>>()?;
    Ok((cfg_bytes, cfg, layers))
}

/// The image manifests an OCI index names (following nested indexes; choosing linux/host-arch in
/// multi-platform indexes), with their names from annotations.
pub(crate) fn oci_manifests<B: Blobs + ?Sized>(
    dir: &B,
    idx: &Value,
) -> Result<Vec<(Vec<u8>, Vec<Reference>)>> {
    let mut out = Vec::new();
    collect(dir, idx, "index.json", 0, &mut out)?;
    if out.is_empty() {
        return Err(format_err(
            "index.json",
            "no image manifest for this platform",
        ));
    }
    Ok(out)
}

fn collect<B: Blobs + ?Sized>(
    dir: &B,
    idx: &Value,
    name: &str,
    depth: usize,
    out: &mut Vec<(Vec<u8>, Vec<Reference>)>,
) -> Result<()> {
    if depth > MAX_INDEX_DEPTH {
        return Err(format_err(
            name,
            format!("indexes nested more than {MAX_INDEX_DEPTH} deep"),
        ));
    }
    let descs = match idx.get("manifests") {
        None => &Vec::new(),
        Some(m) => m
            .as_array()
            .ok_or_else(|| format_err(name, "manifests is not an array"))?,
    };
    if descs.len() > MAX_IMAGES {
        return Err(format_err(
            name,
            format!(
                "{} manifests; lighter reads at most {MAX_IMAGES}",
                descs.len()
            ),
        ));
    }
    for v in descs {
        let d = Descriptor::parse(v, "manifest", name)?;
        if let Some(p) = v.get("platform") {
            let arch = p
                .get("architecture")
                .and_then(|a| a.as_str())
                .unwrap_or_default();
            // Other platforms, and attestation manifests (unknown/unknown).
            if arch != lighter_oci::HOST_ARCH {
                continue;
            }
        }
        if !d.media_type.is_empty() && !is_index(&d.media_type) && !is_manifest(&d.media_type) {
            return Err(format_err(
                &d.digest,
                format!(
                    "media type {} is not a manifest's or an index's",
                    d.media_type
                ),
            ));
        }
        let bytes = d.read(dir, "manifest")?;
        let doc: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format_err(&d.digest, format!("not valid JSON: {e}")))?;
        let own = own_media_type(&doc);
        let said = if d.media_type.is_empty() {
            own
        } else {
            &d.media_type
        };
        if is_index(said) != is_index(own) || (!is_index(own) && !is_manifest(own)) {
            return Err(format_err(
                &d.digest,
                format!("the descriptor's media type is {said}, but the blob's is {own:?}"),
            ));
        }
        if is_index(own) {
            collect(dir, &doc, d.digest.as_str(), depth + 1, out)?;
        } else {
            out.push((bytes, names(v)));
        }
        if out.len() > MAX_IMAGES {
            return Err(format_err(
                name,
                format!("more than {MAX_IMAGES} image manifests"),
            ));
        }
    }
    Ok(())
}

/// The image names a descriptor's annotations give.
fn names(d: &Value) -> Vec<Reference> {
    let ann = d.get("annotations");
    let get = |k: &str| ann.and_then(|a| a.get(k)).and_then(|n| n.as_str());
    let name = match (
        get("io.containerd.image.name"),
        get("org.opencontainers.image.ref.name"),
    ) {
        (Some(n), _) => Some(n),
        (None, Some(n)) if n.contains('/') || n.contains(':') => Some(n),
        _ => None,
    };
    name.and_then(|n| Reference::parse(n).ok())
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A layout directory: each blob written under blobs/sha256, its descriptor returned.
    struct Layout(tempfile::TempDir);

    impl Layout {
        fn new() -> Self {
            let d = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(d.path().join("blobs/sha256")).unwrap();
            Self(d)
        }
        fn blob(&self, mt: &str, bytes: &[u8]) -> Value {
            let d = Digest::sha256(bytes);
            std::fs::write(self.0.path().join("blobs/sha256").join(d.hex()), bytes).unwrap();
            json!({"mediaType": mt, "digest": d.as_str(), "size": bytes.len()})
        }
        fn manifest(&self) -> Value {
            let m = json!({"schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
                           "config": {}, "layers": []});
            self.blob(media::OCI_MANIFEST, m.to_string().as_bytes())
        }
        fn err(&self, idx: &Value) -> String {
            oci_manifests(self.0.path(), idx).unwrap_err().to_string()
        }
    }

    fn index(descs: Vec<Value>) -> Value {
        json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": descs})
    }

    #[test]
    fn descriptors_must_match_their_blobs() {
        let l = Layout::new();
        let good = l.manifest();
        assert_eq!(
            oci_manifests(l.0.path(), &index(vec![good.clone()]))
                .unwrap()
                .len(),
            1
        );
        // A size that is not the blob's.
        let mut lie = good.clone();
        lie["size"] = json!(3);
        assert!(l
            .err(&index(vec![lie]))
            .contains("descriptor gives size 3 but the blob has"));
        // No size at all.
        let mut none = good.clone();
        none.as_object_mut().unwrap().remove("size");
        assert!(l.err(&index(vec![none])).contains("has no size"));
        // A manifest described as an index, and an index described as a manifest.
        let mut as_index = good.clone();
        as_index["mediaType"] = json!(media::OCI_INDEX);
        let e = l.err(&index(vec![as_index]));
        assert!(
            e.contains("media type is application/vnd.oci.image.index.v1+json, but the blob's is"),
            "{e}"
        );
        let nested = l.blob(
            media::OCI_INDEX,
            index(vec![good.clone()]).to_string().as_bytes(),
        );
        let mut as_manifest = nested.clone();
        as_manifest["mediaType"] = json!(media::OCI_MANIFEST);
        assert!(l
            .err(&index(vec![as_manifest]))
            .contains("but the blob's is"));
        assert_eq!(
            oci_manifests(l.0.path(), &index(vec![nested]))
                .unwrap()
                .len(),
            1
        );
        // A media type that is neither.
        let mut png = good;
        png["mediaType"] = json!("image/png");
        assert!(l
            .err(&index(vec![png]))
            .contains("media type image/png is not a manifest's"));
    }

    #[test]
    fn nesting_and_counts_are_bounded() {
        let l = Layout::new();
        let mut cur = l.manifest();
        for _ in 0..MAX_INDEX_DEPTH {
            cur = l.blob(media::OCI_INDEX, index(vec![cur]).to_string().as_bytes());
        }
        assert_eq!(
            oci_manifests(l.0.path(), &index(vec![cur.clone()]))
                .unwrap()
                .len(),
            1
        );
        let deeper = l.blob(media::OCI_INDEX, index(vec![cur]).to_string().as_bytes());
        assert!(l
            .err(&index(vec![deeper]))
            .contains("nested more than 8 deep"));
        let many = vec![l.manifest(); MAX_IMAGES + 1];
        assert!(l
            .err(&index(many))
            .contains("10001 manifests; lighter reads at most 10000"));
        // A JSON file over the cap is refused before it is read.
        let big = l.0.path().join("big.json");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_JSON + 1)
            .unwrap();
        let e = read_json(&big, "index.json").unwrap_err().to_string();
        assert!(e.starts_with("index.json: 16777217 bytes of JSON"), "{e}");
    }

    #[test]
    fn layer_media_types_must_name_their_compression() {
        let l = Layout::new();
        let gz = [0x1f, 0x8b, 8, 0];
        let check = |mt: &str, bytes: &[u8]| {
            let v = l.blob(mt, bytes);
            let d = Descriptor::parse(&v, "layer", "manifest").unwrap();
            check_layer(&d, &d.path_in(l.0.path(), "layer").unwrap()).map_err(|e| e.to_string())
        };
        assert_eq!(
            check(media::OCI_LAYER_GZIP, &gz).unwrap(),
            media::OCI_LAYER_GZIP
        );
        assert_eq!(
            check(media::DOCKER_LAYER_GZIP, &gz).unwrap(),
            media::DOCKER_LAYER_GZIP
        );
        assert!(check(media::OCI_LAYER, b"plain tar").is_ok());
        let e = check(media::OCI_LAYER_ZSTD, &gz).unwrap_err();
        assert!(e.contains("names zstd data, but the blob is gzip"), "{e}");
        let e = check(media::OCI_LAYER, &gz).unwrap_err();
        assert!(
            e.contains("names uncompressed data, but the blob is gzip"),
            "{e}"
        );
        assert!(check("text/html", &gz)
            .unwrap_err()
            .contains("is not a layer's"));
        // Without a media type, the content decides.
        assert_eq!(check("", &gz).unwrap(), media::OCI_LAYER_GZIP);
        let cfg = |mt: &str| {
            let v = json!({"mediaType": mt, "digest": Digest::sha256(b"").as_str(), "size": 0});
            check_config(&Descriptor::parse(&v, "config", "manifest").unwrap())
        };
        assert!(cfg(media::OCI_CONFIG).is_ok() && cfg(media::DOCKER_CONFIG).is_ok());
        assert!(cfg("application/x-evil")
            .unwrap_err()
            .to_string()
            .contains("not an image config's"));
    }
}
