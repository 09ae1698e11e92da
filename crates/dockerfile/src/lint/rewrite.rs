//! "Make this multi-stage": for a single-stage Dockerfile that builds a Go program or a Node
//! service on its toolchain image, a complete rewritten Dockerfile: the same steps in a builder
//! stage (with cache mounts), then a runtime stage that gets only the artifact — a static Go binary
//! in `scratch` with the CA bundle and a non-root user; for Node the production `node_modules`
//! (`npm prune --omit=dev`), `package.json` and the built output on the `-slim` image as `USER
//! node`. EXPOSE, ENV, LABEL and the command carry over. Other toolchains are not rewritten.

use super::shell::Cmd;
use super::size::run_commands;
use super::{Severity, Warning};
use crate::ast::*;

fn exec_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The command the image runs (ENTRYPOINT then CMD), as words.
fn command_words(s: &Stage) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let words = |c: &Command| match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
    };
    let (mut ep, mut cmd) = (None, None);
    for i in &s.instructions {
        match &i.kind {
            InstructionKind::Entrypoint(c) => ep = Some(words(c)),
            InstructionKind::Cmd(c) => cmd = Some(words(c)),
            _ => {}
        }
    }
    (ep, cmd)
}

/// The lines that describe the image rather than build it: EXPOSE, ENV, LABEL, STOPSIGNAL.
fn runtime_lines(s: &Stage) -> Vec<String> {
    s.instructions
        .iter()
        .filter(|i| {
            matches!(
                i.kind,
                InstructionKind::Expose(_)
                    | InstructionKind::Env(_)
                    | InstructionKind::Label(_)
                    | InstructionKind::StopSignal(_)
            )
        })
        .map(|i| i.original.clone())
        .collect()
}

fn workdir(s: &Stage) -> String {
    let mut w = String::from("/");
    for i in &s.instructions {
        if let InstructionKind::Workdir(d) = &i.kind {
            w = if d.starts_with('/') {
                d.clone()
            } else {
                format!("{}/{d}", w.trim_end_matches('/'))
            };
        }
    }
    w
}

fn go(s: &Stage, cmds: &[Cmd]) -> Option<String> {
    let build = cmds
        .iter()
        .find(|c| c.name == "go" && c.subcommand() == Some("build"))?;
    // The build's own arguments, without its -o (the rewrite names the output).
    let mut args = Vec::new();
    let mut out_name = None;
    let mut it = build.args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "-o" {
            out_name = it.next().cloned();
        } else if let Some(o) = a.strip_prefix("-o=") {
            out_name = Some(o.to_string());
        } else {
            args.push(a.clone());
        }
    }
    let name = out_name
        .as_deref()
        .and_then(|o| o.rsplit('/').next())
        .filter(|n| !n.is_empty())
        .unwrap_or("app")
        .to_string();
    let wd = workdir(s);
    let (ep, cmd) = command_words(s);
    // The binary was run by name or by its path: point at /NAME.
    let fix = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .enumerate()
            .map(|(i, w)| {
                if i == 0 && (w == name || w.ends_with(&format!("/{name}"))) {
                    format!("/{name}")
                } else {
                    w
                }
            })
            .collect()
    };
    let mut out = vec![
        "# syntax=docker/dockerfile:1".to_string(),
        "# Rewritten by `lighter lint`: build in the toolchain image, ship only the static binary."
            .into(),
        format!("FROM {} AS build", s.base),
        format!("WORKDIR {wd}"),
        "COPY . .".into(),
        format!(
            "RUN --mount=type=cache,target=/root/.cache/go-build --mount=type=cache,target=/go/pkg/mod \\\n    CGO_ENABLED=0 go build -trimpath -ldflags=\"-s -w\" -o /out/{name} {}",
            args.join(" ")
        )
        .trim_end()
        .to_string(),
        String::new(),
        "FROM scratch".into(),
        "COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt"
            .into(),
        format!("COPY --from=build /out/{name} /{name}"),
        "USER 65534:65534".into(),
    ];
    out.extend(runtime_lines(s));
    match (ep, cmd) {
        (Some(e), c) => {
            out.push(format!("ENTRYPOINT {}", exec_json(&fix(e))));
            if let Some(c) = c {
                out.push(format!("CMD {}", exec_json(&c)));
            }
        }
        (None, Some(c)) => out.push(format!("CMD {}", exec_json(&fix(c)))),
        (None, None) => out.push(format!("ENTRYPOINT [\"/{name}\"]")),
    }
    Some(out.join("\n") + "\n")
}

