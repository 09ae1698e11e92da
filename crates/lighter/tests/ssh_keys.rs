//! `--ssh ID=KEYFILE[,KEYFILE]`: the in-process SSH agent checked against the real OpenSSH tools
//! (`ssh-add` lists its keys, `ssh-keygen -Y sign` signs through it and `-Y verify` accepts the
//! signature), builds that forward it beside agent sockets, and the key material never reaching the
//! store, the cache key or the history. Skips (with the reason printed) where ssh-keygen is absent.

mod common;

use common::*;
use lighter_engine::ssh_agent::{SshAgent, SshKey};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether ssh-keygen and ssh-add are installed (Debian `openssh-client`, scripts/setup-peers.sh).
fn openssh() -> bool {
    let found = |t: &str| Command::new(t).arg("-?").output().is_ok();
    let ok = found("ssh-keygen") && found("ssh-add");
    if !ok {
        missing_peer(&format!("ssh-keygen/ssh-add not found (apt-get install openssh-client, or scripts/setup-peers.sh)"));
    }
    ok
}

fn run_ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `ssh-keygen -t TYPE -N PASS` into `dir/name` (and `name.pub`).
fn keygen(dir: &Path, name: &str, args: &[&str], pass: &str) -> PathBuf {
    let p = dir.join(name);
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-C", &format!("{name}@lighter"), "-N", pass])
            .args(args)
            .arg("-f")
            .arg(&p),
    );
    p
}

fn pub_of(key: &Path) -> PathBuf {
    key.with_extension("pub")
}

/// `SHA256:...` of a key, by ssh-keygen.
fn fingerprint(key: &Path) -> String {
    let out = run_ok(Command::new("ssh-keygen").arg("-lf").arg(pub_of(key)));
    out.split_whitespace().nth(1).unwrap().to_string()
}

/// The fingerprints in `ssh-add -l` output.
fn listed(out: &str) -> BTreeSet<String> {
    out.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(str::to_string)
        .collect()
}

fn ssh_add(sock: &Path, args: &[&str]) -> std::process::Output {
    Command::new("ssh-add")
        .env("SSH_AUTH_SOCK", sock)
        .env_remove("SSH_AGENT_PID")
        .args(args)
        .output()
        .unwrap()
}

/// `ssh-keygen -Y verify` of `data` and its `sig` by `key`'s public half; true when good.
fn verifies(key: &Path, data: &[u8], sig: &Path, work: &Path) -> bool {
    let public = std::fs::read_to_string(pub_of(key)).unwrap();
    let allowed = work.join("allowed_signers");
    std::fs::write(&allowed, format!("signer@lighter {public}")).unwrap();
    let msg = work.join("verify-me");
    std::fs::write(&msg, data).unwrap();
    Command::new("ssh-keygen")
        .args(["-Y", "verify", "-I", "signer@lighter", "-n", "file", "-f"])
        .arg(&allowed)
        .arg("-s")
        .arg(sig)
        .stdin(std::fs::File::open(&msg).unwrap())
        .output()
        .unwrap()
        .status
        .success()
}

