//! The build graph's vertices run on this machine: [`LocalWorker`] is the solver's [`Worker`] over
//! the store (layers, snapshots), the sandbox (RUN), the build context and the image source. Every
//! word is expanded already (the graph did it); a vertex's result is the filesystem (layers) and
//! image config a stage has after it. Sources resolve images and named contexts; config changes
//! edit the config; WORKDIR, COPY/ADD ([`copy`]) and RUN ([`run`]) make layers over snapshots.
//! What a step's key needs (a COPY's selected files, a RUN's mounts) is prepared once, before the
//! cache lookup, and reused by the execution on a miss.

use crate::build::{Event, Shared};
use crate::config::{apply, created_by, empty_image};
use crate::index::{parse_record, StoreIndex};
use crate::snapshot::Active;
use crate::{fileop, EngineError};
use lighter_dockerfile::InstructionKind;
use lighter_graph::{Definition, FileOp, Op, Source, Vertex, VertexId};
use lighter_image::Image;
use lighter_oci::config::{History, ImageConfig};
use lighter_solver::{CacheKey, Input, InputUse, Worker};
use lighter_store::layer::LayerInfo;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod copy;
mod run;
mod run_mount;
mod ssh_proxy;

/// The digest of `parts`, each length-prefixed so that no two lists share an encoding.
pub(crate) fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// A vertex's result.
#[derive(Debug)]
pub(crate) struct Out {
    /// The full image config (architecture, os, config, history).
    pub config: ImageConfig,
    pub layers: Vec<LayerInfo>,
    /// The layer this vertex added (its cache record names it).
    pub own: Option<LayerInfo>,
    /// The `created` time of the last history entry (a config change's entry takes it).
    pub created: String,
    pub kind: Kind,
}

/// What a source vertex stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A filesystem: a stage's state, an image, a named image context.
    Fs,
    /// The build context.
    Context,
    /// A named context directory, read in place.
    NamedDir(PathBuf),
}

pub(crate) type Output = Arc<Out>;

/// Work a vertex's key needed that its execution reuses.
enum Prepared {
    Run(run::PreparedRun),
    Copy(copy::PreparedCopy),
}

pub(crate) struct LocalWorker<'s, 'a> {
    pub sh: &'s Shared<'a>,
    pub def: &'s Definition,
    pub index: &'s StoreIndex<'s>,
    /// Progress ids of the vertices that started.
    pub ids: Mutex<HashMap<VertexId, usize>>,
    prepared: Mutex<HashMap<VertexId, Prepared>>,
    /// Images resolved for this build (the ones lowering resolved, and those COPY --from reads).
    images: &'s crate::build::Resolved,
    /// Named contexts some stage is built FROM (they need a layer of their files).
    named_bases: BTreeSet<String>,
    /// The source vertices that are a stage's base (their FROM shows in progress).
    bases: BTreeSet<VertexId>,
    /// The stages each vertex digest appears in: a vertex that several stages share runs once,
    /// and its cache records belong to each of them.
    stages_of: HashMap<lighter_oci::Digest, BTreeSet<usize>>,
    /// Stages built FROM another stage whose FROM line progress has shown.
    announced: Mutex<BTreeSet<usize>>,
}

