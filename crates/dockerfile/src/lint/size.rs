//! lighter's image-size rules: patterns that make images bigger than they need to be, each with the
//! fix that shrinks them.

use super::shell::{self, Cmd};
use super::Warning;
use crate::ast::*;

use super::own as rule;

/// The stages whose files ship: the target (last) stage and the stages it is built `FROM`. A
/// builder stage's files reach the image only through `COPY --from` of chosen paths, so the rules
/// about what a layer keeps (caches, package lists) do not apply to it.
fn shipped(df: &Dockerfile) -> Vec<usize> {
    let Some(mut cur) = df.stages.len().checked_sub(1) else {
        return Vec::new();
    };
    let mut out = vec![cur];
    while let Some(p) = df.stage_ref(&df.stages[cur].base, cur) {
        out.push(p);
        cur = p;
    }
    out
}

/// A Windows stage (its RUN lines are cmd or PowerShell, not sh): the escape directive is a
/// backtick, a SHELL names PowerShell or cmd, or the base is a Windows image.
pub(super) fn windows(df: &Dockerfile, stage: &Stage) -> bool {
    let base = stage.base.to_ascii_lowercase();
    df.escape == '`'
        || ["windows", "nanoserver", "servercore"]
            .iter()
            .any(|w| base.contains(w))
        || stage.instructions.iter().any(|i| {
            matches!(&i.kind, InstructionKind::Shell(v) if v.first().is_some_and(|s| {
                let s = s.to_ascii_lowercase();
                s.contains("powershell") || s.contains("pwsh") || s.contains("cmd")
            }))
        })
}

