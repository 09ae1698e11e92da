//! The transport: one request to a registry endpoint, with what the distribution protocol needs
//! around it. A 401 authenticates from its challenge (Basic, or a Bearer token for the union of the
//! request's scopes and the challenge's) and replays once; 429 (honouring `Retry-After`), 5xx and
//! connection failures retry with backoff; redirects are followed by hand so that `Authorization`
//! never goes to another host (blob storage redirects); an insecure local registry falls back from
//! TLS to plain HTTP, as docker does. Request bodies are replayable (bytes, or a file reopened).

use crate::auth::{parse_challenge, parse_token, Challenge, TokenCache};
use crate::creds::{CredStore, Credential};
use crate::hosts::{Endpoint, Hosts};
use crate::{ErrorKind, RegistryError, Result};
use base64::Engine as _;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts of one request (the first plus retries).
const ATTEMPTS: u32 = 5;
/// The longest a `Retry-After` is waited for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
const MAX_REDIRECTS: u32 = 5;

/// A request body that can be sent again.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// A file of this length, reopened for each attempt.
    File(PathBuf, u64),
    /// `len` bytes of a file from `offset` (one chunk of a chunked upload).
    FileRange(PathBuf, u64, u64),
}

/// One request: a path under the endpoint (or an absolute URL a registry gave), headers, a body and
/// the token scopes it needs.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    pub scopes: BTreeSet<String>,
}