/// The in-process agent, driven by OpenSSH's own client tools.
#[test]
fn agent_serves_key_files_to_the_openssh_tools() {
    if !openssh() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        keygen(dir.path(), "ed", &["-t", "ed25519"], ""),
        keygen(dir.path(), "rsa", &["-t", "rsa", "-b", "2048"], ""),
        keygen(dir.path(), "ec", &["-t", "ecdsa", "-b", "256"], ""),
        // The PEM formats older ssh-keygen wrote (PKCS#1 RSA, SEC1 EC) and PKCS#8.
        keygen(
            dir.path(),
            "rsa-pem",
            &["-t", "rsa", "-b", "2048", "-m", "PEM"],
            "",
        ),
        keygen(
            dir.path(),
            "ec-pem",
            &["-t", "ecdsa", "-b", "384", "-m", "PEM"],
            "",
        ),
        keygen(
            dir.path(),
            "ec-pkcs8",
            &["-t", "ecdsa", "-b", "256", "-m", "PKCS8"],
            "",
        ),
    ];
    let want: BTreeSet<String> = keys.iter().map(|k| fingerprint(k)).collect();
    let loaded: Vec<SshKey> = keys.iter().map(|k| SshKey::load(k).unwrap()).collect();
    assert_eq!(
        loaded
            .iter()
            .map(SshKey::fingerprint)
            .collect::<BTreeSet<_>>(),
        want,
        "ssh-key and ssh-keygen agree"
    );
    let agent = SshAgent::start(loaded, &std::env::temp_dir()).unwrap();
    let sock = agent.socket().to_path_buf();

    // ssh-add -l lists exactly these keys, -L their public halves as in the .pub files.
    let o = ssh_add(&sock, &["-l"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(listed(&String::from_utf8_lossy(&o.stdout)), want);
    let o = ssh_add(&sock, &["-L"]);
    let publics: BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    let files: BTreeSet<String> = keys
        .iter()
        .map(|k| {
            std::fs::read_to_string(pub_of(k))
                .unwrap()
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(publics, files);

    // A signature made through the agent (the signer only has the .pub: ssh-keygen uses the agent
    // for it) verifies against the key, and does not verify other data.
    let signer = tempfile::tempdir().unwrap();
    for k in &keys {
        let public = signer.path().join("key.pub");
        std::fs::copy(pub_of(k), &public).unwrap();
        let data = signer.path().join("data");
        std::fs::write(&data, format!("signed by {}\n", k.display())).unwrap();
        let _ = std::fs::remove_file(signer.path().join("data.sig"));
        let o = Command::new("ssh-keygen")
            .env("SSH_AUTH_SOCK", &sock)
            .args(["-Y", "sign", "-n", "file", "-f"])
            .arg(&public)
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "sign with {}: {}",
            k.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let sig = signer.path().join("data.sig");
        let bytes = std::fs::read(&data).unwrap();
        assert!(
            verifies(k, &bytes, &sig, signer.path()),
            "the signature by {} verifies",
            k.display()
        );
        assert!(
            !verifies(k, b"other data\n", &sig, signer.path()),
            "and only for its data"
        );
    }

    // Read-only: adding and removing keys fail and change nothing.
    let extra = keygen(dir.path(), "extra", &["-t", "ed25519"], "");
    assert!(
        !ssh_add(&sock, &[extra.to_str().unwrap()]).status.success(),
        "add is refused"
    );
    assert!(
        !ssh_add(&sock, &["-D"]).status.success(),
        "remove-all is refused"
    );
    assert_eq!(
        listed(&String::from_utf8_lossy(&ssh_add(&sock, &["-l"]).stdout)),
        want
    );

    // Dropping the agent closes the socket and removes its directory.
    let sock_dir = sock.parent().unwrap().to_path_buf();
    drop(agent);
    assert!(!sock_dir.exists());
    assert!(!ssh_add(&sock, &["-l"]).status.success());
}

/// A host ssh-agent, ended (by its pid) when dropped.
struct HostAgent {
    child: std::process::Child,
    sock: PathBuf,
}

impl HostAgent {
    fn start(dir: &Path) -> HostAgent {
        let sock = dir.join("host-agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if sock.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        HostAgent { child, sock }
    }
}

impl Drop for HostAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies `tools` and the libraries they load (per ldd) into `dest`, so a busybox RUN can start them
/// as `/t/ld.so --library-path /t /t/TOOL`.
fn copy_tools(dest: &Path, tools: &[&str]) {
    std::fs::create_dir_all(dest).unwrap();
    for tool in tools {
        let path = String::from_utf8(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let path = Path::new(path.trim());
        std::fs::copy(path, dest.join(tool)).unwrap();
        for line in run_ok(Command::new("ldd").arg(path)).lines() {
            let lib = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next().unwrap_or(""),
                None => line.split_whitespace().next().unwrap_or(""),
            };
            if lib.starts_with('/') {
                let name = if lib.contains("ld-linux") {
                    "ld.so".to_string()
                } else {
                    Path::new(lib)
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                };
                std::fs::copy(lib, dest.join(name)).unwrap();
            }
        }
    }
}

/// Every regular file under `p`, once per inode (busybox's hundreds of hard links are one file).
fn walk(p: &Path, seen: &mut BTreeSet<(u64, u64)>, out: &mut Vec<PathBuf>) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if md.is_dir() {
                walk(&path, seen, out);
            } else if md.is_file() && seen.insert((md.dev(), md.ino())) {
                out.push(path);
            }
        }
    }
}

/// Whether any of `needles` occurs in `h` (one pass, needles bucketed by first byte: the test binary
/// is unoptimized and the store holds megabytes).
fn contains_any(h: &[u8], needles: &[Vec<u8>]) -> bool {
    let mut by_first: Vec<Vec<&[u8]>> = vec![Vec::new(); 256];
    for n in needles.iter().filter(|n| !n.is_empty()) {
        by_first[n[0] as usize].push(n);
    }
    (0..h.len()).any(|i| {
        by_first[h[i] as usize]
            .iter()
            .any(|n| h[i..].starts_with(n))
    })
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    if b.starts_with(&[0x1f, 0x8b]) {
        let _ = flate2::read::MultiGzDecoder::new(b).read_to_end(&mut out);
    }
    out
}

/// What must not appear anywhere: the key file's text, each of its base64 lines, and the private
/// numbers themselves (the ed25519 seed; RSA's d, p and q).
fn secrets_of(key: &Path) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(key).unwrap();
    let mut out: Vec<Vec<u8>> = vec![text.as_bytes().to_vec()];
    out.extend(
        text.lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 40)
            .map(|l| l.as_bytes().to_vec()),
    );
    let parsed = ssh_key::PrivateKey::from_openssh(&text).unwrap();
    if let Some(ed) = parsed.key_data().ed25519() {
        out.push(ed.private.to_bytes().to_vec());
    }
    if let Some(rsa) = parsed.key_data().rsa() {
        for m in [&rsa.private.d, &rsa.private.p, &rsa.private.q] {
            out.push(m.as_positive_bytes().unwrap().to_vec());
        }
    }
    out
}

