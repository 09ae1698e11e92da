//! lighter-solver: runs a build graph. Vertices are scheduled from their edges only, in parallel,
//! each once ([`solve`]: identical vertices share one execution, a failure cancels what depends on
//! it with the cause, and nothing can wait for a vertex that is not scheduled). Every vertex gets a
//! [`CacheKey`] from its op and its inputs' keys and the content it reads; results are looked up
//! and recorded in a [`CacheIndex`], and a vertex that runs says why ([`Why`]). What a vertex does
//! is the [`Worker`]'s business: the solver knows nothing of stores or sandboxes.
//!
//! [`suite`] is the test suite every `CacheIndex` implementation runs; [`fake`] is a recording
//! worker for tests that need no root.

pub mod fake;
mod index;
mod key;
mod schedule;
pub mod suite;

pub use index::{explain, Batch, CacheIndex, IndexError, Inputs, MemoryIndex, Why};
pub use key::{CacheKey, KEY_VERSION};
pub use schedule::{
    solve, vertex_keys, Input, InputUse, Options, Outcome, Solution, SolveError, SolveEvent, Worker,
};
