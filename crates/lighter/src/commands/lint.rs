//! `lighter lint [-f Dockerfile] [FILE|-]`: BuildKit's Dockerfile checks and lighter's size rules,
//! with file:line:col, the line and a caret for every finding (text), or JSON, SARIF, Checkstyle,
//! Code Climate, GitLab Code Quality or JUnit (`--format`). Rules are skipped by `--ignore`, the
//! configuration file (`.lighter.toml` `[lint]`, or hadolint's `.hadolint.yaml`), the
//! `# check=skip=` directive and the `# lighter ignore=` / `# hadolint ignore=` pragmas, by lighter's
//! rule names or hadolint's codes. Exit 1 on parse errors or on findings at or above the failure
//! threshold (default: errors, which `# check=error=true` makes of every finding), 0 otherwise.

use super::Context;
use crate::cli::{FailureThreshold, LintArgs};
use crate::diagnostics::Rendered;
use lighter_dockerfile::lint::ignore;
use lighter_dockerfile::{check, parse, render_at, Severity};
use std::io::Read;
use std::process::ExitCode;

/// What a run skips and when it fails, and the image built from the Dockerfile (`--image`) whose
/// layers give the size findings their bytes.

pub struct Options {
    pub ignore: Vec<String>,
    pub threshold: FailureThreshold,
    pub image: Option<lighter_image::view::ImageView>,
    /// The build context, for the `.dockerignore` rule.
    pub context: Option<std::path::PathBuf>,
    /// `--image` when it is a store image: its files can be read.
    pub stored: Option<(lighter_store::Store, lighter_image::Image)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ignore: Vec::new(),
            threshold: FailureThreshold::Error,
            image: None,
            context: None,
            stored: None,
        }
    }
}

