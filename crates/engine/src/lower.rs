//! Lowering: which stages a target needs (from the build graph), the ARG scope (global ARGs before FROM, automatic platform
//! ARGs, build-args overriding defaults, a stage ARG visible only after its declaration) and word
//! expansion of the fields BuildKit expands, with ENV winning over ARG.

use crate::EngineError;
use lighter_dockerfile::shell::Lexer;
use lighter_dockerfile::{Dockerfile, InstructionKind};
use std::collections::{BTreeMap, BTreeSet};

/// Automatic platform ARGs (linux/amd64 builds).
pub fn platform_args() -> BTreeMap<String, String> {
    let arch = lighter_oci::HOST_ARCH;
    let os = lighter_oci::HOST_OS;
    let mut m = BTreeMap::new();
    for (k, v) in [
        ("TARGETPLATFORM", format!("{os}/{arch}")),
        ("TARGETOS", os.to_string()),
        ("TARGETARCH", arch.to_string()),
        ("TARGETVARIANT", String::new()),
        ("BUILDPLATFORM", format!("{os}/{arch}")),
        ("BUILDOS", os.to_string()),
        ("BUILDARCH", arch.to_string()),
        ("BUILDVARIANT", String::new()),
    ] {
        m.insert(k.to_string(), v);
    }
    m
}

/// The global scope: meta ARGs (with build-arg overrides) plus the platform ARGs.
pub fn global_args(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, EngineError> {
    let lexer = Lexer::new(df.escape);
    let mut scope = platform_args();
    for ins in &df.meta_args {
        if let InstructionKind::Arg(defs) = &ins.kind {
            for d in defs {
                let v = match (build_args.get(&d.name), &d.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(def)) => {
                        Some(expand(&lexer, def, &scope).map_err(|e| e.at(ins.span))?)
                    }
                    (None, None) => None,
                };
                if let Some(v) = v {
                    scope.insert(d.name.clone(), v);
                }
            }
        }
    }
    Ok(scope)
}

/// Expands one word against an environment map.
pub fn expand(
    lexer: &Lexer,
    word: &str,
    env: &BTreeMap<String, String>,
) -> Result<String, EngineError> {
    lexer
        .process_word(word, env)
        .map(|e| e.value)
        .map_err(|e| EngineError::msg(e.to_string()).kind(crate::ErrorKind::Dockerfile))
}

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
    with_options(build_args, target, named, |opts| lighter_graph::plan(df, opts))
}

/// The build graph of `target`, lowered without image metadata: words that read a base image's ENV
/// expand as if it had none (for `--call outline`; builds still expand at run time).
pub fn lower_graph<V>(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
    named: &BTreeMap<String, V>,
) -> Result<lighter_graph::Definition, EngineError> {
    with_options(build_args, target, named, |opts| lighter_graph::lower(df, opts))
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
    f(&opts).map_err(|e| {
        let err = EngineError::msg(e.message).kind(crate::ErrorKind::Dockerfile);
        match e.span {
            Some(s) => err.at(s),
            None => err,
        }
    })
}

/// The stages `target` needs, in dependency order (each after the stages it reads from): the
/// stages the build graph's plan reaches through stage references.
pub fn needed_stages<V>(
    df: &Dockerfile,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
    named: &BTreeMap<String, V>,
) -> Result<Vec<usize>, EngineError> {
    Ok(plan(df, build_args, target, named)?.order)
}

/// Stage `i`'s base name, expanded with the global scope (BuildKit's rule): never blank.
pub fn base_name(
    df: &Dockerfile,
    i: usize,
    globals: &BTreeMap<String, String>,
) -> Result<String, EngineError> {
    let stage = &df.stages[i];
    let base =
        expand(&Lexer::new(df.escape), &stage.base, globals).map_err(|e| e.at(stage.span))?;
    if base.is_empty() {
        return Err(
            EngineError::msg(format!("base name ({}) should not be blank", stage.base))
                .kind(crate::ErrorKind::Dockerfile)
                .at(stage.span),
        );
    }
    Ok(base)
}

