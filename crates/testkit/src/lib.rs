//! lighter-testkit: see crates/README.md.
