//! `lighter inspect IMAGE...`: docker-compatible JSON (Id, RepoTags, RepoDigests, Created, Config,
//! Architecture, Os, Size, RootFS, Metadata).

use super::Context;
use crate::cli::InspectArgs;
use lighter_store::Table;
use serde_json::json;
use std::process::ExitCode;

pub fn run(ctx: &Context, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let refs = store.meta().list(Table::Refs)?;
    let mut out = Vec::new();
    let mut failed = false;
    for name in &args.images {
        let img = match lighter_image::resolve(&store, name) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
                continue;
            }
        };
        let tags: Vec<String> = refs
            .iter()
            .filter(|(_, id)| id == img.id.as_str())
            .filter_map(|(n, _)| lighter_oci::Reference::parse(n).ok())
            .map(|r| r.familiar())
            .collect();
        let c = &img.config;
        let v = json!({
            "Id": img.id.to_string(),
            "RepoTags": tags,
            "RepoDigests": lighter_image::repo_digests(&store, &img.id)?,
            "Parent": "",
            "Comment": c.pointer("/history/0/comment").cloned().unwrap_or(json!("")),
            "Created": c.get("created").cloned().unwrap_or(json!("")),
            "DockerVersion": "",
            "Author": c.get("author").cloned().unwrap_or(json!("")),
            "Config": c.get("config").cloned().unwrap_or(json!({})),
            "Architecture": c.get("architecture").cloned().unwrap_or(json!("")),
            "Os": c.get("os").cloned().unwrap_or(json!("")),
            "Size": img.size(),
            "VirtualSize": img.size(),
            "CompressedSize": img.compressed_size(),
            "ManifestDigest": img.record.manifest.to_string(),
            "RootFS": { "Type": "layers", "Layers": img.record.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>() },
            "Metadata": { "LastTagTime": img.record.added },
        });
        out.push(v);
    }
    match args.format.as_deref() {
        None | Some("json") => outln!("{}", serde_json::to_string_pretty(&out)?),
        Some(f) => {
            // A small subset of Go templates: `{{.Field}}` and `{{.A.B}}` paths, `{{json .X}}`.
            for v in &out {
                outln!("{}", render_template(f, v));
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Renders `{{.Path.To.Field}}` and `{{json .Path}}` against a JSON value.
pub fn render_template(t: &str, v: &serde_json::Value) -> String {
    let mut out = String::new();
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else { break };
        let expr = rest[i + 2..i + j].trim();
        let (as_json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let ptr: String = path
            .trim_start_matches('.')
            .split('.')
            .filter(|s| !s.is_empty())
            .map(|s| format!("/{s}"))
            .collect();
        let val = v.pointer(&ptr).cloned().unwrap_or(serde_json::Value::Null);
        match (&val, as_json) {
            (serde_json::Value::String(s), false) => out.push_str(s),
            (serde_json::Value::Null, false) => out.push_str("<no value>"),
            _ => out.push_str(&val.to_string()),
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}
