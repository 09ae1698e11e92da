//! `build`: parse, choose the stages the target needs, run independent stages concurrently (each
//! stage waits only for the stages it reads from), then export the target stage.

use crate::context::BuildContext;
use crate::EngineError;
use lighter_dockerfile::Dockerfile;
use lighter_oci::{Digest, Reference};
use lighter_store::layer::LayerInfo;
use lighter_store::Store;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// A `--secret id=..,src=..|env=..` value, resolved to its bytes by the caller.
#[derive(Clone)]
pub struct Secret {
    pub id: String,
    pub value: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}, <redacted>)", self.id)
    }
}

/// Where the result goes besides the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The image store (tags from the request).
    Image,
    /// A `docker load`-able archive.
    Docker(PathBuf),
    /// An OCI layout archive.
    Oci(PathBuf),
    /// The target stage's files in a directory.
    Local(PathBuf),
    /// The target stage's files as a tar.
    Tar(PathBuf),
}

/// Everything `build` needs.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The context directory (`None` for `build -`, which has no context).
    pub context: Option<PathBuf>,
    /// The Dockerfile's path on disk (for `<Dockerfile>.dockerignore`), if any.
    pub dockerfile_path: Option<PathBuf>,
    pub dockerfile: Dockerfile,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub tags: Vec<Reference>,
    pub labels: Vec<(String, String)>,
    pub no_cache: bool,
    pub network_none: bool,
    pub secrets: Vec<Secret>,
    pub outputs: Vec<Output>,
    /// The lighter binary (the RUN sandbox re-executes it).
    pub exe: PathBuf,
    /// `--build-context NAME=VALUE`: what `FROM NAME`, `COPY --from=NAME` and `RUN --mount from=NAME`
    /// read instead of a stage or an image of that name (a named context wins over a stage, as in
    /// BuildKit).
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// `--ssh ID[=SOCKET]`: SSH agent sockets that `RUN --mount=type=ssh` forwards, by id.
    pub ssh: BTreeMap<String, PathBuf>,
    /// `--add-host`: lines added to every RUN step's `/etc/hosts`.
    pub extra_hosts: Vec<lighter_sandbox::ExtraHost>,
    /// `--shm-size`: the size of every RUN step's `/dev/shm`.
    pub shm_size: Option<u64>,
    /// `--ulimit`: resource limits of every RUN step.
    pub ulimits: Vec<lighter_sandbox::Ulimit>,
    /// `--allow security.insecure`: `RUN --security=insecure` may run privileged.
    pub allow_insecure: bool,
    /// COPY layers are written from a plan of the copy (false: through the overlay copy, the
    /// fallback; `LIGHTER_COPY=overlay`).
    pub plan_copies: bool,
    /// Where images come from: the store, and the registry when one is configured.
    pub images: crate::images::ImageSource,
    /// `--cache-from` / `--cache-to`.
    pub cache: crate::cache::CacheOptions,
    /// The image is only pushed (`-o type=registry` without a local name): it is not recorded in
    /// the store, and layers the store does not have are not fetched (the push mounts them from
    /// the repositories in [`BuildResult::mount_from`] or finds them there).
    pub push_only: bool,
}

/// A named build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory, read in place like the main context (with its own `.dockerignore`).
    Dir(PathBuf),
    /// `docker-image://REF`: an image in the store.
    Image(String),
}

impl NamedContext {
    /// Parses the VALUE of `--build-context NAME=VALUE`.
    pub fn parse(value: &str) -> Result<NamedContext, EngineError> {
        if let Some(r) = value.strip_prefix("docker-image://") {
            return Ok(NamedContext::Image(r.to_string()));
        }
        for scheme in [
            "oci-layout://",
            "http://",
            "https://",
            "git@",
            "git://",
            "target:",
        ] {
            if value.starts_with(scheme) {
                return Err(EngineError::msg(format!("--build-context {value}: {scheme} sources are not supported yet (a local directory or docker-image://REF)")).kind(crate::ErrorKind::NotImplemented));
            }
        }
        let p = PathBuf::from(value);
        if !p.is_dir() {
            return Err(EngineError::msg(format!(
                "--build-context {value}: not a directory"
            )));
        }
        Ok(NamedContext::Dir(p))
    }
}

