//! The solver over real lowered Dockerfiles with the recording fake worker: cold, warm,
//! `--no-cache`, edited context, shared work, parallelism, failures and malformed graphs.

use lighter_graph::{lower, Definition, LowerOptions, VertexId};
use lighter_solver::fake::{Call, FakeWorker};
use lighter_solver::{solve, MemoryIndex, Options, Outcome, SolveError, SolveEvent, Why};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn graph(df: &str) -> Definition {
    let df = lighter_dockerfile::parse(df).unwrap();
    let args = BTreeMap::new();
    let named = BTreeSet::new();
    let images: BTreeMap<String, lighter_graph::ImageMeta> = BTreeMap::new();
    let opts = LowerOptions {
        build_args: &args,
        target: None,
        named: &named,
        resolver: &images,
    };
    lower(&df, &opts).unwrap()
}

fn root(d: &Definition) -> VertexId {
    d.stages[d.target].last.unwrap()
}

struct Run {
    result: Result<lighter_solver::Solution<String>, SolveError<String>>,
    events: Vec<SolveEvent>,
    calls: Vec<Call>,
}

fn run(d: &Definition, w: &FakeWorker, ix: &MemoryIndex, opts: &Options) -> Run {
    let events = Mutex::new(Vec::new());
    let result = solve(d, &[root(d)], w, ix, opts, &|e| {
        events.lock().unwrap().push(e)
    });
    Run {
        result,
        events: events.into_inner().unwrap(),
        calls: w.take_calls(),
    }
}

const TWO_STAGES: &str = "FROM busybox AS builder\nCOPY main.go /src/\nRUN go build -o /app /src\n\
FROM scratch\nCOPY --from=builder /app /app\nCMD [\"/app\"]\n";

fn worker() -> FakeWorker {
    let w = FakeWorker::new();
    w.files
        .lock()
        .unwrap()
        .insert("main.go".into(), "sha256:aaa".into());
    w
}

fn whys(r: &Run, d: &Definition) -> Vec<(String, Option<Why>)> {
    let sol = r.result.as_ref().unwrap();
    let mut out: Vec<(usize, String, Option<Why>)> = sol
        .outcomes
        .iter()
        .filter_map(|(v, o)| match o {
            Outcome::Ran { why, .. }
                if matches!(
                    d.vertex(*v).op,
                    lighter_graph::Op::Exec(_) | lighter_graph::Op::File(_)
                ) =>
            {
                Some((
                    v.0,
                    lighter_solver::fake::describe(d.vertex(*v)),
                    why.clone(),
                ))
            }
            _ => None,
        })
        .collect();
    out.sort_by_key(|x| x.0);
    out.into_iter().map(|(_, d, w)| (d, w)).collect()
}

#[test]
fn cold_then_warm_then_no_cache() {
    let d = graph(TWO_STAGES);
    let (w, ix) = (worker(), MemoryIndex::new());
    let cold = run(&d, &w, &ix, &Options::default());
    assert!(cold.result.is_ok());
    assert_eq!(
        FakeWorker::execs(&cold.calls),
        [
            "COPY main.go -> /src/",
            "RUN go build -o /app /src",
            "COPY /app -> /app"
        ]
    );
    // A first build explains nothing.
    assert!(whys(&cold, &d).iter().all(|(_, w)| w.is_none()));
    let out = cold.result.unwrap().outputs[&root(&d)].clone();
    assert!(out.contains("RUN go build"), "{out}");

    let warm = run(&d, &w, &ix, &Options::default());
    assert!(
        FakeWorker::execs(&warm.calls).is_empty(),
        "{:?}",
        warm.calls
    );
    let sol = warm.result.unwrap();
    assert_eq!(
        sol.outputs[&root(&d)],
        out,
        "a warm build gives the same result"
    );
    assert!(
        sol.outcomes
            .values()
            .filter(|o| **o == Outcome::Cached)
            .count()
            == 3
    );

    let opts = Options {
        no_cache: true,
        ..Options::default()
    };
    let fresh = run(&d, &w, &ix, &opts);
    assert_eq!(FakeWorker::execs(&fresh.calls).len(), 3);
    assert!(whys(&fresh, &d)
        .iter()
        .all(|(_, w)| *w == Some(Why::NoCache)));
    assert!(
        fresh.calls.iter().all(|c| matches!(c, Call::Exec(_))),
        "--no-cache loads nothing"
    );
}