impl Request {
    pub fn new(method: &'static str, path: impl Into<String>, scope: String) -> Request {
        Request {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Body::Empty,
            scopes: [scope].into_iter().collect(),
        }
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Request {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    pub fn body(mut self, b: Body) -> Request {
        self.body = b;
        self
    }
}

/// A registry's answer.
pub struct Response {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: ureq::Body,
    /// The URL that answered (after redirects).
    pub url: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The registry client: settings, credentials, TLS agents and tokens, shared by every request.
pub struct Client {
    pub(crate) hosts: Hosts,
    creds: CredStore,
    /// A credential to use instead of the stored one (login checks it before storing it).
    given: Option<(String, Credential)>,
    agents: Mutex<HashMap<String, ureq::Agent>>,
    tokens: Mutex<TokenCache>,
    basic: Mutex<HashSet<String>>,
    user_agent: String,
    /// Blob transfers in flight per host.
    pub(crate) transfers: crate::limit::Limiter,
}

impl Client {
    pub fn new(hosts: Hosts, creds: CredStore) -> Client {
        Client {
            hosts,
            creds,
            given: None,
            agents: Default::default(),
            tokens: Default::default(),
            basic: Default::default(),
            user_agent: concat!("lighter/", env!("CARGO_PKG_VERSION")).to_string(),
            transfers: Default::default(),
        }
    }

    /// This client with `cred` for `domain` instead of what is stored (login).
    pub fn with_credential(mut self, domain: &str, cred: Credential) -> Client {
        self.given = Some((domain.to_string(), cred));
        self
    }

    pub fn hosts(&self) -> &Hosts {
        &self.hosts
    }

    pub fn creds(&self) -> &CredStore {
        &self.creds
    }

    fn credential(&self, domain: &str) -> Result<Option<Credential>> {
        match &self.given {
            Some((d, c)) if d == domain => Ok(Some(c.clone())),
            _ => self.creds.get(domain),
        }
    }

    /// Sends `req` to `ep` (credentials are those of `domain`, the reference's registry).
    pub fn send(&self, ep: &Endpoint, domain: &str, req: &Request) -> Result<Response> {
        let mut url = if req.path.starts_with("http://") || req.path.starts_with("https://") {
            req.path.clone()
        } else {
            format!("{}{}", ep.base(), req.path)
        };
        let mut method = req.method;
        let (mut attempt, mut redirects) = (1, 0);
        let mut reauthed = false;
        // The TLS error that made an insecure local registry fall back to plain HTTP.
        let mut tls_error: Option<String> = None;
        loop {
            let same_host = host_of(&url) == ep.host;
            let auth = if same_host {
                self.auth_header(&ep.host, domain, &req.scopes)?
            } else {
                None
            };
            // A host the registry redirected to has its own settings (TLS roots, verification).
            let here = if same_host {
                ep.clone()
            } else {
                self.hosts.endpoint(host_of(&url))
            };
            let sent = self.run(&here, method, &url, &req.headers, auth, &req.body);
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    // Only the local registry itself falls back to plain HTTP, never a host it
                    // redirected to.
                    if same_host
                        && ep.http_fallback
                        && tls_error.is_none()
                        && url.starts_with("https://")
                    {
                        url = url.replacen("https://", "http://", 1);
                        tls_error = Some(e);
                        continue;
                    }
                    // A name that does not resolve will not resolve on a retry either.
                    let unresolvable = e.contains("lookup address") || e.contains("host not found");
                    if attempt >= ATTEMPTS || unresolvable {
                        return Err(RegistryError::new(
                            ErrorKind::Network,
                            format!("{method} {url}: {e} (after {attempt} attempts)"),
                        ));
                    }
                    std::thread::sleep(backoff(attempt));
                    attempt += 1;
                    continue;
                }
            };
            match resp.status {
                // A TLS server answering the plain-HTTP fallback: the TLS error is the one to show.
                400 if tls_error.is_some() => {
                    return Err(RegistryError::new(
                        ErrorKind::Network,
                        format!(
                            "{method} {}: TLS failed ({}), and plain HTTP was refused",
                            url.replacen("http://", "https://", 1),
                            tls_error.unwrap_or_default()
                        ),
                    ))
                }
                401 if same_host && !reauthed => {
                    let challenge = resp.header("www-authenticate").unwrap_or("").to_string();
                    self.authenticate(ep, domain, &challenge, &req.scopes)?;
                    reauthed = true;
                }
                429 | 500 | 502 | 503 | 504 if attempt < ATTEMPTS => {
                    let wait = retry_after(&resp).unwrap_or_else(|| backoff(attempt));
                    std::thread::sleep(wait.min(MAX_RETRY_AFTER));
                    attempt += 1;
                }
                301 | 302 | 303 | 307 | 308 => {
                    redirects += 1;
                    let loc = resp.header("location").unwrap_or("").to_string();
                    if loc.is_empty() || redirects > MAX_REDIRECTS {
                        return Err(RegistryError::new(
                            ErrorKind::Protocol,
                            format!("{method} {url}: too many or empty redirects"),
                        ));
                    }
                    let next = join_url(&url, &loc);
                    // No redirect from TLS to plain HTTP, unless that host is a plain-HTTP one.
                    if url.starts_with("https://") && next.starts_with("http://") {
                        let target = self.hosts.endpoint(host_of(&next));
                        if !(target.http || target.http_fallback) {
                            return Err(RegistryError::new(
                                ErrorKind::Protocol,
                                format!("{method} {url}: refusing a redirect from TLS to plain HTTP ({next})"),
                            ));
                        }
                    }
                    url = next;
                    if resp.status == 303 {
                        method = "GET";
                    }
                }
                _ => return Ok(resp),
            }
        }
    }

    fn run(
        &self,
        ep: &Endpoint,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        auth: Option<String>,
        body: &Body,
    ) -> std::result::Result<Response, String> {
        let agent = self.agent(ep).map_err(|e| e.message)?;
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("user-agent", &self.user_agent);
        for (k, v) in headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        let result = match body {
            Body::Empty => agent.run(b.body(()).map_err(|e| e.to_string())?),
            Body::Bytes(v) => agent.run(b.body(v.clone()).map_err(|e| e.to_string())?),
            Body::File(p, len) => {
                let f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
                let b = b.header("content-length", len.to_string());
                agent.run(b.body(f).map_err(|e| e.to_string())?)
            }
            Body::FileRange(p, offset, len) => {
                use std::io::{Read, Seek};
                let mut f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
                f.seek(std::io::SeekFrom::Start(*offset))
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                let b = b.header("content-length", len.to_string());
                let body = ureq::SendBody::from_owned_reader(f.take(*len));
                agent.run(b.body(body).map_err(|e| e.to_string())?)
            }
        };
        let resp = result.map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        Ok(Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            url: url.to_string(),
        })
    }

