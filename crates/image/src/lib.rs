//! lighter-image: see crates/README.md.