impl<'s, 'a> LocalWorker<'s, 'a> {
    pub fn new(
        sh: &'s Shared<'a>,
        def: &'s Definition,
        index: &'s StoreIndex<'s>,
        images: &'s crate::build::Resolved,
    ) -> Self {
        let mut bases = BTreeSet::new();
        let mut named_bases = BTreeSet::new();
        for st in def.stages.iter().filter(|s| s.last.is_some()) {
            // A stage's base source is its first vertex (a stage built FROM a stage has none).
            let own_base = !matches!(st.base, lighter_graph::Base::Stage(_));
            if let Some(i) = def.vertices.iter().position(|v| v.stage == st.index) {
                if own_base && matches!(def.vertices[i].op, Op::Source(_)) {
                    bases.insert(VertexId(i));
                }
            }
            if let lighter_graph::Base::Named(n) = &st.base {
                named_bases.insert(n.clone());
            }
        }
        // A named directory a RUN mounts is mounted from a layer of its files.
        for v in &def.vertices {
            if let Op::Exec(e) = &v.op {
                for m in e.mounts.iter().filter_map(|m| m.input) {
                    if let Op::Source(Source::Context { name: Some(n) }) =
                        &def.vertex(v.inputs[m]).op
                    {
                        named_bases.insert(n.clone());
                    }
                }
            }
        }
        LocalWorker {
            sh,
            def,
            index,
            ids: Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
            images,
            named_bases,
            bases,
            stages_of: def.vertices.iter().fold(HashMap::new(), |mut m, v| {
                m.entry(v.digest.clone())
                    .or_insert_with(BTreeSet::new)
                    .insert(v.stage);
                m
            }),
            announced: Mutex::new(BTreeSet::new()),
        }
    }

    /// A stage's progress name, its ONBUILD trigger steps (they run right after FROM) and its
    /// number of steps (`n/total`).
    fn numbering(&self, stage: usize) -> (String, Vec<&Vertex>, usize) {
        let st = &self.sh.req.dockerfile.stages[stage];
        let name = st.name.clone().unwrap_or_else(|| format!("stage-{stage}"));
        let triggers: Vec<&Vertex> = self
            .def
            .vertices
            .iter()
            .filter(|x| x.stage == stage && x.span == st.span && !matches!(x.op, Op::Source(_)))
            .collect();
        let total = st.instructions.len() + triggers.len() + 1;
        (name, triggers, total)
    }

    /// The progress label of a vertex: `[stage n/total]`, numbered by the stage's instructions.
    pub fn label(&self, v: &Vertex) -> String {
        let st = &self.sh.req.dockerfile.stages[v.stage];
        let (name, triggers, total) = self.numbering(v.stage);
        let trigger = triggers.iter().position(|x| std::ptr::eq(*x, v));
        let n = match (
            trigger,
            st.instructions.iter().position(|i| i.span == v.span),
        ) {
            // ONBUILD triggers of the base run right after FROM.
            (Some(t), _) => t + 2,
            (None, Some(i)) => i + 2 + triggers.len(),
            (None, None) => 1,
        };
        format!("[{name} {n}/{total}]")
    }

    fn progress_id(&self, id: VertexId) -> usize {
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.get(&id).copied().unwrap_or(0)
    }

