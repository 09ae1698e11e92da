//! `lighter history IMAGE`: docker's columns (IMAGE CREATED CREATED BY SIZE COMMENT) plus each layer's
//! compressed size.

use super::Context;
use crate::cli::HistoryArgs;
use crate::printer::{human_ago, human_size, table};
use std::process::ExitCode;

pub fn run(ctx: &Context, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    // A store image, or a docker-archive / OCI layout file, as `analyze` takes.
    // No number history shows depends on layer contents: archives are read in place unhashed.
    let img = super::analyze::open_view(ctx, &args.image, None, false)?;
    let history = img.history();
    let mut layers = img.layers.iter();
    let mut rows = Vec::new();
    let n = history.len();
    for (i, h) in history.iter().enumerate() {
        let layer = if h.empty_layer { None } else { layers.next() };
        rows.push((
            i + 1 == n,
            h.created.clone().unwrap_or_default(),
            h.created_by.clone().unwrap_or_default(),
            layer.map(|l| (l.uncompressed_size, l.size)),
            h.comment.clone().unwrap_or_default(),
        ));
    }
    rows.reverse();
    if args.quiet {
        for r in &rows {
            outln!(
                "{}",
                if r.0 {
                    img.id.short().to_string()
                } else {
                    "<missing>".into()
                }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.format.as_deref() == Some("json") {
        for (last, created, by, sizes, comment) in &rows {
            let v = serde_json::json!({
                "ID": if *last { img.id.to_string() } else { "<missing>".into() },
                "CreatedAt": created, "CreatedBy": by,
                "Size": sizes.map(|s| s.0).unwrap_or(0), "CompressedSize": sizes.map(|s| s.1).unwrap_or(0),
                "Comment": comment,
            });
            outln!("{v}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(tpl) = args.format.as_deref().filter(|f| *f != "table") {
        let headers = [
            ("ID", "IMAGE"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("CreatedBy", "CREATED BY"),
            ("Size", "SIZE"),
            ("CompressedSize", "COMPRESSED"),
            ("Comment", "COMMENT"),
        ];
        let values: Vec<Vec<(&str, String)>> = rows
            .iter()
            .map(|(last, created, by, sizes, comment)| {
                let size = |v: u64| {
                    if args.human {
                        human_size(v)
                    } else {
                        v.to_string()
                    }
                };
                vec![
                    (
                        "ID",
                        if *last {
                            img.id.short().to_string()
                        } else {
                            "<missing>".into()
                        },
                    ),
                    (
                        "CreatedSince",
                        human_ago(lighter_image::parse_rfc3339(created)),
                    ),
                    ("CreatedAt", created.clone()),
                    (
                        "CreatedBy",
                        if args.no_trunc {
                            by.clone()
                        } else {
                            truncate(by, 45)
                        },
                    ),
                    ("Size", size(sizes.map(|s| s.0).unwrap_or(0))),
                    ("CompressedSize", size(sizes.map(|s| s.1).unwrap_or(0))),
                    ("Comment", comment.clone()),
                ]
            })
            .collect();
        let out = crate::printer::render_template(tpl, &headers, &values)
            .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
        out!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table_rows = vec![vec![
        "IMAGE".to_string(),
        "CREATED".into(),
        "CREATED BY".into(),
        "SIZE".into(),
        "COMPRESSED".into(),
        "COMMENT".into(),
    ]];
    for (last, created, by, sizes, comment) in rows {
        let by = if args.no_trunc { by } else { truncate(&by, 45) };
        let created = if args.human {
            human_ago(lighter_image::parse_rfc3339(&created))
        } else {
            created
        };
        let (size, comp) = match sizes {
            Some((u, c)) if args.human => (human_size(u), human_size(c)),
            Some((u, c)) => (u.to_string(), c.to_string()),
            None => ("0B".into(), "0B".into()),
        };
        table_rows.push(vec![
            if last {
                if args.no_trunc {
                    img.id.to_string()
                } else {
                    img.id.short().to_string()
                }
            } else {
                "<missing>".into()
            },
            created,
            by,
            size,
            comp,
            comment,
        ]);
    }
    out!("{}", table(&table_rows));
    Ok(ExitCode::SUCCESS)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n - 1).collect();
        format!("{t}…")
    }
}
