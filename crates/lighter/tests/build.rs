//! End-to-end builds with the real binary, a temp store and a busybox base: multi-stage semantics,
//! config, cache behaviour, failures, secrets, outputs, `lighter run`.

mod common;

use common::*;
use std::path::Path;

fn config(env: &Env, image: &str) -> serde_json::Value {
    let o = env.lighter(&["inspect", image]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v[0].clone()
}

#[test]
fn multi_stage_build_config_history_and_cache() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("hello.txt", "hello\n"),
            ("other.txt", "other\n"),
            ("ignored.log", "secret log\n"),
            (".dockerignore", "*.log\n"),
            (
                "Dockerfile",
                "ARG BASE=busybox\nFROM ${BASE} AS build\nARG MSG=built\nWORKDIR /src\nCOPY hello.txt .\nRUN echo \"$MSG $(cat hello.txt)\" > out.txt\nCOPY other.txt .\n\
                 FROM busybox AS broken\nRUN exit 7\n\
                 FROM scratch\nCOPY --from=build /src/out.txt /out.txt\nENV A=1 B=$A\nENV C=$A\nUSER 1000:1000\nEXPOSE 8080\nWORKDIR /app\nLABEL org.example=yes\nENTRYPOINT [\"/bin/x\"]\n",
            ),
        ],
    );
    let (ok, err, _) = env.build(ctx.path(), &["-t", "t:1"]);
    assert!(ok, "{err}");
    // The unused broken stage never ran.
    assert!(!err.contains("exit 7"), "{err}");
    let c = config(&env, "t:1");
    let cfg = &c["Config"];
    assert_eq!(
        cfg["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=1",
            "B=",
            "C=1"
        ]),
        "values in one ENV line do not see each other"
    );
    assert_eq!(cfg["User"], "1000:1000");
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["ExposedPorts"], serde_json::json!({ "8080/tcp": {} }));
    assert_eq!(cfg["Labels"]["org.example"], "yes");
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/bin/x"]));
    // Files of the final stage.
    let (ok, err, out) = env.build_local(ctx.path(), &[]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(out.path().join("out.txt")).unwrap(),
        "built hello\n"
    );
    let t = tree(out.path());
    assert_eq!(
        t.keys().cloned().collect::<Vec<_>>(),
        vec!["app", "out.txt"],
        "{t:?}"
    );
    // A no-op rebuild: everything cached, same image ID.
    let id1 = c["Id"].clone();
    let (ok, err, _) = env.build(ctx.path(), &["-t", "t:1"]);
    assert!(ok, "{err}");
    assert_eq!(err.matches("CACHED").count(), 6, "{err}");
    assert!(!err.contains("rebuilt"), "{err}");
    assert_eq!(
        config(&env, "t:1")["Id"],
        id1,
        "a fully cached rebuild gives the same image"
    );
    // Changing an ignored file changes nothing; changing other.txt reruns only its COPY.
    std::fs::write(ctx.path().join("ignored.log"), "changed").unwrap();
    let (_, err, _) = env.build(ctx.path(), &["-t", "t:1"]);
    assert_eq!(err.matches("CACHED").count(), 6, "{err}");
    std::fs::write(ctx.path().join("other.txt"), "changed").unwrap();
    let (ok, err, _) = env.build(ctx.path(), &["-t", "t:1"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("COPY other.txt .\n") && err.contains("rebuilt: changed: files"),
        "{err}"
    );
    assert!(
        err.lines().any(|l| l.contains("RUN echo")) && err.matches("CACHED").count() == 5,
        "{err}"
    );
    // --target builds the named stage only.
    let (ok, err, _) = env.build(ctx.path(), &["--target", "build", "-t", "t:build"]);
    assert!(ok, "{err}");
    assert_eq!(config(&env, "t:build")["Config"]["WorkingDir"], "/src");
    // History: one entry per instruction, empty_layer where no layer.
    let o = env.lighter(&["history", "--no-trunc", "t:1"]);
    let h = String::from_utf8_lossy(&o.stdout);
    assert!(
        h.contains("COPY /src/out.txt /out.txt # buildkit")
            && h.contains("ENV A=1 B=")
            && h.contains("EXPOSE map[8080/tcp:{}]"),
        "{h}"
    );
}

