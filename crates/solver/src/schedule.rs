//! Scheduling: the vertices a build needs are those its roots reach through their inputs; each
//! runs on a pool of threads once all its inputs are done. Vertices with one digest are the same
//! work and run once. A vertex's key comes from its op, its inputs' keys and the content the
//! worker says it reads; with a record in the index the worker loads the result instead of
//! running the vertex. After a failure no new vertex starts and the vertices that were waiting are
//! cancelled with the failure as their cause. Inputs always come before a vertex in a
//! [`Definition`] (lowering adds them first), so the graph has no cycles and every wait ends: a
//! definition that breaks that is refused before anything runs.

use crate::{explain, Batch, CacheIndex, CacheKey, IndexError, Inputs, Why};
use lighter_graph::{Definition, Vertex, VertexId};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// An input of a vertex: the result of the vertex it reads, and that result's key.
pub struct Input<'a, O> {
    pub output: &'a O,
    pub key: &'a CacheKey,
}

/// How an input enters a vertex's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputUse {
    /// Its key is part of the vertex's key.
    Keyed,
    /// Not part of the key the result is looked up by (a `COPY --link` layer does not depend on
    /// what it lands on), but part of the key passed on to the vertices that read this one.
    Chained,
    /// Only through the content the worker reads from it ([`Worker::content`]): a COPY from another
    /// stage is keyed by the files it selects, so a rebuilt stage with the same files still hits.
    Content,
}

/// What runs vertices.
pub trait Worker: Sync {
    /// A vertex's result (a filesystem state and an image config, for the engine).
    type Output: Clone + Send + Sync;
    type Error: std::fmt::Display + Send;

    /// Named values the vertex reads beyond its inputs' keys, known once its inputs are done: the
    /// digest of the files a COPY selects, a base image's ID, a cache mount's identity.
    fn content(
        &self,
        _id: VertexId,
        _v: &Vertex,
        _inputs: &[Input<'_, Self::Output>],
    ) -> Result<Vec<(String, String)>, Self::Error> {
        Ok(Vec::new())
    }

    /// How input `i` of `v` enters its key.
    fn input_use(&self, _v: &Vertex, _i: usize) -> InputUse {
        InputUse::Keyed
    }

    /// Whether results of this vertex are looked up in and recorded to the index (a source or a
    /// config change is cheaper to redo than to look up).
    fn cacheable(&self, _v: &Vertex) -> bool {
        true
    }

    /// Rebuilds a result from its record; `Ok(None)` when the record can no longer be used (its
    /// data is gone), and the vertex runs instead.
    fn load(
        &self,
        id: VertexId,
        v: &Vertex,
        key: &CacheKey,
        record: &str,
        inputs: &[Input<'_, Self::Output>],
    ) -> Result<Option<Self::Output>, Self::Error>;

    /// Runs the vertex.
    fn exec(
        &self,
        id: VertexId,
        v: &Vertex,
        key: &CacheKey,
        inputs: &[Input<'_, Self::Output>],
    ) -> Result<Self::Output, Self::Error>;

    /// The record a result is cached as; `None` keeps it out of the index.
    fn record(&self, v: &Vertex, out: &Self::Output) -> Option<String>;
}

/// How a solve runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Look nothing up (results are still recorded).
    pub no_cache: bool,
    /// Stages whose vertices are not looked up (`--no-cache-filter`).
    pub no_cache_stages: BTreeSet<usize>,
    /// Threads running vertices at once.
    pub parallelism: usize,
    /// Prefix of the positions explanations are recorded at (the Dockerfile's path).
    pub scope: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            no_cache: false,
            no_cache_stages: BTreeSet::new(),
            parallelism: 4,
            scope: "-".into(),
        }
    }
}

/// How a vertex came to its result.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Loaded from a cache record.
    Cached,
    /// Ran, with the reason when a previous build ran at its position.
    Ran { secs: f64, why: Option<Why> },
}