#[test]
fn an_edited_file_reruns_what_reads_it_and_says_why() {
    let d = graph(TWO_STAGES);
    let (w, ix) = (worker(), MemoryIndex::new());
    assert!(run(&d, &w, &ix, &Options::default()).result.is_ok());
    w.files
        .lock()
        .unwrap()
        .insert("main.go".into(), "sha256:bbb".into());
    let r = run(&d, &w, &ix, &Options::default());
    assert_eq!(FakeWorker::execs(&r.calls).len(), 3);
    assert_eq!(
        whys(&r, &d),
        [
            (
                "COPY main.go -> /src/".to_string(),
                Some(Why::Changed(vec!["files".into()]))
            ),
            (
                "RUN go build -o /app /src".to_string(),
                Some(Why::EarlierStep)
            ),
            ("COPY /app -> /app".to_string(), Some(Why::EarlierStep)),
        ]
    );
    // Back to the first content: everything is in the cache again.
    w.files
        .lock()
        .unwrap()
        .insert("main.go".into(), "sha256:aaa".into());
    assert!(FakeWorker::execs(&run(&d, &w, &ix, &Options::default()).calls).is_empty());
}

#[test]
fn identical_vertices_run_once_and_unused_stages_never() {
    let d = graph(
        "FROM busybox AS a\nRUN make\nFROM busybox AS b\nRUN make\nFROM busybox AS unused\nRUN sleep 100\n\
         FROM scratch\nCOPY --from=a /out /a\nCOPY --from=b /out /b\n",
    );
    let (w, ix) = (worker(), MemoryIndex::new());
    let r = run(&d, &w, &ix, &Options::default());
    let sol = r.result.unwrap();
    assert_eq!(
        FakeWorker::execs(&r.calls),
        ["RUN make", "COPY /out -> /a", "COPY /out -> /b"]
    );
    // Both stages' results are there, under each vertex id.
    let a = d.stages[0].last.unwrap();
    let b = d.stages[1].last.unwrap();
    assert_eq!(sol.outputs[&a], sol.outputs[&b]);
    assert_eq!(sol.keys[&a], sol.keys[&b]);
}

#[test]
fn independent_stages_run_in_parallel() {
    let d = graph(
        "FROM busybox AS a\nRUN one\nFROM busybox AS b\nRUN two\nFROM busybox AS c\nRUN three\n\
         FROM scratch\nCOPY --from=a /x /a\nCOPY --from=b /x /b\nCOPY --from=c /x /c\n",
    );
    let w = FakeWorker {
        delay: Duration::from_millis(300),
        ..FakeWorker::default()
    };
    let ix = MemoryIndex::new();
    let t = Instant::now();
    let r = run(
        &d,
        &w,
        &ix,
        &Options {
            parallelism: 3,
            ..Options::default()
        },
    );
    assert!(r.result.is_ok());
    assert_eq!(w.max_running.load(Ordering::SeqCst), 3);
    assert!(
        t.elapsed() < Duration::from_millis(850),
        "{:?}",
        t.elapsed()
    );
    // One thread: the same result, one step at a time.
    let w1 = FakeWorker {
        delay: Duration::from_millis(10),
        ..FakeWorker::default()
    };
    let r1 = run(
        &d,
        &w1,
        &MemoryIndex::new(),
        &Options {
            parallelism: 1,
            ..Options::default()
        },
    );
    assert_eq!(w1.max_running.load(Ordering::SeqCst), 1);
    assert_eq!(
        r1.result.unwrap().outputs[&root(&d)],
        r.result.unwrap().outputs[&root(&d)]
    );
}

#[test]
fn a_failure_cancels_its_dependents_and_keeps_what_completed() {
    let d = graph(
        "FROM busybox AS a\nRUN ok\nRUN broken\nRUN after\nFROM busybox AS b\nRUN fine\n\
         FROM scratch\nCOPY --from=b /x /b\nCOPY --from=a /x /a\n",
    );
    let (w, ix) = (worker(), MemoryIndex::new());
    w.fail.lock().unwrap().insert("broken".into());
    let r = run(
        &d,
        &w,
        &ix,
        &Options {
            parallelism: 1,
            ..Options::default()
        },
    );
    let Err(SolveError::Failed { vertex, error }) = &r.result else {
        panic!(
            "expected a failure, got {:?}",
            r.result.as_ref().map(|_| ())
        );
    };
    assert_eq!(d.vertex(*vertex).span.start_line, 3);
    assert!(error.contains("broken"), "{error}");
    let execs = FakeWorker::execs(&r.calls);
    assert!(!execs.contains(&"RUN after"), "{execs:?}");
    assert!(!execs.iter().any(|e| e.starts_with("COPY")), "{execs:?}");
    let cancelled: Vec<VertexId> = r
        .events
        .iter()
        .filter_map(|e| match e {
            SolveEvent::Cancelled { vertex: v, by } if by == vertex => Some(*v),
            _ => None,
        })
        .collect();
    assert!(cancelled.contains(&root(&d)), "{:?}", r.events);
    // The retry starts from what completed: `RUN ok` is not run again.
    w.fail.lock().unwrap().clear();
    let again = run(&d, &w, &ix, &Options::default());
    assert!(again.result.is_ok());
    let execs = FakeWorker::execs(&again.calls);
    assert!(!execs.contains(&"RUN ok"), "{execs:?}");
    assert!(
        execs.contains(&"RUN broken") && execs.contains(&"RUN after"),
        "{execs:?}"
    );
}

