//! Archives and layouts read in place for analysis: a `docker save` archive (legacy or Docker 25+
//! OCI-style) or an OCI layout, as a tar file or a directory, becomes an [`ImageView`] without a
//! byte written anywhere.
//!
//! A plain tar file is indexed first (headers only, seeking over contents), then its layers are read
//! in place, on all cores. A compressed archive (`docker save | gzip`) cannot be read out of order:
//! it is read once from start to end, every JSON file kept and every other file scanned as a layer
//! as it passes, and the image is put together at the end (manifest.json and index.json can come
//! last). Either way the checks are the loader's ([`crate::layout`]): descriptors' sizes and media
//! types, JSON digests, and every layer's digest and diffID against what the image claims.
//!
//! Hashing is most of the cost: a 764 MB layer takes 0.37 s to hash with SHA-NI, on one core, since
//! SHA-256 does not split. No number of the analysis depends on file contents, so without `verify`
//! an uncompressed layer in a file that can seek is read in place, headers only (each carries its own
//! checksum), its contents skipped unhashed; a compressed one must be inflated anyway and is checked.

use crate::layout::{self, Blobs, Descriptor, MAX_JSON};
use crate::view::{parallel, scan_layer, ImageView, LayerView, Scanned};
use crate::{format_err, io_err, Result};
use lighter_oci::Digest;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// Files in one archive at most (a docker-archive has a few per layer).
const MAX_MEMBERS: usize = 100_000;
/// Links followed in a row when resolving a path of the archive.
const MAX_HOPS: usize = 8;

/// Reads the image in the archive file or layout directory at `path` (the first image when it
/// holds several). With `verify`, every layer is read whole and checked against its digest and
/// diffID; without, uncompressed layers that can be read in place are read headers only.
pub fn open(path: &Path, verify: bool) -> Result<ImageView> {
    if path.is_dir() {
        return view(&Dir(path.to_path_buf()), verify);
    }
    let mut f = std::fs::File::open(path).map_err(io_err("open", path.display()))?;
    let mut head = [0u8; 4];
    let n = f.read(&mut head).map_err(io_err("read", path.display()))?;
    match lighter_store::compress::sniff(&head[..n]) {
        lighter_store::compress::Compression::None => view(&TarIndex::new(path)?, verify),
        _ => {
            let f = std::fs::File::open(path).map_err(io_err("open", path.display()))?;
            let r = lighter_store::compress::decompress(f)
                .map_err(|e| format_err(path.display(), format!("decompress: {e}")))?;
            view(&Passed::read(r)?, verify)
        }
    }
}

/// Read + Seek, boxed.
trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// A source of archive files that can also hand over a layer's scan.
trait Source: Blobs + Sync {
    /// The file at `rel` opened for reading in place, where the source allows it.
    fn open_seek(&self, _rel: &str) -> std::io::Result<Option<Box<dyn ReadSeek + '_>>> {
        Ok(None)
    }

    /// The entries of the uncompressed layer at `rel`, read in place (headers only), or `None`
    /// when the layer is compressed or the source cannot seek: then it is [`Source::scan`]ned.
    fn headers_in_place(&self, rel: &str) -> Result<Option<Vec<crate::view::Entry>>> {
        if self.len_of(rel).is_none() {
            return Err(format_err(rel, "layer file missing from archive"));
        }
        let Some(mut r) = self.open_seek(rel).map_err(io_err("read", rel))? else {
            return Ok(None);
        };
        let mut head = [0u8; 4];
        let mut n = 0;
        while n < head.len() {
            match r.read(&mut head[n..]).map_err(io_err("read", rel))? {
                0 => break,
                k => n += k,
            }
        }
        if lighter_store::compress::sniff(&head[..n]) != lighter_store::compress::Compression::None
        {
            return Ok(None);
        }
        r.seek(SeekFrom::Start(0)).map_err(io_err("seek", rel))?;
        crate::view::read_tar_in_place(r, rel).map(Some)
    }

    fn scan(&self, rel: &str) -> Result<Scanned> {
        if self.len_of(rel).is_none() {
            return Err(format_err(rel, "layer file missing from archive"));
        }
        let r = self.open(rel).map_err(io_err("read", rel))?;
        scan_layer(r, rel)
    }
}

