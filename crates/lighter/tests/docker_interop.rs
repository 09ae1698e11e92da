//! Interop with a real Docker engine (Debian's docker.io, started by scripts/setup-peers.sh):
//! `lighter save | docker load` runs; `docker save | lighter load | lighter save` keeps layer digests;
//! the same Dockerfile built by Docker's BuildKit and by lighter gives the same files and config.

mod common;

use common::*;
use std::process::Command;

fn docker_ok(d: &str, args: &[&str]) -> String {
    let o = Command::new(d)
        .args(args)
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `lighter save` of `tag` into `dir`, then `docker load` of that archive; docker's output.
fn lighter_save_docker_load(env: &Env, d: &str, dir: &std::path::Path, tag: &str) -> String {
    let archive = dir.join("img.tar");
    let o = env.lighter(&["save", "-o", archive.to_str().unwrap(), tag]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    docker_ok(d, &["load", "-i", archive.to_str().unwrap()])
}

/// `docker build --network host -q -t TAG CTX` with Docker's BuildKit.
fn docker_build(d: &str, tag: &str, ctx: &std::path::Path) {
    docker_ok(
        d,
        &[
            "build",
            "--network",
            "host",
            "-q",
            "-t",
            tag,
            ctx.to_str().unwrap(),
        ],
    );
}

/// Docker with busybox:latest, and a lighter store with it: the start of every comparison.
fn docker_and_busybox() -> Option<(&'static str, Env)> {
    let d = docker()?;
    let env = with_busybox()?;
    ensure_docker_busybox(d, &bases()?);
    Some((d, env))
}

fn ensure_docker_busybox(d: &str, bases: &std::path::Path) {
    let o = Command::new(d)
        .args(["image", "inspect", "busybox:latest"])
        .output()
        .unwrap();
    if !o.status.success() {
        docker_ok(
            d,
            &[
                "import",
                bases.join("busybox.tar").to_str().unwrap(),
                "busybox:latest",
            ],
        );
    }
}

#[test]
fn saved_image_loads_and_runs_in_docker() {
    let Some(d) = docker() else { return };
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("msg", "from lighter\n"),
            (
                "Dockerfile",
                "FROM busybox\nCOPY msg /msg\nRUN echo built >> /msg\nCMD [\"cat\", \"/msg\"]\n",
            ),
        ],
    );
    let (ok, err, _) = env.build(ctx.path(), &["-t", "lighter-interop:1"]);
    assert!(ok, "{err}");
    let out = lighter_save_docker_load(&env, d, ctx.path(), "lighter-interop:1");
    assert!(out.contains("lighter-interop:1"), "{out}");
    let run = docker_ok(
        d,
        &["run", "--rm", "--network", "host", "lighter-interop:1"],
    );
    assert_eq!(run, "from lighter\nbuilt\n");
    let _ = Command::new(d)
        .args(["rmi", "-f", "lighter-interop:1"])
        .output();
}

