//! Credentials where docker and podman keep them: docker's `config.json` (`auths` with base64
//! `user:pass` or an `identitytoken`, `credsStore`, `credHelpers` with the `docker-credential-NAME`
//! get/store/erase protocol) and podman's `auth.json` files (the same `auths` shape). Login writes
//! where docker would: the helper configured for the host, else `config.json` (mode 0600, written
//! atomically, every other key kept as it was).

use crate::{ErrorKind, RegistryError, Result};
use base64::Engine as _;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What authenticates a client to one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (docker's `identitytoken`).
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => write!(f, "IdentityToken(<redacted>)"),
        }
    }
}

/// The credential files of this user.
#[derive(Debug, Clone, Default)]
pub struct CredStore {
    docker_config: Option<PathBuf>,
    auth_files: Vec<PathBuf>,
    /// Where `docker-credential-*` helpers are looked up (the binary's PATH by default).
    helper_dir: Option<PathBuf>,
}

/// The key docker uses for a registry in `auths` and with helpers.
fn server_key(domain: &str) -> String {
    if matches!(
        domain,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        "https://index.docker.io/v1/".to_string()
    } else {
        domain.to_string()
    }
}

/// An `auths` key reduced to its host, as docker's `ConvertToHostname`.
fn key_host(k: &str) -> &str {
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    k.split('/').next().unwrap_or(k)
}

