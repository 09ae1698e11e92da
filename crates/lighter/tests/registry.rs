//! Registries with real servers: Debian's `docker-registry` (distribution) on 127.0.0.1, plain HTTP
//! and TLS with htpasswd; Docker and skopeo as peers both ways. Each test keeps its credentials and
//! settings in files of its own (`DOCKER_CONFIG`, `LIGHTER_REGISTRY_CONFIG`, `HOME`).

mod common;

use common::*;
use std::process::{Command, Output, Stdio};

/// A store with busybox plus private config directories.
struct Client {
    env: Env,
    home: tempfile::TempDir,
}

impl Client {
    fn new() -> Option<Client> {
        let c = Client {
            env: with_busybox()?,
            home: tempfile::tempdir().unwrap(),
        };
        c.settings("");
        Some(c)
    }

    fn fresh(&self) -> Client {
        let c = Client {
            env: Env {
                root: tempfile::tempdir().unwrap(),
            },
            home: tempfile::tempdir().unwrap(),
        };
        c.settings("");
        c
    }

    fn cmd(&self) -> Command {
        let mut c = self.env.cmd();
        c.env("HOME", self.home.path())
            .env("DOCKER_CONFIG", self.home.path().join(".docker"))
            .env(
                "LIGHTER_REGISTRY_CONFIG",
                self.home.path().join("registries.toml"),
            )
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let o = self.run(args);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert!(o.status.success(), "lighter {args:?}: {err}");
        (out, err)
    }

    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(!o.status.success(), "lighter {args:?} should fail");
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// `lighter login -u USER --password-stdin HOST` with `password` on stdin.
    fn login(&self, host: &str, user: &str, password: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd()
            .args(["login", "-u", user, "--password-stdin", host])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    }

    fn settings(&self, toml: &str) {
        std::fs::write(self.home.path().join("registries.toml"), toml).unwrap();
    }

