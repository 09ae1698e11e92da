//! lighter-sandbox: see crates/README.md.
