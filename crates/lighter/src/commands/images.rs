//! `lighter images`: docker's columns (REPOSITORY TAG IMAGE ID CREATED SIZE) plus the compressed size
//! (what a registry stores) and the bytes an image shares with others.

use super::Context;
use crate::cli::ImagesArgs;
use crate::printer::{human_ago, human_size, table};
use std::collections::HashMap;
use std::process::ExitCode;

pub fn run(ctx: &Context, args: ImagesArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let mut listed = lighter_image::list(&store)?;
    if let Some(filter) = &args.reference {
        let (repo, tag) = match filter.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), Some(t.to_string())),
            _ => (filter.clone(), None),
        };
        listed.retain(|l| {
            l.reference.as_ref().is_some_and(|r| {
                (r.familiar_name() == repo || r.name() == repo)
                    && tag.as_ref().is_none_or(|t| r.tag.as_deref() == Some(t))
            })
        });
    }
    listed.sort_by(|a, b| {
        b.image
            .created()
            .cmp(&a.image.created())
            .then_with(|| a.reference.cmp(&b.reference))
    });
    // Layer use counts across all images, for SHARED / UNIQUE.
    let mut uses: HashMap<String, usize> = HashMap::new();
    let mut seen_ids = std::collections::HashSet::new();
    for l in lighter_image::list(&store)? {
        if seen_ids.insert(l.image.id.clone()) {
            for layer in &l.image.record.layers {
                *uses.entry(layer.diff_id.to_string()).or_default() += 1;
            }
        }
    }
    if args.quiet {
        let mut printed = std::collections::HashSet::new();
        for l in &listed {
            if printed.insert(l.image.id.clone()) {
                outln!(
                    "{}",
                    if args.no_trunc {
                        l.image.id.to_string()
                    } else {
                        l.image.id.short().to_string()
                    }
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.format.as_deref() == Some("json") {
        for l in &listed {
            let shared = shared_bytes(&l.image, &uses);
            let v = serde_json::json!({
                "Repository": l.reference.as_ref().map(|r| r.familiar_name()).unwrap_or_else(|| "<none>".into()),
                "Tag": l.reference.as_ref().and_then(|r| r.tag.clone()).unwrap_or_else(|| "<none>".into()),
                "ID": l.image.id.to_string(),
                "Digest": l.image.record.manifest.to_string(),
                "CreatedAt": l.image.created().unwrap_or_default(),
                "Size": l.image.size(),
                "CompressedSize": l.image.compressed_size(),
                "SharedSize": shared,
                "UniqueSize": l.image.size() - shared,
            });
            outln!("{v}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(tpl) = args.format.as_deref().filter(|f| *f != "table") {
        let headers = [
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("ID", "IMAGE ID"),
            ("Digest", "DIGEST"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("Size", "SIZE"),
            ("CompressedSize", "COMPRESSED"),
            ("SharedSize", "SHARED"),
            ("UniqueSize", "UNIQUE"),
        ];
        let values: Vec<Vec<(&str, String)>> = listed
            .iter()
            .map(|l| {
                let img = &l.image;
                let shared = shared_bytes(img, &uses);
                vec![
                    (
                        "Repository",
                        l.reference
                            .as_ref()
                            .map(|r| r.familiar_name())
                            .unwrap_or_else(|| "<none>".into()),
                    ),
                    (
                        "Tag",
                        l.reference
                            .as_ref()
                            .and_then(|r| r.tag.clone())
                            .unwrap_or_else(|| "<none>".into()),
                    ),
                    (
                        "ID",
                        if args.no_trunc {
                            img.id.to_string()
                        } else {
                            img.id.short().to_string()
                        },
                    ),
                    ("Digest", img.record.manifest.to_string()),
                    (
                        "CreatedSince",
                        human_ago(img.created().and_then(lighter_image::parse_rfc3339)),
                    ),
                    ("CreatedAt", img.created().unwrap_or_default().to_string()),
                    ("Size", human_size(img.size())),
                    ("CompressedSize", human_size(img.compressed_size())),
                    ("SharedSize", human_size(shared)),
                    ("UniqueSize", human_size(img.size() - shared)),
                ]
            })
            .collect();
        let out = crate::printer::render_template(tpl, &headers, &values)
            .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
        out!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![];
    let mut header = vec!["REPOSITORY".to_string(), "TAG".into()];
    if args.digests {
        header.push("DIGEST".into());
    }
    header.extend([
        "IMAGE ID".into(),
        "CREATED".into(),
        "SIZE".into(),
        "COMPRESSED".into(),
        "SHARED".into(),
        "UNIQUE".into(),
    ]);
    rows.push(header);
    for l in &listed {
        let img = &l.image;
        let repo_digests = if args.digests {
            lighter_image::repo_digests(&store, &img.id)?
        } else {
            Vec::new()
        };
        let shared = shared_bytes(img, &uses);
        let mut row = vec![
            l.reference
                .as_ref()
                .map(|r| r.familiar_name())
                .unwrap_or_else(|| "<none>".into()),
            l.reference
                .as_ref()
                .and_then(|r| r.tag.clone())
                .unwrap_or_else(|| "<none>".into()),
        ];
        if args.digests {
            // docker's DIGEST column: the registry digest of this repository (a pull or push saw
            // it), else <none>.
            let repo = l.reference.as_ref().map(|r| r.familiar_name());
            let digest = repo
                .and_then(|name| {
                    repo_digests
                        .iter()
                        .find_map(|d| d.strip_prefix(&format!("{name}@")).map(str::to_string))
                })
                .unwrap_or_else(|| "<none>".into());
            row.push(digest);
        }
        row.extend([
            if args.no_trunc {
                img.id.to_string()
            } else {
                img.id.short().to_string()
            },
            human_ago(img.created().and_then(lighter_image::parse_rfc3339)),
            human_size(img.size()),
            human_size(img.compressed_size()),
            human_size(shared),
            human_size(img.size() - shared),
        ]);
        rows.push(row);
    }
    out!("{}", table(&rows));
    Ok(ExitCode::SUCCESS)
}

/// Bytes of `img`'s layers that other images use too.
fn shared_bytes(img: &lighter_image::Image, uses: &HashMap<String, usize>) -> u64 {
    img.record
        .layers
        .iter()
        .filter(|x| uses.get(x.diff_id.as_str()).copied().unwrap_or(0) > 1)
        .map(|x| x.uncompressed_size)
        .sum()
}
