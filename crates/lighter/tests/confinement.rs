//! Regression tests for issue 12's first finding: COPY and ADD followed symlinks out of their source
//! root, so a build context or a stage could copy the build machine's files into an image. Each
//! source kind plants a link to a host file (absolute, and climbing with `..`) and the build must
//! either resolve it inside the root (BuildKit: "not found") or copy the root's own file; afterwards
//! the host file's bytes are in no layer, cache record or output. Also: builds that used to wait
//! forever now end (every build here runs under a deadline).

mod common;

use common::*;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A host file with content no image has, and the links to it that the tests plant.
struct HostSecret {
    dir: tempfile::TempDir,
    bytes: String,
}

impl HostSecret {
    fn new() -> HostSecret {
        let dir = tempfile::tempdir().unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let bytes = format!("LIGHTER-HOST-SECRET-{}-{nanos}", std::process::id());
        std::fs::write(dir.path().join("secret"), &bytes).unwrap();
        HostSecret { dir, bytes }
    }

    fn path(&self) -> String {
        self.dir.path().join("secret").display().to_string()
    }

    /// The same file reached with `..` from any depth.
    fn climbing(&self) -> String {
        format!(
            "{}{}",
            "../".repeat(24),
            self.path().trim_start_matches('/')
        )
    }
}

/// Runs lighter with `args` and fails the test if it has not ended after `secs`.
fn lighter_within(env: &Env, args: &[&str], secs: u64) -> (bool, String) {
    let mut child = env
        .cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lighter {args:?} did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.success(), reader.join().unwrap())
}

/// True when `needle` is in any file under `dir`, gzip streams (layer blobs) decompressed.
fn anywhere_in(dir: &Path, needle: &[u8]) -> Option<String> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if md.is_dir() {
                stack.push(p);
                continue;
            }
            if !md.is_file() {
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let mut plain = Vec::new();
            if bytes.starts_with(&[0x1f, 0x8b]) {
                let _ = flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut plain);
            }
            if [&bytes, &plain]
                .iter()
                .any(|b| b.windows(needle.len()).any(|w| w == needle))
            {
                return Some(p.display().to_string());
            }
        }
    }
    None
}

fn build_file(env: &Env, ctx: &Path, name: &str, text: &str, extra: &[&str]) -> (bool, String) {
    std::fs::write(ctx.join(name), text).unwrap();
    let f = ctx.join(name).display().to_string();
    let c = ctx.display().to_string();
    let mut args = vec!["build", "--progress", "plain", "-f", &f];
    args.extend_from_slice(extra);
    args.push(&c);
    lighter_within(env, &args, 120)
}