#[test]
fn a_record_whose_data_is_gone_reruns_the_step() {
    let d = graph("FROM busybox\nRUN build\n");
    let (w, ix) = (worker(), MemoryIndex::new());
    let out = run(&d, &w, &ix, &Options::default())
        .result
        .unwrap()
        .outputs[&root(&d)]
        .clone();
    w.gone.lock().unwrap().insert(out);
    let r = run(&d, &w, &ix, &Options::default());
    assert_eq!(FakeWorker::execs(&r.calls), ["RUN build"]);
    assert_eq!(
        whys(&r, &d),
        [("RUN build".to_string(), Some(Why::RecordUnusable))]
    );
}

#[test]
fn a_panicking_step_fails_the_build_instead_of_hanging() {
    struct Panics;
    impl lighter_solver::Worker for Panics {
        type Output = ();
        type Error = String;
        fn load(
            &self,
            _: VertexId,
            _: &lighter_graph::Vertex,
            _: &lighter_solver::CacheKey,
            _: &str,
            _: &[lighter_solver::Input<'_, ()>],
        ) -> Result<Option<()>, String> {
            Ok(None)
        }
        fn exec(
            &self,
            _: VertexId,
            v: &lighter_graph::Vertex,
            _: &lighter_solver::CacheKey,
            _: &[lighter_solver::Input<'_, ()>],
        ) -> Result<(), String> {
            if matches!(v.op, lighter_graph::Op::Exec(_)) {
                panic!("worker bug");
            }
            Ok(())
        }
        fn record(&self, _: &lighter_graph::Vertex, _: &()) -> Option<String> {
            None
        }
    }
    let d = graph("FROM busybox\nRUN x\nRUN y\n");
    let r = solve(
        &d,
        &[root(&d)],
        &Panics,
        &MemoryIndex::new(),
        &Options::default(),
        &|_| {},
    );
    assert!(
        matches!(r, Err(SolveError::Panicked { .. })),
        "{:?}",
        r.map(|_| ())
    );
}

#[test]
fn a_malformed_graph_is_refused_before_anything_runs() {
    let mut d = graph("FROM busybox\nRUN x\n");
    d.vertices[0].inputs.push(VertexId(1));
    let (w, ix) = (worker(), MemoryIndex::new());
    let r = run(&d, &w, &ix, &Options::default());
    assert!(matches!(r.result, Err(SolveError::Invalid(_))));
    assert!(r.calls.is_empty());
}

#[test]
fn the_critical_path_follows_the_input_that_finished_last() {
    let d = graph(
        "FROM busybox AS slow\nRUN slow\nFROM busybox AS quick\nRUN quick\n\
         FROM scratch\nCOPY --from=quick /x /q\nCOPY --from=slow /x /s\n",
    );
    struct Timed(FakeWorker);
    impl lighter_solver::Worker for Timed {
        type Output = String;
        type Error = String;
        fn load(
            &self,
            i: VertexId,
            v: &lighter_graph::Vertex,
            k: &lighter_solver::CacheKey,
            r: &str,
            ins: &[lighter_solver::Input<'_, String>],
        ) -> Result<Option<String>, String> {
            self.0.load(i, v, k, r, ins)
        }
        fn exec(
            &self,
            i: VertexId,
            v: &lighter_graph::Vertex,
            k: &lighter_solver::CacheKey,
            ins: &[lighter_solver::Input<'_, String>],
        ) -> Result<String, String> {
            if v.text.contains("slow") {
                std::thread::sleep(Duration::from_millis(200));
            }
            self.0.exec(i, v, k, ins)
        }
        fn record(&self, v: &lighter_graph::Vertex, o: &String) -> Option<String> {
            self.0.record(v, o)
        }
    }
    let w = Timed(worker());
    let sol = solve(
        &d,
        &[root(&d)],
        &w,
        &MemoryIndex::new(),
        &Options::default(),
        &|_| {},
    )
    .unwrap();
    let path: Vec<String> = sol
        .critical_path(&d, root(&d))
        .into_iter()
        .map(|v| d.vertex(v).text.clone())
        .filter(|t| !t.is_empty())
        .collect();
    // The quick stage and the first COPY were done long before `RUN slow`: they are off the path.
    assert_eq!(path, ["RUN slow", "COPY /x /s"], "{path:?}");
}
