//! One stage, instruction by instruction: expansion with the stage's scope, cache keys (parent key,
//! the instruction with its expanded arguments and flags, and the content digest of exactly the files
//! a COPY selects), cache lookups with the reason for a miss, and execution through fileop (COPY/ADD,
//! WORKDIR) or the sandbox (RUN) over overlay snapshots.

use crate::build::{Event, Shared};
use crate::config::{apply, created_by, empty_image, env_of};
use crate::context::{BuildContext, Selected};
use crate::copyplan;
use crate::fileop::{self, CopyRequest};
use crate::lower::expand;
use crate::snapshot::{Active, View};
use crate::EngineError;
use lighter_dockerfile::shell::Lexer;
use lighter_dockerfile::{Copy, Instruction, InstructionKind};
use lighter_store::layer::LayerInfo;
use lighter_store::Table;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::time::Instant;

mod run;
mod run_mount;
mod ssh_proxy;

/// What a stage produced.
#[derive(Debug, Clone)]
pub(crate) struct StageResult {
    /// The full image config (architecture, os, config, history).
    pub config: Value,
    pub layers: Vec<LayerInfo>,
    /// The cache key of the last step.
    pub key: String,
    /// The ARGs in scope at the end (a stage built FROM this one starts with them, as in BuildKit).
    pub args: BTreeMap<String, String>,
}

/// The digest of `parts`, each length-prefixed so that no two lists share an encoding.
pub(crate) fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

struct StageRun<'s, 'a> {
    sh: &'s Shared<'a>,
    /// This stage's index: `--from` may only name earlier stages.
    index: usize,
    lexer: Lexer,
    label: String,
    config: Value,
    layers: Vec<LayerInfo>,
    key: String,
    /// ARGs declared in this stage, with their values (unset ones are absent).
    args: BTreeMap<String, String>,
    last_created: String,
    /// Whether the last cache lookup was answered by an imported (`--cache-from`) record.
    imported_hit: std::cell::Cell<bool>,
}

