//! One stage to vertices: the base's source (or the earlier stage's result), the base image's
//! ONBUILD triggers, then one vertex per instruction that changes the filesystem or the config
//! (ARG changes only the scope). Every word BuildKit expands is expanded here, with the stage's
//! [`Scope`].

use crate::encode::Encoder;
use crate::scope::{Globals, Scope};
use crate::{
    Base, Copy, Exec, FileOp, GraphError, GraphErrorKind, Mount, Op, Source, Stage, UsedArg,
    UsedMount, Vertex, VertexId,
};
use lighter_dockerfile::{Command, Dockerfile, Instruction, InstructionKind, MountKind, Span};
use std::collections::BTreeMap;

use super::{ImageMeta, LowerOptions};

/// Builds the vertex list stage by stage.
pub(crate) struct Lowerer<'a> {
    df: &'a Dockerfile,
    opts: &'a LowerOptions<'a>,
    globals: &'a Globals,
    pub vertices: Vec<Vertex>,
    pub args: Vec<UsedArg>,
    pub secrets: Vec<UsedMount>,
    pub ssh: Vec<UsedMount>,
    /// Global ARGs that stage ARGs took their value from (listed by the outline as the global).
    pub used_globals: std::collections::BTreeSet<String>,
    /// The earlier stages each stage read (its base, `--from`, `from=`), as lowering resolved them.
    pub stage_deps: BTreeMap<usize, std::collections::BTreeSet<usize>>,
    /// Each lowered stage's final state (a later stage built FROM it starts there).
    finals: BTreeMap<usize, State>,
}

/// A stage's state while its instructions are lowered.
#[derive(Clone)]
struct State {
    index: usize,
    scope: Scope,
    workdir: String,
    user: String,
    shell: Vec<String>,
    onbuild: Vec<String>,
    /// A CMD was set in this stage (an ENTRYPOINT after it keeps it).
    cmd_set: bool,
    current: VertexId,
    /// This stage's source of the build context, once a step reads it.
    context: Option<VertexId>,
}

impl<'a> Lowerer<'a> {
    pub fn new(df: &'a Dockerfile, opts: &'a LowerOptions<'a>, globals: &'a Globals) -> Self {
        Lowerer {
            df,
            opts,
            globals,
            vertices: Vec::new(),
            args: Vec::new(),
            secrets: Vec::new(),
            ssh: Vec::new(),
            used_globals: Default::default(),
            stage_deps: BTreeMap::new(),
            finals: BTreeMap::new(),
        }
    }

    fn add(&mut self, stage: usize, span: Span, op: Op, inputs: Vec<VertexId>) -> VertexId {
        self.add_text(stage, span, op, inputs, String::new())
    }

    /// Adds a vertex with the text progress and history show for it (part of its digest: two
    /// steps whose history differs make different images).
    fn add_text(
        &mut self,
        stage: usize,
        span: Span,
        op: Op,
        inputs: Vec<VertexId>,
        text: String,
    ) -> VertexId {
        let mut e = Encoder::new();
        encode_op(&mut e, &op);
        e.str(&text);
        let op_digest = {
            let mut o = Encoder::new();
            encode_op(&mut o, &op);
            o.str(&text);
            o.finish()
        };
        e.strs(
            &inputs
                .iter()
                .map(|i| self.vertices[i.0].digest.to_string())
                .collect::<Vec<_>>(),
        );
        self.vertices.push(Vertex {
            op,
            inputs,
            stage,
            span,
            digest: e.finish(),
            op_digest,
            text,
        });
        VertexId(self.vertices.len() - 1)
    }

