//! Image archives: `docker save` archives (legacy and Docker 25+ OCI-style), OCI image layouts (tar or
//! directory), and rootfs tarballs for `import`. Loading ingests and verifies every blob first and
//! commits names last, in one transaction: a bad archive adds no image and no name.

use crate::layout::{check_layer, oci_manifests, read_capped, read_json, MAX_IMAGES, MAX_LAYERS};
use crate::model::{commit, now_rfc3339, Image};
use crate::{format_err, io_err, Result};
use lighter_oci::{media, Digest, Reference, Sha256Writer};
use lighter_store::compress::{decompress, sniff, Compression, Compressor};
use lighter_store::layer::{store_blob, LayerInfo};
use lighter_store::Store;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// Archive formats `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// What `docker save` writes and `docker load` reads (manifest.json + OCI layout, uncompressed layers).
    Docker,
    /// An OCI image layout as a tar (layers as stored, compressed).
    Oci,
}

/// Imports a rootfs tarball (plain, gzip or zstd) as a one-layer image. `config` is the image's
/// `config` object (Cmd, Env, ... from `--change`).
pub fn import_rootfs(
    store: &Store,
    input: impl Read,
    config: Value,
    message: Option<&str>,
    tags: &[Reference],
) -> Result<Digest> {
    let mut r = decompress(input).map_err(io_err("read", "rootfs tarball"))?;
    let ingest = store.content().ingest()?;
    let compressed = Sha256Writer::new(ingest);
    let threads = store.settings().gzip_threads;
    let comp = Compressor::with_source(compressed, Compression::Gzip, None, threads)
        .map_err(io_err("compress", "rootfs tarball"))?;
    let mut diff = Sha256Writer::new(comp);
    // One pass: the bytes go to the compressor and, on another thread, through a tar reader that
    // checks the stream is a whole tar archive before anything is committed.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
    let checker = std::thread::spawn(move || -> std::result::Result<(), String> {
        let mut ar = tar::Archive::new(lighter_store::targuard::TarGuard::new(ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        }));
        for e in ar
            .entries()
            .map_err(|e| format!("not a tar archive: {e}"))?
        {
            e.map_err(|e| format!("corrupt tar archive: {e}"))?;
        }
        Ok(())
    });
    let mut seen = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let copied = (|| -> std::io::Result<()> {
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            seen += n as u64;
            // A checker that stopped early (it found the end or an error) needs no more bytes.
            let _ = tx.send(buf[..n].to_vec());
            diff.write_all(&buf[..n])?;
        }
    })();
    drop(tx);
    let checked = checker
        .join()
        .unwrap_or_else(|_| Err("tar check panicked".into()));
    copied.map_err(io_err("read", "rootfs tarball"))?;
    if seen < 512 {
        return Err(format_err(
            "rootfs tarball",
            "too short to be a tar archive",
        ));
    }
    checked.map_err(|m| format_err("rootfs tarball", m))?;
    let (comp, diff_id, usize_) = diff.finish();
    let compressed = comp
        .finish()
        .map_err(io_err("compress", "rootfs tarball"))?;
    let (ingest, digest, _) = compressed.finish();
    let (digest, size) = ingest.commit(Some(&digest))?;
    let layer = LayerInfo {
        diff_id: diff_id.clone(),
        digest,
        size,
        media_type: media::OCI_LAYER_GZIP.to_string(),
        uncompressed_size: usize_,
    };
    let created = now_rfc3339(store.settings().source_date_epoch);
    let mut history =
        json!({ "created": created, "created_by": "", "comment": format!("Imported from -") });
    if let Some(m) = message {
        history["comment"] = json!(m);
    }
    let cfg = json!({
        "architecture": lighter_oci::HOST_ARCH,
        "config": config,
        "created": created,
        "history": [history],
        "os": lighter_oci::HOST_OS,
        "rootfs": { "type": "layers", "diff_ids": [diff_id.as_str()] },
    });
    let bytes = lighter_oci::json::to_vec(&cfg).map_err(|e| format_err("config", e.to_string()))?;
    commit(store, &bytes, &[layer], tags)
}

/// A file whose pages are handed to writeback as they are written (`sync_file_range`, every 16 MiB),
/// so that the fsync when a layer file is moved into the store has little left to flush.
struct Writeback {
    f: std::fs::File,
    written: u64,
    started: u64,
}

