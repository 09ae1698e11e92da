//! `lighter build --call METHOD[,format=json]`, as buildx: `targets` lists the stages with their
//! doc comments (`# NAME description` above the FROM), `outline` the build arguments (with the
//! values they get), secrets and SSH agents that the target uses, read from the build graph.
//! `check` and `build` are handled by `build` itself.

use crate::cli::BuildArgs;
use crate::diagnostics::Rendered;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Build,
    Check,
    Outline,
    Targets,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    pub json: bool,
}

/// `METHOD[,format=text|json]`; anything else is an error, never ignored.
pub fn parse(spec: &str) -> anyhow::Result<Call> {
    let mut parts = spec.split(',');
    let method = match parts.next().unwrap_or_default() {
        "build" => Method::Build,
        "check" => Method::Check,
        "outline" => Method::Outline,
        "targets" => Method::Targets,
        other => anyhow::bail!(
            "--call {spec}: unknown method {other:?} (build, check, outline or targets)"
        ),
    };
    let mut json = false;
    for p in parts {
        match p.split_once('=') {
            Some(("format", "json")) => json = true,
            Some(("format", "text")) => json = false,
            _ => anyhow::bail!("--call {spec}: unknown option {p:?} (format=text or format=json)"),
        }
    }
    if json && matches!(method, Method::Build | Method::Check) {
        anyhow::bail!("--call {spec}: format= applies to outline and targets");
    }
    Ok(Call { method, json })
}

pub fn run(call: &Call, args: &BuildArgs, df_name: &str, src: &str) -> anyhow::Result<ExitCode> {
    let df = lighter_dockerfile::parse(src).map_err(|e| Rendered {
        message: e.render(df_name, src),
        code: crate::diagnostics::DOCKERFILE,
    })?;
    let out = match call.method {
        Method::Targets => targets(&df, call.json),
        _ => {
            let named: BTreeMap<String, ()> = args
                .build_contexts
                .iter()
                .filter_map(|bc| bc.split_once('=').map(|(n, _)| (n.to_string(), ())))
                .collect();
            let build_args = super::build::build_args_of(&args.build_args);
            let d = lighter_engine::lower::lower_graph(
                &df,
                &build_args,
                args.target.as_deref(),
                &named,
            )
            .map_err(|e| Rendered {
                message: match e.span {
                    Some(span) => lighter_dockerfile::render_at(
                        df_name, src, &span, "error", &e.message, None, None,
                    ),
                    None => format!("error: {}\n", e.message),
                },
                code: crate::diagnostics::DOCKERFILE,
            })?;
            outline(&d, call.json)
        }
    };
    out!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn targets(df: &lighter_dockerfile::Dockerfile, json: bool) -> String {
    let last = df.stages.len().saturating_sub(1);
    let rows: Vec<(String, String, &lighter_dockerfile::Stage)> = df
        .stages
        .iter()
        .map(|s| {
            let name = s.name_original.clone().unwrap_or_default();
            let desc = lighter_dockerfile::doc_comment(&s.comments, &name).unwrap_or_default();
            (name, desc, s)
        })
        .collect();
    if json {
        let t: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, desc, s)| {
                serde_json::json!({
                    "name": name,
                    "description": desc,
                    "default": s.index == last,
                    "base": s.base,
                    "platform": s.platform,
                    "location": { "line": s.span.start_line },
                })
            })
            .collect();
        return format!("{:#}\n", serde_json::json!({ "targets": t }));
    }
    let mut table = vec![("TARGET".to_string(), "DESCRIPTION".to_string())];
    for (name, desc, s) in rows {
        let name = match (name.is_empty(), s.index == last) {
            (true, true) => "(default)".to_string(),
            (false, true) => format!("{name} (default)"),
            _ => name,
        };
        table.push((name, desc));
    }
    columns(&table, 1)
}

fn outline(d: &lighter_graph::Definition, json: bool) -> String {
    let stage = &d.stages[d.target];
    if json {
        let args: Vec<serde_json::Value> = d
            .args
            .iter()
            .map(|a| serde_json::json!({ "name": a.name, "value": a.value, "description": a.description, "location": { "line": a.span.start_line } }))
            .collect();
        let mounts = |m: &[lighter_graph::UsedMount]| -> Vec<serde_json::Value> {
            m.iter()
                .map(|s| serde_json::json!({ "name": s.id, "required": s.required, "location": { "line": s.span.start_line } }))
                .collect()
        };
        let o = serde_json::json!({
            "name": stage.name,
            "description": stage.description,
            "args": args,
            "secrets": mounts(&d.secrets),
            "ssh": mounts(&d.ssh),
        });
        return format!("{o:#}\n");
    }
    let mut out = String::new();
    let name = stage.name.clone().unwrap_or_else(|| "(default)".into());
    let mut head = vec![("TARGET:".to_string(), name)];
    if let Some(desc) = &stage.description {
        head.push(("DESCRIPTION:".into(), desc.clone()));
    }
    let _ = writeln!(out, "{}", columns(&head, 1));
    if !d.args.is_empty() {
        let mut t = vec![(
            "BUILD ARG".to_string(),
            "VALUE".to_string(),
            "DESCRIPTION".to_string(),
        )];
        for a in &d.args {
            t.push((
                a.name.clone(),
                a.value.clone().unwrap_or_default(),
                a.description.clone().unwrap_or_default(),
            ));
        }
        let _ = writeln!(out, "{}", columns3(&t));
    }
    for (title, list) in [("SECRET", &d.secrets), ("SSH", &d.ssh)] {
        if list.is_empty() {
            continue;
        }
        let mut t = vec![(title.to_string(), "REQUIRED".to_string())];
        for s in list {
            t.push((s.id.clone(), if s.required { "true" } else { "" }.into()));
        }
        let _ = writeln!(out, "{}", columns(&t, 3));
    }
    out
}

/// Two columns padded as Go's tabwriter pads them (`pad` spaces after the widest cell).
fn columns(rows: &[(String, String)], pad: usize) -> String {
    let w = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0) + pad;
    rows.iter()
        .map(|(a, b)| format!("{a:<w$}{b}").trim_end().to_string() + "\n")
        .collect()
}

fn columns3(rows: &[(String, String, String)]) -> String {
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0) + 3;
    let w1 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0) + 3;
    rows.iter()
        .map(|(a, b, c)| format!("{a:<w0$}{b:<w1$}{c}").trim_end().to_string() + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_options_parse_or_are_refused() {
        assert_eq!(parse("targets").unwrap().method, Method::Targets);
        assert!(parse("outline,format=json").unwrap().json);
        assert!(parse("lint").is_err());
        assert!(parse("outline,fmt=json").is_err());
        assert!(parse("build,format=json").is_err());
    }
}
