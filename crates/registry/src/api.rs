//! The distribution API of one repository: manifests (get, head, put), blobs (get, head, upload,
//! cross-repository mount). Pull-side calls try the registry's mirrors first and the registry
//! itself last; errors name the registry, the repository and the reference.

use crate::auth::{pull_scope, push_scope};
use crate::hosts::Endpoint;
use crate::transport::{join_url, Body, Client, Request, Response};
use crate::{ErrorKind, RegistryError, Result};
use lighter_oci::{media, Digest, Reference};
use std::io::Read;

/// The chunk of a chunked upload, when the registry's minimum is smaller.
const CHUNK: u64 = 8 << 20;

/// Manifests larger than this are refused (Docker Hub's limit is 4 MiB).
pub const MAX_MANIFEST: u64 = 4 << 20;

/// The media types a pull accepts.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// A manifest or index as the registry sent it, with its verified digest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

impl Manifest {
    pub fn is_index(&self) -> bool {
        self.media_type == media::OCI_INDEX || self.media_type == media::DOCKER_MANIFEST_LIST
    }
}

/// One repository on one registry.
pub struct Registry<'a> {
    pub client: &'a Client,
    pub domain: String,
    pub repo: String,
    endpoints: Vec<Endpoint>,
    push: bool,
}

impl<'a> Registry<'a> {
    /// The repository of `r`, for pulling (mirrors first) or pushing (the registry only).
    pub fn new(client: &'a Client, r: &Reference, push: bool) -> Registry<'a> {
        Registry {
            client,
            domain: r.domain.clone(),
            repo: r.path.clone(),
            endpoints: client.hosts.endpoints(&r.domain, !push),
            push,
        }
    }

    fn scope(&self) -> String {
        if self.push {
            push_scope(&self.repo)
        } else {
            pull_scope(&self.repo)
        }
    }

    /// `name:tag` or `name@digest` for messages.
    pub fn what(&self, reference: &str) -> String {
        let sep = if reference.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        format!("{}/{}{sep}{reference}", self.domain, self.repo)
    }

    /// A slot for one blob transfer to this registry (see [`crate::limit`]); held until dropped.
    pub fn transfer_slot(&self) -> crate::limit::Slot {
        self.client.transfers.acquire(&self.domain)
    }

    /// Sends `req` to the first endpoint that answers it (a mirror that fails or lacks it is
    /// skipped); the registry's own answer is final.
    fn send(&self, req: &Request) -> Result<(Response, &Endpoint)> {
        let mut last_err = None;
        for (i, ep) in self.endpoints.iter().enumerate() {
            let is_last = i + 1 == self.endpoints.len();
            // A mirror gets its own credentials, never the mirrored registry's.
            let creds = if ep.mirror { &ep.host } else { &self.domain };
            match self.client.send(ep, creds, req) {
                Ok(r) if is_last || (r.status < 400) => return Ok((r, ep)),
                Ok(_) => {}
                Err(e) if is_last => return Err(e),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| RegistryError::new(ErrorKind::Config, "no endpoint")))
    }

    fn status_error(&self, what: &str, r: &mut Response) -> RegistryError {
        let detail = read_error_body(r);
        let (kind, text) = match r.status {
            401 | 403 => (
                ErrorKind::Auth,
                format!(
                    "{}: access denied (HTTP {}){detail}: run `lighter login {}` if the repository needs credentials",
                    what, r.status, self.domain
                ),
            ),
            404 => (ErrorKind::NotFound, format!("not found: {what}{detail}")),
            429 => {
                let limits: Vec<String> = ["ratelimit-limit", "ratelimit-remaining", "retry-after"]
                    .iter()
                    .filter_map(|h| r.header(h).map(|v| format!("{h}: {v}")))
                    .collect();
                (
                    ErrorKind::Network,
                    format!("{what}: rate limited by the registry (HTTP 429; {}){detail}", limits.join(", ")),
                )
            }
            s => (ErrorKind::Protocol, format!("{what}: HTTP {s}{detail}")),
        };
        RegistryError::new(kind, text)
    }

    /// The manifest or index `reference` (a tag or a digest), verified against its digest.
    pub fn get_manifest(&self, reference: &str) -> Result<Manifest> {
        let what = self.what(reference);
        let req = Request::new(
            "GET",
            format!("/v2/{}/manifests/{reference}", self.repo),
            self.scope(),
        )
        .header("accept", ACCEPT);
        let (mut r, _) = self.send(&req)?;
        if r.status != 200 {
            return Err(self.status_error(&what, &mut r));
        }
        if let Some(len) = r
            .header("content-length")
            .and_then(|l| l.parse::<u64>().ok())
        {
            if len > MAX_MANIFEST {
                return Err(RegistryError::new(
                    ErrorKind::Protocol,
                    format!(
                        "{what}: manifest of {len} bytes refused (the limit is {MAX_MANIFEST})"
                    ),
                ));
            }
        }
        let header_digest = r.header("docker-content-digest").map(str::to_string);
        let media_type = r
            .header("content-type")
            .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
            .unwrap_or_default();
        let bytes = r
            .body
            .with_config()
            .limit(MAX_MANIFEST)
            .read_to_vec()
            .map_err(|e| {
                RegistryError::new(
                    ErrorKind::Protocol,
                    format!("{what}: reading the manifest: {e}"),
                )
            })?;
        let digest = Digest::sha256(&bytes);
        // A digest reference must match what came; a tag's Docker-Content-Digest too (when sent).
        let want = if reference.starts_with("sha256:") {
            Some(reference.to_string())
        } else {
            header_digest
        };
        if let Some(w) = want.filter(|w| w.starts_with("sha256:")) {
            if w != digest.as_str() {
                return Err(RegistryError::new(
                    ErrorKind::Digest,
                    format!("{what}: the manifest's content is {digest}, not {w}"),
                ));
            }
        }
        // The media type is the manifest's own when the header is missing or generic.
        let media_type = if media_type.is_empty() || media_type == "application/json" {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.get("mediaType")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| media::OCI_MANIFEST.to_string())
        } else {
            media_type
        };
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// The digest `reference` points at now (a HEAD), `None` when the registry has no such tag.
    pub fn head_manifest(&self, reference: &str) -> Result<Option<Digest>> {
        let req = Request::new(
            "HEAD",
            format!("/v2/{}/manifests/{reference}", self.repo),
            self.scope(),
        )
        .header("accept", ACCEPT);
        let (mut r, _) = self.send(&req)?;
        match r.status {
            200 => Ok(r
                .header("docker-content-digest")
                .and_then(|d| d.parse().ok())),
            404 => Ok(None),
            _ => Err(self.status_error(&self.what(reference), &mut r)),
        }
    }

    /// Puts a manifest under `reference` (a tag, or its digest). Returns the digest the registry
    /// reports (or the content's).
    pub fn put_manifest(&self, reference: &str, bytes: &[u8], media_type: &str) -> Result<Digest> {
        let req = Request::new(
            "PUT",
            format!("/v2/{}/manifests/{reference}", self.repo),
            self.scope(),
        )
        .header("content-type", media_type)
        .body(Body::Bytes(bytes.to_vec()));
        let (mut r, _) = self.send(&req)?;
        if !(200..300).contains(&r.status) {
            return Err(self.status_error(&self.what(reference), &mut r));
        }
        Ok(Digest::sha256(bytes))
    }

    /// A blob's content as a stream (the caller verifies it against `digest`).
    pub fn get_blob(&self, digest: &Digest) -> Result<impl Read + Send + 'static> {
        let req = Request::new(
            "GET",
            format!("/v2/{}/blobs/{digest}", self.repo),
            self.scope(),
        );
        let slot = self.transfer_slot();
        let (mut r, _) = self.send(&req)?;
        if r.status != 200 {
            return Err(self.status_error(&format!("{} blob {digest}", self.what("")), &mut r));
        }
        Ok(crate::limit::Held {
            inner: r.body.into_reader(),
            _slot: slot,
        })
    }

