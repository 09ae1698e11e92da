//! `lighter analyze IMAGE`: per-layer changes, dive's efficiency and wasted bytes, our reclaimable
//! bytes, top offenders; `--json FILE|-` and `--ci` thresholds (exit 1 when one fails) in one run.
//! IMAGE is a store image, a docker-archive / OCI archive or layout read in place, or a registry's
//! image streamed (see [`open_view`]).

use super::Context;
use crate::cli::AnalyzeArgs;
use crate::printer::{human_size, table};
use std::process::ExitCode;

/// Reads IMAGE for `analyze`, `history` and `diff` without writing a byte of it anywhere: a
/// docker-archive, OCI archive or layout path is read in place; a name is a store image or, when the
/// store has none and the name gives a registry host (`localhost:5000/app:1`), the registry's, its
/// layers streamed and verified (`platform` picks from an index). `verify` reads every layer of an
/// archive whole to check its digests (see `lighter_image::stream`); a registry's layers are always
/// checked, a store's were when they were stored.
pub fn open_view(
    ctx: &Context,
    name: &str,
    platform: Option<&str>,
    verify: bool,
) -> anyhow::Result<lighter_image::view::ImageView> {
    let p = std::path::Path::new(name);
    // A file, or a directory that is a layout or an unpacked archive: a directory that merely
    // shares an image's name is not one.
    let archive = p.is_file()
        || (p.is_dir() && (p.join("index.json").is_file() || p.join("manifest.json").is_file()));
    if archive {
        if platform.is_some() {
            anyhow::bail!("--platform picks from a registry's index; {name} is a file");
        }
        return Ok(lighter_image::stream::open(p, verify)?);
    }
    let store = ctx.store()?;
    match lighter_image::resolve(&store, name) {
        Ok(img) if platform.is_none() => {
            Ok(lighter_image::view::ImageView::from_store(&store, &img)?)
        }
        Ok(_) => anyhow::bail!(
            "--platform picks from a registry's index; {name} is an image in the store"
        ),
        Err(lighter_image::ImageError::NotFound(_)) if names_registry(name) => {
            super::registry::view(name, platform)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `name`'s first component is a registry host, as docker tells one (a dot, a port, or
/// `localhost`).
fn names_registry(name: &str) -> bool {
    match name.split_once('/') {
        Some((host, _)) => host.contains('.') || host.contains(':') || host == "localhost",
        None => false,
    }
}

/// `--dockerfile`: the Dockerfile at `path`, parsed (errors rendered at file:line:column), its lines
/// attributed to the image's layers.
fn dockerfile_lines(
    path: &std::path::Path,
    img: &lighter_image::view::ImageView,
) -> anyhow::Result<Vec<super::attribute::LineCost>> {
    let name = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let df = lighter_dockerfile::parse(&src).map_err(|e| crate::diagnostics::Rendered {
        message: e.render(&name, &src),
        code: crate::diagnostics::DOCKERFILE,
    })?;
    let lines = super::attribute::attribute(&df, None, img);
    if lines.is_empty() {
        eprintln!(
            "warning: {name}: no instruction of its last stage matches the image's history (is this the Dockerfile the image was built from?)"
        );
    }
    Ok(lines)
}

/// The Dockerfile lines and what each adds: "line 4 `RUN ...` adds 764MB: 183MB /var/cache/apt, ...".
fn print_lines(path: &std::path::Path, lines: &[super::attribute::LineCost]) {
    outln!();
    outln!("Dockerfile lines ({}):", path.display());
    let mut rows = vec![vec![
        "LINE".to_string(),
        "ADDS".into(),
        "INSTRUCTION".into(),
        "LARGEST DIRECTORIES".into(),
    ]];
    for l in lines.iter().filter(|l| l.layer.is_some()) {
        let ins: String = l.instruction.chars().take(50).collect();
        let dirs: Vec<String> = l
            .directories
            .iter()
            .map(|(d, b)| format!("{} {d}", human_size(*b)))
            .collect();
        rows.push(vec![
            l.line.to_string(),
            human_size(l.bytes),
            ins,
            dirs.join(", "),
        ]);
    }
    if rows.len() == 1 {
        outln!("  no instruction matches the image's history");
    } else {
        out!("{}", table(&rows));
    }
}

fn parse_bytes(s: &str) -> anyhow::Result<u64> {
    let t = s.trim().to_ascii_uppercase();
    let (num, mult) = [
        ("GB", 1e9),
        ("MB", 1e6),
        ("KB", 1e3),
        ("GIB", 1073741824.0),
        ("MIB", 1048576.0),
        ("KIB", 1024.0),
        ("B", 1.0),
    ]
    .iter()
    .find_map(|(u, m)| t.strip_suffix(u).map(|n| (n.trim().to_string(), *m)))
    .unwrap_or((t.clone(), 1.0));
    Ok((num
        .parse::<f64>()
        .map_err(|_| anyhow::anyhow!("invalid size {s:?}"))?
        * mult) as u64)
}

/// `.dive-ci` style YAML: `rules: { lowestEfficiency: 0.95, highestWastedBytes: 20MB, highestUserWastedPercent: 0.20 }`.
fn read_ci_config(
    path: &std::path::Path,
) -> anyhow::Result<(Option<f64>, Option<String>, Option<f64>)> {
    let text = std::fs::read_to_string(path)?;
    let (mut e, mut w, mut u) = (None, None, None);
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().trim_matches('"').trim_matches('\'');
        if v.eq_ignore_ascii_case("disabled") || v.is_empty() {
            continue;
        }
        match k.trim() {
            "lowestEfficiency" => e = Some(v.parse()?),
            "highestWastedBytes" => w = Some(v.to_string()),
            "highestUserWastedPercent" => u = Some(v.parse()?),
            _ => {}
        }
    }
    Ok((e, w, u))
}

pub fn run(ctx: &Context, args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let img = open_view(ctx, &args.image, args.platform.as_deref(), !args.no_verify)?;
    let a = lighter_image::analysis::analyze(&img, &args.image, args.top);
    let lines = args
        .dockerfile
        .as_deref()
        .map(|p| dockerfile_lines(p, &img))
        .transpose()?;
    // The explorer: with -i, or by default on a terminal when no report or CI verdict is asked for.
    let reports = args.ci
        || args.json.is_some()
        || args.html.is_some()
        || args.sarif.is_some()
        || args.junit.is_some();
    use std::io::IsTerminal;
    if args.interactive
        || (!reports && std::io::stdout().is_terminal() && std::io::stdin().is_terminal())
    {
        let changes = lighter_image::analysis::layer_changes(&img);
        let mut a = a;
        // The explorer names each attributed layer by its Dockerfile line.
        for l in lines.iter().flatten() {
            if let Some(r) = l.layer.and_then(|i| a.layers.get_mut(i)) {
                r.created_by = format!("line {}: {}", l.line, l.instruction);
            }
        }
        let mut app = super::explore::App::new(a, changes);
        super::explore::run(&mut app)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(path) = &args.html {
        std::fs::write(path, super::report::html(&a, &img)?)
            .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
        eprintln!("HTML report written to {}", path.display());
    }
    let mut value = serde_json::to_value(&a)?;
    if let Some(l) = &lines {
        value["dockerfile"] = serde_json::to_value(l)?;
    }
    let json = serde_json::to_string_pretty(&value)?;
    match args.json.as_deref() {
        Some("-") => outln!("{json}"),
        Some(f) => std::fs::write(f, &json)?,
        None => {}
    }
    if args.json.as_deref() != Some("-") {
        let mut rows = vec![vec![
            "LAYER".to_string(),
            "ORIGIN".into(),
            "SIZE".into(),
            "COMPRESSED".into(),
            "ADDED".into(),
            "MODIFIED".into(),
            "REMOVED".into(),
            "CREATED BY".into(),
        ]];
        for l in &a.layers {
            let by: String = l.created_by.chars().take(60).collect();
            rows.push(vec![
                l.index.to_string(),
                l.origin.clone(),
                human_size(l.size),
                human_size(l.compressed_size),
                format!("{} ({})", l.added, human_size(l.added_bytes)),
                format!("{} ({})", l.modified, human_size(l.modified_bytes)),
                format!("{} ({})", l.removed, human_size(l.removed_bytes)),
                by,
            ]);
        }
        out!("{}", table(&rows));
        outln!();
        outln!(
            "Image: {}  size {}  compressed {}",
            a.image,
            human_size(a.size),
            human_size(a.compressed_size)
        );
        outln!("Efficiency (dive): {:.4} %", a.efficiency * 100.0);
        outln!(
            "Wasted bytes (dive, counts every copy): {}",
            human_size(a.wasted_bytes)
        );
        outln!(
            "User wasted percent (dive): {:.4} %",
            a.user_wasted_percent * 100.0
        );
        outln!(
            "Reclaimable bytes (copies the final image does not show): {}",
            human_size(a.reclaimable_bytes)
        );
        if !a.offenders.is_empty() {
            outln!();
            let mut rows = vec![vec![
                "COPIES".to_string(),
                "CUMULATIVE".into(),
                "RECLAIMABLE".into(),
                "PATH".into(),
            ]];
            for o in &a.offenders {
                rows.push(vec![
                    o.copies.to_string(),
                    human_size(o.cumulative),
                    human_size(o.reclaimable),
                    format!("/{}", o.path),
                ]);
            }
            out!("{}", table(&rows));
        }
        if let Some(l) = &lines {
            print_lines(
                args.dockerfile
                    .as_deref()
                    .unwrap_or(std::path::Path::new("")),
                l,
            );
        }
    }
    if !args.ci && args.sarif.is_none() && args.junit.is_none() {
        return Ok(ExitCode::SUCCESS);
    }
    let (mut eff, mut wasted, mut user) = (Some(0.9), None::<String>, Some(0.1));
    if let Some(p) = args.ci_config.clone().or_else(|| {
        std::path::Path::new(".dive-ci")
            .is_file()
            .then(|| ".dive-ci".into())
    }) {
        let (e, w, u) = read_ci_config(&p)?;
        eff = e.or(eff);
        wasted = w.or(wasted);
        user = u.or(user);
    }
    eff = args.lowest_efficiency.or(eff);
    wasted = args.highest_wasted_bytes.clone().or(wasted);
    user = args.highest_user_wasted_percent.or(user);
    // Every configured rule with its verdict: (name, passed, message).
    let mut rules: Vec<(&str, bool, String)> = Vec::new();
    if let Some(e) = eff {
        rules.push((
            "lowestEfficiency",
            a.efficiency >= e,
            format!("efficiency {:.4} (lowest allowed {e})", a.efficiency),
        ));
    }
    if let Some(w) = &wasted {
        let limit = parse_bytes(w)?;
        rules.push((
            "highestWastedBytes",
            a.wasted_bytes <= limit,
            format!("wasted bytes {} (highest allowed {limit})", a.wasted_bytes),
        ));
    }
    if let Some(u) = user {
        rules.push((
            "highestUserWastedPercent",
            a.user_wasted_percent <= u,
            format!(
                "user wasted percent {:.4} (highest allowed {u})",
                a.user_wasted_percent
            ),
        ));
    }
    if let Some(p) = &args.sarif {
        std::fs::write(
            p,
            serde_json::to_string_pretty(&sarif(&args.image, &rules))?,
        )
        .map_err(|e| anyhow::anyhow!("write {}: {e}", p.display()))?;
    }
    if let Some(p) = &args.junit {
        std::fs::write(p, junit(&args.image, &rules))
            .map_err(|e| anyhow::anyhow!("write {}: {e}", p.display()))?;
    }
    if !args.ci {
        return Ok(ExitCode::SUCCESS);
    }
    let failed: Vec<_> = rules.iter().filter(|r| !r.1).collect();
    if failed.is_empty() {
        eprintln!("CI: PASS");
        Ok(ExitCode::SUCCESS)
    } else {
        for (name, _, msg) in &failed {
            eprintln!("CI: FAIL {name}: {msg}");
        }
        Ok(ExitCode::from(1))
    }
}

/// SARIF 2.1.0: one rule per threshold, one result per failed rule (level error) on the image.
fn sarif(image: &str, rules: &[(&str, bool, String)]) -> serde_json::Value {
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "lighter analyze",
                "informationUri": "https://github.com/wagoodman/dive#ci-integration",
                "rules": rules.iter().map(|(n, _, _)| serde_json::json!({ "id": n, "shortDescription": { "text": format!("dive CI rule {n}") } })).collect::<Vec<_>>(),
            }},
            "results": rules.iter().filter(|r| !r.1).map(|(n, _, m)| serde_json::json!({
                "ruleId": n,
                "level": "error",
                "message": { "text": format!("{image}: {m}") },
                "locations": [{ "physicalLocation": { "artifactLocation": { "uri": image } } }],
            })).collect::<Vec<_>>(),
        }],
    })
}

/// JUnit XML: a test suite for the image, a test case per rule, a failure element when it fails.
fn junit(image: &str, rules: &[(&str, bool, String)]) -> String {
    let x = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let failures = rules.iter().filter(|r| !r.1).count();
    let mut out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"lighter analyze {}\" tests=\"{}\" failures=\"{failures}\">\n", x(image), rules.len());
    for (n, ok, m) in rules {
        out.push_str(&format!(
            "    <testcase classname=\"lighter.analyze\" name=\"{}\"",
            x(n)
        ));
        if *ok {
            out.push_str("/>\n");
        } else {
            out.push_str(&format!(
                ">\n      <failure message=\"{}\"/>\n    </testcase>\n",
                x(m)
            ));
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
