//! Per-host settings: lighter's `registries.toml`, in the shape of BuildKit's `buildkitd.toml`
//! `[registry."host"]` tables (`mirrors`, `http`, `insecure`, `ca`), plus docker's `certs.d/HOST/`
//! CA files, and docker's rule that `localhost` and `127.0.0.0/8` are insecure registries (TLS
//! without verification, then plain HTTP) with no configuration. Unknown keys are errors.
//!
//! ```toml
//! [registry."docker.io"]
//! mirrors = ["mirror.example.com:5000"]
//!
//! [registry."mirror.example.com:5000"]
//! http = true            # plain HTTP
//!
//! [registry."registry.internal"]
//! ca = ["/etc/ssl/internal-ca.pem"]
//! insecure = true        # TLS without certificate verification
//! ```

use crate::{ErrorKind, RegistryError, Result, Settings};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One `[registry."host"]` table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Pull-through mirrors tried in order before the host itself (pulls only).
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Plain HTTP.
    #[serde(default)]
    pub http: bool,
    /// TLS without certificate verification.
    #[serde(default)]
    pub insecure: bool,
    /// CA certificates (PEM files) trusted for this host, besides the system's.
    #[serde(default)]
    pub ca: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    registry: BTreeMap<String, HostConfig>,
}

/// How to reach one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` as the API is reached (`registry-1.docker.io` for `docker.io`).
    pub host: String,
    /// Plain HTTP only.
    pub http: bool,
    /// TLS without verification; with `http_fallback`, plain HTTP when TLS fails (docker's
    /// insecure-registry behaviour).
    pub insecure: bool,
    pub http_fallback: bool,
    /// Extra CA files.
    pub ca: Vec<PathBuf>,
    /// A mirror of another registry (pulls only).
    pub mirror: bool,
}

impl Endpoint {
    /// `scheme://host` for this endpoint's first attempt.
    pub fn base(&self) -> String {
        format!(
            "{}://{}",
            if self.http { "http" } else { "https" },
            self.host
        )
    }
}

/// The settings of every host.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    hosts: BTreeMap<String, HostConfig>,
    certs_dirs: Vec<PathBuf>,
    pub(crate) system_roots: Option<PathBuf>,
}

impl Hosts {
    /// Reads `settings.config_file` (absent is empty; unreadable or malformed is an error).
    pub fn load(settings: &Settings) -> Result<Hosts> {
        let mut hosts = BTreeMap::new();
        if let Some(p) = &settings.config_file {
            match std::fs::read_to_string(p) {
                Ok(text) => hosts = parse(&text, p)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(RegistryError::new(
                        ErrorKind::Config,
                        format!("{}: {e}", p.display()),
                    ))
                }
            }
        }
        Ok(Hosts {
            hosts,
            certs_dirs: settings.certs_dirs.clone(),
            system_roots: settings.system_roots.clone(),
        })
    }

    /// Settings given directly (tests, `Hosts::load` after parsing).
    pub fn from_map(hosts: BTreeMap<String, HostConfig>) -> Hosts {
        Hosts {
            hosts,
            ..Default::default()
        }
    }

    /// The endpoints to try for `domain` (a reference's registry): its mirrors first when pulling,
    /// then the registry itself.
    pub fn endpoints(&self, domain: &str, pull: bool) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if pull {
            if let Some(c) = self.hosts.get(domain) {
                for m in &c.mirrors {
                    let (http_given, host) = match m.split_once("://") {
                        Some((scheme, rest)) => (Some(scheme == "http"), rest),
                        None => (None, m.as_str()),
                    };
                    let mut ep = self.endpoint(host.trim_end_matches('/'));
                    if let Some(h) = http_given {
                        ep.http = h;
                    }
                    ep.mirror = true;
                    out.push(ep);
                }
            }
        }
        out.push(self.endpoint(domain));
        out
    }

    /// The settings of one host (a registry, or a host a registry redirects to or names as its
    /// token realm): its own table, or the defaults.
    pub(crate) fn endpoint(&self, domain: &str) -> Endpoint {
        let c = self.hosts.get(domain).cloned().unwrap_or_default();
        let host = if domain == "docker.io" || domain == "index.docker.io" {
            "registry-1.docker.io".to_string()
        } else {
            domain.to_string()
        };
        let local = is_local(&host);
        let mut ca = c.ca.clone();
        for d in &self.certs_dirs {
            let dir = d.join(domain);
            if let Ok(rd) = std::fs::read_dir(&dir) {
                let mut files: Vec<PathBuf> = rd
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                    .collect();
                files.sort();
                ca.extend(files);
            }
        }
        Endpoint {
            host,
            http: c.http,
            insecure: c.insecure || (local && !c.http && c.ca.is_empty()),
            http_fallback: local && !c.http,
            ca,
            mirror: false,
        }
    }
}

fn parse(text: &str, path: &Path) -> Result<BTreeMap<String, HostConfig>> {
    let f: FileFormat = toml::from_str(text)
        .map_err(|e| RegistryError::new(ErrorKind::Config, format!("{}: {e}", path.display())))?;
    Ok(f.registry)
}

/// `localhost`, `127.0.0.0/8` and `::1`, with or without a port: docker treats them as insecure
/// registries without configuration.
pub fn is_local(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.octets()[0] == 127)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_plain_http_and_local_hosts() {
        let text =
            "[registry.\"docker.io\"]\nmirrors = [\"127.0.0.1:5001\", \"http://m.example:80\"]\n\
                    [registry.\"m.example:80\"]\nca = [\"/x/ca.pem\"]\n";
        let hosts = Hosts::from_map(parse(text, Path::new("r.toml")).unwrap());
        let eps = hosts.endpoints("docker.io", true);
        assert_eq!(eps.len(), 3);
        assert_eq!(eps[0].host, "127.0.0.1:5001");
        assert!(eps[0].mirror && eps[0].insecure && eps[0].http_fallback);
        assert!(eps[1].http && eps[1].ca == vec![PathBuf::from("/x/ca.pem")]);
        assert_eq!(eps[2].host, "registry-1.docker.io");
        assert!(!eps[2].insecure && !eps[2].http && !eps[2].mirror);
        assert_eq!(
            hosts.endpoints("docker.io", false).len(),
            1,
            "push: no mirrors"
        );
        for h in ["localhost:5000", "127.0.0.1", "127.1.2.3:443", "[::1]:5000"] {
            assert!(is_local(h), "{h}");
        }
        for h in ["example.com", "10.0.0.1:5000", "128.0.0.1"] {
            assert!(!is_local(h), "{h}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = parse("[registry.\"a\"]\nmirror = [\"x\"]\n", Path::new("r.toml")).unwrap_err();
        assert!(
            e.message.contains("r.toml") && e.message.contains("mirror"),
            "{e}"
        );
        assert!(parse("[registri.\"a\"]\n", Path::new("r.toml")).is_err());
    }
}