#[test]
fn failing_run_reports_location_and_tags_nothing() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo one && echo two\nRUN echo before-fail; exit 3\n",
        )],
    );
    let (ok, err, _) = env.build(ctx.path(), &["-t", "bad:1"]);
    assert!(!ok);
    assert!(
        err.contains("exit code: 3")
            && err.contains("Dockerfile:3:1")
            && err.contains("3 | RUN echo before-fail; exit 3")
            && err.contains("> before-fail"),
        "{err}"
    );
    let o = env.lighter(&["inspect", "bad:1"]);
    assert!(!o.status.success(), "nothing is tagged on failure");
    // A missing COPY source names the path and a nearby match.
    write(
        ctx.path(),
        &[
            ("Dockerfile", "FROM busybox\nCOPY hello.txt /\n"),
            ("helo.txt", "x"),
        ],
    );
    let (ok, err, _) = env.build(ctx.path(), &[]);
    assert!(
        !ok && err.contains("\"/hello.txt\": not found")
            && err.contains("did you mean helo.txt?")
            && err.contains("Dockerfile:2:1"),
        "{err}"
    );
    // A missing base image says how to get one.
    write(ctx.path(), &[("Dockerfile", "FROM nothere:1\n")]);
    let (ok, err, _) = env.build(ctx.path(), &[]);
    assert!(!ok && err.contains("lighter import"), "{err}");
}

#[test]
fn run_env_user_workdir_network_and_whiteouts() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nARG V=arg\nENV E=env\nWORKDIR /w\nRUN echo \"$V $E $(pwd) $(hostname)\" > /w/info && mkdir -p /d/sub && touch /d/sub/f /gone && chown 1000:1000 /w/info\n\
             RUN rm /gone && rm -rf /d/sub && chmod 600 /w/info\nUSER node\nRUN id > /tmp/id\nRUN --network=none ip link 2>/dev/null | grep -c '^[0-9]' > /tmp/links || cat /proc/net/dev | tail -n +3 | wc -l > /tmp/links\n",
        )],
    );
    let (ok, err, out) = env.build_local(ctx.path(), &[]);
    assert!(ok, "{err}");
    let o = out.path();
    assert_eq!(
        std::fs::read_to_string(o.join("w/info")).unwrap(),
        "arg env /w buildkitsandbox\n"
    );
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(o.join("w/info")).unwrap();
    assert_eq!((md.mode() & 0o777, md.uid(), md.gid()), (0o600, 1000, 1000));
    assert!(!o.join("gone").exists() && !o.join("d/sub").exists() && o.join("d").is_dir());
    assert!(std::fs::read_to_string(o.join("tmp/id"))
        .unwrap()
        .starts_with("uid=1000(node) gid=1000(node)"));
    assert_eq!(
        std::fs::read_to_string(o.join("tmp/links")).unwrap().trim(),
        "1",
        "only lo with --network=none"
    );
    // Mountpoints and build-time files never reach the image.
    assert!(std::fs::read_dir(o.join("proc"))
        .map(|mut r| r.next().is_none())
        .unwrap_or(true));
    assert!(
        !o.join("etc/hosts").exists() && !o.join("etc/resolv.conf").exists(),
        "hosts/resolv.conf are bind mounts only"
    );
}

