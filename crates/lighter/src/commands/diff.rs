//! `lighter diff IMAGE_A IMAGE_B`: files added / removed / changed, size delta per directory, config
//! changes and layer reuse; `--json`; `--html FILE` for a page comparing the two trees.

use super::Context;
use crate::cli::DiffArgs;
use crate::printer::{human_size, table};
use std::process::ExitCode;

fn signed(v: i64) -> String {
    if v < 0 {
        format!("-{}", human_size(v.unsigned_abs()))
    } else {
        format!("+{}", human_size(v as u64))
    }
}

pub fn run(ctx: &Context, args: DiffArgs) -> anyhow::Result<ExitCode> {
    // Each image from wherever it is (store, archive, layout, registry), as `analyze` reads it.
    let a = super::analyze::open_view(ctx, &args.image_a, None, !args.no_verify)?;
    let b = super::analyze::open_view(ctx, &args.image_b, None, !args.no_verify)?;
    let d = lighter_image::analysis::diff(&a, &b, args.top);
    if let Some(path) = &args.html {
        let page = super::report_diff::html(&args.image_a, &args.image_b, &a, &b, &d)?;
        std::fs::write(path, page).map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
        eprintln!("HTML report written to {}", path.display());
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(ExitCode::SUCCESS);
    }
    let delta = d.size_b as i64 - d.size_a as i64;
    outln!(
        "{} -> {}: {} -> {} ({}, {:.1}x)",
        args.image_a,
        args.image_b,
        human_size(d.size_a),
        human_size(d.size_b),
        signed(delta),
        if d.size_b > 0 {
            d.size_a as f64 / d.size_b as f64
        } else {
            0.0
        }
    );
    outln!(
        "files: {} added, {} removed, {} changed; layers: {} of {} shared",
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        d.shared_layers,
        d.layers_b
    );
    if !d.dirs.is_empty() {
        outln!();
        let mut rows = vec![vec!["DELTA".to_string(), "DIRECTORY".into()]];
        for (dir, v) in &d.dirs {
            rows.push(vec![
                signed(*v),
                format!("/{}", dir.trim_start_matches('/')),
            ]);
        }
        out!("{}", table(&rows));
    }
    if !d.config.is_empty() {
        outln!();
        for (k, x, y) in &d.config {
            outln!("{k}: {x} -> {y}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
