//! The `scratch` image whose program makes TLS calls but has no CA bundle to verify them with:
//! lint cannot see that in the Dockerfile, so it looks at the image built from it. A `scratch` final
//! stage, no CA file in the final tree (`/etc/ssl/certs/...`, `/etc/ssl/cert.pem`, `/etc/pki/...`),
//! and an executable that contains Go's `crypto/tls` package path or a CA bundle path: the program
//! links a TLS client, which fails with "x509: certificate signed by unknown authority".

use lighter_dockerfile::{Dockerfile, Severity, Warning};
use std::io::Read;

/// Byte strings that betray a TLS client.
const NEEDLES: &[&[u8]] = &[b"crypto/tls", b"/etc/ssl/certs/ca-certificates.crt"];

/// Executables larger than this are not scanned.
const MAX_SCAN: u64 = 512 << 20;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn has_ca(path: &str) -> bool {
    path.starts_with("etc/ssl/certs/") || path == "etc/ssl/cert.pem" || path.starts_with("etc/pki/")
}

/// The finding for `img` (in `store`) built from `df`, if its final stage is `scratch`.
pub fn check(
    store: &lighter_store::Store,
    img: &lighter_image::Image,
    df: &Dockerfile,
) -> Option<Warning> {
    let last = df.stages.last()?;
    if !last.base.eq_ignore_ascii_case("scratch") {
        return None;
    }
    let view = lighter_image::view::ImageView::from_store(store, img).ok()?;
    let tree = lighter_image::analysis::flatten(&view);
    if tree.keys().any(|p| has_ca(p)) {
        return None;
    }
    for l in &img.record.layers {
        let f = store.content().open(&l.digest).ok()?;
        let r = lighter_store::compress::decompress(f).ok()?;
        let mut ar = tar::Archive::new(lighter_store::targuard::TarGuard::new(r));
        for e in ar.entries().ok()? {
            let Ok(mut e) = e else { break };
            let h = e.header();
            let exec = h.mode().unwrap_or(0) & 0o111 != 0;
            if !h.entry_type().is_file() || !exec || e.size() == 0 || e.size() > MAX_SCAN {
                continue;
            }
            let path = e
                .path()
                .map(|p| p.to_string_lossy().trim_start_matches("./").to_string())
                .unwrap_or_default();
            if !tree.get(&path).is_some_and(|t| t.size == e.size()) {
                continue;
            }
            let mut bytes = Vec::with_capacity(e.size() as usize);
            if e.read_to_end(&mut bytes).is_err() {
                break;
            }
            if NEEDLES.iter().any(|n| contains(&bytes, n)) {
                return Some(Warning {
                    rule: "ScratchTlsWithoutCa",
                    message: format!(
                        "/{path} links a TLS client (Go's crypto/tls or a CA bundle path), but this scratch image has no CA certificates: its TLS calls will fail; COPY --from=<builder> /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/"
                    ),
                    description: "a TLS client without CA certificates cannot verify any server",
                    url: String::new(),
                    span: last.span,
                    severity: Severity::Warning,
                });
            }
        }
    }
    None
}
