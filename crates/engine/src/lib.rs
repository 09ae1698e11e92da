//! lighter-engine: wires dockerfile, graph, solver, store, sandbox and image into
//! `Engine::build(BuildRequest) -> BuildResult` with progress events.

// The build context read in place: .dockerignore, walking, content hashing with a stat cache.
// Owned by the file-operations work.
pub mod context;
// COPY/ADD semantics on real filesystems (sources, wildcards, destinations, chown/chmod, archives, URLs).
// Owned by the file-operations work.
pub mod fileop;

// Engine orchestration modules follow (owned by the engine work).