impl Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.f.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= 16 << 20 {
            use std::os::fd::AsRawFd;
            // Best effort: only starts writeback, never waits; errors surface at the fsync.
            // SAFETY: a syscall on the open descriptor `self.f` owns; no memory is passed.
            unsafe {
                libc::sync_file_range(
                    self.f.as_raw_fd(),
                    self.started as libc::off64_t,
                    (self.written - self.started) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.f.flush()
    }
}

/// Reads the byte chunks sent over a channel as one stream (the tar check of `import`).
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn layer_media(head: &[u8]) -> &'static str {
    match sniff(head) {
        Compression::Gzip => media::OCI_LAYER_GZIP,
        Compression::Zstd => media::OCI_LAYER_ZSTD,
        Compression::None => media::OCI_LAYER,
    }
}

/// Files of an extracted archive that were hashed while written: path -> (sha256, size).
type Hashed = std::collections::HashMap<PathBuf, (Digest, u64)>;

/// Extracts the archive's regular files into `dir` (paths cleaned, `..` rejected), hashing each while
/// writing it; returns symlinks (old docker archives link shared `layer.tar` files) and the hashes.
fn extract(input: impl Read, dir: &Path) -> Result<(BTreeMap<PathBuf, PathBuf>, Hashed)> {
    let r = decompress(input).map_err(io_err("read", "archive"))?;
    let mut ar = tar::Archive::new(lighter_store::targuard::TarGuard::new(r));
    let mut links = BTreeMap::new();
    let mut hashed = Hashed::new();
    let entries = ar
        .entries()
        .map_err(|e| format_err("archive", format!("not a tar archive: {e}")))?;
    let mut any = false;
    for e in entries {
        let mut e =
            e.map_err(|e| format_err("archive", format!("corrupt or truncated archive: {e}")))?;
        any = true;
        let name = e
            .path()
            .map_err(|err| format_err("archive", err.to_string()))?
            .into_owned();
        let mut rel = PathBuf::new();
        for c in name.components() {
            match c {
                Component::Normal(p) => rel.push(p),
                Component::CurDir | Component::RootDir => {}
                _ => {
                    return Err(format_err(
                        name.display(),
                        "archive entry path leaves the archive root",
                    ))
                }
            }
        }
        if rel.as_os_str().is_empty() {
            continue;
        }
        let dest = dir.join(&rel);
        match e.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&dest).map_err(io_err("create", dest.display()))?
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(p) = dest.parent() {
                    std::fs::create_dir_all(p).map_err(io_err("create", p.display()))?;
                }
                let f = std::fs::File::create(&dest).map_err(io_err("create", dest.display()))?;
                let f = Writeback {
                    f,
                    written: 0,
                    started: 0,
                };
                let mut w = Sha256Writer::new(std::io::BufWriter::with_capacity(1 << 20, f));
                // A read error is the archive's, a write error (a full disk) the file's.
                let mut chunk = vec![0u8; 256 << 10];
                loop {
                    let n = match std::io::Read::read(&mut e, &mut chunk) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(err) => {
                            let msg = format!("truncated archive: {err}");
                            return Err(format_err(rel.display(), msg));
                        }
                    };
                    std::io::Write::write_all(&mut w, &chunk[..n])
                        .map_err(io_err("write", dest.display()))?;
                }
                let (buf, digest, size) = w.finish();
                buf.into_inner()
                    .map_err(|err| io_err("write", dest.display())(err.into_error()))?;
                hashed.insert(dest.clone(), (digest, size));
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if let Ok(Some(t)) = e.link_name() {
                    links.insert(rel, t.into_owned());
                }
            }
            _ => {}
        }
    }
    if !any {
        return Err(format_err("archive", "empty archive"));
    }
    Ok((links, hashed))
}