/// Progress, as vertices start and end.
#[derive(Debug, Clone, PartialEq)]
pub enum SolveEvent {
    Start(VertexId),
    Done(VertexId, Outcome),
    Failed(VertexId),
    /// Not run because `by` failed.
    Cancelled {
        vertex: VertexId,
        by: VertexId,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SolveError<E: std::fmt::Display> {
    #[error("{error}")]
    Failed { vertex: VertexId, error: E },
    #[error("internal error: the step at vertex v{} panicked", .vertex.0)]
    Panicked { vertex: VertexId },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("internal error: invalid build graph: {0}")]
    Invalid(String),
}

/// A finished solve: every needed vertex's result and key (duplicates under each of their ids).
#[derive(Debug)]
pub struct Solution<O> {
    pub outputs: HashMap<VertexId, O>,
    pub keys: HashMap<VertexId, CacheKey>,
    pub outcomes: HashMap<VertexId, Outcome>,
    /// When each vertex started and ended (its representative's times for a duplicate).
    pub times: HashMap<VertexId, (Instant, Instant)>,
}

impl<O> Solution<O> {
    /// The chain of vertices that bounded the wall time up to `root`, first first: from `root`,
    /// each step goes to the input that finished last (the one it waited for).
    pub fn critical_path(&self, def: &Definition, root: VertexId) -> Vec<VertexId> {
        let mut path = vec![root];
        let mut at = root;
        // Inputs come before their readers, so the walk ends; the bound is a guard.
        for _ in 0..def.vertices.len() {
            let last = def
                .vertex(at)
                .inputs
                .iter()
                .filter_map(|i| self.times.get(i).map(|t| (*i, t.1)))
                .max_by_key(|(_, end)| *end);
            let Some((i, _)) = last else { break };
            path.push(i);
            at = i;
        }
        path.reverse();
        path
    }
}

struct State<O> {
    /// Inputs not yet done, per representative vertex.
    waiting: HashMap<VertexId, usize>,
    ready: VecDeque<VertexId>,
    done: HashMap<VertexId, (O, CacheKey)>,
    outcomes: HashMap<VertexId, Outcome>,
    times: HashMap<VertexId, (Instant, Instant)>,
    running: usize,
    failure: Option<VertexId>,
    /// A vertex whose worker panicked (its message went to stderr).
    panicked: Option<VertexId>,
    batch: Batch,
}

/// Runs what `roots` need. Records of the vertices that completed are committed even when
/// another failed (a retry starts from them).
pub fn solve<W: Worker>(
    def: &Definition,
    roots: &[VertexId],
    worker: &W,
    index: &dyn CacheIndex,
    opts: &Options,
    progress: &(dyn Fn(SolveEvent) + Sync),
) -> Result<Solution<W::Output>, SolveError<W::Error>> {
    let (rep, needed) = needed(def, roots).map_err(SolveError::Invalid)?;
    let mut dependents: HashMap<VertexId, Vec<VertexId>> = HashMap::new();
    let mut waiting = HashMap::new();
    for &v in &needed {
        let ins: BTreeSet<VertexId> = def.vertex(v).inputs.iter().map(|i| rep[i]).collect();
        for i in &ins {
            dependents.entry(*i).or_default().push(v);
        }
        waiting.insert(v, ins.len());
    }
    let ready = needed.iter().copied().filter(|v| waiting[v] == 0).collect();
    let state = Mutex::new(State {
        waiting,
        ready,
        done: HashMap::new(),
        outcomes: HashMap::new(),
        times: HashMap::new(),
        running: 0,
        failure: None,
        panicked: None,
        batch: Batch::default(),
    });
    let wake = Condvar::new();
    let errors: Mutex<Vec<(VertexId, W::Error)>> = Mutex::new(Vec::new());
    let ordinals = ordinals(def);
    let run = Run {
        def,
        worker,
        index,
        opts,
        progress,
        rep: &rep,
        ordinals: &ordinals,
    };
    let threads = opts.parallelism.clamp(1, needed.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| run.pool_thread(&state, &wake, &dependents, &errors));
        }
    });
    let st = state.into_inner().unwrap_or_else(|e| e.into_inner());
    if !st.batch.is_empty() {
        index.commit(&st.batch)?;
    }
    let first = errors
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .next();
    if let Some(by) = st.failure {
        for v in needed
            .iter()
            .filter(|v| !st.done.contains_key(v) && **v != by)
        {
            progress(SolveEvent::Cancelled { vertex: *v, by });
        }
        return Err(match first {
            Some((vertex, error)) if st.panicked != Some(by) => {
                SolveError::Failed { vertex, error }
            }
            _ => SolveError::Panicked { vertex: by },
        });
    }
    if st.done.len() != needed.len() {
        return Err(SolveError::Invalid(format!(
            "{} of {} vertices could not be scheduled",
            needed.len() - st.done.len(),
            needed.len()
        )));
    }
    let mut sol = Solution {
        outputs: HashMap::new(),
        keys: HashMap::new(),
        outcomes: HashMap::new(),
        times: HashMap::new(),
    };
    for (v, r) in &rep {
        if let Some((o, k)) = st.done.get(r) {
            sol.outputs.insert(*v, o.clone());
            sol.keys.insert(*v, k.clone());
        }
        if let Some(o) = st.outcomes.get(r) {
            sol.outcomes.insert(*v, o.clone());
        }
        if let Some(t) = st.times.get(r) {
            sol.times.insert(*v, *t);
        }
    }
    Ok(sol)
}

