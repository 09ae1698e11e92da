//! Bearer token auth with a real `docker-registry` and a small token server of this harness that
//! signs ES256 JWTs (with an `x5c` chain the registry checks against its `rootcertbundle`). Tokens
//! live 2 s. In "lying" mode the server tells the client a token lives 300 s while its JWT expires
//! after 2 s: the registry then answers 401 to the stale token, and the client must authenticate
//! again and replay the request.

mod common;

use base64::Engine as _;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const USER_PASS_B64: &str = "dGVzdGVyOnB3"; // tester:pw

struct TokenServer {
    port: u16,
    issued: Arc<AtomicUsize>,
    lying: Arc<AtomicBool>,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TokenServer {
    fn start(key: p256::ecdsa::SigningKey, cert_der: Vec<u8>) -> TokenServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let issued = Arc::new(AtomicUsize::new(0));
        let lying = Arc::new(AtomicBool::new(false));
        let (i2, l2) = (issued.clone(), lying.clone());
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let mut authz = None;
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            authz = Some(v.trim().to_string());
                        }
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let target = line.split_whitespace().nth(1).unwrap_or("");
                // GET: the query; the OAuth2 POST (identity tokens): the form body.
                let mut form = vec![0u8; len];
                let _ = std::io::Read::read_exact(&mut r, &mut form);
                let form = String::from_utf8_lossy(&form).into_owned();
                let query = if line.starts_with("POST") {
                    form.as_str()
                } else {
                    target.split_once('?').map(|(_, q)| q).unwrap_or("")
                };
                if line.starts_with("POST") {
                    let refresh = query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("refresh_token="))
                        .map(percent_decode);
                    if refresh.as_deref() == Some("refresh-me") {
                        authz = Some(format!("Basic {USER_PASS_B64}"));
                    } else {
                        authz = Some("Bearer bad-refresh-token".into());
                    }
                }
                let mut access = Vec::new();
                let scopes: Vec<String> = query
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("scope="))
                    .flat_map(|s| {
                        percent_decode(s)
                            .split(' ')
                            .map(str::to_string)
                            .collect::<Vec<_>>()
                    })
                    .collect();
                for scope in scopes {
                    {
                        let mut parts = scope.splitn(3, ':');
                        let (ty, name, actions) = (parts.next(), parts.next(), parts.next());
                        if let (Some("repository"), Some(n), Some(a)) = (ty, name, actions) {
                            access.push(serde_json::json!({
                                "type": "repository", "name": n,
                                "actions": a.split(',').collect::<Vec<_>>()
                            }));
                        }
                    }
                }
                let mut c = c;
                let good = authz.as_deref() == Some(&format!("Basic {USER_PASS_B64}"));
                if authz.is_some() && !good {
                    let _ = c.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    continue;
                }
                if !good {
                    access.clear(); // anonymous: a token that grants nothing
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let n = i2.fetch_add(1, Ordering::SeqCst);
                let header = serde_json::json!({
                    "typ": "JWT", "alg": "ES256",
                    "x5c": [base64::engine::general_purpose::STANDARD.encode(&cert_der)]
                });
                let claims = serde_json::json!({
                    "iss": "lighter-test-issuer", "sub": if good { "tester" } else { "" },
                    // distribution accepts a token 60 s past its exp (its leeway): this exp makes
                    // the token good for 2 s at the registry.
                    "aud": "lighter-registry", "exp": now - 58, "nbf": now - 61, "iat": now,
                    "jti": format!("t{n}"), "access": access,
                });
                let signing_input = format!(
                    "{}.{}",
                    b64url(header.to_string().as_bytes()),
                    b64url(claims.to_string().as_bytes())
                );
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = key.sign(signing_input.as_bytes());
                let token = format!("{signing_input}.{}", b64url(&sig.to_bytes()));
                let life = if l2.load(Ordering::SeqCst) { 300 } else { 2 };
                let body = serde_json::json!({ "token": token, "expires_in": life }).to_string();
                let _ = c.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        TokenServer {
            port,
            issued,
            lying,
        }
    }
}

