//! The HTML reports of `analyze --html` and `diff --html` on crafted docker-archives: the embedded
//! tree is checked against hand-computed sizes, then a headless Chromium, driven through the DevTools
//! protocol by `tests/html/cdp.js`, really clicks, zooms back, searches and takes a screenshot.

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn layer(entries: &[(&str, Option<usize>)]) -> Vec<u8> {
    layer_tar(entries)
}

/// A docker-archive with the given layers, named `name`, written to `dir/file`.
fn archive(dir: &Path, file: &str, name: &str, layers: &[Vec<u8>]) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(
        &path,
        docker_archive(name, &[&format!("IMAGE={name}")], layers),
    )
    .unwrap();
    path
}

/// Debian's Chromium, or None with the reason printed.
fn chromium() -> Option<&'static str> {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(c).exists() {
            return Some(c);
        }
    }
    missing_peer("no Chromium (scripts/setup-peers.sh installs Debian's chromium)");
    None
}

/// Node (20 or later: WebSocket behind `--experimental-websocket`), or None with the reason printed.
fn node() -> bool {
    let ok = Command::new("node")
        .args([
            "--experimental-websocket",
            "-e",
            "if (typeof WebSocket !== 'function') process.exit(1)",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        missing_peer("no Node.js with WebSocket (node 20+) to drive Chromium");
    }
    ok
}

/// A headless Chromium with the DevTools protocol on a port of its choosing, network off (a proxy
/// nothing listens on), killed with its whole process group on drop.
struct Chromium {
    child: std::process::Child,
    ws: String,
    _dir: tempfile::TempDir,
}

impl Chromium {
    fn start(bin: &str) -> Chromium {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).unwrap();
        let log = dir.path().join("chromium.log");
        let mut child = Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                &format!("--user-data-dir={}", profile.display()),
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--proxy-server=127.0.0.1:9",
                "--window-size=1200,1000",
                "about:blank",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .process_group(0)
            .spawn()
            .expect("start chromium");
        let port_file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let ws = loop {
            if let Ok(s) = std::fs::read_to_string(&port_file) {
                let mut l = s.lines();
                if let (Some(port), Some(path)) = (l.next(), l.next()) {
                    if !port.is_empty() && path.starts_with("/devtools/browser/") {
                        break format!("ws://127.0.0.1:{port}{path}");
                    }
                }
            }
            let exited = child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromium gave no DevTools port ({exited:?}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Chromium {
            child,
            ws,
            _dir: dir,
        }
    }

    /// Runs `tests/html/cdp.js` on `page` with `plan` (see the script), under `timeout 60`; its report.
    fn drive(&self, page: &Path, shot: &Path, plan: Value) -> Value {
        let mut plan = plan;
        plan["ws"] = self.ws.clone().into();
        plan["url"] = format!("file://{}", page.display()).into();
        plan["shot"] = shot.display().to_string().into();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/html/cdp.js");
        let o = Command::new("timeout")
            .args([
                "60",
                "node",
                "--experimental-websocket",
                "--no-warnings",
                script,
                &plan.to_string(),
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run node");
        let stdout = String::from_utf8_lossy(&o.stdout);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let report: Value = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| {
                panic!(
                    "no report from the driver ({}): {stdout}\n{stderr}",
                    o.status
                )
            });
        assert!(
            o.status.success() && report["ok"] == true,
            "driver failed ({}): {}\n{stderr}",
            o.status,
            serde_json::to_string_pretty(&report).unwrap()
        );
        let url = plan["url"].as_str().unwrap();
        assert_eq!(report["errors"], serde_json::json!([]), "script errors");
        for r in report["requests"].as_array().unwrap() {
            assert_eq!(r, url, "the page loads nothing but itself");
        }
        report
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // killpg(2) on the group `process_group(0)` made for this Chromium, so its renderers go
        // with it. Never `kill -KILL -PGID` through the kill binary: procps-ng 4.0 turns that into
        // kill(-1), every process the user may signal.
        let pgid = self.child.id() as i32;
        if pgid > 1 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page's embedded data.
fn embedded(page: &str) -> Value {
    let start = page
        .find(r#"<script type="application/json" id="data">"#)
        .expect("embedded data");
    let rest = &page[start..];
    let body = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    serde_json::from_str(body).expect("the embedded data is JSON")
}

/// The tree's nodes by path (`/` for the root).
fn by_path(tree: &Value) -> HashMap<String, Value> {
    let nodes = tree["nodes"].as_array().unwrap();
    let mut paths: Vec<String> = Vec::new();
    let mut out = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        let p = if i == 0 {
            "/".to_string()
        } else {
            let parent = n[0].as_u64().unwrap() as usize;
            assert!(parent < i, "parents come first");
            let base = if parent == 0 { "" } else { &paths[parent] };
            format!("{base}/{}", n[1].as_str().unwrap())
        };
        paths.push(p.clone());
        out.insert(p, n.clone());
    }
    out
}

fn self_contained(page: &str) {
    for bad in [
        "http://", "https://", "src=\"", "href=\"", "<link", "@import", "url(",
    ] {
        assert!(!page.contains(bad), "an external resource: {bad}");
    }
}

fn png(shot: &Path) {
    let png = std::fs::read(shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "a real screenshot ({} bytes)",
        png.len()
    );
}

fn has(v: &Value, s: &str) -> bool {
    v.as_str().is_some_and(|t| t.contains(s))
}

fn list(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn analyze_html_zooms_searches_and_stays_offline() {
    let dir = tempfile::tempdir().unwrap();
    let l0 = layer(&[
        ("usr/", None),
        ("usr/bin/", None),
        ("usr/bin/tool", Some(40_000)),
        ("usr/lib/", None),
        ("usr/lib/x86_64/", None),
        ("usr/lib/x86_64/libbig.so", Some(120_000)),
        ("usr/lib/x86_64/libsmall.so", Some(3_000)),
        ("etc/", None),
        ("etc/conf", Some(100)),
    ]);
    let l1 = layer(&[
        ("usr/bin/tool", Some(40_000)),
        ("app/", None),
        ("app/<script>.js", Some(7_000)),
        ("app/node_modules/left-pad/index.js", Some(5_000)),
        ("tmp/", None),
        ("tmp/cache.bin", Some(60_000)),
    ]);
    let l2 = layer(&[("tmp/.wh.cache.bin", Some(0))]);
    let file = archive(dir.path(), "bloated.tar", "bloated:1", &[l0, l1, l2]);
    let html = dir.path().join("report.html");
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let o = env.lighter(&[
        "analyze",
        file.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("HTML report written to"));
    let page = std::fs::read_to_string(&html).unwrap();
    self_contained(&page);
    assert!(
        !page.contains("<script>.js"),
        "file names are data, never markup"
    );
    // The tree: final bytes (measure 0) and what each layer stores (1 + layer), cumulative.
    let data = embedded(&page);
    assert_eq!(data["tree"]["folded"], 0);
    let t = by_path(&data["tree"]);
    let m = |p: &str| t.get(p).unwrap_or_else(|| panic!("no node {p}"))[4].clone();
    assert_eq!(
        m("/"),
        serde_json::json!([0, 175_100, 1, 163_100, 2, 112_000])
    );
    assert_eq!(
        m("/usr"),
        serde_json::json!([0, 163_000, 1, 163_000, 2, 40_000])
    );
    assert_eq!(
        m("/usr/lib/x86_64/libbig.so"),
        serde_json::json!([0, 120_000, 1, 120_000])
    );
    assert_eq!(
        m("/tmp"),
        serde_json::json!([2, 60_000]),
        "hidden at the end, stored in layer 1"
    );
    assert_eq!(
        m("/app/node_modules"),
        serde_json::json!([0, 5_000, 2, 5_000])
    );
    assert_eq!(t["/app/<script>.js"][2], 0, "a file");
    assert_eq!(t["/usr/lib"][2], 1, "a directory");
    assert!(
        !t.keys().any(|p| p.contains(".wh.")),
        "whiteouts are no nodes"
    );

    let Some(bin) = chromium() else { return };
    if !node() {
        return;
    }
    let chrome = Chromium::start(bin);
    let shot = dir.path().join("report.png");
    let r = chrome.drive(
        &html,
        &shot,
        serde_json::json!({ "map": "#treemap", "click": "/usr", "search": "libbig" }),
    );
    let before = &r["before"];
    assert_eq!(before["zoom"], "/");
    assert_eq!(
        before["rendered"], "3",
        "usr, app and etc; tmp is empty at the end"
    );
    let mut dirs = list(&before["dirs"]);
    dirs.sort();
    assert_eq!(dirs, ["/app", "/etc", "/usr"]);
    // Hover: the path and its sizes.
    assert!(has(&r["hover"], "/usr/"), "{}", r["hover"]);
    assert!(
        has(&r["hover"], "in the final image: 163kB"),
        "{}",
        r["hover"]
    );
    assert!(has(&r["hover"], "layer 1 stores 40.0kB"), "{}", r["hover"]);
    // The click zoomed into /usr: breadcrumb, cells.
    let z = &r["zoomed"];
    assert_eq!(z["zoom"], "/usr");
    assert_eq!(z["crumbs"], "/ \u{203a} usr");
    assert_eq!(z["rendered"], "2");
    let mut dirs = list(&z["dirs"]);
    dirs.sort();
    assert_eq!(dirs, ["/usr/bin", "/usr/lib"]);
    // Escape, Up and the breadcrumb each went back to the top.
    for k in ["escaped", "upped", "crumbed"] {
        assert_eq!(r[k]["zoom"], "/", "{k}");
        assert_eq!(r[k]["rendered"], "3", "{k}");
        assert_eq!(r[k]["crumbs"], "/", "{k}");
    }
    // The search lists the file with its size and highlights the directory that holds it.
    let s = &r["searched"];
    assert_eq!(s["found"], "1 match");
    let results = list(&s["results"]);
    assert!(
        results[0].contains("/usr/lib/x86_64/libbig.so") && results[0].contains("120kB"),
        "{results:?}"
    );
    assert_eq!(list(&s["matches"]), ["/usr"]);
    // Clicking the result zoomed to its directory and pointed at the file.
    assert_eq!(r["result"]["zoom"], "/usr/lib/x86_64");
    assert_eq!(list(&r["result"]["focus"]), ["/usr/lib/x86_64/libbig.so"]);
    png(&shot);
    // The layer table and the waste list are still there.
    let text = before["text"].as_str().unwrap();
    assert!(
        text.contains("step 1") && text.contains("/usr/bin/tool"),
        "{text}"
    );

    // A name that looks like markup is found and shown as the text it is.
    let r = chrome.drive(
        &html,
        &dir.path().join("search.png"),
        serde_json::json!({ "map": "#treemap", "search": "<script>" }),
    );
    let results = list(&r["searched"]["results"]);
    assert!(results[0].contains("/app/<script>.js"), "{results:?}");
    assert_eq!(r["result"]["zoom"], "/app");
    assert_eq!(list(&r["result"]["focus"]), ["/app/<script>.js"]);
}

#[test]
fn diff_html_compares_two_images_by_directory() {
    let dir = tempfile::tempdir().unwrap();
    let base = layer(&[
        ("usr/", None),
        ("usr/bin/", None),
        ("usr/bin/tool", Some(40_000)),
        ("etc/", None),
        ("etc/conf", Some(100)),
    ]);
    let build = layer(&[
        ("usr/lib/gcc/x86_64/cc1", Some(300_000)),
        ("usr/include/stdio.h", Some(9_000)),
        ("src/main.c", Some(2_000)),
        ("root/.cache/pip/x.whl", Some(80_000)),
        ("app/", None),
        ("app/bin/server", Some(50_000)),
    ]);
    let app = layer(&[("app/", None), ("app/bin/server", Some(50_000))]);
    let a = archive(
        dir.path(),
        "bloated.tar",
        "app:bloated",
        &[base.clone(), build],
    );
    let b = archive(dir.path(), "slim.tar", "app:slim", &[base, app]);
    let html = dir.path().join("diff.html");
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let (a, b, h) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        html.to_str().unwrap(),
    );
    let o = env.lighter(&["diff", a, b, "--html", h]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("HTML report written to {h}")));
    // The text output is as it was.
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(" -> ")
            && text.contains("files: 0 added, 4 removed, 0 changed; layers: 1 of 2 shared"),
        "{text}"
    );
    // And so is the JSON one, with the page written too.
    let o = env.lighter(&["diff", a, b, "--json", "--html", h]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["removed"].as_array().unwrap().len(), 4);

    let page = std::fs::read_to_string(&html).unwrap();
    self_contained(&page);
    let data = embedded(&page);
    let t = by_path(&data["tree"]);
    let m = |p: &str| t.get(p).unwrap_or_else(|| panic!("no node {p}"))[4].clone();
    assert_eq!(m("/"), serde_json::json!([0, 481_100, 1, 90_100]));
    assert_eq!(m("/usr"), serde_json::json!([0, 349_000, 1, 40_000]));
    assert_eq!(m("/root"), serde_json::json!([0, 80_000]));
    assert_eq!(m("/app"), serde_json::json!([0, 50_000, 1, 50_000]));
    assert_eq!(
        data["diff"]["largest_removed"][0],
        serde_json::json!(["usr/lib/gcc/x86_64/cc1", 300_000])
    );

    let Some(bin) = chromium() else { return };
    if !node() {
        return;
    }
    let chrome = Chromium::start(bin);
    let shot = dir.path().join("diff.png");
    let r = chrome.drive(
        &html,
        &shot,
        serde_json::json!({ "map": "#tmA", "click": "/usr", "search": "cc1" }),
    );
    let before = &r["before"];
    // A draws usr, root, app, src and etc; B, on its 19 % of the area, usr and app (its 100 bytes
    // of etc may be under a pixel).
    let mut dirs = list(&before["dirs"]);
    dirs.sort();
    assert_eq!(dirs, ["/app", "/etc", "/root", "/src", "/usr"]);
    let dirs_b = list(&before["dirsB"]);
    assert!(
        dirs_b.contains(&"/usr".to_string()) && dirs_b.contains(&"/app".to_string()),
        "{dirs_b:?}"
    );
    let rendered = before["rendered"].clone();
    assert_eq!(rendered, (5 + dirs_b.len()).to_string());
    let btext = before["text"].as_str().unwrap();
    assert!(
        btext.contains("Largest files only A has") && btext.contains("/usr/lib/gcc/x86_64/cc1"),
        "{btext}"
    );
    assert!(
        has(&r["hover"], "in A: 349kB") && has(&r["hover"], "in B: 40.0kB"),
        "{}",
        r["hover"]
    );
    assert!(has(&r["hover"], "change: \u{2212}309kB"), "{}", r["hover"]);
    let z = &r["zoomed"];
    assert_eq!(z["zoom"], "/usr");
    let mut dirs = list(&z["dirs"]);
    dirs.sort();
    assert_eq!(dirs, ["/usr/bin", "/usr/include", "/usr/lib"]);
    // The directory's children by change, lib first.
    let ztext = z["text"].as_str().unwrap();
    let table = &ztext[ztext
        .find("In /usr, by change")
        .expect("the children table")..];
    assert!(
        table.find("lib/").unwrap() < table.find("include/").unwrap(),
        "{table}"
    );
    for k in ["escaped", "upped", "crumbed"] {
        assert_eq!(r[k]["zoom"], "/", "{k}");
        assert_eq!(r[k]["rendered"], rendered, "{k}");
    }
    let results = list(&r["searched"]["results"]);
    assert!(
        results[0].contains("/usr/lib/gcc/x86_64/cc1") && results[0].contains("300kB \u{2192} 0B"),
        "{results:?}"
    );
    assert_eq!(r["result"]["zoom"], "/usr/lib/gcc/x86_64");
    assert_eq!(list(&r["result"]["focus"]), ["/usr/lib/gcc/x86_64/cc1"]);
    assert!(
        r["result"]["text"]
            .as_str()
            .unwrap()
            .contains("Nothing here"),
        "B has no /usr/lib/gcc/x86_64"
    );
    png(&shot);
}

/// A big image's tree is capped: the smallest entries of each directory fold into one node, the
/// sizes still add up, and the page says so.
#[test]
fn big_trees_fold_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<(String, usize)> = (0..20_500)
        .map(|i| (format!("data/d{:02}/f{i:05}", i % 41), 1 + i % 400))
        .collect();
    let entries: Vec<(&str, Option<usize>)> =
        names.iter().map(|(p, s)| (p.as_str(), Some(*s))).collect();
    let total: u64 = names.iter().map(|n| n.1 as u64).sum();
    let file = archive(dir.path(), "big.tar", "big:1", &[layer(&entries)]);
    let html = dir.path().join("big.html");
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let o = env.lighter(&[
        "analyze",
        file.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.len() < 2_000_000, "{} bytes", page.len());
    let data = embedded(&page);
    let tree = &data["tree"];
    let nodes = tree["nodes"].as_array().unwrap();
    assert!(nodes.len() <= 20_000, "{} nodes", nodes.len());
    assert_eq!(tree["paths"], 20_500 + 41 + 1);
    assert!(tree["folded"].as_u64().unwrap() > 500);
    let folds: Vec<&Value> = nodes.iter().filter(|n| n[2] == 2).collect();
    assert_eq!(folds.len(), 41, "one fold per directory");
    assert!(has(&folds[0][1], " smaller files)"), "{}", folds[0]);
    assert_eq!(nodes[0][4], serde_json::json!([0, total, 1, total]));

    let Some(bin) = chromium() else { return };
    if !node() {
        return;
    }
    let chrome = Chromium::start(bin);
    let shot = dir.path().join("big.png");
    let r = chrome.drive(
        &html,
        &shot,
        serde_json::json!({ "map": "#treemap", "click": "/data" }),
    );
    assert!(
        has(&r["before"]["folded"], "folds the"),
        "{}",
        r["before"]["folded"]
    );
    assert_eq!(r["zoomed"]["rendered"], "41");
    png(&shot);
}