/// A path of the archive as a key: no `./`, no leading or trailing `/`, never leaving the archive.
fn clean(rel: &str) -> Result<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().unwrap_or_default()),
            Component::CurDir => {}
            Component::RootDir if parts.is_empty() => {}
            _ => return Err(format_err(rel, "path leaves the archive")),
        }
    }
    Ok(parts.join("/"))
}

/// The loader's words for an archive that is not one: (no tar at all, a bad entry).
#[allow(clippy::type_complexity)]
fn errors() -> (
    impl Fn(std::io::Error) -> crate::ImageError,
    impl Fn(std::io::Error) -> crate::ImageError,
) {
    (
        |e| format_err("archive", format!("not a tar archive: {e}")),
        |e| format_err("archive", format!("corrupt or truncated archive: {e}")),
    )
}

/// An entry's path as a member key; a path with `..` is refused, as the loader refuses it.
fn member_key<R: Read>(e: &tar::Entry<R>) -> Result<String> {
    let p = e
        .path()
        .map_err(|err| format_err("archive", err.to_string()))?
        .to_string_lossy()
        .into_owned();
    clean(&p).map_err(|_| format_err(&p, "archive entry path leaves the archive root"))
}

/// A layout or unpacked archive directory.
struct Dir(PathBuf);

impl Blobs for Dir {
    fn len_of(&self, rel: &str) -> Option<u64> {
        self.0.as_path().len_of(&clean(rel).ok()?)
    }
    fn open(&self, rel: &str) -> std::io::Result<Box<dyn Read + Send + '_>> {
        let rel = clean(rel).map_err(|e| std::io::Error::other(e.to_string()))?;
        self.0.as_path().open(&rel)
    }
}

impl Source for Dir {
    fn open_seek(&self, rel: &str) -> std::io::Result<Option<Box<dyn ReadSeek + '_>>> {
        let rel = clean(rel).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Some(Box::new(std::fs::File::open(self.0.join(rel))?)))
    }
}

enum Member {
    File {
        offset: u64,
        size: u64,
    },
    /// A link, to an archive path (symlinks' targets made absolute in the archive).
    Link(String),
}

/// A plain tar file, indexed: each file's place, read in place with its own handle.
struct TarIndex {
    path: PathBuf,
    members: HashMap<String, Member>,
}

impl TarIndex {
    fn new(path: &Path) -> Result<TarIndex> {
        let name = path.display().to_string();
        let f = std::fs::File::open(path).map_err(io_err("open", &name))?;
        let guard = lighter_store::targuard::TarGuard::new(BufReader::with_capacity(64 << 10, f));
        let mut ar = tar::Archive::new(guard);
        let mut members = HashMap::new();
        let (not_tar, bad) = errors();
        let mut any = false;
        for e in ar.entries_with_seek().map_err(not_tar)? {
            let e = e.map_err(&bad)?;
            any = true;
            if members.len() >= MAX_MEMBERS {
                return Err(format_err(
                    &name,
                    format!("more than {MAX_MEMBERS} files; lighter reads at most that many"),
                ));
            }
            let key = member_key(&e)?;
            let kind = e.header().entry_type();
            let member = if kind.is_file() {
                Member::File {
                    offset: e.raw_file_position(),
                    size: e.size(),
                }
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = e.link_name().map_err(&bad)?.unwrap_or_default();
                let target = target.to_string_lossy();
                let joined = if kind.is_symlink() && !target.starts_with('/') {
                    match key.rsplit_once('/') {
                        Some((dir, _)) => format!("{dir}/{target}"),
                        None => target.into_owned(),
                    }
                } else {
                    target.into_owned()
                };
                Member::Link(joined)
            } else {
                continue;
            };
            members.insert(key, member);
        }
        if !any {
            return Err(format_err("archive", "empty archive"));
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            members,
        })
    }

    /// Where the file at `rel` is, following the archive's links.
    fn find(&self, rel: &str) -> Option<(u64, u64)> {
        let mut cur = clean(rel).ok()?;
        for _ in 0..MAX_HOPS {
            match self.members.get(&cur)? {
                Member::File { offset, size } => return Some((*offset, *size)),
                Member::Link(t) => cur = collapse(t)?,
            }
        }
        None
    }
}

