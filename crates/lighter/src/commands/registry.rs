//! The registry client as docker and podman users expect it to be configured: credentials from
//! `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`), then podman's `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json` and `~/.config/containers/auth.json`; per-host settings
//! from `$LIGHTER_REGISTRY_CONFIG`, else `~/.config/lighter/registries.toml`, else
//! `/etc/lighter/registries.toml`; CA files from docker's and podman's `certs.d` directories.
//! Also the push of a stored image, shared by `push` and `build --push`.

use lighter_oci::Reference;
use lighter_registry::{Client, CredStore, Hosts, Settings};
use std::path::PathBuf;

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The settings from the environment.
pub fn settings() -> Settings {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let docker_config = env("DOCKER_CONFIG")
        .or_else(|| home().map(|h| h.join(".docker")))
        .map(|d| d.join("config.json"));
    let mut auth_files = Vec::new();
    auth_files.extend(env("REGISTRY_AUTH_FILE"));
    auth_files.extend(env("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    auth_files.extend(home().map(|h| h.join(".config/containers/auth.json")));
    let config_file = env("LIGHTER_REGISTRY_CONFIG").or_else(|| {
        let user = env("XDG_CONFIG_HOME")
            .or_else(|| home().map(|h| h.join(".config")))
            .map(|d| d.join("lighter/registries.toml"));
        user.filter(|p| p.exists())
            .or_else(|| Some(PathBuf::from("/etc/lighter/registries.toml")))
    });
    let mut certs_dirs = vec![
        PathBuf::from("/etc/docker/certs.d"),
        PathBuf::from("/etc/containers/certs.d"),
    ];
    certs_dirs.extend(home().map(|h| h.join(".docker/certs.d")));
    Settings {
        config_file,
        certs_dirs,
        docker_config,
        auth_files,
        system_roots: None,
    }
}

/// A client configured from the environment.
pub fn client() -> anyhow::Result<Client> {
    let s = settings();
    if let Some(p) = std::env::var_os("LIGHTER_REGISTRY_CONFIG").filter(|v| !v.is_empty()) {
        if !std::path::Path::new(&p).exists() {
            anyhow::bail!(
                "LIGHTER_REGISTRY_CONFIG={}: no such file",
                std::path::Path::new(&p).display()
            );
        }
    }
    let hosts = Hosts::load(&s).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok(Client::new(
        hosts,
        CredStore::new(s.docker_config.clone(), s.auth_files.clone()),
    ))
}

/// Pushes the stored image `img` to `r`; returns the manifest digest (recorded as a RepoDigest).
pub fn push_image(
    store: &lighter_store::Store,
    client: &Client,
    img: &lighter_image::Image,
    r: &Reference,
    quiet: bool,
) -> anyhow::Result<lighter_oci::Digest> {
    // Repositories of the same registry that have this image's blobs: mount instead of upload.
    let mount_from: Vec<Reference> = lighter_image::repo_digests(store, &img.id)?
        .iter()
        .filter_map(|rd| Reference::parse(rd).ok())
        .collect();
    let digest = push_manifest(
        store,
        client,
        &img.record.manifest,
        &img.record.layers,
        r,
        &mount_from,
        quiet,
    )?;
    lighter_image::add_repo_digest(store, r, &digest, &img.id)?;
    Ok(digest)
}

/// Pushes the manifest blob `manifest` (in the store) with its config and `layers`: blobs the
/// registry has are skipped, blobs in `mount_from` repositories of the same registry are mounted,
/// the rest uploaded from the store (fetched first when the store only knows of them).
pub fn push_manifest(
    store: &lighter_store::Store,
    client: &Client,
    manifest: &lighter_oci::Digest,
    layers: &[lighter_store::layer::LayerInfo],
    r: &Reference,
    mount_from: &[Reference],
    quiet: bool,
) -> anyhow::Result<lighter_oci::Digest> {
    let manifest_bytes = store.content().read(manifest)?;
    let m: serde_json::Value = serde_json::from_slice(&manifest_bytes)?;
    let config: lighter_oci::Digest = m["config"]["digest"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("manifest {manifest} has no config"))?;
    let mut blobs: Vec<(lighter_oci::Digest, u64)> =
        layers.iter().map(|l| (l.digest.clone(), l.size)).collect();
    blobs.push((config.clone(), store.content().size(&config)?));
    let mounts: Vec<String> = mount_from
        .iter()
        .filter(|x| x.domain == r.domain && x.path != r.path)
        .map(|x| x.path.clone())
        .collect();
    let to_push = lighter_registry::push::Image {
        manifest: manifest_bytes,
        media_type: lighter_oci::media::OCI_MANIFEST.into(),
        blobs,
    };
    let progress = |ev: lighter_registry::push::Event| {
        if quiet {
            return;
        }
        let lighter_registry::push::Event::Blob { digest, outcome } = ev;
        let what = match outcome {
            lighter_registry::push::BlobOutcome::Existed => "Layer already exists",
            lighter_registry::push::BlobOutcome::Mounted => "Mounted",
            lighter_registry::push::BlobOutcome::Uploaded => "Pushed",
        };
        eprintln!("{}: {what}", &digest.hex()[..12]);
    };
    lighter_registry::push::push(client, store, r, &to_push, &mounts, &progress)
        .map_err(|e| anyhow::anyhow!("{}", e.message))
}

/// A registry image read for `analyze`, `history` and `diff`: the manifest and config fetched, every
/// layer streamed through the scanner (several at once) and checked against its digest, size and
/// diffID; nothing is stored.
pub fn view(name: &str, platform: Option<&str>) -> anyhow::Result<lighter_image::view::ImageView> {
    use lighter_registry::pull::Platform;
    let r = Reference::parse(name)?;
    let platform = match platform {
        Some(p) => Platform::parse(p)
            .ok_or_else(|| anyhow::anyhow!("--platform {p}: expected os/arch[/variant]"))?,
        None => Platform::host(),
    };
    let client = client()?;
    let meta = lighter_registry::pull::fetch_meta(&client, &r, &platform)?;
    let reg = lighter_registry::Registry::new(&client, &r, false);
    let fail = |what: &str, message: String| lighter_image::ImageError::Format {
        path: what.to_string(),
        message,
    };
    let layers = lighter_image::view::parallel(&meta.layers, |l| {
        let what = format!("{} blob {}", r.name(), l.digest);
        let body = reg
            .get_blob(&l.digest)
            .map_err(|e| fail(&what, e.to_string()))?;
        let s = lighter_image::view::scan_layer(body, &what)?;
        if s.digest != l.digest || s.size != l.size {
            return Err(fail(
                &what,
                format!(
                    "content is {} ({} bytes), not what the manifest names ({} bytes)",
                    s.digest, s.size, l.size
                ),
            ));
        }
        if s.diff_id != l.diff_id {
            return Err(fail(
                &what,
                format!(
                    "layer content has diffID {} but the config says {}",
                    s.diff_id, l.diff_id
                ),
            ));
        }
        Ok(lighter_image::view::LayerView {
            diff_id: s.diff_id,
            digest: s.digest,
            size: s.size,
            uncompressed_size: s.uncompressed_size,
            entries: s.entries,
        })
    })?;
    let config = serde_json::from_slice(&meta.config)
        .map_err(|e| anyhow::anyhow!("{name}: config is not JSON: {e}"))?;
    Ok(lighter_image::view::ImageView {
        id: lighter_oci::Digest::sha256(&meta.config),
        config,
        layers,
    })
}
