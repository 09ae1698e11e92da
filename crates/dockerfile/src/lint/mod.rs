//! Lint: BuildKit's Dockerfile checks and lighter's image-size rules, as a pass over the typed AST
//! (not inside the parser). Each finding carries its span, so every message can show the line.

mod buildkit;
pub mod context;
pub mod fix;
mod hadolint;
pub mod ignore;
pub mod rewrite;
pub mod shell;
mod ship;
mod size;
mod speed;

use crate::ast::{Dockerfile, Span};

/// How a finding is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One finding of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// BuildKit's rule name (`StageNameCasing`) or lighter's (`AptNoInstallRecommends`).
    pub rule: &'static str,
    pub message: String,
    pub description: &'static str,
    /// A documentation URL for BuildKit's rules, empty for lighter's own.
    pub url: String,
    pub span: Span,
    pub severity: Severity,
}

/// The `# check=skip=A,B;error=true` directive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    pub skip: Vec<String>,
    pub skip_all: bool,
    pub error: bool,
    /// BuildKit's experimental checks turned on (`experimental=A,B` or `all`).
    pub experimental: Vec<String>,
    pub experimental_all: bool,
}

impl CheckConfig {
    /// Reads `# check=...` (`skip=all` or a comma list, `error=true|false`, separated by `;`).
    pub fn from_directive(value: &str) -> Result<CheckConfig, String> {
        let mut c = CheckConfig::default();
        for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!("invalid check directive: {part}"));
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "skip" => {
                    for r in v.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                        if r.eq_ignore_ascii_case("all") {
                            c.skip_all = true;
                        } else {
                            c.skip.push(r.to_string());
                        }
                    }
                }
                "experimental" => {
                    for r in v.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                        if r.eq_ignore_ascii_case("all") {
                            c.experimental_all = true;
                        } else {
                            c.experimental.push(r.to_string());
                        }
                    }
                }
                "error" => {
                    c.error = match v.trim().to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        o => return Err(format!("invalid value for error: {o}")),
                    }
                }
                o => return Err(format!("invalid check directive key: {o}")),
            }
        }
        Ok(c)
    }

    fn skips(&self, rule: &str) -> bool {
        self.skip_all
            || self.skip.iter().any(|s| s.eq_ignore_ascii_case(rule))
            || (EXPERIMENTAL.contains(&rule)
                && !self.experimental_all
                && !self
                    .experimental
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(rule)))
    }
}

/// BuildKit's checks that run only when `# check=experimental=` names them.
pub const EXPERIMENTAL: &[&str] = &["InvalidDefinitionDescription"];

/// Runs every check; honours the Dockerfile's `# check=` directive (skips, and `error=true` turns
/// every finding into an error).
pub fn check(df: &Dockerfile) -> Vec<Warning> {
    let config = df
        .directives
        .iter()
        .find(|d| d.name == "check")
        .and_then(|d| CheckConfig::from_directive(&d.value).ok())
        .unwrap_or_default();
    check_with(df, &config)
}

/// Runs every check with an explicit configuration.
pub fn check_with(df: &Dockerfile, config: &CheckConfig) -> Vec<Warning> {
    let mut out = size::with_memo(|| {
        let mut out = Vec::new();
        run_all(df, &mut out);
        out
    });
    finish(&mut out, config);
    out
}

fn run_all(df: &Dockerfile, out: &mut Vec<Warning>) {
    buildkit::run(df, out);
    size::run(df, out);
    speed::run(df, out);
    ship::run(df, out);
    hadolint::run(df, out);
    rewrite::check(df, out);
}

fn finish(out: &mut Vec<Warning>, config: &CheckConfig) {
    out.retain(|w| !config.skips(w.rule));
    if config.error {
        for w in out.iter_mut() {
            w.severity = Severity::Error;
        }
    }
    out.sort_by_key(|w| (w.span.start_line, w.rule));
}

/// The rules that fire on `src`, in order: the lint tests' common question.
#[cfg(test)]
pub(crate) fn rule_names(src: &str) -> Vec<&'static str> {
    check(&crate::parse(src).unwrap())
        .into_iter()
        .map(|w| w.rule)
        .collect()
}

/// A finding of one of lighter's own rules (no BuildKit documentation URL).
pub(crate) fn own(
    rule: &'static str,
    description: &'static str,
    message: String,
    span: Span,
) -> Warning {
    Warning {
        rule,
        message,
        description,
        url: String::new(),
        span,
        severity: Severity::Warning,
    }
}

pub(crate) fn bk(
    rule: &'static str,
    description: &'static str,
    message: String,
    span: Span,
) -> Warning {
    let chars: Vec<char> = rule.chars().collect();
    let mut slug = String::with_capacity(rule.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev_lower = chars[i - 1].is_ascii_lowercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev_lower || (chars[i - 1].is_ascii_uppercase() && next_lower) {
                slug.push('-');
            }
        }
        slug.push(c.to_ascii_lowercase());
    }
    Warning {
        rule,
        message,
        description,
        url: format!("https://docs.docker.com/go/dockerfile/rule/{slug}/"),
        span,
        severity: Severity::Warning,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rule_urls() {
        let span = crate::ast::Span::default();
        assert_eq!(
            super::bk("JSONArgsRecommended", "", String::new(), span).url,
            "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"
        );
        assert_eq!(
            super::bk("FromAsCasing", "", String::new(), span).url,
            "https://docs.docker.com/go/dockerfile/rule/from-as-casing/"
        );
    }
}