/// Each vertex's representative (the first vertex with its digest).
type Reps = HashMap<VertexId, VertexId>;

/// The representatives and the representatives the roots reach.
fn needed(def: &Definition, roots: &[VertexId]) -> Result<(Reps, Vec<VertexId>), String> {
    let mut by_digest = HashMap::new();
    let mut rep = HashMap::new();
    for (i, v) in def.vertices.iter().enumerate() {
        if let Some(bad) = v.inputs.iter().find(|x| x.0 >= i) {
            return Err(format!(
                "vertex v{i} reads v{}, which comes after it",
                bad.0
            ));
        }
        let r = *by_digest.entry(v.digest.clone()).or_insert(VertexId(i));
        rep.insert(VertexId(i), r);
    }
    let mut seen = BTreeSet::new();
    let mut stack = Vec::new();
    for r in roots {
        stack.push(
            *rep.get(r)
                .ok_or_else(|| format!("root v{} is not in the graph", r.0))?,
        );
    }
    while let Some(v) = stack.pop() {
        if seen.insert(v) {
            stack.extend(def.vertex(v).inputs.iter().map(|i| rep[i]));
        }
    }
    Ok((rep, seen.into_iter().collect()))
}

/// Each vertex's position in its stage (1 for the stage's first vertex), for explanations.
fn ordinals(def: &Definition) -> Vec<usize> {
    let mut count: HashMap<usize, usize> = HashMap::new();
    def.vertices
        .iter()
        .map(|v| {
            let n = count.entry(v.stage).or_default();
            *n += 1;
            *n
        })
        .collect()
}

struct Run<'a, W: Worker> {
    def: &'a Definition,
    worker: &'a W,
    index: &'a dyn CacheIndex,
    opts: &'a Options,
    progress: &'a (dyn Fn(SolveEvent) + Sync),
    rep: &'a Reps,
    ordinals: &'a [usize],
}

/// What one vertex produced, for the shared state.
struct Finished<O> {
    output: O,
    key: CacheKey,
    outcome: Outcome,
    record: Option<(CacheKey, String)>,
    inputs: Option<(String, Inputs)>,
}

impl<O> Finished<O> {
    /// A result that writes nothing to the index (loaded from it, or not cacheable).
    fn unrecorded(output: O, key: CacheKey, outcome: Outcome) -> Finished<O> {
        Finished {
            output,
            key,
            outcome,
            record: None,
            inputs: None,
        }
    }
}