fn same_registry(key: &str, domain: &str) -> bool {
    let h = key_host(key);
    let hub = |x: &str| matches!(x, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    h == domain || (hub(h) && hub(domain))
}

impl CredStore {
    pub fn new(docker_config: Option<PathBuf>, auth_files: Vec<PathBuf>) -> CredStore {
        CredStore {
            docker_config,
            auth_files,
            helper_dir: None,
        }
    }

    /// Helpers are run from `dir` instead of the PATH (tests).
    pub fn with_helper_dir(mut self, dir: PathBuf) -> CredStore {
        self.helper_dir = Some(dir);
        self
    }

    /// The credential for `domain`, if any file or helper has one.
    pub fn get(&self, domain: &str) -> Result<Option<Credential>> {
        if let Some(p) = &self.docker_config {
            if let Some(cfg) = read_json(p)? {
                if let Some(helper) = helper_for(&cfg, domain) {
                    return self.helper_get(&helper, domain);
                }
                if let Some(c) = from_auths(&cfg, domain, p)? {
                    return Ok(Some(c));
                }
            }
        }
        for p in &self.auth_files {
            if let Some(cfg) = read_json(p)? {
                if let Some(c) = from_auths(&cfg, domain, p)? {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    /// Stores `cred` for `domain` (after the caller checked it against the registry). Returns where.
    pub fn store(&self, domain: &str, cred: &Credential) -> Result<String> {
        let p = self.config_path()?;
        let mut cfg = read_json(&p)?.unwrap_or_else(|| json!({}));
        if let Some(helper) = helper_for(&cfg, domain) {
            let (user, secret) = match cred {
                Credential::Basic { username, password } => (username.as_str(), password.as_str()),
                Credential::IdentityToken(t) => ("<token>", t.as_str()),
            };
            let input =
                json!({ "ServerURL": server_key(domain), "Username": user, "Secret": secret });
            self.helper(&helper, "store", &input.to_string())?;
            return Ok(format!("credential helper docker-credential-{helper}"));
        }
        let entry = match cred {
            Credential::Basic { username, password } => json!({
                "auth": base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            }),
            Credential::IdentityToken(t) => json!({ "identitytoken": t }),
        };
        if !cfg.get("auths").is_some_and(Value::is_object) {
            cfg["auths"] = json!({});
        }
        if let Some(a) = cfg["auths"].as_object_mut() {
            a.retain(|k, _| !same_registry(k, domain));
            a.insert(server_key(domain), entry);
        }
        write_private(&p, &cfg)?;
        Ok(p.display().to_string())
    }

    /// Removes the credential for `domain`. True when there was one.
    pub fn erase(&self, domain: &str) -> Result<bool> {
        let p = self.config_path()?;
        let Some(mut cfg) = read_json(&p)? else {
            return Ok(false);
        };
        if let Some(helper) = helper_for(&cfg, domain) {
            self.helper(&helper, "erase", &server_key(domain))?;
            return Ok(true);
        }
        let removed = match cfg.get_mut("auths").and_then(Value::as_object_mut) {
            Some(a) => {
                let before = a.len();
                a.retain(|k, _| !same_registry(k, domain));
                before != a.len()
            }
            None => false,
        };
        if removed {
            write_private(&p, &cfg)?;
        }
        Ok(removed)
    }

    fn config_path(&self) -> Result<PathBuf> {
        self.docker_config.clone().ok_or_else(|| {
            RegistryError::new(
                ErrorKind::Config,
                "no docker config file to store credentials in",
            )
        })
    }

    fn helper_get(&self, helper: &str, domain: &str) -> Result<Option<Credential>> {
        let out = match self.helper(helper, "get", &server_key(domain)) {
            Ok(o) => o,
            // The protocol's "not found" is an error message on stdout and a non-zero exit.
            Err(e) if e.message.contains("credentials not found") => return Ok(None),
            Err(e) => return Err(e),
        };
        let v: Value = serde_json::from_str(&out).map_err(|e| {
            RegistryError::new(
                ErrorKind::Config,
                format!("docker-credential-{helper} get: not JSON: {e}"),
            )
        })?;
        let user = v["Username"].as_str().unwrap_or("").to_string();
        let secret = v["Secret"].as_str().unwrap_or("").to_string();
        Ok(Some(if user == "<token>" {
            Credential::IdentityToken(secret)
        } else {
            Credential::Basic {
                username: user,
                password: secret,
            }
        }))
    }

    /// Runs `docker-credential-<helper> <verb>` with `input` on stdin; its stdout.
    fn helper(&self, helper: &str, verb: &str, input: &str) -> Result<String> {
        let name = format!("docker-credential-{helper}");
        let prog = match &self.helper_dir {
            Some(d) => d.join(&name),
            None => PathBuf::from(&name),
        };
        let err = |m: String| RegistryError::new(ErrorKind::Config, format!("{name} {verb}: {m}"));
        let mut child = Command::new(&prog)
            .arg(verb)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(format!("cannot run it: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .map_err(|e| err(e.to_string()))?;
        }
        let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() {
            let msg = if stdout.is_empty() {
                String::from_utf8_lossy(&out.stderr).trim().to_string()
            } else {
                stdout
            };
            return Err(err(msg));
        }
        Ok(stdout)
    }
}

fn read_json(p: &Path) -> Result<Option<Value>> {
    match std::fs::read(p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(None),
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            RegistryError::new(
                ErrorKind::Config,
                format!("{}: not valid JSON: {e}", p.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::new(
            ErrorKind::Config,
            format!("{}: {e}", p.display()),
        )),
    }
}

fn helper_for(cfg: &Value, domain: &str) -> Option<String> {
    if let Some(h) = cfg.get("credHelpers").and_then(Value::as_object) {
        if let Some(name) = h
            .iter()
            .find(|(k, _)| same_registry(k, domain))
            .and_then(|(_, v)| v.as_str())
        {
            return Some(name.to_string());
        }
    }
    cfg.get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn from_auths(cfg: &Value, domain: &str, path: &Path) -> Result<Option<Credential>> {
    let Some(auths) = cfg.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    let Some((_, e)) = auths.iter().find(|(k, _)| same_registry(k, domain)) else {
        return Ok(None);
    };
    if let Some(t) = e
        .get("identitytoken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        return Ok(Some(Credential::IdentityToken(t.to_string())));
    }
    let bad = |m: &str| {
        RegistryError::new(
            ErrorKind::Config,
            format!("{}: the auth entry for {domain} {m}", path.display()),
        )
    };
    let (user, pass) = match e
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        Some(a) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .map_err(|_| bad("is not base64"))?;
            let s = String::from_utf8(raw).map_err(|_| bad("is not UTF-8"))?;
            let (u, p) = s
                .split_once(':')
                .ok_or_else(|| bad("is not user:password"))?;
            (u.to_string(), p.to_string())
        }
        None => match (
            e.get("username").and_then(Value::as_str),
            e.get("password").and_then(Value::as_str),
        ) {
            (Some(u), Some(p)) => (u.to_string(), p.to_string()),
            _ => return Ok(None),
        },
    };
    Ok(Some(Credential::Basic {
        username: user,
        password: pass,
    }))
}

/// Writes `v` to `p` with mode 0600, through a temporary file renamed over it.
fn write_private(p: &Path, v: &Value) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| {
        RegistryError::new(ErrorKind::Io, format!("write {}: {e}", p.display()))
    };
    let dir = p.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        p.file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, p).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_and_podman_files_and_stores_privately() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("config.json");
        std::fs::write(
            &cfg,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"r.example:5000":{"identitytoken":"tok"}},"other":1}"#,
        )
        .unwrap();
        let podman = d.path().join("auth.json");
        std::fs::write(&podman, r#"{"auths":{"p.example":{"auth":"cHU6cHA="}}}"#).unwrap();
        let s = CredStore::new(Some(cfg.clone()), vec![podman]);
        assert_eq!(
            s.get("docker.io").unwrap(),
            Some(Credential::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        assert_eq!(
            s.get("r.example:5000").unwrap(),
            Some(Credential::IdentityToken("tok".into()))
        );
        assert_eq!(
            s.get("p.example").unwrap(),
            Some(Credential::Basic {
                username: "pu".into(),
                password: "pp".into()
            })
        );
        assert_eq!(s.get("none.example").unwrap(), None);
        let c = Credential::Basic {
            username: "a".into(),
            password: "b:c".into(),
        };
        s.store("localhost:5000", &c).unwrap();
        assert_eq!(s.get("localhost:5000").unwrap(), Some(c));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let v: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
        assert_eq!(v["other"], 1, "other keys are kept");
        assert!(s.erase("localhost:5000").unwrap());
        assert_eq!(s.get("localhost:5000").unwrap(), None);
        assert!(!s.erase("localhost:5000").unwrap());
        assert!(format!("{:?}", Credential::IdentityToken("x".into())).contains("redacted"));
    }

    #[test]
    fn credential_helpers_speak_the_protocol() {
        let d = tempfile::tempdir().unwrap();
        let helper = d.path().join("docker-credential-fake");
        let store = d.path().join("stored");
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\ncase \"$1\" in\n get) read s; if [ -f {st} ]; then cat {st}; else echo 'credentials not found in native keychain'; exit 1; fi;;\n \
                 store) cat > {st};;\n erase) rm -f {st};;\nesac\n",
                st = store.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg = d.path().join("config.json");
        std::fs::write(&cfg, r#"{"credHelpers":{"h.example":"fake"}}"#).unwrap();
        let s = CredStore::new(Some(cfg), vec![]).with_helper_dir(d.path().to_path_buf());
        assert_eq!(s.get("h.example").unwrap(), None);
        let c = Credential::Basic {
            username: "u".into(),
            password: "s".into(),
        };
        assert!(s
            .store("h.example", &c)
            .unwrap()
            .contains("docker-credential-fake"));
        assert_eq!(s.get("h.example").unwrap(), Some(c));
        assert!(s.erase("h.example").unwrap());
        assert_eq!(s.get("h.example").unwrap(), None);
    }
}