/// `a/b/../c` -> `a/c`; `None` when it climbs out of the archive.
fn collapse(p: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl Blobs for TarIndex {
    fn len_of(&self, rel: &str) -> Option<u64> {
        self.find(rel).map(|(_, size)| size)
    }
    fn open(&self, rel: &str) -> std::io::Result<Box<dyn Read + Send + '_>> {
        let (offset, size) = self.find(rel).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "not in the archive")
        })?;
        let mut f = std::fs::File::open(&self.path)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(f.take(size)))
    }
}

impl Source for TarIndex {
    fn open_seek(&self, rel: &str) -> std::io::Result<Option<Box<dyn ReadSeek + '_>>> {
        let (start, len) = self.find(rel).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "not in the archive")
        })?;
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(start))?;
        let w = Window {
            file,
            start,
            len,
            pos: 0,
        };
        Ok(Some(Box::new(BufReader::with_capacity(64 << 10, w))))
    }
}

/// The bytes `start..start + len` of a file, as a file of their own.
struct Window {
    file: std::fs::File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len - self.pos;
        let n = (buf.len() as u64).min(left) as usize;
        let n = self.file.read(&mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let to = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        }
        .filter(|n| *n <= self.len)
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek outside the file")
        })?;
        self.file.seek(SeekFrom::Start(self.start + to))?;
        self.pos = to;
        Ok(to)
    }
}

/// What a read of a compressed archive kept of one file.
enum Passing {
    Json(Vec<u8>),
    Layer(u64, Mutex<Option<Result<Scanned>>>),
    Link(String),
}

/// A compressed archive, read once.
struct Passed {
    members: HashMap<String, Passing>,
}

impl Passed {
    fn read(r: impl Read) -> Result<Passed> {
        let mut ar = tar::Archive::new(lighter_store::targuard::TarGuard::new(r));
        let mut members = HashMap::new();
        let (not_tar, bad) = errors();
        for e in ar.entries().map_err(not_tar)? {
            let e = e.map_err(&bad)?;
            if members.len() >= MAX_MEMBERS {
                return Err(format_err(
                    "archive",
                    format!("more than {MAX_MEMBERS} files; lighter reads at most that many"),
                ));
            }
            let key = member_key(&e)?;
            let kind = e.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let t = e.link_name().map_err(&bad)?.unwrap_or_default();
                let t = t.to_string_lossy();
                let joined = match key.rsplit_once('/') {
                    Some((dir, _)) if kind.is_symlink() && !t.starts_with('/') => {
                        format!("{dir}/{t}")
                    }
                    _ => t.into_owned(),
                };
                members.insert(key, Passing::Link(joined));
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let size = e.size();
            let truncated = |err| format_err(&key, format!("truncated archive: {err}"));
            let mut br = BufReader::with_capacity(1 << 20, e);
            let head = br.fill_buf().map_err(truncated)?;
            let json = size <= MAX_JSON
                && head
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_some_and(|b| *b == b'{' || *b == b'[');
            let m = if json {
                let mut b = Vec::with_capacity(size as usize);
                br.read_to_end(&mut b).map_err(truncated)?;
                Passing::Json(b)
            } else {
                // Not yet known to be a layer: a failure counts only if the image names the file.
                Passing::Layer(size, Mutex::new(Some(scan_layer(&mut br, &key))))
            };
            members.insert(key, m);
        }
        if members.is_empty() {
            return Err(format_err("archive", "empty archive"));
        }
        Ok(Passed { members })
    }

    fn find(&self, rel: &str) -> Option<&Passing> {
        let mut cur = clean(rel).ok()?;
        for _ in 0..MAX_HOPS {
            match self.members.get(&cur)? {
                Passing::Link(t) => cur = collapse(t)?,
                m => return Some(m),
            }
        }
        None
    }
}

impl Blobs for Passed {
    fn len_of(&self, rel: &str) -> Option<u64> {
        match self.find(rel)? {
            Passing::Json(b) => Some(b.len() as u64),
            Passing::Layer(size, _) => Some(*size),
            Passing::Link(_) => None,
        }
    }
    fn open(&self, rel: &str) -> std::io::Result<Box<dyn Read + Send + '_>> {
        match self.find(rel) {
            Some(Passing::Json(b)) => Ok(Box::new(&b[..])),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not a JSON file of the archive",
            )),
        }
    }
}

impl Source for Passed {
    fn scan(&self, rel: &str) -> Result<Scanned> {
        match self.find(rel) {
            Some(Passing::Layer(_, s)) => s
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_else(|| Err(format_err(rel, "named twice as a layer"))),
            _ => Err(format_err(rel, "layer file missing from archive")),
        }
    }
}