fn node(s: &Stage, cmds: &[Cmd]) -> Option<String> {
    let install = cmds
        .iter()
        .find(|c| c.name == "npm" && matches!(c.subcommand(), Some("ci" | "install" | "i")))?;
    let builds = cmds
        .iter()
        .any(|c| c.name == "npm" && c.subcommand() == Some("run"));
    let wd = workdir(s);
    let (ep, cmd) = command_words(s);
    // The built output: the top directory of the script the image runs (`node dist/server.js`).
    let out_dir = ep
        .iter()
        .chain(cmd.iter())
        .flatten()
        .find(|w| w.ends_with(".js") && w.contains('/') && !w.starts_with('/'))
        .and_then(|w| w.split('/').next().map(str::to_string));
    let runtime = match s.base.split_once(':') {
        Some((repo, tag)) => format!("{repo}:{tag}-slim"),
        None => format!("{}:slim", s.base),
    };
    let install_cmd = format!("npm {}", install.args.join(" "));
    let build = if builds {
        "npm run build && npm prune --omit=dev"
    } else {
        "npm prune --omit=dev"
    };
    let mut out = vec![
        "# syntax=docker/dockerfile:1".to_string(),
        "# Rewritten by `lighter lint`: install and build with dev dependencies, ship production ones."
            .into(),
        format!("FROM {} AS build", s.base),
        format!("WORKDIR {wd}"),
        "COPY package*.json ./".into(),
        format!("RUN --mount=type=cache,target=/root/.npm {install_cmd}"),
        "COPY . .".into(),
        format!("RUN {build}"),
        String::new(),
        format!("FROM {runtime}"),
        "ENV NODE_ENV=production".into(),
        format!("WORKDIR {wd}"),
    ];
    let from = |p: &str| format!("{}/{p}", wd.trim_end_matches('/'));
    match &out_dir {
        Some(d) => {
            out.push(format!(
                "COPY --from=build --chown=node:node {} ./",
                from("package.json")
            ));
            out.push(format!(
                "COPY --from=build --chown=node:node {} ./node_modules",
                from("node_modules")
            ));
            out.push(format!(
                "COPY --from=build --chown=node:node {} ./{d}",
                from(d)
            ));
        }
        None => out.push(format!("COPY --from=build --chown=node:node {wd} ./")),
    }
    out.push("USER node".into());
    out.extend(runtime_lines(s));
    if let Some(e) = ep {
        out.push(format!("ENTRYPOINT {}", exec_json(&e)));
    }
    if let Some(c) = cmd {
        out.push(format!("CMD {}", exec_json(&c)));
    }
    Some(out.join("\n") + "\n")
}

/// The multi-stage rewrite of `df`, when it is a single stage that builds Go or Node code on its
/// toolchain image.
pub fn multi_stage(df: &Dockerfile) -> Option<String> {
    if df.stages.len() != 1 {
        return None;
    }
    let s = &df.stages[0];
    let cmds: Vec<Cmd> = s
        .instructions
        .iter()
        .filter_map(|i| match &i.kind {
            InstructionKind::Run(r) => Some(run_commands(r)),
            _ => None,
        })
        .flatten()
        .collect();
    let repo = s.base.rsplit('/').next().unwrap_or(&s.base);
    let repo = repo.split([':', '@']).next().unwrap_or(repo);
    match repo {
        "golang" => go(s, &cmds),
        "node" => node(s, &cmds),
        _ => None,
    }
}

/// The `MakeMultiStage` finding, on the FROM line, when there is a rewrite.
pub fn check(df: &Dockerfile, out: &mut Vec<Warning>) {
    if multi_stage(df).is_some() {
        out.push(Warning {
            rule: "MakeMultiStage",
            message: format!(
                "this single stage builds on '{}' and ships the toolchain, the sources and the build caches: `lighter lint --write-multi-stage FILE` writes a multi-stage rewrite that ships only the artifact",
                df.stages[0].base
            ),
            description: "build in one stage and ship from a slim or scratch one",
            url: String::new(),
            span: df.stages[0].span,
            severity: Severity::Warning,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_and_node_are_rewritten() {
        let go = crate::parse("FROM golang:1.19\nWORKDIR /src\nCOPY . .\nRUN go build -o /usr/local/bin/server .\nEXPOSE 8080\nENTRYPOINT [\"server\"]\n").unwrap();
        let r = multi_stage(&go).unwrap();
        let parsed = crate::parse(&r).unwrap();
        assert_eq!(parsed.stages.len(), 2, "{r}");
        assert_eq!(parsed.stages[1].base, "scratch");
        assert!(
            r.contains("CGO_ENABLED=0 go build") && r.contains("-o /out/server ."),
            "{r}"
        );
        assert!(
            r.contains("COPY --from=build /out/server /server")
                && r.contains("ENTRYPOINT [\"/server\"]"),
            "{r}"
        );
        assert!(r.contains("EXPOSE 8080") && r.contains("USER 65534"), "{r}");
        let node = crate::parse("FROM node:18\nWORKDIR /app\nCOPY . .\nRUN npm install && npm run build\nEXPOSE 3000\nCMD [\"node\", \"dist/server.js\"]\n").unwrap();
        let r = multi_stage(&node).unwrap();
        let parsed = crate::parse(&r).unwrap();
        assert_eq!(parsed.stages[1].base, "node:18-slim", "{r}");
        assert!(
            r.contains("npm prune --omit=dev")
                && r.contains("/app/dist ./dist")
                && r.contains("USER node"),
            "{r}"
        );
        assert!(r.contains("CMD [\"node\",\"dist/server.js\"]"), "{r}");
        // Already multi-stage, or nothing built: no rewrite.
        assert!(multi_stage(
            &crate::parse("FROM golang AS b\nRUN go build\nFROM scratch\n").unwrap()
        )
        .is_none());
        assert!(multi_stage(&crate::parse("FROM golang:1.19\nRUN echo hi\n").unwrap()).is_none());
        let mut w = Vec::new();
        check(&go, &mut w);
        assert_eq!(w[0].rule, "MakeMultiStage");
    }
}