    fn prepare(&self, id: VertexId, p: Prepared) {
        self.prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, p);
    }

    fn take_prepared(&self, id: VertexId) -> Option<Prepared> {
        self.prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }

    /// The image `reference` names, resolved once per build.
    fn image(&self, reference: &str, what: &str) -> Result<Image, EngineError> {
        self.images.get(self.sh.store, self.sh.req, reference, what)
    }

    /// The result of a layer step: the parent's filesystem and config with the vertex's config
    /// effect, its layer and its history entry.
    fn finish(
        &self,
        v: &Vertex,
        parent: &Out,
        layer: Option<LayerInfo>,
        created: String,
    ) -> Output {
        let mut config = self.start_config(v, parent);
        let mut layers = parent.layers.clone();
        if let Op::File(FileOp::Mkdir { path, .. }) = &v.op {
            apply(&mut config.config, &InstructionKind::Workdir(path.clone()));
        }
        let text = match &v.op {
            Op::Exec(e) => run::history(e),
            Op::File(FileOp::Copy(_)) => format!("{} # buildkit", v.text),
            _ => v.text.clone(),
        };
        history(&mut config, text, layer.is_none(), &created);
        layers.extend(layer.clone());
        Arc::new(Out {
            config,
            layers,
            own: layer,
            created,
            kind: Kind::Fs,
        })
    }

    /// The config a step starts from: its parent's, without the ONBUILD triggers of a stage this
    /// stage is built FROM (the graph ran them first; they do not pass on).
    fn start_config(&self, v: &Vertex, parent: &Out) -> ImageConfig {
        let mut config = parent.config.clone();
        let from_other_stage = v
            .inputs
            .first()
            .is_some_and(|p| self.def.vertex(*p).stage != v.stage);
        if from_other_stage {
            self.announce(v);
            config.config.on_build.clear();
        }
        config
    }

    /// The stages `v` (and the identical vertices it stands for) belongs to.
    pub(super) fn stages(&self, v: &Vertex) -> Vec<usize> {
        match self.stages_of.get(&v.digest) {
            Some(s) => s.iter().copied().collect(),
            None => vec![v.stage],
        }
    }

    /// Notes a layer step for `--cache-to`, for every stage it belongs to.
    fn used(&self, v: &Vertex, key: &CacheKey, out: &Out) {
        let mut used = self.sh.used.lock().unwrap_or_else(|e| e.into_inner());
        for stage in self.stages(v) {
            used.push(crate::cache::Used {
                stage,
                key: key.to_string(),
                layer: out.own.clone(),
                created: out.created.clone(),
            });
        }
    }

    /// The FROM line of a stage built FROM another stage, shown when its first step starts.
    fn announce(&self, v: &Vertex) {
        let st = &self.sh.req.dockerfile.stages[v.stage];
        if !self
            .announced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(v.stage)
        {
            return;
        }
        let id = self.sh.step_id();
        let (name, _, total) = self.numbering(v.stage);
        (self.sh.progress)(Event::Start {
            id,
            label: format!("[{name} 1/{total}]"),
            text: match &self.def.stages[v.stage].base {
                lighter_graph::Base::Stage(d) => format!(
                    "FROM {}",
                    self.sh.req.dockerfile.stages[*d]
                        .name
                        .clone()
                        .unwrap_or_else(|| d.to_string())
                ),
                _ => format!("FROM {}", st.base),
            },
        });
        (self.sh.progress)(Event::Done {
            id,
            secs: 0.0,
            why: None,
        });
    }

    fn source(&self, id: VertexId, v: &Vertex, src: &Source) -> Result<Output, EngineError> {
        let base = self.bases.contains(&id);
        let t = Instant::now();
        let event = base.then(|| {
            let id = self.sh.step_id();
            let text = match src {
                Source::Scratch => "FROM scratch".to_string(),
                Source::Image { reference } => format!("FROM {reference}"),
                Source::Context { name } => format!("FROM {}", name.as_deref().unwrap_or(".")),
            };
            (self.sh.progress)(Event::Start {
                id,
                label: self.label(v),
                text,
            });
            id
        });
        let out = match src {
            Source::Scratch => base_out(&Value::Null, Vec::new())?,
            Source::Image { reference } => {
                let img = self.image(reference, &format!("FROM {reference}"))?;
                base_out(&img.config, img.record.layers.clone())?
            }
            Source::Context { name: None } => Out {
                config: ImageConfig::default(),
                layers: Vec::new(),
                own: None,
                created: String::new(),
                kind: Kind::Context,
            },
            Source::Context { name: Some(n) } => self.named(n)?,
        };
        if let Some(id) = event {
            (self.sh.progress)(Event::Done {
                id,
                secs: t.elapsed().as_secs_f64(),
                why: None,
            });
        }
        Ok(Arc::new(out))
    }

    fn named(&self, name: &str) -> Result<Out, EngineError> {
        let n = self.sh.req.named_contexts.get(name).ok_or_else(|| {
            EngineError::msg(format!("internal error: no build context named {name}"))
        })?;
        if let crate::build::NamedContext::Dir(dir) = n {
            if !self.named_bases.contains(name) {
                let mut out = base_out(&Value::Null, Vec::new())?;
                out.kind = Kind::NamedDir(dir.clone());
                return Ok(out);
            }
        }
        let req = self.sh.req;
        let src = crate::named::source(self.sh.store, &req.images, name, n, req.plan_copies)?;
        let config = src.config.unwrap_or(Value::Null);
        let mut out = base_out(&config, src.layers)?;
        if let crate::build::NamedContext::Dir(dir) = n {
            out.kind = Kind::NamedDir(dir.clone());
        }
        Ok(out)
    }

    /// ENV, LABEL, USER, CMD and the other config changes: an empty history entry.
    fn config(
        &self,
        v: &Vertex,
        parent: &Out,
        change: &InstructionKind,
        text: &str,
        keep_cmd: bool,
    ) -> Result<Output, EngineError> {
        let change = match change {
            InstructionKind::Expose(words) => InstructionKind::Expose(
                words
                    .iter()
                    .map(|w| crate::config::port_specs(w))
                    .collect::<Result<Vec<_>, _>>()?
                    .concat(),
            ),
            other => other.clone(),
        };
        let mut config = self.start_config(v, parent);
        let cmd = config.config.cmd.clone();
        let shell = crate::config::shell_of(&config.config);
        apply(&mut config.config, &change);
        if keep_cmd {
            config.config.cmd = cmd;
        }
        // MAINTAINER sets the image's author (the one config field outside `config`).
        if let InstructionKind::Maintainer(m) = &change {
            config.author = Some(m.clone());
        }
        history(
            &mut config,
            created_by(&change, text, &shell),
            true,
            &parent.created,
        );
        Ok(Arc::new(Out {
            config,
            layers: parent.layers.clone(),
            own: None,
            created: parent.created.clone(),
            kind: Kind::Fs,
        }))
    }

    /// WORKDIR: the directory, made for the USER when it is missing (BuildKit makes it so).
    fn mkdir(
        &self,
        v: &Vertex,
        parent: &Out,
        path: &str,
        user: &str,
    ) -> Result<Output, EngineError> {
        let mut snap = Active::new(self.sh.store, &parent.layers)?;
        let root = snap.mount(self.sh.store)?.to_path_buf();
        let owner = (!user.is_empty()).then(|| fileop::workdir_owner(&root, user));
        fileop::mkdir_all(&root, path, owner)?;
        let layer = snap.commit(self.sh.store, &[])?;
        Ok(self.finish(
            v,
            parent,
            layer,
            lighter_image::now_rfc3339(self.sh.store.settings().source_date_epoch),
        ))
    }
}

