//! `lighter lint`: BuildKit's Dockerfile checks and lighter's size rules, with file:line:col, the line
//! and a caret for every finding. Exit 1 on parse errors or on findings raised to errors
//! (`# check=error=true`), 0 otherwise.

use super::Context;
use crate::cli::LintArgs;
use crate::diagnostics::Rendered;
use lighter_dockerfile::{check, parse, render_at, Severity};
use std::io::Read;
use std::process::ExitCode;

pub fn run(_ctx: &Context, args: LintArgs) -> anyhow::Result<ExitCode> {
    let path = args.file.unwrap_or_else(|| "Dockerfile".to_string());
    let (name, src) = read_dockerfile(&path)?;
    lint_source(&name, &src, args.format.as_str())
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

/// Parses and checks; prints findings (text to stderr, or JSON to stdout).
pub fn lint_source(name: &str, src: &str, format: &str) -> anyhow::Result<ExitCode> {
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
    let findings = check(&df);
    let errors = findings
        .iter()
        .filter(|w| w.severity == Severity::Error)
        .count();
    if format == "json" {
        let list: Vec<_> = findings
            .iter()
            .map(|w| {
                serde_json::json!({
                    "rule": w.rule, "message": w.message, "description": w.description, "url": w.url,
                    "line": w.span.start_line, "column": w.span.start_col,
                    "severity": if w.severity == Severity::Error { "error" } else { "warning" },
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "errors": [], "warnings": list }))?
        );
    } else {
        for w in &findings {
            let level = if w.severity == Severity::Error {
                "error"
            } else {
                "warning"
            };
            let hint = (!w.url.is_empty()).then(|| format!("{} ({})", w.description, w.url));
            let hint = hint.unwrap_or_else(|| w.description.to_string());
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
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
