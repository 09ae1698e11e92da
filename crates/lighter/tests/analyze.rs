//! `analyze` and `diff` on crafted images whose every number is computed by hand below.

mod common;

use common::*;

fn layer(entries: &[(&str, Option<usize>)]) -> Vec<u8> {
    layer_tar(entries)
}

/// A docker-archive with the given layers, named `name`.
fn archive(name: &str, layers: &[Vec<u8>]) -> Vec<u8> {
    docker_archive(name, &["A=1"], layers)
}

#[test]
fn efficiency_waste_and_reclaimable_match_hand_computation() {
    let l0 = layer(&[
        ("a", Some(100)),
        ("d/", None),
        ("d/x", Some(50)),
        ("d/y", Some(30)),
    ]);
    let l1 = layer(&[("a", Some(200)), ("d/.wh.x", Some(0)), ("n", Some(10))]);
    let l2 = layer(&[("d/", None), ("d/.wh..wh..opq", Some(0)), ("a", Some(100))]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crafted.tar");
    std::fs::write(
        &file,
        archive("crafted:1", &[l0.clone(), l1.clone(), l2.clone()]),
    )
    .unwrap();
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    // Straight from the archive file, and from the store after `load`: the same answers.
    for target in [file.to_str().unwrap().to_string(), "crafted:1".to_string()] {
        if target == "crafted:1" {
            let o = env.lighter(&["load", "-i", file.to_str().unwrap()]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let o = env.lighter(&["analyze", &target, "--json", "-"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let a: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        // dive: a = 100+200+100 (min 100), d/x = 50 + whiteout of a file 0 (min 0), d/y = 30, n = 10.
        let eff = a["efficiency"].as_f64().unwrap();
        assert!((eff - 140.0 / 490.0).abs() < 1e-9, "efficiency {eff}");
        assert_eq!(
            a["wasted_bytes"], 450,
            "dive counts every copy of a (400) and d/x (50 + 0)"
        );
        // Reclaimable: a's two hidden copies (300), d/x (50) and d/y (30), all invisible at the end.
        assert_eq!(a["reclaimable_bytes"], 380);
        let l = &a["layers"];
        assert_eq!(
            (l[0]["added"].as_u64(), l[0]["added_bytes"].as_u64()),
            (Some(3), Some(180))
        );
        assert_eq!(
            (
                l[1]["modified"].as_u64(),
                l[1]["added"].as_u64(),
                l[1]["removed"].as_u64(),
                l[1]["removed_bytes"].as_u64()
            ),
            (Some(1), Some(1), Some(1), Some(50))
        );
        assert_eq!(
            (
                l[2]["modified"].as_u64(),
                l[2]["removed"].as_u64(),
                l[2]["removed_bytes"].as_u64()
            ),
            (Some(1), Some(1), Some(30))
        );
        let user: u64 = (l1.len() + l2.len()) as u64;
        let uwp = a["user_wasted_percent"].as_f64().unwrap();
        assert!((uwp - 450.0 / user as f64).abs() < 1e-9, "{uwp}");
        assert_eq!(a["offenders"][0]["path"], "a");
        assert_eq!(a["offenders"][0]["reclaimable"], 300);
    }
    // --ci: efficiency 0.29 fails the default 0.9 threshold; a lenient one passes.
    let o = env.lighter(&["analyze", "crafted:1", "--ci"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("CI: FAIL lowestEfficiency"));
    let o = env.lighter(&[
        "analyze",
        "crafted:1",
        "--ci",
        "--lowest-efficiency",
        "0.25",
        "--highest-user-wasted-percent",
        "1",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // diff against the first layer alone.
    std::fs::write(&file, archive("base:1", &[l0])).unwrap();
    assert!(env
        .lighter(&["load", "-i", file.to_str().unwrap()])
        .status
        .success());
    let o = env.lighter(&["diff", "base:1", "crafted:1", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["added"], serde_json::json!([["n", 10]]));
    assert_eq!(d["removed"], serde_json::json!([["d/x", 50], ["d/y", 30]]));
    assert_eq!(d["shared_layers"], 1);
    assert_eq!(
        d["changed"],
        serde_json::json!([]),
        "a is 100 bytes in both"
    );
    // A reader that goes away (`lighter analyze | head -1`) ends the command as SIGPIPE would.
    for args in [
        &["analyze", "crafted:1"][..],
        &["images"],
        &["history", "crafted:1"],
    ] {
        let mut child = env
            .cmd()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(141), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn bad_archives_add_nothing() {
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    let good = archive("x:1", &[layer(&[("f", Some(5))])]);
    for (name, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("garbage", b"not an archive at all".to_vec()),
        ("empty", Vec::new()),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, &bytes).unwrap();
        let o = env.lighter(&["load", "-i", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("nothing was added"),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // A layer whose content does not match the config's diffID.
    let mut bad = archive("x:1", &[layer(&[("f", Some(5))])]);
    let pos = bad.windows(5).position(|w| w == b"xxxxx").unwrap();
    bad[pos] = b'y';
    let p = dir.path().join("mismatch");
    std::fs::write(&p, &bad).unwrap();
    let o = env.lighter(&["load", "-i", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("diffID"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = env.lighter(&["images", "-q"]);
    assert!(
        o.stdout.is_empty(),
        "no image was added: {}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Debian's Chromium, or None with the reason printed.
fn chromium() -> Option<&'static str> {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(c).exists() {
            return Some(c);
        }
    }
    missing_peer(&format!(
        "no Chromium (scripts/setup-peers.sh installs Debian's chromium)"
    ));
    None
}

fn crafted(env: &Env, dir: &std::path::Path) {
    let l0 = layer(&[
        ("usr/", None),
        ("usr/bin/", None),
        ("usr/bin/tool", Some(4000)),
        ("etc/", None),
        ("etc/conf", Some(100)),
    ]);
    let l1 = layer(&[
        ("usr/bin/tool", Some(4000)),
        ("app/", None),
        ("app/<script>.js", Some(700)),
    ]);
    let file = dir.join("report.tar");
    std::fs::write(&file, archive("report:1", &[l0, l1])).unwrap();
    let o = env.lighter(&["load", "-i", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The HTML report is one self-contained file that a real browser renders: Chromium loads it with
/// the network off, the script lays out a treemap cell per (layer, directory), the tables list the
/// layers and the duplicated path, and a screenshot is taken.
#[test]
fn html_report_renders_in_headless_chromium() {
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    crafted(&env, dir.path());
    let html = dir.path().join("report.html");
    let o = env.lighter(&["analyze", "report:1", "--html", html.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("http://") && !page.contains("src=\"") && !page.contains("href=\""),
        "no external resource"
    );
    assert!(
        !page.contains("<script>.js"),
        "file names are data, never markup"
    );
    let Some(chrome) = chromium() else { return };
    let run = |extra: &[&str]| {
        let mut c = std::process::Command::new(chrome);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-proxy-server",
            "--proxy-server=127.0.0.1:9",
            "--window-size=1200,1000",
        ]);
        c.args(extra);
        c.arg(format!("file://{}", html.display()));
        c.output().unwrap()
    };
    let o = run(&["--dump-dom"]);
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && !dom.is_empty(),
        "chromium: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The final image's top-level directories, one cell each: /usr, /etc and /app.
    assert!(
        dom.contains("data-rendered=\"3\""),
        "treemap cells: {}",
        &dom[..dom.len().min(600)]
    );
    assert!(
        dom.contains("/usr/bin/tool"),
        "waste list names the duplicated file"
    );
    assert!(
        dom.contains("&lt;script&gt;.js") || dom.contains("/app"),
        "file names rendered as text"
    );
    let shot = dir.path().join("report.png");
    let o = run(&[&format!("--screenshot={}", shot.display())]);
    assert!(
        o.status.success(),
        "chromium screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot ({} bytes)",
        png.len()
    );
}

/// SARIF and JUnit come out of the same run as the CI verdict: one rule per threshold, results only
/// for the failing ones.
#[test]
fn sarif_and_junit_reports_follow_the_ci_verdict() {
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    crafted(&env, dir.path());
    let (sarif, junit) = (dir.path().join("r.sarif"), dir.path().join("r.xml"));
    let o = env.lighter(&[
        "analyze",
        "report:1",
        "--ci",
        "--highest-wasted-bytes",
        "1MB",
        "--sarif",
        sarif.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    // tool is stored twice (8000 bytes of 8800): efficiency 0.55 < 0.9 fails, wasted 8000 <= 1MB passes.
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let run = &s["runs"][0];
    assert_eq!(run["tool"]["driver"]["rules"].as_array().unwrap().len(), 3);
    let results = run["results"].as_array().unwrap();
    let ids: Vec<&str> = results
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["lowestEfficiency", "highestUserWastedPercent"]);
    assert!(results[0]["message"]["text"]
        .as_str()
        .unwrap()
        .contains("report:1"));
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(
        x.starts_with("<?xml") && x.contains("tests=\"3\" failures=\"2\""),
        "{x}"
    );
    assert_eq!(x.matches("<testcase ").count(), 3);
    assert_eq!(x.matches("<failure ").count(), 2);
    assert!(
        x.contains("name=\"highestWastedBytes\"/>"),
        "the passing rule has no failure: {x}"
    );
}

/// `import` checks the rootfs is a whole tar archive in the same pass that compresses it, and stores
/// nothing (no blob, no image) when it is not.
#[test]
fn import_of_a_bad_rootfs_stores_nothing() {
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    let good = layer(&[("etc/", None), ("etc/a", Some(3000)), ("b", Some(10))]);
    let blobs = |env: &Env| {
        std::fs::read_dir(env.root.path().join("blobs/sha256"))
            .map(|r| r.count())
            .unwrap_or(0)
    };
    let mut garbage = vec![b'z'; 4096];
    garbage[100] = 0;
    for (name, bytes, want) in [
        ("truncated", good[..1800].to_vec(), "tar archive"),
        ("garbage", garbage, "tar archive"),
        ("short", b"tiny".to_vec(), "too short"),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, &bytes).unwrap();
        let before = blobs(&env);
        let o = env.lighter(&["import", p.to_str().unwrap(), &format!("bad:{name}")]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert_eq!(blobs(&env), before, "{name}: no blob stored");
    }
    let p = dir.path().join("good.tar");
    std::fs::write(&p, &good).unwrap();
    let o = env.lighter(&["import", p.to_str().unwrap(), "good:1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = env.lighter(&["images", "-q"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        1,
        "only the good import is there"
    );
}

/// A chmod-only change stores the whole file again (dive counts it as a second copy), and a hardlink
/// entry carries no bytes of its own: checked against hand-computed numbers.
#[test]
fn chmod_only_changes_and_hardlinks() {
    let entry = |b: &mut tar::Builder<Vec<u8>>, path: &str, size: usize, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(size as u64);
        h.set_mode(mode);
        b.append_data(&mut h, path, &vec![b'x'; size][..]).unwrap();
    };
    let mut b = tar::Builder::new(Vec::new());
    entry(&mut b, "f", 100, 0o644);
    entry(&mut b, "h", 50, 0o644);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    h.set_mode(0o644);
    b.append_link(&mut h, "h2", "h").unwrap();
    let l0 = b.into_inner().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    entry(&mut b, "f", 100, 0o755);
    let l1 = b.into_inner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chmod.tar");
    std::fs::write(&file, archive("chmod:1", &[l0, l1.clone()])).unwrap();
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let o = env.lighter(&["analyze", file.to_str().unwrap(), "--json", "-"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // dive: f = 100 + 100 (min 100), h = 50, h2 (a link) = 0: 150 / 250.
    let eff = a["efficiency"].as_f64().unwrap();
    assert!((eff - 150.0 / 250.0).abs() < 1e-9, "efficiency {eff}");
    assert_eq!(a["wasted_bytes"], 200, "both copies of f");
    assert_eq!(a["reclaimable_bytes"], 100, "the copy the chmod hid");
    let l = &a["layers"];
    assert_eq!(
        (l[0]["added"].as_u64(), l[0]["added_bytes"].as_u64()),
        (Some(3), Some(150)),
        "h2 adds no bytes"
    );
    assert_eq!(
        (
            l[1]["modified"].as_u64(),
            l[1]["modified_bytes"].as_u64(),
            l[1]["added"].as_u64()
        ),
        (Some(1), Some(100), Some(0))
    );
    let uwp = a["user_wasted_percent"].as_f64().unwrap();
    assert!((uwp - 200.0 / l1.len() as f64).abs() < 1e-9, "{uwp}");
    assert_eq!(a["offenders"][0]["path"], "f");
    assert_eq!(a["offenders"][0]["copies"], 2);
}

/// `history` and `images` take docker's `--format` templates (and `table` templates); `history`
/// reads an archive file as `analyze` does.
#[test]
fn format_templates_and_history_of_a_file() {
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.tar");
    let (l0, l1) = (layer(&[("a", Some(1000))]), layer(&[("b", Some(10))]));
    let (n0, n1) = (l0.len(), l1.len());
    std::fs::write(&file, archive("tpl:1", &[l0, l1])).unwrap();
    let o = env.lighter(&[
        "history",
        file.to_str().unwrap(),
        "-H=false",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Size}}",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].ends_with(&format!("|step 1|{n1}"))
            && lines[1] == format!("<missing>|step 0|{n0}"),
        "{out}"
    );
    assert!(env
        .lighter(&["load", "-i", file.to_str().unwrap()])
        .status
        .success());
    let o = env.lighter(&["images", "--format", "table {{.Repository}}\\t{{.Tag}}"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>(),
        ["REPOSITORY TAG", "tpl 1"],
        "{out}"
    );
    let o = env.lighter(&["images", "--format", "{{.Bogus}}"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no field \"Bogus\""));
}

/// `diff` reports config changes (ENV, CMD, USER, ports, labels) and layer reuse: two imports of the
/// same rootfs with different `--change`s share their one layer and differ only in config.
#[test]
fn diff_reports_config_changes_and_shared_layers() {
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, layer(&[("bin/", None), ("bin/app", Some(100))])).unwrap();
    let p = rootfs.to_str().unwrap();
    for (tag, changes) in [
        (
            "cfg:a",
            vec!["ENV MODE=dev", "CMD [\"/bin/app\"]", "EXPOSE 80"],
        ),
        (
            "cfg:b",
            vec![
                "ENV MODE=prod",
                "CMD [\"/bin/app\", \"-v\"]",
                "EXPOSE 80",
                "USER 1000",
                "LABEL tier=web",
            ],
        ),
    ] {
        let mut args = vec!["import"];
        for c in &changes {
            args.extend(["--change", c]);
        }
        args.extend([p, tag]);
        let o = env.lighter(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = env.lighter(&["diff", "cfg:a", "cfg:b", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["shared_layers"], 1);
    assert_eq!(d["added"], serde_json::json!([]));
    let keys: Vec<&str> = d["config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[0].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["Env", "Cmd", "User", "Labels"], "{d}");
    let env_change = &d["config"][0];
    assert!(
        env_change[1].to_string().contains("MODE=dev")
            && env_change[2].to_string().contains("MODE=prod"),
        "{env_change}"
    );
}

/// `analyze`, `history` and `diff` read an archive in place: nothing is written to $TMPDIR, and the
/// store is not even created.
#[test]
fn archives_are_read_in_place() {
    let base = tempfile::tempdir().unwrap();
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let root = base.path().join("never-made");
    let tmp = base.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.tar");
    let b = dir.path().join("b.tar");
    std::fs::write(&a, archive("a:1", &[layer(&[("f", Some(100))])])).unwrap();
    std::fs::write(
        &b,
        archive(
            "b:1",
            &[layer(&[("f", Some(100))]), layer(&[("g", Some(7))])],
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = env
            .cmd()
            .env("TMPDIR", &tmp)
            .env("LIGHTER_ROOT", &root)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let j: serde_json::Value = serde_json::from_str(&run(&["analyze", b, "--json", "-"])).unwrap();
    assert_eq!(j["layers"].as_array().unwrap().len(), 2, "{j}");
    assert!(run(&["history", b]).lines().count() >= 3);
    let d: serde_json::Value = serde_json::from_str(&run(&["diff", a, b, "--json"])).unwrap();
    assert_eq!(d["added"][0][0], "g", "{d}");
    assert_eq!(d["shared_layers"], 1, "{d}");
    assert!(!root.exists(), "the store was created");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "written to TMPDIR: {left:?}");
}

/// `--dockerfile`: every layer the build made is attributed to its line, with its bytes and the
/// directories they are in; a Dockerfile that is not the image's attributes nothing.
#[test]
fn dockerfile_lines_get_their_layers_bytes() {
    let Some(env) = with_busybox() else { return };
    let dir = tempfile::tempdir().unwrap();
    let df = "FROM busybox AS base\n\
              RUN mkdir -p /var/cache/pkg && dd if=/dev/zero of=/var/cache/pkg/big bs=1k count=200 2>/dev/null\n\
              FROM base\n\
              ARG N=1\n\
              WORKDIR /app\n\
              RUN dd if=/dev/zero of=/app/bin bs=1k count=30 2>/dev/null\n\
              ENV A=1\n";
    write(dir.path(), &[("Dockerfile", df)]);
    let (ok, err, _) = env.build(dir.path(), &["-t", "lines:1"]);
    assert!(ok, "{err}");
    let path = dir.path().join("Dockerfile");
    let o = env.lighter(&[
        "analyze",
        "lines:1",
        "--dockerfile",
        path.to_str().unwrap(),
        "--json",
        "-",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let lines = v["dockerfile"].as_array().unwrap();
    let got: Vec<(u64, String)> = lines
        .iter()
        .map(|l| {
            (
                l["line"].as_u64().unwrap(),
                l["instruction"]
                    .as_str()
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (2, "RUN".to_string()),
            (5, "WORKDIR".into()),
            (6, "RUN".into()),
            (7, "ENV".into())
        ],
        "{v}"
    );
    // Line 2's layer holds the 200 KiB under /var/cache/pkg; line 6's the 30 KiB binary.
    assert_eq!(lines[0]["directories"][0][0], "/var/cache/pkg", "{v}");
    assert_eq!(lines[0]["directories"][0][1], 204_800);
    assert_eq!(
        lines[2]["directories"][0],
        serde_json::json!(["/app", 30_720])
    );
    assert!(lines[3]["layer"].is_null(), "ENV makes no layer: {v}");
    let layer = lines[0]["layer"].as_u64().unwrap() as usize;
    assert!(v["layers"][layer]["created_by"]
        .as_str()
        .unwrap()
        .contains("/var/cache/pkg"));
    // Text output names the line; another Dockerfile matches nothing, with a warning.
    let o = env.lighter(&["analyze", "lines:1", "--dockerfile", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("Dockerfile lines") && text.contains("/var/cache/pkg"),
        "{text}"
    );
    write(dir.path(), &[("Other", "FROM busybox\nUSER nobody\n")]);
    let other = dir.path().join("Other");
    let o = env.lighter(&[
        "analyze",
        "lines:1",
        "--dockerfile",
        other.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no instruction of its last stage matches"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A Dockerfile that does not parse is an error at its line.
    write(dir.path(), &[("Bad", "FROM busybox\nFRUM x\n")]);
    let bad = dir.path().join("Bad");
    let o = env.lighter(&["analyze", "lines:1", "--dockerfile", bad.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("Bad:2"), "{e}");
}
