//! ADD's remote sources, fetched as BuildKit fetches them into a local directory that the ordinary
//! copy reads: http(s) URLs downloaded as one file (never extracted unless `--unpack`), named after the
//! URL path's last segment, mode 0600, mtime from `Last-Modified` (else the epoch), `--checksum`
//! verified, revalidated with the last download's ETag (`If-None-Match`: a 304 needs no bytes); git
//! repositories (`git` module) resolved with `git ls-remote` and checked out with the `git` binary. Each source gives a content key for the step's cache key; work the key does not need
//! (a git checkout, a download pinned by `--checksum`) waits for [`Remotes::fetch`], which only a step
//! that misses the cache calls.

use crate::step::sha;
use crate::EngineError;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

mod git;

/// Whether ADD reads `src` from the network (an http(s) URL or a git repository) rather than from
/// the context, as BuildKit's `isHTTPSource || isGitSource`.
pub(crate) fn is_remote(src: &str) -> bool {
    is_http(src) || git::is_git(src)
}

fn is_http(src: &str) -> bool {
    (src.starts_with("http://") || src.starts_with("https://")) && !git::is_git(src)
}

/// The error COPY gives for a remote source (BuildKit's wording).
pub(crate) fn copy_error(src: &str) -> EngineError {
    EngineError::msg(if git::is_git(src) {
        format!("COPY {src}: source can't be a git ref for COPY (use ADD)")
    } else {
        format!("COPY {src}: source can't be a URL for COPY (use ADD)")
    })
}

/// BuildKit's checks on `ADD --checksum`: one source, and a remote one.
pub(crate) fn check_checksum(
    sources: &[String],
    checksum: Option<&str>,
) -> Result<(), EngineError> {
    if checksum.is_none() {
        return Ok(());
    }
    if sources.len() != 1 {
        return Err(EngineError::msg(
            "ADD --checksum can't be specified for multiple sources",
        ));
    }
    if !is_remote(&sources[0]) {
        return Err(EngineError::msg(format!(
            "ADD --checksum requires an HTTP(S) or Git source (got {})",
            sources[0]
        )));
    }
    Ok(())
}

/// The remote sources of one ADD, resolved: a directory holding one entry per source (`0/`, `1/`, …),
/// what to select in it, and the content key.
pub(crate) struct Remotes {
    dir: tempfile::TempDir,
    store_tmp: PathBuf,
    items: Vec<Item>,
    unpack: bool,
}

struct Item {
    /// The path to select under the directory.
    pick: String,
    key: String,
    /// Work left for [`Remotes::fetch`].
    pending: Option<Pending>,
}

enum Pending {
    /// A download pinned by `--checksum`: the key needed no bytes.
    Http {
        url: String,
        file: PathBuf,
        checksum: Checksum,
    },
    Git(Box<git::Resolved>),
}

impl Remotes {
    /// Resolves every source of an ADD (all must be remote): downloads http sources without a
    /// checksum (their key is their content), asks git remotes which commit their ref names.
    pub(crate) fn resolve(
        store: &lighter_store::Store,
        sources: &[String],
        checksum: Option<&str>,
        keep_git_dir: bool,
        unpack: Option<bool>,
    ) -> Result<Remotes, EngineError> {
        if let Some(local) = sources.iter().find(|s| !is_remote(s)) {
            return Err(EngineError::msg(format!(
                "ADD {local}: a local source can't be mixed with URL or git sources in one ADD (split it into two ADD instructions)"
            )));
        }
        let dir = store
            .temp_dir("remote-")
            .map_err(|e| EngineError::msg(e.to_string()))?;
        let store_tmp = dir
            .path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut items = Vec::new();
        for (i, src) in sources.iter().enumerate() {
            let slot = dir.path().join(i.to_string());
            mkdir(&slot)?;
            let item = if is_http(src) {
                resolve_http(store, src, &slot, i, checksum)?
            } else {
                let r = git::resolve(src, checksum, keep_git_dir)?;
                Item {
                    pick: i.to_string(),
                    key: sha(&["git", &r.cache_key()]),
                    pending: Some(Pending::Git(Box::new(r))),
                }
            };
            items.push(item);
        }
        // Downloads are unpacked only with --unpack, git checkouts never (as BuildKit).
        let unpack = unpack == Some(true)
            && !items
                .iter()
                .any(|i| matches!(i.pending, Some(Pending::Git(_))));
        Ok(Remotes {
            dir,
            store_tmp,
            items,
            unpack,
        })
    }

