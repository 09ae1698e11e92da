//! lighter-graph: see crates/README.md.
