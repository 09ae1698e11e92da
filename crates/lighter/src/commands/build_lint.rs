//! After a build, as BuildKit does: the Dockerfile's lint warnings (its `# check=` directive and
//! ignore pragmas honoured), each size finding with what it costs in the image just built ("41.2MB in
//! /var/lib/apt/lists"). Only the layers a size finding points at are read.

use crate::printer::human_size;
use lighter_dockerfile::lint::ignore;
use lighter_dockerfile::{check, parse, Warning};

/// The warnings of `src` for the image `image` (in `store`, when the build kept it); with `json`
/// (`--progress rawjson`) one JSON line instead of text.
pub fn report(
    store: &lighter_store::Store,
    image: Option<&lighter_oci::Digest>,
    name: &str,
    src: &str,
    json: bool,
) {
    let Ok(df) = parse(src) else { return };
    let mut findings = check(&df);
    let img = image.and_then(|id| lighter_image::Image::read(store, id).ok());
    if let Some(img) = &img {
        findings.extend(super::tls_check::check(store, img, &df));
    }
    ignore::apply(&df, &[], &mut findings);
    if findings.is_empty() {
        return;
    }
    let costs = match img {
        Some(img) => super::attribute::finding_costs(&df, &findings, &img.history(), |i| {
            let l = img.record.layers.get(i)?;
            lighter_image::analysis::layer_entries(store, &l.digest).ok()
        }),
        None => vec![None; findings.len()],
    };
    if json {
        let list: Vec<serde_json::Value> = findings
            .iter()
            .zip(&costs)
            .map(|(w, c)| {
                serde_json::json!({ "rule": w.rule, "message": w.message, "line": w.span.start_line,
                    "bytes": c.map(|c| c.1), "directory": c.map(|c| format!("/{}", c.0)) })
            })
            .collect();
        eprintln!(
            "{}",
            serde_json::json!({ "type": "warnings", "file": name, "warnings": list })
        );
        return;
    }
    eprint!("{}", render(name, &findings, &costs));
}

/// BuildKit's summary: ` N warnings found:` then ` - Rule: message (file line N)`.
fn render(name: &str, findings: &[Warning], costs: &[Option<(&str, u64)>]) -> String {
    let n = findings.len();
    let mut out = format!(
        " {n} warning{} found (use lighter lint {name} for details):\n",
        if n == 1 { "" } else { "s" }
    );
    for (w, c) in findings.iter().zip(costs) {
        let cost = c
            .filter(|(_, b)| *b > 0)
            .map(|(d, b)| format!(", {} in /{d}", human_size(b)))
            .unwrap_or_default();
        out.push_str(&format!(
            " - {}: {} ({name} line {}{cost})\n",
            w.rule, w.message, w.span.start_line
        ));
    }
    out
}