    /// The directory the sources are (or will be) in.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What to select under [`Remotes::dir`], one path per source.
    pub(crate) fn picks(&self) -> Vec<String> {
        self.items.iter().map(|i| i.pick.clone()).collect()
    }

    /// The content key of all sources (and whether archives are unpacked).
    pub(crate) fn key(&self) -> String {
        let mut keys: Vec<&str> = self.items.iter().map(|i| i.key.as_str()).collect();
        if self.unpack {
            keys.push("unpack");
        }
        sha(&keys)
    }

    /// Whether the copy unpacks archives (`--unpack=true` and no git source).
    pub(crate) fn unpack(&self) -> bool {
        self.unpack
    }

    /// Does the work the key did not need: downloads pinned by `--checksum` (verified) and git
    /// checkouts. Called once, by the step that runs.
    pub(crate) fn fetch(&self) -> Result<(), EngineError> {
        for (i, item) in self.items.iter().enumerate() {
            match &item.pending {
                None => {}
                Some(Pending::Http {
                    url,
                    file,
                    checksum,
                }) => {
                    download(url, file, Some(checksum), None)?;
                }
                Some(Pending::Git(r)) => {
                    let slot = self.dir.path().join(i.to_string());
                    r.checkout(&slot, &self.store_tmp)?;
                }
            }
        }
        Ok(())
    }
}

fn resolve_http(
    store: &lighter_store::Store,
    src: &str,
    slot: &Path,
    i: usize,
    checksum: Option<&str>,
) -> Result<Item, EngineError> {
    let name = url_file_name(src);
    let file = slot.join(&name);
    // A name with wildcard characters is selected as a pattern that matches only itself.
    let escaped: String = if name.contains(['*', '?', '[']) {
        name.chars()
            .flat_map(|c| match c {
                '*' | '?' | '[' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect()
    } else {
        name.clone()
    };
    let pick = format!("{i}/{escaped}");
    match checksum {
        Some(c) => {
            let checksum =
                Checksum::parse(c).map_err(|e| EngineError::msg(format!("ADD {src}: {e}")))?;
            let key = sha(&["http", &name, &checksum.to_string()]);
            deferred(src, file, pick, key, checksum)
        }
        None => {
            // As BuildKit's http source: a URL fetched before is revalidated with its ETag; an
            // unchanged one (304) keys the step by the content it had, and is downloaded again
            // (and checked against that content) only if the step itself has to run.
            let known = Validator::load(store, src);
            let etag = known.as_ref().map(|k| k.etag.as_str());
            let key_of = |sha256: &str, last_modified: Option<&str>| {
                sha(&[
                    "http",
                    &name,
                    &format!("sha256:{sha256}"),
                    last_modified.unwrap_or(""),
                ])
            };
            match download(src, &file, None, etag)? {
                Fetched::NotModified => {
                    let Some(k) = known else {
                        return Err(EngineError::msg(format!(
                            "ADD {src}: 304 Not Modified to an unconditional request"
                        )));
                    };
                    let key = key_of(&k.sha256, k.last_modified.as_deref());
                    let checksum = Checksum {
                        algo: "sha256",
                        hex: k.sha256,
                    };
                    deferred(src, file, pick, key, checksum)
                }
                Fetched::Body(got) => {
                    Validator::save(store, src, &got);
                    Ok(Item {
                        pick,
                        key: key_of(&got.sha256, got.last_modified.as_deref()),
                        pending: None,
                    })
                }
            }
        }
    }
}

/// A download whose key needed no bytes (pinned by `--checksum`, or an ETag answered 304): the file
/// is left empty for selection, and [`Remotes::fetch`] fills and checks it if the step runs.
fn deferred(
    src: &str,
    file: PathBuf,
    pick: String,
    key: String,
    checksum: Checksum,
) -> Result<Item, EngineError> {
    std::fs::write(&file, b"").map_err(|e| EngineError::msg(format!("{}: {e}", file.display())))?;
    Ok(Item {
        pick,
        key,
        pending: Some(Pending::Http {
            url: src.to_string(),
            file,
            checksum,
        }),
    })
}

/// What a URL's last download answered, for revalidation (meta table `http_cache`, keyed by the
/// URL's sha256 so that credentials in a URL are not stored).
#[derive(serde::Serialize, serde::Deserialize)]
struct Validator {
    etag: String,
    sha256: String,
    last_modified: Option<String>,
}

impl Validator {
    fn load(store: &lighter_store::Store, url: &str) -> Option<Validator> {
        let v = store
            .meta()
            .get(lighter_store::meta::Table::HttpCache, &sha(&[url]))
            .ok()??;
        serde_json::from_str(&v).ok()
    }

    /// Best effort: a URL without an ETag, or a store that can't be written, only costs a download.
    fn save(store: &lighter_store::Store, url: &str, got: &Downloaded) {
        let Some(etag) = got.etag.clone() else {
            return;
        };
        let v = Validator {
            etag,
            sha256: got.sha256.clone(),
            last_modified: got.last_modified.clone(),
        };
        if let Ok(json) = serde_json::to_string(&v) {
            let _ = store
                .meta()
                .put(lighter_store::meta::Table::HttpCache, &sha(&[url]), &json);
        }
    }
}

/// The file name BuildKit's Dockerfile frontend gives a download: the URL path's last segment
/// (percent-decoded), `__unnamed__` when there is none; names that are unsafe become `download`.
pub(crate) fn url_file_name(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.split(['#', '?']).next().unwrap_or("");
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    let path = percent_decode(path);
    let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let base = if path.trim_end_matches('/').is_empty() || base == "." {
        "__unnamed__"
    } else {
        base
    };
    let base = base.trim();
    if base.is_empty() || base == "." || base == ".." || base.chars().any(|c| c.is_control()) {
        "download".to_string()
    } else {
        base.to_string()
    }
}

pub(crate) fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `--checksum` for an http source: `sha256:`, `sha384:` or `sha512:` and the hex digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checksum {
    algo: &'static str,
    hex: String,
}

impl Checksum {
    pub(crate) fn parse(s: &str) -> Result<Checksum, String> {
        let bad = || {
            format!(
                "invalid --checksum {s:?}: expected sha256:<64 hex digits> (or sha384:, sha512:)"
            )
        };
        let (algo, hex) = s.split_once(':').ok_or_else(bad)?;
        let (algo, len) = match algo {
            "sha256" => ("sha256", 64),
            "sha384" => ("sha384", 96),
            "sha512" => ("sha512", 128),
            _ => return Err(bad()),
        };
        if hex.len() != len
            || !hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            return Err(bad());
        }
        Ok(Checksum {
            algo,
            hex: hex.to_string(),
        })
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.algo, self.hex)
    }
}

