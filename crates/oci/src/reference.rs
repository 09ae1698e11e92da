//! Image references with Docker's normalisation: `busybox` is `docker.io/library/busybox:latest`.

use crate::Digest;
use std::fmt;

/// A normalised image reference: registry domain, repository path, and a tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: {0:?} (repository name must be lowercase)")]
    Uppercase(String),
    #[error("invalid reference format: {0:?}")]
    Invalid(String),
    #[error("invalid tag in {0:?}: tags are [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")]
    Tag(String),
    #[error("invalid digest in {0:?}: {1}")]
    Digest(String, String),
}

const DEFAULT_DOMAIN: &str = "docker.io";

impl Reference {
    /// Parses and normalises like docker's `ParseNormalizedNamed`, adding `:latest` when neither a tag
    /// nor a digest is given.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Self::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some("latest".to_string());
        }
        Ok(r)
    }

    /// Parses without adding a default tag.
    pub fn parse_named(s: &str) -> Result<Reference, ReferenceError> {
        let invalid = || ReferenceError::Invalid(s.to_string());
        if s.is_empty() || s.len() > 255 + 128 + 72 {
            return Err(invalid());
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (
                n,
                Some(
                    d.parse::<Digest>()
                        .map_err(|e| ReferenceError::Digest(s.to_string(), e.to_string()))?,
                ),
            ),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if let Some(t) = tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(ReferenceError::Tag(s.to_string()));
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            DEFAULT_DOMAIN.to_string()
        } else {
            domain
        };
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(s.to_string()));
        }
        for comp in path.split('/') {
            let ok = !comp.is_empty()
                && comp
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                && comp
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                && comp.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
                && !comp.contains("..")
                && !comp.contains("___");
            if !ok {
                return Err(invalid());
            }
        }
        // Docker: "repository name must not be more than 255 characters" (domain/path).
        if domain.len() + 1 + path.len() > 255 {
            return Err(invalid());
        }
        if domain.is_empty()
            || !domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(invalid());
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// `docker.io/library/busybox` (no tag or digest).
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The familiar name docker shows: `busybox`, `user/app`, `host:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix("library/")
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    /// `busybox:latest` (familiar name with tag or digest).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_normalisation() {
        let cases = [
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            ("user/app", "docker.io/user/app:latest", "user/app:latest"),
            (
                "localhost:5000/app:v1",
                "localhost:5000/app:v1",
                "localhost:5000/app:v1",
            ),
            (
                "localhost/app",
                "localhost/app:latest",
                "localhost/app:latest",
            ),
            ("ghcr.io/a/b/c:x", "ghcr.io/a/b/c:x", "ghcr.io/a/b/c:x"),
            (
                "index.docker.io/library/debian:bookworm",
                "docker.io/library/debian:bookworm",
                "debian:bookworm",
            ),
        ];
        for (input, full, familiar) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
        }
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{d}"));
        for bad in [
            "Busybox",
            "a//b",
            "a:",
            "-a",
            "a:b c",
            "busybox@sha256:12",
            "",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn docker_reference_cases() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        // From docker/distribution reference normalize_test.go: a single-component name on docker.io
        // gains `library/`; a first component without `.`/`:` and not `localhost` is a path component.
        let cases = [
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            (
                "docker.io/library/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("library/busybox:glibc", "docker.io/library/busybox:glibc"),
            ("foo/bar/baz:1.0", "docker.io/foo/bar/baz:1.0"),
            ("example.com:8080/a/b:Tag_1", "example.com:8080/a/b:Tag_1"),
            ("a.b-c_d__e:0", "docker.io/library/a.b-c_d__e:0"),
        ];
        for (input, full) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.to_string(), full, "{input}");
        }
        // A port-only registry host with no path is a name plus tag, as in docker.
        let r = Reference::parse("localhost:5000").unwrap();
        assert_eq!(
            (r.path.as_str(), r.tag.as_deref()),
            ("library/localhost", Some("5000"))
        );
        // Tag and digest together keep both.
        let r = Reference::parse(&format!("busybox:1.36@{d}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1.36"));
        assert_eq!(r.digest.as_ref().map(Digest::as_str), Some(d));
        // parse_named adds no tag.
        let r = Reference::parse_named("busybox").unwrap();
        assert_eq!(
            (r.tag.clone(), r.name()),
            (None, "docker.io/library/busybox".to_string())
        );
        assert_eq!(
            Reference::parse("ghcr.io/x/y").unwrap().familiar_name(),
            "ghcr.io/x/y"
        );
        // Error kinds.
        assert!(matches!(
            Reference::parse("docker.io/Busybox"),
            Err(ReferenceError::Uppercase(_))
        ));
        assert!(matches!(
            Reference::parse("busybox:.x"),
            Err(ReferenceError::Tag(_))
        ));
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(matches!(
            Reference::parse(&long_tag),
            Err(ReferenceError::Tag(_))
        ));
        assert!(matches!(
            Reference::parse("a@sha256:00"),
            Err(ReferenceError::Digest(..))
        ));
        for bad in [
            "a..b",
            "a___b",
            "a/",
            "/a",
            "a-",
            "a b",
            "a/b_",
            "host:5000/",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} should be rejected");
        }
        let long_name = format!("a/{}", "b".repeat(250));
        assert!(
            Reference::parse(&long_name).is_err(),
            "names over 255 characters are rejected"
        );
    }

    /// From the `reference` fuzz target: a parsed reference prints as text that parses to itself
    /// (an uppercase first component is a registry host, and stays one).
    #[test]
    fn printed_references_parse_to_themselves() {
        let zeros = format!("sha256:{}", "0".repeat(64));
        for s in [
            "UPPER/x",
            "busybox",
            "localhost:5000/a/b:c",
            "[::1]:5000/x",
            "127.0.0.1:5000/x_y-z.w:tag-1.2",
            &format!("a/b@{zeros}"),
        ] {
            for r in [Reference::parse(s), Reference::parse_named(s)] {
                let Ok(r) = r else { continue };
                let text = r.to_string();
                assert_eq!(
                    Reference::parse_named(&text).unwrap().to_string(),
                    text,
                    "{s}"
                );
            }
        }
    }
}
