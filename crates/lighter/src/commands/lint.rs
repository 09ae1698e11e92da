//! `lighter lint [-f Dockerfile] [FILE|-]`: BuildKit's Dockerfile checks and lighter's size rules,
//! with file:line:col, the line and a caret for every finding (text), or JSON, SARIF, Checkstyle,
//! Code Climate, GitLab Code Quality or JUnit (`--format`). Rules are skipped by `--ignore`, the
//! configuration file (`.lighter.toml` `[lint]`, or hadolint's `.hadolint.yaml`), the
//! `# check=skip=` directive and the `# lighter ignore=` / `# hadolint ignore=` pragmas, by lighter's
//! rule names or hadolint's codes. Exit 1 on parse errors or on findings at or above the failure
//! threshold (default: errors, which `# check=error=true` makes of every finding), 0 otherwise.

use super::Context;
use crate::cli::{FailureThreshold, LintArgs};
use crate::diagnostics::Rendered;
use lighter_dockerfile::lint::ignore;
use lighter_dockerfile::{check, parse, render_at, Severity};
use std::io::Read;
use std::process::ExitCode;

/// What a run skips and when it fails, and the image built from the Dockerfile (`--image`) whose
/// layers give the size findings their bytes.
#[derive(Debug, Clone)]
pub struct Options {
    pub ignore: Vec<String>,
    pub threshold: FailureThreshold,
    pub image: Option<lighter_image::view::ImageView>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ignore: Vec::new(),
            threshold: FailureThreshold::Error,
            image: None,
        }
    }
}

pub fn run(ctx: &Context, args: LintArgs) -> anyhow::Result<ExitCode> {
    let path = args
        .dockerfile
        .or(args.file)
        .unwrap_or_else(|| "Dockerfile".to_string());
    let config = super::lint_config::load(args.config.as_deref())?;
    let from = config
        .source
        .as_ref()
        .map_or("--ignore".to_string(), |p| p.display().to_string());
    let mut names = Vec::new();
    for (n, at) in config
        .ignore
        .iter()
        .map(|n| (n, from.as_str()))
        .chain(args.ignore.iter().map(|n| (n, "--ignore")))
    {
        if ignore::canonical(n).is_some() {
            names.push(n.clone());
        } else if is_hadolint_code(n) {
            eprintln!("warning: {at}: {n} is a hadolint rule lighter does not implement: nothing to ignore");
        } else {
            anyhow::bail!(
                "{at}: unknown rule {n:?} (lighter's rules: {}; or hadolint's codes {})",
                ignore::RULES.join(", "),
                ignore::ALIASES
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let image = args
        .image
        .as_deref()
        .map(|i| super::analyze::open_view(ctx, i, None, false))
        .transpose()?;
    let opts = Options {
        ignore: names,
        threshold: args
            .failure_threshold
            .or(config.failure_threshold)
            .unwrap_or(FailureThreshold::Error),
        image,
    };
    let (name, src) = read_dockerfile(&path)?;
    lint_with(&name, &src, args.format.as_str(), &opts)
}

/// hadolint's rule codes: `DL` or `SC` and four digits.
fn is_hadolint_code(n: &str) -> bool {
    let n = n.trim().to_ascii_uppercase();
    (n.starts_with("DL") || n.starts_with("SC"))
        && n.len() == 6
        && n[2..].bytes().all(|b| b.is_ascii_digit())
}

/// Reads a Dockerfile from a path or `-` (stdin); the name is what messages show.
pub fn read_dockerfile(path: &str) -> anyhow::Result<(String, String)> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        return Ok(("<stdin>".to_string(), s));
    }
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read Dockerfile {path}: {e}"))?;
    let src = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{path}: the Dockerfile is not valid UTF-8"))?;
    Ok((path.to_string(), src))
}

/// [`lint_with`] with no configuration (what `build --check` runs).
pub fn lint_source(name: &str, src: &str, format: &str) -> anyhow::Result<ExitCode> {
    lint_with(name, src, format, &Options::default())
}

/// Parses and checks; prints findings (text to stderr, reports to stdout).
pub fn lint_with(name: &str, src: &str, format: &str, opts: &Options) -> anyhow::Result<ExitCode> {
    let df = match parse(src) {
        Ok(df) => df,
        Err(e) => {
            if format == "json" {
                let v = serde_json::json!({
                    "errors": [{ "message": e.message, "line": e.span.start_line, "column": e.span.start_col,
                                 "expected": e.expected, "hint": e.hint }],
                    "warnings": [],
                });
                outln!("{}", serde_json::to_string_pretty(&v)?);
            }
            return Err(Rendered {
                message: e.render(name, src),
                code: 1,
            }
            .into());
        }
    };
    for (line, n) in ignore::unknown_pragmas(&df) {
        if !is_hadolint_code(&n) {
            eprintln!("warning: {name}:{line}: the ignore pragma names no rule: {n:?}");
        }
    }
    let mut findings = check(&df);
    ignore::apply(&df, &opts.ignore, &mut findings);
    let errors = findings
        .iter()
        .filter(|w| w.severity == Severity::Error)
        .count();
    let costs = match &opts.image {
        Some(img) => super::attribute::finding_costs(&df, &findings, &img.history(), |i| {
            img.layers.get(i).map(|l| l.entries.clone())
        }),
        None => vec![None; findings.len()],
    };
    match format {
        "json" => {
            let list: Vec<_> = findings
                .iter()
                .zip(&costs)
                .map(|(w, c)| {
                    serde_json::json!({
                        "bytes": c.map(|c| c.1), "directory": c.map(|c| format!("/{}", c.0)),
                        "rule": w.rule, "hadolint": ignore::codes_of(w.rule), "message": w.message,
                        "description": w.description, "url": w.url,
                        "line": w.span.start_line, "column": w.span.start_col,
                        "severity": if w.severity == Severity::Error { "error" } else { "warning" },
                    })
                })
                .collect();
            outln!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "errors": [], "warnings": list })
                )?
            );
        }
        "text" => print_text(name, src, &findings, &costs, errors),
        other => out!("{}", super::lint_format::render(other, name, &findings)),
    }
    let fails = match opts.threshold {
        FailureThreshold::Ignore => false,
        FailureThreshold::Error => errors > 0,
        _ => !findings.is_empty(),
    };
    Ok(if fails {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_text(
    name: &str,
    src: &str,
    findings: &[lighter_dockerfile::Warning],
    costs: &[Option<(&str, u64)>],
    errors: usize,
) {
    for (w, c) in findings.iter().zip(costs) {
        let level = if w.severity == Severity::Error {
            "error"
        } else {
            "warning"
        };
        let hint = (!w.url.is_empty()).then(|| format!("{} ({})", w.description, w.url));
        let mut hint = hint.unwrap_or_else(|| w.description.to_string());
        if let Some((dir, bytes)) = c {
            hint.push_str(&format!(
                "; in the image, /{dir} holds {} in this line's layer",
                crate::printer::human_size(*bytes)
            ));
        }
        eprint!(
            "{}",
            render_at(
                name,
                src,
                &w.span,
                level,
                &format!("{}: {}", w.rule, w.message),
                None,
                Some(&hint)
            )
        );
    }
    if findings.is_empty() {
        eprintln!("{name}: no problems found");
    } else {
        eprintln!(
            "{name}: {} warning(s), {errors} error(s)",
            findings.len() - errors
        );
    }
}