thread_local! {
    /// Each RUN's commands, parsed once per lint pass (several rules read them): keyed by the
    /// `Run`'s address, valid only while [`with_memo`] runs.
    static MEMO: std::cell::RefCell<Option<std::collections::HashMap<usize, Vec<Cmd>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with RUN commands memoized (the AST it lints is borrowed, so addresses are stable).
pub(super) fn with_memo<T>(f: impl FnOnce() -> T) -> T {
    MEMO.with(|m| *m.borrow_mut() = Some(Default::default()));
    let out = f();
    MEMO.with(|m| *m.borrow_mut() = None);
    out
}

/// The commands a RUN runs, as the shell parses them (an exec-form RUN is its one command, or the
/// script of its `sh -c`).
pub(super) fn run_commands(r: &Run) -> Vec<Cmd> {
    let key = r as *const Run as usize;
    if let Some(c) = MEMO.with(|m| m.borrow().as_ref().and_then(|m| m.get(&key).cloned())) {
        return c;
    }
    let c = parse_run(r);
    MEMO.with(|m| {
        if let Some(m) = m.borrow_mut().as_mut() {
            m.insert(key, c.clone());
        }
    });
    c
}

fn parse_run(r: &Run) -> Vec<Cmd> {
    match &r.command {
        Command::Shell(s) => shell::commands(s).unwrap_or_default(),
        Command::Exec(v) => {
            let Some(first) = v.first() else {
                return Vec::new();
            };
            let script = v
                .iter()
                .position(|a| a == "-c")
                .filter(|_| {
                    matches!(
                        first.rsplit('/').next(),
                        Some("sh" | "bash" | "dash" | "ash")
                    )
                })
                .and_then(|i| v.get(i + 1));
            match script {
                Some(s) => shell::commands(s).unwrap_or_default(),
                None => vec![Cmd {
                    name: first.rsplit('/').next().unwrap_or(first).to_string(),
                    args: v[1..].to_vec(),
                    env: Vec::new(),
                    piped: false,
                    wrappers: Vec::new(),
                }],
            }
        }
    }
}

pub(super) fn run(df: &Dockerfile, out: &mut Vec<Warning>) {
    let shipped = shipped(df);
    for (si, stage) in df.stages.iter().enumerate() {
        if !shipped.contains(&si) || windows(df, stage) {
            continue;
        }
        // ENV set earlier in the stage (PIP_NO_CACHE_DIR=1 turns pip's cache off).
        let mut env: Vec<(String, String)> = Vec::new();
        for i in &stage.instructions {
            if let InstructionKind::Env(kvs) = &i.kind {
                env.extend(kvs.iter().map(|kv| (kv.key.clone(), kv.value.clone())));
            }
            if let InstructionKind::Run(r) = &i.kind {
                let cache_mounted = |dir: &str| {
                    r.mounts
                        .iter()
                        .any(|m| m.target.as_deref().is_some_and(|t| t.starts_with(dir)))
                };
                let cmds = run_commands(r);
                apt_rules(
                    &cmds,
                    i.span,
                    cache_mounted("/var/lib/apt") || cache_mounted("/var/cache/apt"),
                    out,
                );
                let sub = |c: &Cmd, names: &[&str], subs: &[&str]| {
                    names.contains(&c.name.as_str())
                        && c.subcommand().is_some_and(|s| subs.contains(&s))
                };
                if cmds
                    .iter()
                    .any(|c| sub(c, &["apk"], &["add"]) && !c.has_flag("--no-cache"))
                    && !cache_mounted("/var/cache/apk")
                {
                    out.push(rule(
                        "ApkNoCache",
                        "apk's index cache stays in the layer",
                        "`apk add` without --no-cache keeps the package index in the layer: use `apk add --no-cache`".into(),
                        i.span,
                    ));
                }
                let no_cache_env = |c: &Cmd| {
                    c.env.iter().chain(env.iter()).any(|(k, v)| {
                        k == "PIP_NO_CACHE_DIR" && !matches!(v.as_str(), "" | "0" | "false")
                    })
                };
                if cmds.iter().any(|c| {
                    (c.name.starts_with("pip") && c.subcommand() == Some("install"))
                        && !c.has_flag("--no-cache-dir")
                        && !no_cache_env(c)
                }) && !cache_mounted("/root/.cache")
                {
                    out.push(rule(
                        "PipNoCacheDir",
                        "pip's download cache stays in the layer",
                        "`pip install` without --no-cache-dir keeps pip's cache in the layer: add --no-cache-dir or use RUN --mount=type=cache,target=/root/.cache/pip".into(),
                        i.span,
                    ));
                }
                if cmds.iter().any(|c| {
                    sub(c, &["npm"], &["install", "i"])
                        && !c.has_flag("-g")
                        && !c.has_flag("--global")
                }) {
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

fn apt_rules(cmds: &[Cmd], span: Span, cache_mounted: bool, out: &mut Vec<Warning>) {
    let apt = |c: &&Cmd, sub: &str| {
        matches!(c.name.as_str(), "apt-get" | "apt") && c.subcommand() == Some(sub)
    };
    let installs: Vec<&Cmd> = cmds.iter().filter(|c| apt(c, "install")).collect();
    let recommends_off = |c: &Cmd| {
        c.has_flag("--no-install-recommends")
            || c.args
                .iter()
                .any(|a| a.to_ascii_lowercase().contains("install-recommends=false"))
    };
    if installs.iter().any(|c| !recommends_off(c)) {
        out.push(rule(
            "AptNoInstallRecommends",
            "recommended packages are installed too",
            "`apt-get install` without --no-install-recommends pulls in recommended packages: add --no-install-recommends".into(),
            span,
        ));
    }
    // The lists are what `apt-get update` downloads: the layer of the RUN that updates keeps them
    // unless the same RUN removes them (hadolint's DL3009 looks at the same RUN).
    let cleaned = cmds
        .iter()
        .any(|c| c.name == "rm" && c.args.iter().any(|a| a.starts_with("/var/lib/apt/lists")));
    if cmds.iter().any(|c| apt(&c, "update")) && !cache_mounted && !cleaned {
        out.push(rule(
            "AptListsNotCleaned",
            "apt's package lists stay in the layer",
            "`apt-get update` leaves the package lists in this layer: end the same RUN with `&& rm -rf /var/lib/apt/lists/*` (or use a cache mount)".into(),
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
                    let install = run_commands(r).iter().any(|c| {
                        let sub = c.subcommand().unwrap_or_default();
                        match c.name.as_str() {
                            "npm" => matches!(sub, "ci" | "install" | "i"),
                            "yarn" => matches!(sub, "" | "install"),
                            "go" => sub == "mod" && c.args.iter().any(|a| a == "download"),
                            "bundle" => sub == "install",
                            n if n.starts_with("pip") => sub == "install",
                            _ => false,
                        }
                    });
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

    use super::super::rule_names as rules;

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

    /// The precision cases issue 17 names: each rule fires on what the shell runs, in the stages
    /// whose files ship, and nowhere else.
    #[test]
    fn rules_see_commands_not_text() {
        // An install with its options before the subcommand is an install.
        let r = rules("FROM debian\nRUN apt-get -q update && apt-get --no-install-recommends install -y curl\n");
        assert!(
            r.contains(&"AptListsNotCleaned") && !r.contains(&"AptNoInstallRecommends"),
            "{r:?}"
        );
        // The lists belong to the RUN that updates, not to a later install.
        let r = rules(
            "FROM debian\nRUN apt-get update\nRUN apt-get install -y --no-install-recommends x\n",
        );
        let lines: Vec<usize> = check(&parse("FROM debian\nRUN apt-get update\nRUN apt-get install -y --no-install-recommends x\n").unwrap())
            .iter()
            .filter(|w| w.rule == "AptListsNotCleaned")
            .map(|w| w.span.start_line)
            .collect();
        assert_eq!(lines, [2], "{r:?}");
        // Text that mentions a command is not the command: echo, and PowerShell in a Windows stage.
        assert!(
            !rules("FROM python\nRUN echo 'pip install x' > notes\n").contains(&"PipNoCacheDir")
        );
        let win = rules(
            "# escape=`\nFROM mcr.microsoft.com/windows/servercore\nSHELL [\"powershell\", \"-Command\"]\nRUN Write-Host 'then pip install x'; apt-get install y\n",
        );
        assert!(
            !win.contains(&"PipNoCacheDir") && !win.contains(&"AptListsNotCleaned"),
            "{win:?}"
        );
        // pip's cache turned off by ENV, by the command's own environment, or as python -m pip.
        assert!(
            !rules("FROM python\nENV PIP_NO_CACHE_DIR=1\nRUN pip install x\n")
                .contains(&"PipNoCacheDir")
        );
        assert!(
            !rules("FROM python\nRUN PIP_NO_CACHE_DIR=1 pip install x\n")
                .contains(&"PipNoCacheDir")
        );
        assert!(rules("FROM python\nRUN python3 -m pip install x\n").contains(&"PipNoCacheDir"));
        assert!(
            rules("FROM python\nRUN [\"pip\", \"install\", \"x\"]\n").contains(&"PipNoCacheDir")
        );
        // A builder stage's package lists never reach a scratch image; a stage built FROM it ships them.
        let multi = "FROM debian AS build\nRUN apt-get update && apt-get install -y gcc\n";
        let r = rules(&format!(
            "{multi}FROM scratch\nCOPY --from=build /out /out\n"
        ));
        assert!(
            !r.contains(&"AptListsNotCleaned") && !r.contains(&"AptNoInstallRecommends"),
            "{r:?}"
        );
        let r = rules(&format!("{multi}FROM build\nRUN true\n"));
        assert!(r.contains(&"AptListsNotCleaned"), "{r:?}");
        // npm: install is flagged, a global tool install and npm ci are not.
        assert!(rules("FROM node\nRUN npm i\n").contains(&"NpmCiRecommended"));
        assert!(
            !rules("FROM node\nRUN npm install -g pnpm && npm ci\n").contains(&"NpmCiRecommended")
        );
    }
}