/// Resolves an archive-relative path, following the archive's own symlinks, inside `dir`.
fn archive_path(dir: &Path, links: &BTreeMap<PathBuf, PathBuf>, rel: &str) -> Result<PathBuf> {
    let mut cur = PathBuf::from(rel.trim_start_matches("./"));
    for _ in 0..8 {
        if cur
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::RootDir))
        {
            return Err(format_err(rel, "path leaves the archive"));
        }
        match links.get(&cur) {
            Some(t) => {
                let base = cur.parent().unwrap_or(Path::new("")).to_path_buf();
                let mut joined = PathBuf::new();
                for c in base.join(t).components() {
                    match c {
                        Component::Normal(p) => joined.push(p),
                        Component::ParentDir => {
                            joined.pop();
                        }
                        _ => {}
                    }
                }
                cur = joined;
            }
            None => return Ok(dir.join(cur)),
        }
    }
    Err(format_err(rel, "too many symlinks in archive"))
}

/// Loads a docker-archive or OCI layout archive (plain or gzip). Returns each image with its names.
pub fn load(store: &Store, input: impl Read) -> Result<Vec<(Digest, Vec<Reference>)>> {
    let tmp = store.temp_dir("load-")?;
    let (links, hashed) = extract(input, tmp.path())?;
    load_tree(store, tmp.path(), &links, &hashed)
}

/// Loads an unpacked archive or an OCI image layout directory.
pub fn load_dir(store: &Store, dir: &Path) -> Result<Vec<(Digest, Vec<Reference>)>> {
    // The user's directory: its files are copied into the store, never moved.
    load_tree(store, dir, &BTreeMap::new(), &Hashed::new())
}

/// Loads the archive tree at `dir`. Files listed in `hashed` belong to this load (a temporary
/// extraction) and are moved into the store instead of copied.
fn load_tree(
    store: &Store,
    dir: &Path,
    links: &BTreeMap<PathBuf, PathBuf>,
    hashed: &Hashed,
) -> Result<Vec<(Digest, Vec<Reference>)>> {
    let links = links.clone();
    let mut pending: Vec<(Vec<u8>, Vec<LayerInfo>, Vec<Reference>)> = Vec::new();
    if dir.join("manifest.json").is_file() {
        let m: Value = read_json(&dir.join("manifest.json"), "manifest.json")?;
        let arr = m
            .as_array()
            .ok_or_else(|| format_err("manifest.json", "expected a JSON array"))?;
        if arr.len() > MAX_IMAGES {
            return Err(format_err(
                "manifest.json",
                format!("{} images; lighter reads at most {MAX_IMAGES}", arr.len()),
            ));
        }
        for (i, entry) in arr.iter().enumerate() {
            let cfg_path = entry
                .get("Config")
                .and_then(|v| v.as_str())
                .ok_or_else(|| format_err("manifest.json", format!("entry {i} has no Config")))?;
            let cfg_file = archive_path(dir, &links, cfg_path)?;
            if !cfg_file.is_file() {
                return Err(format_err(cfg_path, "config file missing from archive"));
            }
            let cfg_bytes = read_capped(&cfg_file, cfg_path)?;
            let cfg: Value = serde_json::from_slice(&cfg_bytes)
                .map_err(|e| format_err(cfg_path, format!("config is not JSON: {e}")))?;
            // Config paths in OCI-style archives are `blobs/sha256/<hex>`: verify the digest.
            if let Some(hex) = cfg_path.strip_prefix("blobs/sha256/") {
                if Digest::sha256(&cfg_bytes).hex() != hex {
                    return Err(format_err(
                        cfg_path,
                        "config digest does not match its file name",
                    ));
                }
            }
            let diff_ids = diff_ids_of(&cfg, cfg_path)?;
            let layer_paths: Vec<&str> = entry
                .get("Layers")
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|l| l.as_str()).collect())
                .unwrap_or_default();
            if layer_paths.len() != diff_ids.len() {
                return Err(format_err(
                    cfg_path,
                    format!(
                        "{} layers in manifest.json but {} diff_ids in the config",
                        layer_paths.len(),
                        diff_ids.len()
                    ),
                ));
            }
            let mut layers = Vec::new();
            for (lp, want) in layer_paths.iter().zip(&diff_ids) {
                let p = archive_path(dir, &links, lp)?;
                layers.push(ingest_layer(store, &p, lp, want, hashed)?);
            }
            let tags = entry
                .get("RepoTags")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str())
                        .filter_map(|t| Reference::parse(t).ok())
                        .collect()
                })
                .unwrap_or_default();
            pending.push((cfg_bytes, layers, tags));
        }
    } else if dir.join("index.json").is_file() {
        let idx: Value = read_json(&dir.join("index.json"), "index.json")?;
        for (mbytes, names) in oci_manifests(dir, &idx)? {
            let (cfg_bytes, layers) = load_oci_image(store, dir, &mbytes)?;
            pending.push((cfg_bytes, layers, names));
        }
    } else {
        return Err(format_err(
            "archive",
            "neither manifest.json (docker save) nor index.json (OCI layout) found",
        ));
    }
    let mut out = Vec::new();
    for (cfg, layers, tags) in pending {
        let id = commit(store, &cfg, &layers, &tags)?;
        out.push((id, tags));
    }
    Ok(out)
}

