//! ADD of remote sources, as BuildKit does it, against servers the tests start on 127.0.0.1: an HTTP
//! server on a `TcpListener` thread (fixed bytes with `Last-Modified`, bytes that change between
//! builds, with and without an ETag, an archive, a 404) and `git daemon` over a repository made with `git init`. Checked in the
//! built files: content, name, mode, mtime, owner; `--checksum` both ways (a failed build tags
//! nothing); the cache (same bytes or commit: CACHED; new ones: rerun; an unchanged ETag: a 304 and
//! no download); git by branch, tag (annotated
//! and lightweight), commit, `#ref:subdir`, `--keep-git-dir`.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

const FILE: &[u8] = b"remote file\n";
const LAST_MODIFIED: &str = "Thu, 04 Mar 2021 05:06:07 GMT";
const LAST_MODIFIED_SECS: i64 = 1_614_834_367;

/// The test's HTTP server (testkit's): `/file.txt` and `/pinned.txt` (FILE with Last-Modified),
/// `/changing.txt` (whatever `changing` holds, no Last-Modified), `/etag.txt` (`changing` with an
/// ETag, 304 to an If-None-Match that still holds), `/pack.tar` (a tar archive), anything else 404.
struct Http {
    server: HttpServer,
    changing: Arc<Mutex<Vec<u8>>>,
}

impl Http {
    fn start() -> Http {
        let changing = Arc::new(Mutex::new(b"first version\n".to_vec()));
        let c = changing.clone();
        let server = HttpServer::start(move |req: &HttpRequest| respond(req, &c));
        Http { server, changing }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    fn hits(&self, path: &str) -> usize {
        self.server.hits(path)
    }
}

fn tar_bytes() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "inside.txt", &b"inside"[..]).unwrap();
    b.into_inner().unwrap()
}

fn respond(req: &HttpRequest, changing: &Mutex<Vec<u8>>) -> HttpResponse {
    let last_modified = vec![("Last-Modified".to_string(), LAST_MODIFIED.to_string())];
    match req.path.as_str() {
        "etag.txt" => {
            let body = changing.lock().unwrap().clone();
            let etag = format!("\"{}\"", &sha256_hex(&body)[..16]);
            let headers = vec![("ETag".to_string(), etag.clone())];
            if req.header("if-none-match") == Some(etag.as_str()) {
                return HttpResponse {
                    status: "304 Not Modified",
                    headers,
                    body: Vec::new(),
                    hit_as: Some("etag.txt 304".into()),
                };
            }
            HttpResponse {
                status: "200 OK",
                headers,
                body,
                hit_as: None,
            }
        }
        "file.txt" | "pinned.txt" | "odd%5B1%5D*.txt" => HttpResponse {
            status: "200 OK",
            headers: last_modified,
            body: FILE.to_vec(),
            hit_as: None,
        },
        "changing.txt" => HttpResponse {
            status: "200 OK",
            headers: Vec::new(),
            body: changing.lock().unwrap().clone(),
            hit_as: None,
        },
        "pack.tar" => HttpResponse {
            status: "200 OK",
            headers: last_modified,
            body: tar_bytes(),
            hit_as: None,
        },
        _ => HttpResponse {
            status: "404 Not Found",
            headers: Vec::new(),
            body: b"not found\n".to_vec(),
            hit_as: None,
        },
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Builds `ctx` into a fresh directory (and the image store, tagged `tag`): (ok, stderr, files).
fn build_to(env: &Env, ctx: &Path, tag: &str, extra: &[&str]) -> (bool, String, tempfile::TempDir) {
    env.build_local(ctx, &[&["-t", tag, "-o", "type=image"], extra].concat())
}

/// (mode bits, uid, gid, mtime) of a path in a built tree.
fn meta(p: &Path) -> (u32, u32, u32, i64) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime())
}