impl<W: Worker> Run<'_, W> {
    fn pool_thread(
        &self,
        state: &Mutex<State<W::Output>>,
        wake: &Condvar,
        dependents: &HashMap<VertexId, Vec<VertexId>>,
        errors: &Mutex<Vec<(VertexId, W::Error)>>,
    ) {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if st.failure.is_some() {
                break;
            }
            let Some(v) = st.ready.pop_front() else {
                if st.running == 0 {
                    break;
                }
                st = wake.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            st.running += 1;
            let inputs: Vec<W::Output> = self
                .def
                .vertex(v)
                .inputs
                .iter()
                .map(|i| st.done[&self.rep[i]].0.clone())
                .collect();
            let keys: Vec<CacheKey> = self
                .def
                .vertex(v)
                .inputs
                .iter()
                .map(|i| st.done[&self.rep[i]].1.clone())
                .collect();
            drop(st);
            let started = Instant::now();
            // A panicking worker fails its vertex instead of leaving the others waiting.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.vertex(v, &inputs, &keys)
            }));
            st = state.lock().unwrap_or_else(|e| e.into_inner());
            st.running -= 1;
            st.times.insert(v, (started, Instant::now()));
            match r {
                Ok(Ok(f)) => {
                    if let Some(r) = f.record {
                        st.batch.records.push(r);
                    }
                    if let Some(i) = f.inputs {
                        st.batch.inputs.push(i);
                    }
                    (self.progress)(SolveEvent::Done(v, f.outcome.clone()));
                    st.outcomes.insert(v, f.outcome);
                    st.done.insert(v, (f.output, f.key));
                    for d in dependents.get(&v).into_iter().flatten() {
                        let n = st.waiting.get_mut(d).expect("every dependent waits");
                        *n -= 1;
                        if *n == 0 {
                            st.ready.push_back(*d);
                        }
                    }
                }
                Ok(Err(e)) => {
                    (self.progress)(SolveEvent::Failed(v));
                    st.failure.get_or_insert(v);
                    errors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((v, e));
                }
                Err(_) => {
                    (self.progress)(SolveEvent::Failed(v));
                    st.failure.get_or_insert(v);
                    st.panicked.get_or_insert(v);
                }
            }
            wake.notify_all();
        }
        wake.notify_all();
    }

    fn vertex(
        &self,
        v: VertexId,
        inputs: &[W::Output],
        keys: &[CacheKey],
    ) -> Result<Finished<W::Output>, W::Error> {
        let vx = self.def.vertex(v);
        let ins: Vec<Input<'_, W::Output>> = inputs
            .iter()
            .zip(keys)
            .map(|(output, key)| Input { output, key })
            .collect();
        let content = self.worker.content(v, vx, &ins)?;
        let (key, passed) = self.keys(vx, keys, &content);
        if !self.worker.cacheable(vx) {
            let output = self.worker.exec(v, vx, &key, &ins)?;
            let outcome = Outcome::Ran {
                secs: 0.0,
                why: None,
            };
            return Ok(Finished::unrecorded(output, passed, outcome));
        }
        (self.progress)(SolveEvent::Start(v));
        let no_cache = self.opts.no_cache || self.opts.no_cache_stages.contains(&vx.stage);
        let mut unusable = false;
        if !no_cache {
            // An index that cannot be read is a miss, not a failed build.
            if let Ok(Some(rec)) = self.index.get(&key) {
                match self.worker.load(v, vx, &key, &rec, &ins)? {
                    Some(output) => {
                        return Ok(Finished::unrecorded(output, passed, Outcome::Cached));
                    }
                    None => unusable = true,
                }
            }
        }
        let position = format!("{}#s{}#{}", self.opts.scope, vx.stage, self.ordinals[v.0]);
        let mut now = Inputs::new();
        now.insert("instruction".into(), vx.op_digest.to_string());
        for (n, k) in keys.iter().enumerate() {
            let name = if n == 0 {
                "parent".to_string()
            } else {
                format!("from{n}")
            };
            now.insert(name, k.to_string());
        }
        for (k, val) in &content {
            now.insert(k.clone(), val.clone());
        }
        let prev = self.index.last_inputs(&position).ok().flatten();
        let why = if unusable {
            Some(Why::RecordUnusable)
        } else {
            explain(prev.as_ref(), &now, no_cache)
        };
        let t = Instant::now();
        let output = self.worker.exec(v, vx, &key, &ins)?;
        let record = self.worker.record(vx, &output).map(|r| (key, r));
        let outcome = Outcome::Ran {
            secs: t.elapsed().as_secs_f64(),
            why,
        };
        Ok(Finished {
            output,
            key: passed,
            outcome,
            record,
            inputs: Some((position, now)),
        })
    }

    fn keys(
        &self,
        vx: &Vertex,
        keys: &[CacheKey],
        content: &[(String, String)],
    ) -> (CacheKey, CacheKey) {
        let uses: Vec<InputUse> = (0..keys.len())
            .map(|i| self.worker.input_use(vx, i))
            .collect();
        vertex_keys(&vx.op_digest, keys, &uses, content)
    }
}

/// The key a vertex is looked up by, and the key passed on to its readers: its op digest over the
/// keys of the inputs `uses` says are keyed and its content; inputs that are [`InputUse::Chained`]
/// enter only the passed key. (A worker that must know a key before the solver asks, to check an
/// imported record, computes it with this.)
pub fn vertex_keys(
    op: &lighter_oci::Digest,
    keys: &[CacheKey],
    uses: &[InputUse],
    content: &[(String, String)],
) -> (CacheKey, CacheKey) {
    let none = CacheKey::of_parts(&["not keyed"]);
    let keyed: Vec<&CacheKey> = keys
        .iter()
        .zip(uses)
        .map(|(k, u)| if *u == InputUse::Keyed { k } else { &none })
        .collect();
    let key = CacheKey::compute(op, &keyed, content);
    let chained: Vec<&str> = keys
        .iter()
        .zip(uses)
        .filter(|(_, u)| **u == InputUse::Chained)
        .map(|(k, _)| k.as_str())
        .collect();
    if chained.is_empty() {
        return (key.clone(), key);
    }
    let mut parts = vec!["chained", key.as_str()];
    parts.extend(chained);
    let passed = CacheKey::of_parts(&parts);
    (key, passed)
}