/// A base's result: its config (`null`: an empty image; with a PATH, without a base's inline
/// cache or ONBUILD triggers, which the graph ran already) and layers.
fn base_out(config: &Value, layers: Vec<LayerInfo>) -> Result<Out, EngineError> {
    let config = if config.is_null() {
        empty_image()
    } else {
        ImageConfig::from_json(config).map_err(|e| {
            EngineError::msg(format!("the base image's config: {e}")).kind(crate::ErrorKind::Image)
        })?
    };
    // What BuildKit's frontend carries over: the fields of its model (no container_config, no
    // docker_version, no inline cache of the base's own build).
    let mut config = config.without_unknown_fields();
    crate::config::ensure_path(&mut config);
    config.config.on_build.clear();
    let created = config
        .created
        .clone()
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string());
    Ok(Out {
        config,
        layers,
        own: None,
        created,
        kind: Kind::Fs,
    })
}

/// Appends a history entry.
fn history(config: &mut ImageConfig, created_by: String, empty: bool, created: &str) {
    config.history.push(History {
        created: Some(created.to_string()),
        created_by: Some(created_by),
        comment: Some("buildkit.dockerfile.v0".into()),
        empty_layer: empty,
        ..Default::default()
    });
}

impl Worker for LocalWorker<'_, '_> {
    type Output = Output;
    type Error = EngineError;

