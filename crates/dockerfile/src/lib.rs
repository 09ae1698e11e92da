//! lighter-dockerfile: see crates/README.md.
