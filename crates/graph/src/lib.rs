//! lighter-graph: the build graph. A Dockerfile's typed AST is lowered once, with no I/O, into an
//! immutable [`Definition`]: vertices ([`Op`]: a source, an exec, a file op or an image-config
//! change) whose inputs are edges to other vertices, each with the Dockerfile span that produced it
//! and a digest from a canonical, versioned encoding ([`encode`]). Word expansion happens here, with
//! the one ARG/ENV scope of the language ([`scope`]). Which stages a target needs comes from the
//! edges, so a build can only wait for what it schedules.
//!
//! Images are the one outside input: a [`Resolver`] tells the ENV and ONBUILD triggers of a base
//! image (the engine looks in its store or pulls; tests use a map).

pub mod encode;
mod error;
mod lower;
pub mod scope;

pub use error::{GraphError, GraphErrorKind};
pub use lower::{join_path, lower, plan, ImageMeta, LowerOptions, Plan, Resolver};

use lighter_dockerfile::{MountKind, Sharing, Span};
use lighter_oci::Digest;
use std::collections::BTreeSet;

/// The PATH of a stage whose base sets none (BuildKit's `system.DefaultPathEnv` for Linux).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A vertex's index in [`Definition::vertices`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VertexId(pub usize);

/// One operation of the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vertex {
    pub op: Op,
    /// The vertices this one reads (for an exec: its rootfs first, then its mounts' sources; for a
    /// file op: the filesystem it changes first, then where it copies from).
    pub inputs: Vec<VertexId>,
    /// The stage it belongs to (each stage has sources of its own).
    pub stage: usize,
    pub span: Span,
    /// Of the op's canonical encoding and the inputs' digests: equal digests are the same work.
    pub digest: Digest,
    /// Of the op's canonical encoding alone (a cache key combines it with its inputs' cache keys,
    /// which stand for their content, not their definition).
    pub op_digest: Digest,
    /// What progress and the image history show for it (`RUN make`, `COPY a /b`), with words
    /// expanded as BuildKit expands them; empty for sources and config changes.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Source(Source),
    Exec(Exec),
    File(FileOp),
    /// An image-config change (ENV, LABEL, USER, CMD, ...): the history's text and the
    /// instruction with its words expanded.
    Config {
        instruction: String,
        text: String,
        change: lighter_dockerfile::InstructionKind,
        /// An ENTRYPOINT that keeps the CMD set before it in its stage.
        keep_cmd: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Scratch,
    /// An image by reference, as written after expansion.
    Image {
        reference: String,
    },
    /// The build context (`None`) or a `--build-context` of that name.
    Context {
        name: Option<String>,
    },
}

/// A RUN step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// argv: a shell-form command is `SHELL + [command]`.
    pub args: Vec<String>,
    /// The stage's ENV (the base image's, then the stage's own).
    pub env: Vec<(String, String)>,
    /// The ARGs in scope that ENV does not set: the process sees them after `env`.
    pub arg_env: Vec<(String, String)>,
    pub cwd: String,
    pub user: String,
    pub network: String,
    pub security: String,
    pub mounts: Vec<Mount>,
    /// Heredoc bodies the command reads (name, content).
    pub heredocs: Vec<(String, String)>,
}

/// A RUN mount (values expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountKind,
    pub target: String,
    /// For bind and cache mounts with `from=`: which of the vertex's inputs it reads.
    pub input: Option<usize>,
    pub source: String,
    pub id: String,
    pub sharing: Sharing,
    pub readonly: bool,
    pub required: bool,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub env: Option<String>,
    pub size: Option<u64>,
}

/// COPY, ADD and WORKDIR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    Copy(Copy),
    /// WORKDIR: the directory, made for this user when missing.
    Mkdir {
        path: String,
        user: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub add: bool,
    pub sources: Vec<String>,
    /// Absolute (relative destinations are resolved against the WORKDIR); a trailing `/` is kept.
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
    pub unpack: Option<bool>,
    pub heredocs: Vec<(String, String)>,
}

/// What a stage's base is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
    /// A `--build-context` of this name.
    Named(String),
}

/// A stage of the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    pub name: Option<String>,
    /// The doc comment above its FROM (`# NAME description`).
    pub description: Option<String>,
    /// The base name as expanded with the global scope.
    pub base: Base,
    pub span: Span,
    /// The stage's result; `None` for a stage the target does not need (it is checked, not lowered).
    pub last: Option<VertexId>,
}

/// A build ARG a target uses, with the value it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedArg {
    pub name: String,
    pub value: Option<String>,
    pub description: Option<String>,
    pub span: Span,
}