pub fn run(ctx: &Context, args: LintArgs) -> anyhow::Result<ExitCode> {
    // A directory argument is the build context (as `docker build PATH`), its Dockerfile inside
    // unless -f names one; a file argument is the Dockerfile (as hadolint), its directory the context.
    let dir_arg = args
        .file
        .as_deref()
        .filter(|f| *f != "-" && std::path::Path::new(f).is_dir())
        .map(std::path::PathBuf::from);
    if let (Some(f), Some(p)) = (&args.dockerfile, &args.file) {
        if dir_arg.is_none() {
            anyhow::bail!("-f {f} and {p}: two Dockerfiles; the positional argument with -f is the build context directory");
        }
    }
    let path = match (&args.dockerfile, &dir_arg) {
        (Some(f), _) => f.clone(),
        (None, Some(d)) => d.join("Dockerfile").to_string_lossy().into_owned(),
        (None, None) => args
            .file
            .clone()
            .unwrap_or_else(|| "Dockerfile".to_string()),
    };
    let context = dir_arg.or_else(|| {
        (path != "-").then(|| {
            std::path::Path::new(&path)
                .parent()
                .map(|p| {
                    if p.as_os_str().is_empty() {
                        std::path::Path::new(".")
                    } else {
                        p
                    }
                })
                .unwrap_or(std::path::Path::new("."))
                .to_path_buf()
        })
    });
    let config = super::lint_config::load(args.config.as_deref())?;
    let from = config
        .source
        .as_ref()
        .map_or("--ignore".to_string(), |p| p.display().to_string());
    let mut names = Vec::new();
    for (n, at) in config
        .ignore
        .iter()
        .map(|n| (n, from.as_str()))
        .chain(args.ignore.iter().map(|n| (n, "--ignore")))
    {
        if ignore::canonical(n).is_some() {
            names.push(n.clone());
        } else if is_hadolint_code(n) {
            eprintln!("warning: {at}: {n} is a hadolint rule lighter does not implement: nothing to ignore");
        } else {
            anyhow::bail!(
                "{at}: unknown rule {n:?} (lighter's rules: {}; or hadolint's codes {})",
                ignore::RULES.join(", "),
                ignore::ALIASES
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let image = args
        .image
        .as_deref()
        .map(|i| super::analyze::open_view(ctx, i, None, false))
        .transpose()?;
    // A store image can also be looked into (file contents, for ScratchTlsWithoutCa).
    let stored = args.image.as_deref().and_then(|i| {
        let store = ctx.store().ok()?;
        let img = lighter_image::resolve(&store, i).ok()?;
        Some((store, img))
    });
    let opts = Options {
        ignore: names,
        threshold: args
            .failure_threshold
            .or(config.failure_threshold)
            .unwrap_or(FailureThreshold::Error),
        image,
        context,
        stored,
    };
    let (name, src) = read_dockerfile(&path)?;
    let code = lint_with(&name, &src, args.format.as_str(), &opts)?;
    if args.fix {
        fix_in_place(&path, &src, &opts)?;
    }
    if let Some(out) = &args.write_multi_stage {
        let df = parse(&src).map_err(|e| Rendered {
            message: e.render(&name, &src),
            code: 1,
        })?;
        let Some(text) = lighter_dockerfile::lint::rewrite::multi_stage(&df) else {
            anyhow::bail!(
                "{name}: no multi-stage rewrite: it is not a single stage that builds Go (go build) or Node (npm ci/install) code on golang or node"
            );
        };
        std::fs::write(out, text).map_err(|e| anyhow::anyhow!("write {}: {e}", out.display()))?;
        eprintln!("multi-stage rewrite of {name} written to {}", out.display());
    }
    Ok(code)
}

/// `--fix`: the safe rewrites, written over the Dockerfile (a temporary file renamed into place).
fn fix_in_place(path: &str, src: &str, opts: &Options) -> anyhow::Result<()> {
    if path == "-" {
        anyhow::bail!("--fix rewrites the Dockerfile in place: it cannot fix standard input");
    }
    let Ok(df) = parse(src) else { return Ok(()) };
    let mut findings = check(&df);
    ignore::apply(&df, &opts.ignore, &mut findings);
    let (text, fixed) = lighter_dockerfile::lint::fix::fix(src, &df, &findings);
    if fixed.is_empty() {
        eprintln!("{path}: nothing to fix in place");
        return Ok(());
    }
    let p = std::path::Path::new(path);
    let tmp = p.with_file_name(format!(
        ".{}.lighter-fix",
        p.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, &text).map_err(|e| anyhow::anyhow!("write {}: {e}", tmp.display()))?;
    if let Ok(md) = std::fs::metadata(p) {
        let _ = std::fs::set_permissions(&tmp, md.permissions());
    }
    std::fs::rename(&tmp, p).map_err(|e| anyhow::anyhow!("rename into {path}: {e}"))?;
    eprintln!(
        "{path}: fixed {} finding(s) in place ({})",
        fixed.len(),
        fixed.join(", ")
    );
    Ok(())
}

/// hadolint's rule codes: `DL` or `SC` and four digits.
fn is_hadolint_code(n: &str) -> bool {
    let n = n.trim().to_ascii_uppercase();
    (n.starts_with("DL") || n.starts_with("SC"))
        && n.len() == 6
        && n[2..].bytes().all(|b| b.is_ascii_digit())
}

/// Reads a Dockerfile from a path or `-` (stdin); the name is what messages show.
pub fn read_dockerfile(path: &str) -> anyhow::Result<(String, String)> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        return Ok(("<stdin>".to_string(), s));
    }
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read Dockerfile {path}: {e}"))?;
    let src = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{path}: the Dockerfile is not valid UTF-8"))?;
    Ok((path.to_string(), src))
}

/// [`lint_with`] with no configuration (what `build --check` runs).
pub fn lint_source(name: &str, src: &str, format: &str) -> anyhow::Result<ExitCode> {
    lint_with(name, src, format, &Options::default())
}

/// Parses and checks; prints findings (text to stderr, reports to stdout).
pub fn lint_with(name: &str, src: &str, format: &str, opts: &Options) -> anyhow::Result<ExitCode> {
    let df = match parse(src) {
        Ok(df) => df,
        Err(e) => {
            if format == "json" {
                let v = serde_json::json!({
                    "errors": [{ "message": e.message, "line": e.span.start_line, "column": e.span.start_col,
                                 "expected": e.expected, "hint": e.hint }],
                    "warnings": [],
                });
                outln!("{}", serde_json::to_string_pretty(&v)?);
            }
            return Err(Rendered {
                message: e.render(name, src),
                code: 1,
            }
            .into());
        }
    };
    for (line, n) in ignore::unknown_pragmas(&df) {
        if !is_hadolint_code(&n) {
            eprintln!("warning: {name}:{line}: the ignore pragma names no rule: {n:?}");
        }
    }
    let mut findings = check(&df);
    if let Some(ctx) = &opts.context {
        let (entries, has) = context_entries(ctx, name);
        findings.extend(lighter_dockerfile::lint::context::check(&df, &entries, has));
        findings.sort_by_key(|w| (w.span.start_line, w.rule));
    }
    if let Some((store, img)) = &opts.stored {
        findings.extend(super::tls_check::check(store, img, &df));
    }
    ignore::apply(&df, &opts.ignore, &mut findings);
    let errors = findings
        .iter()
        .filter(|w| w.severity == Severity::Error)
        .count();
    let costs = match &opts.image {
        Some(img) => super::attribute::finding_costs(&df, &findings, &img.history(), |i| {
            img.layers.get(i).map(|l| l.entries.clone())
        }),
        None => vec![None; findings.len()],
    };
    match format {
        "json" => {
            let list: Vec<_> = findings
                .iter()
                .zip(&costs)
                .map(|(w, c)| {
                    serde_json::json!({
                        "bytes": c.map(|c| c.1), "directory": c.map(|c| format!("/{}", c.0)),
                        "rule": w.rule, "hadolint": ignore::codes_of(w.rule), "message": w.message,
                        "description": w.description, "url": w.url,
                        "line": w.span.start_line, "column": w.span.start_col,
                        "severity": if w.severity == Severity::Error { "error" } else { "warning" },
                    })
                })
                .collect();
            outln!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "errors": [], "warnings": list })
                )?
            );
        }
        "text" => print_text(name, src, &findings, &costs, errors),
        other => out!("{}", super::lint_format::render(other, name, &findings)),
    }
    let fails = match opts.threshold {
        FailureThreshold::Ignore => false,
        FailureThreshold::Error => errors > 0,
        _ => !findings.is_empty(),
    };
    Ok(if fails {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The context's top-level `.git`, `node_modules` and `.env*` entries, their sizes, and whether
/// the `.dockerignore` BuildKit would use (`<Dockerfile>.dockerignore`, else the context's)
/// excludes them; and whether there is one.
fn context_entries(
    ctx: &std::path::Path,
    dockerfile: &str,
) -> (Vec<lighter_dockerfile::lint::context::ContextEntry>, bool) {
    use lighter_dockerfile::dockerignore::{dockerignore_candidates, parse_dockerignore, Matcher};
    let ignore_file = dockerignore_candidates(std::path::Path::new(dockerfile), ctx)
        .into_iter()
        .find(|p| p.is_file());
    let patterns = ignore_file
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| parse_dockerignore(&t))
        .unwrap_or_default();
    let matcher = Matcher::new(patterns.iter().map(|p| p.as_str())).ok();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(ctx) else {
        return (out, ignore_file.is_some());
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| lighter_dockerfile::lint::context::wanted(n))
        .collect();
    names.sort();
    for name in names {
        out.push(lighter_dockerfile::lint::context::ContextEntry {
            bytes: tree_bytes(&ctx.join(&name)),
            ignored: matcher.as_ref().is_some_and(|m| m.matches(&name)),
            name,
        });
    }
    (out, ignore_file.is_some())
}

/// Bytes of the regular files under `p` (symlinks not followed; at most a million entries).
fn tree_bytes(p: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&d) else {
            continue;
        };
        seen += 1;
        if seen > 1_000_000 {
            break;
        }
        if md.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&d) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if md.is_file() {
            total += md.len();
        }
    }
    total
}

fn print_text(
    name: &str,
    src: &str,
    findings: &[lighter_dockerfile::Warning],
    costs: &[Option<(&str, u64)>],
    errors: usize,
) {
    for (w, c) in findings.iter().zip(costs) {
        let level = if w.severity == Severity::Error {
            "error"
        } else {
            "warning"
        };
        let hint = (!w.url.is_empty()).then(|| format!("{} ({})", w.description, w.url));
        let mut hint = hint.unwrap_or_else(|| w.description.to_string());
        if let Some((dir, bytes)) = c {
            hint.push_str(&format!(
                "; in the image, /{dir} holds {} in this line's layer",
                crate::printer::human_size(*bytes)
            ));
        }
        eprint!(
            "{}",
            render_at(
                name,
                src,
                &w.span,
                level,
                &format!("{}: {}", w.rule, w.message),
                None,
                Some(&hint)
            )
        );
    }
    if findings.is_empty() {
        eprintln!("{name}: no problems found");
    } else {
        eprintln!(
            "{name}: {} warning(s), {errors} error(s)",
            findings.len() - errors
        );
    }
}