#[test]
fn copy_never_reads_host_files_through_links() {
    let Some(env) = with_busybox() else { return };
    let secret = HostSecret::new();
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    std::os::unix::fs::symlink(secret.path(), c.join("abs")).unwrap();
    std::os::unix::fs::symlink(secret.climbing(), c.join("rel")).unwrap();
    std::os::unix::fs::symlink(secret.dir.path(), c.join("dirlink")).unwrap();
    std::fs::create_dir(c.join("tree")).unwrap();
    std::os::unix::fs::symlink(secret.path(), c.join("tree/l")).unwrap();
    std::fs::write(c.join("tree/plain"), "plain").unwrap();
    let named = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(secret.path(), named.path().join("link")).unwrap();
    let named_arg = format!("n={}", named.path().display());
    let (p, r) = (secret.path(), secret.climbing());

    // Context sources: named links (absolute, climbing), a link in the middle of a path, a
    // wildcard that matches links, ADD, a named context: all resolve inside their root.
    for (i, (df, extra)) in [
        ("FROM scratch\nCOPY abs /x\n", vec![]),
        ("FROM scratch\nCOPY rel /x\n", vec![]),
        ("FROM scratch\nCOPY dirlink/secret /x\n", vec![]),
        ("FROM scratch\nCOPY [\"ab*\", \"/w/\"]\n", vec![]),
        ("FROM scratch\nADD abs /x\n", vec![]),
        ("FROM scratch\nADD dirlink/secret /x\n", vec![]),
        (
            "FROM scratch\nCOPY --from=n link /x\n",
            vec!["--build-context", named_arg.as_str()],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (ok, err) = build_file(&env, c, &format!("Df{i}"), df, &extra);
        assert!(!ok && err.contains("not found"), "{df}: {err}");
        assert!(!err.contains(&secret.bytes), "{err}");
    }

    // A stage's links resolve inside the stage: to a host path it does not have (not found), or to
    // its own files (copied), through a directory link in the middle of the path too.
    let stage = format!(
        "FROM busybox AS s\nRUN mkdir /real /tree && echo mine > /real/own && ln -s {p} /k && ln -s {r} /kr \\\n\
         && ln -s /real/own /k2 && ln -s ../../../../real/own /k3 && ln -s /real /dirlink && ln -s {p} /tree/l\n"
    );
    for (i, from) in ["/k", "/kr"].iter().enumerate() {
        let df = format!("{stage}FROM scratch\nCOPY --from=s {from} /x\n");
        let (ok, err) = build_file(&env, c, &format!("Dstage{i}"), &df, &[]);
        assert!(!ok && err.contains("not found"), "{df}: {err}");
    }
    let df = format!(
        "{stage}FROM scratch\nCOPY --from=s /k2 /k3 /dirlink/own /out/\nCOPY --from=s /tree /tree\nCOPY tree /ctxtree\n"
    );
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let (ok, err) = build_file(&env, c, "Dgood", &df, &["-o", &dest, "-t", "linky:1"]);
    assert!(ok, "{err}");
    for f in ["out/k2", "out/k3", "out/own"] {
        assert_eq!(
            std::fs::read_to_string(out.path().join(f)).unwrap(),
            "mine\n",
            "{f}"
        );
    }
    // Links inside a copied directory stay links, never followed.
    for l in ["tree/l", "ctxtree/l"] {
        let md = std::fs::symlink_metadata(out.path().join(l)).unwrap();
        assert!(md.file_type().is_symlink(), "{l}");
    }
    assert_eq!(
        std::fs::read_to_string(out.path().join("ctxtree/plain")).unwrap(),
        "plain"
    );

    // An image's links resolve inside the image.
    let (ok, err) = build_file(
        &env,
        c,
        "Dimg0",
        &format!("{stage}RUN true\n"),
        &["-t", "stage-with-links:1"],
    );
    assert!(ok, "{err}");
    let (ok, err) = build_file(
        &env,
        c,
        "Dimg1",
        "FROM scratch\nCOPY --from=stage-with-links:1 /k /x\n",
        &[],
    );
    assert!(!ok && err.contains("not found"), "{err}");

    // Nothing of the host file anywhere: layers, cache records, outputs.
    assert_eq!(anywhere_in(env.root.path(), secret.bytes.as_bytes()), None);
    assert_eq!(anywhere_in(out.path(), secret.bytes.as_bytes()), None);
}

#[test]
fn from_with_variables_is_refused_at_its_line_and_never_waits() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    let stages = "FROM scratch AS a\nCOPY Dockerfile /a\nFROM scratch AS b\nCOPY Dockerfile /b\n";
    for (i, (df, extra, line)) in [
        (
            format!("{stages}FROM scratch\nENV SRC=b\nCOPY --from=$SRC / /\n"),
            vec![],
            7,
        ),
        (
            format!("{stages}FROM scratch\nARG SRC=a\nCOPY --from=$SRC / /\n"),
            vec!["--build-arg", "SRC=b"],
            7,
        ),
        (
            format!("ARG SRC=a\n{stages}FROM scratch\nCOPY --from=${{SRC}} / /\n"),
            vec![],
            7,
        ),
        (
            format!("{stages}FROM scratch\nARG SRC=a\nRUN --mount=from=$SRC true\n"),
            vec![],
            7,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (ok, err) = build_file(&env, c, &format!("Dvar{i}"), &df, &extra);
        assert!(!ok, "{df}: {err}");
        assert!(
            err.contains("variable expansion is not supported for --from")
                || err.contains("'from' doesn't support variable expansion"),
            "{df}: {err}"
        );
        assert!(err.contains(&format!(":{line}")), "names the line: {err}");
    }
    // A stage that copies from itself is a circular reference.
    let (ok, err) = build_file(
        &env,
        c,
        "Dself",
        "FROM busybox AS me\nCOPY --from=me /bin/sh /x\n",
        &[],
    );
    assert!(
        !ok && err.contains("circular dependency detected on stage: me"),
        "{err}"
    );
}

/// BuildKit's wording for a blank base name, in a build and in `build --check`.
#[test]
fn blank_base_names_are_refused() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    for (df, name) in [
        ("FROM $UNSET\nRUN true\n", "$UNSET"),
        ("ARG BASE\nFROM $BASE\nRUN true\n", "$BASE"),
    ] {
        let (ok, err) = build_file(&env, c, "Dblank", df, &[]);
        let want = format!("base name ({name}) should not be blank");
        assert!(!ok && err.contains(&want), "{df}: {err}");
        let (ok, err) = build_file(&env, c, "Dblank", df, &["--check"]);
        assert!(!ok && err.contains(&want), "--check, {df}: {err}");
    }
    let o = env.lighter(&["rmi", "nosuch:1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("daemon"), "{err}");
}

#[test]
fn copy_keeps_owners_from_stages_and_workdir_belongs_to_the_user() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    std::fs::write(c.join("f"), "ctx").unwrap();
    let df = "FROM busybox AS s\n\
              RUN mkdir -p /d/sub && echo x > /d/sub/f && echo y > /f1 && chown -R 100:200 /d /f1 \\\n\
              && echo 'app:x:1001:1002::/home/app:/bin/sh' >> /etc/passwd && mkdir -p /home/app && chown 1001:1002 /home/app\n\
              USER app\nWORKDIR /home/app/new/deeper\nRUN touch made-by-app\n\
              USER 1234\nWORKDIR /num\nUSER 1234:55\nWORKDIR /numgroup\nUSER ghost\nWORKDIR /ghost\n\
              FROM scratch\nCOPY --from=s /d /d2\nCOPY --from=s /f1 /f1\nCOPY --from=s /home/app /app\n\
              COPY --from=s /num /num\nCOPY --from=s /numgroup /numgroup\nCOPY f /ctx\nCOPY --chown=7:8 --from=s /f1 /chowned\n\
              EXPOSE 8000-8002 9000-9001/udp 80\n";
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let (ok, err) = build_file(
        &env,
        c,
        "Downers",
        df,
        &["-o", &dest, "-o", "type=image", "-t", "owners:1"],
    );
    assert!(ok, "{err}");
    let t = tree(out.path());
    let owner = |p: &str| t.get(p).map(|v| v.rsplit(' ').next().unwrap().to_string());
    for (p, want) in [
        ("d2/sub", "100:200"),
        ("d2/sub/f", "100:200"),
        ("f1", "100:200"),
        ("app/new", "1001:1002"),
        ("app/new/deeper", "1001:1002"),
        ("app/new/deeper/made-by-app", "1001:1002"),
        ("ctx", "0:0"),
        ("chowned", "7:8"),
    ] {
        assert_eq!(owner(p).as_deref(), Some(want), "{p}: {t:?}");
    }
    let cfg: serde_json::Value =
        serde_json::from_slice(&env.lighter(&["inspect", "owners:1"]).stdout).unwrap();
    let ports: Vec<&str> = cfg[0]["Config"]["ExposedPorts"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        ports,
        ["80/tcp", "8000/tcp", "8001/tcp", "8002/tcp", "9000/udp", "9001/udp"]
    );
    // WORKDIR under a numeric USER: that uid and gid; with a group: that gid; a user that
    // /etc/passwd does not know: root's, as BuildKit (checked in the stage itself).
    let (ok, err) = build_file(
        &env,
        c,
        "Downers2",
        &format!(
            "{}USER root\nRUN stat -c '%n %u:%g' /num /numgroup /ghost > /owners\n",
            df.split("FROM scratch").next().unwrap()
        ),
        &["-o", &dest],
    );
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(out.path().join("owners")).unwrap(),
        "/num 1234:1234\n/numgroup 1234:55\n/ghost 0:0\n"
    );
}

