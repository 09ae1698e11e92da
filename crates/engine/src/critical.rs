//! The critical path of a build: the chain of steps that bounded its wall time. From the target's
//! result, each step goes to the input the solver finished last (the one the step waited for),
//! across stages through `COPY --from`, `from=` mounts and stage bases. Steps without progress
//! (config changes, sources) are left out.

use lighter_graph::{Definition, VertexId};
use lighter_solver::{Outcome, Solution};
use std::collections::HashMap;

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

/// The critical path of `root` in a solution, named as progress named the steps.
pub(crate) fn path<O>(
    def: &Definition,
    sol: &Solution<O>,
    root: VertexId,
    ids: &HashMap<VertexId, usize>,
    name: &dyn Fn(VertexId) -> String,
) -> Vec<PathStep> {
    sol.critical_path(def, root)
        .into_iter()
        .filter_map(|v| {
            let id = *ids.get(&v)?;
            let (start, end) = sol.times.get(&v)?;
            Some(PathStep {
                id,
                name: name(v),
                secs: end.duration_since(*start).as_secs_f64(),
                cached: sol.outcomes.get(&v) == Some(&Outcome::Cached),
            })
        })
        .collect()
}