pub(crate) fn run_stage(sh: &Shared<'_>, i: usize) -> Result<StageResult, EngineError> {
    let df = &sh.req.dockerfile;
    let stage = &df.stages[i];
    let lexer = Lexer::new(df.escape);
    let label = stage.name.clone().unwrap_or_else(|| format!("stage-{i}"));
    let base = crate::lower::base_name(df, i, &sh.globals)?;
    if let Some(p) = &stage.platform {
        let p = expand(&lexer, p, &sh.globals).map_err(|e| e.at(stage.span))?;
        let host = format!("{}/{}", lighter_oci::HOST_OS, lighter_oci::HOST_ARCH);
        if !p.is_empty()
            && lighter_oci::parse_platform(&p).map(|(o, a, _)| format!("{o}/{a}"))
                != Some(host.clone())
        {
            return Err(EngineError::msg(format!(
                "platform {p} is not supported: lighter builds for {host} only"
            ))
            .at(stage.span));
        }
    }
    let total = stage.instructions.len() + 1;
    let id = sh.step_id();
    (sh.progress)(Event::Start {
        id,
        label: format!("[{label} 1/{total}]"),
        text: format!("FROM {base}"),
    });
    let t = Instant::now();
    let mut inherited_args = BTreeMap::new();
    let (mut config, layers, key) = if let Some(n) = sh.req.named_contexts.get(&base) {
        let src = crate::named::source(sh.store, &sh.req.images, &base, n)
            .map_err(|e| e.at(stage.span))?;
        (
            src.config.unwrap_or_else(empty_image),
            src.layers,
            sha(&["named", &src.key]),
        )
    } else if base == "scratch" {
        (empty_image(), Vec::new(), sha(&["scratch"]))
    } else if let Some(d) = df.stage_ref(&base, i) {
        let r = sh.wait_stage(d)?;
        inherited_args = r.args.clone();
        (r.config.clone(), r.layers.clone(), r.key.clone())
    } else {
        let img = sh
            .req
            .images
            .resolve(sh.store, &base, &format!("FROM {base}"))
            .map_err(|e| e.at(stage.span))?;
        (
            img.config.clone(),
            img.record.layers.clone(),
            sha(&["image", img.id.as_str()]),
        )
    };
    crate::config::ensure_path(&mut config);
    // A base's inline build cache describes the base's build, not this one.
    if let Some(o) = config.as_object_mut() {
        o.remove(crate::cache::INLINE_KEY);
    }
    (sh.progress)(Event::Done {
        id,
        secs: t.elapsed().as_secs_f64(),
        why: None,
    });
    let last_created = config
        .get("created")
        .and_then(|c| c.as_str())
        .unwrap_or("1970-01-01T00:00:00Z")
        .to_string();
    let mut run = StageRun {
        sh,
        index: i,
        lexer,
        label,
        config,
        layers,
        key,
        args: inherited_args,
        last_created,
        imported_hit: std::cell::Cell::new(false),
    };
    // ONBUILD triggers of the base run first, then leave the config.
    let mut instructions: Vec<Instruction> = Vec::new();
    if base != "scratch" {
        let triggers: Vec<String> = run
            .config
            .pointer("/config/OnBuild")
            .and_then(|o| o.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for t in triggers {
            let parsed =
                lighter_dockerfile::parse(&format!("FROM scratch\n{t}\n")).map_err(|e| {
                    EngineError::msg(format!("ONBUILD trigger {t:?} of {base}: {}", e.message))
                        .at(stage.span)
                })?;
            for mut ins in parsed
                .stages
                .into_iter()
                .next()
                .map(|s| s.instructions)
                .unwrap_or_default()
            {
                ins.span = stage.span;
                instructions.push(ins);
            }
        }
        if let Some(c) = run.config.get_mut("config").and_then(|c| c.as_object_mut()) {
            c.remove("OnBuild");
        }
    }
    instructions.extend(stage.instructions.iter().cloned());
    let total = instructions.len() + 1;
    for (n, ins) in instructions.iter().enumerate() {
        run.step(ins, n + 2, total).map_err(|e| e.at(ins.span))?;
    }
    Ok(StageResult {
        config: run.config,
        layers: run.layers,
        key: run.key,
        args: run.args,
    })
}

impl StageRun<'_, '_> {
    /// The layers and cache key of what a `--from` names: an earlier stage, by name or index (as
    /// `lower::stage_deps` resolved the dependency), or an image in the store.
    fn source_of(&self, from: &str, what: &str) -> Result<(Vec<LayerInfo>, String), EngineError> {
        if let Some(n) = self.sh.req.named_contexts.get(from) {
            let src = crate::named::source(self.sh.store, &self.sh.req.images, from, n)?;
            return Ok((src.layers, src.key));
        }
        match self.sh.req.dockerfile.stage_ref(from, self.index) {
            Some(d) => {
                let r = self.sh.wait_stage(d)?;
                Ok((r.layers.clone(), r.key.clone()))
            }
            None => {
                let img =
                    self.sh
                        .req
                        .images
                        .resolve(self.sh.store, from, &format!("{what}={from}"))?;
                Ok((img.record.layers.clone(), img.id.to_string()))
            }
        }
    }

    /// The expansion scope: ARGs in scope, overridden by ENV.
    fn scope(&self) -> BTreeMap<String, String> {
        let mut s = self.args.clone();
        for (k, v) in env_of(&self.config["config"]) {
            s.insert(k, v);
        }
        s
    }

    fn x(&self, w: &str) -> Result<String, EngineError> {
        expand(&self.lexer, w, &self.scope())
    }

    fn history(&mut self, created_by: String, empty: bool, created: Option<String>) {
        let created = created.unwrap_or_else(|| self.last_created.clone());
        self.last_created = created.clone();
        let mut h = json!({ "created": created, "created_by": created_by, "comment": "buildkit.dockerfile.v0" });
        if empty {
            h["empty_layer"] = json!(true);
        }
        if !self.config["history"].is_array() {
            self.config["history"] = json!([]);
        }
        if let Some(a) = self.config["history"].as_array_mut() {
            a.push(h);
        }
    }

    fn step(&mut self, ins: &Instruction, n: usize, total: usize) -> Result<(), EngineError> {
        let sh = self.sh;
        match &ins.kind {
            InstructionKind::Arg(defs) => {
                for d in defs {
                    let v = match (sh.req.build_args.get(&d.name), &d.default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(def)) => Some(self.x(def)?),
                        (None, None) => sh.globals.get(&d.name).cloned().filter(|_| {
                            sh.req.dockerfile.meta_args.iter().any(|m| matches!(&m.kind, InstructionKind::Arg(ds) if ds.iter().any(|x| x.name == d.name)))
                                || crate::lower::platform_args().contains_key(&d.name)
                        }),
                    };
                    match v {
                        Some(v) => {
                            self.args.insert(d.name.clone(), v);
                        }
                        None => {
                            self.args.remove(&d.name);
                        }
                    }
                }
                self.key = sha(&[
                    &self.key,
                    "ARG",
                    &serde_json::to_string(&self.args).unwrap_or_default(),
                ]);
                Ok(())
            }
            InstructionKind::Run(r) => self.run(ins, r, n, total),
            InstructionKind::Copy(c) | InstructionKind::Add(c) => {
                self.copy(c, matches!(ins.kind, InstructionKind::Add(_)), n, total)
            }
            InstructionKind::Workdir(w) => {
                let w = self.x(w)?;
                let expanded = InstructionKind::Workdir(w.clone());
                apply(&mut self.config["config"], &expanded);
                let dir = self.config["config"]["WorkingDir"]
                    .as_str()
                    .unwrap_or("/")
                    .to_string();
                let text = format!("WORKDIR {w}");
                // Directories it creates belong to the USER, as BuildKit makes them; the user
                // enters the key only when there is one, so keys without a USER stay as they were.
                let user = self.config["config"]["User"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let key = if user.is_empty() {
                    sha(&[&self.key, "WORKDIR", &dir])
                } else {
                    sha(&[&self.key, "WORKDIR", &dir, "user", &user])
                };
                self.file_step(&key, &text, n, total, |root| {
                    let owner = (!user.is_empty()).then(|| fileop::workdir_owner(root, &user));
                    fileop::mkdir_all(root, &dir, owner).map(|_| ())
                })?;
                Ok(())
            }
            kind => {
                let expanded = self.expand_meta(kind)?;
                apply(&mut self.config["config"], &expanded);
                let text = created_by(&expanded, &ins.original);
                self.key = sha(&[&self.key, &text]);
                self.history(text, true, None);
                Ok(())
            }
        }
    }

    /// Expands the words of a metadata instruction that BuildKit expands.
    fn expand_meta(&self, kind: &InstructionKind) -> Result<InstructionKind, EngineError> {
        Ok(match kind {
            InstructionKind::Env(kvs) | InstructionKind::Label(kvs) => {
                // All values of one line see the scope before the line, not each other.
                let mut out = Vec::new();
                for kv in kvs {
                    out.push(lighter_dockerfile::KeyValue {
                        key: self.x(&kv.key)?,
                        value: self.x(&kv.value)?,
                        legacy: kv.legacy,
                    });
                }
                if matches!(kind, InstructionKind::Env(_)) {
                    InstructionKind::Env(out)
                } else {
                    InstructionKind::Label(out)
                }
            }
            InstructionKind::User(u) => InstructionKind::User(self.x(u)?),
            InstructionKind::Expose(p) => InstructionKind::Expose(
                p.iter()
                    .map(|x| self.x(x))
                    .collect::<Result<Vec<_>, _>>()?
                    .iter()
                    .flat_map(|s| s.split_whitespace())
                    .map(crate::config::port_specs)
                    .collect::<Result<Vec<_>, _>>()?
                    .concat(),
            ),
            InstructionKind::Volume(v) => {
                InstructionKind::Volume(v.iter().map(|x| self.x(x)).collect::<Result<_, _>>()?)
            }
            InstructionKind::StopSignal(s) => InstructionKind::StopSignal(self.x(s)?),
            other => other.clone(),
        })
    }

    /// Looks up a step's cache key. Returns the cached layer (or `Some(None)` for a cached empty step).
    fn cached(&self, key: &str) -> Result<Option<(Option<LayerInfo>, String)>, EngineError> {
        self.imported_hit.set(false);
        if self.sh.req.no_cache {
            return Ok(None);
        }
        let Some(v) = self
            .sh
            .store
            .meta()
            .get(Table::Cache, key)
            .map_err(|e| EngineError::msg(e.to_string()))?
        else {
            return Ok(self.imported(key));
        };
        let v: Value = serde_json::from_str(&v).unwrap_or(Value::Null);
        let created = v
            .get("created")
            .and_then(|c| c.as_str())
            .unwrap_or("")
            .to_string();
        match v.get("layer") {
            Some(Value::Null) | None => Ok(Some((None, created))),
            Some(l) => match serde_json::from_value::<LayerInfo>(l.clone()) {
                Ok(info) if self.sh.store.content().exists(&info.digest) => {
                    Ok(Some((Some(info), created)))
                }
                // The local record's blob is gone (pruned): an imported record may still have it.
                _ => Ok(self.imported(key)),
            },
        }
    }

    /// An imported (`--cache-from`) record: its layer is fetched only when something reads it.
    fn imported(&self, key: &str) -> Option<(Option<LayerInfo>, String)> {
        let r = self.sh.imported.records.get(key)?;
        self.imported_hit.set(true);
        Some((r.0.clone(), r.1.clone()))
    }

    /// Queues the cache record of a step; `build` writes all of a build's records in one transaction
    /// (one fsync per build instead of one per step).
    fn remember(
        &self,
        key: &str,
        layer: &Option<LayerInfo>,
        created: &str,
        position: &str,
        inputs: &Value,
    ) {
        let v = json!({ "layer": layer, "created": created });
        let mut p = self.sh.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.push((Table::Cache, key.to_string(), v.to_string()));
        p.push((Table::CacheInputs, position.to_string(), inputs.to_string()));
    }

    /// Why a step missed the cache: compare its inputs with the last build's at the same position.
    fn why(&self, position: &str, inputs: &Value) -> Option<String> {
        if self.sh.req.no_cache {
            return Some("--no-cache".into());
        }
        let prev = self
            .sh
            .store
            .meta()
            .get(Table::CacheInputs, position)
            .ok()
            .flatten()?;
        let prev: Value = serde_json::from_str(&prev).ok()?;
        let (Some(a), Some(b)) = (prev.as_object(), inputs.as_object()) else {
            return None;
        };
        let changed: Vec<&str> = b
            .iter()
            .filter(|(k, v)| a.get(*k) != Some(*v))
            .map(|(k, _)| k.as_str())
            .collect();
        if changed.is_empty() {
            Some("an earlier step changed".into())
        } else {
            Some(format!("changed: {}", changed.join(", ")))
        }
    }

    fn position(&self, n: usize) -> String {
        let df = self
            .sh
            .req
            .dockerfile_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "-".into());
        format!("{df}#{}#{n}", self.label)
    }

    /// A file operation step (COPY/ADD/WORKDIR) over an overlay snapshot, with caching.
    fn file_step(
        &mut self,
        key: &str,
        text: &str,
        n: usize,
        total: usize,
        op: impl FnOnce(&std::path::Path) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let inputs = json!({ "instruction": text, "parent": self.key });
        self.execute(key, text, text, n, total, &inputs, |this, _| {
            let mut snap = Active::new(this.sh.store, &this.layers)?;
            let root = snap.mount(this.sh.store)?.to_path_buf();
            op(&root)?;
            snap.commit(this.sh.store, &[])
        })
    }

    /// Runs a layer-producing step unless its key is cached: progress events, the reason for a miss,
    /// the cache record, the layer and the history entry.
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &mut self,
        key: &str,
        text: &str,
        history: &str,
        n: usize,
        total: usize,
        inputs: &Value,
        run: impl FnOnce(&Self, usize) -> Result<Option<LayerInfo>, EngineError>,
    ) -> Result<(), EngineError> {
        let id = self.sh.step_id();
        (self.sh.progress)(Event::Start {
            id,
            label: format!("[{} {n}/{total}]", self.label),
            text: text.to_string(),
        });
        let position = self.position(n);
        let (layer, created) = match self.cached(key)? {
            Some((layer, created)) => {
                if self.imported_hit.get() {
                    self.sh
                        .imported
                        .hits
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // Kept locally too: a later build here hits without --cache-from once the
                    // layer is in the store.
                    self.remember(key, &layer, &created, &position, inputs);
                }
                (self.sh.progress)(Event::Cached { id });
                self.sh.count(true);
                (layer, Some(created).filter(|c| !c.is_empty()))
            }
            None => {
                let why = self.why(&position, inputs);
                let t = Instant::now();
                let layer = run(self, id)?;
                let created = lighter_image::now_rfc3339();
                self.remember(key, &layer, &created, &position, inputs);
                (self.sh.progress)(Event::Done {
                    id,
                    secs: t.elapsed().as_secs_f64(),
                    why,
                });
                self.sh.count(false);
                (layer, Some(created))
            }
        };
        let empty = layer.is_none();
        self.sh
            .used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(crate::cache::Used {
                stage: self.index,
                key: key.to_string(),
                layer: layer.clone(),
                created: created.clone().unwrap_or_default(),
            });
        if let Some(l) = layer {
            self.layers.push(l);
        }
        self.history(history.to_string(), empty, created);
        self.key = key.to_string();
        Ok(())
    }

    /// Notes the content digest of a `COPY --from` selection, for `--cache-to`.
    fn remember_content(&self, selection: String, content: String) {
        self.sh
            .contents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.index, selection, content));
    }

    fn copy(&mut self, c: &Copy, add: bool, n: usize, total: usize) -> Result<(), EngineError> {
        let sh = self.sh;
        let name = if add { "ADD" } else { "COPY" };
        let dest = self.x(&c.dest)?;
        let workdir = self.config["config"]["WorkingDir"]
            .as_str()
            .unwrap_or("/")
            .to_string();
        let mut sources = Vec::new();
        for s in &c.sources {
            sources.push(if c.json { s.clone() } else { self.x(s)? });
        }
        let remote = sources.iter().any(|s| crate::remote::is_remote(s)) && c.heredocs.is_empty();
        if let Some(s) = sources.iter().find(|s| !add && crate::remote::is_remote(s)) {
            return Err(crate::remote::copy_error(s));
        }
        let checksum = c.checksum.as_deref().map(|v| self.x(v)).transpose()?;
        crate::remote::check_checksum(&sources, checksum.as_deref())?;
        let chown = c.chown.as_deref().map(|v| self.x(v)).transpose()?;
        let chmod = c.chmod.as_deref().map(|v| self.x(v)).transpose()?;
        // `--from` as written (the lowering refused variables there); empty is the context.
        let from = c.from.as_deref().filter(|f| !f.is_empty());
        let exclude = c
            .exclude
            .iter()
            .map(|v| self.x(v))
            .collect::<Result<Vec<_>, _>>()?;
        let flags = json!({ "chown": chown, "chmod": chmod, "exclude": exclude, "link": c.link, "parents": c.parents, "workdir": workdir });
        // --link: the layer is made on an empty filesystem, so neither it nor its cache key depends
        // on the steps before it; the stage's key after it still does.
        let parent = if c.link {
            String::new()
        } else {
            self.key.clone()
        };
        // The source root: a heredoc, remote sources, another stage, an image, or the context.
        let heredoc_dir;
        let view;
        let mut from_selection = None;
        let plain;
        let named_ctx;
        // Remote sources: fetched into a directory, selected there by `picks` (not as written).
        let mut remotes = None;
        let mut picks = None;
        let (ctx, source_key): (&BuildContext, String) = if !c.heredocs.is_empty() {
            heredoc_dir = sh
                .store
                .temp_dir("heredoc-")
                .map_err(|e| EngineError::msg(e.to_string()))?;
            let mut parts = Vec::new();
            for h in &c.heredocs {
                let body = if h.expand {
                    self.x(&h.body())?
                } else {
                    h.body()
                };
                // The name is a path inside the heredoc's own directory (BuildKit makes the file in
                // an empty filesystem): `/` and `..` never lead out of it.
                let rel = crate::context::clean_rel(&h.name);
                if rel.is_empty() {
                    return Err(EngineError::msg(format!(
                        "heredoc name {:?} names no file",
                        h.name
                    )));
                }
                let file = heredoc_dir.path().join(&rel);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| EngineError::msg(format!("heredoc {}: {e}", h.name)))?;
                }
                std::fs::write(&file, &body)
                    .map_err(|e| EngineError::msg(format!("heredoc {}: {e}", h.name)))?;
                parts.push(body);
            }
            sources = c.heredocs.iter().map(|h| h.name.clone()).collect();
            plain = BuildContext::plain(heredoc_dir.path())?;
            (
                &plain,
                sha(&parts.iter().map(String::as_str).collect::<Vec<_>>()),
            )
        } else if remote {
            let r = crate::remote::Remotes::resolve(
                sh.store,
                &sources,
                checksum.as_deref(),
                c.keep_git_dir,
                c.unpack,
            )?;
            picks = Some(r.picks());
            plain = BuildContext::plain(r.dir())?;
            let key = r.key();
            remotes = Some(r);
            (&plain, key)
        } else if let Some(crate::build::NamedContext::Dir(dir)) =
            from.and_then(|f| sh.req.named_contexts.get(f))
        {
            // A named local context is read in place, like the main context.
            named_ctx = BuildContext::open(dir, None)?;
            (&named_ctx, String::new())
        } else if let Some(from) = from {
            let (layers, key) = self.source_of(from, &format!("{name} --from"))?;
            // The selection's content digest, as another machine's build cache recorded it: a hit
            // then needs none of the source stage's files (its layers are not fetched).
            let selection = sha(&["copy-source", &key, &sources.join("\0"), &exclude.join("\0")]);
            if let Some(content) = sh.imported.contents.get(&selection).cloned() {
                let k = copy_key(&parent, name, &sources, &dest, &flags, &content);
                if self.cached(&k)?.is_some() {
                    self.remember_content(selection, content.clone());
                    let text = copy_text(name, chown.as_deref(), &sources, &dest);
                    let inputs = json!({ "instruction": text, "files": content, "parent": parent });
                    let stage_key = self.key.clone();
                    let history = format!("{text} # buildkit");
                    self.execute(&k, &text, &history, n, total, &inputs, |_, _| {
                        Err(EngineError::msg("internal error: a cached COPY ran"))
                    })?;
                    if c.link {
                        self.key = sha(&[&stage_key, &k]);
                    }
                    return Ok(());
                }
            }
            from_selection = Some(selection);
            view = View::new(sh.store, &layers)?;
            // Another stage's or an image's files keep their owners, as BuildKit copies them.
            plain = BuildContext::plain(&view.path)?.keeping_owners();
            (&plain, key)
        } else {
            let ctx = sh.context.as_ref().ok_or_else(|| {
                EngineError::msg(format!(
                    "{name} needs a build context (`lighter build -` has none)"
                ))
            })?;
            (ctx, String::new())
        };
        let mut selected: Vec<Selected> = Vec::new();
        // --parents keeps each source's path under the destination, from after a `/./` if any.
        let mut strips = Vec::new();
        for s in picks.as_ref().unwrap_or(&sources) {
            let sel = ctx.select(s)?;
            let strip = s
                .find("/./")
                .map(|i| crate::context::clean_rel(&s[..i]))
                .unwrap_or_default();
            strips.extend(sel.iter().map(|_| std::path::PathBuf::from(&strip)));
            selected.extend(sel);
        }
        let content = if source_key.is_empty() || (from.is_some() && !remote) {
            // Context files are hashed by content; for stages and images, the selection's content too.
            ctx.digest(&selected)?
        } else {
            source_key.clone()
        };
        if let Some(selection) = from_selection {
            self.remember_content(selection, content.clone());
        }
        let text = copy_text(name, chown.as_deref(), &sources, &dest);
        let key = copy_key(&parent, name, &sources, &dest, &flags, &content);
        let inputs = json!({ "instruction": text, "files": content, "parent": parent });
        let chmod_parsed = chmod.as_deref().map(fileop::parse_chmod).transpose()?;
        let history = format!("{text} # buildkit");
        let stage_key = self.key.clone();
        self.execute(&key, &text, &history, n, total, &inputs, |this, _| {
            let store = this.sh.store;
            // Owners resolve through the stage's /etc/passwd and /etc/group as they are now.
            // The filesystem the copy lands on: the stage's, or an empty one for --link. Owners
            // resolve through the stage's /etc/passwd and /etc/group as they are now.
            let base: &[LayerInfo] = if c.link { &[] } else { &this.layers };
            let lower = View::new(store, base)?;
            let owner = match chown.as_deref() {
                Some(spec) if c.link => {
                    let current = View::new(store, &this.layers)?;
                    Some(fileop::resolve_chown(&current.path, spec)?)
                }
                Some(spec) => Some(fileop::resolve_chown(&lower.path, spec)?),
                None => None,
            };
            // A git checkout or a download pinned by --checksum happens only now, on a miss.
            if let Some(r) = &remotes {
                r.fetch()?;
            }
            let req = CopyRequest {
                sources: ctx,
                selected,
                dest: &dest,
                workdir: &workdir,
                owner,
                chmod: chmod_parsed,
                exclude,
                extract_archives: match &remotes {
                    Some(r) => r.unpack(),
                    None => add && from.is_none(),
                },
                parents: (c.parents && remotes.is_none()).then_some(strips),
            };
            copyplan::copy_layer(store, &req, base, &lower.path)
        })?;
        if c.link {
            self.key = sha(&[&stage_key, &key]);
        }
        Ok(())
    }
}

/// The progress and history text of a COPY or ADD.
fn copy_text(name: &str, chown: Option<&str>, sources: &[String], dest: &str) -> String {
    format!(
        "{name} {}{} {dest}",
        chown.map(|c| format!("--chown={c} ")).unwrap_or_default(),
        sources.join(" "),
    )
}

/// The cache key of a COPY or ADD: the parent key (empty for --link), the instruction, its flags
/// and the content digest of what it copies.
fn copy_key(
    parent: &str,
    name: &str,
    sources: &[String],
    dest: &str,
    flags: &Value,
    content: &str,
) -> String {
    sha(&[
        parent,
        name,
        &sources.join("\0"),
        dest,
        &flags.to_string(),
        content,
    ])
}
