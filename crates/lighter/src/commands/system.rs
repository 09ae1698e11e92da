//! `lighter system check [--repair] [--json]`: the store's fsck (see `lighter_image::check`). Exit
//! codes follow fsck: 0 sound (stale leftovers may be listed), 1 damage found and all of it repaired,
//! 4 damage left (found without `--repair`, or not removable); a store that cannot be read is 7.

use super::Context;
use crate::cli::CheckArgs;
use lighter_image::check::Severity;
use std::process::ExitCode;

pub fn check(ctx: &Context, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let r = lighter_image::check::check(&store, args.repair, &mut super::waiting_note)?;
    if args.json {
        let findings: Vec<serde_json::Value> = r
            .findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "severity": match f.severity { Severity::Damage => "damage", Severity::Stale => "stale" },
                    "subject": f.subject,
                    "problem": f.problem,
                    "repaired": f.repaired,
                })
            })
            .collect();
        let v = serde_json::json!({
            "blobs": r.blobs, "images": r.images, "refs": r.refs,
            "layer_dirs": r.layer_dirs, "cache_entries": r.cache_entries,
            "sound": !r.unrepaired_damage(), "findings": findings,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!(
            "checked {} blobs, {} images, {} names, {} unpacked layers, {} cache entries",
            r.blobs,
            r.images,
            r.refs,
            r.layer_dirs,
            r.cache_entries
        );
        for f in &r.findings {
            let kind = match f.severity {
                Severity::Damage => "damage",
                Severity::Stale => "stale",
            };
            let done = if f.repaired { " (removed)" } else { "" };
            outln!("{kind}: {}: {}{done}", f.subject, f.problem);
        }
        outln!(
            "{}",
            if r.unrepaired_damage() {
                "the store is damaged; `lighter system check --repair` removes what is broken"
            } else if r.damaged() {
                "the store was damaged and is repaired"
            } else {
                "the store is sound"
            }
        );
    }
    Ok(ExitCode::from(if r.unrepaired_damage() {
        4
    } else if r.damaged() {
        1
    } else {
        0
    }))
}