    /// The `Authorization` value for a request to `host` needing `scopes`, if one is known.
    fn auth_header(
        &self,
        host: &str,
        domain: &str,
        scopes: &BTreeSet<String>,
    ) -> Result<Option<String>> {
        if let Some(t) = lock(&self.tokens).get(host, scopes, Instant::now()) {
            return Ok(Some(format!("Bearer {t}")));
        }
        if lock(&self.basic).contains(host) {
            if let Some(Credential::Basic { username, password }) = self.credential(domain)? {
                return Ok(Some(basic(&username, &password)));
            }
        }
        Ok(None)
    }

    /// Answers a 401's challenge: remembers Basic, or fetches a token for the scopes.
    fn authenticate(
        &self,
        ep: &Endpoint,
        domain: &str,
        challenge: &str,
        scopes: &BTreeSet<String>,
    ) -> Result<()> {
        let cred = self.credential(domain)?;
        let denied = |why: &str| {
            RegistryError::new(
                ErrorKind::Auth,
                format!(
                    "{domain}: {why}{}",
                    if cred.is_some() {
                        " (check the credentials: `lighter login` stores new ones)"
                    } else {
                        " (run `lighter login` for this registry)"
                    }
                ),
            )
        };
        match parse_challenge(challenge) {
            Some(Challenge::Basic) => {
                if !matches!(cred, Some(Credential::Basic { .. })) {
                    return Err(denied("authentication required"));
                }
                lock(&self.basic).insert(ep.host.clone());
                lock(&self.tokens).drop_host(&ep.host);
                Ok(())
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let mut all = scopes.clone();
                all.extend(
                    scope
                        .into_iter()
                        .flat_map(|s| s.split(' ').map(str::to_string).collect::<Vec<_>>()),
                );
                let token =
                    self.fetch_token(ep, &realm, service.as_deref(), &all, cred.as_ref())?;
                let Some(token) = token else {
                    return Err(denied("the token server refused the credentials"));
                };
                lock(&self.tokens).put(&ep.host, all, token);
                Ok(())
            }
            None => Err(denied("authentication required")),
        }
    }