#[test]
fn secrets_never_reach_a_layer_history_or_key() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    let secret_value = "s3cr3t-value-8d1f";
    write(ctx.path(), &[("tok", secret_value), ("Dockerfile", "FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c > /len\nRUN --mount=type=secret,id=tok,env=TOKEN test ${#TOKEN} -eq 17 && echo ok > /ok\n")]);
    let src = format!("id=tok,src={}", ctx.path().join("tok").display());
    let (ok, err, _) = env.build(ctx.path(), &["--secret", &src, "-t", "sec:1"]);
    assert!(ok, "{err}");
    // Grep every blob and the metadata DB of the store.
    let mut hits = Vec::new();
    for e in walk(env.root.path()) {
        let bytes = std::fs::read(&e).unwrap_or_default();
        let plain = decompress_all(&bytes);
        if contains(&bytes, secret_value.as_bytes()) || contains(&plain, secret_value.as_bytes()) {
            hits.push(e);
        }
    }
    assert!(hits.is_empty(), "secret found in {hits:?}");
    let o = env.lighter(&["history", "--no-trunc", "sec:1"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains(secret_value));
    // Without the secret, a required... (not required by default): the RUN fails on its own test.
    let (ok, _, _) = env.build(ctx.path(), &["--no-cache"]);
    assert!(!ok);
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() && !path.is_symlink() {
                if path
                    .file_name()
                    .is_some_and(|n| n == "layers" || n == "cache-mounts")
                {
                    continue;
                }
                out.extend(walk(&path));
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out
}

fn decompress_all(b: &[u8]) -> Vec<u8> {
    use std::io::Read;
    if b.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let _ = flate2::read::MultiGzDecoder::new(b).read_to_end(&mut out);
        out
    } else {
        Vec::new()
    }
}

fn contains(h: &[u8], n: &[u8]) -> bool {
    h.windows(n.len()).any(|w| w == n)
}

#[test]
fn lighter_run_passes_exit_codes_and_config() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), &[("Dockerfile", "FROM busybox\nENV WHO=world\nWORKDIR /srv\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"echo hello $WHO from $(pwd)\"]\n")]);
    let (ok, err, _) = env.build(ctx.path(), &["-t", "r:1"]);
    assert!(ok, "{err}");
    let o = env.lighter(&["run", "--rm", "r:1"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello world from /srv\n"
    );
    let o = env.lighter(&["run", "--rm", "-e", "WHO=you", "r:1", "echo $WHO; exit 42"]);
    assert_eq!(o.status.code(), Some(42));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "you\n");
}

#[test]
fn add_host_shm_size_and_ulimit_reach_run_steps_and_keys() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN mkdir /r && grep -v localhost /etc/hosts > /r/hosts \\\n\
             && df -k /dev/shm | tail -1 | awk '{print $2}' > /r/shm \\\n\
             && ulimit -Sn > /r/nofile && ulimit -Hn >> /r/nofile\n",
        )],
    );
    let flags = [
        "--add-host",
        "db:10.1.2.3",
        "--add-host",
        "v6=[fd00::1]",
        "--shm-size",
        "128m",
        "--ulimit",
        "nofile=1000:2000",
    ];
    let (ok, err, out) = env.build_local(ctx.path(), &flags);
    assert!(ok, "{err}");
    let read = |f: &str| std::fs::read_to_string(out.path().join("r").join(f)).unwrap();
    assert_eq!(
        read("hosts"),
        "10.1.2.3\tdb\nfd00::1\tv6\n",
        "BuildKit's IP<TAB>HOST lines, in order"
    );
    assert_eq!(
        read("shm").trim(),
        (128 * 1024).to_string(),
        "/dev/shm is 128 MiB"
    );
    assert_eq!(read("nofile"), "1000\n2000\n");
    // The options are in the step's cache key: the same flags hit, other flags miss.
    let (ok, err, _) = env.build(ctx.path(), &flags);
    assert!(ok && err.contains("CACHED"), "{err}");
    let (ok, err, out) = env.build_local(ctx.path(), &["--add-host", "db:10.9.9.9"]);
    assert!(ok && !err.contains("CACHED"), "{err}");
    assert_eq!(
        std::fs::read_to_string(out.path().join("r/hosts")).unwrap(),
        "10.9.9.9\tdb\n"
    );
    // Bad values are errors that name the flag.
    for (flag, value, want) in [
        ("--add-host", "db", "--add-host db: bad format for add-host"),
        (
            "--add-host",
            "db:300.1.1.1",
            "invalid IP address in add-host",
        ),
        (
            "--ulimit",
            "files=1",
            "--ulimit files=1: invalid ulimit type: files",
        ),
        (
            "--shm-size",
            "lots",
            "--shm-size lots: expected a positive size",
        ),
    ] {
        let (ok, err, _) = env.build(ctx.path(), &[flag, value]);
        assert!(!ok && err.contains(want), "{flag} {value}: {err}");
    }
    // `lighter run` takes the same flags.
    let (ok, err, _) = env.build(ctx.path(), &[&flags[..], &["-t", "opts:1"]].concat());
    assert!(ok, "{err}");
    let o = env.lighter(&[
        "run",
        "--rm",
        "--add-host",
        "cache:10.0.0.7",
        "--ulimit",
        "nofile=512",
        "opts:1",
        "sh",
        "-c",
        "grep cache /etc/hosts; ulimit -n",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "10.0.0.7\tcache\n512\n");
}