/// The step lines of a plain-progress log that ran (not CACHED), by their instruction text.
fn reran(err: &str, what: &str) -> bool {
    let mut ids = Vec::new();
    // Progress lines only (`#N ...`), not the summary's critical path.
    for l in err.lines().filter(|l| l.starts_with('#')) {
        if l.contains(what) {
            if let Some(id) = l.split_whitespace().next() {
                ids.push(id.to_string());
            }
        }
    }
    assert!(!ids.is_empty(), "no step {what:?} in:\n{err}");
    !ids.iter()
        .all(|id| err.lines().any(|l| l == format!("{id} CACHED")))
}

#[test]
fn add_http_name_mode_mtime_owner_and_no_extraction() {
    let Some(env) = with_busybox() else { return };
    let http = Http::start();
    let ctx = tempfile::tempdir().unwrap();
    let df = format!(
        "FROM busybox\nADD {f} /f.txt\nADD {f} /dir/\nADD --chown=1000:1000 --chmod=644 {f} /owned\nADD {p} /archives/\n\
         RUN mkdir /existing\nADD {f} /existing\nADD {c} {f} /both/\nADD {odd} /odd/\nADD {odd} /odd-renamed\n",
        odd = http.url("odd%5B1%5D*.txt"),
        f = http.url("file.txt"),
        p = http.url("pack.tar"),
        c = http.url("changing.txt"),
    );
    write(ctx.path(), &[("Dockerfile", &df)]);
    let (ok, err, out) = build_to(&env, ctx.path(), "remote-http:1", &[]);
    assert!(ok, "{err}");
    let o = out.path();
    // The file as downloaded: mode 0600, mtime from Last-Modified, owner root (BuildKit's http source).
    for p in [
        "f.txt",
        "dir/file.txt",
        "existing/file.txt",
        "both/file.txt",
    ] {
        assert_eq!(std::fs::read(o.join(p)).unwrap(), FILE, "{p}");
        assert_eq!(meta(&o.join(p)), (0o600, 0, 0, LAST_MODIFIED_SECS), "{p}");
    }
    // A name with wildcard characters (percent-decoded from the URL) is taken literally.
    assert_eq!(std::fs::read(o.join("odd/odd[1]*.txt")).unwrap(), FILE);
    assert_eq!(std::fs::read(o.join("odd-renamed")).unwrap(), FILE);
    // --chown and --chmod apply to the downloaded file.
    assert_eq!(
        meta(&o.join("owned")),
        (0o644, 1000, 1000, LAST_MODIFIED_SECS)
    );
    // An archive is stored as it is, not extracted; no Last-Modified gives the epoch.
    assert_eq!(
        std::fs::read(o.join("archives/pack.tar")).unwrap(),
        tar_bytes()
    );
    assert!(!o.join("archives/inside.txt").exists());
    assert_eq!(
        std::fs::read(o.join("both/changing.txt")).unwrap(),
        b"first version\n"
    );
    assert_eq!(
        meta(&o.join("both/changing.txt")).3,
        0,
        "no Last-Modified: the epoch"
    );
    // History names the URL.
    let h = env.lighter(&["history", "--no-trunc", "remote-http:1"]);
    let h = String::from_utf8_lossy(&h.stdout);
    assert!(
        h.contains(&format!("ADD {} /f.txt # buildkit", http.url("file.txt"))),
        "{h}"
    );
}