    /// A token from `realm`: GET with Basic credentials (or anonymous), or the OAuth2 POST with a
    /// refresh (identity) token. `Ok(None)`: refused.
    fn fetch_token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scopes: &BTreeSet<String>,
        cred: Option<&Credential>,
    ) -> Result<Option<crate::auth::Token>> {
        let enc = |s: &str| percent_encode(s);
        let mut q = Vec::new();
        if let Some(s) = service {
            q.push(format!("service={}", enc(s)));
        }
        let (method, url, headers, body) = match cred {
            Some(Credential::IdentityToken(t)) => {
                let mut form = q.clone();
                form.push("grant_type=refresh_token".into());
                form.push(format!("refresh_token={}", enc(t)));
                form.push("client_id=lighter".into());
                let joined: Vec<&str> = scopes.iter().map(String::as_str).collect();
                form.push(format!("scope={}", enc(&joined.join(" "))));
                let h = vec![(
                    "content-type".to_string(),
                    "application/x-www-form-urlencoded".to_string(),
                )];
                (
                    "POST",
                    realm.to_string(),
                    h,
                    Body::Bytes(form.join("&").into_bytes()),
                )
            }
            other => {
                q.extend(scopes.iter().map(|s| format!("scope={}", enc(s))));
                let mut h = Vec::new();
                if let Some(Credential::Basic { username, password }) = other {
                    q.push(format!("account={}", enc(username)));
                    h.push(("authorization".to_string(), basic(username, password)));
                }
                let sep = if realm.contains('?') { '&' } else { '?' };
                (
                    "GET",
                    format!("{realm}{sep}{}", q.join("&")),
                    h,
                    Body::Empty,
                )
            }
        };
        // The realm's own settings: a local registry's relaxed TLS does not extend to it.
        let realm_ep = self.hosts.endpoint(host_of(&url));
        if url.starts_with("http://") && !(ep.http || realm_ep.http || realm_ep.http_fallback) {
            return Err(RegistryError::new(
                ErrorKind::Auth,
                format!(
                    "{}: refusing to send credentials to the plain-HTTP token realm {realm}",
                    ep.host
                ),
            ));
        }
        let mut attempt = 1;
        let mut resp = loop {
            match self.run(&realm_ep, method, &url, &headers, None, &body) {
                Ok(r) if matches!(r.status, 429 | 500 | 502 | 503 | 504) && attempt < ATTEMPTS => {}
                Ok(r) => break r,
                Err(e) if attempt >= ATTEMPTS => {
                    return Err(RegistryError::new(
                        ErrorKind::Network,
                        format!("token server {realm}: {e}"),
                    ))
                }
                Err(_) => {}
            }
            std::thread::sleep(backoff(attempt));
            attempt += 1;
        };
        if matches!(resp.status, 401 | 403) {
            return Ok(None);
        }
        let body = resp
            .body
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| {
                RegistryError::new(ErrorKind::Network, format!("token server {realm}: {e}"))
            })?;
        if resp.status != 200 {
            return Err(RegistryError::new(
                ErrorKind::Auth,
                format!("token server {realm} answered {}", resp.status),
            ));
        }
        parse_token(&body, Instant::now()).map(Some).ok_or_else(|| {
            RegistryError::new(
                ErrorKind::Protocol,
                format!("token server {realm}: the answer has no token"),
            )
        })
    }

    fn agent(&self, ep: &Endpoint) -> Result<ureq::Agent> {
        let key = format!("{}|{:?}", ep.insecure, ep.ca);
        let mut agents = lock(&self.agents);
        if let Some(a) = agents.get(&key) {
            return Ok(a.clone());
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if ep.insecure {
            tls = tls.disable_verification(true);
        }
        if ep.ca.is_empty() {
            tls = tls.root_certs(ureq::tls::RootCerts::PlatformVerifier);
        } else {
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(
                self.roots_with(&ep.ca)?,
            )));
        }
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_connect(Some(Duration::from_secs(30)))
                .timeout_recv_response(Some(Duration::from_secs(120)))
                .timeout_recv_body(Some(Duration::from_secs(3600)))
                .tls_config(tls.build())
                .build(),
        );
        agents.insert(key, agent.clone());
        Ok(agent)
    }

    /// The system roots plus `ca` files (PEM).
    fn roots_with(&self, ca: &[PathBuf]) -> Result<Vec<ureq::tls::Certificate<'static>>> {
        let mut out = Vec::new();
        let system = self
            .hosts
            .system_roots
            .clone()
            .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
        let files = std::iter::once((system, false)).chain(ca.iter().map(|p| (p.clone(), true)));
        for (p, required) in files {
            let pem = match std::fs::read(&p) {
                Ok(b) => b,
                Err(_) if !required => continue,
                Err(e) => {
                    return Err(RegistryError::new(
                        ErrorKind::Config,
                        format!("CA file {}: {e}", p.display()),
                    ))
                }
            };
            for item in ureq::tls::parse_pem(&pem) {
                if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * (1 << attempt.min(5)))
}

/// `Retry-After` in seconds (the HTTP-date form is treated as one second).
fn retry_after(r: &Response) -> Option<Duration> {
    let v = r.header("retry-after")?;
    Some(Duration::from_secs(v.trim().parse().unwrap_or(1)))
}

/// The `host[:port]` of an absolute URL.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// `loc` (absolute, or a path) resolved against `base`.
pub fn join_url(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.to_string();
    }
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let origin_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    if loc.starts_with('/') {
        format!("{}{loc}", &base[..origin_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|i| *i >= origin_end)
            .unwrap_or(origin_end);
        format!("{}/{loc}", &base[..dir_end])
    }
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(host_of("https://r.example:5000/v2/x"), "r.example:5000");
        assert_eq!(
            join_url(
                "http://a:1/v2/x/blobs/uploads/",
                "/v2/x/blobs/uploads/u?s=1"
            ),
            "http://a:1/v2/x/blobs/uploads/u?s=1"
        );
        assert_eq!(join_url("http://a:1/v2/x", "https://b/y"), "https://b/y");
        assert_eq!(
            percent_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
