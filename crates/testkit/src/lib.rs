//! lighter-testkit: what the end-to-end tests share. A temp store and the `lighter` binary
//! ([`Env`]), the base-image tarballs `scripts/make-bases.sh` makes ([`bases`], [`with_busybox`]),
//! peers (a Docker engine, a loopback `docker-registry` with TLS and htpasswd), tar and tree
//! helpers, an HTTP server and a git daemon ([`http`], [`git`]), and strict mode: with `LIGHTER_TEST_STRICT=1` (CI) a missing peer fails the test
//! instead of skipping it ([`missing_peer`]).

pub mod git;
pub mod http;
pub mod random;

pub use git::{git, git_available, start_git_daemon, GitDaemon};
pub use http::{HttpRequest, HttpResponse, HttpServer};
pub use random::{random_file, random_rootfs_tar, Rng};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Env {
    pub root: tempfile::TempDir,
}

/// The `lighter` binary of this build: `LIGHTER_BIN`, else `lighter` beside the test's own
/// executable's directory (cargo puts integration tests in `target/<profile>/deps`).
pub fn bin() -> PathBuf {
    if let Some(b) = std::env::var_os("LIGHTER_BIN") {
        return PathBuf::from(b);
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    profile.join("lighter")
}

/// The directory holding `busybox.tar` and `bookworm.tar` (`scripts/make-bases.sh`), or None with the
/// reason printed.
pub fn bases() -> Option<PathBuf> {
    let dir = std::env::var_os("LIGHTER_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/lighter-test"));
    if dir.join("busybox.tar").is_file() {
        Some(dir)
    } else {
        missing_peer(&format!(
            "no base images at {} (run scripts/make-bases.sh)",
            dir.display()
        ));
        None
    }
}

pub fn is_root() -> bool {
    let ok = std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0"))
            .unwrap_or(false);
    if !ok {
        missing_peer("needs root (namespaces, overlay mounts)");
    }
    ok
}

/// A fresh store with busybox:latest imported, or None (reason printed).
pub fn with_busybox() -> Option<Env> {
    if !is_root() {
        return None;
    }
    let bases = bases()?;
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let o = env.lighter(&[
        "import",
        bases.join("busybox.tar").to_str().unwrap(),
        "busybox:latest",
    ]);
    assert!(
        o.status.success(),
        "import: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(env)
}

impl Env {
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("LIGHTER_ROOT", self.root.path());
        c
    }

    pub fn lighter(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run lighter")
    }

    /// Builds `dir` and returns (success, stderr).
    pub fn build(&self, dir: &Path, extra: &[&str]) -> (bool, String, String) {
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(extra);
        let d = dir.to_str().unwrap().to_string();
        args.push(&d);
        let o = self.lighter(&args);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    }
}

impl Env {
    /// Builds `dir` with `-o type=local` into a fresh directory: (success, stderr, that directory).
    pub fn build_local(&self, dir: &Path, extra: &[&str]) -> (bool, String, tempfile::TempDir) {
        let out = tempfile::tempdir().unwrap();
        let dest = format!("type=local,dest={}", out.path().display());
        let mut args = extra.to_vec();
        args.extend(["-o", dest.as_str()]);
        let (ok, err, _) = self.build(dir, &args);
        (ok, err, out)
    }
}

pub fn write(dir: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
}

/// `/usr/bin/docker` when a daemon answers, else None with the reason printed.
pub fn docker() -> Option<&'static str> {
    let d = "/usr/bin/docker";
    match Command::new(d).arg("info").output() {
        Ok(o) if o.status.success() => Some(d),
        _ => {
            missing_peer(&format!(
                "no Docker engine answers at {d} (scripts/setup-peers.sh starts one)"
            ));
            None
        }
    }
}

/// A flattened file tree: path -> (type, mode, uid, gid, content sha256 or link target).
pub fn tree(root: &Path) -> std::collections::BTreeMap<String, String> {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    fn walk(root: &Path, rel: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for e in rd.flatten() {
            let r = rel.join(e.file_name());
            let p = root.join(&r);
            let md = std::fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let what = if ft.is_symlink() {
                format!("link:{}", std::fs::read_link(&p).unwrap().display())
            } else if ft.is_dir() {
                "dir".to_string()
            } else if !ft.is_file() {
                // FIFOs and devices: reading a FIFO would block.
                use std::os::unix::fs::FileTypeExt;
                format!(
                    "{}:{}",
                    if ft.is_fifo() {
                        "fifo"
                    } else if ft.is_char_device() {
                        "char"
                    } else if ft.is_block_device() {
                        "block"
                    } else {
                        "socket"
                    },
                    md.rdev()
                )
            } else {
                format!(
                    "file:{}",
                    hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap_or_default()))
                )
            };
            let mode = if ft.is_symlink() {
                0
            } else {
                md.mode() & 0o7777
            };
            out.insert(
                r.display().to_string(),
                format!("{what} {mode:o} {}:{}", md.uid(), md.gid()),
            );
            if ft.is_dir() {
                walk(root, &r, out);
            }
        }
    }
    walk(root, Path::new(""), &mut out);
    out
}

