//! `build`: parse, choose the stages the target needs, run independent stages concurrently (each
//! stage waits only for the stages it reads from), then export the target stage.

use crate::context::BuildContext;
use crate::lower::{global_args, needed_stages};
use crate::step::{run_stage, StageResult};
use crate::EngineError;
use lighter_dockerfile::Dockerfile;
use lighter_oci::{Digest, Reference};
use lighter_store::layer::LayerInfo;
use lighter_store::Store;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
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
                return Err(EngineError::msg(format!("--build-context {value}: {scheme} sources are not supported yet (a local directory or docker-image://REF)")));
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
    pub config: serde_json::Value,
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
    pub globals: BTreeMap<String, String>,
    pub progress: &'a (dyn Fn(Event) + Sync),
    /// Step times and waits, for the critical path.
    pub timeline: &'a crate::critical::Timeline,
    pub next_id: Mutex<usize>,
    pub results: Mutex<HashMap<usize, Result<Arc<StageResult>, String>>>,
    /// The stages this build runs: a step may only wait for one of these.
    pub scheduled: std::collections::BTreeSet<usize>,
    pub ready: Condvar,
    pub counters: Mutex<(usize, usize)>,
    /// Stage failures in the order they happened (the first is reported).
    pub errors: Mutex<Vec<EngineError>>,
    /// Cache records of the steps that ran, written together when the stages are done.
    pub pending: Mutex<Vec<(lighter_store::Table, String, String)>>,
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

    /// Waits for stage `i`'s result (it runs in another thread). A stage that was not scheduled is
    /// an error, never a wait: nothing would ever finish it.
    pub fn wait_stage(&self, i: usize) -> Result<Arc<StageResult>, EngineError> {
        if !self.scheduled.contains(&i) {
            return Err(EngineError::msg(format!(
                "internal error: stage {i} is read but was not scheduled for this build"
            )));
        }
        let mut r = self.results.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(res) = r.get(&i) {
                self.timeline.waited(i);
                return res
                    .clone()
                    .map_err(|e| EngineError::msg(format!("stage {i} failed: {e}")));
            }
            r = self.ready.wait(r).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn count(&self, cached: bool) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.0 += 1;
        if cached {
            c.1 += 1;
        }
    }
}

