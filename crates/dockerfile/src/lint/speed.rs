//! lighter's speed rules: a package manager or compiler run without a cache mount downloads or
//! rebuilds everything on every build of that step. Each finding carries the exact `--mount` flags
//! for that tool (the directories its official images use), in every stage, builder stages included.

use super::shell::Cmd;
use super::size::{run_commands, windows};
use super::{Severity, Warning};
use crate::ast::*;

/// The cache directories of a command, as `(target, sharing=locked?)`, and the tool's name.
fn caches(c: &Cmd, workdir: &str) -> Option<(&'static str, Vec<(String, bool)>)> {
    let sub = c.subcommand().unwrap_or_default();
    match c.name.as_str() {
        "go" if matches!(sub, "build" | "install" | "test") => Some((
            "go build",
            vec![
                ("/root/.cache/go-build".into(), false),
                ("/go/pkg/mod".into(), false),
            ],
        )),
        "go" if sub == "mod" && c.args.iter().any(|a| a == "download") => {
            Some(("go mod download", vec![("/go/pkg/mod".into(), false)]))
        }
        "npm" if matches!(sub, "ci" | "install" | "i") => {
            Some(("npm", vec![("/root/.npm".into(), false)]))
        }
        n if n.starts_with("pip") && sub == "install" => {
            Some(("pip install", vec![("/root/.cache/pip".into(), false)]))
        }
        "cargo" if matches!(sub, "build" | "install" | "test") => {
            let target = if workdir.is_empty() || workdir == "/" {
                "/target".to_string()
            } else {
                format!("{}/target", workdir.trim_end_matches('/'))
            };
            Some((
                "cargo build",
                vec![("/usr/local/cargo/registry".into(), false), (target, false)],
            ))
        }
        "apt-get" | "apt" if sub == "install" => Some((
            "apt-get install",
            vec![
                ("/var/cache/apt".into(), true),
                ("/var/lib/apt".into(), true),
            ],
        )),
        _ => None,
    }
}

pub(super) fn run(df: &Dockerfile, out: &mut Vec<Warning>) {
    for stage in &df.stages {
        if windows(df, stage) {
            continue;
        }
        let mut workdir = String::new();
        for i in &stage.instructions {
            match &i.kind {
                InstructionKind::Workdir(w) => {
                    workdir = if w.starts_with('/') {
                        w.clone()
                    } else {
                        format!("{}/{w}", workdir.trim_end_matches('/'))
                    }
                }
                InstructionKind::Run(r) => {
                    let mounted = |dir: &str| {
                        r.mounts.iter().any(|m| {
                            m.kind == MountKind::Cache
                                && m.target.as_deref().is_some_and(|t| {
                                    t.trim_end_matches('/') == dir || dir.starts_with(t)
                                })
                        })
                    };
                    let mut missing: Vec<(String, bool)> = Vec::new();
                    let mut tools: Vec<&str> = Vec::new();
                    for c in run_commands(r) {
                        if let Some((tool, dirs)) = caches(&c, &workdir) {
                            for d in dirs {
                                if !mounted(&d.0) && !missing.contains(&d) {
                                    missing.push(d);
                                    if !tools.contains(&tool) {
                                        tools.push(tool);
                                    }
                                }
                            }
                        }
                    }
                    if missing.is_empty() {
                        continue;
                    }
                    let flags: Vec<String> = missing
                        .iter()
                        .map(|(t, locked)| {
                            format!(
                                "--mount=type=cache,target={t}{}",
                                if *locked { ",sharing=locked" } else { "" }
                            )
                        })
                        .collect();
                    let apt = tools.contains(&"apt-get install");
                    out.push(Warning {
                        rule: "NoCacheMount",
                        message: format!(
                            "{} runs without a cache mount and starts from nothing on every rebuild of this step: RUN {} ...{}",
                            tools.join(", "),
                            flags.join(" "),
                            if apt {
                                " (and remove /etc/apt/apt.conf.d/docker-clean in the base, or apt deletes what it cached)"
                            } else {
                                ""
                            }
                        ),
                        description: "a download or build cache mount makes rebuilds of this step fast",
                        url: String::new(),
                        span: i.span,
                        severity: Severity::Warning,
                    });
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{check, parse};

    fn messages(src: &str) -> Vec<String> {
        check(&parse(src).unwrap())
            .into_iter()
            .filter(|w| w.rule == "NoCacheMount")
            .map(|w| w.message)
            .collect()
    }

    #[test]
    fn each_tool_gets_its_mounts() {
        let m = messages("FROM golang AS b\nWORKDIR /src\nRUN go mod download && go build -o /app .\nFROM scratch\n");
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].contains("--mount=type=cache,target=/root/.cache/go-build")
                && m[0].contains("--mount=type=cache,target=/go/pkg/mod"),
            "{m:?}"
        );
        let m = messages("FROM rust\nWORKDIR /app\nRUN cargo build --release\n");
        assert!(
            m[0].contains("target=/usr/local/cargo/registry")
                && m[0].contains("target=/app/target"),
            "{m:?}"
        );
        let m = messages("FROM debian\nRUN apt-get update && apt-get install -y x\n");
        assert!(
            m[0].contains("target=/var/cache/apt,sharing=locked") && m[0].contains("docker-clean"),
            "{m:?}"
        );
        assert!(messages("FROM node\nRUN npm ci\n")[0].contains("target=/root/.npm"));
        assert!(messages("FROM python\nRUN pip install -r r.txt\n")[0]
            .contains("target=/root/.cache/pip"));
        // Mounted: nothing to say; only the missing one is named.
        assert!(
            messages("FROM node\nRUN --mount=type=cache,target=/root/.npm npm ci\n").is_empty()
        );
        let m = messages("FROM golang\nRUN --mount=type=cache,target=/go/pkg/mod go build .\n");
        assert!(
            m[0].contains("go-build") && !m[0].contains("target=/go/pkg/mod"),
            "{m:?}"
        );
        // Not a package manager run: nothing.
        assert!(messages("FROM node\nRUN echo npm ci\n").is_empty());
    }
}