/// Ingests the config and layers of an OCI layout's image manifest, each checked against its
/// descriptor (media type, size, digest) and the config's diffIDs.
fn load_oci_image(store: &Store, dir: &Path, mbytes: &[u8]) -> Result<(Vec<u8>, Vec<LayerInfo>)> {
    let (cfg_bytes, _, descs) = crate::layout::read_oci_manifest(dir, mbytes)?;
    let mut layers = Vec::new();
    for (d, want) in &descs {
        let p = d.path_in(dir, "layer")?;
        let mt = check_layer(&d, &p)?;
        let f = std::fs::File::open(&p).map_err(io_err("open", &d.digest))?;
        let info = store_blob(store, f, Some(&d.digest), &mt)?;
        if info.diff_id != *want {
            return Err(format_err(
                &d.digest,
                format!(
                    "layer diffID {} does not match the config's {want}",
                    info.diff_id
                ),
            ));
        }
        layers.push(info);
    }
    Ok((cfg_bytes, layers))
}

pub(crate) fn diff_ids_of(cfg: &Value, what: &str) -> Result<Vec<Digest>> {
    let ids = cfg
        .pointer("/rootfs/diff_ids")
        .and_then(|v| v.as_array())
        .ok_or_else(|| format_err(what, "config has no rootfs.diff_ids"))?;
    if ids.len() > MAX_LAYERS {
        return Err(format_err(
            what,
            format!("{} layers; lighter reads at most {MAX_LAYERS}", ids.len()),
        ));
    }
    ids.iter()
        .map(|d| {
            d.as_str()
                .unwrap_or_default()
                .parse::<Digest>()
                .map_err(|e| format_err(what, e.to_string()))
        })
        .collect()
}

fn ingest_layer(
    store: &Store,
    p: &Path,
    name: &str,
    want: &Digest,
    hashed: &Hashed,
) -> Result<LayerInfo> {
    if let Some((digest, size)) = hashed.get(p) {
        return lighter_store::layer::adopt_blob(store, p, digest, *size, want)
            .map_err(|e| format_err(name, e.to_string()));
    }
    let mut f =
        std::fs::File::open(p).map_err(|_| format_err(name, "layer file missing from archive"))?;
    let mut head = [0u8; 4];
    let n = f.read(&mut head).map_err(io_err("read", name))?;
    let mt = layer_media(&head[..n]);
    let f = std::fs::File::open(p).map_err(io_err("open", name))?;
    let info = store_blob(store, f, None, mt)?;
    if info.diff_id != *want {
        return Err(format_err(
            name,
            format!(
                "layer content has diffID {} but the config says {want}",
                info.diff_id
            ),
        ));
    }
    Ok(info)
}

