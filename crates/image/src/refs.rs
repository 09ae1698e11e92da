//! Names for images, resolved as docker does: `name[:tag]`, `name@digest`, full or prefix image IDs.

use crate::model::Image;
use crate::{ImageError, Result};
use lighter_oci::{Digest, Reference};
use lighter_store::{Store, Table};

/// Finds the image a user string names.
pub fn resolve(store: &Store, s: &str) -> Result<Image> {
    // Full ID (`sha256:...`) or an ID prefix (at least 4 hex characters, as docker requires... docker
    // accepts any unique prefix; we require 4 to avoid matching names).
    let hexish = s.strip_prefix("sha256:").unwrap_or(s);
    let looks_id = hexish.len() >= 4
        && hexish.len() <= 64
        && hexish
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if let Ok(r) = Reference::parse(s) {
        if let Some(id) = store.meta().get(Table::Refs, &r.to_string())? {
            let id: Digest = id
                .parse()
                .map_err(|_| ImageError::NotFound(s.to_string()))?;
            return Image::read(store, &id);
        }
        if let Some(d) = &r.digest {
            // name@digest: a registry digest a pull or push recorded for that name.
            let key = format!("{}@{d}", r.name());
            if let Some(id) = store.meta().get(Table::RepoDigests, &key)? {
                let id: Digest = id
                    .parse()
                    .map_err(|_| ImageError::NotFound(s.to_string()))?;
                return Image::read(store, &id);
            }
            // Or the manifest digest of a stored image with that name.
            for (key, id) in store.meta().list(Table::Images)? {
                if let Ok(rec) = serde_json::from_str::<crate::ImageRecord>(&id) {
                    if rec.manifest == *d || rec.config == *d {
                        let id: Digest = key
                            .parse()
                            .map_err(|_| ImageError::NotFound(s.to_string()))?;
                        return Image::read(store, &id);
                    }
                }
            }
        }
    }
    if looks_id {
        let matches: Vec<String> = store
            .meta()
            .list(Table::Images)?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.strip_prefix("sha256:").unwrap_or(k).starts_with(hexish))
            .collect();
        match matches.len() {
            1 => {
                let id: Digest = matches[0]
                    .parse()
                    .map_err(|_| ImageError::NotFound(s.to_string()))?;
                return Image::read(store, &id);
            }
            0 => {}
            _ => {
                return Err(ImageError::NotFound(format!(
                    "{s} (ambiguous: {} images match)",
                    matches.len()
                )))
            }
        }
    }
    Err(ImageError::NotFound(s.to_string()))
}

/// Records that `name@digest` (a registry's manifest or index digest, seen by a pull or a push) is
/// image `id`: docker's RepoDigests.
pub fn add_repo_digest(
    store: &Store,
    name: &Reference,
    digest: &Digest,
    id: &Digest,
) -> Result<()> {
    let key = format!("{}@{digest}", name.name());
    store.meta().put(Table::RepoDigests, &key, id.as_str())?;
    Ok(())
}

/// The RepoDigests of image `id` as docker shows them (`busybox@sha256:...`).
pub fn repo_digests(store: &Store, id: &Digest) -> Result<Vec<String>> {
    let mut out: Vec<String> = store
        .meta()
        .list(Table::RepoDigests)?
        .into_iter()
        .filter(|(_, v)| v == id.as_str())
        .filter_map(|(k, _)| {
            let (name, digest) = k.rsplit_once('@')?;
            let r = Reference::parse(&format!("{name}@{digest}")).ok()?;
            Some(format!("{}@{digest}", r.familiar_name()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// One row of `images`: an image and one of its names (or none, for dangling images).
#[derive(Debug, Clone)]
pub struct Listed {
    pub reference: Option<Reference>,
    pub image: Image,
}

/// Every image with each of its references (an image without any appears once with `None`).
pub fn list(store: &Store) -> Result<Vec<Listed>> {
    let refs = store.meta().list(Table::Refs)?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (name, id) in &refs {
        let Ok(id) = id.parse::<Digest>() else {
            continue;
        };
        let Ok(r) = Reference::parse(name) else {
            continue;
        };
        if let Ok(img) = Image::read(store, &id) {
            seen.insert(id);
            out.push(Listed {
                reference: Some(r),
                image: img,
            });
        }
    }
    for (key, _) in store.meta().list(Table::Images)? {
        let Ok(id) = key.parse::<Digest>() else {
            continue;
        };
        if !seen.contains(&id) {
            if let Ok(img) = Image::read(store, &id) {
                out.push(Listed {
                    reference: None,
                    image: img,
                });
            }
        }
    }
    Ok(out)
}

/// Points `target` at the image `source` names.
pub fn tag(store: &Store, source: &str, target: &str) -> Result<Reference> {
    let img = resolve(store, source)?;
    let r = Reference::parse(target)?;
    if r.digest.is_some() {
        return Err(ImageError::Format {
            path: target.to_string(),
            message: "refusing to create a tag with a digest reference".into(),
        });
    }
    // In one transaction with a look at the record: an `rmi` of the image that committed since
    // `resolve` must not be answered with a name pointing at nothing.
    store.meta().update(|tx| {
        if tx.get(Table::Images, img.id.as_str())?.is_none() {
            return Err(lighter_store::StoreError::Invalid(format!(
                "image {} was removed while it was being tagged",
                img.id.short()
            )));
        }
        tx.put(Table::Refs, &r.to_string(), img.id.as_str())
    })?;
    Ok(r)
}

/// `rmi`: removes a name; the image record goes with its last name (or with `-f`). Returns lines in
/// docker's wording (`Untagged: ...`, `Deleted: ...`). Blobs are reclaimed by `prune`.
pub fn remove(store: &Store, s: &str, force: bool) -> Result<Vec<String>> {
    let img = resolve(store, s)?;
    let mut out = Vec::new();
    store.meta().update(|tx| {
        // The names are read in the transaction that removes them, so a concurrent `tag` either
        // lands before (and is counted) or sees the record gone.
        let names: Vec<String> = tx
            .list(Table::Refs)?
            .into_iter()
            .filter(|(_, id)| id == img.id.as_str())
            .map(|(k, _)| k)
            .collect();
        let by_name = Reference::parse(s)
            .ok()
            .map(|r| r.to_string())
            .filter(|n| names.contains(n));
        match (&by_name, force) {
            (Some(n), false) => {
                tx.delete(Table::Refs, n)?;
                out.push(format!("Untagged: {}", Reference::parse(n).map(|r| r.familiar()).unwrap_or_else(|_| n.clone())));
                if names.len() == 1 {
                    tx.delete(Table::Images, img.id.as_str())?;
                    out.push(format!("Deleted: {}", img.id));
                }
            }
            _ => {
                if names.len() > 1 && !force {
                    return Err(lighter_store::StoreError::Invalid(format!(
                        "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        img.id.short()
                    )));
                }
                for n in &names {
                    tx.delete(Table::Refs, n)?;
                    out.push(format!("Untagged: {}", Reference::parse(n).map(|r| r.familiar()).unwrap_or_else(|_| n.clone())));
                }
                tx.delete(Table::Images, img.id.as_str())?;
                out.push(format!("Deleted: {}", img.id));
            }
        }
        Ok(())
    })?;
    Ok(out)
}