/// Progress, for the plain/tty/rawjson printers.
#[derive(Debug, Clone)]
pub enum Event {
    /// A step starts: its number, `[stage n/m]` label and instruction text.
    Start {
        id: usize,
        label: String,
        text: String,
    },
    /// The step's result came from the cache.
    Cached { id: usize },
    /// The step ran; `why` says why the cache missed.
    Done {
        id: usize,
        secs: f64,
        why: Option<String>,
    },
    /// A line of a RUN's output.
    Log { id: usize, line: String },
    /// A free-form message.
    Info(String),
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildResult {
    pub image_id: Digest,
    pub layers: Vec<LayerInfo>,
    pub config: lighter_oci::ImageConfig,
    pub steps: usize,
    pub cached: usize,
    /// The chain of steps that bounded the build's wall time, first step first.
    pub critical_path: Vec<crate::critical::PathStep>,
    /// For a push-only build: the manifest blob (the image is not in the store).
    pub manifest: Option<Digest>,
    /// Repositories the image's blobs may be mounted from when it is pushed (the registry caches it
    /// read and the lazily resolved bases).
    pub mount_from: Vec<Reference>,
}

pub(crate) struct Shared<'a> {
    pub store: &'a Store,
    pub req: &'a BuildRequest,
    pub context: Option<BuildContext>,
    pub progress: &'a (dyn Fn(Event) + Sync),
    pub next_id: Mutex<usize>,
    /// Records read from `--cache-from`.
    pub imported: crate::cache::Imported,
    /// Every layer step the build ran or found cached, for `--cache-to`.
    pub used: Mutex<Vec<crate::cache::Used>>,
    /// Content digests of `COPY --from` selections (stage, selection key, content), for `--cache-to`.
    pub contents: Mutex<Vec<(usize, String, String)>>,
}

impl Shared<'_> {
    pub fn step_id(&self) -> usize {
        let mut n = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    }
}

/// Images a build resolved, by reference: each resolved once, so every reader sees one image
/// and nothing is pulled twice (a second reader of a reference waits for the first one's pull,
/// readers of other references do not).
#[derive(Default)]
pub(crate) struct Resolved(
    Mutex<HashMap<String, std::sync::Arc<Mutex<Option<lighter_image::Image>>>>>,
);

impl Resolved {
    pub fn get(
        &self,
        store: &Store,
        req: &BuildRequest,
        reference: &str,
        what: &str,
    ) -> Result<lighter_image::Image, EngineError> {
        let slot = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reference.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = &*slot {
            return Ok(i.clone());
        }
        let img = req.images.resolve(store, reference, what)?;
        *slot = Some(img.clone());
        Ok(img)
    }
}

/// Base images and named contexts as lowering sees them (their ENV, WORKDIR, USER, SHELL and
/// ONBUILD triggers), from images the build resolved before lowering.
struct Bases<'a> {
    store: &'a Store,
    req: &'a BuildRequest,
    images: &'a Resolved,
}

impl Bases<'_> {
    fn resolve(&self, reference: &str, what: &str) -> Result<lighter_image::Image, EngineError> {
        self.images.get(self.store, self.req, reference, what)
    }
}

/// What lowering needs of an image config.
fn image_meta(config: &serde_json::Value) -> Result<lighter_graph::ImageMeta, String> {
    let mut config = lighter_oci::ImageConfig::from_json(config)
        .map_err(|e| format!("the image's config: {e}"))?;
    crate::config::ensure_path(&mut config);
    let c = config.config;
    Ok(lighter_graph::ImageMeta {
        env: c.env_pairs(),
        workdir: c.working_dir,
        user: c.user,
        shell: c.shell,
        onbuild: c.on_build,
    })
}

impl lighter_graph::Resolver for Bases<'_> {
    fn image(&self, reference: &str) -> Result<lighter_graph::ImageMeta, String> {
        let img = self
            .resolve(reference, &format!("FROM {reference}"))
            .map_err(|e| e.message)?;
        image_meta(&img.config)
    }

    fn named(&self, name: &str) -> Result<lighter_graph::ImageMeta, String> {
        match self.req.named_contexts.get(name) {
            Some(NamedContext::Image(r)) => {
                let what = format!("--build-context {name}=docker-image://{r}");
                let img = self.resolve(r, &what).map_err(|e| e.message)?;
                image_meta(&img.config)
            }
            _ => Ok(lighter_graph::ImageMeta::default()),
        }
    }
}

