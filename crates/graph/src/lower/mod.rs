//! Lowering: the checks BuildKit makes on every stage (base names, literal `--from`, references to
//! later stages or to the stage itself), the stages the target reaches through those references,
//! then each reached stage lowered to vertices in order ([`stage`]).

mod stage;
pub use stage::join_path;

use crate::scope::{ArgValue, Globals};
use crate::{Base, Definition, GraphError, GraphErrorKind, Stage, UsedArg};
use lighter_dockerfile::{Dockerfile, Instruction, InstructionKind};
use std::collections::{BTreeMap, BTreeSet};

/// What lowering needs to know of a base image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageMeta {
    pub env: Vec<(String, String)>,
    pub workdir: String,
    pub user: String,
    /// `SHELL` of the image (empty: `/bin/sh -c`).
    pub shell: Vec<String>,
    /// ONBUILD triggers, run first by a stage built FROM the image.
    pub onbuild: Vec<String>,
}

/// Where lowering learns about images and named contexts (the engine: its store and registry).
pub trait Resolver {
    /// The base image `reference` (as written after expansion).
    fn image(&self, reference: &str) -> Result<ImageMeta, String>;
    /// A `--build-context` used as a base.
    fn named(&self, _name: &str) -> Result<ImageMeta, String> {
        Ok(ImageMeta::default())
    }
}

/// A map from references to metadata, for tests and for checks that must not pull.
impl Resolver for BTreeMap<String, ImageMeta> {
    fn image(&self, reference: &str) -> Result<ImageMeta, String> {
        Ok(self.get(reference).cloned().unwrap_or_default())
    }
}

/// The inputs of a lowering besides the Dockerfile.
pub struct LowerOptions<'a> {
    pub build_args: &'a BTreeMap<String, String>,
    pub target: Option<&'a str>,
    /// Names given with `--build-context` (they win over stages and images of that name).
    pub named: &'a BTreeSet<String>,
    pub resolver: &'a dyn Resolver,
}

/// What a build schedules, found without expanding any instruction: the target, the stages it
/// reaches (in an order where each comes after the stages it reads) and each stage's references.
/// Every stage is checked as BuildKit checks it (base name, `--from` as written, references to the
/// stage itself or to later stages), needed or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub target: usize,
    pub order: Vec<usize>,
    pub deps: Vec<BTreeSet<usize>>,
    bases: Vec<Base>,
    from_line_args: Vec<Vec<String>>,
}

impl Plan {
    /// The base images of the stages the target needs, as (stage, reference): what a build
    /// resolves before lowering (their ENV, WORKDIR, USER, SHELL and ONBUILD shape the stages).
    pub fn images(&self) -> Vec<(usize, String)> {
        self.order
            .iter()
            .filter_map(|&i| match &self.bases[i] {
                Base::Image(r) => Some((i, r.clone())),
                _ => None,
            })
            .collect()
    }
}

/// The [`Plan`] of `df` for `opts.target` (no image is resolved).
pub fn plan(df: &Dockerfile, opts: &LowerOptions<'_>) -> Result<Plan, GraphError> {
    let (plan, _) = plan_with_globals(df, opts)?;
    Ok(plan)
}

fn plan_with_globals(
    df: &Dockerfile,
    opts: &LowerOptions<'_>,
) -> Result<(Plan, Globals), GraphError> {
    let target = df.target_stage(opts.target).ok_or_else(|| {
        GraphError::new(
            GraphErrorKind::Target,
            format!(
                "target stage \"{}\" could not be found",
                opts.target.unwrap_or_default()
            ),
        )
    })?;
    let meta: Vec<(&lighter_dockerfile::ArgDef, lighter_dockerfile::Span)> = df
        .meta_args
        .iter()
        .flat_map(|i| match &i.kind {
            InstructionKind::Arg(defs) => defs.iter().map(|d| (d, i.span)).collect(),
            _ => Vec::new(),
        })
        .collect();
    let globals = Globals::new(df.escape, &meta, opts.build_args)
        .map_err(|(e, span)| GraphError::from(e).at(span))?;
    // As BuildKit, every stage is checked, needed or not.
    let mut bases = Vec::new();
    let mut deps = Vec::new();
    let mut from_line_args = Vec::new();
    for i in 0..df.stages.len() {
        let (base, read) = base_of(df, i, &globals, opts.named)?;
        from_line_args.push(read);
        deps.push(stage_refs(df, i, &base, opts.named)?);
        bases.push(base);
    }
    let mut order = Vec::new();
    visit(target, &deps, &mut BTreeSet::new(), &mut order);
    let plan = Plan {
        target,
        order,
        deps,
        bases,
        from_line_args,
    };
    Ok((plan, globals))
}

/// Lowers `df` for `opts.target` (the last stage when `None`).
pub fn lower(df: &Dockerfile, opts: &LowerOptions<'_>) -> Result<Definition, GraphError> {
    let (plan, globals) = plan_with_globals(df, opts)?;
    let (target, bases, from_line_args) = (plan.target, &plan.bases, &plan.from_line_args);
    let reached: BTreeSet<usize> = plan.order.iter().copied().collect();
    let mut stages: Vec<Stage> = df
        .stages
        .iter()
        .zip(bases)
        .map(|(s, base)| Stage {
            index: s.index,
            name: s.name.clone(),
            description: s
                .name_original
                .as_deref()
                .and_then(|n| lighter_dockerfile::doc_comment(&s.comments, n)),
            base: base.clone(),
            span: s.span,
            last: None,
        })
        .collect();
    let mut l = stage::Lowerer::new(df, opts, &globals);
    for &i in &reached {
        let last = l.stage(i, &stages)?;
        stages[i].last = Some(last);
    }
    let mut args = global_args_used(df, &globals, &reached, from_line_args, &l.used_globals);
    args.extend(l.args);
    let mut seen = BTreeSet::new();
    args.retain(|a| seen.insert(a.name.clone()));
    args.sort_by_key(|a| a.span.start_line);
    let stage_edges = (0..df.stages.len())
        .map(|i| l.stage_deps.get(&i).cloned().unwrap_or_default())
        .collect();
    Ok(Definition {
        stage_edges,
        vertices: l.vertices,
        stages,
        target,
        args,
        secrets: l.secrets,
        ssh: l.ssh,
    })
}

