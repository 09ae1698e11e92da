//! `--cache-to` / `--cache-from` through Debian's `docker-registry` on 127.0.0.1 and through a
//! directory: a second machine (another store, the same commit checked out elsewhere with other
//! mtimes and owners) hits every step, downloads only what the final image needs, and gets the
//! same image.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

const DOCKERFILE: &str = "FROM {BASE} AS build\n\
    WORKDIR /src\n\
    COPY main.txt .\n\
    RUN dd if=/dev/urandom of=/src/toolchain bs=1M count=3 2>/dev/null && cat main.txt > /src/app\n\
    FROM {BASE} AS other\n\
    RUN echo other > /other\n\
    FROM {BASE}\n\
    COPY --from=build /src/app /app\n\
    RUN --mount=type=bind,from=build,source=/src,target=/b cp /b/app /app.copy\n\
    COPY extra.txt /extra.txt\n\
    CMD [\"cat\", \"/app\"]\n";

fn checkout(dir: &Path, base: &str, extra: &str) {
    write(
        dir,
        &[
            ("Dockerfile", &DOCKERFILE.replace("{BASE}", base)),
            ("main.txt", "the app\n"),
            ("extra.txt", extra),
        ],
    );
}

/// Manifests and blobs as the registry holds them (through skopeo, a peer).
fn remote_manifest(r: &str) -> serde_json::Value {
    let o = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{r}"),
        ])
        .output()
        .expect("skopeo");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn image_id(env: &Env, name: &str) -> String {
    let o = env.lighter(&["inspect", name]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v[0]["Id"].as_str().unwrap().to_string()
}

fn has_blob(env: &Env, digest: &str) -> bool {
    env.root
        .path()
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
        .exists()
}

#[test]
fn a_registry_cache_is_shared_between_machines() {
    let Some(a) = with_busybox() else { return };
    let Some(reg) = RegistryServer::start(None) else {
        return;
    };
    if Command::new("skopeo").arg("--version").output().is_err() {
        missing_peer("skopeo is not installed (scripts/setup-peers.sh installs it)");
        return;
    }
    let host = reg.host();
    // The base comes from the registry, as on CI runners: both machines get the same image.
    let base = format!("{host}/base/busybox:1");
    a.lighter(&["tag", "busybox:latest", &base]);
    assert!(a.lighter(&["push", "-q", &base]).status.success());
    let cache = format!("{host}/cache/app:buildcache");
    let clone_a = tempfile::tempdir().unwrap();
    checkout(clone_a.path(), &base, "one\n");
    let to = format!("type=registry,ref={cache},mode=max");
    let (ok, err, _) = a.build(clone_a.path(), &["-t", "app:1", "--cache-to", &to]);
    assert!(ok, "{err}");
    assert!(err.contains("exported"), "{err}");
    let m = remote_manifest(&cache);
    assert_eq!(m["artifactType"], "application/vnd.lighter.buildcache.v1");
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let toolchain = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["size"].as_u64().unwrap() > 2 << 20)
        .expect("the builder's 3 MB layer is in a max cache")["digest"]
        .as_str()
        .unwrap()
        .to_string();

    // Machine B: another store (empty), the same commit in another directory, other mtimes and
    // owners. Every step hits; the builder's layers are never downloaded; the image is the same.
    let b = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let clone_b = tempfile::tempdir().unwrap();
    let nested = clone_b.path().join("elsewhere/checkout");
    std::fs::create_dir_all(&nested).unwrap();
    checkout(&nested, &base, "one\n");
    for f in ["Dockerfile", "main.txt", "extra.txt"] {
        let p = nested.join(f);
        let st = Command::new("touch")
            .args(["-d", "2001-02-03 04:05:06"])
            .arg(&p)
            .status()
            .unwrap();
        assert!(st.success());
        let _ = std::os::unix::fs::chown(&p, Some(1234), Some(5678));
    }
    let from = format!("type=registry,ref={cache}");
    let (ok, err, _) = b.build(&nested, &["-t", "app:1", "--cache-from", &from]);
    assert!(ok, "{err}");
    assert_eq!(err.matches("CACHED").count(), 6, "{err}");
    // Only the final image's own layers come from the cache (the base is pulled as usual); the
    // `from=build` mount of a RUN that hits reads nothing of the builder.
    assert!(
        err.contains("cache: 6 steps from --cache-from, 3 layers fetched"),
        "{err}"
    );
    assert_eq!(image_id(&b, "app:1"), image_id(&a, "app:1"), "{err}");
    assert!(
        !has_blob(&b, &toolchain),
        "a hit downloaded the builder's layer"
    );
    // The image is whole: saved from either store, the archives are the same bytes (the lazily
    // resolved base's layers included, with their real sizes).
    let save = |env: &Env| {
        let f = env.root.path().join("app.tar");
        let o = env.lighter(&["save", "-o", f.to_str().unwrap(), "app:1"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(f).unwrap()
    };
    assert!(save(&b) == save(&a), "the saved images differ");
    let o = b.lighter(&["run", "--rm", "app:1"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "the app\n");

    // Only pushed (`-o type=registry`): every step hits, so the image is assembled from the cache's
    // records and pushed by mounting its blobs from the cache and the base repositories: nothing is
    // downloaded, nothing is kept, and another store pulls and runs it.
    let f = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let pushed = format!("{host}/app/pushed:1");
    let (ok, err, _) = f.build(
        &nested,
        &[
            "-o",
            &format!("type=registry,name={pushed}"),
            "--cache-from",
            &from,
        ],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("cache: 6 steps from --cache-from, 0 layers fetched")
            && err.contains("base images: 0 layers fetched")
            && err.contains("Mounted"),
        "{err}"
    );
    let o = f.lighter(&["images", "-q"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).trim().is_empty(),
        "nothing kept"
    );
    let g = Env {
        root: tempfile::tempdir().unwrap(),
    };
    assert!(g.lighter(&["pull", "-q", &pushed]).status.success());
    let o = g.lighter(&["run", "--rm", &pushed]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "the app\n");
    assert_eq!(image_id(&g, &pushed), image_id(&a, "app:1"));

    // A change in the final stage: its COPY misses and runs on the hit layers (fetched now); the
    // builder's layers still stay where they are.
    std::fs::write(nested.join("extra.txt"), "two\n").unwrap();
    let (ok, err, _) = b.build(&nested, &["-t", "app:2", "--cache-from", &from]);
    assert!(ok, "{err}");
    assert_eq!(err.matches("CACHED").count(), 5, "{err}");
    assert!(!has_blob(&b, &toolchain), "{err}");

    // mode=min keeps the final stage's steps only: the builder runs again from such a cache.
    let min = format!("{host}/cache/app:min");
    let (ok, err, _) = a.build(
        clone_a.path(),
        &["--cache-to", &format!("type=registry,ref={min},mode=min")],
    );
    assert!(ok, "{err}");
    let c = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let (ok, err, _) = c.build(
        clone_a.path(),
        &["--cache-from", &format!("type=registry,ref={min}")],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("RUN dd") && err.matches("CACHED").count() == 3,
        "{err}"
    );

    // Two exports to one ref keep both: the other stage, then the default target.
    let shared = format!("{host}/cache/app:shared");
    let to_shared = format!("type=registry,ref={shared},mode=max");
    for t in [&["--target", "other"][..], &[][..]] {
        let mut args = t.to_vec();
        args.extend(["--cache-to", to_shared.as_str()]);
        let (ok, err, _) = a.build(clone_a.path(), &args);
        assert!(ok, "{err}");
    }
    let d = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let from_shared = format!("type=registry,ref={shared}");
    let (ok, err, _) = d.build(
        clone_a.path(),
        &["--target", "other", "--cache-from", &from_shared],
    );
    assert!(
        ok && err.contains("CACHED") && !err.contains("rebuilt"),
        "{err}"
    );

    // Two exports to one ref at the same time: merge and retry keeps both builds' entries.
    let raced = format!("{host}/cache/app:raced");
    let to_raced = format!("type=registry,ref={raced},mode=max");
    std::thread::scope(|s| {
        for target in ["other", "build"] {
            let (a, dir, to) = (&a, clone_a.path(), to_raced.as_str());
            s.spawn(move || {
                let (ok, err, _) = a.build(dir, &["--target", target, "--cache-to", to]);
                assert!(ok, "{err}");
            });
        }
    });
    let r = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let from_raced = format!("type=registry,ref={raced}");
    for target in ["other", "build"] {
        let (ok, err, _) = r.build(
            clone_a.path(),
            &["--target", target, "--cache-from", &from_raced],
        );
        assert!(
            ok && !err.contains("rebuilt") && err.contains("CACHED"),
            "{target}: {err}"
        );
    }
    // An export never overwrites an image that is not a cache.
    let (ok, err, _) = d.build(
        clone_a.path(),
        &["--cache-to", &format!("type=registry,ref={base}")],
    );
    assert!(!ok && err.contains("not a lighter build cache"), "{err}");

    // An inline cache: the pushed image carries its final stage's records in its config; a build
    // that names the image as --cache-from hits the final stage (the builder, not in a min cache,
    // runs, and its output is the same, so the COPY --from hits too).
    let inline = format!("{host}/app/inline:1");
    let (ok, err, _) = a.build(
        clone_a.path(),
        &["-t", &inline, "--push", "--cache-to", "type=inline"],
    );
    assert!(ok && err.contains("inline cache: 3 steps"), "{err}");
    let e = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let (ok, err, _) = e.build(
        clone_a.path(),
        &["--cache-from", &format!("type=registry,ref={inline}")],
    );
    assert!(
        ok && err.contains("RUN dd") && err.matches("CACHED").count() == 3,
        "{err}"
    );
    assert!(err.contains("cache: 3 steps from --cache-from"), "{err}");

    // A cache that does not exist yet is a note, not a failure; a bad spec is an error.
    let (ok, err, _) = d.build(
        clone_a.path(),
        &[
            "--cache-from",
            &format!("type=registry,ref={host}/cache/none:1"),
        ],
    );
    assert!(
        ok && err.contains("not found, building without it"),
        "{err}"
    );
    let (ok, err, _) = d.build(
        clone_a.path(),
        &["--cache-to", "type=registry,ref=x,mode=all"],
    );
    assert!(!ok && err.contains("mode=all"), "{err}");
    // An image that is not a cache: a note, the build runs without it.
    let (ok, err, _) = d.build(
        clone_a.path(),
        &["--cache-from", &format!("type=registry,ref={base}")],
    );
    assert!(ok && err.contains("not a lighter build cache"), "{err}");
    // A registry that is down during export: the image is built, the export error is reported and
    // the exit code says so, unless ignore-error=true.
    let down = format!("type=registry,ref=127.0.0.1:{}/c/x:1", free_port());
    let (ok, err, _) = d.build(clone_a.path(), &["-t", "exp:1", "--cache-to", &down]);
    assert!(!ok && err.contains("cache 127.0.0.1"), "{err}");
    assert!(
        d.lighter(&["inspect", "exp:1"]).status.success(),
        "the image is there"
    );
    let (ok, err, _) = d.build(
        clone_a.path(),
        &["--cache-to", &format!("{down},ignore-error=true")],
    );
    assert!(ok && err.contains("cache export failed (ignored)"), "{err}");
}

#[test]
fn a_local_cache_directory_round_trips() {
    let Some(a) = with_busybox() else { return };
    let Some(reg) = RegistryServer::start(None) else {
        return;
    };
    let base = format!("{}/base/busybox:1", reg.host());
    a.lighter(&["tag", "busybox:latest", &base]);
    assert!(a.lighter(&["push", "-q", &base]).status.success());
    let ctx = tempfile::tempdir().unwrap();
    checkout(ctx.path(), &base, "x\n");
    let dir = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={},mode=max", dir.path().display());
    let (ok, err, _) = a.build(ctx.path(), &["-t", "l:1", "--cache-to", &dest]);
    assert!(ok, "{err}");
    assert!(dir.path().join("index.json").exists() && dir.path().join("oci-layout").exists());
    let b = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let src = format!("type=local,src={}", dir.path().display());
    let (ok, err, _) = b.build(ctx.path(), &["-t", "l:1", "--cache-from", &src]);
    assert!(ok, "{err}");
    assert_eq!(err.matches("CACHED").count(), 6, "{err}");
    assert_eq!(image_id(&b, "l:1"), image_id(&a, "l:1"));
    // compression=zstd converts the cache's layers; a build from it gets the same image (the
    // config names diffIDs) and runs it.
    let zdir = tempfile::tempdir().unwrap();
    let zdest = format!(
        "type=local,dest={},mode=max,compression=zstd",
        zdir.path().display()
    );
    let (ok, err, _) = a.build(ctx.path(), &["--cache-to", &zdest]);
    assert!(ok, "{err}");
    let zidx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(zdir.path().join("index.json")).unwrap()).unwrap();
    let zmd = zidx["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let zm: serde_json::Value =
        serde_json::from_slice(&std::fs::read(zdir.path().join("blobs/sha256").join(zmd)).unwrap())
            .unwrap();
    for l in zm["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{zm}"
        );
    }
    let z = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let zsrc = format!("type=local,src={}", zdir.path().display());
    let (ok, err, _) = z.build(ctx.path(), &["-t", "l:1", "--cache-from", &zsrc]);
    assert!(ok && err.matches("CACHED").count() == 6, "{err}");
    assert_eq!(image_id(&z, "l:1"), image_id(&a, "l:1"));
    let o = z.lighter(&["run", "--rm", "l:1"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "the app\n");

    // A corrupt cache config is refused with the reason; the build runs without the cache.
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    let md = idx["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("blobs/sha256").join(md)).unwrap())
            .unwrap();
    let cd = m["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    std::fs::write(
        dir.path().join("blobs/sha256").join(cd),
        b"{\"version\": 1, \"records\": 7}",
    )
    .unwrap();
    let c = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let (ok, err, _) = c.build(ctx.path(), &["--cache-from", &src]);
    assert!(ok && err.contains("does not match its digest"), "{err}");
}
