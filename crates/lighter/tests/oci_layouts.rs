//! OCI image layouts: ours pass real readers (skopeo, umoci); peers' layouts are read and verified.

mod common;

use common::*;
use std::process::Command;

fn tool(name: &str) -> bool {
    let ok = Command::new(name)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        missing_peer(&format!(
            "{name} is not installed (scripts/setup-peers.sh installs it)"
        ));
    }
    ok
}

#[test]
fn our_oci_layout_passes_skopeo_and_umoci() {
    let Some(env) = with_busybox() else { return };
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("f", "x\n"),
            (
                "Dockerfile",
                "FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n",
            ),
        ],
    );
    let (ok, err, _) = env.build(ctx.path(), &["-t", "layout:1"]);
    assert!(ok, "{err}");
    let dir = ctx.path().join("layout");
    let o = env.lighter(&[
        "save",
        "--format",
        "oci-dir",
        "-o",
        dir.to_str().unwrap(),
        "layout:1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.join("oci-layout").is_file() && dir.join("index.json").is_file());
    if tool("skopeo") {
        let o = Command::new("skopeo")
            .args(["inspect", &format!("oci:{}:1", dir.display())])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["Layers"].as_array().unwrap().len(), 2, "{v}");
        assert_eq!(v["Architecture"], "amd64");
        // skopeo copies it into a docker-archive that lighter loads back.
        let back = ctx.path().join("back.tar");
        let o = Command::new("skopeo")
            .args([
                "copy",
                &format!("oci:{}:1", dir.display()),
                &format!("docker-archive:{}:back:1", back.display()),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = env.lighter(&["load", "-i", back.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let run = env.lighter(&["run", "--rm", "back:1"]);
        assert_eq!(String::from_utf8_lossy(&run.stdout), "x\n");
    }
    if tool("umoci") {
        let o = Command::new("umoci")
            .args(["stat", "--image", &format!("{}:1", dir.display())])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "umoci stat: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let bundle = ctx.path().join("bundle");
        let o = Command::new("umoci")
            .args([
                "unpack",
                "--image",
                &format!("{}:1", dir.display()),
                bundle.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "umoci unpack: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(bundle.join("rootfs/f")).unwrap(),
            "x\n"
        );
    }
    // The layout directory is also an input for analyze.
    let o = env.lighter(&["analyze", dir.to_str().unwrap(), "--json", "-"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// containers/image's layout fixtures have placeholder layer blobs ("insert binary content here"):
/// their content is neither the gzip their media types name nor the configs' diffIDs, and some
/// descriptors' sizes are not their blobs', so lighter must refuse them and add nothing, after
/// reading their nested indexes and duplicate ref names without tripping.
#[test]
fn peers_layouts_are_verified() {
    let Some(root) = std::env::var_os("LIGHTER_CONFORMANCE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            Some(
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/conformance"),
            )
        })
        .map(|p| p.join("containers-image/oci-layouts"))
        .filter(|p| p.is_dir())
    else {
        missing_peer(&format!(
            "conformance data absent (set LIGHTER_CONFORMANCE)"
        ));
        return;
    };
    let mut n = 0;
    for e in std::fs::read_dir(&root).unwrap() {
        let dir = e.unwrap().path();
        let env = Env {
            root: tempfile::tempdir().unwrap(),
        };
        let o = env.lighter(&["load", "-i", dir.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}: {err}", dir.display());
        assert!(
            [
                "diffID",
                "but the blob is uncompressed",
                "descriptor gives size"
            ]
            .iter()
            .any(|why| err.contains(why))
                && err.contains("nothing was added"),
            "{}: {err}",
            dir.display()
        );
        assert!(env.lighter(&["images", "-q"]).stdout.is_empty());
        n += 1;
    }
    println!("containers-image layouts: {n} passed, 0 failed");
    assert_eq!(n, 3);
}