    fn build(&self, dockerfile: &str, extra: &[&str]) -> (bool, String) {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(extra);
        let c = ctx.path().display().to_string();
        args.push(&c);
        let o = self.run(&args);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

fn peer(name: &str) -> bool {
    let ok = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        missing_peer(&format!(
            "{name} is not installed (scripts/setup-peers.sh installs it)"
        ));
    }
    ok
}

fn sh(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn push_pull_and_build_from_a_registry_with_docker_and_skopeo() {
    let Some(c) = Client::new() else { return };
    let Some(reg) = RegistryServer::start(None) else {
        return;
    };
    let host = reg.host();
    let name = format!("{host}/team/busybox:1");
    c.ok(&["tag", "busybox:latest", &name]);
    let (out, err) = c.ok(&["push", &name]);
    assert!(err.contains("Pushed"), "{err}");
    let digest = out
        .split("digest: ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    // A second push finds every blob there.
    let (_, err) = c.ok(&["push", &name]);
    assert!(
        err.contains("Layer already exists") && !err.contains("Pushed"),
        "{err}"
    );

    // skopeo reads what lighter pushed, with the same digest.
    if peer("skopeo") {
        let v: serde_json::Value = serde_json::from_str(&sh(Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ])))
        .unwrap();
        assert_eq!(v["Digest"], digest.as_str());
    }
    // Docker pulls and runs it.
    if let Some(d) = docker() {
        sh(Command::new(d).args(["pull", "-q", &name]));
        let said =
            sh(Command::new(d).args(["run", "--rm", "--network", "host", &name, "echo", "hi"]));
        assert_eq!(said, "hi\n");
        // And what docker pushes, lighter pulls.
        let theirs = format!("{host}/docker/pushed:2");
        sh(Command::new(d).args(["tag", &name, &theirs]));
        sh(Command::new(d).args(["push", "-q", &theirs]));
        let other = c.fresh();
        let (out, _) = other.ok(&["pull", &theirs]);
        assert!(out.contains(&theirs), "{out}");
        let _ = Command::new(d).args(["rmi", "-f", &name, &theirs]).output();
    }

    // A fresh store pulls it: same layers, RepoDigest recorded, the tag set.
    let fresh = c.fresh();
    let (out, err) = fresh.ok(&["pull", &name]);
    assert!(
        out.trim() == name && err.contains("Pull complete") && err.contains(&digest),
        "{out}{err}"
    );
    let inspect: serde_json::Value =
        serde_json::from_slice(&fresh.run(&["inspect", &name]).stdout).unwrap();
    let orig: serde_json::Value =
        serde_json::from_slice(&c.run(&["inspect", "busybox:latest"]).stdout).unwrap();
    assert_eq!(inspect[0]["RootFS"], orig[0]["RootFS"]);
    assert_eq!(inspect[0]["Id"], orig[0]["Id"]);
    // Unpacked while downloading: every layer's directory is complete and holds files.
    for l in inspect[0]["RootFS"]["Layers"].as_array().unwrap() {
        let hex = l.as_str().unwrap().trim_start_matches("sha256:");
        let dir = fresh.env.root.path().join("layers").join(hex);
        assert!(
            dir.join(".complete").exists(),
            "{} not unpacked",
            dir.display()
        );
        assert!(std::fs::read_dir(dir.join("fs")).unwrap().next().is_some());
    }
    let (images, _) = fresh.ok(&["images", "--digests"]);
    assert!(images.contains(&digest), "{images}");
    // By digest too; a second pull downloads nothing.
    let (_, err) = fresh.ok(&["pull", &format!("{host}/team/busybox@{digest}")]);
    assert!(
        err.contains("Already exists") && err.contains("pulled 0.0 MB"),
        "{err}"
    );

    // FROM pulls what the store lacks; --pull with an unchanged tag downloads nothing.
    let builder = c.fresh();
    let df = format!("FROM {name}\nRUN echo built > /b\n");
    let (ok, err) = builder.build(&df, &["-t", "built:1"]);
    assert!(ok, "{err}");
    let (ok, err) = builder.build(&df, &["--pull", "-t", "built:1"]);
    assert!(ok && err.contains("CACHED"), "{err}");
    // --push sends the result; it pulls back into another store.
    let pushed = format!("{host}/team/built:1");
    let (ok, err) = builder.build(&df, &["--push", "-t", &pushed]);
    assert!(ok, "{err}");
    let (out, _) = c.fresh().ok(&["pull", &pushed]);
    assert!(out.contains(&pushed));

    // On a terminal (a pseudo-terminal from util-linux's `script`), docker's live view: a line per
    // layer redrawn in place, ending in "Pull complete"; off a terminal, no escape codes.
    let tty = c.fresh();
    let lighter = env!("CARGO_BIN_EXE_lighter");
    let env = tty.cmd();
    let mut script = Command::new("timeout");
    script.args([
        "120",
        "script",
        "-qec",
        &format!("{lighter} pull {name}"),
        "/dev/null",
    ]);
    for (k, v) in env.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let o = script.output().unwrap();
    let screen = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{screen}");
    assert!(
        screen.contains("\x1b[") && screen.contains("Pull complete"),
        "{screen}"
    );
    assert!(!err.contains('\x1b'), "{err}");

    // Unknown tags and repositories say so, naming them; nothing is tagged.
    let err = fresh.fails(&["pull", &format!("{host}/team/busybox:nope")]);
    assert!(
        err.contains(&format!("not found: {host}/team/busybox:nope")),
        "{err}"
    );
    let err = fresh.fails(&["pull", &format!("{host}/no/such:1")]);
    assert!(
        err.contains("not found") && err.contains("no/such"),
        "{err}"
    );
    let (ok, err) = builder.build(&format!("FROM {host}/no/such:1\n"), &[]);
    assert!(
        !ok && err.contains("not found") && err.contains(":1:1"),
        "{err}"
    );
}

#[test]
fn a_tampered_blob_is_refused_and_nothing_is_tagged() {
    let Some(c) = Client::new() else { return };
    let Some(reg) = RegistryServer::start(None) else {
        return;
    };
    let name = format!("{}/t/busybox:1", reg.host());
    c.ok(&["tag", "busybox:latest", &name]);
    c.ok(&["push", &name]);
    // Change one byte of the layer blob in the registry's own storage.
    let inspect: serde_json::Value =
        serde_json::from_slice(&c.run(&["inspect", &name]).stdout).unwrap();
    let layer = lighter_store::Store::open(c.env.root.path()).unwrap();
    let img = lighter_image::resolve(&layer, &name).unwrap();
    let d = img.record.layers[0].digest.hex().to_string();
    let data = reg
        .dir
        .path()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&d[..2])
        .join(&d)
        .join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let fresh = c.fresh();
    let err = fresh.fails(&["pull", &name]);
    assert!(err.contains("digest") && err.contains(&d[..12]), "{err}");
    let o = fresh.run(&["inspect", &name]);
    assert!(!o.status.success(), "nothing is tagged after a failed pull");
    assert!(inspect[0]["Id"].is_string());
}

