//! lighter-solver: see crates/README.md.
