//! A fault-injecting HTTP proxy in front of a real `docker-registry`: 429 with `Retry-After`, 503,
//! a body cut mid-blob, a wrong blob, a missing `Docker-Content-Digest`, a redirect to another
//! host, a huge manifest, a registry failing mid-push. Each case has its outcome: a retry that
//! succeeds, or a clear error and nothing tagged (locally or remotely).

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
enum Fault {
    /// Answer this status instead of forwarding.
    Status(u16, Option<u32>),
    /// Forward the headers with the full length, then half the body, then close.
    CutBody,
    /// Flip a byte of the body.
    WrongBody,
    DropDigestHeader,
    /// 307 to this origin, same path.
    RedirectTo(String),
    /// A 5 MiB manifest.
    Huge,
    /// Forward, adding this header to the answer.
    AddHeader(&'static str),
}

struct Rule {
    method: &'static str,
    path: &'static str,
    fault: Fault,
    /// How many requests it applies to (`usize::MAX`: all).
    times: usize,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    /// `METHOD path auth?` of every request.
    log: Vec<String>,
}

/// The proxy: forwards to `upstream`, applies the first matching rule, asks for Basic `auth`.
struct Proxy {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    fn start(ip: &str, upstream: u16, auth: Option<String>) -> Proxy {
        let l = TcpListener::bind((ip, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let state: Arc<Mutex<State>> = Default::default();
        let st = state.clone();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let (st, auth) = (st.clone(), auth.clone());
                std::thread::spawn(move || {
                    let _ = serve(c, upstream, &st, auth.as_deref());
                });
            }
        });
        Proxy { port, state }
    }

    fn rule(&self, method: &'static str, path: &'static str, fault: Fault, times: usize) {
        self.state.lock().unwrap().rules.push(Rule {
            method,
            path,
            fault,
            times,
        });
    }

    fn clear(&self) {
        let mut s = self.state.lock().unwrap();
        s.rules.clear();
        s.log.clear();
    }

    fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }
}

