//! The RUN sandbox against hostile images and steps: kernel interfaces read-only or masked as
//! docker has them, and rootfs symlinks that must never lead a mount or a mountpoint onto the host.

mod common;

use common::*;

#[test]
fn sandbox_kernel_interfaces_are_read_only_or_masked() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    // Every mount at or below /sys must be read-only (the host's cgroup hierarchies were left
    // writable by a remount that only changed the top mount), writes there must fail, /proc/sys
    // is read-only (writing a sysctl, here its own value, is refused), /proc/kcore and the like
    // are masked by /dev/null as docker masks them, and the bounding set is docker's default capability set.
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN mkdir /r && (awk '$5 ~ \"^/sys\" && $6 !~ /^ro/' /proc/self/mountinfo | wc -l > /r/rw) \\\n             && (awk '$5 ~ \"^/sys\"' /proc/self/mountinfo | wc -l > /r/all) \\\n             && (mkdir /sys/fs/cgroup/lighter-test 2>/dev/null && echo written > /r/write || echo refused > /r/write) \\\n             && (cat /proc/sys/kernel/printk_ratelimit > /proc/sys/kernel/printk_ratelimit 2>/dev/null && echo written > /r/sysctl || echo refused > /r/sysctl) \\\n\
             && (for f in /proc/kcore /proc/keys /proc/timer_list; do [ -e $f ] && ls -l $f | cut -c1; done | sort -u > /r/masked) \\\n\
             && grep CapBnd /proc/self/status | awk '{print $2}' > /r/capbnd\n",
        )],
    );
    let (ok, err, out) = env.build_local(ctx.path(), &[]);
    assert!(ok, "{err}");
    let read = |f: &str| {
        std::fs::read_to_string(out.path().join("r").join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("rw"), "0", "a writable mount under /sys");
    assert_ne!(read("all"), "0", "/sys is mounted");
    assert_eq!(read("write"), "refused");
    assert_eq!(read("capbnd"), "00000000a80425fb");
    assert_eq!(read("sysctl"), "refused", "/proc/sys is read-only");
    // Which of these a kernel has varies (this one has no /proc/kcore); all present are /dev/null.
    assert_eq!(
        read("masked"),
        "c",
        "/proc/kcore, keys and timer_list are masked"
    );
}

/// An image whose /proc is a symlink could have procfs mounted where the masks of /proc/sys and
/// the like do not reach (`/proc -> dev/q/t`, with /dev's tmpfs then hiding `q`): the sandbox
/// refuses to start, as runc does.
#[test]
fn a_symlinked_proc_in_the_image_is_refused() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    let rootfs = ctx.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("z/t")).unwrap();
    std::os::unix::fs::symlink("z/t", rootfs.join("proc")).unwrap();
    let tar = ctx.path().join("evil.tar");
    let st = std::process::Command::new("tar")
        .args([
            "-cf",
            tar.to_str().unwrap(),
            "-C",
            rootfs.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let o = env.lighter(&["import", tar.to_str().unwrap(), "evil-proc:1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    write(
        ctx.path(),
        &[("Dockerfile", "FROM evil-proc:1\nRUN [\"/x\"]\n")],
    );
    let (ok, err, _) = env.build(
        ctx.path(),
        &["-f", ctx.path().join("Dockerfile").to_str().unwrap()],
    );
    assert!(!ok, "{err}");
    assert!(
        err.contains("/proc in the image is not an ordinary directory"),
        "{err}"
    );
}

/// Mountpoints are made inside the rootfs even when the image's symlinks point at absolute host
/// paths: a link `/x -> <host dir>` and a mount under `/x` used to create the mountpoint in the
/// host directory (the sandbox init runs as host root before its chroot).
#[test]
fn mountpoints_behind_symlinks_stay_in_the_rootfs() {
    let Some(env) = with_busybox() else { return };
    let host = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    let h = host.path().display();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\nRUN ln -s {h} /x && mkdir -p /etc2 && ln -s {h}/etc /etc3\n\
                 RUN --mount=type=tmpfs,target=/x/evil --mount=type=cache,target=/etc3/deep/cache ls -d /x/evil {h}/evil {h}/etc/deep/cache > /seen\n"
            ),
        )],
    );
    let (ok, err, out) = env.build_local(ctx.path(), &[]);
    assert!(ok, "{err}");
    let host_entries: Vec<_> = std::fs::read_dir(host.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        host_entries.is_empty(),
        "created on the host: {host_entries:?}"
    );
    // Inside the step the mounts were where the links lead within the rootfs, and none of the
    // mountpoints the sandbox made is left in the image.
    let seen = std::fs::read_to_string(out.path().join("seen")).unwrap();
    assert_eq!(seen.lines().count(), 3, "{seen}");
    let inner = out.path().join(host.path().strip_prefix("/").unwrap());
    assert!(
        !inner.exists(),
        "mountpoints (or the directories made to hold them) left in the layer"
    );
}

