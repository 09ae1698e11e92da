//! lighter's image-size rules: patterns that make images bigger than they need to be, each with the
//! fix that shrinks them.

use super::{Severity, Warning};
use crate::ast::*;

fn rule(rule: &'static str, description: &'static str, message: String, span: Span) -> Warning {
    Warning {
        rule,
        message,
        description,
        url: String::new(),
        span,
        severity: Severity::Warning,
    }
}

pub(super) fn run(df: &Dockerfile, out: &mut Vec<Warning>) {
    for stage in &df.stages {
        for i in &stage.instructions {
            if let InstructionKind::Run(r) = &i.kind {
                let text = match &r.command {
                    Command::Shell(s) => s.clone(),
                    Command::Exec(v) => v.join(" "),
                };
                let cache_mounted = |dir: &str| {
                    r.mounts
                        .iter()
                        .any(|m| m.target.as_deref().is_some_and(|t| t.starts_with(dir)))
                };
                apt_rules(
                    &text,
                    i.span,
                    cache_mounted("/var/lib/apt") || cache_mounted("/var/cache/apt"),
                    out,
                );
                if has_word(&text, "apk")
                    && text.contains(" add ")
                    && !text.contains("--no-cache")
                    && !cache_mounted("/var/cache/apk")
                {
                    out.push(rule(
                        "ApkNoCache",
                        "apk's index cache stays in the layer",
                        "`apk add` without --no-cache keeps the package index in the layer: use `apk add --no-cache`".into(),
                        i.span,
                    ));
                }
                if (text.contains("pip install") || text.contains("pip3 install"))
                    && !text.contains("--no-cache-dir")
                    && !cache_mounted("/root/.cache")
                {
                    out.push(rule(
                        "PipNoCacheDir",
                        "pip's download cache stays in the layer",
                        "`pip install` without --no-cache-dir keeps pip's cache in the layer: add --no-cache-dir or use RUN --mount=type=cache,target=/root/.cache/pip".into(),
                        i.span,
                    ));
                }
                if text.contains("npm install") && !text.contains("npm ci") && !text.contains("-g")
                {
                    out.push(rule(
                        "NpmCiRecommended",
                        "npm install in an image is not reproducible and keeps dev dependencies",
                        "use `npm ci` (and `npm prune --omit=dev` or `npm ci --omit=dev` for the runtime) instead of `npm install`".into(),
                        i.span,
                    ));
                }
            }
        }
    }
    single_stage_toolchain(df, out);
    copy_all_before_install(df, out);
}

fn has_word(text: &str, w: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|')
        .any(|t| t == w)
}

fn apt_rules(text: &str, span: Span, cache_mounted: bool, out: &mut Vec<Warning>) {
    let installs = text.contains("apt-get install") || text.contains("apt install");
    if !installs {
        return;
    }
    if !text.contains("--no-install-recommends") {
        out.push(rule(
            "AptNoInstallRecommends",
            "recommended packages are installed too",
            "`apt-get install` without --no-install-recommends pulls in recommended packages: add --no-install-recommends".into(),
            span,
        ));
    }
    if !cache_mounted && !text.contains("/var/lib/apt/lists") {
        out.push(rule(
            "AptListsNotCleaned",
            "apt's package lists stay in the layer",
            "apt package lists stay in this layer: end the same RUN with `&& rm -rf /var/lib/apt/lists/*` (or use a cache mount)".into(),
            span,
        ));
    }
}

/// A single-stage Dockerfile whose base is a toolchain image ships the toolchain.
fn single_stage_toolchain(df: &Dockerfile, out: &mut Vec<Warning>) {
    if df.stages.len() != 1 {
        return;
    }
    let s = &df.stages[0];
    let base = s.base.to_ascii_lowercase();
    let name = base.rsplit('/').next().unwrap_or(&base);
    let toolchains = [
        "golang", "rust", "maven", "gradle", "node", "openjdk", "gcc", "python",
    ];
    if toolchains
        .iter()
        .any(|t| name == *t || name.starts_with(&format!("{t}:")))
        && !name.contains("slim")
        && !name.contains("alpine")
    {
        out.push(rule(
            "SingleStageToolchain",
            "the build toolchain ships in the final image",
            format!(
                "the only stage is based on the toolchain image '{}': build in a builder stage and COPY --from it only the artifact into a slim or scratch stage",
                s.base
            ),
            s.span,
        ));
    }
}

/// `COPY . .` before a dependency install invalidates the install cache on every source change.
fn copy_all_before_install(df: &Dockerfile, out: &mut Vec<Warning>) {
    for s in &df.stages {
        let mut copied_all: Option<Span> = None;
        for i in &s.instructions {
            match &i.kind {
                InstructionKind::Copy(c)
                    if c.from.is_none() && c.sources.iter().any(|s| s == "." || s == "./") =>
                {
                    copied_all.get_or_insert(i.span);
                }
                InstructionKind::Run(r) => {
                    let t = match &r.command {
                        Command::Shell(s) => s.clone(),
                        Command::Exec(v) => v.join(" "),
                    };
                    let install = [
                        "npm ci",
                        "npm install",
                        "pip install",
                        "go mod download",
                        "bundle install",
                        "yarn install",
                    ]
                    .iter()
                    .any(|p| t.contains(p));
                    if let (Some(span), true) = (copied_all, install) {
                        out.push(rule(
                            "CopyAllBeforeInstall",
                            "dependencies are reinstalled whenever any source file changes",
                            "the whole context is copied before installing dependencies: COPY only the manifest (package.json, go.mod, requirements.txt) first, install, then COPY the rest".into(),
                            span,
                        ));
                        copied_all = None;
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{check, parse};

    fn rules(src: &str) -> Vec<&'static str> {
        check(&parse(src).unwrap())
            .into_iter()
            .map(|w| w.rule)
            .collect()
    }

    #[test]
    fn size_rules() {
        let r = rules("FROM debian\nRUN apt-get update && apt-get install -y curl\n");
        assert!(
            r.contains(&"AptNoInstallRecommends") && r.contains(&"AptListsNotCleaned"),
            "{r:?}"
        );
        let ok = rules("FROM debian\nRUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*\n");
        assert!(
            !ok.contains(&"AptNoInstallRecommends") && !ok.contains(&"AptListsNotCleaned"),
            "{ok:?}"
        );
        assert!(rules("FROM golang:1.22\nRUN go build\n").contains(&"SingleStageToolchain"));
        assert!(!rules("FROM golang:1.22 AS b\nFROM scratch\n").contains(&"SingleStageToolchain"));
        assert!(
            rules("FROM node:18 AS b\nCOPY . .\nRUN npm ci\nFROM scratch\n")
                .contains(&"CopyAllBeforeInstall")
        );
        assert!(rules("FROM alpine\nRUN apk add curl\n").contains(&"ApkNoCache"));
        assert!(rules("FROM python\nRUN pip install x\n").contains(&"PipNoCacheDir"));
    }
}