    /// A small blob (a config) read whole and verified.
    pub fn get_blob_bytes(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        // A connection broken mid-body is read again, twice at most.
        for attempt in 1..=3 {
            out.clear();
            match self.get_blob(digest)?.take(limit + 1).read_to_end(&mut out) {
                Ok(_) => break,
                Err(e) if attempt == 3 => {
                    let what = format!("{}: blob {digest}: {e}", self.what(""));
                    return Err(RegistryError::new(ErrorKind::Network, what));
                }
                Err(_) => {}
            }
        }
        if out.len() as u64 > limit {
            return Err(RegistryError::new(
                ErrorKind::Protocol,
                format!(
                    "{}: blob {digest} is larger than {limit} bytes",
                    self.what("")
                ),
            ));
        }
        if Digest::sha256(&out) != *digest {
            return Err(RegistryError::new(
                ErrorKind::Digest,
                format!("{}: blob {digest} does not match its digest", self.what("")),
            ));
        }
        Ok(out)
    }

    /// True when the repository has the blob.
    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let req = Request::new(
            "HEAD",
            format!("/v2/{}/blobs/{digest}", self.repo),
            self.scope(),
        );
        let (mut r, _) = self.send(&req)?;
        match r.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error(&format!("{} blob {digest}", self.what("")), &mut r)),
        }
    }

    /// Mounts `digest` from repository `from` of the same registry. False: the registry started an
    /// upload instead (202), which the caller completes with [`Registry::upload_blob`].
    pub fn mount_blob(&self, digest: &Digest, from: &str) -> Result<bool> {
        let mut req = Request::new(
            "POST",
            format!(
                "/v2/{}/blobs/uploads/?mount={digest}&from={}",
                self.repo,
                crate::transport::percent_encode(from)
            ),
            self.scope(),
        );
        req.scopes.insert(pull_scope(from));
        let (mut r, _) = self.send(&req)?;
        match r.status {
            201 => Ok(true),
            202 => Ok(false),
            _ => Err(self.status_error(
                &format!("{} mount of {digest} from {from}", self.what("")),
                &mut r,
            )),
        }
    }

    /// Uploads a blob from a file in one PUT (POST for the session, then PUT with the digest).
    pub fn upload_blob(&self, digest: &Digest, path: &std::path::Path, size: u64) -> Result<()> {
        let what = format!("{} blob {digest}", self.what(""));
        let start = Request::new(
            "POST",
            format!("/v2/{}/blobs/uploads/", self.repo),
            self.scope(),
        );
        let (mut r, _) = self.send(&start)?;
        if r.status != 202 {
            return Err(self.status_error(&what, &mut r));
        }
        let loc = r.header("location").map(str::to_string).ok_or_else(|| {
            RegistryError::new(
                ErrorKind::Protocol,
                format!("{what}: upload started without a Location"),
            )
        })?;
        let mut loc = join_url(&r.url, &loc);
        // A registry that asks for chunks (OCI-Chunk-Min-Length) gets PATCHes of at least that
        // size, then a PUT that only closes the upload; others get the blob in the PUT.
        let chunk_min = r
            .header("oci-chunk-min-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let mut body = Body::File(path.to_path_buf(), size);
        if let Some(min) = chunk_min.filter(|m| *m > 0) {
            let chunk = min.max(CHUNK);
            let mut offset = 0;
            while offset < size {
                let len = chunk.min(size - offset);
                let patch = Request::new("PATCH", loc.clone(), self.scope())
                    .header("content-type", "application/octet-stream")
                    .header("content-range", format!("{offset}-{}", offset + len - 1))
                    .body(Body::FileRange(path.to_path_buf(), offset, len));
                let (mut r, _) = self.send(&patch)?;
                if r.status != 202 {
                    return Err(self.status_error(&what, &mut r));
                }
                if let Some(next) = r.header("location") {
                    loc = join_url(&r.url, next);
                }
                offset += len;
            }
            body = Body::Empty;
        }
        let sep = if loc.contains('?') { '&' } else { '?' };
        let put = Request::new("PUT", format!("{loc}{sep}digest={digest}"), self.scope())
            .header("content-type", "application/octet-stream")
            .body(body);
        let (mut r, _) = self.send(&put)?;
        if r.status != 201 {
            return Err(self.status_error(&what, &mut r));
        }
        Ok(())
    }

    /// `GET /v2/` with this client's credentials: Ok when the registry accepts them.
    pub fn check_login(&self) -> Result<()> {
        let req = Request::new("GET", "/v2/", String::new());
        let mut req = req;
        req.scopes.clear();
        let (mut r, _) = self.send(&req)?;
        match r.status {
            200 => Ok(()),
            _ => Err(self.status_error(&self.domain, &mut r)),
        }
    }
}

/// The registry's error JSON (`{"errors":[{"code","message"}]}`) as ` (CODE: message)`.
fn read_error_body(r: &mut Response) -> String {
    let Ok(text) = r.body.with_config().limit(64 << 10).read_to_string() else {
        return String::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let msgs: Vec<String> = v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["code"].as_str().unwrap_or("?"),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if msgs.is_empty() {
        String::new()
    } else {
        format!(" ({})", msgs.join("; "))
    }
}