#[test]
fn tls_with_htpasswd_login_logout_and_a_docker_io_mirror() {
    let Some(c) = Client::new() else { return };
    let certs = tempfile::tempdir().unwrap();
    let Some(auth) = tls_and_htpasswd(certs.path(), "tester", "s3cret") else {
        return;
    };
    let Some(reg) = RegistryServer::start(Some(&auth)) else {
        return;
    };
    let host = reg.host();
    c.settings(&format!(
        "[registry.\"{host}\"]\nca = [\"{}\"]\n",
        auth.ca.display()
    ));
    let name = format!("{host}/private/busybox:1");
    c.ok(&["tag", "busybox:latest", &name]);
    // Without credentials: refused, with the way out.
    let err = c.fails(&["push", &name]);
    assert!(
        err.contains(&host) && err.contains("lighter login"),
        "{err}"
    );
    // A wrong password: refused, naming the registry; nothing stored.
    let o = c.login(&host, "tester", "wrong");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains(&host), "{err}");
    let config = c.home.path().join(".docker/config.json");
    assert!(!config.exists(), "a refused login stores nothing");
    let o = c.login(&host, "tester", "s3cret");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Login Succeeded"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains(&host) && !text.contains("s3cret"),
        "base64, not plain: {text}"
    );
    c.ok(&["push", &name]);
    let (out, _) = c.ok(&["pull", &name]);
    assert!(out.contains(&name));
    c.ok(&["logout", &host]);
    let err = c.fails(&["pull", &name]);
    assert!(err.contains("lighter login"), "{err}");

    // A real pull-through cache as the docker.io mirror (distribution's proxy mode, its upstream a
    // plain registry standing in for Docker Hub): `FROM busybox` resolves through it, the mirror
    // keeps what it fetched, and serves it once the upstream is gone.
    let Some(upstream) = RegistryServer::start(None) else {
        return;
    };
    let hub = format!("{}/library/busybox:latest", upstream.host());
    c.ok(&["tag", "busybox:latest", &hub]);
    c.ok(&["push", &hub]);
    let proxy = format!("proxy:\n  remoteurl: http://{}\n", upstream.host());
    let Some(mirror) = RegistryServer::start_with(None, &proxy) else {
        return;
    };
    let b = c.fresh();
    let mirrored = format!(
        "[registry.\"docker.io\"]\nmirrors = [\"{}\"]\n",
        mirror.host()
    );
    b.settings(&mirrored);
    let (ok, err) = b.build("FROM busybox\nRUN echo via-mirror > /m\n", &["-t", "m:1"]);
    assert!(ok, "{err}");
    let (out, _) = b.ok(&["images"]);
    assert!(out.contains("busybox"), "{out}");
    let cached = mirror
        .dir
        .path()
        .join("data/docker/registry/v2/repositories/library/busybox");
    assert!(cached.exists(), "the mirror cached nothing");
    drop(upstream);
    let after = c.fresh();
    after.settings(&mirrored);
    let (out, err) = after.ok(&["pull", "busybox"]);
    assert!(
        out.contains("docker.io/library/busybox:latest"),
        "{out}{err}"
    );
    // A settings file with a key lighter does not know is refused, not ignored.
    b.settings("[registry.\"docker.io\"]\nmirror = [\"x\"]\n");
    let err = b.fails(&["pull", "busybox"]);
    assert!(
        err.contains("registries.toml") && err.contains("mirror"),
        "{err}"
    );
}

