//! lighter-oci: digests, media types, platforms and image references with Docker's normalisation.
//! Manifest, index and config types are `oci-spec`'s, re-exported as [`spec`].

pub mod config;
mod digest;
pub mod json;
mod reference;

pub use config::ImageConfig;
pub use digest::{Digest, DigestError, Sha256Writer};
pub use oci_spec::image as spec;
pub use reference::{Reference, ReferenceError};

/// Media types lighter reads and writes.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_FOREIGN_LAYER: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    /// True for any layer media type (OCI or Docker, compressed or not).
    pub fn is_layer(m: &str) -> bool {
        m.starts_with("application/vnd.oci.image.layer.")
            || m.starts_with("application/vnd.docker.image.rootfs.")
    }
}

/// The platform lighter builds for (this host): `linux/amd64`.
pub const HOST_OS: &str = "linux";
pub const HOST_ARCH: &str = match std::env::consts::ARCH.as_bytes() {
    b"x86_64" => "amd64",
    b"aarch64" => "arm64",
    _ => "unknown",
};

/// Parses `os/arch[/variant]`; returns (os, arch, variant).
pub fn parse_platform(s: &str) -> Option<(String, String, Option<String>)> {
    let mut it = s.split('/');
    let os = it.next()?.to_ascii_lowercase();
    let arch = it.next()?.to_ascii_lowercase();
    let variant = it.next().map(str::to_string);
    if it.next().is_some() || os.is_empty() || arch.is_empty() {
        return None;
    }
    let arch = match arch.as_str() {
        "x86_64" | "x86-64" => "amd64".to_string(),
        "aarch64" => "arm64".to_string(),
        _ => arch,
    };
    Some((os, arch, variant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_and_media() {
        assert_eq!(
            parse_platform("linux/amd64"),
            Some(("linux".into(), "amd64".into(), None))
        );
        assert_eq!(
            parse_platform("Linux/x86_64"),
            Some(("linux".into(), "amd64".into(), None))
        );
        assert_eq!(
            parse_platform("linux/arm/v7"),
            Some(("linux".into(), "arm".into(), Some("v7".into())))
        );
        assert_eq!(
            parse_platform("linux/aarch64").map(|p| p.1),
            Some("arm64".into())
        );
        for bad in ["linux", "/amd64", "linux/", "a/b/c/d"] {
            assert_eq!(parse_platform(bad), None, "{bad}");
        }
        assert_ne!(HOST_ARCH, "");
        assert!(media::is_layer(media::OCI_LAYER_ZSTD));
        assert!(media::is_layer(media::DOCKER_LAYER_GZIP));
        assert!(!media::is_layer(media::OCI_CONFIG));
        assert!(!media::is_layer(media::DOCKER_MANIFEST_LIST));
    }
}
