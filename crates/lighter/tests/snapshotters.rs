//! The snapshotter suite: every case builds with the overlay snapshotter and with the copy snapshotter
//! (`LIGHTER_SNAPSHOTTER`), and both must give the same image: the same flattened tree (path, type,
//! mode, owner, content, link target) and, where overlayfs writes no opaque directory, the same layer
//! bytes (diffIDs, with `SOURCE_DATE_EPOCH` clamping the mtimes of files the steps write).
mod common;
use common::*;

/// (name, Dockerfile, whether the layers must be byte-identical).
const CASES: &[(&str, &str, bool)] = &[
    (
        "add-modify-delete",
        "FROM busybox\n\
         RUN mkdir -p /data/keep /data/gone/deep && echo a > /data/keep/a && echo x > /data/gone/deep/x && echo old > /data/mod && ln -s keep/a /data/link\n\
         RUN echo new >> /data/mod && rm -rf /data/gone && echo b > /data/keep/b && rm /bin/vi && ln -sf mod /data/link\n\
         RUN chmod 0700 /data/keep && chown 1000:1000 /data/mod && ln /data/keep/a /data/hard && mkfifo /data/fifo\n\
         RUN rm /data/hard && ln /bin/busybox /data/bb\n",
        true,
    ),
    (
        "mountpoints-and-workdir",
        "FROM busybox\n\
         WORKDIR /app/sub\n\
         RUN --mount=type=tmpfs,target=/scratch --mount=type=secret,id=s,required=false echo hi > out\n\
         COPY f /app/f\n\
         RUN --mount=type=cache,target=/tmp/cache touch /tmp/cache/x && cat /app/f > /app/g\n",
        true,
    ),
    (
        // overlayfs makes /data opaque here; the copy snapshotter writes a whiteout per entry instead.
        "dir-replaced",
        "FROM busybox\n\
         RUN mkdir -p /data/a /data/b && echo 1 > /data/a/f && echo 2 > /data/b/f && echo f > /swap\n\
         RUN rm -rf /data && mkdir -p /data/b && echo 3 > /data/b/g && rm /swap && mkdir /swap && echo in > /swap/x\n",
        false,
    ),
    (
        "multi-stage",
        "FROM busybox AS build\n\
         RUN mkdir /out && echo built > /out/app && chmod 0755 /out/app\n\
         RUN rm /etc/group && echo extra > /etc/extra\n\
         FROM busybox\n\
         COPY --from=build /out/app /usr/local/bin/app\n\
         COPY --from=build /etc/ /etc-from-build/\n\
         RUN --mount=type=bind,from=build,source=/out,target=/mnt cp /mnt/app /app2\n",
        true,
    ),
];

fn build(
    env: &Env,
    ctx: &std::path::Path,
    snapshotter: &str,
    tag: &str,
) -> (std::collections::BTreeMap<String, String>, Vec<String>) {
    let out = tempfile::tempdir().unwrap();
    let o = env
        .cmd()
        .env("LIGHTER_SNAPSHOTTER", snapshotter)
        .env("SOURCE_DATE_EPOCH", "1000000000")
        .args(["build", "--no-cache", "--progress", "plain", "-t", tag])
        .arg(ctx)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{snapshotter}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = env
        .cmd()
        .env("LIGHTER_SNAPSHOTTER", snapshotter)
        .args([
            "build",
            "--progress",
            "plain",
            "-o",
            &format!("type=local,dest={}", out.path().display()),
        ])
        .arg(ctx)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{snapshotter}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = env.lighter(&["inspect", tag]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    let diff_ids: Vec<String> = v
        .pointer("/RootFS/Layers")
        .or_else(|| v.pointer("/rootfs/diff_ids"))
        .and_then(|l| l.as_array())
        .unwrap_or_else(|| panic!("no layers in inspect output: {v}"))
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    (tree(out.path()), diff_ids)
}

#[test]
fn overlay_and_copy_snapshotters_build_the_same_images() {
    let Some(env) = with_busybox() else { return };
    for (name, dockerfile, same_bytes) in CASES {
        let ctx = tempfile::tempdir().unwrap();
        write(
            ctx.path(),
            &[("Dockerfile", dockerfile), ("f", "from the context\n")],
        );
        let (overlay_tree, overlay_layers) =
            build(&env, ctx.path(), "overlay", &format!("{name}:overlay"));
        let (copy_tree, copy_layers) = build(&env, ctx.path(), "copy", &format!("{name}:copy"));
        assert!(
            overlay_tree.len() > 100,
            "{name}: the busybox tree is there: {}",
            overlay_tree.len()
        );
        let diff: Vec<_> = overlay_tree
            .iter()
            .filter(|(k, v)| copy_tree.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: overlay {v} / copy {:?}", copy_tree.get(k)))
            .chain(
                copy_tree
                    .keys()
                    .filter(|k| !overlay_tree.contains_key(*k))
                    .map(|k| format!("{k}: only with copy")),
            )
            .collect();
        assert!(
            diff.is_empty(),
            "{name}: trees differ:\n{}",
            diff.join("\n")
        );
        assert_eq!(
            overlay_layers.len(),
            copy_layers.len(),
            "{name}: layer count"
        );
        if *same_bytes {
            assert_eq!(overlay_layers, copy_layers, "{name}: layer diffIDs");
        } else {
            assert_eq!(
                overlay_layers[..2],
                copy_layers[..2],
                "{name}: the layers before the replaced directory"
            );
        }
    }
    // The case trees hold what the steps did.
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), &[("Dockerfile", CASES[0].1)]);
    let (t, _) = build(&env, ctx.path(), "copy", "check:copy");
    assert!(
        !t.contains_key("data/gone") && !t.contains_key("bin/vi"),
        "deletions applied"
    );
    assert!(
        t["data/keep"].starts_with("dir 700 0:0"),
        "{}",
        t["data/keep"]
    );
    assert!(t["data/mod"].ends_with(" 1000:1000"), "{}", t["data/mod"]);
    assert_eq!(t["data/link"], "link:mod 0 0:0");
    // `lighter run` works over the copy snapshotter too, and its changes are dropped.
    let o = env
        .cmd()
        .env("LIGHTER_SNAPSHOTTER", "copy")
        .args([
            "run",
            "--rm",
            "check:copy",
            "sh",
            "-c",
            "cat /data/mod && echo scratch > /data/mod",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "old\nnew\n");
    let o = env
        .cmd()
        .env("LIGHTER_SNAPSHOTTER", "copy")
        .args(["run", "--rm", "check:copy", "cat", "/data/mod"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "old\nnew\n");
    // A wrong value is an error that says what is expected.
    let o = env
        .cmd()
        .env("LIGHTER_SNAPSHOTTER", "zfs")
        .args(["build", "--no-cache"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr)
                .contains("LIGHTER_SNAPSHOTTER=zfs: expected overlay, copy or auto"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