    /// Lowers stage `i` (its dependencies are lowered already) and returns its result.
    pub fn stage(&mut self, i: usize, stages: &[Stage]) -> Result<VertexId, GraphError> {
        let st = &self.df.stages[i];
        let span = st.span;
        self.check_platform(i)?;
        let image_err = |e: String| GraphError::new(GraphErrorKind::Image, e).at(span);
        // A stage built FROM another stage keeps that stage's ARGs (BuildKit copies the base's
        // state and build args).
        let mut inherited_args = BTreeMap::new();
        let (current, meta) = match &stages[i].base {
            Base::Scratch => (
                self.add(i, span, Op::Source(Source::Scratch), vec![]),
                ImageMeta::default(),
            ),
            Base::Named(n) => {
                let meta = self.opts.resolver.named(n).map_err(image_err)?;
                let src = Source::Context {
                    name: Some(n.clone()),
                };
                (self.add(i, span, Op::Source(src), vec![]), meta)
            }
            Base::Image(r) => {
                let meta = self.opts.resolver.image(r).map_err(image_err)?;
                let src = Source::Image {
                    reference: r.clone(),
                };
                (self.add(i, span, Op::Source(src), vec![]), meta)
            }
            Base::Stage(d) => {
                self.stage_deps.entry(i).or_default().insert(*d);
                let f = self.finals.get(d).ok_or_else(|| {
                    GraphError::new(
                        GraphErrorKind::Dockerfile,
                        format!("internal error: stage {d} is read before it is lowered"),
                    )
                    .at(span)
                })?;
                inherited_args = f.scope.args().clone();
                let meta = ImageMeta {
                    env: f.scope.env().to_vec(),
                    workdir: f.workdir.clone(),
                    user: f.user.clone(),
                    shell: f.shell.clone(),
                    onbuild: f.onbuild.clone(),
                };
                (f.current, meta)
            }
        };
        let mut env = meta.env.clone();
        // BuildKit makes sure PATH is always set: a base without one gets the default.
        if !matches!(stages[i].base, Base::Stage(_)) && !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), crate::DEFAULT_PATH.into()));
        }
        let mut s = State {
            index: i,
            scope: Scope::with_args(self.globals.lexer, env, inherited_args),
            workdir: if meta.workdir.is_empty() {
                "/".into()
            } else {
                meta.workdir.clone()
            },
            user: meta.user.clone(),
            shell: if meta.shell.is_empty() {
                vec!["/bin/sh".into(), "-c".into()]
            } else {
                meta.shell.clone()
            },
            onbuild: Vec::new(),
            cmd_set: false,
            current,
            context: None,
        };
        // The base's ONBUILD triggers run first, at the FROM line; they do not pass on.
        let mut instructions = Vec::new();
        for t in &meta.onbuild {
            let parsed =
                lighter_dockerfile::parse(&format!("FROM scratch\n{t}\n")).map_err(|e| {
                    GraphError::new(
                        GraphErrorKind::Dockerfile,
                        format!("ONBUILD trigger {t:?} of the base: {}", e.message),
                    )
                    .at(span)
                })?;
            let mut found: Vec<Instruction> = parsed
                .stages
                .into_iter()
                .flat_map(|s| s.instructions)
                .collect();
            if found.len() != 1 || t.contains('\n') {
                return Err(GraphError::new(
                    GraphErrorKind::Dockerfile,
                    format!("onbuild trigger should be a single expression: {t:?}"),
                )
                .at(span));
            }
            let mut ins = found.remove(0);
            ins.span = span;
            instructions.push(ins);
        }
        instructions.extend(st.instructions.iter().cloned());
        for ins in &instructions {
            self.instruction(&mut s, stages, ins)
                .map_err(|e| e.at(ins.span))?;
        }
        let last = s.current;
        self.finals.insert(i, s);
        Ok(last)
    }

    fn check_platform(&self, i: usize) -> Result<(), GraphError> {
        let st = &self.df.stages[i];
        let Some(p) = &st.platform else { return Ok(()) };
        let (p, _) = self
            .globals
            .expand(p)
            .map_err(|e| GraphError::from(e).at(st.span))?;
        let host = format!("{}/{}", lighter_oci::HOST_OS, lighter_oci::HOST_ARCH);
        let os_arch = lighter_oci::parse_platform(&p).map(|(o, a, _)| format!("{o}/{a}"));
        if p.is_empty() || os_arch.as_deref() == Some(host.as_str()) {
            return Ok(());
        }
        Err(GraphError::new(
            GraphErrorKind::NotImplemented,
            format!("platform {p} is not supported: lighter builds for {host} only"),
        )
        .at(st.span))
    }

    fn instruction(
        &mut self,
        s: &mut State,
        stages: &[Stage],
        ins: &Instruction,
    ) -> Result<(), GraphError> {
        let span = ins.span;
        let config = |instruction: &str, text: String, change: InstructionKind| Op::Config {
            instruction: instruction.to_string(),
            text,
            change,
            keep_cmd: false,
        };
        let op = match &ins.kind {
            InstructionKind::Arg(defs) => {
                for d in defs {
                    let v = s.scope.declare(d, self.opts.build_args, self.globals)?;
                    // `ARG NAME` that only takes a global value: the outline shows the global ARG
                    // (BuildKit's skipArgInfo); platform ARGs are not listed.
                    let takes_global = d.default.is_none()
                        && !self.opts.build_args.contains_key(&d.name)
                        && self.globals.values.contains_key(&d.name);
                    if takes_global {
                        self.used_globals.insert(d.name.clone());
                        continue;
                    }
                    self.args.push(UsedArg {
                        name: v.name,
                        value: v.value,
                        description: lighter_dockerfile::doc_comment(&ins.comments, &d.name),
                        span,
                    });
                }
                return Ok(());
            }
            InstructionKind::Env(kvs) | InstructionKind::Label(kvs) => {
                let env = matches!(ins.kind, InstructionKind::Env(_));
                // Every pair sees the scope from before the line (BuildKit expands the whole
                // instruction, then applies it).
                let pairs = kvs
                    .iter()
                    .map(|kv| Ok((s.scope.expand(&kv.key)?, s.scope.expand(&kv.value)?)))
                    .collect::<Result<Vec<_>, GraphError>>()?;
                let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let kvs: Vec<lighter_dockerfile::KeyValue> = kvs
                    .iter()
                    .zip(&pairs)
                    .map(|(kv, (k, v))| lighter_dockerfile::KeyValue {
                        key: k.clone(),
                        value: v.clone(),
                        legacy: kv.legacy,
                    })
                    .collect();
                if env {
                    for (k, v) in pairs {
                        s.scope.set_env(k, v);
                    }
                }
                let change = if env {
                    InstructionKind::Env(kvs)
                } else {
                    InstructionKind::Label(kvs)
                };
                config(
                    ins.name(),
                    format!("{} {}", ins.name(), text.join(" ")),
                    change,
                )
            }
            InstructionKind::User(u) => {
                s.user = s.scope.expand(u)?;
                let change = InstructionKind::User(s.user.clone());
                config("USER", format!("USER {}", s.user), change)
            }
            InstructionKind::Workdir(w) => {
                let w = s.scope.expand(w)?;
                s.workdir = join_path(&s.workdir, &w);
                let op = Op::File(FileOp::Mkdir {
                    path: s.workdir.clone(),
                    user: s.user.clone(),
                });
                s.current =
                    self.add_text(s.index, span, op, vec![s.current], format!("WORKDIR {w}"));
                return Ok(());
            }
            InstructionKind::Expose(ports) | InstructionKind::Volume(ports) => {
                // EXPOSE splits expanded words (`EXPOSE $PORTS`); a VOLUME path stays one word.
                let expose = matches!(ins.kind, InstructionKind::Expose(_));
                let mut words = Vec::new();
                for p in ports {
                    if expose {
                        words.extend(s.scope.expand_words(p)?);
                    } else {
                        words.push(s.scope.expand(p)?);
                    }
                }
                let text = format!("{} {}", ins.name(), words.join(" "));
                let change = if matches!(ins.kind, InstructionKind::Expose(_)) {
                    InstructionKind::Expose(words)
                } else {
                    InstructionKind::Volume(words)
                };
                config(ins.name(), text, change)
            }
            InstructionKind::StopSignal(sig) => {
                let sig = s.scope.expand(sig)?;
                config(
                    "STOPSIGNAL",
                    format!("STOPSIGNAL {sig}"),
                    InstructionKind::StopSignal(sig),
                )
            }
            InstructionKind::Shell(sh) => {
                s.shell = sh.clone();
                config("SHELL", ins.original.clone(), ins.kind.clone())
            }
            InstructionKind::Onbuild(inner) => {
                s.onbuild.push(inner.original.clone());
                config("ONBUILD", ins.original.clone(), ins.kind.clone())
            }
            // ENTRYPOINT clears the CMD unless this stage set one (BuildKit's `cmdSet`).
            InstructionKind::Entrypoint(_) => Op::Config {
                instruction: ins.name().to_string(),
                text: ins.original.clone(),
                change: ins.kind.clone(),
                keep_cmd: s.cmd_set,
            },
            InstructionKind::Cmd(_) => {
                s.cmd_set = true;
                config(ins.name(), ins.original.clone(), ins.kind.clone())
            }
            InstructionKind::Healthcheck(_) | InstructionKind::Maintainer(_) => {
                config(ins.name(), ins.original.clone(), ins.kind.clone())
            }
            InstructionKind::Run(r) => return self.run(s, stages, ins, r),
            InstructionKind::Copy(c) | InstructionKind::Add(c) => {
                let add = matches!(ins.kind, InstructionKind::Add(_));
                return self.copy(s, stages, span, c, add);
            }
        };
        s.current = self.add(s.index, span, op, vec![s.current]);
        Ok(())
    }

    /// The vertex a `--from` / `from=` names: an earlier stage's result, a named context, or an image.
    fn from_source(
        &mut self,
        s: &State,
        stages: &[Stage],
        from: &str,
        span: Span,
    ) -> Result<VertexId, GraphError> {
        if self.opts.named.contains(from) {
            let src = Source::Context {
                name: Some(from.to_string()),
            };
            return Ok(self.add(s.index, span, Op::Source(src), vec![]));
        }
        match self.df.stage_ref(from, s.index) {
            Some(d) => {
                self.stage_deps.entry(s.index).or_default().insert(d);
                stages[d]
                    .last
                    .or_else(|| self.finals.get(&d).map(|f| f.current))
                    .ok_or_else(|| {
                        GraphError::new(
                            GraphErrorKind::Dockerfile,
                            format!("internal error: stage {from} is read before it is lowered"),
                        )
                        .at(span)
                    })
            }
            None => {
                let src = Source::Image {
                    reference: from.to_string(),
                };
                Ok(self.add(s.index, span, Op::Source(src), vec![]))
            }
        }
    }

    fn context(&mut self, s: &mut State, span: Span) -> VertexId {
        if let Some(c) = s.context {
            return c;
        }
        let c = self.add(
            s.index,
            span,
            Op::Source(Source::Context { name: None }),
            vec![],
        );
        s.context = Some(c);
        c
    }

    fn run(
        &mut self,
        s: &mut State,
        stages: &[Stage],
        ins: &Instruction,
        r: &lighter_dockerfile::Run,
    ) -> Result<(), GraphError> {
        let args = match &r.command {
            Command::Exec(argv) => argv.clone(),
            Command::Shell(cmd) => s.shell.iter().cloned().chain([cmd.clone()]).collect(),
        };
        let mut inputs = vec![s.current];
        let mut mounts = Vec::new();
        for m in &r.mounts {
            let x = |w: &Option<String>| -> Result<Option<String>, GraphError> {
                w.as_deref()
                    .map(|w| s.scope.expand(w))
                    .transpose()
                    .map_err(Into::into)
            };
            let (target, source, id) = (x(&m.target)?, x(&m.source)?, x(&m.id)?);
            let written = target.clone();
            let target = match (&target, m.kind) {
                // A secret given as an environment variable only has no file.
                (None, MountKind::Secret) if m.env.is_some() => String::new(),
                (None, MountKind::Secret) => {
                    format!("/run/secrets/{}", id.clone().unwrap_or_default())
                }
                (None, MountKind::Ssh) => String::new(),
                (t, _) => join_path(&s.workdir, t.as_deref().unwrap_or("")),
            };
            let input = match (m.kind, &m.from) {
                (MountKind::Bind | MountKind::Cache, Some(f)) => {
                    Some(self.from_source(s, stages, f, ins.span)?)
                }
                (MountKind::Bind, None) => Some(self.context(s, ins.span)),
                _ => None,
            };
            let input = input.map(|v| {
                inputs.push(v);
                inputs.len() - 1
            });
            let id = match m.kind {
                MountKind::Secret => id.or_else(|| {
                    written
                        .as_deref()
                        .and_then(|t| t.rsplit('/').next().map(str::to_string))
                }),
                MountKind::Ssh => id.or(Some("default".into())),
                // BuildKit: the id defaults to the target as written, cleaned.
                MountKind::Cache => id.or_else(|| {
                    let t = join_path("/", written.as_deref().unwrap_or(""));
                    Some(match written.as_deref() {
                        Some(w) if w.starts_with('/') => t,
                        _ if t == "/" => ".".into(),
                        _ => t[1..].to_string(),
                    })
                }),
                _ => id,
            }
            .unwrap_or_default();
            let used = UsedMount {
                id: id.clone(),
                required: m.required,
                span: ins.span,
            };
            match m.kind {
                MountKind::Secret if !self.secrets.iter().any(|x| x.id == id) => {
                    self.secrets.push(used)
                }
                MountKind::Ssh if !self.ssh.iter().any(|x| x.id == id) => self.ssh.push(used),
                _ => {}
            }
            mounts.push(Mount {
                kind: m.kind,
                target,
                input,
                source: source.unwrap_or_default(),
                id,
                sharing: m.sharing,
                readonly: m.readonly,
                required: m.required,
                mode: m.mode,
                uid: m.uid,
                gid: m.gid,
                env: m.env.clone(),
                size: m.size,
            });
        }
        let env = s.scope.env().to_vec();
        let arg_env: Vec<(String, String)> = s
            .scope
            .args()
            .iter()
            .filter(|(k, _)| !env.iter().any(|(e, _)| e == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let exec = Exec {
            args,
            env,
            arg_env,
            cwd: s.workdir.clone(),
            user: s.user.clone(),
            network: match r.network {
                None | Some(lighter_dockerfile::NetworkMode::Default) => "default",
                Some(lighter_dockerfile::NetworkMode::None) => "none",
                Some(lighter_dockerfile::NetworkMode::Host) => "host",
            }
            .to_string(),
            security: r.security.clone().unwrap_or_default(),
            mounts,
            heredocs: r
                .heredocs
                .iter()
                .map(|h| (h.name.clone(), h.content.clone()))
                .collect(),
        };
        let text = format!(
            "RUN {}",
            match &r.command {
                Command::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
                Command::Shell(s) => s.clone(),
            }
        );
        s.current = self.add_text(s.index, ins.span, Op::Exec(exec), inputs, text);
        Ok(())
    }

    fn copy(
        &mut self,
        s: &mut State,
        stages: &[Stage],
        span: Span,
        c: &lighter_dockerfile::Copy,
        add: bool,
    ) -> Result<(), GraphError> {
        let x = |w: &str| s.scope.expand(w);
        let xo = |w: &Option<String>| w.as_deref().map(|w| s.scope.expand(w)).transpose();
        let heredoc_names: Vec<&str> = c.heredocs.iter().map(|h| h.name.as_str()).collect();
        let sources = c
            .sources
            .iter()
            .map(|w| {
                if heredoc_names.contains(&w.as_str()) {
                    Ok(w.clone())
                } else {
                    x(w)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let dest = x(&c.dest)?;
        let mut abs = join_path(&s.workdir, &dest);
        // BuildKit: `.`, an empty destination and one ending in `/` or `/.` name a directory.
        let dir = dest.is_empty() || dest == "." || dest.ends_with('/') || dest.ends_with("/.");
        if dir && !abs.ends_with('/') {
            abs.push('/');
        }
        let op = Copy {
            add,
            sources,
            dest: abs,
            chown: xo(&c.chown)?,
            chmod: xo(&c.chmod)?,
            link: c.link,
            parents: c.parents,
            exclude: c.exclude.iter().map(|e| x(e)).collect::<Result<_, _>>()?,
            checksum: xo(&c.checksum)?,
            keep_git_dir: c.keep_git_dir,
            unpack: c.unpack,
            heredocs: c
                .heredocs
                .iter()
                .map(|h| {
                    let body = if h.expand {
                        s.scope.expand(&h.body())?
                    } else {
                        h.body()
                    };
                    Ok((h.name.clone(), body))
                })
                .collect::<Result<_, GraphError>>()?,
        };
        let reads_files = c.sources.len() > c.heredocs.len();
        let mut inputs = vec![s.current];
        match c.from.as_deref().filter(|f| !f.is_empty()) {
            Some(f) => inputs.push(self.from_source(s, stages, f, span)?),
            None if reads_files => inputs.push(self.context(s, span)),
            None => {}
        }
        let text = format!(
            "{} {}{} {dest}",
            if add { "ADD" } else { "COPY" },
            op.chown
                .as_ref()
                .map(|c| format!("--chown={c} "))
                .unwrap_or_default(),
            op.sources.join(" "),
        );
        s.current = self.add_text(s.index, span, Op::File(FileOp::Copy(op)), inputs, text);
        Ok(())
    }
}

/// `rel` against the directory `cwd`, cleaned (`.`, `..` and repeated `/` removed): how WORKDIR,
/// COPY destinations and mount targets resolve.
pub fn join_path(cwd: &str, rel: &str) -> String {
    let full = if rel.starts_with('/') {
        rel.to_string()
    } else {
        format!("{cwd}/{rel}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in full.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn encode_op(e: &mut Encoder, op: &Op) {
    match op {
        Op::Source(src) => {
            e.str("source");
            match src {
                Source::Scratch => e.str("scratch"),
                Source::Image { reference } => e.str("image").str(reference),
                Source::Context { name } => e.str("context").opt_str(name.as_deref()),
            };
        }
        Op::Exec(x) => {
            e.str("exec").strs(&x.args).pairs(&x.env).pairs(&x.arg_env);
            e.str(&x.cwd).str(&x.user);
            e.str(&x.network).str(&x.security).pairs(&x.heredocs);
            e.u64(x.mounts.len() as u64);
            for m in &x.mounts {
                e.str(&format!("{:?}", m.kind)).str(&m.target);
                e.u64(m.input.map(|i| i as u64 + 1).unwrap_or(0));
                e.str(&m.source).str(&m.id).str(&format!("{:?}", m.sharing));
                e.bool(m.readonly).bool(m.required);
                for n in [m.mode, m.uid, m.gid] {
                    e.u64(n.map(|n| n as u64 + 1).unwrap_or(0));
                }
                e.opt_str(m.env.as_deref())
                    .u64(m.size.map(|n| n + 1).unwrap_or(0));
            }
        }
        Op::File(FileOp::Mkdir { path, user }) => {
            e.str("mkdir").str(path).str(user);
        }
        Op::File(FileOp::Copy(c)) => {
            e.str(if c.add { "add" } else { "copy" });
            e.strs(&c.sources).str(&c.dest);
            e.opt_str(c.chown.as_deref()).opt_str(c.chmod.as_deref());
            e.bool(c.link).bool(c.parents).strs(&c.exclude);
            e.opt_str(c.checksum.as_deref()).bool(c.keep_git_dir);
            e.u64(match c.unpack {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            });
            e.pairs(&c.heredocs);
        }
        // The change is the text's words, typed: the text stands for it.
        Op::Config {
            instruction,
            text,
            keep_cmd,
            ..
        } => {
            e.str("config").str(instruction).str(text).bool(*keep_cmd);
        }
    }
}