/// As BuildKit's http source: a URL with an ETag is revalidated with `If-None-Match`; a 304 keeps
/// the cached step without a download, and a step that must run anyway downloads the file again and
/// checks it against the content the ETag stood for.
#[test]
fn add_http_revalidates_with_the_etag() {
    let Some(env) = with_busybox() else { return };
    let http = Http::start();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM busybox\nADD {} /e.txt\n", http.url("etag.txt")),
        )],
    );
    let (ok, err, out) = build_to(&env, ctx.path(), "remote-etag:1", &[]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(out.path().join("e.txt")).unwrap(),
        b"first version\n"
    );
    assert_eq!((http.hits("etag.txt"), http.hits("etag.txt 304")), (1, 0));
    // Unchanged: one conditional request, answered 304, and the step is cached.
    let (ok, err, _) = build_to(&env, ctx.path(), "remote-etag:1", &[]);
    assert!(ok, "{err}");
    assert!(!reran(&err, "ADD http"), "{err}");
    assert_eq!((http.hits("etag.txt"), http.hits("etag.txt 304")), (2, 1));
    // --no-cache: still 304 for the key, then the step downloads the bytes it runs with.
    let (ok, err, out) = build_to(&env, ctx.path(), "remote-etag:1", &["--no-cache"]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(out.path().join("e.txt")).unwrap(),
        b"first version\n"
    );
    assert_eq!((http.hits("etag.txt"), http.hits("etag.txt 304")), (4, 2));
    // Changed on the server: a new ETag, a full answer, the step reruns with the new bytes.
    *http.changing.lock().unwrap() = b"second version\n".to_vec();
    let (ok, err, out) = build_to(&env, ctx.path(), "remote-etag:1", &[]);
    assert!(ok, "{err}");
    assert!(reran(&err, "ADD http"), "{err}");
    assert_eq!(
        std::fs::read(out.path().join("e.txt")).unwrap(),
        b"second version\n"
    );
    assert_eq!((http.hits("etag.txt"), http.hits("etag.txt 304")), (5, 2));
}

#[test]
fn add_http_cache_follows_the_bytes_and_checksum_pins_them() {
    let Some(env) = with_busybox() else { return };
    let http = Http::start();
    let ctx = tempfile::tempdir().unwrap();
    let good = sha256_hex(FILE);
    let df = format!(
        "FROM busybox\nADD {c} /c.txt\nADD --checksum=sha256:{good} {p} /pinned\nRUN cat /c.txt > /copy\n",
        c = http.url("changing.txt"),
        p = http.url("pinned.txt"),
    );
    write(ctx.path(), &[("Dockerfile", &df)]);
    let (ok, err, out) = build_to(&env, ctx.path(), "remote-cache:1", &[]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(out.path().join("pinned")).unwrap(), FILE);
    assert_eq!(
        meta(&out.path().join("pinned")),
        (0o600, 0, 0, LAST_MODIFIED_SECS)
    );
    assert_eq!(http.hits("pinned.txt"), 1);
    // Same bytes: every step cached; a --checksum source is keyed by its checksum, not downloaded.
    let (ok, err, _) = build_to(&env, ctx.path(), "remote-cache:1", &[]);
    assert!(ok, "{err}");
    assert!(!reran(&err, "ADD http") && !reran(&err, "RUN cat"), "{err}");
    assert_eq!(
        http.hits("pinned.txt"),
        1,
        "a pinned, cached download is not fetched again"
    );
    assert_eq!(
        http.hits("changing.txt"),
        2,
        "an unpinned source is fetched to compute its key"
    );
    // New bytes: the ADD and what follows it rerun.
    *http.changing.lock().unwrap() = b"second version\n".to_vec();
    let (ok, err, out) = build_to(&env, ctx.path(), "remote-cache:1", &[]);
    assert!(ok, "{err}");
    assert!(reran(&err, "changing.txt /c.txt"), "{err}");
    assert!(reran(&err, "RUN cat"), "{err}");
    assert_eq!(
        std::fs::read(out.path().join("copy")).unwrap(),
        b"second version\n"
    );
}