/// A test needs a peer this machine lacks: a failure under `LIGHTER_TEST_STRICT=1` (CI, where
/// `.ci/run` installs every peer), else a skip with the reason printed.
pub fn missing_peer(reason: &str) {
    if std::env::var("LIGHTER_TEST_STRICT").is_ok_and(|v| v == "1") {
        panic!("a peer is missing in strict mode: {reason}");
    }
    eprintln!("SKIP: {reason}");
}

/// A peer installed from PyPI by `scripts/setup-peers.sh` (`dive`, `hadolint`): its path in
/// `$LIGHTER_TEST_CACHE/venv/bin`, or `None` after [`missing_peer`] (which fails in strict mode).
pub fn pypi_peer(name: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("LIGHTER_TEST_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/lighter-test"));
    let p = cache.join("venv/bin").join(name);
    if p.is_file() {
        return Some(p);
    }
    missing_peer(&format!(
        "{} (run scripts/setup-peers.sh: it installs {name} from PyPI)",
        p.display()
    ));
    None
}

/// A layer tar of files (`Some(size)`, filled with `x`) and directories (`None`).
pub fn layer_tar(entries: &[(&str, Option<usize>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, size) in entries {
        let mut h = tar::Header::new_gnu();
        match size {
            Some(n) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(*n as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, path, &vec![b'x'; *n][..]).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                b.append_data(&mut h, path, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A `docker save` archive (legacy layout) of `layers` named `name`: its config has `env` and a
/// history entry `step i` per layer.
pub fn docker_archive(name: &str, env: &[&str], layers: &[Vec<u8>]) -> Vec<u8> {
    use sha2::Digest;
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", hex::encode(sha2::Sha256::digest(l))))
        .collect();
    let history: Vec<serde_json::Value> = (0..layers.len())
        .map(|i| serde_json::json!({ "created_by": format!("step {i}") }))
        .collect();
    let config = serde_json::json!({ "architecture": "amd64", "os": "linux", "config": { "Env": env },
        "rootfs": { "type": "layers", "diff_ids": diff_ids }, "history": history });
    let cfg = serde_json::to_vec(&config).unwrap();
    let cfg_name = format!("{}.json", hex::encode(sha2::Sha256::digest(&cfg)));
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>, p: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, p, data).unwrap();
    };
    add(&mut b, &cfg_name, &cfg);
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let p = format!("l{i}/layer.tar");
        add(&mut b, &p, l);
        paths.push(p);
    }
    let manifest = serde_json::json!([{ "Config": cfg_name, "RepoTags": [name], "Layers": paths }]);
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.into_inner().unwrap()
}

/// dive's or lighter's numbers for an image: (efficiency, wasted bytes, file references as
/// (path, count, size), sorted).
pub type DiveNumbers = (f64, u64, Vec<(String, u64, u64)>);

fn references(
    v: &serde_json::Value,
    path: &str,
    size: &str,
    slash: bool,
) -> Vec<(String, u64, u64)> {
    let mut r: Vec<(String, u64, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let p = x[path].as_str().unwrap();
            (
                if slash {
                    format!("/{p}")
                } else {
                    p.to_string()
                },
                x["count"].as_u64().unwrap(),
                x[size].as_u64().unwrap(),
            )
        })
        .collect();
    r.sort();
    r
}

/// Runs the real `dive` (at most `secs` seconds) and `lighter analyze` on the docker-archive
/// `archive` and asserts they agree on efficiency, wasted bytes and file references (`what` names
/// the image in failures); returns the numbers.
pub fn assert_dive_agrees(
    env: &Env,
    dive: &Path,
    archive: &Path,
    work: &Path,
    secs: u32,
    what: &str,
) -> DiveNumbers {
    let json = work.join("dive.json");
    let o = Command::new("timeout")
        .arg(secs.to_string())
        .arg(dive)
        .args(["--source", "docker-archive"])
        .arg(archive)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "dive {what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let o = env.lighter(&["analyze", archive.to_str().unwrap(), "--json", "-"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let l: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let dive_n: DiveNumbers = (
        d["image"]["efficiencyScore"].as_f64().unwrap(),
        d["image"]["inefficientBytes"].as_u64().unwrap(),
        references(&d["image"]["fileReference"], "file", "sizeBytes", false),
    );
    let ours: DiveNumbers = (
        l["efficiency"].as_f64().unwrap(),
        l["wasted_bytes"].as_u64().unwrap(),
        references(&l["references"], "path", "size", true),
    );
    assert!(
        (dive_n.0 - ours.0).abs() < 1e-12,
        "{what}: efficiency dive {} lighter {}",
        dive_n.0,
        ours.0
    );
    assert_eq!(dive_n.1, ours.1, "{what}: wasted bytes");
    assert_eq!(dive_n.2, ours.2, "{what}: file references");
    ours
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's `docker-registry` (distribution) on 127.0.0.1, killed on drop.
pub struct RegistryServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: std::process::Child,
}