fn serve(
    mut c: TcpStream,
    upstream: u16,
    st: &Mutex<State>,
    auth: Option<&str>,
) -> std::io::Result<()> {
    c.set_read_timeout(Some(std::time::Duration::from_secs(20)))?;
    let mut r = BufReader::new(c.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    if method.is_empty() || !line.contains("HTTP/1") {
        return Ok(()); // A TLS hello or garbage: hang up, as a plain-HTTP server would.
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end().to_string();
        if h.is_empty() {
            break;
        }
        headers.push(h);
    }
    let get = |name: &str| {
        headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        let len: usize = get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    }
    let authz = get("authorization");
    let fault = {
        let mut s = st.lock().unwrap();
        s.log
            .push(format!("{method} {path} auth={}", authz.is_some()));
        let i = s
            .rules
            .iter()
            .position(|x| x.method == method && path.contains(x.path) && x.times > 0);
        i.map(|i| {
            s.rules[i].times = s.rules[i].times.saturating_sub(1);
            s.rules[i].fault.clone()
        })
    };
    if let Some(want) = auth {
        if authz.as_deref() != Some(want) {
            return respond(
                &mut c,
                401,
                &["WWW-Authenticate: Basic realm=\"faults\""],
                b"",
                false,
            );
        }
    }
    match &fault {
        Some(Fault::Status(code, retry)) => {
            let h = retry.map(|s| format!("Retry-After: {s}"));
            let hs: Vec<&str> = h.iter().map(String::as_str).collect();
            return respond(
                &mut c,
                *code,
                &hs,
                b"{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"injected\"}]}",
                false,
            );
        }
        Some(Fault::RedirectTo(origin)) => {
            let loc = format!("Location: {origin}{path}");
            return respond(&mut c, 307, &[&loc], b"", false);
        }
        Some(Fault::Huge) => {
            let big = vec![b' '; 5 << 20];
            return respond(
                &mut c,
                200,
                &["Content-Type: application/vnd.oci.image.manifest.v1+json"],
                &big,
                false,
            );
        }
        _ => {}
    }
    // Forward.
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    // The client's Host goes through, so the registry's Location headers point back at the proxy.
    let host = get("host").unwrap_or_else(|| format!("127.0.0.1:{upstream}"));
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for h in &headers {
        let k = h.split(':').next().unwrap_or("").to_ascii_lowercase();
        if !matches!(
            k.as_str(),
            "host" | "connection" | "authorization" | "transfer-encoding" | "content-length"
        ) {
            req.push_str(h);
            req.push_str("\r\n");
        }
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    up.write_all(req.as_bytes())?;
    up.write_all(&body)?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut resp_body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let mut out_headers: Vec<String> = Vec::new();
    let mut chunked = false;
    let mut head_len = None;
    for h in lines {
        let k = h.split(':').next().unwrap_or("").to_ascii_lowercase();
        match k.as_str() {
            "transfer-encoding" => chunked = h.to_ascii_lowercase().contains("chunked"),
            "connection" => {}
            "content-length" => head_len = Some(h.to_string()),
            "docker-content-digest" if matches!(fault, Some(Fault::DropDigestHeader)) => {}
            _ => out_headers.push(h.to_string()),
        }
    }
    if chunked {
        resp_body = dechunk(&resp_body);
    }
    if matches!(fault, Some(Fault::WrongBody)) && !resp_body.is_empty() {
        let mid = resp_body.len() / 2;
        resp_body[mid] ^= 0xff;
    }
    if let Some(Fault::AddHeader(h)) = &fault {
        out_headers.push(h.to_string());
    }
    let is_head = method == "HEAD";
    if is_head {
        out_headers.extend(head_len);
    }
    let hs: Vec<&str> = out_headers.iter().map(String::as_str).collect();
    if matches!(fault, Some(Fault::CutBody)) {
        let full = resp_body.len();
        let mut msg =
            format!("HTTP/1.1 {status} X\r\nContent-Length: {full}\r\nConnection: close\r\n");
        for h in &hs {
            msg.push_str(h);
            msg.push_str("\r\n");
        }
        msg.push_str("\r\n");
        c.write_all(msg.as_bytes())?;
        c.write_all(&resp_body[..full / 2])?;
        return c.shutdown(std::net::Shutdown::Both);
    }
    respond(&mut c, status, &hs, &resp_body, is_head)
}

fn respond(
    c: &mut TcpStream,
    status: u16,
    headers: &[&str],
    body: &[u8],
    head: bool,
) -> std::io::Result<()> {
    let mut msg = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    if !head {
        msg.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for h in headers {
        msg.push_str(h);
        msg.push_str("\r\n");
    }
    msg.push_str("\r\n");
    c.write_all(msg.as_bytes())?;
    if !head {
        c.write_all(body)?;
    }
    c.flush()
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(i) = b.windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..(i + 2 + n).min(b.len())]);
        b = &b[(i + 4 + n).min(b.len())..];
    }
    out
}

