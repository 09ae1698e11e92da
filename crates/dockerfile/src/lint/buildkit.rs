//! BuildKit's static Dockerfile checks (`frontend/dockerfile/linter` rule names and messages).

use super::{bk, Warning};
use crate::ast::*;
use crate::shell::Lexer;
use std::collections::BTreeMap;

const PREDEFINED_ARGS: &[&str] = &[
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// InvalidDefinitionDescription (experimental in BuildKit): the comment directly above a named
/// stage or an ARG must start with the stage's or an argument's name, as BuildKit reads it (its last
/// line's first word).
fn definition_descriptions(df: &Dockerfile, out: &mut Vec<Warning>) {
    let mut check = |what: &str, names: Vec<&str>, comments: &[String], span: Span| {
        let Some(last) = comments.last() else { return };
        if names.is_empty() {
            return;
        }
        let first = last.split(' ').next().unwrap_or("");
        if names.contains(&first) {
            return;
        }
        let example = if names.len() > 1 {
            "<arg_key>"
        } else {
            names[0]
        };
        out.push(bk(
            "InvalidDefinitionDescription",
            "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.",
            format!("Comment for {what} should follow the format: `# {example} <description>`"),
            span,
        ));
    };
    for s in &df.stages {
        if let Some(name) = &s.name_original {
            check("FROM", vec![name.as_str()], &s.comments, s.span);
        }
    }
    for i in df
        .meta_args
        .iter()
        .chain(df.stages.iter().flat_map(|s| s.instructions.iter()))
    {
        if let InstructionKind::Arg(defs) = &i.kind {
            check(
                "ARG",
                defs.iter().map(|d| d.name.as_str()).collect(),
                &i.comments,
                i.span,
            );
        }
    }
}

pub(super) fn run(df: &Dockerfile, out: &mut Vec<Warning>) {
    definition_descriptions(df, out);
    for w in &df.warnings {
        let span = Span {
            start_line: w.line,
            end_line: w.line,
            start_col: 1,
            ..Span::default()
        };
        out.push(bk(
            "NoEmptyContinuation",
            "Empty continuation lines will become errors in a future release",
            "Empty continuation line".into(),
            span,
        ));
    }
    casing(df, out);
    let meta: BTreeMap<String, Option<String>> = df
        .meta_args
        .iter()
        .flat_map(|i| match &i.kind {
            InstructionKind::Arg(defs) => defs
                .iter()
                .map(|d| (d.name.clone(), d.default.clone()))
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    for arg in &df.meta_args {
        secrets_in(arg, out);
    }
    for stage in &df.stages {
        from_checks(df, stage, &meta, out);
        stage_checks(stage, out);
    }
}

/// StageNameCasing, FromAsCasing, ConsistentInstructionCasing.
fn casing(df: &Dockerfile, out: &mut Vec<Warning>) {
    let mut keywords: Vec<(&str, Span)> = df
        .meta_args
        .iter()
        .map(|i| (i.keyword.as_str(), i.span))
        .collect();
    for s in &df.stages {
        keywords.push((s.keyword.as_str(), s.span));
        keywords.extend(s.instructions.iter().map(|i| (i.keyword.as_str(), i.span)));
        if let Some(orig) = &s.name_original {
            if orig.chars().any(|c| c.is_ascii_uppercase()) {
                out.push(bk(
                    "StageNameCasing",
                    "Stage names should be lowercase",
                    format!("Stage name '{orig}' should be lowercase"),
                    s.span,
                ));
            }
        }
        if let Some(as_kw) = &s.as_keyword {
            let from_upper = is_upper(&s.keyword);
            let as_upper = is_upper(as_kw);
            if (from_upper && !as_upper) || (!from_upper && as_upper) {
                out.push(bk(
                    "FromAsCasing",
                    "The 'as' keyword should match the case of the 'from' keyword",
                    "'as' and 'FROM' keywords' casing do not match".replace("FROM", &s.keyword),
                    s.span,
                ));
            }
        }
    }
    let upper = keywords.iter().filter(|(k, _)| is_upper(k)).count();
    let lower = keywords.iter().filter(|(k, _)| is_lower(k)).count();
    let majority_upper = upper >= lower;
    for (k, span) in keywords {
        let consistent = if majority_upper {
            is_upper(k)
        } else {
            is_lower(k)
        };
        if !consistent {
            out.push(bk(
                "ConsistentInstructionCasing",
                "All commands within the Dockerfile should use the same casing (either upper or lower)",
                format!("Command '{k}' should match the case of the command majority ({})", if majority_upper { "uppercase" } else { "lowercase" }),
                span,
            ));
        }
    }
}

fn is_upper(s: &str) -> bool {
    s.chars().all(|c| !c.is_ascii_lowercase())
}

fn is_lower(s: &str) -> bool {
    s.chars().all(|c| !c.is_ascii_uppercase())
}

fn from_checks(
    df: &Dockerfile,
    stage: &Stage,
    meta: &BTreeMap<String, Option<String>>,
    out: &mut Vec<Warning>,
) {
    if stage.name.as_deref() == Some("scratch") || stage.name.as_deref() == Some("context") {
        out.push(bk(
            "ReservedStageName",
            "Reserved words should not be used as stage names",
            format!(
                "'{}' is reserved and should not be used as a stage name",
                stage.name.as_deref().unwrap_or_default()
            ),
            stage.span,
        ));
    }
    // Variables used in FROM must be declared as global ARGs (or be predefined).
    let mut used = Vec::new();
    let lexer = Lexer::new(df.escape);
    let env: Vec<(String, String)> = Vec::new();
    for word in std::iter::once(&stage.base).chain(stage.platform.iter()) {
        if let Ok(e) = lexer.process_word(word, &env) {
            used.extend(e.unmatched);
        }
    }
    for name in used {
        if !meta.contains_key(&name) && !PREDEFINED_ARGS.contains(&name.as_str()) {
            let mut msg = format!("FROM argument '{name}' is not declared");
            if let Some(s) =
                crate::error::suggest(&name, &meta.keys().map(String::as_str).collect::<Vec<_>>())
            {
                msg.push_str(&format!(" (did you mean {s}?)"));
            }
            out.push(bk(
                "UndefinedArgInFrom",
                "FROM command must use declared ARGs",
                msg,
                stage.span,
            ));
        }
    }
    if let Some(p) = &stage.platform {
        if p == "$TARGETPLATFORM" || p == "${TARGETPLATFORM}" {
            out.push(bk(
                "RedundantTargetPlatform",
                "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
                format!("Setting platform to predefined {p} in FROM is redundant as this is the default behavior"),
                stage.span,
            ));
        } else if !p.contains('$') {
            out.push(bk(
                "FromPlatformFlagConstDisallowed",
                "FROM --platform flag should not use a constant value",
                format!("FROM --platform flag should not use constant value \"{p}\""),
                stage.span,
            ));
        }
    }
    // A global ARG default that makes the base empty.
    // BuildKit gives FROM the platform ARGs with the build's values (`FROM ${TARGETOS}`), the
    // Dockerfile's global ARGs override them.
    let mut expanded: Vec<(String, String)> = [
        ("TARGETPLATFORM", "linux/amd64"),
        ("TARGETOS", "linux"),
        ("TARGETARCH", "amd64"),
        ("BUILDPLATFORM", "linux/amd64"),
        ("BUILDOS", "linux"),
        ("BUILDARCH", "amd64"),
    ]
    .iter()
    .filter(|(k, _)| !meta.iter().any(|(m, _)| m == k))
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    expanded.extend(
        meta.iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())),
    );
    if stage.base.contains('$') {
        if let Ok(e) = lexer.process_word(&stage.base, &expanded) {
            if e.value.is_empty() || e.value.ends_with(':') || e.value.starts_with(':') {
                out.push(bk(
                    "InvalidDefaultArgInFrom",
                    "Default value for global ARG results in an empty or invalid base image name",
                    format!(
                        "Default value for ARG {} results in empty or invalid base image name",
                        stage.base
                    ),
                    stage.span,
                ));
            }
        }
    }
}

/// A Windows absolute path: a drive letter, a colon, a separator.
fn windows_absolute(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'/' || b[2] == b'\\')
}

