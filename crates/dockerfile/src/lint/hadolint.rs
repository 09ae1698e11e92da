//! hadolint's rules that still matter, each under a name of lighter's with hadolint's code as its
//! alias (see `ignore::ALIASES`), read from the commands the shell parser finds, never from text:
//! version pinning for apt, apk, pip, npm and gem; `apt-get install` without `-y`; `sudo`; `cd`
//! instead of WORKDIR; ADD for plain local files; the last USER being root; pipes without
//! `pipefail`; `COPY --from` naming no earlier stage.

use super::shell::Cmd;
use super::size::{run_commands, windows};
use super::Warning;
use crate::ast::*;

use super::own as rule;

/// The package arguments of an install (not options, not files, not URLs).
fn packages(c: &Cmd, skip_sub: bool) -> impl Iterator<Item = &String> {
    let mut seen_sub = !skip_sub;
    c.args.iter().filter(move |a| {
        if a.starts_with('-') {
            return false;
        }
        if !seen_sub {
            seen_sub = true;
            return false;
        }
        !(a.contains('/') || a.starts_with('.') || a.contains('$') || a.ends_with(".txt"))
    })
}

fn pinning(cmds: &[Cmd], span: Span, out: &mut Vec<Warning>) {
    let mut unpinned = |rule_name: &'static str, tool: &str, how: &str, pkgs: Vec<&String>| {
        if !pkgs.is_empty() {
            let list: Vec<&str> = pkgs.iter().map(|s| s.as_str()).collect();
            out.push(rule(
                rule_name,
                "package versions are not pinned",
                format!("{tool} installs {} without a version: pin them ({how}) so a rebuild installs the same", list.join(", ")),
                span,
            ));
        }
    };
    for c in cmds {
        let sub = c.subcommand().unwrap_or_default();
        match c.name.as_str() {
            "apt-get" | "apt" if sub == "install" => unpinned(
                "AptVersionPin",
                "apt-get install",
                "package=version",
                packages(c, true).filter(|p| !p.contains('=')).collect(),
            ),
            "apk" if sub == "add" => unpinned(
                "ApkVersionPin",
                "apk add",
                "package=version",
                packages(c, true).filter(|p| !p.contains('=')).collect(),
            ),
            n if n.starts_with("pip")
                && sub == "install"
                && !c.has_flag("-r")
                && !c.has_flag("--requirement") =>
            {
                unpinned(
                    "PipVersionPin",
                    "pip install",
                    "package==version, or a requirements file with versions",
                    packages(c, true)
                        .filter(|p| {
                            !p.contains("==")
                                && !p.contains(">=")
                                && !p.contains("~=")
                                && !p.contains('@')
                        })
                        .collect(),
                )
            }
            "npm" if matches!(sub, "install" | "i") => unpinned(
                "NpmVersionPin",
                "npm install",
                "package@version",
                packages(c, true)
                    .filter(|p| !p.trim_start_matches('@').contains('@'))
                    .collect(),
            ),
            "gem" if sub == "install" => unpinned(
                "GemVersionPin",
                "gem install",
                "package:version or -v",
                if c.has_flag("-v") || c.has_flag("--version") {
                    Vec::new()
                } else {
                    packages(c, true).filter(|p| !p.contains(':')).collect()
                },
            ),
            _ => {}
        }
    }
}

fn run_rules(cmds: &[Cmd], pipefail: bool, span: Span, out: &mut Vec<Warning>) {
    pinning(cmds, span, out);
    if cmds.iter().any(|c| {
        c.name == "apt-get"
            && c.subcommand() == Some("install")
            && !["-y", "--yes", "-qq", "--assume-yes", "-q=2"]
                .iter()
                .any(|f| c.has_flag(f))
            && !c
                .args
                .iter()
                .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('y'))
    }) {
        out.push(rule(
            "AptGetNoYes",
            "apt-get install waits for an answer",
            "`apt-get install` without -y stops to ask and fails the build: add -y".into(),
            span,
        ));
    }
    if cmds
        .iter()
        .any(|c| c.name == "sudo" || c.wrappers.iter().any(|w| w == "sudo"))
    {
        out.push(rule(
            "SudoInRun",
            "sudo in a build step",
            "RUN already runs as the stage's USER: drop sudo (switch USER where root is needed)"
                .into(),
            span,
        ));
    }
    if cmds.iter().any(|c| c.name == "cd") {
        out.push(rule(
            "CdInsteadOfWorkdir",
            "cd in RUN instead of WORKDIR",
            "use WORKDIR to change directory: a `cd` lasts only for this RUN".into(),
            span,
        ));
    }
    if !pipefail && cmds.iter().any(|c| c.piped) {
        out.push(rule(
            "PipefailMissing",
            "a failing command in a pipe does not fail the step",
            "this RUN has a pipe, and only the last command's status counts: set `SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]` before it".into(),
            span,
        ));
    }
}