/// A secret or SSH agent a target's RUN steps mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedMount {
    pub id: String,
    pub required: bool,
    pub span: Span,
}

/// The lowered build: immutable once made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub vertices: Vec<Vertex>,
    pub stages: Vec<Stage>,
    pub target: usize,
    /// What `--call outline` shows, in Dockerfile order.
    pub args: Vec<UsedArg>,
    pub secrets: Vec<UsedMount>,
    pub ssh: Vec<UsedMount>,
    /// The earlier stages each stage reads (its base, `--from`, `from=`, ONBUILD triggers), as
    /// lowering resolved them into edges; empty for stages that were not lowered.
    pub stage_edges: Vec<BTreeSet<usize>>,
}

impl Definition {
    pub fn vertex(&self, id: VertexId) -> &Vertex {
        &self.vertices[id.0]
    }

    /// The target's result.
    pub fn result(&self) -> Option<&Vertex> {
        self.stages[self.target].last.map(|v| self.vertex(v))
    }

    /// The stages stage `i` reads from. An edge into another stage's result is recorded when
    /// lowering resolves it, so a stage that only renames another (`FROM base AS alias`, no vertex
    /// of its own) is still a stage the reader depends on.
    pub fn stage_deps(&self, i: usize) -> BTreeSet<usize> {
        self.stage_edges.get(i).cloned().unwrap_or_default()
    }

    /// The stages the target needs, each after the stages it reads from.
    pub fn needed_stages(&self) -> Vec<usize> {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        self.visit(self.target, &mut seen, &mut order);
        order
    }

    fn visit(&self, i: usize, seen: &mut BTreeSet<usize>, order: &mut Vec<usize>) {
        if !seen.insert(i) {
            return;
        }
        for d in self.stage_deps(i) {
            self.visit(d, seen, order);
        }
        order.push(i);
    }

    /// A text dump of the vertices the target needs (the golden tests' format): one line per vertex,
    /// `v<N> <short digest> <stage> <line>: <op> <- <inputs>`.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for (i, v) in self.vertices.iter().enumerate() {
            let inputs: Vec<String> = v.inputs.iter().map(|i| format!("v{}", i.0)).collect();
            out.push_str(&format!(
                "v{i} {} s{} L{}: {}{}\n",
                &v.digest.hex()[..12],
                v.stage,
                v.span.start_line,
                describe(&v.op),
                if inputs.is_empty() {
                    String::new()
                } else {
                    format!(" <- {}", inputs.join(" "))
                }
            ));
        }
        out.push_str(&format!("target: s{}\n", self.target));
        for a in &self.args {
            out.push_str(&format!(
                "arg {}={}\n",
                a.name,
                a.value.as_deref().unwrap_or("<unset>")
            ));
        }
        for s in &self.secrets {
            out.push_str(&format!("secret {} required={}\n", s.id, s.required));
        }
        for s in &self.ssh {
            out.push_str(&format!("ssh {} required={}\n", s.id, s.required));
        }
        out
    }
}

fn describe(op: &Op) -> String {
    match op {
        Op::Source(Source::Scratch) => "source scratch".into(),
        Op::Source(Source::Image { reference }) => format!("source image {reference}"),
        Op::Source(Source::Context { name: None }) => "source context".into(),
        Op::Source(Source::Context { name: Some(n) }) => format!("source context {n}"),
        Op::Exec(e) => {
            let mut s = format!("exec {:?} cwd={} user={}", e.args, e.cwd, e.user);
            let env: Vec<String> = e
                .env
                .iter()
                .chain(&e.arg_env)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.push_str(&format!(" env=[{}]", env.join(" ")));
            for m in &e.mounts {
                s.push_str(&format!(" mount({:?} {}", m.kind, m.target));
                if let Some(i) = m.input {
                    s.push_str(&format!(" from=input{i}"));
                }
                if !m.id.is_empty() {
                    s.push_str(&format!(" id={}", m.id));
                }
                s.push(')');
            }
            s
        }
        Op::File(FileOp::Copy(c)) => format!(
            "{} {:?} -> {}{}{}",
            if c.add { "add" } else { "copy" },
            c.sources,
            c.dest,
            c.chown
                .as_ref()
                .map(|o| format!(" chown={o}"))
                .unwrap_or_default(),
            c.chmod
                .as_ref()
                .map(|o| format!(" chmod={o}"))
                .unwrap_or_default()
        ),
        Op::File(FileOp::Mkdir { path, user }) => format!("mkdir {path} user={user}"),
        Op::Config { text, .. } => format!("config {text}"),
    }
}
