//! The CLI tests' helpers are the `lighter-testkit` crate.
#![allow(unused_imports)]

pub use lighter_testkit::*;