fn lighter(env: &Env, home: &std::path::Path, args: &[&str]) -> (bool, String) {
    let o = env
        .cmd()
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("LIGHTER_REGISTRY_CONFIG", home.join("none.toml"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn faults_are_retried_or_refused_and_nothing_half_done_is_tagged() {
    let Some(env) = with_busybox() else { return };
    let Some(reg) = RegistryServer::start(None) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    // The proxy asks for Basic tester:pw ("dGVzdGVyOnB3"); the credentials are in config.json.
    let proxy = Proxy::start("127.0.0.1", reg.port, Some("Basic dGVzdGVyOnB3".into()));
    let side = Proxy::start("127.0.0.2", reg.port, None);
    std::fs::create_dir_all(home.path().join(".docker")).unwrap();
    std::fs::write(home.path().join("none.toml"), "").unwrap();
    std::fs::write(
        home.path().join(".docker/config.json"),
        format!(
            "{{\"auths\":{{\"127.0.0.1:{}\":{{\"auth\":\"dGVzdGVyOnB3\"}}}}}}",
            proxy.port
        ),
    )
    .unwrap();
    let name = format!("127.0.0.1:{}/f/busybox:1", proxy.port);
    let (ok, err) = lighter(&env, home.path(), &["tag", "busybox:latest", &name]);
    assert!(ok, "{err}");
    let (ok, err) = lighter(&env, home.path(), &["push", &name]);
    assert!(ok, "{err}");
    let pull = |what: &str| {
        let fresh = Env {
            root: tempfile::tempdir().unwrap(),
        };
        let t = std::time::Instant::now();
        let (ok, err) = lighter(&fresh, home.path(), &["pull", what]);
        let tagged = lighter(&fresh, home.path(), &["inspect", what]).0;
        (ok, err, tagged, t.elapsed())
    };

    // Retried: a 429 with Retry-After, 503s, a body cut mid-blob.
    proxy.rule("GET", "/manifests/", Fault::Status(429, Some(1)), 1);
    proxy.rule("GET", "/blobs/", Fault::Status(503, None), 2);
    let (ok, err, tagged, took) = pull(&name);
    assert!(ok && tagged, "{err}");
    assert!(
        took >= std::time::Duration::from_secs(1),
        "Retry-After was honoured"
    );
    proxy.clear();
    proxy.rule("GET", "/blobs/sha256:", Fault::CutBody, 1);
    let (ok, err, tagged, _) = pull(&name);
    assert!(ok && tagged, "a cut body is downloaded again: {err}");
    // A missing Docker-Content-Digest: the digest is computed.
    proxy.clear();
    proxy.rule("GET", "/manifests/", Fault::DropDigestHeader, usize::MAX);
    let (ok, err, _, _) = pull(&name);
    assert!(ok, "{err}");
    // A redirect to another host: followed, without the credentials.
    proxy.clear();
    let origin = format!("http://127.0.0.2:{}", side.port);
    proxy.rule(
        "GET",
        "/blobs/sha256:",
        Fault::RedirectTo(origin),
        usize::MAX,
    );
    let (ok, err, _, _) = pull(&name);
    assert!(ok, "{err}");
    let side_log = side.log();
    assert!(
        !side_log.is_empty() && side_log.iter().all(|l| l.ends_with("auth=false")),
        "{side_log:?}"
    );
    assert!(proxy.log().iter().any(|l| l.ends_with("auth=true")));

    // Refused, nothing tagged: a wrong blob, a huge manifest, a rate limit that does not end.
    for (fault, path, want) in [
        (Fault::WrongBody, "/blobs/sha256:", "digest"),
        (Fault::Huge, "/manifests/", "refused"),
        (Fault::Status(429, Some(0)), "/manifests/", "rate limited"),
    ] {
        proxy.clear();
        side.clear();
        proxy.rule("GET", path, fault.clone(), usize::MAX);
        let (ok, err, tagged, _) = pull(&name);
        assert!(!ok && !tagged && err.contains(want), "{fault:?}: {err}");
        assert!(
            err.contains(&format!("127.0.0.1:{}/f/busybox", proxy.port)),
            "names the repository: {err}"
        );
    }

    // A registry failing mid-push: no remote tag; the rerun completes.
    proxy.clear();
    let other = format!("127.0.0.1:{}/f/other:2", proxy.port);
    lighter(&env, home.path(), &["tag", "busybox:latest", &other]);
    proxy.rule("PUT", "/manifests/", Fault::Status(500, None), usize::MAX);
    let (ok, err) = lighter(&env, home.path(), &["push", &other]);
    assert!(!ok && err.contains("500"), "{err}");
    let (ok, _, _, _) = pull(&other);
    assert!(!ok, "no tag after a failed push");
    proxy.clear();
    let (ok, err) = lighter(&env, home.path(), &["push", &other]);
    assert!(ok && err.contains("Layer already exists"), "{err}");
    let (ok, err, tagged, _) = pull(&other);
    assert!(ok && tagged, "{err}");

    // A registry that asks for chunked uploads gets PATCHes, then a PUT that closes the upload.
    proxy.clear();
    let chunked = format!("127.0.0.1:{}/chunked/bb:1", proxy.port);
    // An image of its own, so no blob can be mounted from the repositories pushed above.
    let ctx = tempfile::tempdir().unwrap();
    let unique = format!("{:?}", std::time::SystemTime::now()).repeat(5000);
    std::fs::write(ctx.path().join("f"), unique).unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM scratch\nCOPY f /f\n").unwrap();
    let (ok, err) = lighter(
        &env,
        home.path(),
        &["build", "-q", "-t", &chunked, ctx.path().to_str().unwrap()],
    );
    assert!(ok, "{err}");
    proxy.rule(
        "POST",
        "/blobs/uploads/",
        Fault::AddHeader("OCI-Chunk-Min-Length: 65536"),
        usize::MAX,
    );
    let (ok, err) = lighter(&env, home.path(), &["push", &chunked]);
    assert!(ok, "{err}");
    let log = proxy.log();
    assert!(log.iter().any(|l| l.starts_with("PATCH ")), "{log:?}");
    let (ok, err, tagged, _) = pull(&chunked);
    assert!(ok && tagged, "{err}");
}
