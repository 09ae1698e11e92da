//! A worker that records its calls and computes nothing real: a result is the list of ops that
//! made it. Tests of the solver (and of anything that drives one) run cold, warm, `--no-cache`,
//! failing and parallel builds with it, without root. Content a COPY reads comes from
//! [`FakeWorker::files`] (source name -> digest), so a test can "edit" the build context.

use crate::{CacheKey, Input, Worker};
use lighter_graph::VertexId;
use lighter_graph::{FileOp, Op, Source, Vertex};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// One call the solver made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Exec(String),
    Load(String),
}

#[derive(Default)]
pub struct FakeWorker {
    pub calls: Mutex<Vec<Call>>,
    /// Build-context files by name, with their content digests.
    pub files: Mutex<BTreeMap<String, String>>,
    /// Execs whose description contains one of these fail.
    pub fail: Mutex<BTreeSet<String>>,
    /// Records that loading treats as gone (their data was pruned).
    pub gone: Mutex<BTreeSet<String>>,
    /// How long each exec takes.
    pub delay: Duration,
    pub running: AtomicUsize,
    /// The most execs that ran at once.
    pub max_running: AtomicUsize,
}

/// A vertex in a few words: `RUN` argv, `COPY a b -> /d`, a source, a config line.
pub fn describe(v: &Vertex) -> String {
    match &v.op {
        Op::Source(Source::Scratch) => "scratch".into(),
        Op::Source(Source::Image { reference }) => format!("image {reference}"),
        Op::Source(Source::Context { name }) => {
            format!("context {}", name.as_deref().unwrap_or("."))
        }
        Op::Exec(e) => format!("RUN {}", e.args.last().cloned().unwrap_or_default()),
        Op::File(FileOp::Copy(c)) => format!("COPY {} -> {}", c.sources.join(" "), c.dest),
        Op::File(FileOp::Mkdir { path, .. }) => format!("WORKDIR {path}"),
        Op::Config { text, .. } => text.clone(),
    }
}

impl FakeWorker {
    pub fn new() -> FakeWorker {
        FakeWorker::default()
    }

    /// The calls so far, and forgets them.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn execs(calls: &[Call]) -> Vec<&str> {
        calls
            .iter()
            .filter_map(|c| match c {
                Call::Exec(s) => Some(s.as_str()),
                Call::Load(_) => None,
            })
            .collect()
    }

    fn call(&self, c: Call) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }
}

impl Worker for FakeWorker {
    type Output = String;
    type Error = String;

    fn content(
        &self,
        _id: VertexId,
        v: &Vertex,
        inputs: &[Input<'_, String>],
    ) -> Result<Vec<(String, String)>, String> {
        let Op::File(FileOp::Copy(c)) = &v.op else {
            return Ok(Vec::new());
        };
        // What a COPY reads from another step is in that step's key already.
        if !inputs
            .get(1)
            .is_some_and(|i| i.output.ends_with("] context ."))
        {
            return Ok(Vec::new());
        }
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let mut digests = Vec::new();
        for s in &c.sources {
            digests.push(
                files
                    .get(s)
                    .cloned()
                    .ok_or_else(|| format!("{s}: not found"))?,
            );
        }
        Ok(vec![("files".into(), digests.join(","))])
    }

    fn cacheable(&self, v: &Vertex) -> bool {
        matches!(v.op, Op::Exec(_) | Op::File(_))
    }

    fn load(
        &self,
        _id: VertexId,
        v: &Vertex,
        _k: &CacheKey,
        rec: &str,
        _i: &[Input<'_, String>],
    ) -> Result<Option<String>, String> {
        self.call(Call::Load(describe(v)));
        let gone = self.gone.lock().unwrap_or_else(|e| e.into_inner());
        Ok((!gone.contains(rec)).then(|| rec.to_string()))
    }

    fn exec(
        &self,
        _id: VertexId,
        v: &Vertex,
        _k: &CacheKey,
        inputs: &[Input<'_, String>],
    ) -> Result<String, String> {
        let d = describe(v);
        if !matches!(v.op, Op::Source(_) | Op::Config { .. }) {
            self.call(Call::Exec(d.clone()));
        }
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        if matches!(v.op, Op::Exec(_)) && !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        let fails = self.fail.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = fails.iter().find(|f| d.contains(f.as_str())) {
            return Err(format!("{d}: failed ({f})"));
        }
        let parents: Vec<&str> = inputs.iter().map(|s| s.output.as_str()).collect();
        Ok(format!("[{}] {d}", parents.join(" + ")))
    }

    fn record(&self, _v: &Vertex, out: &String) -> Option<String> {
        Some(out.clone())
    }
}