/// Regression: identical steps (`RUN true` twice) made identical layers whose unpacked directory was
/// given twice to overlayfs, which refuses it (ELOOP); and stub mountpoints left a copied-up /etc.
#[test]
fn repeated_identical_steps_build_and_leave_no_layers() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    let mut df = String::from("FROM busybox\n");
    for i in 0..5 {
        df.push_str(&format!("RUN true # {i}\n"));
    }
    // The same COPY twice makes byte-identical layers (COPY keeps the source mtime).
    df.push_str("COPY f /same/f\nCOPY f /same/f\nRUN cat /same/f\n");
    write(ctx.path(), &[("Dockerfile", &df), ("f", "same\n")]);
    let (ok, err, _) = env.build(ctx.path(), &["--no-cache", "-t", "rep:1"]);
    assert!(ok, "{err}");
    let o = env.lighter(&["inspect", "rep:1"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // busybox's layer plus the two identical COPY layers; `RUN true` changes nothing.
    let layers = v[0]["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{v}");
    assert_eq!(layers[1], layers[2], "the two COPY layers are identical");
    assert!(
        err.contains("same"),
        "the RUN over duplicate layers ran: {err}"
    );
}

/// `COPY --from` naming the stage itself is refused at lowering with BuildKit's words (a circular
/// dependency), never left waiting for its own result.
#[test]
fn copy_from_itself_is_an_error_not_a_hang() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox AS a\nCOPY --from=a /bin/busybox /x\n",
        )],
    );
    let (ok, err, _) = env.build(ctx.path(), &[]);
    assert!(!ok);
    assert!(
        err.contains("circular dependency detected on stage: a") && err.contains("Dockerfile:2:1"),
        "{err}"
    );
}