#[test]
fn wildcards_archives_proxies_and_mount_targets_as_buildkit() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(
        c,
        &[
            ("foo1.go", "package foo1\n"),
            ("a/x", "ax\n"),
            ("b/y", "by\n"),
        ],
    );
    tar_dirs(c, &[("one.tar", "a"), ("two.tar", "b")]);
    let df = "FROM busybox AS s\nRUN mkdir /m && echo mounted > /m/file\n\
              FROM busybox\nCOPY f*.go /foo2.go\nADD *.tar /unpacked\n\
              RUN echo \"$http_proxy|$HTTP_PROXY|$no_proxy|$NO_PROXY\" > /proxies\n\
              WORKDIR /w\nRUN --mount=from=s,source=/m cat /w/file > /seen\n";
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let proxy = [
        "--build-arg",
        "HTTP_PROXY=http://p:3128",
        "--build-arg",
        "no_proxy=local",
    ];
    let mut args = vec!["-o", dest.as_str(), "-o", "type=image", "-t", "bk:1"];
    args.extend(proxy);
    let (ok, err) = build_file(&env, c, "Dwild", df, &args);
    assert!(ok, "{err}");
    let read = |p: &str| std::fs::read_to_string(out.path().join(p)).unwrap();
    assert_eq!(read("foo2.go"), "package foo1\n");
    assert_eq!(
        (read("unpacked/a/x"), read("unpacked/b/y")),
        ("ax\n".into(), "by\n".into())
    );
    assert_eq!(read("proxies"), "http://p:3128|http://p:3128|local|local\n");
    assert_eq!(read("seen"), "mounted\n");
    assert!(
        !out.path().join("w/file").exists(),
        "the mount is not in the layer"
    );
    // The proxies are in neither the config nor the history, nor the cache key.
    let inspect = String::from_utf8_lossy(&env.lighter(&["inspect", "bk:1"]).stdout).into_owned();
    let history = String::from_utf8_lossy(&env.lighter(&["history", "--no-trunc", "bk:1"]).stdout)
        .into_owned();
    assert!(
        !inspect.contains("p:3128") && !history.contains("p:3128"),
        "{inspect}\n{history}"
    );
    let (ok, err) = build_file(
        &env,
        c,
        "Dwild",
        df,
        &["--build-arg", "http_proxy=http://other:1"],
    );
    assert!(ok, "{err}");
    assert!(
        !err.contains("changed:"),
        "a proxy change is not a cache miss: {err}"
    );
    // A mount without a target under WORKDIR / is BuildKit's "invalid mount target".
    let (ok, err) = build_file(
        &env,
        c,
        "Dmount",
        "FROM busybox AS s\nFROM busybox\nRUN --mount=from=s,source=/bin true\n",
        &[],
    );
    assert!(!ok && err.contains("invalid mount target \"/\""), "{err}");
}

