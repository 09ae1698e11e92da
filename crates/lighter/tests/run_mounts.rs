//! End-to-end `RUN --mount` builds with the real binary, a temp store and a busybox base: SSH
//! agent forwarding, cache mounts (sharing modes, seeding from a stage) and mount sources that
//! must stay inside their stage.

mod common;

use common::*;

/// `RUN --mount=type=ssh` with `--ssh default`: the host agent's socket (same inode) is at the mount
/// target with SSH_AUTH_SOCK pointing at it, for that RUN only; nothing of it reaches the image. A
/// required agent that was not given is a clear error.
#[test]
fn ssh_mount_forwards_the_agent_socket() {
    let Some(env) = with_busybox() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo \"$SSH_AUTH_SOCK $(stat -c '%a %u %g' $SSH_AUTH_SOCK)\" > /agent\nRUN echo \"${SSH_AUTH_SOCK:-unset}\" > /after\n\
             USER node\nRUN --mount=type=ssh,uid=1000,gid=1000,mode=0660,target=/home/agent.sock test -S /home/agent.sock && stat -c '%a %u %g' /home/agent.sock > /tmp/as-node\n",
        )],
    );
    let out = tempfile::tempdir().unwrap();
    let o = env
        .cmd()
        .env("SSH_AUTH_SOCK", &sock)
        .args([
            "build",
            "--progress",
            "plain",
            "--ssh",
            "default",
            "-t",
            "ssh:1",
            "-o",
        ])
        .arg(format!("type=local,dest={}", out.path().display()))
        .args(["-o", "type=image"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let agent = std::fs::read_to_string(out.path().join("agent")).unwrap();
    // A socket of the mount's own, relaying to the host's agent (the relay is tested in the engine
    // and end to end with ssh-add in tests/ssh_keys.rs): BuildKit's defaults, root and 0600, or the
    // mount's uid, gid and mode.
    assert_eq!(
        agent.trim(),
        "/run/buildkit/ssh_agent.0 600 0 0",
        "the default owner and mode"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("tmp/as-node")).unwrap(),
        "660 1000 1000\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("after")).unwrap(),
        "unset\n",
        "only for that RUN"
    );
    assert!(
        !out.path().join("run/buildkit/ssh_agent.0").exists(),
        "the socket is not in the image"
    );
    assert!(
        !out.path().join("home/agent.sock").exists(),
        "nor the one at a given target"
    );
    let cfg = env.lighter(&["inspect", "ssh:1"]);
    assert!(
        !String::from_utf8_lossy(&cfg.stdout).contains("SSH_AUTH_SOCK="),
        "not in the config"
    );
    // Not required by default (as BuildKit): without --ssh the mount is left out. With required=true
    // the build fails and says how to fix it.
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=ssh echo \"${SSH_AUTH_SOCK:-none}\" > /s\n",
        )],
    );
    let (ok, err, out) = env.build_local(ctx.path(), &[]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(out.path().join("s")).unwrap(),
        "none\n"
    );
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=ssh,required=true true\n",
        )],
    );
    let (ok, err, _) = env.build(ctx.path(), &[]);
    assert!(!ok && err.contains("pass --ssh default"), "{err}");
    // A path that is not a socket is refused up front.
    let (ok, err, _) = env.build(
        ctx.path(),
        &[
            "--ssh",
            &format!("default={}", ctx.path().join("Dockerfile").display()),
        ],
    );
    assert!(!ok && err.contains("not an SSH agent socket"), "{err}");
}