/// `--ssh default` (a host ssh-agent), `--ssh ID=SOCKET` and `--ssh ID=KEY,KEY` in one build: each
/// RUN sees the agent it asked for (ssh-add run inside the sandbox lists the right keys; a signature
/// made inside through the forwarded agent verifies on the host); the agent's directory is gone after
/// the build; a rebuild with other keys is cached (the cache key names the id, never the keys); no
/// store file nor the history holds any private key material.
#[test]
fn build_forwards_key_files_beside_agent_sockets() {
    if !openssh() {
        return;
    }
    let Some(env) = with_busybox() else { return };
    let keydir = tempfile::tempdir().unwrap();
    let k1 = keygen(keydir.path(), "k1", &["-t", "ed25519"], "");
    let k2 = keygen(keydir.path(), "k2", &["-t", "rsa", "-b", "2048"], "");
    let k3 = keygen(keydir.path(), "k3", &["-t", "ed25519"], "");
    let host = HostAgent::start(keydir.path());
    assert!(
        ssh_add(&host.sock, &[k3.to_str().unwrap()])
            .status
            .success(),
        "ssh-add to the host agent"
    );

    let ctx = tempfile::tempdir().unwrap();
    copy_tools(&ctx.path().join("t"), &["ssh-add", "ssh-keygen"]);
    std::fs::copy(pub_of(&k1), ctx.path().join("t/k1.pub")).unwrap();
    let tool = |t: &str| format!("/t/ld.so --library-path /t /t/{t}");
    let dockerfile = format!(
        "FROM busybox\n\
         RUN --mount=type=ssh,id=keys test -S \"$SSH_AUTH_SOCK\" && echo ok > /ok\n\
         RUN --mount=type=bind,source=t,target=/t --mount=type=ssh,id=keys {add} -l > /keys.txt\n\
         RUN --mount=type=bind,source=t,target=/t --mount=type=ssh {add} -l > /default.txt\n\
         RUN --mount=type=bind,source=t,target=/t --mount=type=ssh,id=sock {add} -l > /sock.txt\n\
         RUN --mount=type=bind,source=t,target=/t --mount=type=ssh,id=keys echo signed inside > /data && {keygen} -Y sign -n file -f /t/k1.pub /data\n",
        add = tool("ssh-add"),
        keygen = tool("ssh-keygen"),
    );
    write(ctx.path(), &[("Dockerfile", &dockerfile)]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let build = |keys: &str, out: &Path| {
        env.cmd()
            .env("SSH_AUTH_SOCK", &host.sock)
            .env("TMPDIR", tmp.path())
            .args([
                "build",
                "--progress",
                "plain",
                "-t",
                "sshk:1",
                "--ssh",
                "default",
                "--ssh",
            ])
            .arg(format!("sock={}", host.sock.display()))
            .arg("--ssh")
            .arg(format!("keys={keys}"))
            .arg("-o")
            .arg(format!("type=local,dest={}", out.display()))
            .args(["-o", "type=image"])
            .arg(ctx.path())
            .output()
            .unwrap()
    };
    let o = build(&format!("{},{}", k1.display(), k2.display()), out.path());
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let read = |p: &str| std::fs::read_to_string(out.path().join(p)).unwrap();
    assert_eq!(read("ok"), "ok\n");
    assert_eq!(
        listed(&read("keys.txt")),
        BTreeSet::from([fingerprint(&k1), fingerprint(&k2)]),
        "the key files"
    );
    assert_eq!(
        listed(&read("default.txt")),
        BTreeSet::from([fingerprint(&k3)]),
        "SSH_AUTH_SOCK's agent"
    );
    assert_eq!(
        listed(&read("sock.txt")),
        BTreeSet::from([fingerprint(&k3)]),
        "the agent socket by path"
    );
    assert!(
        verifies(
            &k1,
            read("data").as_bytes(),
            &out.path().join("data.sig"),
            keydir.path()
        ),
        "signed inside the build"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the agent's directory is removed when the build ends"
    );

    // Other keys, same ids: every RUN is cached, as the cache key names only the id and target.
    let out2 = tempfile::tempdir().unwrap();
    let o = build(&k2.display().to_string(), out2.path());
    let err2 = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err2}");
    let runs: Vec<&str> = err2
        .lines()
        .filter(|l| l.contains(" RUN "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(runs.len(), 5, "{err2}");
    for id in runs {
        assert!(
            err2.lines().any(|l| l == format!("{id} CACHED")),
            "{id} is cached: {err2}"
        );
    }

    // No private key material in any file of the store (raw or gunzipped) or in the history.
    let mut secrets = secrets_of(&k1);
    secrets.extend(secrets_of(&k2));
    let mut files = Vec::new();
    walk(env.root.path(), &mut BTreeSet::new(), &mut files);
    let mut hits = Vec::new();
    let mut layer_seen = false;
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        let plain = gunzip(&bytes);
        if contains_any(&bytes, &secrets) || contains_any(&plain, &secrets) {
            hits.push(f.clone());
        }
        layer_seen |= contains_any(&plain, &[b"signed inside\n".to_vec()]);
    }
    assert!(
        layer_seen,
        "the grep reads the layers (it finds what the last RUN wrote)"
    );
    assert!(hits.is_empty(), "private key material in {hits:?}");
    let o = env.lighter(&["history", "--no-trunc", "sshk:1"]);
    let history = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && history.contains("ssh-add"),
        "{history}"
    );
    assert!(!contains_any(history.as_bytes(), &secrets) && !history.contains("PRIVATE KEY"));
    assert!(
        !contains_any(err.as_bytes(), &secrets) && !contains_any(err2.as_bytes(), &secrets),
        "nor in the logs"
    );
}

