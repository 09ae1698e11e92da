//! `analyze`, `history` and `diff` of registry images (Debian's docker-registry on 127.0.0.1): the
//! layers are streamed and analysed, nothing is stored, the numbers are those of the same image in
//! the store, and `--platform` picks from an index.

mod common;

use common::*;
use std::process::Command;

fn curl(args: &[&str]) -> Vec<u8> {
    let o = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "30"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// Uploads `bytes` as a blob of `repo` (monolithic upload).
fn put_blob(base: &str, repo: &str, bytes: &[u8]) -> String {
    let d = sha(bytes);
    let o = Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--max-time",
            "30",
            "-X",
            "POST",
            "-D",
            "-",
            "-o",
            "/dev/null",
        ])
        .arg(format!("{base}/v2/{repo}/blobs/uploads/"))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&o.stdout);
    let loc = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
        })
        .unwrap()
        .trim()
        .to_string();
    let url = if loc.starts_with("http") {
        loc
    } else {
        format!("{base}{loc}")
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), bytes).unwrap();
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", tmp.path().display()),
        &format!("{url}{sep}digest={d}"),
    ]);
    d
}

fn put_manifest(base: &str, repo: &str, tag: &str, media: &str, bytes: &[u8]) -> String {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), bytes).unwrap();
    curl(&[
        "-X",
        "PUT",
        "-H",
        &format!("Content-Type: {media}"),
        "--data-binary",
        &format!("@{}", tmp.path().display()),
        &format!("{base}/v2/{repo}/manifests/{tag}"),
    ]);
    sha(bytes)
}

fn analyze(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["analyze"];
    a.extend_from_slice(args);
    a.extend(["--json", "-"]);
    let o = env.lighter(&a);
    assert!(
        o.status.success(),
        "{a:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn registry_images_are_analysed_without_being_stored() {
    let Some(env) = with_busybox() else { return };
    let Some(reg) = RegistryServer::start(None) else {
        return;
    };
    let host = format!("127.0.0.1:{}", reg.port);
    let base = format!("http://{host}");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1k count=100 2>/dev/null\nRUN rm /big && echo x > /small\n",
        )],
    );
    let name = format!("{host}/team/app:amd");
    let (ok, err, _) = env.build(dir.path(), &["-t", &name]);
    assert!(ok, "{err}");
    let o = env.lighter(&["push", "-q", &name]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A second, empty store: analyze, history and diff read the registry, and store nothing.
    let other = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let local = analyze(&env, &[&name]);
    let remote = analyze(&other, &[&name]);
    for k in [
        "efficiency",
        "wasted_bytes",
        "size",
        "compressed_size",
        "references",
    ] {
        assert_eq!(local[k], remote[k], "{k}");
    }
    assert_eq!(remote["layers"].as_array().unwrap().len(), 3);
    let h = other.lighter(&["history", &name]);
    assert!(h.status.success() && String::from_utf8_lossy(&h.stdout).contains("rm /big"));
    let d = other.lighter(&["diff", &name, "busybox:latest", "--json"]);
    assert!(!d.status.success(), "busybox is not in the other store");
    let d = env.lighter(&["diff", "busybox:latest", &name, "--json"]);
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    let stored = other.lighter(&["images", "-q"]);
    assert!(String::from_utf8_lossy(&stored.stdout).trim().is_empty());
    let layer_hexes: Vec<String> = local["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["diff_id"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_string()
        })
        .collect();
    let mut big = Vec::new();
    let mut stack = vec![other.root.path().to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            let md = e.metadata().unwrap();
            let n = e.file_name().to_string_lossy().into_owned();
            assert!(
                !layer_hexes.contains(&n),
                "a layer was stored: {}",
                e.path().display()
            );
            if md.is_dir() {
                stack.push(e.path());
            } else if md.len() > 64 << 10 && !n.ends_with(".db") && !n.contains("meta") {
                big.push(e.path());
            }
        }
    }
    assert!(big.is_empty(), "bytes written to the other store: {big:?}");

    // An index with an arm64 variant (same layers, its own config): --platform picks.
    let m: serde_json::Value = serde_json::from_slice(&curl(&[
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        &format!("{base}/v2/team/app/manifests/amd"),
    ]))
    .unwrap();
    let media = m["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_string();
    let cfg_digest = m["config"]["digest"].as_str().unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&curl(&[&format!("{base}/v2/team/app/blobs/{cfg_digest}")]))
            .unwrap();
    cfg["architecture"] = "arm64".into();
    cfg["history"].as_array_mut().unwrap().last_mut().unwrap()["created_by"] =
        "RUN arm64 marker # buildkit".into();
    let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
    let arm_cfg = put_blob(&base, "team/app", &cfg_bytes);
    let mut arm = m.clone();
    arm["config"]["digest"] = arm_cfg.clone().into();
    arm["config"]["size"] = cfg_bytes.len().into();
    let arm_bytes = serde_json::to_vec(&arm).unwrap();
    let amd_bytes = serde_json::to_vec(&m).unwrap();
    let arm_digest = put_manifest(&base, "team/app", "arm", &media, &arm_bytes);
    let amd_digest = put_manifest(&base, "team/app", "amd2", &media, &amd_bytes);
    let index = serde_json::json!({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {"mediaType": media, "digest": amd_digest, "size": amd_bytes.len(),
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": media, "digest": arm_digest, "size": arm_bytes.len(),
         "platform": {"os": "linux", "architecture": "arm64"}},
    ]});
    put_manifest(
        &base,
        "team/app",
        "multi",
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );
    let multi = format!("{host}/team/app:multi");
    let last = |v: &serde_json::Value| {
        v["layers"].as_array().unwrap().last().unwrap()["created_by"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let a = analyze(&other, &[&multi, "--platform", "linux/arm64"]);
    assert!(last(&a).contains("arm64 marker"), "{a}");
    let b = analyze(&other, &[&multi, "--platform", "linux/amd64"]);
    assert!(
        !last(&b).contains("arm64 marker") && last(&b).contains("rm /big"),
        "{b}"
    );
    let o = other.lighter(&[
        "analyze",
        &multi,
        "--platform",
        "linux/s390x",
        "--json",
        "-",
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("s390x"), "{e}");
    // --platform on a file or a store image is refused, not ignored.
    let o = env.lighter(&["analyze", "busybox:latest", "--platform", "linux/arm64"]);
    assert!(!o.status.success());
}