#[test]
fn add_http_failures_are_clear_and_tag_nothing() {
    let Some(env) = with_busybox() else { return };
    let http = Http::start();
    let ctx = tempfile::tempdir().unwrap();
    let actual = sha256_hex(FILE);
    let wrong = "0".repeat(64);
    let url = http.url("file.txt");
    let df = format!("FROM busybox\nADD --checksum=sha256:{wrong} {url} /f\n");
    write(ctx.path(), &[("Dockerfile", &df)]);
    let (ok, err, _) = env.build(ctx.path(), &["-t", "remote-bad:1"]);
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!("digest mismatch for {url}"))
            && err.contains(&format!("expected sha256:{wrong}"))
            && err.contains(&format!("got sha256:{actual}"))
            && err.contains("Dockerfile:2"),
        "{err}"
    );
    assert!(
        !env.lighter(&["inspect", "remote-bad:1"]).status.success(),
        "a failed build tags nothing"
    );
    // A refused connection, a 404, a malformed checksum, and misuse each name what is wrong.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let refused = format!("http://127.0.0.1:{closed}/x");
    let missing = http.url("missing.bin");
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            format!("ADD {refused} /x"),
            vec![format!("failed to fetch {refused}")],
        ),
        (
            format!("ADD {missing} /x"),
            vec![format!("failed to fetch {missing}"), "404".into()],
        ),
        (
            format!("ADD --checksum=md5:abc {url} /x"),
            vec!["invalid --checksum".into(), url.clone()],
        ),
        (
            format!("COPY {url} /x"),
            vec!["source can't be a URL for COPY".into()],
        ),
        (
            "ADD --checksum=sha256:abc Dockerfile /x".into(),
            vec!["requires an HTTP(S) or Git source".into()],
        ),
        (
            format!("ADD Dockerfile {url} /x/"),
            vec!["can't be mixed".into()],
        ),
    ];
    for (line, wants) in cases {
        write(
            ctx.path(),
            &[("Dockerfile", &format!("FROM busybox\n{line}\n"))],
        );
        let (ok, err, _) = env.build(ctx.path(), &["-t", "remote-bad:1"]);
        assert!(!ok, "{line}: {err}");
        for w in wants {
            assert!(
                err.contains(&w) && err.contains("Dockerfile:2"),
                "{line}: want {w:?} in {err}"
            );
        }
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!env.lighter(&["inspect", "remote-bad:1"]).status.success());
}

