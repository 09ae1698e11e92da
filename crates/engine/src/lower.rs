//! The build graph as the CLI asks for it without building: `build --check` (the graph's plan:
//! every stage's base and `--from` checked, no image resolved) and `build --call outline` (the
//! graph lowered without image metadata). Builds lower in `build`, with their images resolved.

use crate::EngineError;
use lighter_dockerfile::Dockerfile;
use std::collections::{BTreeMap, BTreeSet};

/// What a build checks before it runs anything: the target exists, every stage's base name and
/// `--from` are valid, and the stages the target needs form no cycle. `build --check` reports these.
/// This is the build graph's plan (`lighter_graph::plan`): no instruction is expanded and no image
/// is resolved.
pub fn validate<V>(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
    named: &BTreeMap<String, V>,
) -> Result<(), EngineError> {
    plan(df, build_args, target, named).map(|_| ())
}

fn plan<V>(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
    named: &BTreeMap<String, V>,
) -> Result<lighter_graph::Plan, EngineError> {
    with_options(build_args, target, named, |opts| {
        lighter_graph::plan(df, opts)
    })
}

/// The build graph of `target`, lowered without image metadata: words that read a base image's ENV
/// expand as if it had none (for `--call outline`; builds still expand at run time).
pub fn lower_graph<V>(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
    named: &BTreeMap<String, V>,
) -> Result<lighter_graph::Definition, EngineError> {
    with_options(build_args, target, named, |opts| {
        lighter_graph::lower(df, opts)
    })
}

/// Runs `f` with lowering options that resolve no image; its error keeps the Dockerfile span.
fn with_options<V, T>(
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
    named: &BTreeMap<String, V>,
    f: impl FnOnce(&lighter_graph::LowerOptions<'_>) -> Result<T, lighter_graph::GraphError>,
) -> Result<T, EngineError> {
    let named: BTreeSet<String> = named.keys().cloned().collect();
    let no_images = BTreeMap::<String, lighter_graph::ImageMeta>::new();
    let opts = lighter_graph::LowerOptions {
        build_args,
        target,
        named: &named,
        resolver: &no_images,
    };
    f(&opts).map_err(graph_error)
}

/// A lowering error as a build error of its kind, at its line.
pub(crate) fn graph_error(e: lighter_graph::GraphError) -> EngineError {
    let kind = match e.kind {
        lighter_graph::GraphErrorKind::NotImplemented => crate::ErrorKind::NotImplemented,
        lighter_graph::GraphErrorKind::Image => crate::ErrorKind::Image,
        _ => crate::ErrorKind::Dockerfile,
    };
    let err = EngineError::msg(e.message).kind(kind);
    match e.span {
        Some(s) => err.at(s),
        None => err,
    }
}
