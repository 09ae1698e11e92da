//! lighter-store: see crates/README.md.