/// A repository: commit one (README "one", sub/inner.txt, an executable, a symlink), tagged `v1`
/// (annotated) and `light`; branch `feature` adds feature.txt; `main` then changes README to "two".
/// Returns (commit one, main's commit).
fn make_repo(repo: &Path) -> (String, String) {
    std::fs::create_dir_all(repo.join("sub")).unwrap();
    std::fs::create_dir_all(repo.join("bin")).unwrap();
    git(repo, &["init", "-q"]);
    std::fs::write(repo.join("README"), "one\n").unwrap();
    std::fs::write(repo.join("sub/inner.txt"), "inner\n").unwrap();
    std::fs::write(repo.join("bin/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        repo.join("bin/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("README", repo.join("link")).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "one"]);
    let one = git(repo, &["rev-parse", "HEAD"]);
    git(repo, &["tag", "-a", "v1", "-m", "version one"]);
    git(repo, &["tag", "light"]);
    git(repo, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(repo.join("feature.txt"), "feature\n").unwrap();
    git(repo, &["add", "feature.txt"]);
    git(repo, &["commit", "-q", "-m", "feature"]);
    git(repo, &["checkout", "-q", "main"]);
    std::fs::write(repo.join("README"), "two\n").unwrap();
    git(repo, &["commit", "-q", "-am", "two"]);
    let two = git(repo, &["rev-parse", "HEAD"]);
    (one, two)
}

#[test]
fn add_git_branch_tag_commit_subdir_keep_git_dir_and_cache() {
    if !git_available() {
        return;
    }
    let Some(env) = with_busybox() else { return };
    let base = tempfile::tempdir().unwrap();
    let repo = base.path().join("repo");
    let (one, two) = make_repo(&repo);
    let daemon = start_git_daemon(base.path());
    let r = format!("git://127.0.0.1:{}/repo", daemon.port);
    let ctx = tempfile::tempdir().unwrap();
    let df = format!(
        "FROM scratch\nADD {r} /default\nADD {r}#main /main\nADD {r}#v1 /v1\nADD {r}#light /light\nADD {r}#{one} /commit\n\
         ADD {r}#feature:sub /featsub\nADD --keep-git-dir=true {r}#main /keep\nADD --checksum={two} {r}#main /pinned\n\
         ADD --chown=7:8 {r}?tag=v1&subdir=bin /tools/\n"
    );
    write(ctx.path(), &[("Dockerfile", &df)]);
    let start = now();
    let (ok, err, out) = build_to(&env, ctx.path(), "remote-git:1", &[]);
    let end = now();
    assert!(ok, "{err}");
    let o = out.path();
    let read = |p: &str| std::fs::read_to_string(o.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    for (dir, readme) in [
        ("default", "two\n"),
        ("main", "two\n"),
        ("v1", "one\n"),
        ("light", "one\n"),
        ("commit", "one\n"),
        ("keep", "two\n"),
        ("pinned", "two\n"),
    ] {
        assert_eq!(read(&format!("{dir}/README")), readme, "{dir}");
        assert_eq!(read(&format!("{dir}/sub/inner.txt")), "inner\n", "{dir}");
        // Modes and symlinks as git checks them out (umask 022); owner root; mtime the checkout's.
        let (mode, uid, gid, mtime) = meta(&o.join(format!("{dir}/README")));
        assert_eq!((mode, uid, gid), (0o644, 0, 0), "{dir}");
        assert!(
            mtime >= start - 1 && mtime <= end + 1,
            "{dir}: mtime {mtime} is the checkout time ({start}..{end})"
        );
        assert_eq!(meta(&o.join(format!("{dir}/bin/run.sh"))).0, 0o755, "{dir}");
        assert_eq!(
            std::fs::read_link(o.join(format!("{dir}/link"))).unwrap(),
            PathBuf::from("README"),
            "{dir}"
        );
        assert_eq!(
            o.join(format!("{dir}/.git")).exists(),
            dir == "keep",
            "{dir}: .git only with --keep-git-dir"
        );
    }
    assert!(!o.join("main/feature.txt").exists() && !o.join("v1/feature.txt").exists());
    // #ref:subdir: the subdirectory's contents at the destination.
    assert_eq!(read("featsub/inner.txt"), "inner\n");
    assert!(!o.join("featsub/sub").exists() && !o.join("featsub/README").exists());
    assert_eq!(read("tools/run.sh"), "#!/bin/sh\necho hi\n");
    assert_eq!(meta(&o.join("tools/run.sh")).1, 7, "--chown applies");
    // --keep-git-dir: a repository at the commit.
    assert_eq!(read("keep/.git/HEAD").trim(), two);
    assert_eq!(git(&o.join("keep"), &["rev-parse", "HEAD"]), two);
    // An unchanged rebuild is CACHED (the key is the resolved commit).
    let (ok, err, _) = build_to(&env, ctx.path(), "remote-git:1", &[]);
    assert!(ok, "{err}");
    assert!(!reran(&err, "ADD git://"), "{err}");
    // A new commit on main reruns the steps that follow main, not those pinned to a tag or commit.
    std::fs::write(repo.join("README"), "three\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "three"]);
    let df2 = df.replace(&format!("ADD --checksum={two} {r}#main /pinned\n"), "");
    write(ctx.path(), &[("Dockerfile", &df2)]);
    let (ok, err, out) = build_to(&env, ctx.path(), "remote-git:2", &[]);
    assert!(ok, "{err}");
    assert!(reran(&err, &format!("ADD {r}#main /main")), "{err}");
    // The tag's step reruns only because a step before it did: its own content key is the same.
    let v1 = err
        .lines()
        .find(|l| l.contains(&format!("ADD {r}#v1 /v1")))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    let done = err
        .lines()
        .find(|l| l.starts_with(&format!("{v1} DONE")))
        .unwrap_or("");
    assert!(
        done.ends_with("(rebuilt: an earlier step changed)"),
        "{done}\n{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("main/README")).unwrap(),
        "three\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("v1/README")).unwrap(),
        "one\n"
    );
    // --checksum pins main to the old commit: now a clear error, and nothing is tagged.
    write(ctx.path(), &[("Dockerfile", &df)]);
    let (ok, err, _) = build_to(&env, ctx.path(), "remote-git:3", &[]);
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!("expected checksum to match {two}")) && err.contains("Dockerfile:9"),
        "{err}"
    );
    assert!(!env.lighter(&["inspect", "remote-git:3"]).status.success());
    // A ref that does not exist, and a malformed checksum, are clear errors.
    for (line, want) in [
        (format!("ADD {r}#nope /x"), "does not contain ref nope"),
        (
            format!("ADD --checksum=xyz {r}#main /x"),
            "expected hex commit hash",
        ),
        (
            format!("COPY {r}#main /x"),
            "source can't be a git ref for COPY",
        ),
    ] {
        write(
            ctx.path(),
            &[("Dockerfile", &format!("FROM scratch\n{line}\n"))],
        );
        let (ok, err, _) = env.build(ctx.path(), &[]);
        assert!(
            !ok && err.contains(want) && err.contains("Dockerfile:2"),
            "{line}: {err}"
        );
    }
}

/// The same ADDs of http URLs through a real Docker engine and through lighter give the same file
/// names, modes, owners, mtimes and contents. The engine here (Debian's docker.io, no buildx) builds
/// with its classic builder, which agrees with BuildKit's http source (mode 0600, owner 0:0, mtime
/// from Last-Modified: moby/buildkit source/http/source.go).
#[test]
fn add_http_matches_docker() {
    let Some(d) = docker() else { return };
    let Some(env) = with_busybox() else { return };
    let http = Http::start();
    let ctx = tempfile::tempdir().unwrap();
    let f = http.url("file.txt");
    let p = http.url("pack.tar");
    let df = format!("FROM scratch\nADD {f} /f.txt\nADD {f} /d/\nADD {p} /a/\n");
    write(ctx.path(), &[("Dockerfile", &df)]);
    let tag = format!("lighter-add-remote:{}", std::process::id());
    let o = Command::new(d)
        .args(["build", "--network", "host", "-q", "-t", &tag])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    if !o.status.success() {
        let e = String::from_utf8_lossy(&o.stderr);
        if e.contains("legacy builder is deprecated") && e.contains("removed") {
            eprintln!("SKIP: this docker has no classic builder: {e}");
            return;
        }
        panic!("docker build: {e}");
    }
    let cid = Command::new(d)
        .args(["create", &tag, "x"])
        .output()
        .unwrap();
    let cid = String::from_utf8_lossy(&cid.stdout).trim().to_string();
    let export = ctx.path().join("docker.tar");
    let st = Command::new(d)
        .args(["export", "-o", export.to_str().unwrap(), &cid])
        .status()
        .unwrap();
    let _ = Command::new(d).args(["rm", "-f", &cid]).output();
    let _ = Command::new(d).args(["rmi", "-f", &tag]).output();
    assert!(st.success());
    let mut theirs = BTreeMap::new();
    let mut a = tar::Archive::new(std::fs::File::open(&export).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let h = e.header().clone();
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        let m = (
            h.mode().unwrap() & 0o7777,
            h.uid().unwrap() as u32,
            h.gid().unwrap() as u32,
            h.mtime().unwrap() as i64,
        );
        theirs.insert(path, (m, sha256_hex(&body)));
    }
    let (ok, err, out) = build_to(&env, ctx.path(), "remote-docker:1", &[]);
    assert!(ok, "{err}");
    for path in ["f.txt", "d/file.txt", "a/pack.tar"] {
        let ours = (
            meta(&out.path().join(path)),
            sha256_hex(&std::fs::read(out.path().join(path)).unwrap()),
        );
        assert_eq!(
            Some(&ours),
            theirs.get(path),
            "{path}: lighter vs docker ({theirs:?})"
        );
    }
    assert!(
        !theirs.contains_key("a/inside.txt"),
        "docker does not extract a remote archive either"
    );
}