/// Review findings: a heredoc's name is a path inside the heredoc's own directory (it wrote to
/// the host before), and a FIFO in the context is never opened for reading (ADD's archive check
/// used to block on it).
#[test]
fn heredoc_names_and_fifos_stay_harmless() {
    let Some(env) = with_busybox() else { return };
    let target = tempfile::tempdir().unwrap();
    let victim = target.path().join("written-by-a-heredoc");
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    let name = victim.display().to_string();
    let df = format!("FROM busybox\nCOPY <<{name} /x/\nhello\n{name}\n");
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let (ok, err) = build_file(&env, c, "Dheredoc", &df, &["-o", &dest]);
    assert!(ok, "{err}");
    assert!(
        !victim.exists(),
        "the heredoc was written outside its directory"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("x/written-by-a-heredoc")).unwrap(),
        "hello\n"
    );
    let st = Command::new("mkfifo").arg(c.join("pipe")).status().unwrap();
    assert!(st.success());
    // Special files are skipped, as the copy always did; the point is that nothing blocks (the
    // deadline of `build_file`) and nothing is read from the FIFO.
    for df in [
        "FROM busybox\nADD pipe /x\n",
        "FROM busybox\nCOPY pipe /x\n",
    ] {
        let out = tempfile::tempdir().unwrap();
        let dest = format!("type=local,dest={}", out.path().display());
        let (ok, err) = build_file(&env, c, "Dfifo", df, &["-o", &dest]);
        assert!(ok, "{df}: {err}");
        assert!(!out.path().join("x").exists(), "{df}");
    }
}

/// Review finding: cache-mount locks were taken mount by mount, so two mounts of one cache in a
/// step waited for each other, and a step holding a lock could wait for a stage that wanted it.
#[test]
fn cache_mount_locks_never_wait_for_each_other() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    let df = "FROM busybox AS b\nRUN sleep 1\nRUN --mount=type=cache,id=c,sharing=locked,target=/c touch /c/from-b\n\
              FROM busybox\nRUN --mount=type=cache,id=c,sharing=locked,target=/a --mount=type=cache,id=c,sharing=locked,target=/b ls /a /b\n\
              RUN --mount=type=cache,id=c,sharing=locked,target=/c --mount=type=bind,from=b,source=/bin,target=/bb ls /c\n";
    let (ok, err) = build_file(&env, c, "Dlocks", df, &["--no-cache"]);
    assert!(ok, "{err}");
}

