//! The multi-stage tutorials' rules about what ships: a final stage on a toolchain image, the whole
//! context copied into the final stage, `node_modules` shipped with its dev dependencies, a Go binary
//! built with cgo shipped in `scratch` or distroless, and unpinned (`:latest` or untagged) bases.
//! Each explains itself in one sentence with its fix.

use super::shell::Cmd;
use super::size::run_commands;
use super::Warning;
use crate::ast::*;

use super::own as rule;

/// A toolchain image (not its slim or alpine runtime variants), by the last path component.
pub(super) fn is_toolchain(base: &str) -> bool {
    let base = base.to_ascii_lowercase();
    let name = base.rsplit('/').next().unwrap_or(&base);
    let repo = name.split([':', '@']).next().unwrap_or(name);
    [
        "golang",
        "rust",
        "maven",
        "gradle",
        "node",
        "openjdk",
        "gcc",
        "python",
        "eclipse-temurin",
    ]
    .contains(&repo)
        && !name.contains("slim")
        && !name.contains("alpine")
        && !name.contains("-jre")
}

/// The commands every RUN of stage `s` runs, each with the stage's ENV so far (a prefix of the
/// stage's ENV list, shared: a long Dockerfile must not copy it per command).
struct StageCmds {
    env: Vec<(String, String)>,
    cmds: Vec<(Cmd, usize)>,
}

impl StageCmds {
    fn of(s: &Stage) -> StageCmds {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut cmds = Vec::new();
        for i in &s.instructions {
            match &i.kind {
                InstructionKind::Env(kvs) => {
                    env.extend(kvs.iter().map(|kv| (kv.key.clone(), kv.value.clone())))
                }
                InstructionKind::Run(r) => {
                    let n = env.len();
                    cmds.extend(run_commands(r).into_iter().map(|c| (c, n)));
                }
                _ => {}
            }
        }
        StageCmds { env, cmds }
    }

    fn iter(&self) -> impl Iterator<Item = (&Cmd, &[(String, String)])> {
        self.cmds.iter().map(|(c, n)| (c, &self.env[..*n]))
    }
}

pub(super) fn run(df: &Dockerfile, out: &mut Vec<Warning>) {
    unpinned_bases(df, out);
    let Some(last) = df.stages.len().checked_sub(1) else {
        return;
    };
    if df.stages.len() < 2 {
        return;
    }
    let fin = &df.stages[last];
    let from_stage = df.stage_ref(&fin.base, last);
    if from_stage.is_none() && is_toolchain(&fin.base) {
        out.push(rule(
            "FinalStageToolchain",
            "the final stage ships a toolchain",
            format!(
                "the final stage is based on the toolchain image '{}': base it on a slim, distroless or scratch image and COPY --from the builder only the artifact",
                fin.base
            ),
            fin.span,
        ));
    }
    let bare = {
        let b = fin.base.to_ascii_lowercase();
        b == "scratch" || b.contains("distroless")
    };
    for i in &fin.instructions {
        let InstructionKind::Copy(c) = &i.kind else {
            continue;
        };
        match &c.from {
            None if c.sources.iter().any(|s| s == "." || s == "./") => out.push(rule(
                "CopyAllToFinalStage",
                "the whole build context ships in the final image",
                "the final stage copies the whole context (sources, tests, tooling): COPY --from the builder stage only what the program needs to run".into(),
                i.span,
            )),
            Some(from) => {
                let Some(src) = df.stage_ref(from, last) else {
                    continue;
                };
                let cmds = StageCmds::of(&df.stages[src]);
                if c.sources.iter().any(|s| s.contains("node_modules")) && ships_dev_deps(&cmds) {
                    out.push(rule(
                        "NodeModulesWithDevDependencies",
                        "node_modules ships with its dev dependencies",
                        format!(
                            "node_modules is copied from stage '{from}', which installs dev dependencies: run `npm prune --omit=dev` there after the build, or `npm ci --omit=dev` in a stage of its own"
                        ),
                        i.span,
                    ));
                }
                if bare && cmds.iter().any(|(c, env)| cgo_build(c, env)) {
                    out.push(rule(
                        "GoCgoInScratch",
                        "a cgo-linked Go binary cannot start in scratch",
                        format!(
                            "stage '{from}' runs `go build` without CGO_ENABLED=0, so the binary may link libc dynamically and fail to start in '{}': set ENV CGO_ENABLED=0 (or `CGO_ENABLED=0 go build`)",
                            fin.base
                        ),
                        i.span,
                    ));
                }
            }
            None => {}
        }
    }
}