/// Key paths that cannot be served are refused before the build, naming the path and what was
/// expected; an encrypted key says to use ssh-agent instead (as buildx does without a terminal).
#[test]
fn bad_key_paths_are_clear_errors() {
    if !openssh() {
        return;
    }
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    let good = keygen(dir.path(), "good", &["-t", "ed25519"], "");
    let locked = keygen(
        dir.path(),
        "locked",
        &["-t", "ed25519"],
        "correct horse battery",
    );
    let locked_rsa = keygen(
        dir.path(),
        "locked_rsa",
        &["-t", "rsa", "-b", "2048"],
        "correct horse battery",
    );
    let locked_pem = keygen(
        dir.path(),
        "locked_pem",
        &["-t", "rsa", "-b", "2048", "-m", "PEM"],
        "correct horse battery",
    );
    write(
        dir.path(),
        &[
            ("Dockerfile", "FROM busybox\nRUN --mount=type=ssh true\n"),
            ("notes.txt", "hello\n"),
        ],
    );
    let sock = dir.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let d = |p: &Path| p.display().to_string();
    let cases: Vec<(String, String)> = vec![
        (
            format!("default={}", d(&locked)),
            format!("--ssh default={}: the key is encrypted; add it to ssh-agent and pass --ssh default instead", d(&locked)),
        ),
        (
            format!("git={},{}", d(&good), d(&locked_rsa)),
            format!("--ssh git={}: the key is encrypted; add it to ssh-agent and pass --ssh git instead", d(&locked_rsa)),
        ),
        (
            format!("default={}", d(&locked_pem)),
            format!("--ssh default={}: the key is encrypted; add it to ssh-agent and pass --ssh default instead", d(&locked_pem)),
        ),
        (
            format!("default={}", d(&dir.path().join("notes.txt"))),
            format!("--ssh default={}: not an SSH agent socket nor an SSH private key file", d(&dir.path().join("notes.txt"))),
        ),
        (
            format!("default={}", d(&pub_of(&good))),
            format!("--ssh default={}: not an SSH agent socket nor an SSH private key file", d(&pub_of(&good))),
        ),
        (
            format!("default={}", d(&dir.path().join("missing"))),
            format!("--ssh default={}: No such file or directory (os error 2) (expected an SSH agent socket or an SSH private key file)", d(&dir.path().join("missing"))),
        ),
        (
            format!("default={},{}", d(&good), d(&sock)),
            format!("--ssh default={}: an agent socket cannot be mixed with key files", d(&sock)),
        ),
        ("=x".to_string(), "--ssh =x: expected default, ID=SOCKET or ID=KEYFILE[,KEYFILE...]".to_string()),
    ];
    for (spec, want) in cases {
        let (ok, err, _) = env.build(dir.path(), &["--ssh", &spec]);
        assert!(
            !ok && err.contains(&want),
            "--ssh {spec}: want {want:?} in {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let (ok, err, _) = env.build(
        dir.path(),
        &[
            "--ssh",
            &format!("a={}", d(&good)),
            "--ssh",
            &format!("a={}", d(&sock)),
        ],
    );
    assert!(!ok && err.contains("the id \"a\" is given twice"), "{err}");
    let o = env
        .cmd()
        .env_remove("SSH_AUTH_SOCK")
        .args(["build", "--ssh", "default"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("SSH_AUTH_SOCK is not set"),
        "{err}"
    );
}