/// The meta ARGs that FROM lines of reached stages read, or that stage ARGs took their value from.
fn global_args_used(
    df: &Dockerfile,
    globals: &Globals,
    reached: &BTreeSet<usize>,
    read: &[Vec<String>],
    by_stages: &BTreeSet<String>,
) -> Vec<UsedArg> {
    let names: BTreeSet<&String> = reached
        .iter()
        .flat_map(|&i| &read[i])
        .chain(by_stages)
        .collect();
    let mut out = Vec::new();
    for ins in &df.meta_args {
        if let InstructionKind::Arg(defs) = &ins.kind {
            for d in defs.iter().filter(|d| names.contains(&d.name)) {
                let value = globals
                    .declared
                    .iter()
                    .rev()
                    .find(|a| a.name == d.name)
                    .and_then(|a: &ArgValue| a.value.clone());
                out.push(UsedArg {
                    name: d.name.clone(),
                    value,
                    description: lighter_dockerfile::doc_comment(&ins.comments, &d.name),
                    span: ins.span,
                });
            }
        }
    }
    out
}

/// Depth-first, dependencies first. References only go to earlier stages, so this ends.
fn visit(i: usize, deps: &[BTreeSet<usize>], seen: &mut BTreeSet<usize>, order: &mut Vec<usize>) {
    if seen.insert(i) {
        for &d in &deps[i] {
            visit(d, deps, seen, order);
        }
        order.push(i);
    }
}

/// Stage `i`'s base, expanded with the global scope (never blank), and the ARGs that read.
fn base_of(
    df: &Dockerfile,
    i: usize,
    globals: &Globals,
    named: &BTreeSet<String>,
) -> Result<(Base, Vec<String>), GraphError> {
    let stage = &df.stages[i];
    let (name, read) = globals
        .expand(&stage.base)
        .map_err(|e| GraphError::from(e).at(stage.span))?;
    if name.is_empty() {
        return Err(GraphError::new(
            GraphErrorKind::Dockerfile,
            format!("base name ({}) should not be blank", stage.base),
        )
        .at(stage.span));
    }
    let mut read = read;
    if let Some(p) = &stage.platform {
        let (_, r) = globals
            .expand(p)
            .map_err(|e| GraphError::from(e).at(stage.span))?;
        read.extend(r);
    }
    let base = if named.contains(&name) {
        Base::Named(name)
    } else if name == "scratch" {
        Base::Scratch
    } else if let Some(d) = df.stage_ref(&name, i) {
        Base::Stage(d)
    } else {
        Base::Image(name)
    };
    Ok((base, read))
}

/// The earlier stages stage `i` reads: its base and every `--from` / `RUN --mount=from=` naming a
/// stage. `--from` is taken as written: no ARG or ENV can change which stage a step reads.
fn stage_refs(
    df: &Dockerfile,
    i: usize,
    base: &Base,
    named: &BTreeSet<String>,
) -> Result<BTreeSet<usize>, GraphError> {
    let stage = &df.stages[i];
    let mut deps = BTreeSet::new();
    // A stage base's ONBUILD triggers run in this stage: their `--from` are this stage's.
    let mut triggers = Vec::new();
    if let Base::Stage(d) = base {
        deps.insert(*d);
        for ins in &df.stages[*d].instructions {
            if let InstructionKind::Onbuild(inner) = &ins.kind {
                let mut t = (**inner).clone();
                t.span = ins.span;
                triggers.push(t);
            }
        }
    }
    for ins in triggers.iter().chain(&stage.instructions) {
        for f in froms(ins) {
            literal_from(df, &f).map_err(|e| e.at(ins.span))?;
            if named.contains(&f) {
                continue;
            }
            if let Some(d) = df.stage_ref(&f, i) {
                deps.insert(d);
            } else if stage.name.as_deref() == Some(f.to_ascii_lowercase().as_str()) {
                return Err(GraphError::new(
                    GraphErrorKind::Dockerfile,
                    format!(
                        "circular dependency detected on stage: {}",
                        stage.name.as_deref().unwrap_or_default()
                    ),
                )
                .at(ins.span));
            } else if df.stages[i..]
                .iter()
                .any(|s| s.name.as_deref() == Some(&f.to_ascii_lowercase()))
            {
                return Err(GraphError::new(
                    GraphErrorKind::Dockerfile,
                    format!("stage \"{f}\" is defined after this stage: a stage can only copy from earlier stages"),
                )
                .at(ins.span));
            }
        }
    }
    Ok(deps)
}

/// `--from` as written: BuildKit expands no variable there and refuses a value that expansion
/// would change.
pub(crate) fn literal_from(df: &Dockerfile, from: &str) -> Result<(), GraphError> {
    let unchanged = lighter_dockerfile::shell::Lexer::new(df.escape)
        .process_word(from, &BTreeMap::<String, String>::new())
        .is_ok_and(|w| w.value == from);
    if unchanged {
        Ok(())
    } else {
        Err(GraphError::new(
            GraphErrorKind::Dockerfile,
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
        _ => Vec::new(),
    }
}