/// Cache mount sharing: `locked` runs two concurrent builds' steps one after the other on the same
/// cache, `private` gives the second a fresh empty cache, `shared` lets them run together.
#[test]
fn cache_mount_sharing_modes() {
    let Some(env) = with_busybox() else { return };
    let run = |sharing: &str| -> Vec<(String, u64, u64)> {
        let id = format!("c-{sharing}");
        let ctx = tempfile::tempdir().unwrap();
        write(
            ctx.path(),
            &[(
                "Dockerfile",
                &format!("FROM busybox\nARG N\nRUN --mount=type=cache,target=/c,id={id},sharing={sharing} echo \"$N $(cut -d' ' -f1 /proc/uptime | tr -d .)\" >> /c/log && sleep 2 && echo \"$N $(cut -d' ' -f1 /proc/uptime | tr -d .)\" >> /c/log\n"),
            )],
        );
        let children: Vec<_> = ["a", "b"]
            .iter()
            .map(|n| {
                env.cmd()
                    .args(["build", "-q", "--build-arg", &format!("N={n}")])
                    .arg(ctx.path())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "{sharing}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        // Read the shared cache back.
        write(
            ctx.path(),
            &[(
                "Dockerfile",
                &format!(
                    "FROM busybox\nRUN --mount=type=cache,target=/c,id={id} cat /c/log > /log\n"
                ),
            )],
        );
        let (ok, err, out) = env.build_local(ctx.path(), &["--no-cache"]);
        assert!(ok, "{err}");
        let log = std::fs::read_to_string(out.path().join("log")).unwrap();
        let mut spans: Vec<(String, u64, u64)> = Vec::new();
        for l in log.lines() {
            let (n, t) = l.split_once(' ').unwrap();
            let t: u64 = t.parse().unwrap();
            match spans.iter_mut().find(|s| s.0 == n) {
                Some(s) => s.2 = t,
                None => spans.push((n.to_string(), t, 0)),
            }
        }
        spans
    };
    let overlap = |s: &[(String, u64, u64)]| s.len() == 2 && s[0].1 < s[1].2 && s[1].1 < s[0].2;
    let locked = run("locked");
    assert_eq!(locked.len(), 2, "{locked:?}");
    assert!(!overlap(&locked), "locked: one after the other: {locked:?}");
    let private = run("private");
    assert_eq!(
        private.len(),
        1,
        "private: the second build wrote to its own cache: {private:?}"
    );
    let shared = run("shared");
    assert!(overlap(&shared), "shared: together: {shared:?}");
}

/// Cache mount `from=`/`source=`: the cache starts as a copy of that directory of another stage, keeps
/// what the steps write across builds, starts over when the seeding stage changes, and a source that
/// is not a directory is an error naming it.
#[test]
fn cache_mount_from_stage_seeds_the_cache() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    let df = |seed: &str| {
        format!(
            "FROM busybox AS seed\nRUN mkdir -p /seed/sub && echo {seed} > /seed/sub/f\n\
             FROM busybox\nARG N\nRUN --mount=type=cache,target=/c,id=seeded,from=seed,source=/seed/sub cat /c/f > /out && echo \"run $N\" >> /c/f\n"
        )
    };
    let build = |seed: &str, n: &str| -> String {
        write(ctx.path(), &[("Dockerfile", &df(seed))]);
        let (ok, err, out) = env.build_local(ctx.path(), &["--build-arg", &format!("N={n}")]);
        assert!(ok, "{err}");
        std::fs::read_to_string(out.path().join("out")).unwrap()
    };
    assert_eq!(build("hello", "1"), "hello\n");
    // The same cache, as the first build left it.
    assert_eq!(build("hello", "2"), "hello\nrun 1\n");
    // A changed seed is a new cache.
    assert_eq!(build("other", "3"), "other\n");
    assert_eq!(build("hello", "4"), "hello\nrun 1\nrun 2\n");
    // The seeding stage's own files are untouched by the cache's writes.
    write(ctx.path(), &[("Dockerfile", "FROM busybox AS seed\nRUN mkdir -p /seed/sub && echo hello > /seed/sub/f\nFROM seed\nRUN cat /seed/sub/f > /out\n")]);
    let (ok, err, out) = env.build_local(ctx.path(), &[]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(out.path().join("out")).unwrap(),
        "hello\n"
    );
    // source= must be a directory of the stage.
    write(ctx.path(), &[("Dockerfile", "FROM busybox AS seed\nRUN echo x > /file\nFROM busybox\nRUN --mount=type=cache,target=/c,from=seed,source=/file true\n")]);
    let (ok, err, _) = env.build(ctx.path(), &[]);
    assert!(
        !ok && err.contains("source=/file: not a directory in seed")
            && err.contains("Dockerfile:4"),
        "{err}"
    );
}

/// Regression: a mount source that goes through a symlink in the stage (`/seed -> /`) resolves inside
/// the stage, never on the host: the cache is seeded with, and the bind mount shows, the stage's own
/// /etc (busybox: passwd and group), not the host's.
#[test]
fn mount_sources_through_symlinks_stay_inside_the_stage() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox AS seed\nRUN ln -s / /seed && ln -s /etc /etclink\n\
             FROM busybox\n\
             RUN --mount=type=cache,target=/c,id=escape,from=seed,source=/seed/etc ls /c > /cache-ls\n\
             RUN --mount=type=bind,from=seed,source=/seed/etc,target=/m ls /m > /bind-ls\n\
             RUN --mount=type=bind,from=seed,source=/etclink,target=/m,rw ls /m > /bind-rw-ls\n",
        )],
    );
    let (ok, err, out) = env.build_local(ctx.path(), &[]);
    assert!(ok, "{err}");
    for f in ["cache-ls", "bind-ls", "bind-rw-ls"] {
        let ls = std::fs::read_to_string(out.path().join(f)).unwrap();
        assert_eq!(ls, "group\npasswd\n", "{f}: the stage's /etc only");
    }
}