/// A bind mount is checked against the identity its source had when it was resolved inside its
/// root: the sandbox refuses to run the step when something else got mounted (a link swapped in
/// between resolution and mount). Driven through the executor directly, with the wrong identity.
#[test]
fn bind_mounts_must_be_what_was_resolved() {
    if !is_root() {
        return;
    }
    let Some(bases) = bases() else { return };
    let rootfs = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .args(["-xf", bases.join("busybox.tar").to_str().unwrap(), "-C"])
        .arg(rootfs.path())
        .status()
        .unwrap();
    assert!(st.success());
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), "bound").unwrap();
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(src.path()).unwrap();
    let spec = |identity: (u64, u64)| lighter_sandbox::RunSpec {
        rootfs: lighter_sandbox::Rootfs::Dir(rootfs.path().to_path_buf()),
        args: vec!["/bin/cat".into(), "/m/f".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        user: String::new(),
        hostname: "t".into(),
        network: lighter_sandbox::Network::Host,
        mounts: vec![lighter_sandbox::Mount {
            target: "/m".into(),
            kind: lighter_sandbox::MountKind::Bind {
                source: src.path().to_path_buf(),
                readonly: true,
                identity: Some(identity),
            },
        }],
        hosts: String::new(),
        resolv_conf: None,
        shm_size: None,
        ulimits: vec![],
        privileged: false,
    };
    let exe = lighter_sandbox::Executor::with_exe(&bin());
    let mut out = String::new();
    let ok = exe
        .run(&spec((md.dev(), md.ino())), &mut |l| out.push_str(l))
        .unwrap();
    assert_eq!((ok.code, out.as_str()), (0, "bound"));
    let e = exe
        .run(&spec((md.dev(), md.ino() + 1)), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("changed while it was being mounted"), "{e}");
}

/// Review finding: a bind mount of the context showed what `.dockerignore` excludes (BuildKit
/// mounts the context it was sent, already filtered), so a RUN could copy an ignored `.env`.
#[test]
fn context_bind_mounts_leave_ignored_files_out() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(
        c,
        &[
            ("src/main.js", "main"),
            (".env", "API_KEY=hunter2"),
            ("node_modules/dep/index.js", "dep"),
            (".dockerignore", ".env\nnode_modules\n"),
        ],
    );
    std::fs::write(c.join("run.sh"), "#!/bin/sh\necho ran\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(c.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let df = "FROM busybox\nRUN --mount=type=bind,target=/ctx sh -c 'cd /ctx && find . | sort > /seen; cat .env >> /seen 2>/dev/null; true'\n\
              RUN --mount=type=bind,target=/ctx,rw sh -c 'touch /ctx/new && ls -a /ctx > /seen-rw'\n\
              RUN --mount=type=bind,source=run.sh,target=/r.sh,rw /r.sh > /ran\n";
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let (ok, err) = build_file(&env, c, "Dbind", df, &["-o", &dest]);
    assert!(ok, "{err}");
    let seen = std::fs::read_to_string(out.path().join("seen")).unwrap();
    assert!(seen.contains("./src/main.js"), "{seen}");
    assert!(
        !seen.contains(".env") && !seen.contains("node_modules") && !seen.contains("hunter2"),
        "{seen}"
    );
    // A writable mount is a copy of the kept entries: writes stay out of the context.
    let rw = std::fs::read_to_string(out.path().join("seen-rw")).unwrap();
    assert!(rw.contains("new") && !rw.contains(".env"), "{rw}");
    assert!(
        !c.join("new").exists(),
        "a writable bind mount wrote into the context"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("ran")).unwrap(),
        "ran\n"
    );
}

/// A device node that arrives in a layer cannot be opened from RUN (the rootfs is nodev, as
/// docker's device cgroup refuses it); the /dev nodes docker provides still work.
#[test]
fn device_nodes_from_layers_cannot_be_opened() {
    let Some(env) = with_busybox() else { return };
    let work = tempfile::tempdir().unwrap();
    let layer = work.path().join("nodes.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&layer).unwrap());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Char);
        h.set_mode(0o666);
        h.set_device_major(1).unwrap();
        h.set_device_minor(5).unwrap(); // /dev/zero's numbers
        h.set_size(0);
        b.append_data(&mut h, "nodes/zero", &[][..]).unwrap();
        b.finish().unwrap();
    }
    let ctx = work.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::copy(&layer, ctx.join("nodes.tar")).unwrap();
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nADD nodes.tar /\n\
             RUN ls -l /nodes/zero && if head -c 4 /nodes/zero >/dev/null; then echo OPENED; else echo REFUSED; fi\n\
             RUN head -c 4 /dev/zero | wc -c && test -L /dev/core && ls /dev/fd /dev/pts >/dev/null && echo DEV-OK\n",
        )],
    );
    let (ok, err, _) = env.build(&ctx, &["--no-cache"]);
    assert!(ok, "{err}");
    // The step's output lines (its title has the same words).
    let said = |w: &str| {
        err.lines()
            .any(|l| l.ends_with(&format!(" {w}")) && !l.contains("RUN"))
    };
    assert!(said("REFUSED") && !said("OPENED"), "{err}");
    assert!(err.contains("DEV-OK"), "{err}");
}
