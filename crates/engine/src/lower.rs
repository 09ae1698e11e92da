//! Lowering: which stages a target needs, the ARG scope (global ARGs before FROM, automatic platform
//! ARGs, build-args overriding defaults, a stage ARG visible only after its declaration) and word
//! expansion of the fields BuildKit expands, with ENV winning over ARG.

use crate::EngineError;
use lighter_dockerfile::shell::Lexer;
use lighter_dockerfile::{Dockerfile, Instruction, InstructionKind};
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
        .map_err(|e| EngineError::msg(e.to_string()))
}

/// What a build checks before it runs anything: the target exists, every stage's base name and
/// `--from` are valid, and the stages the target needs form no cycle. `build --check` reports these.
pub fn validate<V>(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
    named: &BTreeMap<String, V>,
) -> Result<(), EngineError> {
    let t = df.target_stage(target).ok_or_else(|| {
        EngineError::msg(format!(
            "target stage \"{}\" could not be found",
            target.unwrap_or_default()
        ))
    })?;
    let globals = global_args(df, build_args)?;
    needed_stages(df, t, &globals, named).map(|_| ())
}

/// The stages `target` needs, in dependency order (each after the stages it reads from).
pub fn needed_stages<V>(
    df: &Dockerfile,
    target: usize,
    globals: &BTreeMap<String, String>,
    named: &BTreeMap<String, V>,
) -> Result<Vec<usize>, EngineError> {
    // As BuildKit, every stage's base name and `--from` are checked, needed or not.
    for (i, stage) in df.stages.iter().enumerate() {
        base_name(df, i, globals)?;
        for ins in &stage.instructions {
            for from in froms(ins) {
                literal_from(df, &from).map_err(|e| e.at(ins.span))?;
            }
        }
    }
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    let named: BTreeSet<&str> = named.keys().map(String::as_str).collect();
    visit(df, target, globals, &named, &mut seen, &mut order, 0)?;
    Ok(order)
}

fn visit(
    df: &Dockerfile,
    i: usize,
    globals: &BTreeMap<String, String>,
    named: &BTreeSet<&str>,
    seen: &mut BTreeSet<usize>,
    order: &mut Vec<usize>,
    depth: usize,
) -> Result<(), EngineError> {
    if seen.contains(&i) {
        return Ok(());
    }
    if depth > df.stages.len() {
        return Err(EngineError::msg("circular dependency between stages").at(df.stages[i].span));
    }
    for d in stage_deps(df, i, globals, named)? {
        visit(df, d, globals, named, seen, order, depth + 1)?;
    }
    seen.insert(i);
    order.push(i);
    Ok(())
}

/// The earlier stages stage `i` reads from: its FROM, `COPY --from`, `RUN --mount=from=` (a name
/// given as a named build context is not a stage reference).
pub fn stage_deps(
    df: &Dockerfile,
    i: usize,
    globals: &BTreeMap<String, String>,
    named: &BTreeSet<&str>,
) -> Result<Vec<usize>, EngineError> {
    let stage = &df.stages[i];
    let mut deps = Vec::new();
    let base = base_name(df, i, globals)?;
    if let Some(d) = df
        .stage_ref(&base, i)
        .filter(|_| !named.contains(base.as_str()))
    {
        deps.push(d);
    }
    // `--from` is taken as written (checked by `literal_from`): no ARG or ENV can change which
    // stage a step reads, so these edges are the ones the steps wait on.
    for ins in &stage.instructions {
        for f in froms(ins) {
            if named.contains(f.as_str()) {
                continue;
            }
            if let Some(d) = df.stage_ref(&f, i) {
                deps.push(d);
            } else if stage.name.as_deref() == Some(f.to_ascii_lowercase().as_str()) {
                return Err(EngineError::msg(format!(
                    "circular dependency detected on stage: {}",
                    stage.name.as_deref().unwrap_or_default()
                ))
                .at(ins.span));
            } else if df
                .stages
                .iter()
                .skip(i)
                .any(|s| s.name.as_deref() == Some(&f.to_ascii_lowercase()))
            {
                return Err(EngineError::msg(format!("stage \"{f}\" is defined after this stage: a stage can only copy from earlier stages")).at(ins.span));
            }
        }
    }
    deps.sort_unstable();
    deps.dedup();
    Ok(deps)
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
                .at(stage.span),
        );
    }
    Ok(base)
}

/// `COPY --from` as written: BuildKit expands no variable there (a stage's ARG or ENV would make
/// the stage graph depend on execution) and refuses a value that expansion would change.
pub fn literal_from(df: &Dockerfile, from: &str) -> Result<(), EngineError> {
    let unchanged = Lexer::new(df.escape)
        .process_word(from, &BTreeMap::<String, String>::new())
        .is_ok_and(|w| w.value == from);
    if unchanged {
        Ok(())
    } else {
        Err(EngineError::msg(
            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
        ))
    }
}

fn froms(ins: &Instruction) -> Vec<String> {
    match &ins.kind {
        InstructionKind::Copy(c) | InstructionKind::Add(c) => {
            c.from.iter().filter(|f| !f.is_empty()).cloned().collect()
        }
        InstructionKind::Run(r) => r.mounts.iter().filter_map(|m| m.from.clone()).collect(),
        InstructionKind::Onbuild(_) => Vec::new(),
        _ => Vec::new(),
    }
}
