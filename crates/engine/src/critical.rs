//! The critical path of a build: the chain of steps that bounded its wall time. Steps of a stage
//! run one after another; a step that waited for another stage (its base, `COPY --from`, a
//! `from=` mount) continues the chain in that stage when the wait was what held it up (the other
//! stage finished after this stage's previous step). Recorded from the progress events and the
//! waits, so it costs a few timestamps per step.

use crate::Event;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

thread_local! {
    /// The stage the current thread builds (set by the stage threads).
    static STAGE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Marks the current thread as building stage `i`.
pub(crate) fn enter_stage(i: usize) {
    STAGE.with(|s| s.set(Some(i)));
}

/// One step on the critical path.
#[derive(Debug, Clone, PartialEq)]
pub struct PathStep {
    /// The step's progress id (`#N` in plain progress).
    pub id: usize,
    /// `[stage n/m] INSTRUCTION ...` as progress shows it.
    pub name: String,
    pub secs: f64,
    pub cached: bool,
}

struct Step {
    id: usize,
    stage: usize,
    name: String,
    start: Instant,
    end: Option<Instant>,
    cached: bool,
}

/// Timestamps of a build's steps and waits.
#[derive(Default)]
pub(crate) struct Timeline {
    steps: Mutex<BTreeMap<usize, Step>>,
    /// (waiting stage, stage waited for, when the wait ended).
    waits: Mutex<Vec<(usize, usize, Instant)>>,
}

impl Timeline {
    pub fn record(&self, ev: &Event) {
        // Log lines and messages are most events: they take no lock and no timestamp.
        if !matches!(ev, Event::Start { .. } | Event::Cached { .. } | Event::Done { .. }) {
            return;
        }
        let now = Instant::now();
        let mut steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        match ev {
            Event::Start { id, label, text } => {
                if let Some(stage) = STAGE.with(Cell::get) {
                    steps.insert(
                        *id,
                        Step {
                            id: *id,
                            stage,
                            name: format!("{label} {text}"),
                            start: now,
                            end: None,
                            cached: false,
                        },
                    );
                }
            }
            Event::Cached { id } | Event::Done { id, .. } => {
                if let Some(s) = steps.get_mut(id) {
                    s.end = Some(now);
                    s.cached = matches!(ev, Event::Cached { .. });
                }
            }
            _ => {}
        }
    }

    /// The current stage waited for stage `dep` until now.
    pub fn waited(&self, dep: usize) {
        if let Some(stage) = STAGE.with(Cell::get) {
            self.waits
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((stage, dep, Instant::now()));
        }
    }

    /// The chain of steps that ended the build of `target`, first step first.
    pub fn critical_path(&self, target: usize) -> Vec<PathStep> {
        let steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        let waits = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_stage: BTreeMap<usize, Vec<&Step>> = BTreeMap::new();
        for s in steps.values().filter(|s| s.end.is_some()) {
            by_stage.entry(s.stage).or_default().push(s);
        }
        for v in by_stage.values_mut() {
            v.sort_by_key(|s| s.start);
        }
        let mut path = Vec::new();
        let (mut stage, mut before) = (target, None::<Instant>);
        // Each jump goes to another stage that ended earlier, so this ends; the bound is a guard.
        for _ in 0..=by_stage.len() {
            let Some(list) = by_stage.get(&stage) else { break };
            let mut idx: Vec<&&Step> = list
                .iter()
                .filter(|s| before.is_none_or(|b| s.end.is_some_and(|e| e <= b)))
                .collect();
            let mut jumped = false;
            while let Some(s) = idx.pop() {
                path.push(PathStep {
                    id: s.id,
                    name: s.name.clone(),
                    secs: s
                        .end
                        .map(|e| e.duration_since(s.start).as_secs_f64())
                        .unwrap_or(0.0),
                    cached: s.cached,
                });
                let prev_end = idx.last().and_then(|p| p.end);
                let end = s.end.unwrap_or(s.start);
                // The latest wait of this step that ended after the stage's previous step.
                let blocking = waits
                    .iter()
                    .filter(|(w, _, at)| {
                        *w == stage && *at <= end && prev_end.is_none_or(|p| *at > p)
                    })
                    .max_by_key(|(_, _, at)| *at);
                if let Some((_, dep, at)) = blocking {
                    if by_stage.contains_key(dep) && *dep != stage {
                        stage = *dep;
                        before = Some(*at);
                        jumped = true;
                        break;
                    }
                }
            }
            if !jumped {
                break;
            }
        }
        path.reverse();
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_follows_the_wait_that_held_a_stage_up() {
        let t = Timeline::default();
        let start = |id: usize, stage: usize, text: &str| {
            enter_stage(stage);
            t.record(&Event::Start {
                id,
                label: format!("[s{stage}]"),
                text: text.into(),
            });
        };
        let done = |id: usize| {
            t.record(&Event::Done {
                id,
                secs: 0.0,
                why: None,
            })
        };
        let nap = || std::thread::sleep(std::time::Duration::from_millis(5));
        // Stage 0: a slow compile. Stage 1: a quick step, then a COPY --from=0 that waits.
        start(1, 0, "FROM golang");
        done(1);
        start(2, 0, "RUN go build");
        start(3, 1, "FROM scratch");
        done(3);
        start(4, 1, "COPY --from=0 /app /app");
        nap();
        enter_stage(0);
        done(2);
        enter_stage(1);
        t.waited(0);
        nap();
        done(4);
        let names: Vec<String> = t.critical_path(1).into_iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "[s0] FROM golang",
                "[s0] RUN go build",
                "[s1] COPY --from=0 /app /app"
            ]
        );
    }
}