/// Lowers the request's Dockerfile to the build graph, with its base images resolved first, in
/// parallel (pulled when the store lacks them).
fn lower(
    store: &Store,
    req: &BuildRequest,
    images: &Resolved,
) -> Result<lighter_graph::Definition, EngineError> {
    let df = &req.dockerfile;
    let named: std::collections::BTreeSet<String> = req.named_contexts.keys().cloned().collect();
    let no_images = BTreeMap::<String, lighter_graph::ImageMeta>::new();
    let opts = lighter_graph::LowerOptions {
        build_args: &req.build_args,
        target: req.target.as_deref(),
        named: &named,
        resolver: &no_images,
    };
    let plan = lighter_graph::plan(df, &opts).map_err(crate::lower::graph_error)?;
    let bases = Bases { store, req, images };
    // Each reference once (by its first stage), so nothing is pulled twice at the same time.
    let mut wanted: Vec<(usize, String)> = plan.images();
    wanted.sort_by(|a, b| (&a.1, a.0).cmp(&(&b.1, b.0)));
    wanted.dedup_by(|a, b| a.1 == b.1);
    let failures: Mutex<Vec<(usize, EngineError)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (stage, r) in &wanted {
            let (bases, failures) = (&bases, &failures);
            s.spawn(move || {
                if let Err(e) = bases.resolve(r, &format!("FROM {r}")) {
                    failures
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((*stage, e));
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|f| f.0);
    if let Some((stage, e)) = failures.into_iter().next() {
        return Err(e.at(df.stages[stage].span));
    }
    let opts = lighter_graph::LowerOptions {
        resolver: &bases,
        ..opts
    };
    lighter_graph::lower(df, &opts).map_err(crate::lower::graph_error)
}

/// Builds the request's target. Nothing is tagged when any needed step fails.
pub fn build(
    store: &Store,
    req: &BuildRequest,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<BuildResult, EngineError> {
    let start = Instant::now();
    let df = &req.dockerfile;
    let target = df.target_stage(req.target.as_deref()).ok_or_else(|| {
        let names: Vec<String> = df.stages.iter().filter_map(|s| s.name.clone()).collect();
        EngineError::msg(format!(
            "target stage \"{}\" could not be found (stages: {})",
            req.target.clone().unwrap_or_default(),
            names.join(", ")
        ))
        .kind(crate::ErrorKind::Dockerfile)
    })?;
    let images = Resolved::default();
    let def = lower(store, req, &images)?;
    let root = def.stages[def.target]
        .last
        .ok_or_else(|| EngineError::msg("internal error: the target stage was not lowered"))?;
    let context = match &req.context {
        Some(dir) => Some(BuildContext::open_cached(
            dir,
            req.dockerfile_path.as_deref(),
            Some(&store.root().join("context-cache")),
        )?),
        None => None,
    };
    let imported = if req.no_cache {
        crate::cache::Imported::default()
    } else {
        crate::cache::import(store, req.images.registry.as_ref(), &req.cache.from, &|m| {
            progress(Event::Info(m))
        })
    };
    let shared = Shared {
        store,
        req,
        context,
        progress,
        next_id: Mutex::new(0),
        imported,
        used: Mutex::new(Vec::new()),
        contents: Mutex::new(Vec::new()),
    };
    let index = crate::index::StoreIndex::new(store, Some(&shared.imported.records));
    let worker = crate::step::LocalWorker::new(&shared, &def, &index, &images);
    let opts = lighter_solver::Options {
        no_cache: req.no_cache,
        parallelism: 16,
        scope: req
            .dockerfile_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "-".into()),
        ..Default::default()
    };
    let on_event = |e: lighter_solver::SolveEvent| {
        use lighter_solver::{Outcome, SolveEvent};
        let id_of = |v| {
            worker
                .ids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&v)
                .copied()
        };
        match e {
            SolveEvent::Start(v) => {
                let id = shared.step_id();
                worker
                    .ids
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(v, id);
                let vx = def.vertex(v);
                progress(Event::Start {
                    id,
                    label: worker.label(vx),
                    text: vx.text.clone(),
                });
            }
            SolveEvent::Done(v, Outcome::Cached) => {
                if let Some(id) = id_of(v) {
                    progress(Event::Cached { id });
                }
            }
            SolveEvent::Done(v, Outcome::Ran { secs, why }) => {
                if let Some(id) = id_of(v) {
                    progress(Event::Done {
                        id,
                        secs,
                        why: why.map(|w| w.to_string()),
                    });
                }
            }
            _ => {}
        }
    };
    let solved = lighter_solver::solve(&def, &[root], &worker, &index, &opts, &on_event);
    if let Some(c) = &shared.context {
        c.save_cache();
    }
    // Records a step hit in an imported cache are kept locally too: a later build here hits
    // without --cache-from once the layer is in the store.
    let served = std::mem::take(&mut *index.served.lock().unwrap_or_else(|e| e.into_inner()));
    if !served.is_empty() {
        use lighter_solver::CacheIndex;
        let batch = lighter_solver::Batch {
            records: served,
            inputs: Vec::new(),
        };
        index
            .commit(&batch)
            .map_err(|e| EngineError::msg(e.to_string()).kind(crate::ErrorKind::Store))?;
    }
    let sol = solved.map_err(|e| match e {
        lighter_solver::SolveError::Failed { error, .. } => error,
        lighter_solver::SolveError::Panicked { vertex } => EngineError::msg(format!(
            "internal error: the step at vertex v{} panicked",
            vertex.0
        ))
        .at(def.vertex(vertex).span),
        lighter_solver::SolveError::Index(e) => {
            EngineError::msg(e.to_string()).kind(crate::ErrorKind::Store)
        }
        other => EngineError::msg(other.to_string()),
    })?;
    // Steps that several stages share ran once: counted once.
    let mut counted = std::collections::BTreeSet::new();
    let (mut steps, mut cached) = (0, 0);
    for (v, o) in &sol.outcomes {
        let vx = def.vertex(*v);
        let layer_step = matches!(
            vx.op,
            lighter_graph::Op::Exec(_) | lighter_graph::Op::File(_)
        );
        if layer_step && counted.insert(vx.digest.clone()) {
            steps += 1;
            cached += usize::from(*o == lighter_solver::Outcome::Cached);
        }
    }
    let critical_path = {
        let ids = worker.ids.lock().unwrap_or_else(|e| e.into_inner()).clone();
        crate::critical::path(&def, &sol, root, &ids, &|v| {
            let vx = def.vertex(v);
            format!("{} {}", worker.label(vx), vx.text)
        })
    };
    let result = sol.outputs[&root].clone();
    let mut config = result.config.clone();
    for (k, v) in &req.labels {
        config.config.labels.insert(k.clone(), v.clone());
    }
    config.rootfs = lighter_oci::config::RootFs {
        kind: "layers".into(),
        diff_ids: result
            .layers
            .iter()
            .map(|l| l.diff_id.to_string())
            .collect(),
    };
    // The image's creation time is that of its last history entry, so a fully cached rebuild gives
    // the same image ID.
    if let Some(c) = config.history.last().and_then(|h| h.created.clone()) {
        config.created = Some(c);
    }
    let used = crate::cache::Exported {
        steps: std::mem::take(&mut *shared.used.lock().unwrap_or_else(|e| e.into_inner())),
        contents: std::mem::take(&mut *shared.contents.lock().unwrap_or_else(|e| e.into_inner())),
    };
    // The final image's stages: the target and the stages it is built FROM (`mode=min`, inline).
    let mut chain = std::collections::BTreeSet::from([target]);
    let mut at = target;
    while let lighter_graph::Base::Stage(d) = def.stages[at].base {
        if !chain.insert(d) {
            break;
        }
        at = d;
    }
    if req
        .cache
        .to
        .iter()
        .any(|t| t.location == crate::cache::Location::Inline)
    {
        config.extra.insert(
            crate::cache::INLINE_KEY.into(),
            crate::cache::inline(&used, &chain),
        );
    }
    let bytes = lighter_oci::json::to_vec(&config.to_json())
        .map_err(|e| EngineError::msg(e.to_string()))?;
    let tags: Vec<Reference> = if req.outputs.is_empty() || req.outputs.contains(&Output::Image) {
        req.tags.clone()
    } else {
        Vec::new()
    };
    // Layers that cache hits or a lazily resolved base named without fetching them come in now (the
    // image needs them), with the sizes the fetch recorded.
    let mut layers = Vec::with_capacity(result.layers.len());
    for l in &result.layers {
        if req.push_only && !store.content().exists(&l.digest) {
            layers.push(l.clone());
            continue;
        }
        store.ensure_blob(&l.digest).map_err(|e| {
            EngineError::msg(format!("layer {}: {e}", l.digest)).kind(crate::ErrorKind::Image)
        })?;
        let known = lighter_store::layer::lookup(store, &l.diff_id)
            .ok()
            .flatten()
            .filter(|k| k.digest == l.digest && l.uncompressed_size == 0);
        layers.push(known.unwrap_or_else(|| l.clone()));
    }
    let (id, manifest) = if req.push_only {
        let (id, m) = lighter_image::assemble(store, &bytes, &layers)
            .map_err(|e| EngineError::msg(e.to_string()).kind(crate::ErrorKind::Store))?;
        (id, Some(m))
    } else {
        let id = lighter_image::commit(store, &bytes, &layers, &tags)
            .map_err(|e| EngineError::msg(e.to_string()).kind(crate::ErrorKind::Store))?;
        export(store, req, &id, &layers)?;
        (id, None)
    };
    let mut mount_from: Vec<Reference> = req
        .cache
        .from
        .iter()
        .filter_map(|l| match l {
            crate::cache::Location::Registry(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    mount_from.extend(
        req.images
            .resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .filter_map(|n| Reference::parse(n).ok()),
    );
    for to in &req.cache.to {
        match crate::cache::export(store, req.images.registry.as_ref(), to, &used, &chain) {
            Ok(summary) => progress(Event::Info(summary)),
            Err(e) if to.ignore_error => progress(Event::Info(format!(
                "cache export failed (ignored): {}",
                e.message
            ))),
            Err(e) => return Err(e),
        }
    }
    if let Some(s) = shared.imported.summary() {
        progress(Event::Info(s));
    }
    if req.images.lazy {
        let base = &req.images.fetched;
        let n = base.layers.load(std::sync::atomic::Ordering::Relaxed);
        progress(Event::Info(format!(
            "base images: {n} layer{} fetched ({:.1} MB)",
            if n == 1 { "" } else { "s" },
            base.bytes.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e6
        )));
    }
    progress(Event::Info(format!(
        "built {} in {:.2}s ({steps} steps, {cached} cached)",
        id.short(),
        start.elapsed().as_secs_f64()
    )));
    Ok(BuildResult {
        image_id: id,
        layers,
        config,
        steps,
        cached,
        critical_path,
        manifest,
        mount_from,
    })
}

fn export(
    store: &Store,
    req: &BuildRequest,
    id: &Digest,
    layers: &[LayerInfo],
) -> Result<(), EngineError> {
    for out in &req.outputs {
        match out {
            Output::Image => {}
            Output::Docker(p) | Output::Oci(p) => {
                let img = lighter_image::Image::read(store, id)
                    .map_err(|e| EngineError::msg(e.to_string()))?;
                let format = if matches!(out, Output::Docker(_)) {
                    lighter_image::SaveFormat::Docker
                } else {
                    lighter_image::SaveFormat::Oci
                };
                let tmp = p.with_extension("lighter-tmp");
                let mut f = std::io::BufWriter::new(
                    std::fs::File::create(&tmp)
                        .map_err(|e| EngineError::msg(format!("{}: {e}", tmp.display())))?,
                );
                lighter_image::save(store, &[(img, req.tags.clone())], format, &mut f)
                    .map_err(|e| EngineError::msg(e.to_string()))?;
                std::io::Write::flush(&mut f).map_err(|e| EngineError::msg(e.to_string()))?;
                std::fs::rename(&tmp, p)
                    .map_err(|e| EngineError::msg(format!("{}: {e}", p.display())))?;
            }
            Output::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| EngineError::msg(format!("{}: {e}", dir.display())))?;
                flatten_into(store, layers, dir)?;
            }
            Output::Tar(p) => {
                let tmp = store
                    .temp_dir("export-")
                    .map_err(|e| EngineError::msg(e.to_string()))?;
                flatten_into(store, layers, tmp.path())?;
                let f = std::fs::File::create(p)
                    .map_err(|e| EngineError::msg(format!("{}: {e}", p.display())))?;
                let mut w = std::io::BufWriter::new(f);
                lighter_store::layer::write_tar(
                    tmp.path(),
                    lighter_store::layer::DirFormat::Plain,
                    &Default::default(),
                    &mut w,
                )
                .map_err(|e| EngineError::msg(e.to_string()))?;
            }
        }
    }
    Ok(())
}

/// Applies every layer in order onto `dir` (whiteouts delete), as `-o type=local` wants.
pub(crate) fn flatten_into(
    store: &Store,
    layers: &[LayerInfo],
    dir: &std::path::Path,
) -> Result<(), EngineError> {
    lighter_store::layer::materialize(store, layers, dir)
        .map_err(|e| EngineError::msg(e.to_string()))
}