pub(super) fn run(df: &Dockerfile, out: &mut Vec<Warning>) {
    for (si, stage) in df.stages.iter().enumerate() {
        if windows(df, stage) {
            continue;
        }
        let mut pipefail = false;
        for i in &stage.instructions {
            match &i.kind {
                InstructionKind::Shell(v) => pipefail = v.iter().any(|a| a.contains("pipefail")),
                InstructionKind::Run(r) => {
                    // An exec-form RUN runs no shell, so no pipe of its own.
                    let shell = matches!(r.command, Command::Shell(_));
                    run_rules(&run_commands(r), pipefail || !shell, i.span, out);
                }
                InstructionKind::Add(c)
                    if c.sources.iter().all(|s| {
                        !s.contains("://")
                            && !s.starts_with("git@")
                            && ![".tar", ".tgz", ".gz", ".bz2", ".xz", ".zst", ".zip"]
                                .iter()
                                .any(|x| s.ends_with(x))
                    }) && c.heredocs.is_empty() =>
                {
                    out.push(rule(
                        "AddInsteadOfCopy",
                        "ADD for plain local files",
                        "use COPY for local files and directories: ADD also fetches URLs and unpacks archives, which this does not need".into(),
                        i.span,
                    ));
                }
                InstructionKind::Copy(c) => {
                    if let Some(from) = &c.from {
                        let image_like = from.contains([':', '/', '.', '$']);
                        if !image_like && df.stage_ref(from, si).is_none() {
                            out.push(rule(
                                "CopyFromUnknownStage",
                                "COPY --from names no earlier stage",
                                format!("COPY --from={from} names no stage defined before this one, so it is read as an image called '{from}': name an earlier stage"),
                                i.span,
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    last_user_root(df, out);
}

/// The final stage's last USER is root (a stage without USER inherits its base's: not judged).
fn last_user_root(df: &Dockerfile, out: &mut Vec<Warning>) {
    let Some(last) = df.stages.last() else { return };
    let user = last.instructions.iter().rev().find_map(|i| match &i.kind {
        InstructionKind::User(u) => Some((u, i.span)),
        _ => None,
    });
    if let Some((u, span)) = user {
        let name = u.split(':').next().unwrap_or("");
        if name == "root" || name == "0" {
            out.push(rule(
                "LastUserRoot",
                "the image runs as root",
                "the last USER is root: switch to an unprivileged user after the steps that need root".into(),
                span,
            ));
        }
    }
}

#[cfg(test)]
mod tests {

    use super::super::rule_names as rules;

    #[test]
    fn each_rule_fires_and_stays_quiet() {
        let r = rules("FROM debian:12\nRUN apt-get update && apt-get install -y curl git=1:2.39 && rm -rf /var/lib/apt/lists/*\n");
        assert!(r.contains(&"AptVersionPin"), "{r:?}");
        let ok = rules("FROM debian:12\nRUN apt-get update && apt-get install -y git=1:2.39 && rm -rf /var/lib/apt/lists/*\n");
        assert!(
            !ok.contains(&"AptVersionPin") && !ok.contains(&"AptGetNoYes"),
            "{ok:?}"
        );
        assert!(rules("FROM debian:12\nRUN apt-get install git=1\n").contains(&"AptGetNoYes"));
        assert!(!rules("FROM debian:12\nRUN apt-get -qy install git=1\n").contains(&"AptGetNoYes"));
        assert!(rules("FROM alpine:3\nRUN apk add --no-cache curl\n").contains(&"ApkVersionPin"));
        assert!(
            !rules("FROM alpine:3\nRUN apk add --no-cache curl=8.5.0-r0\n")
                .contains(&"ApkVersionPin")
        );
        assert!(
            rules("FROM python:3\nRUN pip install --no-cache-dir flask\n")
                .contains(&"PipVersionPin")
        );
        assert!(!rules(
            "FROM python:3\nRUN pip install --no-cache-dir -r requirements.txt flask==3.0\n"
        )
        .contains(&"PipVersionPin"));
        assert!(rules("FROM node:18\nRUN npm install -g pnpm\n").contains(&"NpmVersionPin"));
        assert!(
            !rules("FROM node:18\nRUN npm install -g pnpm@9 @scope/x@1\n")
                .contains(&"NpmVersionPin")
        );
        assert!(rules("FROM ruby:3\nRUN gem install rails\n").contains(&"GemVersionPin"));
        assert!(!rules("FROM ruby:3\nRUN gem install rails:7.1\n").contains(&"GemVersionPin"));
        assert!(rules("FROM debian:12\nRUN sudo make install\n").contains(&"SudoInRun"));
        assert!(rules("FROM debian:12\nRUN cd /src && make\n").contains(&"CdInsteadOfWorkdir"));
        assert!(!rules("FROM debian:12\nRUN echo cd /src\n").contains(&"CdInsteadOfWorkdir"));
        assert!(rules("FROM debian:12\nRUN curl x | sh\n").contains(&"PipefailMissing"));
        assert!(!rules("FROM debian:12\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN curl x | sh\n").contains(&"PipefailMissing"));
        assert!(rules("FROM debian:12\nADD app/ /app/\n").contains(&"AddInsteadOfCopy"));
        assert!(
            !rules("FROM debian:12\nADD rootfs.tar.gz /\nADD https://example.com/x /x\n")
                .contains(&"AddInsteadOfCopy")
        );
        assert!(
            rules("FROM debian:12\nCOPY --from=builder /a /a\n").contains(&"CopyFromUnknownStage")
        );
        assert!(!rules("FROM debian:12 AS builder\nFROM debian:12\nCOPY --from=builder /a /a\nCOPY --from=nginx:1 /b /b\nCOPY --from=0 /c /c\n").contains(&"CopyFromUnknownStage"));
        assert!(rules("FROM debian:12\nUSER root\n").contains(&"LastUserRoot"));
        assert!(!rules("FROM debian:12\nUSER root\nRUN x\nUSER app\n").contains(&"LastUserRoot"));
    }
}
