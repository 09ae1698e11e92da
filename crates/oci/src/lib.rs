//! lighter-oci: see crates/README.md.