struct Downloaded {
    sha256: String,
    last_modified: Option<String>,
    etag: Option<String>,
}

enum Fetched {
    /// 304: the `If-None-Match` ETag still holds; nothing was written.
    NotModified,
    Body(Downloaded),
}

/// GETs `url` into `file` (mode 0600, mtime from `Last-Modified` or the epoch, as BuildKit's http
/// source). With `checksum`, a mismatch is an error and the file is removed.
fn download(
    url: &str,
    file: &Path,
    checksum: Option<&Checksum>,
    if_none_match: Option<&str>,
) -> Result<Fetched, EngineError> {
    let fail =
        |what: String| EngineError::msg(format!("failed to fetch {}: {what}", git::redact(url)));
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .user_agent(concat!("lighter/", env!("CARGO_PKG_VERSION")))
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build(),
            )
            .build(),
    );
    // The fragment is never sent.
    let target = url.split('#').next().unwrap_or(url);
    let mut req = agent.get(target);
    if let Some(etag) = if_none_match {
        req = req.header("If-None-Match", etag);
    }
    let resp = req.call().map_err(|e| fail(e.to_string()))?;
    let status = resp.status().as_u16();
    if status == 304 && if_none_match.is_some() {
        return Ok(Fetched::NotModified);
    }
    if !(200..400).contains(&status) {
        let reason = resp.status().canonical_reason().unwrap_or("");
        return Err(fail(
            format!("invalid response status {status} {reason}")
                .trim_end()
                .to_string(),
        ));
    }
    let last_modified = resp
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = resp.into_body().into_reader();
    let io = |e: std::io::Error| EngineError::msg(format!("{}: {e}", file.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .map_err(io)?;
    let mut h256 = Sha256::new();
    let mut other: Option<Box<dyn sha2::digest::DynDigest>> = match checksum.map(|c| c.algo) {
        Some("sha384") => Some(Box::new(Sha384::new())),
        Some("sha512") => Some(Box::new(Sha512::new())),
        _ => None,
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = body.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        h256.update(&buf[..n]);
        if let Some(o) = other.as_mut() {
            o.update(&buf[..n]);
        }
        f.write_all(&buf[..n]).map_err(io)?;
    }
    let sha256 = hex::encode(h256.finalize());
    let actual = match (checksum, other) {
        (Some(c), Some(o)) => format!("{}:{}", c.algo, hex::encode(o.finalize())),
        _ => format!("sha256:{sha256}"),
    };
    if let Some(c) = checksum {
        if actual != c.to_string() {
            drop(f);
            let _ = std::fs::remove_file(file);
            return Err(EngineError::msg(format!(
                "digest mismatch for {}: expected {c}, got {actual}",
                git::redact(url)
            )));
        }
    }
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    let secs = last_modified
        .as_deref()
        .and_then(parse_http_date)
        .unwrap_or(0);
    let t = if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    f.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
        .map_err(io)?;
    Ok(Fetched::Body(Downloaded {
        sha256,
        last_modified,
        etag,
    }))
}

/// Parses an HTTP date (IMF-fixdate, RFC 850 or asctime, as Go's `http.ParseTime`) to Unix seconds.
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = |m: &str| MONTHS.iter().position(|x| *x == m).map(|i| i as i64 + 1);
    let hms = |t: &str| -> Option<(i64, i64, i64)> {
        let mut it = t.split(':').map(|x| x.parse::<i64>().ok());
        let (h, m, s) = (it.next()??, it.next()??, it.next()??);
        (it.next().is_none() && h < 24 && m < 60 && s < 61).then_some((h, m, s))
    };
    let words: Vec<&str> = s.split_whitespace().collect();
    let (y, mo, d, (h, mi, se)) = if s.contains(',') {
        let rest = words.get(1..)?;
        if rest.len() == 5 && rest[4] == "GMT" {
            // Sun, 06 Nov 1994 08:49:37 GMT
            (
                rest[2].parse().ok()?,
                month(rest[1])?,
                rest[0].parse().ok()?,
                hms(rest[3])?,
            )
        } else if rest.len() == 3 && rest[2] == "GMT" {
            // Sunday, 06-Nov-94 08:49:37 GMT
            let mut p = rest[0].split('-');
            let (d, m, y) = (p.next()?, p.next()?, p.next()?);
            let y: i64 = y.parse().ok()?;
            let y = if y < 69 {
                2000 + y
            } else if y < 100 {
                1900 + y
            } else {
                y
            };
            (y, month(m)?, d.parse().ok()?, hms(rest[1])?)
        } else {
            return None;
        }
    } else if words.len() == 5 {
        // Sun Nov  6 08:49:37 1994
        (
            words[4].parse().ok()?,
            month(words[1])?,
            words[2].parse().ok()?,
            hms(words[3])?,
        )
    } else {
        return None;
    };
    if !(1..=31).contains(&d) {
        return None;
    }
    Some(lighter_image::days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
}

fn mkdir(p: &Path) -> Result<(), EngineError> {
    std::fs::create_dir(p)
        .and_then(|_| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| EngineError::msg(format!("{}: {e}", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_as_buildkit() {
        assert_eq!(url_file_name("http://h/a/b/file.tar.gz"), "file.tar.gz");
        assert_eq!(url_file_name("https://h:8080/dir/?x=1"), "dir");
        assert_eq!(
            url_file_name("https://h/my%20file.txt?a=b#frag"),
            "my file.txt"
        );
        assert_eq!(url_file_name("http://h"), "__unnamed__");
        assert_eq!(url_file_name("http://h/"), "__unnamed__");
        assert_eq!(url_file_name("http://h/a/.."), "download");
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(784111777));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
    }

    #[test]
    fn checksums() {
        let h = "a".repeat(64);
        assert_eq!(
            Checksum::parse(&format!("sha256:{h}")).unwrap().to_string(),
            format!("sha256:{h}")
        );
        assert!(Checksum::parse("sha256:abc").is_err());
        assert!(Checksum::parse(&format!("md5:{h}")).is_err());
        assert!(Checksum::parse(&h).is_err());
        assert!(Checksum::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
    }

    #[test]
    fn remote_or_local() {
        assert!(is_http("https://example.com/file"));
        assert!(!is_http("https://example.com/repo.git#main"));
        assert!(is_remote("https://example.com/repo.git#main"));
        assert!(is_remote("git@github.com:moby/buildkit.git"));
        assert!(is_remote("git://127.0.0.1:9418/repo#v1:sub"));
        assert!(!is_remote("./local.txt"));
        assert!(!is_remote("dir/file"));
        assert!(!is_remote("ftp://host/file"));
        assert!(check_checksum(&["a".into()], Some("sha256:x")).is_err());
        assert!(check_checksum(
            &["http://h/a".into(), "http://h/b".into()],
            Some("sha256:x")
        )
        .is_err());
        assert!(check_checksum(&["a".into()], None).is_ok());
    }
}
