//! Registry authentication: `WWW-Authenticate` challenges (Basic, and Bearer with realm, service
//! and scope), token responses (`token` or `access_token`, `expires_in`, `issued_at`), and a token
//! cache keyed by host and the set of scopes a token was issued for, so one token can carry several
//! scopes (pull on a source and push on a target for a cross-repository mount).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// A parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value (`Bearer realm="...",service="...",scope="..."`).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        }),
        _ => None,
    }
}

/// `k="v", k2=v2` pairs; quoted values may hold commas and `\"`.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
    out
}

/// The pull scope of a repository.
pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// The pull-and-push scope of a repository.
pub fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// A bearer token and when to stop using it.
#[derive(Debug, Clone)]
pub struct Token {
    pub token: String,
    pub expires: Instant,
    /// A refresh token the server returned (OAuth2), kept for the next request.
    pub refresh: Option<String>,
}

/// Reads a token server's JSON answer. Tokens live `expires_in` seconds (60 by default, as the
/// spec says), minus a margin so a request never goes out with a token about to lapse.
pub fn parse_token(body: &[u8], now: Instant) -> Option<Token> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = v
        .get("token")
        .or_else(|| v.get("access_token"))
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())?
        .to_string();
    let secs = v
        .get("expires_in")
        .and_then(|e| e.as_u64())
        .filter(|s| *s > 0)
        .unwrap_or(60);
    let life = Duration::from_secs(secs);
    let margin = (life / 10).min(Duration::from_secs(10));
    Some(Token {
        token,
        expires: now + life - margin,
        refresh: v
            .get("refresh_token")
            .and_then(|r| r.as_str())
            .map(str::to_string),
    })
}

/// Tokens by (host, scopes).
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: Vec<(String, BTreeSet<String>, Token)>,
}

impl TokenCache {
    /// A live token for `host` that covers every scope in `scopes`.
    pub fn get(&mut self, host: &str, scopes: &BTreeSet<String>, now: Instant) -> Option<String> {
        self.tokens.retain(|(_, _, t)| t.expires > now);
        self.tokens
            .iter()
            .find(|(h, s, _)| h == host && scopes.is_subset(s))
            .map(|(_, _, t)| t.token.clone())
    }

    pub fn put(&mut self, host: &str, scopes: BTreeSet<String>, token: Token) {
        self.tokens.retain(|(h, s, _)| !(h == host && *s == scopes));
        self.tokens.push((host.to_string(), scopes, token));
    }

    /// Forgets the tokens of `host` (a 401 with a token means it is no longer good).
    pub fn drop_host(&mut self, host: &str) {
        self.tokens.retain(|(h, _, _)| h != host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "a realm is required"
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn tokens_expire_and_cover_scope_sets() {
        let now = Instant::now();
        let t = parse_token(br#"{"token":"abc","expires_in":2}"#, now).unwrap();
        assert!(t.expires > now && t.expires < now + Duration::from_secs(2));
        assert!(parse_token(br#"{"access_token":"x"}"#, now).is_some());
        assert!(parse_token(br#"{"nothing":1}"#, now).is_none());
        let mut c = TokenCache::default();
        let both: BTreeSet<String> = [pull_scope("a"), push_scope("b")].into_iter().collect();
        c.put("h", both, t);
        let one: BTreeSet<String> = [pull_scope("a")].into_iter().collect();
        assert_eq!(c.get("h", &one, now).as_deref(), Some("abc"));
        assert_eq!(c.get("other", &one, now), None);
        assert_eq!(
            c.get("h", &one, now + Duration::from_secs(3)),
            None,
            "expired"
        );
    }
}
