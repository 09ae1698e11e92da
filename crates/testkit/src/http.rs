//! A small HTTP/1.1 server on 127.0.0.1 for the tests: each request's path and headers go to a
//! handler, its answer goes back with `Content-Length` and `Connection: close`, and the server
//! counts the hits per path (or per the name the handler gives a hit).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request: its path (without the leading `/`), method and headers (names lower-cased, values
/// as sent).
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl HttpRequest {
    /// A header's value, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer.
pub struct HttpResponse {
    pub status: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Counted under this name as well as under the path (a 304, say).
    pub hit_as: Option<String>,
}

type Handler = dyn Fn(&HttpRequest) -> HttpResponse + Send + Sync;

pub struct HttpServer {
    pub port: u16,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl HttpServer {
    /// Listens on a free port of 127.0.0.1, one thread per connection.
    pub fn start(
        handler: impl Fn(&HttpRequest) -> HttpResponse + Send + Sync + 'static,
    ) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(BTreeMap::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let h = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (h, handler) = (h.clone(), handler.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &*handler, &h);
                });
            }
        });
        HttpServer { port, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// How many requests `path` (or a hit name) had.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn serve(
    mut conn: TcpStream,
    handler: &Handler,
    hits: &Mutex<BTreeMap<String, usize>>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("GET").to_string();
    let path = parts
        .next()
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let req = HttpRequest {
        method,
        path,
        headers,
    };
    *hits.lock().unwrap().entry(req.path.clone()).or_default() += 1;
    let res = handler(&req);
    if let Some(name) = &res.hit_as {
        *hits.lock().unwrap().entry(name.clone()).or_default() += 1;
    }
    let mut out = format!("HTTP/1.1 {}\r\n", res.status);
    if !res.status.starts_with("304") {
        out.push_str(&format!("Content-Length: {}\r\n", res.body.len()));
    }
    for (k, v) in &res.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    conn.write_all(out.as_bytes())?;
    conn.write_all(&res.body)?;
    conn.flush()
}