/// A layer the image names, and what to check its scan against.
struct Planned {
    rel: String,
    diff_id: Digest,
    /// The descriptor (OCI layouts), or the digest a `blobs/sha256/<hex>` name gives.
    desc: Option<Descriptor>,
    named: Option<Digest>,
}

/// The image's config (bytes and JSON) and the layers to read.
fn plan<S: Source>(src: &S) -> Result<(Vec<u8>, Value, Vec<Planned>)> {
    if src.len_of("manifest.json").is_some() {
        return plan_docker(src);
    }
    if src.len_of("index.json").is_some() {
        return plan_oci(src);
    }
    Err(format_err(
        "archive",
        "neither manifest.json (docker save) nor index.json (OCI layout) found",
    ))
}

fn named_digest(rel: &str) -> Option<Digest> {
    let hex = rel.strip_prefix("blobs/sha256/")?;
    format!("sha256:{hex}").parse().ok()
}

fn plan_docker<S: Source>(src: &S) -> Result<(Vec<u8>, Value, Vec<Planned>)> {
    let bytes = layout::read_capped_in(src, "manifest.json", "manifest.json")?;
    let m: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format_err("manifest.json", format!("not valid JSON: {e}")))?;
    let entry = m
        .as_array()
        .ok_or_else(|| format_err("manifest.json", "expected a JSON array"))?
        .first()
        .ok_or_else(|| format_err("manifest.json", "no image in the archive"))?;
    let cfg_path = entry
        .get("Config")
        .and_then(|v| v.as_str())
        .ok_or_else(|| format_err("manifest.json", "entry 0 has no Config"))?;
    let cfg_rel = clean(cfg_path)?;
    if src.len_of(&cfg_rel).is_none() {
        return Err(format_err(cfg_path, "config file missing from archive"));
    }
    let cfg_bytes = layout::read_capped_in(src, &cfg_rel, cfg_path)?;
    if let Some(d) = named_digest(&cfg_rel) {
        if Digest::sha256(&cfg_bytes) != d {
            return Err(format_err(
                cfg_path,
                "config digest does not match its file name",
            ));
        }
    }
    let cfg: Value = serde_json::from_slice(&cfg_bytes)
        .map_err(|e| format_err(cfg_path, format!("config is not JSON: {e}")))?;
    let diff_ids = crate::archive::diff_ids_of(&cfg, cfg_path)?;
    let paths: Vec<&str> = entry
        .get("Layers")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|l| l.as_str()).collect())
        .unwrap_or_default();
    if paths.len() != diff_ids.len() {
        return Err(format_err(
            cfg_path,
            format!(
                "{} layers in manifest.json but {} diff_ids in the config",
                paths.len(),
                diff_ids.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    for (p, diff_id) in paths.iter().zip(diff_ids) {
        let rel = clean(p)?;
        layers.push(Planned {
            named: named_digest(&rel),
            rel,
            diff_id,
            desc: None,
        });
    }
    Ok((cfg_bytes, cfg, layers))
}

fn plan_oci<S: Source>(src: &S) -> Result<(Vec<u8>, Value, Vec<Planned>)> {
    let bytes = layout::read_capped_in(src, "index.json", "index.json")?;
    let idx: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format_err("index.json", format!("not valid JSON: {e}")))?;
    let manifests = layout::oci_manifests(src, &idx)?;
    let (mbytes, _) = &manifests[0];
    let (cfg_bytes, cfg, descs) = layout::read_oci_manifest(src, mbytes)?;
    let mut layers = Vec::new();
    for (d, diff_id) in descs {
        d.check_len(src, "layer")?;
        layers.push(Planned {
            rel: d.rel(),
            diff_id,
            named: None,
            desc: Some(d),
        });
    }
    Ok((cfg_bytes, cfg, layers))
}

/// Reads the layers `plan` names (on all cores) and checks each against what the image says.
fn view<S: Source>(src: &S, verify: bool) -> Result<ImageView> {
    let (cfg_bytes, config, planned) = plan(src)?;
    let layers = parallel(&planned, |p| {
        let in_place = if verify {
            None
        } else {
            src.headers_in_place(&p.rel)?
        };
        if let Some(entries) = in_place {
            // Read in place: the contents, which no number of the analysis depends on, are
            // skipped unhashed (each header carries its own checksum).
            if let Some(d) = &p.desc {
                layout::check_layer_kind(d, lighter_store::compress::Compression::None)?;
            }
            let size = src.len_of(&p.rel).unwrap_or_default();
            let digest = p
                .desc
                .as_ref()
                .map(|d| d.digest.clone())
                .or_else(|| p.named.clone())
                .unwrap_or_else(|| p.diff_id.clone());
            return Ok(LayerView {
                diff_id: p.diff_id.clone(),
                digest,
                size,
                uncompressed_size: size,
                entries,
            });
        }
        let s = src.scan(&p.rel)?;
        let what = p
            .desc
            .as_ref()
            .map_or(p.rel.clone(), |d| d.digest.to_string());
        if let Some(d) = &p.desc {
            layout::check_layer_kind(d, s.compression)?;
            if s.digest != d.digest || s.size != d.size {
                return Err(format_err(&what, "blob content does not match its digest"));
            }
        }
        if p.named.as_ref().is_some_and(|n| *n != s.digest) {
            return Err(format_err(
                &what,
                "layer digest does not match its file name",
            ));
        }
        if s.diff_id != p.diff_id {
            let says = if p.desc.is_some() {
                format!(
                    "layer diffID {} does not match the config's {}",
                    s.diff_id, p.diff_id
                )
            } else {
                format!(
                    "layer content has diffID {} but the config says {}",
                    s.diff_id, p.diff_id
                )
            };
            return Err(format_err(&what, says));
        }
        Ok(LayerView {
            diff_id: s.diff_id,
            digest: s.digest,
            size: s.size,
            uncompressed_size: s.uncompressed_size,
            entries: s.entries,
        })
    })?;
    Ok(ImageView {
        id: Digest::sha256(&cfg_bytes),
        config,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn layer(files: &[(&str, usize)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, n) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(*n as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, p, &vec![b'x'; *n][..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b).unwrap();
        gz.finish().unwrap()
    }

    fn config(layers: &[&[u8]]) -> Vec<u8> {
        let ids: Vec<String> = layers
            .iter()
            .map(|l| Digest::sha256(l).to_string())
            .collect();
        json!({"architecture": "amd64", "os": "linux",
               "rootfs": {"type": "layers", "diff_ids": ids},
               "history": [{"created_by": "a"}, {"created_by": "b"}]})
        .to_string()
        .into_bytes()
    }

    /// A tar of `files`; an `Err` body is a symlink to the given target.
    fn tar_of(files: &[(&str, Result<&[u8], &str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match body {
                Ok(data) => {
                    h.set_size(data.len() as u64);
                    h.set_entry_type(tar::EntryType::Regular);
                    b.append_data(&mut h, p, *data).unwrap();
                }
                Err(target) => {
                    h.set_size(0);
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, p, target).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn docker_archive(layers_as: &[&str]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let (l1, l2) = (layer(&[("a", 10), ("b", 3)]), layer(&[("a", 20)]));
        let cfg = config(&[&l1, &l2]);
        let m = json!([{"Config": "cfg.json", "RepoTags": ["t:1"], "Layers": layers_as}]);
        let m = m.to_string();
        let t = tar_of(&[
            ("l1/layer.tar", Ok(&l1[..])),
            ("l2/layer.tar", Ok(&l2[..])),
            ("dup/layer.tar", Err("../l1/layer.tar")),
            ("escape/layer.tar", Err("../../../../etc/passwd")),
            ("cfg.json", Ok(&cfg[..])),
            ("manifest.json", Ok(m.as_bytes())),
        ]);
        (t, l1, l2)
    }

    #[test]
    fn docker_archives_read_in_place_plain_or_compressed() {
        let d = tempfile::tempdir().unwrap();
        let (t, l1, l2) = docker_archive(&["l1/layer.tar", "./l2/layer.tar"]);
        let plain = write(d.path(), "a.tar", &t);
        let gz = write(d.path(), "a.tar.gz", &gzip(&t));
        for (p, verify) in [(&plain, true), (&plain, false), (&gz, true), (&gz, false)] {
            let v = open(p, verify).unwrap();
            assert_eq!(v.layers.len(), 2);
            assert_eq!(v.layers[0].diff_id, Digest::sha256(&l1));
            assert_eq!(v.layers[1].uncompressed_size, l2.len() as u64);
            assert_eq!(v.layers[0].entries.len(), 2);
            assert_eq!(v.layers[1].entries[0].size, 20);
            assert_eq!(v.history().len(), 2);
        }
        // A layer named through the archive's own symlink.
        let (t, _, _) = docker_archive(&["dup/layer.tar", "l2/layer.tar"]);
        for p in [
            write(d.path(), "b.tar", &t),
            write(d.path(), "b.tar.gz", &gzip(&t)),
        ] {
            let v = open(&p, true).unwrap();
            assert_eq!(v.layers[0].diff_id, Digest::sha256(&l1), "{}", p.display());
        }
    }

    #[test]
    fn names_and_contents_that_lie_are_refused() {
        let d = tempfile::tempdir().unwrap();
        for (layers, want) in [
            (
                ["../x/layer.tar", "l2/layer.tar"],
                "path leaves the archive",
            ),
            (["/etc/passwd", "l2/layer.tar"], "missing from archive"),
            (["escape/layer.tar", "l2/layer.tar"], "missing from archive"),
            (["l2/layer.tar", "l1/layer.tar"], "but the config says"),
        ] {
            let (t, _, _) = docker_archive(&layers);
            let p = write(d.path(), "x.tar", &t);
            let e = open(&p, true).unwrap_err().to_string();
            assert!(e.contains(want), "{layers:?}: {e}");
            if !want.contains("config says") {
                let e = open(&p, false).unwrap_err().to_string();
                assert!(e.contains(want), "in place {layers:?}: {e}");
            }
            let p = write(d.path(), "x.tar.gz", &gzip(&t));
            let e = open(&p, false).unwrap_err().to_string();
            assert!(
                e.contains(want) || e.contains("missing"),
                "gzip {layers:?}: {e}"
            );
        }
    }

    #[test]
    fn in_place_reads_skip_content_digests() {
        // Swapped layers: refused when verified, read as they are (headers only) when not.
        let d = tempfile::tempdir().unwrap();
        let (t, l1, _) = docker_archive(&["l2/layer.tar", "l1/layer.tar"]);
        let p = write(d.path(), "swapped.tar", &t);
        assert!(open(&p, true).is_err());
        let v = open(&p, false).unwrap();
        assert_eq!(v.layers[1].entries.len(), 2);
        assert_eq!(v.layers[1].uncompressed_size, l1.len() as u64);
    }

    fn oci_layout(dir: &Path, lie_size: bool) {
        let l1 = gzip(&layer(&[("a", 10)]));
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |b: &[u8]| {
            let d = Digest::sha256(b);
            std::fs::write(blobs.join(d.hex()), b).unwrap();
            d
        };
        let cfg = config(&[&layer(&[("a", 10)])]);
        let cd = put(&cfg);
        let ld = put(&l1);
        let m = json!({"schemaVersion": 2, "mediaType": lighter_oci::media::OCI_MANIFEST,
            "config": {"mediaType": lighter_oci::media::OCI_CONFIG, "digest": cd.as_str(), "size": cfg.len()},
            "layers": [{"mediaType": lighter_oci::media::OCI_LAYER_GZIP, "digest": ld.as_str(),
                        "size": l1.len() + usize::from(lie_size)}]})
        .to_string();
        let md = put(m.as_bytes());
        let idx = json!({"schemaVersion": 2, "manifests": [{"mediaType": lighter_oci::media::OCI_MANIFEST,
            "digest": md.as_str(), "size": m.len()}]});
        std::fs::write(dir.join("index.json"), idx.to_string()).unwrap();
    }

    #[test]
    fn oci_layouts_as_directories_and_tars() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("layout");
        oci_layout(&dir, false);
        let v = open(&dir, false).unwrap();
        assert_eq!(v.layers.len(), 1);
        assert!(v.layers[0].size < v.layers[0].uncompressed_size);
        assert_eq!(v.layers[0].entries[0].path, "a");
        let t = d.path().join("layout.tar");
        let ok = std::process::Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&t)
            .arg(".")
            .status()
            .unwrap();
        assert!(ok.success());
        let w = open(&t, true).unwrap();
        assert_eq!(w.layers[0].digest, v.layers[0].digest);
        assert_eq!(w.id, v.id);
        let bad = d.path().join("bad");
        oci_layout(&bad, true);
        let e = open(&bad, false).unwrap_err().to_string();
        assert!(e.contains("descriptor gives size"), "{e}");
    }
}