/// COPY/ADD written straight to a layer tar (the default) and through an overlay mount
/// (`LIGHTER_COPY=overlay`, the fallback) give the same files, modes, owners and link targets, over
/// the rules that read the stage's existing filesystem: existing directories, a file replaced, a
/// destination through a symlink, names resolved by `--chown`, `--chmod`, `--exclude`, wildcards,
/// directory contents, a renamed file, a symlink source, `--from` a stage and ADD's archive extraction.
#[test]
fn planned_copy_matches_the_overlay_copy() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("a.txt", "a\n"),
            ("b.txt", "b\n"),
            ("dir/one", "1\n"),
            ("dir/sub/two", "2\n"),
            ("dir/sub/skip.md", "skipped\n"),
            ("passwd", "replaced passwd\n"),
            (
                "Dockerfile",
                "FROM busybox AS base\nRUN mkdir -p /srv/data /real && ln -s /real /srv/link && echo app:x:4321:4321::/home/app:/bin/sh >> /etc/passwd && echo app:x:4321: >> /etc/group\n\
                 COPY a.txt b.txt /srv/data/\nCOPY *.txt /srv/glob/\nCOPY dir /srv/dir\nCOPY --exclude=**/*.md dir/ /srv/excl/\n\
                 COPY a.txt /srv/renamed\nCOPY --chown=app:app --chmod=u+x,go-r dir /home/app/dir\nCOPY passwd /etc/passwd.copy\n\
                 COPY a.txt /srv/link/through-symlink\nCOPY alink /srv/alink\nCOPY dlink /srv/\nADD pack.tar /srv/unpacked/\nCOPY a.txt /bin\n\
                 FROM base AS second\nCOPY --from=base /srv/dir /opt/dir\nCOPY b.txt /srv/data/a.txt\n",
            ),
        ],
    );
    std::os::unix::fs::symlink("a.txt", ctx.path().join("alink")).unwrap();
    std::os::unix::fs::symlink("dir", ctx.path().join("dlink")).unwrap();
    let st = std::process::Command::new("tar")
        .args(["-cf", "pack.tar", "dir"])
        .current_dir(ctx.path())
        .status()
        .unwrap();
    assert!(st.success());
    let mut trees = Vec::new();
    for mode in ["planned", "overlay"] {
        let out = tempfile::tempdir().unwrap();
        let o = env
            .cmd()
            .env("LIGHTER_COPY", mode)
            .args(["build", "--no-cache", "--progress", "plain", "-o"])
            .arg(format!("type=local,dest={}", out.path().display()))
            .arg(ctx.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let t = tree(out.path());
        for (p, want) in [
            ("srv/data/a.txt", "file"),
            ("srv/real-check", ""),
            ("srv/renamed", "file"),
            ("srv/glob/b.txt", "file"),
            ("srv/dir/sub/two", "file"),
            ("srv/excl/one", "file"),
            ("srv/alink", "file"),
            ("srv/unpacked/dir/one", "file"),
            ("real/through-symlink", "file"),
            ("home/app/dir/sub/two", "file"),
            ("opt/dir/one", "file"),
        ] {
            if want.is_empty() {
                continue;
            }
            assert!(
                t.get(p).is_some_and(|v| v.starts_with(want)),
                "{mode}: {p} missing: {:?}",
                t.get(p)
            );
        }
        assert!(!t.contains_key("srv/excl/sub/skip.md"), "{mode}: --exclude");
        assert!(
            t["home/app/dir/one"].ends_with(" 700 4321:4321"),
            "{mode}: {}",
            t["home/app/dir/one"]
        );
        assert!(
            t["srv/data/a.txt"].starts_with(&format!("file:{}", sha256_hex(b"b\n"))),
            "{mode}: replaced file"
        );
        trees.push(t);
    }
    let (planned, overlay) = (&trees[0], &trees[1]);
    for (k, v) in overlay {
        assert_eq!(planned.get(k), Some(v), "{k}: planned vs overlay");
    }
    assert_eq!(planned.len(), overlay.len(), "same paths");
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// `--build-context NAME=DIR|docker-image://REF` as BuildKit has it: a named context replaces a stage
/// of the same name (which then never runs), `COPY --from=NAME` reads a directory in place (with its
/// own `.dockerignore`) or an image, and `FROM NAME` starts from a directory's files.
#[test]
fn named_build_contexts_replace_stages_and_feed_copy_and_from() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    let extra = tempfile::tempdir().unwrap();
    let tools = tempfile::tempdir().unwrap();
    write(
        extra.path(),
        &[
            ("hello.txt", "hello from extra\n"),
            ("skip.txt", "ignored\n"),
            (".dockerignore", "skip.txt\n"),
        ],
    );
    write(tools.path(), &[("which", "from the named context\n")]);
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox AS tools\nRUN echo from-the-stage > /which && exit 9\n\
             FROM extra AS fromdir\n\
             FROM scratch\nCOPY --from=tools /which /which\nCOPY --from=extra hello.txt /hello.txt\n\
             COPY --from=fromdir /hello.txt /hello2.txt\nCOPY --from=base /bin/busybox /busybox\n",
        )],
    );
    let out = tempfile::tempdir().unwrap();
    let bc = |n: &str, v: &std::path::Path| format!("{n}={}", v.display());
    let (ok, err, _) = env.build(
        ctx.path(),
        &[
            "--build-context",
            &bc("tools", tools.path()),
            "--build-context",
            &bc("extra", extra.path()),
            "--build-context",
            "base=docker-image://busybox:latest",
            "-o",
            &format!("type=local,dest={}", out.path().display()),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        !err.contains("exit 9"),
        "the replaced stage never runs: {err}"
    );
    let read = |p: &str| std::fs::read_to_string(out.path().join(p)).unwrap();
    assert_eq!(read("which"), "from the named context\n");
    assert_eq!(read("hello.txt"), "hello from extra\n");
    assert_eq!(read("hello2.txt"), "hello from extra\n");
    assert!(out.path().join("busybox").is_file());
    // FROM a directory: its files only, its .dockerignore honoured.
    let out2 = tempfile::tempdir().unwrap();
    write(ctx.path(), &[("Dockerfile.dir", "FROM extra\n")]);
    let (ok, err, _) = env.build(
        ctx.path(),
        &[
            "-f",
            ctx.path().join("Dockerfile.dir").to_str().unwrap(),
            "--build-context",
            &bc("extra", extra.path()),
            "-o",
            &format!("type=local,dest={}", out2.path().display()),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        tree(out2.path()).keys().cloned().collect::<Vec<_>>(),
        [".dockerignore", "hello.txt"]
    );
    // A changed file in a named context is a cache miss for the steps that read it.
    write(extra.path(), &[("hello.txt", "changed\n")]);
    let (ok, err, _) = env.build(
        ctx.path(),
        &[
            "--build-context",
            &bc("tools", tools.path()),
            "--build-context",
            &bc("extra", extra.path()),
            "--build-context",
            "base=docker-image://busybox:latest",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("rebuilt: changed: files"),
        "the COPY from the changed context reran: {err}"
    );
    assert!(
        err.matches("CACHED").count() >= 1,
        "unchanged steps stay cached: {err}"
    );
    // Unsupported and wrong values are clear errors.
    let (ok, err, _) = env.build(
        ctx.path(),
        &["--build-context", "x=https://example.com/a.tar"],
    );
    assert!(!ok && err.contains("not supported yet"), "{err}");
    let (ok, err, _) = env.build(ctx.path(), &["--build-context", "x=/does/not/exist"]);
    assert!(!ok && err.contains("not a directory"), "{err}");
}

/// `COPY --parents` as BuildKit documents it: source paths kept under the destination, a `/./` in the
/// source cutting off what comes before it, directories and wildcards too; without the flag the last
/// of two same-named files wins. Planned and overlay copies agree.
#[test]
fn copy_parents_keeps_source_paths() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("x/a.txt", "xa\n"),
            ("y/a.txt", "ya\n"),
            ("x/y/a.txt", "xya\n"),
            ("x/y/b.txt", "xyb\n"),
            (
                "Dockerfile",
                "FROM scratch\nCOPY ./x/a.txt ./y/a.txt /no_parents/\nCOPY --parents ./x/a.txt ./y/a.txt /parents/\n\
                 COPY --parents ./x/./y/*.txt /pivot/\nCOPY --parents x/y /dirs/\nCOPY --parents */a.txt /glob/\n",
            ),
        ],
    );
    let mut trees = Vec::new();
    for mode in ["planned", "overlay"] {
        let out = tempfile::tempdir().unwrap();
        let o = env
            .cmd()
            .env("LIGHTER_COPY", mode)
            .args(["build", "--no-cache", "-o"])
            .arg(format!("type=local,dest={}", out.path().display()))
            .arg(ctx.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let files: Vec<(String, String)> = tree(out.path())
            .into_iter()
            .filter(|(_, v)| v.starts_with("file:"))
            .map(|(k, _)| {
                let c = std::fs::read_to_string(out.path().join(&k)).unwrap();
                (k, c.trim().to_string())
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("dirs/x/y/a.txt", "xya"),
            ("dirs/x/y/b.txt", "xyb"),
            ("glob/x/a.txt", "xa"),
            ("glob/y/a.txt", "ya"),
            ("no_parents/a.txt", "ya"),
            ("parents/x/a.txt", "xa"),
            ("parents/y/a.txt", "ya"),
            ("pivot/y/a.txt", "xya"),
            ("pivot/y/b.txt", "xyb"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(files, want, "{mode}");
        trees.push(tree(out.path()));
    }
    assert_eq!(trees[0], trees[1], "planned vs overlay");
}

/// `COPY --link`: the files land in a layer made on an empty filesystem (a symlinked destination in
/// the earlier state is not followed: the path becomes plain directories), and the step stays cached
/// when an earlier step changes, while the steps after it still see the change.
#[test]
fn copy_link_is_independent_of_earlier_layers() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("a.txt", "a\n"),
            (
                "Dockerfile",
                "FROM busybox\nARG V=1\nRUN mkdir /real && ln -s /real /app && ln -s /real /plain && echo $V > /v\n\
                 COPY --link a.txt /app/\nCOPY a.txt /plain/\nRUN cat /v > /after\n",
            ),
        ],
    );
    let (ok, err, out) = env.build_local(ctx.path(), &[]);
    assert!(ok, "{err}");
    let t = tree(out.path());
    assert!(
        t["app"].starts_with("dir"),
        "--link: /app is a directory now: {:?}",
        t.get("app")
    );
    assert!(t["app/a.txt"].starts_with("file:"));
    assert!(
        t["plain"].starts_with("link:/real") && t.contains_key("real/a.txt"),
        "without --link the symlink is followed"
    );
    // Change the step before: the --link step is CACHED, the steps after it are not.
    let (ok, err, out2) = env.build_local(ctx.path(), &["--build-arg", "V=2"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    let step_of = |text: &str| {
        lines
            .iter()
            .find(|l| l.contains(text))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{text}: {err}"))
            .to_string()
    };
    let link = step_of("COPY a.txt /app/");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{link} CACHED"))),
        "--link step cached: {err}"
    );
    let plain = step_of("COPY a.txt /plain/");
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with(&format!("{plain} CACHED"))),
        "the plain COPY reruns: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(out2.path().join("after")).unwrap(),
        "2\n",
        "later steps see the change"
    );
}

