//! lighter-engine: see crates/README.md.