/// `npm ci`/`npm install` without `--omit=dev` (or `--production`), and no `npm prune` that drops
/// them afterwards.
fn ships_dev_deps(cmds: &StageCmds) -> bool {
    let prod = |c: &Cmd, env: &[(String, String)]| {
        c.args.iter().any(|a| {
            a == "--omit=dev"
                || a == "--production"
                || a == "--only=prod"
                || a == "--only=production"
        }) || c
            .env
            .iter()
            .chain(env)
            .any(|(k, v)| k == "NODE_ENV" && v == "production")
    };
    let installs = cmds.iter().any(|(c, env)| {
        c.name == "npm" && matches!(c.subcommand(), Some("ci" | "install" | "i")) && !prod(c, env)
    });
    let pruned = cmds
        .iter()
        .any(|(c, env)| c.name == "npm" && c.subcommand() == Some("prune") && prod(c, env));
    installs && !pruned
}

fn cgo_build(c: &Cmd, env: &[(String, String)]) -> bool {
    c.name == "go"
        && c.subcommand() == Some("build")
        && !c
            .env
            .iter()
            .chain(env)
            .any(|(k, v)| k == "CGO_ENABLED" && v == "0")
}

/// `FROM image` with no tag or `:latest` (not scratch, stages, or names from ARGs).
fn unpinned_bases(df: &Dockerfile, out: &mut Vec<Warning>) {
    for (i, s) in df.stages.iter().enumerate() {
        let b = &s.base;
        if b.eq_ignore_ascii_case("scratch") || b.contains('$') || df.stage_ref(b, i).is_some() {
            continue;
        }
        if b.contains('@') {
            continue;
        }
        let last = b.rsplit('/').next().unwrap_or(b);
        let tag = last.split_once(':').map(|(_, t)| t);
        if tag.is_none() || tag == Some("latest") {
            out.push(rule(
                "UnpinnedBase",
                "the base image is not pinned to a version",
                format!(
                    "'{b}' {}: name a version tag (or a digest) so rebuilds get the same base",
                    if tag.is_none() {
                        "has no tag and means :latest"
                    } else {
                        "is :latest"
                    }
                ),
                s.span,
            ));
        }
    }
}

#[cfg(test)]
mod tests {

    use super::super::rule_names as rules;

    #[test]
    fn what_ships_is_judged_in_the_final_stage() {
        let go = "FROM golang:1.22 AS build\nRUN go build -o /app .\n";
        let r = rules(&format!("{go}FROM scratch\nCOPY --from=build /app /app\n"));
        assert!(r.contains(&"GoCgoInScratch"), "{r:?}");
        let ok = rules("FROM golang:1.22 AS build\nENV CGO_ENABLED=0\nRUN go build -o /app .\nFROM scratch\nCOPY --from=build /app /app\n");
        assert!(!ok.contains(&"GoCgoInScratch"), "{ok:?}");
        assert!(!rules(&format!(
            "{go}FROM debian:12\nCOPY --from=build /app /app\n"
        ))
        .contains(&"GoCgoInScratch"));
        let r = rules(&format!(
            "{go}FROM golang:1.22\nCOPY --from=build /app /app\n"
        ));
        assert!(r.contains(&"FinalStageToolchain"), "{r:?}");
        let node = "FROM node:18 AS build\nCOPY . .\nRUN npm ci && npm run build\n";
        let r = rules(&format!("{node}FROM node:18-slim\nCOPY --from=build /app/node_modules ./node_modules\nCOPY . .\n"));
        assert!(
            r.contains(&"NodeModulesWithDevDependencies") && r.contains(&"CopyAllToFinalStage"),
            "{r:?}"
        );
        let ok = rules("FROM node:18 AS build\nRUN npm ci && npm run build && npm prune --omit=dev\nFROM node:18-slim\nCOPY --from=build /app/node_modules ./node_modules\n");
        assert!(!ok.contains(&"NodeModulesWithDevDependencies"), "{ok:?}");
        // Bases: untagged and :latest, not digests, scratch or stages.
        assert!(rules("FROM debian\n").contains(&"UnpinnedBase"));
        assert!(rules("FROM debian:latest\n").contains(&"UnpinnedBase"));
        assert!(rules("FROM localhost:5000/app\n").contains(&"UnpinnedBase"));
        let ok = rules("FROM debian:12 AS a\nFROM a\nFROM scratch\nFROM debian@sha256:0000000000000000000000000000000000000000000000000000000000000000\n");
        assert!(!ok.contains(&"UnpinnedBase"), "{ok:?}");
    }
}