/// `--progress tty`: the live view's byte stream ends with the finished steps and the final header
/// (what a terminal shows once the cursor movements are applied).
#[test]
fn tty_progress_prints_finished_steps_and_a_final_header() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo one && sleep 0.3\nRUN echo two\n",
        )],
    );
    let tty = || {
        let o = env
            .cmd()
            .args(["build", "--progress", "tty"])
            .arg(ctx.path())
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (ok, err) = tty();
    assert!(ok, "{err}");
    assert!(
        err.contains("\x1b[") && err.contains("[+] Building"),
        "{err}"
    );
    assert!(
        err.contains(" => [stage-0 2/3] RUN echo one && sleep 0.3"),
        "{err}"
    );
    let last = err
        .lines()
        .rev()
        .find(|l| l.contains("[+] Building"))
        .unwrap();
    assert!(last.ends_with("(3/3) FINISHED"), "{last}");
    let (ok, err) = tty();
    assert!(
        ok && err.contains(" => CACHED [stage-0 3/3] RUN echo two"),
        "{err}"
    );
}

#[test]
fn onbuild_copy_from_a_stage_is_scheduled() {
    // An ONBUILD trigger of a stage base that copies from a third stage: that stage is built first
    // (current BuildKit resolves stage names in triggers; the build used to stop with "stage 0 is
    // read but was not scheduled").
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox AS a\nRUN echo a > /a\nFROM busybox AS b\nONBUILD COPY --from=a /a /from-trigger\n\
         FROM b\nRUN cat /from-trigger > /t\n",
    )
    .unwrap();
    let (ok, err, _) = env.build(ctx.path(), &["-t", "onbuild-from:1"]);
    assert!(ok, "{err}");
    let o = env.lighter(&["run", "--rm", "onbuild-from:1", "cat", "/t"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "a\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn exit_codes_say_what_failed() {
    // README "Exit codes": 4 an invalid Dockerfile, 5 an image that cannot be had, 6 a registry
    // that cannot be reached, 3 something not implemented, 1 a failed step, 2 a usage error.
    let Some(env) = with_busybox() else { return };
    let Some(reg) = RegistryServer::start(None) else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    let port = free_port();
    let missing = format!("FROM {}/none/here:1\n", reg.host());
    for (df, extra, code) in [
        ("FROM busybox\nCOPY onlyone\n", &[][..], 4),
        ("FROM busybox\nCOPY onlyone\n", &["--check"][..], 4),
        ("FROM busybox\nNOPE x\n", &[][..], 4),
        ("FROM $UNSET\n", &[][..], 4),
        ("FROM $UNSET\n", &["--check"][..], 4),
        ("FROM busybox\n", &["--target", "nope"][..], 4),
        ("FROM busybox\nCOPY --from=$X /a /b\n", &[][..], 4),
        (&*missing, &[][..], 5),
        (&*format!("FROM 127.0.0.1:{port}/none:1\n"), &[][..], 6),
        ("FROM --platform=linux/s390x busybox\n", &[][..], 3),
        (
            "FROM busybox\n",
            &["--build-context", "x=oci-layout:///nope"][..],
            3,
        ),
        ("FROM busybox\nRUN exit 3\n", &[][..], 1),
        ("FROM busybox\n", &["--bogus-flag"][..], 2),
    ] {
        std::fs::write(ctx.path().join("Dockerfile"), df).unwrap();
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(extra);
        let c = ctx.path().display().to_string();
        args.push(&c);
        let o = env.lighter(&args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{df:?} {extra:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// What a review of the build-graph redesign found, each checked end to end: a step two stages
/// share runs once but its cache record belongs to both (here the final image's chain, for a
/// `mode=min` export); a stage built FROM another stage shows its FROM line; `COPY a sub/.`
/// copies into a directory; a VOLUME path with a space stays one path.
#[test]
fn shared_steps_stage_bases_and_destinations_after_the_graph_redesign() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox AS test\nRUN echo shared > /shared\nRUN echo t > /t\n\
             FROM busybox AS base\nRUN echo shared > /shared\n\
             FROM base\nCOPY --from=test /t /sub/.\nVOLUME [\"/var/lib/my data\"]\n",
        )],
    );
    let cache = tempfile::tempdir().unwrap();
    let to = format!("type=local,dest={},mode=min", cache.path().display());
    let (ok, err, _) = env.build(ctx.path(), &["-t", "review:1", "--cache-to", &to]);
    assert!(ok, "{err}");
    // The shared RUN ran once; mode=min exports the base stage's RUN and the COPY.
    assert_eq!(
        err.matches("RUN echo shared > /shared\n").count(),
        1,
        "{err}"
    );
    assert!(err.contains(": exported 2 steps"), "{err}");
    assert!(err.contains("[stage-2 1/3] FROM base"), "{err}");
    assert!(err.contains("(3 steps, 0 cached)"), "{err}");
    let c = config(&env, "review:1");
    let volumes: Vec<&String> = c["Config"]["Volumes"].as_object().unwrap().keys().collect();
    assert_eq!(volumes, ["/var/lib/my data"], "{c}");
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let (ok, err, _) = env.build(ctx.path(), &["-o", &dest]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(out.path().join("sub/t")).unwrap(),
        "t\n"
    );
    assert!(err.contains("(3 steps, 3 cached)"), "{err}");
    // ENTRYPOINT clears an inherited CMD, not one its own stage set (BuildKit's cmdSet).
    for (df, cmd) in [
        (
            "FROM busybox\nENTRYPOINT [\"/bin/echo\"]\n",
            serde_json::Value::Null,
        ),
        (
            "FROM busybox\nCMD [\"hi\"]\nENTRYPOINT [\"/bin/echo\"]\n",
            serde_json::json!(["hi"]),
        ),
    ] {
        write(ctx.path(), &[("Dockerfile", df)]);
        let (ok, err, _) = env.build(ctx.path(), &["-t", "review:2"]);
        assert!(ok, "{err}");
        let c = config(&env, "review:2");
        assert_eq!(c["Config"]["Cmd"], cmd, "{df}: {c}");
        // History as BuildKit writes it: Go's %q of the argv; CMD sets ArgsEscaped.
        let h = env.lighter(&["history", "--no-trunc", "review:2"]);
        let h = String::from_utf8_lossy(&h.stdout);
        assert!(h.contains("ENTRYPOINT [\"/bin/echo\"]"), "{h}");
        if !cmd.is_null() {
            assert!(h.contains("CMD [\"hi\"]"), "{h}");
            assert_eq!(c["Config"]["ArgsEscaped"], serde_json::json!(true), "{c}");
        }
        assert_eq!(
            c["Config"]["Entrypoint"],
            serde_json::json!(["/bin/echo"]),
            "{df}"
        );
    }
}