/// Builds the request's target. Nothing is tagged when any needed stage fails.
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
    let globals = global_args(df, &req.build_args)?;
    let order = needed_stages(df, req.target.as_deref(), &req.build_args, &req.named_contexts)?;
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
        crate::cache::import(
            store,
            req.images.registry.as_ref(),
            &req.cache.from,
            &|m| progress(Event::Info(m)),
        )
    };
    let timeline = crate::critical::Timeline::default();
    let recording = |ev: Event| {
        timeline.record(&ev);
        progress(ev)
    };
    let shared = Shared {
        store,
        req,
        context,
        globals,
        progress: &recording,
        timeline: &timeline,
        next_id: Mutex::new(0),
        results: Mutex::new(HashMap::new()),
        scheduled: order.iter().copied().collect(),
        ready: Condvar::new(),
        counters: Mutex::new((0, 0)),
        errors: Mutex::new(Vec::new()),
        pending: Mutex::new(Vec::new()),
        imported,
        used: Mutex::new(Vec::new()),
        contents: Mutex::new(Vec::new()),
    };
    // Independent stages run concurrently: one thread per needed stage, each waiting for its inputs.
    std::thread::scope(|s| {
        for &i in &order {
            let shared = &shared;
            s.spawn(move || {
                crate::critical::enter_stage(i);
                // A panic still publishes a result, so the stages waiting for this one end too.
                let r =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_stage(shared, i)))
                        .unwrap_or_else(|_| {
                            Err(EngineError::msg(format!("the build of stage {i} panicked")))
                        })
                        .map(Arc::new);
                let r2 = match &r {
                    Ok(v) => Ok(v.clone()),
                    Err(e) => Err(e.message.clone()),
                };
                let mut res = shared.results.lock().unwrap_or_else(|e| e.into_inner());
                res.insert(i, r2);
                shared.ready.notify_all();
                drop(res);
                if let Err(e) = r {
                    shared
                        .errors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(e);
                }
            });
        }
    });
    if let Some(c) = &shared.context {
        c.save_cache();
    }
    // Steps that completed are cached even when another step failed.
    let pending = std::mem::take(&mut *shared.pending.lock().unwrap_or_else(|e| e.into_inner()));
    if !pending.is_empty() {
        store
            .meta()
            .update(|tx| {
                for (table, k, v) in &pending {
                    tx.put(*table, k, v)?;
                }
                Ok(())
            })
            .map_err(|e| EngineError::msg(format!("write build cache index: {e}")))?;
    }
    // Report the first real failure, not a stage that failed because its input stage did.
    let mut errors = std::mem::take(&mut *shared.errors.lock().unwrap_or_else(|e| e.into_inner()));
    if !errors.is_empty() {
        let i = errors
            .iter()
            .position(|e| !e.message.starts_with("stage "))
            .unwrap_or(0);
        return Err(errors.swap_remove(i));
    }
    let result = shared.wait_stage(target)?;
    let mut config = result.config.clone();
    if !req.labels.is_empty() {
        let labels = config["config"]
            .as_object_mut()
            .map(|c| c.entry("Labels").or_insert_with(|| serde_json::json!({})));
        if let Some(l) = labels {
            for (k, v) in &req.labels {
                l[k] = serde_json::json!(v);
            }
        }
    }
    config["rootfs"] = serde_json::json!({ "type": "layers", "diff_ids": result.layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>() });
    // The image's creation time is that of its last history entry, so a fully cached rebuild gives the
    // same image ID.
    let created = config["history"]
        .as_array()
        .and_then(|h| h.last())
        .and_then(|h| h.get("created"))
        .cloned();
    if let Some(c) = created {
        config["created"] = c;
    }
    // Go writes map fields with their keys sorted, so BuildKit's config has them that way.
    for field in ["ExposedPorts", "Volumes", "Labels"] {
        if let Some(serde_json::Value::Object(m)) = config["config"].get_mut(field) {
            m.sort_keys();
        }
    }
    let used = crate::cache::Exported {
        steps: std::mem::take(&mut *shared.used.lock().unwrap_or_else(|e| e.into_inner())),
        contents: std::mem::take(&mut *shared.contents.lock().unwrap_or_else(|e| e.into_inner())),
    };
    // The final image's stages: the target and the stages it is built FROM (`mode=min`, inline).
    let mut chain = std::collections::BTreeSet::from([target]);
    let mut at = target;
    while let Ok(base) = crate::lower::base_name(df, at, &shared.globals) {
        match df.stage_ref(&base, at) {
            Some(d) if !req.named_contexts.contains_key(&base) && chain.insert(d) => at = d,
            _ => break,
        }
    }
    if req
        .cache
        .to
        .iter()
        .any(|t| t.location == crate::cache::Location::Inline)
    {
        config[crate::cache::INLINE_KEY] = crate::cache::inline(&used, &chain);
    }
    let bytes = lighter_oci::json::to_vec(&config).map_err(|e| EngineError::msg(e.to_string()))?;
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
            .map_err(|e| EngineError::msg(e.to_string()))?;
        (id, Some(m))
    } else {
        let id = lighter_image::commit(store, &bytes, &layers, &tags)
            .map_err(|e| EngineError::msg(e.to_string()))?;
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
            Err(e) if to.ignore_error => {
                progress(Event::Info(format!("cache export failed (ignored): {}", e.message)))
            }
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
    let (steps, cached) = *shared.counters.lock().unwrap_or_else(|e| e.into_inner());
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
        critical_path: timeline.critical_path(target),
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
