//! The typed Dockerfile AST: stages and instructions with their flags, each carrying a [`Span`].
//!
//! Word values stay **unexpanded**: the build engine expands them with the stage's ARG/ENV scope
//! (`crate::shell`). BuildKit expands these fields (and only these): FROM base and `--platform`;
//! ENV/LABEL keys and values; ARG names and defaults; WORKDIR; USER; EXPOSE; VOLUME; STOPSIGNAL;
//! COPY/ADD sources, destination, `--from`, `--chown`, `--chmod`, `--exclude`, `--checksum`;
//! `RUN --mount` values. RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK commands are **not** expanded by the
//! frontend (the shell does it at run time).

use crate::raw::{Directive, Heredoc, RawWarning};

/// A position in the Dockerfile: 1-based lines and column, byte offsets into the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    pub start_line: usize,
    pub end_line: usize,
    /// 1-based column of the start on `start_line`.
    pub start_col: usize,
    /// Byte offset of the start of `start_line` in the source.
    pub line_offset: usize,
    /// Byte offset just past the instruction (including its heredoc bodies).
    pub end_offset: usize,
}

/// A whole Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Vec<Directive>,
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// ARG instructions before the first FROM (usable in FROM lines).
    pub meta_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
    /// Parser warnings (empty continuation lines).
    pub warnings: Vec<RawWarning>,
}

impl Dockerfile {
    /// The stage a `--target` names (case-insensitive), or the last stage when `None`.
    pub fn target_stage(&self, target: Option<&str>) -> Option<usize> {
        match target {
            None => self.stages.len().checked_sub(1),
            Some(t) => {
                let t = t.to_ascii_lowercase();
                self.stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(&t))
            }
        }
    }

    /// The stage named `name` (case-insensitive) or with that index, defined before stage `before`.
    pub fn stage_ref(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        if let Some(i) = self.stages[..before.min(self.stages.len())]
            .iter()
            .position(|s| s.name.as_deref() == Some(&lower))
        {
            return Some(i);
        }
        match name.parse::<usize>() {
            Ok(i) if i < before.min(self.stages.len()) => Some(i),
            _ => None,
        }
    }
}

/// One build stage: a FROM line and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Lowercased stage name (`AS name`), if any.
    pub name: Option<String>,
    /// The name as written (for the StageNameCasing check).
    pub name_original: Option<String>,
    /// The base: an image reference, `scratch`, or an earlier stage's name (unexpanded).
    pub base: String,
    /// `--platform` (unexpanded).
    pub platform: Option<String>,
    /// The `AS` keyword as written (for the FromAsCasing check).
    pub as_keyword: Option<String>,
    pub index: usize,
    pub span: Span,
    /// The FROM keyword as written.
    pub keyword: String,
    /// Comment lines directly above the FROM (without `#`, trimmed): the doc comment.
    pub comments: Vec<String>,
    pub instructions: Vec<Instruction>,
}

/// An instruction with its position and original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub kind: InstructionKind,
    pub span: Span,
    /// The keyword as written (case preserved).
    pub keyword: String,
    /// The logical line (continuations joined, comments dropped).
    pub original: String,
    /// Comment lines directly above the instruction (without `#`, trimmed).
    pub comments: Vec<String>,
}

/// BuildKit's doc comment of `name` (`getDocComment`): the text after `NAME ` on the first comment
/// line above the definition that starts with it.
pub fn doc_comment(comments: &[String], name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    comments
        .iter()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_string))
}

impl Instruction {
    /// The instruction name in upper case (`COPY`, `RUN`, ...).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

/// A command in shell form (one string, run through the SHELL) or exec form (argv).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

impl Command {
    pub fn is_exec(&self) -> bool {
        matches!(self, Command::Exec(_))
    }
}

/// `KEY=value` as written in ENV, LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// True for the legacy `ENV key value` form.
    pub legacy: bool,
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    pub name: String,
    pub default: Option<String>,
}

/// Every instruction BuildKit knows, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    Run(Run),
    Copy(Copy),
    Add(Copy),
    Env(Vec<KeyValue>),
    Label(Vec<KeyValue>),
    Arg(Vec<ArgDef>),
    Workdir(String),
    User(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Onbuild(Box<Instruction>),
    Maintainer(String),
}

impl InstructionKind {
    pub fn name(&self) -> &'static str {
        match self {
            InstructionKind::Run(_) => "RUN",
            InstructionKind::Copy(_) => "COPY",
            InstructionKind::Add(_) => "ADD",
            InstructionKind::Env(_) => "ENV",
            InstructionKind::Label(_) => "LABEL",
            InstructionKind::Arg(_) => "ARG",
            InstructionKind::Workdir(_) => "WORKDIR",
            InstructionKind::User(_) => "USER",
            InstructionKind::Expose(_) => "EXPOSE",
            InstructionKind::Volume(_) => "VOLUME",
            InstructionKind::Cmd(_) => "CMD",
            InstructionKind::Entrypoint(_) => "ENTRYPOINT",
            InstructionKind::Shell(_) => "SHELL",
            InstructionKind::StopSignal(_) => "STOPSIGNAL",
            InstructionKind::Healthcheck(_) => "HEALTHCHECK",
            InstructionKind::Onbuild(_) => "ONBUILD",
            InstructionKind::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// `RUN [--mount=...] [--network=...] [--security=...] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: Command,
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<RunMount>,
    pub network: Option<NetworkMode>,
    pub security: Option<String>,
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    Default,
    None,
    Host,
}

/// `RUN --mount=type=...` (values unexpanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub kind: MountKind,
    pub target: Option<String>,
    pub source: Option<String>,
    pub from: Option<String>,
    pub id: Option<String>,
    pub sharing: Sharing,
    pub readonly: bool,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub required: bool,
    /// Secret exposed as this environment variable.
    pub env: Option<String>,
    /// tmpfs size in bytes.
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// COPY and ADD (ADD-only flags are `None`/false for COPY).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copy {
    pub sources: Vec<String>,
    pub dest: String,
    /// Exec (JSON) form was used.
    pub json: bool,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    /// ADD only.
    pub checksum: Option<String>,
    /// ADD only.
    pub keep_git_dir: bool,
    /// ADD only: `--unpack` (None = default behaviour).
    pub unpack: Option<bool>,
    pub heredocs: Vec<Heredoc>,
}

/// HEALTHCHECK NONE | CMD with options (durations unparsed as written, validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Cmd {
        command: Command,
        /// Nanoseconds, as docker stores them.
        interval: Option<u64>,
        timeout: Option<u64>,
        start_period: Option<u64>,
        start_interval: Option<u64>,
        retries: Option<u32>,
    },
}