#[test]
fn docker_saved_image_round_trips_with_the_same_digests() {
    let Some(d) = docker() else { return };
    let Some(bases) = bases() else { return };
    if !is_root() {
        return;
    }
    ensure_docker_busybox(d, &bases);
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("f", "docker file\n"),
            (
                "Dockerfile",
                "FROM busybox\nCOPY f /f\nRUN echo x > /x\nENV K=v\n",
            ),
        ],
    );
    docker_build(d, "docker-made:1", ctx.path());
    let id = docker_ok(d, &["image", "inspect", "-f", "{{.Id}}", "docker-made:1"])
        .trim()
        .to_string();
    let layers = docker_ok(
        d,
        &[
            "image",
            "inspect",
            "-f",
            "{{json .RootFS.Layers}}",
            "docker-made:1",
        ],
    );
    let archive = ctx.path().join("docker.tar");
    docker_ok(
        d,
        &["save", "-o", archive.to_str().unwrap(), "docker-made:1"],
    );
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let o = env.lighter(&["load", "-i", archive.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = env.lighter(&["inspect", "docker-made:1"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v[0]["Id"].as_str().unwrap(),
        id,
        "the image ID (config digest) is kept"
    );
    let ours: serde_json::Value = v[0]["RootFS"]["Layers"].clone();
    let theirs: serde_json::Value = serde_json::from_str(&layers).unwrap();
    assert_eq!(ours, theirs, "layer diffIDs are kept");
    // Save back and load into docker again under a new name: same ID.
    let back = ctx.path().join("back.tar");
    let o = env.lighter(&["save", "-o", back.to_str().unwrap(), "docker-made:1"]);
    assert!(o.status.success());
    let _ = Command::new(d)
        .args(["rmi", "-f", "docker-made:1"])
        .output();
    docker_ok(d, &["load", "-i", back.to_str().unwrap()]);
    assert_eq!(
        docker_ok(d, &["image", "inspect", "-f", "{{.Id}}", "docker-made:1"]).trim(),
        id
    );
    let _ = Command::new(d)
        .args(["rmi", "-f", "docker-made:1"])
        .output();
}

/// The same Dockerfile through Docker's BuildKit and through lighter: same files (path, type, mode,
/// owner, content, link target) and the same config fields.
#[test]
fn same_files_and_config_as_buildkit() {
    let Some((d, env)) = docker_and_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("app/main.sh", "#!/bin/sh\necho hi\n"),
            ("app/conf/a.conf", "a=1\n"),
            ("app/skip.tmp", "ignored\n"),
            ("top.txt", "top\n"),
            (".dockerignore", "**/*.tmp\n"),
            (
                "Dockerfile",
                "FROM busybox AS build\nWORKDIR /build\nCOPY app/ ./app/\nRUN chmod 755 app/main.sh && ln -s main.sh app/run && mkdir -p out && cp -a app out/\n\
                 FROM scratch\nCOPY --from=build /build/out/ /opt/\nCOPY --chown=1000:1000 top.txt /home/user/\nCOPY --chmod=0640 top.txt /etc/top\nWORKDIR /opt/app\nENV PATH=/opt/app:$PATH LANG=C.UTF-8\nUSER 1000\nEXPOSE 8080/tcp 9090/udp\nLABEL a=b\nSTOPSIGNAL SIGTERM\nENTRYPOINT [\"/opt/app/main.sh\"]\nCMD [\"--flag\"]\n",
            ),
        ],
    );
    for f in ["app/main.sh", "app/conf/a.conf", "top.txt"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(ctx.path().join(f), std::fs::Permissions::from_mode(0o644))
            .unwrap();
    }
    // BuildKit's `-o type=local` does not keep owners, so Docker's side is read back with
    // `docker create` + `docker export` (the container filesystem with numeric owners), minus the
    // mountpoints docker adds to every container.
    docker_build(d, "cmp-buildkit:1", ctx.path());
    let theirs = container_fs(d, "cmp-buildkit:1");
    let ours = tempfile::tempdir().unwrap();
    let (ok, err, _) = env.build(
        ctx.path(),
        &[
            "-t",
            "cmp:1",
            "-o",
            &format!("type=local,dest={}", ours.path().display()),
            "-o",
            "type=image",
        ],
    );
    assert!(ok, "{err}");
    let (a, b) = (tree(theirs.path()), tree(ours.path()));
    assert_eq!(
        b, a,
        "flattened trees differ (left: lighter, right: BuildKit)"
    );
    let dc: serde_json::Value = serde_json::from_str(&docker_ok(
        d,
        &[
            "image",
            "inspect",
            "-f",
            "{{json .Config}}",
            "cmp-buildkit:1",
        ],
    ))
    .unwrap();
    let o = env.lighter(&["inspect", "cmp:1"]);
    let lc: serde_json::Value =
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()[0]["Config"].clone();
    for k in [
        "Env",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "User",
        "ExposedPorts",
        "Labels",
        "StopSignal",
    ] {
        assert_eq!(lc.get(k), dc.get(k), "config field {k}");
    }
    let _ = Command::new(d)
        .args(["rmi", "-f", "cmp-buildkit:1"])
        .output();
}

