//! OCI image-spec schemas and BuildKit's exporter goldens, read in place from the shared conformance
//! folder (`$LIGHTER_CONFORMANCE`, default `../shared/conformance` from the workspace root):
//! - the validator gets every image-spec fixture right (so it can be trusted), then everything
//!   `lighter save --format oci-dir` writes (oci-layout, index, manifests, configs, descriptors)
//!   validates;
//! - lighter's manifest and config serialisation reproduces BuildKit's golden bytes.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn conformance() -> Option<PathBuf> {
    let dir = std::env::var_os("LIGHTER_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    if dir.join("oci-image-spec/schema").is_dir() {
        Some(dir)
    } else {
        missing_peer(&format!(
            "conformance data not found at {} (set LIGHTER_CONFORMANCE)",
            dir.display()
        ));
        None
    }
}

/// Resolves the schemas' `$ref`s (by file name or by their `id` URLs, as upstream registers them)
/// to the files in `schema/`.
struct Files(PathBuf);

impl jsonschema::Retrieve for Files {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let last = uri
            .path()
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let file = match last.as_str() {
            f if f.ends_with(".json") => f.to_string(),
            "config" => "config-schema.json".into(),
            "descriptor" => "content-descriptor.json".into(),
            "mediaType" => "defs-descriptor.json".into(),
            "index" => "image-index-schema.json".into(),
            "layout" => "image-layout-schema.json".into(),
            "manifest" => "image-manifest-schema.json".into(),
            other => return Err(format!("unknown schema {other} ({uri})").into()),
        };
        Ok(serde_json::from_slice(&std::fs::read(self.0.join(file))?)?)
    }
}

struct Validators {
    by_media: Vec<(&'static str, jsonschema::Validator)>,
}

impl Validators {
    fn new(schema_dir: &Path) -> Validators {
        let mut by_media = Vec::new();
        for (media, file) in [
            (
                "application/vnd.oci.descriptor.v1+json",
                "content-descriptor.json",
            ),
            (
                "application/vnd.oci.layout.header.v1+json",
                "image-layout-schema.json",
            ),
            (
                "application/vnd.oci.image.manifest.v1+json",
                "image-manifest-schema.json",
            ),
            (
                "application/vnd.oci.image.index.v1+json",
                "image-index-schema.json",
            ),
            (
                "application/vnd.oci.image.config.v1+json",
                "config-schema.json",
            ),
        ] {
            let schema: Value =
                serde_json::from_slice(&std::fs::read(schema_dir.join(file)).unwrap()).unwrap();
            let v = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .should_validate_formats(true)
                .with_retriever(Files(schema_dir.to_path_buf()))
                .build(&schema)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            by_media.push((media, v));
        }
        Validators { by_media }
    }

    /// Upstream's two stages: the typed checks (digests, Env entries, base64 data), then the schema.
    fn check(&self, media: &str, bytes: &[u8]) -> Result<(), String> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        typed_checks(&doc)?;
        let (_, v) = self
            .by_media
            .iter()
            .find(|(m, _)| *m == media)
            .ok_or(format!("no schema for {media}"))?;
        let errors: Vec<String> = v
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// Stage 1 of upstream's validator, the parts a schema cannot say: a registered digest algorithm's
/// hex is exact (sha256: 64 lowercase), `data` is padded base64, every Env entry has a `=`.
fn typed_checks(v: &Value) -> Result<(), String> {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(d)) = m.get("digest") {
                if let Some(hex) = d.strip_prefix("sha256:") {
                    if hex.len() != 64
                        || !hex
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    {
                        return Err(format!("bad sha256 digest {d}"));
                    }
                }
            }
            if let Some(Value::String(data)) = m.get("data") {
                let ok = data.len() % 4 == 0
                    && data
                        .trim_end_matches('=')
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
                if !ok {
                    return Err("data is not padded base64".into());
                }
            }
            if let Some(Value::Array(env)) = m.get("Env") {
                for e in env {
                    if let Value::String(s) = e {
                        if !s.contains('=') || s.starts_with('=') {
                            return Err(format!("Env entry {s:?} is not KEY=value"));
                        }
                    }
                }
            }
            m.values().try_for_each(typed_checks)
        }
        Value::Array(a) => a.iter().try_for_each(typed_checks),
        _ => Ok(()),
    }
}