fn stage_checks(stage: &Stage, out: &mut Vec<Warning>) {
    let mut seen: BTreeMap<&str, Vec<Span>> = BTreeMap::new();
    for i in &stage.instructions {
        match &i.kind {
            InstructionKind::Cmd(c) | InstructionKind::Entrypoint(c) => {
                seen.entry(i.name()).or_default().push(i.span);
                if !c.is_exec() {
                    out.push(bk(
                        "JSONArgsRecommended",
                        "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
                        format!("JSON arguments recommended for {} to prevent unintended behavior related to OS signals", i.name()),
                        i.span,
                    ));
                }
            }
            InstructionKind::Healthcheck(_) => seen.entry(i.name()).or_default().push(i.span),
            InstructionKind::Maintainer(_) => out.push(bk(
                "MaintainerDeprecated",
                "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
                "Maintainer instruction is deprecated in favor of using label".into(),
                i.span,
            )),
            // `C:/ProgramData` and `C:\app` are absolute in a Windows stage.
            InstructionKind::Workdir(p)
                if !p.starts_with('/') && !p.starts_with('$') && !windows_absolute(p) => {
                    out.push(bk(
                        "WorkdirRelativePath",
                        "Using a relative path in WORKDIR can have unexpected results if the base image changes",
                        format!("Relative workdir \"{p}\" can have unexpected results if the base image changes"),
                        i.span,
                    ));
                }
            InstructionKind::Env(kvs) | InstructionKind::Label(kvs) => {
                if kvs.iter().any(|kv| kv.legacy) {
                    out.push(bk(
                        "LegacyKeyValueFormat",
                        "Legacy key/value format with whitespace separator should not be used",
                        format!("\"{0} key=value\" should be used instead of legacy \"{0} key value\" format", i.name()),
                        i.span,
                    ));
                }
                if matches!(i.kind, InstructionKind::Env(_)) {
                    secrets_in(i, out);
                }
            }
            InstructionKind::Arg(_) => secrets_in(i, out),
            InstructionKind::Expose(ports) => {
                for p in ports {
                    if p.contains(':') {
                        out.push(bk(
                            "ExposeInvalidFormat",
                            "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release",
                            format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{p}'"),
                            i.span,
                        ));
                    }
                    if let Some((_, proto)) = p.split_once('/') {
                        if proto.chars().any(|c| c.is_ascii_uppercase()) {
                            out.push(bk(
                                "ExposeProtoCasing",
                                "Protocol in EXPOSE instruction should be lowercase",
                                format!("Defined protocol '{p}' in EXPOSE instruction should be lowercase"),
                                i.span,
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for (name, spans) in seen {
        for span in &spans[..spans.len().saturating_sub(1)] {
            out.push(bk(
                "MultipleInstructionsDisallowed",
                "Multiple instructions of the same type should not be used in the same stage",
                format!("Multiple {name} instructions should not be used in the same stage because only the last one will be used"),
                *span,
            ));
        }
    }
}

/// SecretsUsedInArgOrEnv: names that look like credentials (BuildKit's token list).
fn secrets_in(i: &Instruction, out: &mut Vec<Warning>) {
    let names: Vec<&str> = match &i.kind {
        InstructionKind::Arg(defs) => defs.iter().map(|d| d.name.as_str()).collect(),
        InstructionKind::Env(kvs) => kvs.iter().map(|kv| kv.key.as_str()).collect(),
        _ => return,
    };
    for n in names {
        if looks_secret(n) {
            out.push(bk(
                "SecretsUsedInArgOrEnv",
                "Sensitive data should not be used in the ARG or ENV commands",
                format!(
                    "Do not use ARG or ENV instructions for sensitive data ({} \"{n}\")",
                    i.name()
                ),
                i.span,
            ));
        }
    }
}

fn looks_secret(name: &str) -> bool {
    let words: Vec<String> = name
        .split(['_', '-', '.'])
        .map(str::to_ascii_lowercase)
        .collect();
    let allow = ["public", "file"];
    if words.iter().any(|w| allow.contains(&w.as_str())) {
        return false;
    }
    let deny = [
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    words.iter().any(|w| deny.contains(&w.as_str()))
}

#[cfg(test)]
mod tests {
    use crate::{check, parse};

    use super::super::rule_names as rules;

    #[test]
    fn finds_buildkit_rules() {
        let r = rules("FROM alpine AS Build\nMAINTAINER me\nCMD echo a\nCMD [\"b\"]\nWORKDIR app\nENV A b\nARG API_TOKEN\n");
        for want in [
            "StageNameCasing",
            "MaintainerDeprecated",
            "JSONArgsRecommended",
            "MultipleInstructionsDisallowed",
            "WorkdirRelativePath",
            "LegacyKeyValueFormat",
            "SecretsUsedInArgOrEnv",
        ] {
            assert!(r.contains(&want), "{want} missing from {r:?}");
        }
        assert!(rules("FROM alpine as build\n").contains(&"FromAsCasing"));
        assert!(rules("FROM $BASE\n").contains(&"UndefinedArgInFrom"));
        assert!(!rules("ARG BASE=alpine\nFROM $BASE\n").contains(&"UndefinedArgInFrom"));
        assert!(rules("FROM --platform=linux/amd64 alpine\n")
            .contains(&"FromPlatformFlagConstDisallowed"));
        assert!(
            rules("FROM --platform=$TARGETPLATFORM alpine\n").contains(&"RedundantTargetPlatform")
        );
        assert!(rules("FROM alpine\nrun true\nRUN true\nRUN true\n")
            .contains(&"ConsistentInstructionCasing"));
        assert!(rules("FROM alpine AS scratch\n").contains(&"ReservedStageName"));
        // Experimental checks run only when the directive names them.
        let desc = "# check=experimental=InvalidDefinitionDescription\n# the base\nFROM alpine AS base\n# VERSION pins it\nARG VERSION=1\n# base2 is fine\nFROM alpine AS base2\n";
        let w: Vec<String> = check(&parse(desc).unwrap())
            .into_iter()
            .filter(|w| w.rule == "InvalidDefinitionDescription")
            .map(|w| w.message)
            .collect();
        assert_eq!(
            w,
            ["Comment for FROM should follow the format: `# base <description>`"]
        );
        assert!(
            !rules("# the base\nFROM alpine AS base\n").contains(&"InvalidDefinitionDescription")
        );
        // The platform ARGs have values in FROM; a Windows WORKDIR with a drive is absolute.
        assert!(!rules("FROM ${TARGETOS} AS target\n").contains(&"InvalidDefaultArgInFrom"));
        assert!(rules("ARG TARGETOS=\nFROM ${TARGETOS}\n").contains(&"InvalidDefaultArgInFrom"));
        let win = rules("# escape=`\nFROM mcr.microsoft.com/windows/servercore\nWORKDIR C:/ProgramData/app\nWORKDIR C:\\app\n");
        assert!(!win.contains(&"WorkdirRelativePath"), "{win:?}");
        assert!(rules("FROM a\nWORKDIR app\n").contains(&"WorkdirRelativePath"));
    }

    #[test]
    fn check_directive_skips_and_errors() {
        let w = check(
            &parse("# check=skip=MaintainerDeprecated;error=true\nFROM a\nMAINTAINER x\nCMD a\n")
                .unwrap(),
        );
        assert!(w.iter().all(|w| w.rule != "MaintainerDeprecated"));
        assert!(w.iter().any(
            |w| w.rule == "JSONArgsRecommended" && w.severity == super::super::Severity::Error
        ));
        assert!(check(&parse("# check=skip=all\nFROM a\nMAINTAINER x\n").unwrap()).is_empty());
    }
}