/// An image's filesystem as Docker's engine assembles it (layers applied by its graph driver,
/// whiteouts and all): `docker create` + `docker export`, extracted with numeric owners, minus
/// the mountpoints docker adds to every container.
fn container_fs(d: &str, image: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cid = docker_ok(d, &["create", image]).trim().to_string();
    let export = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    docker_ok(d, &["export", "-o", export.to_str().unwrap(), &cid]);
    let _ = Command::new(d).args(["rm", "-f", &cid]).output();
    let st = Command::new("tar")
        .args([
            "--numeric-owner",
            "-xpf",
            export.to_str().unwrap(),
            "-C",
            dir.path().to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    for p in [
        ".dockerenv",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        "etc/mtab",
    ] {
        let _ = std::fs::remove_file(dir.path().join(p));
    }
    for p in ["dev/pts", "dev/shm", "dev/console", "dev", "proc", "sys"] {
        let full = dir.path().join(p);
        let _ = std::fs::remove_file(&full);
        let _ = std::fs::remove_dir(&full);
    }
    dir
}

#[test]
fn run_layers_apply_in_docker_as_buildkits_do() {
    // RUN steps that delete, replace (file <-> directory), re-own, chmod, empty and refill a
    // directory (an opaque directory in the overlay upperdir), break a hard link and swap a FIFO for
    // a symlink. Docker's own BuildKit builds the Dockerfile; lighter's image goes through
    // `lighter save | docker load`. Both images are then assembled by Docker's engine from their
    // layers, so every whiteout lighter wrote is applied by a real peer, and the trees (types,
    // contents, modes, owners) and the config must be the same, as must the number of layers.
    let Some((d, env)) = docker_and_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN mkdir -p /a/b /keep /opq /home/u /rep2 && echo 1 > /a/b/f && echo x > /keep/x && echo o > /opq/o1 && echo o > /opq/o2 \\\n\
             && ln /keep/x /keep/hard && ln -s x /keep/sym && chmod 4755 /keep/x && mkfifo /fifo && touch /rep /rep2/in && chown -R 33:44 /home/u\n\
             RUN rm -rf /a/b && rm /keep/sym && chown 1000:2000 /keep/x && chmod 700 /keep && rm -rf /opq && mkdir /opq && echo n > /opq/new \\\n\
             && rm /bin/ls && echo r > /etc/motd && rm /rep && mkdir /rep && rm -rf /rep2 && echo f > /rep2 && chmod 1777 /home/u && chown 5:6 /etc\n\
             RUN rm -rf /a && mkdir /a && touch /a/file && rm /fifo && ln -s /nowhere /fifo && rm -rf /home/u && echo gone > /etc/motd\n\
             ENV X=1\nUSER 1000:2000\nCMD [\"sh\"]\n",
        )],
    );
    docker_build(d, "cmp-run-buildkit:1", ctx.path());
    let (ok, err, _) = env.build(ctx.path(), &["-t", "cmp-run-lighter:1"]);
    assert!(ok, "{err}");
    lighter_save_docker_load(&env, d, ctx.path(), "cmp-run-lighter:1");
    let (theirs, ours) = (
        container_fs(d, "cmp-run-buildkit:1"),
        container_fs(d, "cmp-run-lighter:1"),
    );
    let (a, b) = (tree(theirs.path()), tree(ours.path()));
    for (k, v) in &a {
        assert_eq!(b.get(k), Some(v), "{k} (lighter's, then BuildKit's)");
    }
    assert_eq!(b, a, "trees differ (left: lighter, right: BuildKit)");
    assert!(
        !a.contains_key("opq/o1") && a.contains_key("opq/new") && !a.contains_key("bin/ls"),
        "the scenario itself"
    );
    let inspect = |image: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&docker_ok(d, &["image", "inspect", image]))
            .unwrap()[0]
            .clone()
    };
    let (dc, lc) = (inspect("cmp-run-buildkit:1"), inspect("cmp-run-lighter:1"));
    for k in ["Env", "Cmd", "Entrypoint", "WorkingDir", "User"] {
        assert_eq!(lc["Config"].get(k), dc["Config"].get(k), "config field {k}");
    }
    assert_eq!(
        lc["RootFS"]["Layers"].as_array().map(Vec::len),
        dc["RootFS"]["Layers"].as_array().map(Vec::len),
        "layer count"
    );
    let _ = Command::new(d)
        .args(["rmi", "-f", "cmp-run-buildkit:1", "cmp-run-lighter:1"])
        .output();
}