/// TLS and htpasswd settings for [`RegistryServer::start`].
pub struct RegistryAuth {
    /// The CA that signed `cert` (clients trust this one).
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub htpasswd: PathBuf,
}

impl RegistryServer {
    /// Starts a registry (plain HTTP, or TLS with htpasswd), or None when `docker-registry` is missing.
    pub fn start(auth: Option<&RegistryAuth>) -> Option<RegistryServer> {
        Self::start_with(auth, "")
    }

    /// [`RegistryServer::start`] with more top-level configuration (an `auth:` section).
    pub fn start_with(auth: Option<&RegistryAuth>, extra: &str) -> Option<RegistryServer> {
        let bin = "/usr/bin/docker-registry";
        if !Path::new(bin).exists() {
            missing_peer("no /usr/bin/docker-registry (apt-get install docker-registry)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some(a) = auth {
            cfg.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: lighter-test\n    path: {}\n",
                a.cert.display(),
                a.key.display(),
                a.htpasswd.display()
            ));
        }
        cfg.push_str(extra);
        std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(bin)
            .args(["serve", dir.path().join("config.yml").to_str().unwrap()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let s = RegistryServer { dir, port, child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(s);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not listen on 127.0.0.1:{port}: {}",
            std::fs::read_to_string(s.dir.path().join("log")).unwrap_or_default()
        );
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA, a certificate it signed for 127.0.0.1, and an htpasswd file (bcrypt) with
/// `user`/`pass`, made with openssl and apache2-utils' htpasswd; None when either is missing.
pub fn tls_and_htpasswd(dir: &Path, user: &str, pass: &str) -> Option<RegistryAuth> {
    let p = |n: &str| dir.join(n).display().to_string();
    let (ca, cert, key, htpasswd) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("htpasswd"),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let steps: [Vec<String>; 3] = [
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=lighter test CA",
            "-keyout",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([p("ca.key"), "-out".into(), p("ca.pem")])
        .collect(),
        [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([p("key.pem"), "-out".into(), p("srv.csr")])
        .collect(),
        ["x509", "-req", "-days", "2", "-CAcreateserial", "-in"]
            .iter()
            .map(|s| s.to_string())
            .chain([
                p("srv.csr"),
                "-CA".into(),
                p("ca.pem"),
                "-CAkey".into(),
                p("ca.key"),
                "-out".into(),
                p("cert.pem"),
                "-extfile".into(),
                p("ext.cnf"),
            ])
            .collect(),
    ];
    let ok = steps.iter().all(|args| {
        Command::new("openssl")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ok {
        missing_peer("openssl could not make a certificate");
        return None;
    }
    match Command::new("htpasswd").args(["-Bbn", user, pass]).output() {
        Ok(o) if o.status.success() => std::fs::write(&htpasswd, o.stdout).unwrap(),
        _ => {
            missing_peer("no htpasswd (apt-get install apache2-utils)");
            return None;
        }
    }
    Some(RegistryAuth {
        ca,
        cert,
        key,
        htpasswd,
    })
}

/// `tar -cf NAME DIR` in `dir` for each pair (archives for ADD tests).
pub fn tar_dirs(dir: &Path, pairs: &[(&str, &str)]) {
    for (name, sub) in pairs {
        let st = Command::new("tar")
            .args(["-cf", name, sub])
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(st.success(), "tar -cf {name} {sub}");
    }
}