/// Writes `images` (each with the names to record) as an archive to `out`.
pub fn save(
    store: &Store,
    images: &[(Image, Vec<Reference>)],
    format: SaveFormat,
    out: &mut dyn Write,
) -> Result<()> {
    let mut tb = tar::Builder::new(out);
    let mut written = std::collections::HashSet::new();
    let mut index = Vec::new();
    let mut manifest_json = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    add_bytes(&mut tb, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    for (img, names) in images {
        let cfg = store.content().read(&img.record.config)?;
        if written.insert(img.record.config.clone()) {
            add_bytes(
                &mut tb,
                &format!("blobs/sha256/{}", img.record.config.hex()),
                &cfg,
            )?;
        }
        let mut layer_descs = Vec::new();
        let mut layer_paths = Vec::new();
        for l in &img.record.layers {
            let (digest, size, mt) = match format {
                SaveFormat::Docker => (l.diff_id.clone(), l.uncompressed_size, media::OCI_LAYER),
                SaveFormat::Oci => (l.digest.clone(), l.size, l.media_type.as_str()),
            };
            let path = format!("blobs/sha256/{}", digest.hex());
            if written.insert(digest.clone()) {
                let f = store.content().open(&l.digest)?;
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(size);
                h.set_mtime(0);
                match format {
                    SaveFormat::Docker => {
                        let r = decompress(f).map_err(io_err("read layer", &l.digest))?;
                        tb.append_data(&mut h, &path, r.take(size))
                            .map_err(io_err("write", &path))?;
                    }
                    SaveFormat::Oci => tb
                        .append_data(&mut h, &path, f)
                        .map_err(io_err("write", &path))?,
                }
            }
            layer_descs.push(json!({ "mediaType": mt, "digest": digest.as_str(), "size": size }));
            layer_paths.push(path);
        }
        let manifest_bytes = match format {
            SaveFormat::Oci => store.content().read(&img.record.manifest)?,
            SaveFormat::Docker => lighter_oci::json::to_vec_pretty(&json!({
                "schemaVersion": 2,
                "mediaType": media::OCI_MANIFEST,
                "config": { "mediaType": media::OCI_CONFIG, "digest": img.record.config.as_str(), "size": cfg.len() },
                "layers": layer_descs,
            }))
            .map_err(|e| format_err("manifest", e.to_string()))?,
        };
        let md = Digest::sha256(&manifest_bytes);
        if written.insert(md.clone()) {
            add_bytes(
                &mut tb,
                &format!("blobs/sha256/{}", md.hex()),
                &manifest_bytes,
            )?;
        }
        let descriptor = |name: Option<&Reference>| {
            let mut d = json!({ "mediaType": media::OCI_MANIFEST, "digest": md.as_str(), "size": manifest_bytes.len() });
            if let Some(r) = name {
                d["annotations"] = json!({
                    "io.containerd.image.name": r.to_string(),
                    "org.opencontainers.image.ref.name": r.tag.clone().unwrap_or_else(|| "latest".into()),
                });
            }
            d
        };
        if names.is_empty() {
            index.push(descriptor(None));
        }
        for n in names {
            index.push(descriptor(Some(n)));
            repositories.entry(n.familiar_name()).or_default().insert(
                n.tag.clone().unwrap_or_else(|| "latest".into()),
                img.id.hex().to_string(),
            );
        }
        manifest_json.push(json!({
            "Config": format!("blobs/sha256/{}", img.record.config.hex()),
            "RepoTags": names.iter().map(|n| n.familiar()).collect::<Vec<_>>(),
            "Layers": layer_paths,
        }));
    }
    let index = json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": index });
    add_bytes(
        &mut tb,
        "index.json",
        &lighter_oci::json::to_vec(&index).map_err(|e| format_err("index", e.to_string()))?,
    )?;
    if format == SaveFormat::Docker {
        add_bytes(
            &mut tb,
            "manifest.json",
            &serde_json::to_vec(&manifest_json)
                .map_err(|e| format_err("manifest.json", e.to_string()))?,
        )?;
        if !repositories.is_empty() {
            add_bytes(
                &mut tb,
                "repositories",
                &serde_json::to_vec(&repositories)
                    .map_err(|e| format_err("repositories", e.to_string()))?,
            )?;
        }
    }
    tb.finish().map_err(io_err("write", "archive"))?;
    Ok(())
}

fn add_bytes(tb: &mut tar::Builder<&mut dyn Write>, path: &str, bytes: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(bytes.len() as u64);
    h.set_mtime(0);
    tb.append_data(&mut h, path, bytes)
        .map_err(io_err("write", path))
}

/// Writes an OCI layout directory (for `save --format oci-dir`) by unpacking the OCI archive form.
pub fn save_dir(store: &Store, images: &[(Image, Vec<Reference>)], dir: &Path) -> Result<()> {
    let mut buf = Vec::new();
    save(store, images, SaveFormat::Oci, &mut buf)?;
    std::fs::create_dir_all(dir).map_err(io_err("create", dir.display()))?;
    let mut ar = tar::Archive::new(&buf[..]);
    ar.unpack(dir).map_err(io_err("write", dir.display()))?;
    Ok(())
}