/// Docker's seccomp refusals that the capability set does not cover: a step cannot make a user
/// namespace (which would give it every capability inside), and `no_new_privs` stays off so setuid
/// programs keep working, as under docker.
#[test]
fn seccomp_refuses_new_namespaces_without_no_new_privs() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN mkdir /r && (unshare -U true 2>/dev/null && echo allowed || echo refused) > /r/userns \\\n\
             && (unshare -m true 2>/dev/null && echo allowed || echo refused) > /r/mountns \\\n\
             && grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\\t' > /r/status \\\n\
             && (sh -c 'echo threads and forks work') > /r/fork\n",
        )],
    );
    let (ok, err, out) = env.build_local(ctx.path(), &[]);
    assert!(ok, "{err}");
    let read = |f: &str| std::fs::read_to_string(out.path().join("r").join(f)).unwrap();
    assert_eq!(read("userns"), "refused\n");
    assert_eq!(read("mountns"), "refused\n");
    assert_eq!(read("status"), "NoNewPrivs:0\nSeccomp:2\n");
    assert_eq!(read("fork"), "threads and forks work\n");
}

/// The init reports created mountpoints and setup errors on a channel of its own: a step that
/// prints the same lines can neither make lighter (host root) delete a path of its choosing, in
/// the layer or on the host, nor pass its failure off as a setup error.
#[test]
fn a_step_cannot_forge_the_inits_reports() {
    let Some(env) = with_busybox() else { return };
    let host = tempfile::tempdir().unwrap();
    let victim = host.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\nRUN mkdir /keepme && printf '\\001lighter-created:keepme\\n\\001lighter-created:../../../../../..{v}\\n'\n",
                v = victim.display()
            ),
        )],
    );
    let (ok, err, out) = env.build_local(ctx.path(), &[]);
    assert!(ok, "{err}");
    assert!(
        out.path().join("keepme").is_dir(),
        "the step's own empty directory stays in its layer"
    );
    assert!(
        victim.is_dir(),
        "a host directory named by the step is untouched"
    );
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo 'lighter-sandbox: forged setup error'; exit 125\n",
        )],
    );
    let (ok, err, _) = env.build(ctx.path(), &[]);
    assert!(!ok);
    assert!(
        err.contains("exit code: 125") && !err.contains("sandbox setup failed"),
        "{err}"
    );
}

/// Inheritable and ambient capabilities outlive an exec whatever the bounding set says: a lighter
/// started with CAP_SYS_ADMIN inheritable and ambient (as `setpriv` gives it here) must still run
/// the step with docker's capability set and nothing inheritable or ambient.
#[test]
fn inherited_capabilities_do_not_reach_the_step() {
    let Some(env) = with_busybox() else { return };
    if std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_err()
    {
        missing_peer(&format!("setpriv (util-linux) is not installed"));
        return;
    }
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN grep -E '^Cap(Inh|Eff|Amb):' /proc/self/status | tr -d '\\t' > /caps\n",
        )],
    );
    let out = tempfile::tempdir().unwrap();
    let o = std::process::Command::new("setpriv")
        .args(["--inh-caps", "+sys_admin", "--ambient-caps", "+sys_admin"])
        .arg(bin())
        .env(
            "LIGHTER_ROOT",
            env.cmd()
                .get_envs()
                .find(|(k, _)| *k == "LIGHTER_ROOT")
                .and_then(|(_, v)| v)
                .unwrap(),
        )
        .args(["build", "--progress", "plain", "-o"])
        .arg(format!("type=local,dest={}", out.path().display()))
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(out.path().join("caps")).unwrap(),
        "CapInh:0000000000000000\nCapEff:00000000a80425fb\nCapAmb:0000000000000000\n"
    );
}

/// `RUN --security=insecure` is BuildKit's entitlement: refused unless the build grants it with
/// `--allow security.insecure`, then that step (and only it) runs with every capability and no
/// seccomp filter, and its cache key differs from the sandboxed step's.
#[test]
fn security_insecure_needs_the_entitlement() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --security=insecure grep -E '^(CapEff|Seccomp):' /proc/self/status | tr -d '\\t' > /insecure\n\
             RUN grep -E '^(CapEff|Seccomp):' /proc/self/status | tr -d '\\t' > /sandboxed\n",
        )],
    );
    let (ok, err, _) = env.build(ctx.path(), &[]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("Dockerfile:2") && err.contains("--allow security.insecure"),
        "{err}"
    );
    let (ok, err, _) = env.build(ctx.path(), &["--allow", "security.bogus"]);
    assert!(!ok && err.contains("unknown entitlement"), "{err}");
    let (ok, err, out) = env.build_local(ctx.path(), &["--allow", "security.insecure"]);
    assert!(ok, "{err}");
    let read = |f: &str| std::fs::read_to_string(out.path().join(f)).unwrap();
    assert_eq!(read("sandboxed"), "CapEff:00000000a80425fb\nSeccomp:2\n");
    let insecure = read("insecure");
    assert!(
        insecure.ends_with("Seccomp:0\n") && !insecure.contains("a80425fb"),
        "{insecure}"
    );
    let eff = u64::from_str_radix(
        insecure
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("CapEff:"),
        16,
    )
    .unwrap();
    assert!(
        eff & (1 << 21) != 0,
        "CAP_SYS_ADMIN in the insecure step: {insecure}"
    );
}