/// What skopeo pushes: a two-platform OCI index (lighter picks the platform, `--platform` the
/// other, an absent one is an error listing what the index has) and a zstd layer (pulled, then
/// built FROM, so the layer is unpacked and run on).
#[test]
fn skopeo_pushed_index_and_zstd_layers() {
    let Some(c) = Client::new() else { return };
    if !peer("skopeo") {
        return;
    }
    let Some(reg) = RegistryServer::start(None) else {
        return;
    };
    let host = reg.host();
    let layout = tempfile::tempdir().unwrap();
    let dir = layout.path().join("oci");
    c.ok(&[
        "save",
        "--format",
        "oci-dir",
        "-o",
        dir.to_str().unwrap(),
        "busybox:latest",
    ]);
    // A second platform: the same layers, a config saying linux/arm64/v8.
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let amd = index["manifests"][0].clone();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(amd["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    config["architecture"] = "arm64".into();
    config["variant"] = "v8".into();
    let put = |bytes: Vec<u8>| {
        use sha2::Digest as _;
        let d = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
        std::fs::write(blob(&d), &bytes).unwrap();
        (d, bytes.len())
    };
    let (cd, cl) = put(serde_json::to_vec(&config).unwrap());
    let mut arm_manifest = manifest.clone();
    arm_manifest["config"]["digest"] = cd.into();
    arm_manifest["config"]["size"] = cl.into();
    let (md, ml) = put(serde_json::to_vec(&arm_manifest).unwrap());
    let mut amd_entry = amd.clone();
    amd_entry["platform"] = serde_json::json!({"os": "linux", "architecture": "amd64"});
    let arm_entry = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ml,
        "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}
    });
    let (xd, xl) = put(serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [amd_entry, arm_entry]
    }))
    .unwrap());
    index["manifests"] = serde_json::json!([{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": xd, "size": xl,
        "annotations": {"org.opencontainers.image.ref.name": "multi"}
    }]);
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let multi = format!("{host}/multi/bb:1");
    sh(Command::new("skopeo")
        .args(["copy", "-q", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi", dir.display()))
        .arg(format!("docker://{multi}")));
    let fresh = c.fresh();
    fresh.ok(&["pull", &multi]);
    let arch = |cl: &Client, name: &str| {
        let v: serde_json::Value =
            serde_json::from_slice(&cl.run(&["inspect", name]).stdout).unwrap();
        v[0]["Architecture"].as_str().unwrap_or("").to_string()
    };
    assert_eq!(arch(&fresh, &multi), "amd64");
    let arm = c.fresh();
    arm.ok(&["pull", "--platform", "linux/arm64", &multi]);
    assert_eq!(arch(&arm, &multi), "arm64");
    let err = c
        .fresh()
        .fails(&["pull", "--platform", "linux/s390x", &multi]);
    assert!(
        err.contains("no image for platform linux/s390x")
            && err.contains("linux/amd64, linux/arm64/v8"),
        "{err}"
    );
    // zstd layers, from skopeo (to a registry of their own: skopeo reuses a blob a registry has
    // instead of compressing it again).
    let Some(zreg) = RegistryServer::start(None) else {
        return;
    };
    let zstd = format!("{}/zstd/bb:1", zreg.host());
    sh(Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--dest-tls-verify=false",
            "--dest-compress-format",
            "zstd",
            "--dest-compress",
        ])
        .arg(format!("oci:{}:multi", dir.display()))
        .arg(format!("docker://{zstd}")));
    let raw = sh(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{zstd}")));
    assert!(raw.contains("tar+zstd"), "skopeo pushed zstd layers: {raw}");
    let (ok, err) = c
        .fresh()
        .build(&format!("FROM {zstd}\nRUN echo ok > /z && cat /z\n"), &[]);
    assert!(ok, "{err}");
}