    fn content(
        &self,
        id: VertexId,
        v: &Vertex,
        inputs: &[Input<'_, Output>],
    ) -> Result<Vec<(String, String)>, EngineError> {
        let r = match &v.op {
            Op::Source(Source::Image { reference }) => {
                let img = self.image(reference, &format!("FROM {reference}"))?;
                Ok(vec![("image".into(), img.id.to_string())])
            }
            Op::Source(Source::Context { name: Some(n) }) => {
                let key = match self.sh.req.named_contexts.get(n) {
                    Some(crate::build::NamedContext::Image(r)) => self
                        .image(r, &format!("--build-context {n}=docker-image://{r}"))?
                        .id
                        .to_string(),
                    // A directory's files enter the keys of the steps that read them.
                    Some(crate::build::NamedContext::Dir(d)) if self.named_bases.contains(n) => {
                        let ctx = crate::context::BuildContext::open(d, None)?;
                        let sel = ctx.select(".")?;
                        format!("context:{}", ctx.digest(&sel)?)
                    }
                    _ => String::new(),
                };
                Ok(vec![("named".into(), key)])
            }
            Op::Exec(e) => self.run_content(id, v, e, inputs),
            Op::File(FileOp::Copy(c)) => self.copy_content(id, v, c, inputs),
            _ => Ok(Vec::new()),
        };
        r.map_err(|e| e.at(v.span))
    }

    fn input_use(&self, v: &Vertex, i: usize) -> InputUse {
        match &v.op {
            // A --link layer is made on an empty filesystem: the steps before it are not in its key.
            Op::File(FileOp::Copy(c)) if i == 0 && c.link => InputUse::Chained,
            // What a COPY reads from another stage, an image or a context: the selected files.
            Op::File(FileOp::Copy(_)) if i == 1 => InputUse::Content,
            _ => InputUse::Keyed,
        }
    }

    fn cacheable(&self, v: &Vertex) -> bool {
        matches!(v.op, Op::Exec(_) | Op::File(_))
    }

    fn load(
        &self,
        id: VertexId,
        v: &Vertex,
        key: &CacheKey,
        record: &str,
        inputs: &[Input<'_, Output>],
    ) -> Result<Option<Output>, EngineError> {
        let Some((layer, created)) = parse_record(record) else {
            return Ok(None);
        };
        let imported = self.index.was_imported(key);
        // An imported record's layer is fetched when something reads it; a local one must be here.
        if let Some(l) = &layer {
            if !imported && !self.sh.store.content().exists(&l.digest) {
                return Ok(None);
            }
        }
        drop(self.take_prepared(id));
        if imported {
            self.sh
                .imported
                .hits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let parent = inputs.first().map(|i| i.output.as_ref()).ok_or_else(|| {
            EngineError::msg("internal error: a layer step without a filesystem").at(v.span)
        })?;
        let out = self.finish(v, parent, layer, created);
        self.used(v, key, &out);
        Ok(Some(out))
    }

    fn exec(
        &self,
        id: VertexId,
        v: &Vertex,
        key: &CacheKey,
        inputs: &[Input<'_, Output>],
    ) -> Result<Output, EngineError> {
        let parent = || {
            inputs.first().map(|i| i.output.as_ref()).ok_or_else(|| {
                EngineError::msg("internal error: a step without a filesystem").at(v.span)
            })
        };
        let out = match &v.op {
            Op::Source(src) => self.source(id, v, src),
            Op::Config {
                change,
                text,
                keep_cmd,
                ..
            } => self.config(v, parent()?, change, text, *keep_cmd),
            Op::File(FileOp::Mkdir { path, user }) => self.mkdir(v, parent()?, path, user),
            Op::File(FileOp::Copy(c)) => self.copy_exec(id, v, c, inputs),
            Op::Exec(e) => self.run_exec(id, v, e, inputs),
        }
        .map_err(|e| e.at(v.span))?;
        if self.cacheable(v) {
            self.used(v, key, &out);
        }
        Ok(out)
    }

    fn record(&self, _v: &Vertex, out: &Output) -> Option<String> {
        Some(crate::index::record(out.own.as_ref(), &out.created))
    }
}