#[test]
fn copy_and_workdir_semantics_match_buildkit() {
    // Issue 12's image differences, built by Docker's BuildKit and by lighter and compared as
    // Docker's engine assembles them: owners kept by `COPY --from`, WORKDIR directories owned by
    // the USER (named and numeric), a link in the middle of a source path followed inside the
    // stage, a named link copied as its target's content under its own name, a wildcard matching
    // one file copied to a file destination, ADD of several archives into one directory, several
    // sources to a destination without a trailing slash (the last one wins, as in BuildKit), and
    // EXPOSE ranges.
    let Some((d, env)) = docker_and_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(
        c,
        &[
            ("foo1.go", "package foo1\n"),
            ("a/x", "ax\n"),
            ("b/y", "by\n"),
            ("m1", "one\n"),
            ("m2", "two\n"),
            (
                "Dockerfile",
                "FROM busybox AS s\n\
                 RUN mkdir -p /d/sub /real && echo x > /d/sub/f && echo y > /f1 && chown -R 100:200 /d /f1 && echo mine > /real/own \\\n\
                 && ln -s /real /dirlink && echo 'app:x:1001:1002::/home/app:/bin/sh' >> /etc/passwd && mkdir -p /home/app && chown 1001:1002 /home/app\n\
                 USER app\nWORKDIR /home/app/new/deeper\nRUN touch made-by-app\nUSER 1234\nWORKDIR /num\nUSER root\n\
                 RUN stat -c '%n %u:%g' /num /home/app/new > /owners\n\
                 FROM scratch\nCOPY --from=s /d /d2\nCOPY --from=s /d/ /d3/\nCOPY --from=s /f1 /owners /\nCOPY --from=s /home/app /app\n\
                 COPY --from=s /dirlink/own /x/\nCOPY f*.go /foo2.go\nCOPY golink /links/\nADD *.tar /unpacked\nCOPY m1 m2 /multi\n\
                 EXPOSE 8000-8002 9000-9001/udp 80\nCMD [\"/none\"]\n",
            ),
        ],
    );
    std::os::unix::fs::symlink("foo1.go", c.join("golink")).unwrap();
    tar_dirs(c, &[("one.tar", "a"), ("two.tar", "b")]);
    docker_build(d, "cmp-copy-buildkit:1", c);
    let (ok, err, _) = env.build(c, &["-t", "cmp-copy-lighter:1"]);
    assert!(ok, "{err}");
    lighter_save_docker_load(&env, d, c, "cmp-copy-lighter:1");
    let (theirs, ours) = (
        container_fs(d, "cmp-copy-buildkit:1"),
        container_fs(d, "cmp-copy-lighter:1"),
    );
    let (a, b) = (tree(theirs.path()), tree(ours.path()));
    assert_eq!(b, a, "trees differ (left: lighter, right: BuildKit)");
    assert_eq!(
        std::fs::read_to_string(theirs.path().join("owners")).unwrap(),
        "/num 1234:1234\n/home/app/new 1001:1002\n",
        "the scenario itself"
    );
    assert!(a["d2/sub/f"].ends_with(" 100:200") && a["multi"].starts_with("file:"));
    let ports = |image: &str| {
        docker_ok(
            d,
            &[
                "image",
                "inspect",
                "-f",
                "{{json .Config.ExposedPorts}}",
                image,
            ],
        )
    };
    assert_eq!(ports("cmp-copy-lighter:1"), ports("cmp-copy-buildkit:1"));
    let _ = Command::new(d)
        .args(["rmi", "-f", "cmp-copy-buildkit:1", "cmp-copy-lighter:1"])
        .output();
}

#[test]
fn stage_references_and_inherited_args_match_buildkit() {
    // The build graph's stage edges, compared with Docker's BuildKit: a stage that only renames
    // another (`FROM base AS alias`, read by `COPY --from` and a `from=` mount), and ARGs a stage
    // built FROM another stage keeps (BuildKit carries the base stage's build args). (An ONBUILD
    // `COPY --from=STAGE` of a stage base is tested in build.rs: Docker 20.10's BuildKit predates
    // stage references in triggers.)
    let Some((d, env)) = docker_and_busybox() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(
        c,
        &[(
            "Dockerfile",
            "FROM busybox AS base\nARG V=1\nENV E=$V\nRUN echo base > /x\n\
             FROM base AS alias\n\
             FROM base\nCOPY --from=alias /x /copied\n\
             RUN --mount=type=bind,from=alias,target=/m cat /m/x > /mounted && echo \"v=[$V] e=[$E]\" > /args\nCMD [\"/none\"]\n",
        )],
    );
    docker_build(d, "cmp-stages-buildkit:1", c);
    let (ok, err, _) = env.build(c, &["-t", "cmp-stages-lighter:1"]);
    assert!(ok, "{err}");
    lighter_save_docker_load(&env, d, c, "cmp-stages-lighter:1");
    let (theirs, ours) = (
        container_fs(d, "cmp-stages-buildkit:1"),
        container_fs(d, "cmp-stages-lighter:1"),
    );
    for f in ["copied", "mounted", "args"] {
        assert_eq!(
            std::fs::read_to_string(ours.path().join(f)).unwrap(),
            std::fs::read_to_string(theirs.path().join(f)).unwrap(),
            "/{f} (left: lighter, right: BuildKit)"
        );
    }
    assert_eq!(
        std::fs::read_to_string(theirs.path().join("args")).unwrap(),
        "v=[1] e=[1]\n",
        "the scenario itself"
    );
    let _ = Command::new(d)
        .args(["rmi", "-f", "cmp-stages-buildkit:1", "cmp-stages-lighter:1"])
        .output();
}