#[test]
fn validator_agrees_with_every_image_spec_fixture_and_example() {
    let Some(c) = conformance() else { return };
    let spec = c.join("oci-image-spec");
    let v = Validators::new(&spec.join("schema"));
    let mut n = 0;
    for table in ["fixtures/cases.tsv", "examples/examples.tsv"] {
        let text = std::fs::read_to_string(spec.join(table)).unwrap();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            let (file, media, expected) = (f[0], f[1], f[2]);
            let bytes = std::fs::read(spec.join(file)).unwrap();
            let got = v.check(media, &bytes);
            assert_eq!(
                got.is_ok(),
                expected == "valid",
                "{file}: expected {expected}, got {got:?}"
            );
            n += 1;
        }
    }
    // Docker's schema-2 documents are valid OCI after upstream's media type rewrite.
    let text = std::fs::read_to_string(spec.join("docker-compat/cases.tsv")).unwrap();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let raw = std::fs::read(spec.join("docker-compat").join(f[0])).unwrap();
        assert_eq!(
            lighter_oci::Digest::sha256(&raw).as_str(),
            f[1],
            "{}: bytes kept exactly",
            f[0]
        );
        let mut doc = String::from_utf8(raw).unwrap();
        for (a, b) in [
            (
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.oci.image.index.v1+json",
            ),
            (
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.oci.image.manifest.v1+json",
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            ),
            (
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.oci.image.config.v1+json",
            ),
        ] {
            doc = doc.replace(a, b);
        }
        let got = v.check(f[2], doc.as_bytes());
        assert_eq!(got.is_ok(), f[3] == "valid", "{}: {got:?}", f[0]);
        n += 1;
    }
    println!("image-spec: {n} fixtures, examples and docker documents agree with upstream");
    assert!(n > 80, "only {n} cases read");
}

#[test]
fn everything_lighter_writes_to_an_oci_layout_validates() {
    let Some(c) = conformance() else { return };
    let Some(env) = with_busybox() else { return };
    let v = Validators::new(&c.join("oci-image-spec/schema"));
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            ("f", "x\n"),
            (
                "Dockerfile",
                "FROM busybox AS b\nRUN echo built > /out\nFROM scratch\nCOPY --from=b /out /out\nCOPY f /f\nENV A=1 B=\"x<y>&z\"\nLABEL l=\"<v>\"\nEXPOSE 80\nVOLUME /data\nUSER 1:1\nHEALTHCHECK CMD [\"/out\"]\nCMD [\"/f\"]\n",
            ),
        ],
    );
    let (ok, err, _) = env.build(ctx.path(), &["-t", "schema:1"]);
    assert!(ok, "{err}");
    let dir = ctx.path().join("layout");
    let o = env.lighter(&[
        "save",
        "--format",
        "oci-dir",
        "-o",
        dir.to_str().unwrap(),
        "schema:1",
        "busybox:latest",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |p: &Path| std::fs::read(p).unwrap();
    v.check(
        "application/vnd.oci.layout.header.v1+json",
        &read(&dir.join("oci-layout")),
    )
    .unwrap();
    let index_bytes = read(&dir.join("index.json"));
    v.check("application/vnd.oci.image.index.v1+json", &index_bytes)
        .unwrap();
    let index: Value = serde_json::from_slice(&index_bytes).unwrap();
    let blob = |d: &str| {
        read(
            &dir.join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
    };
    let mut checked = 0;
    for m in index["manifests"].as_array().unwrap() {
        v.check(
            "application/vnd.oci.descriptor.v1+json",
            &serde_json::to_vec(m).unwrap(),
        )
        .unwrap();
        let mb = blob(m["digest"].as_str().unwrap());
        v.check("application/vnd.oci.image.manifest.v1+json", &mb)
            .unwrap_or_else(|e| panic!("manifest: {e}"));
        let manifest: Value = serde_json::from_slice(&mb).unwrap();
        // Laid out as BuildKit lays out its manifests (see the goldens test).
        let keys: Vec<&str> = manifest
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["schemaVersion", "mediaType", "config", "layers"]);
        assert!(
            mb.starts_with(b"{\n  \"schemaVersion\": 2,\n  \"mediaType\""),
            "{}",
            String::from_utf8_lossy(&mb)
        );
        assert_eq!(lighter_oci::json::to_vec_pretty(&manifest).unwrap(), mb);
        let cfg = blob(manifest["config"]["digest"].as_str().unwrap());
        v.check("application/vnd.oci.image.config.v1+json", &cfg)
            .unwrap_or_else(|e| panic!("config: {e}"));
        for l in manifest["layers"].as_array().unwrap() {
            v.check(
                "application/vnd.oci.descriptor.v1+json",
                &serde_json::to_vec(l).unwrap(),
            )
            .unwrap();
            assert_eq!(
                blob(l["digest"].as_str().unwrap()).len() as u64,
                l["size"].as_u64().unwrap()
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 2);
}

/// BuildKit's exporter goldens, parsed and written again by lighter's serialisers, come out byte for
/// byte the same: manifests two-space indented in OCI field order, configs compact, keys in the
/// document's order, Go's escaping of `<`, `>` and `&`.
#[test]
fn manifest_and_config_bytes_match_buildkit_goldens() {
    let Some(c) = conformance() else { return };
    let root = c.join("buildkit-exporter-goldens");
    let mut files = Vec::new();
    fn collect(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                collect(&p, out);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    collect(&root, &mut files);
    files.sort();
    let mut n = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let ours = if f.file_name().unwrap() == "manifest.json" {
            lighter_oci::json::to_vec_pretty(&v).unwrap()
        } else {
            lighter_oci::json::to_vec(&v).unwrap()
        };
        assert!(
            ours == bytes,
            "{}: lighter's bytes differ from BuildKit's:\n{}\n---\n{}",
            f.display(),
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&bytes)
        );
        n += 1;
    }
    println!("buildkit goldens: {n} manifests and configs reproduced byte for byte");
    assert!(n >= 40, "only {n} goldens read");
}