#[test]
fn bearer_tokens_with_scopes_expiry_and_reauthentication() {
    let Some(env) = with_busybox() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (key_path, cert_path) = (dir.path().join("tok.key"), dir.path().join("tok.crt"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            "/CN=lighter token signer",
            "-keyout",
            key_path.to_str().unwrap(),
        ])
        .args(["-out", cert_path.to_str().unwrap()])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        missing_peer("openssl could not make the token signing key");
        return;
    }
    use p256::pkcs8::DecodePrivateKey;
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&std::fs::read_to_string(&key_path).unwrap())
        .unwrap();
    let pem = std::fs::read_to_string(&cert_path).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let tokens = TokenServer::start(key, der);
    let extra = format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: lighter-registry\n    issuer: lighter-test-issuer\n    rootcertbundle: {}\n",
        tokens.port,
        cert_path.display()
    );
    let Some(reg) = RegistryServer::start_with(None, &extra) else {
        return;
    };
    let host = reg.host();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("r.toml"), "").unwrap();
    let run = |e: &Env, args: &[&str]| {
        let o = e
            .cmd()
            .env("HOME", home.path())
            .env("DOCKER_CONFIG", home.path().join(".docker"))
            .env("LIGHTER_REGISTRY_CONFIG", home.path().join("r.toml"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let name = format!("{host}/tok/base:1");
    run(&env, &["tag", "busybox:latest", &name]);
    // Anonymous: the token grants nothing, the registry refuses, the error says to log in.
    let (ok, err) = run(&env, &["push", &name]);
    assert!(!ok && err.contains("lighter login"), "{err}");
    // Logged in (the token server checks the password), push and pull.
    let mut login = env.cmd();
    login
        .env("HOME", home.path())
        .env("DOCKER_CONFIG", home.path().join(".docker"))
        .env("LIGHTER_REGISTRY_CONFIG", home.path().join("r.toml"))
        .args(["login", "-u", "tester", "--password-stdin", &host])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = login.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"pw\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (ok, err) = run(&env, &["push", &name]);
    assert!(ok, "{err}");
    let fresh = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let (ok, err) = run(&fresh, &["pull", &name]);
    assert!(ok, "{err}");
    // One process, two uses of the same scope 3 s apart. A build resolves each image once, when
    // it starts; with a (here empty) `--cache-from` it resolves images the store lacks lazily and
    // fetches a layer when a step first reads it. So: `extra` (busybox plus a layer, pushed, not
    // in the fresh store) is resolved at the start, and its own layer is fetched by the COPY
    // after `RUN sleep 3`. With honest 2 s tokens a new one is fetched then; with lying ones the
    // registry's 401 makes the client authenticate again and replay.
    let extra = format!("{host}/tok/base:extra");
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("Dockerfile"),
        "FROM busybox:latest\nRUN echo extra > /extra\n",
    )
    .unwrap();
    let (ok, err) = run(&env, &["build", "-t", &extra, src.path().to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, err) = run(&env, &["push", &extra]);
    assert!(ok, "{err}");
    let no_cache_dir = tempfile::tempdir().unwrap();
    let cache_from = format!(
        "type=local,src={}",
        no_cache_dir.path().join("none").display()
    );
    for lying in [false, true] {
        tokens.lying.store(lying, Ordering::SeqCst);
        let ctx = tempfile::tempdir().unwrap();
        std::fs::write(
            ctx.path().join("Dockerfile"),
            format!("FROM {name}\nRUN sleep 3 # {lying}\nCOPY --from={extra} /extra /e\n"),
        )
        .unwrap();
        let store = Env {
            root: tempfile::tempdir().unwrap(),
        };
        let (ok, err) = run(&store, &["pull", &name]);
        assert!(ok, "{err}");
        let before = tokens.issued.load(Ordering::SeqCst);
        let (ok, err) = run(
            &store,
            &[
                "build",
                "--cache-from",
                &cache_from,
                "--progress",
                "plain",
                ctx.path().to_str().unwrap(),
            ],
        );
        assert!(ok, "lying={lying}: {err}");
        let used = tokens.issued.load(Ordering::SeqCst) - before;
        assert!(
            used >= 2,
            "lying={lying}: {used} token(s) for two uses 3 s apart\n{err}"
        );
    }
    // An identity (refresh) token in config.json goes through the OAuth2 POST flow.
    for (token, works) in [("refresh-me", true), ("wrong", false)] {
        let h = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(h.path().join(".docker")).unwrap();
        std::fs::write(
            h.path().join(".docker/config.json"),
            format!("{{\"auths\":{{\"{host}\":{{\"identitytoken\":\"{token}\"}}}}}}"),
        )
        .unwrap();
        std::fs::write(h.path().join("r.toml"), "").unwrap();
        let o = Env {
            root: tempfile::tempdir().unwrap(),
        }
        .cmd()
        .env("HOME", h.path())
        .env("DOCKER_CONFIG", h.path().join(".docker"))
        .env("LIGHTER_REGISTRY_CONFIG", h.path().join("r.toml"))
        .args(["pull", &name])
        .output()
        .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.success(), works, "identity token {token}: {err}");
        if !works {
            assert!(
                err.contains(&host) && err.contains("lighter login"),
                "{err}"
            );
        }
    }
}
