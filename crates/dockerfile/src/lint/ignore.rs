//! Which findings a user turned off: rule names and hadolint's codes for the same checks (so a
//! `.hadolint.yaml` or a `# hadolint ignore=DL3009` keeps working after a switch to lighter), the
//! inline pragmas `# lighter ignore=RULE[,RULE]` and `# hadolint ignore=...` on the lines above an
//! instruction, and their `global` forms anywhere in the file.

use super::Warning;
use crate::ast::{Dockerfile, Instruction};

/// Every rule lighter's lint has.
pub const RULES: &[&str] = &[
    "AddInsteadOfCopy",
    "ApkNoCache",
    "ApkVersionPin",
    "AptGetNoYes",
    "AptListsNotCleaned",
    "AptNoInstallRecommends",
    "AptVersionPin",
    "CdInsteadOfWorkdir",
    "ConsistentInstructionCasing",
    "CopyAllBeforeInstall",
    "CopyAllToFinalStage",
    "CopyFromUnknownStage",
    "ExposeInvalidFormat",
    "ExposeProtoCasing",
    "FinalStageToolchain",
    "FromAsCasing",
    "FromPlatformFlagConstDisallowed",
    "GemVersionPin",
    "GoCgoInScratch",
    "InvalidDefaultArgInFrom",
    "InvalidDefinitionDescription",
    "JSONArgsRecommended",
    "LastUserRoot",
    "LegacyKeyValueFormat",
    "MaintainerDeprecated",
    "MakeMultiStage",
    "MultipleInstructionsDisallowed",
    "NoCacheMount",
    "NoEmptyContinuation",
    "NodeModulesWithDevDependencies",
    "NpmCiRecommended",
    "NpmVersionPin",
    "PipNoCacheDir",
    "PipVersionPin",
    "PipefailMissing",
    "RedundantTargetPlatform",
    "ReservedStageName",
    "ScratchTlsWithoutCa",
    "SecretsUsedInArgOrEnv",
    "SingleStageToolchain",
    "StageNameCasing",
    "SudoInRun",
    "UndefinedArgInFrom",
    "UnpinnedBase",
    "WeakDockerignore",
    "WorkdirRelativePath",
];

/// hadolint's codes for the checks both tools implement: (code, lighter's rule).
pub const ALIASES: &[(&str, &str)] = &[
    ("DL3000", "WorkdirRelativePath"),
    ("DL3002", "LastUserRoot"),
    ("DL3003", "CdInsteadOfWorkdir"),
    ("DL3004", "SudoInRun"),
    ("DL3008", "AptVersionPin"),
    ("DL3013", "PipVersionPin"),
    ("DL3014", "AptGetNoYes"),
    ("DL3016", "NpmVersionPin"),
    ("DL3018", "ApkVersionPin"),
    ("DL3020", "AddInsteadOfCopy"),
    ("DL3022", "CopyFromUnknownStage"),
    ("DL3028", "GemVersionPin"),
    ("DL4006", "PipefailMissing"),
    ("DL3006", "UnpinnedBase"),
    ("DL3007", "UnpinnedBase"),
    ("DL3009", "AptListsNotCleaned"),
    ("DL3015", "AptNoInstallRecommends"),
    ("DL3019", "ApkNoCache"),
    ("DL3025", "JSONArgsRecommended"),
    ("DL3042", "PipNoCacheDir"),
    ("DL4000", "MaintainerDeprecated"),
    ("DL4003", "MultipleInstructionsDisallowed"),
    ("DL4004", "MultipleInstructionsDisallowed"),
];

/// lighter's rule for a rule name or a hadolint code (case-insensitive); `None` when neither.
pub fn canonical(name: &str) -> Option<&'static str> {
    let n = name.trim();
    RULES
        .iter()
        .find(|r| r.eq_ignore_ascii_case(n))
        .copied()
        .or_else(|| {
            ALIASES
                .iter()
                .find(|(code, _)| code.eq_ignore_ascii_case(n))
                .map(|(_, r)| *r)
        })
}

/// hadolint's codes for `rule` (for reports that carry both names).
pub fn codes_of(rule: &str) -> Vec<&'static str> {
    ALIASES
        .iter()
        .filter(|(_, r)| *r == rule)
        .map(|(c, _)| *c)
        .collect()
}

/// The rules a pragma comment names: `lighter ignore=A,B` / `hadolint ignore=DL3009`, with
/// `global` before `ignore` for the whole file: (global, names as written).
fn pragma(comment: &str) -> Option<(bool, Vec<String>)> {
    let c = comment.trim().trim_start_matches('#').trim();
    let rest = c
        .strip_prefix("lighter")
        .or_else(|| c.strip_prefix("hadolint"))?
        .trim_start();
    let (global, rest) = match rest.strip_prefix("global") {
        Some(r) => (true, r.trim_start()),
        None => (false, rest),
    };
    let list = rest
        .strip_prefix("ignore")?
        .trim_start()
        .strip_prefix('=')?;
    let names = list
        .split(',')
        .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
        .filter(|s| !s.is_empty())
        .collect();
    Some((global, names))
}

fn instructions(df: &Dockerfile) -> impl Iterator<Item = &Instruction> {
    df.meta_args
        .iter()
        .chain(df.stages.iter().flat_map(|s| s.instructions.iter()))
}

/// Pragmas that name neither a rule nor a known code: (line of the instruction below, name).
pub fn unknown_pragmas(df: &Dockerfile) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let stage_comments = df.stages.iter().map(|s| (&s.comments, s.span.start_line));
    let ins_comments = instructions(df).map(|i| (&i.comments, i.span.start_line));
    for (comments, line) in stage_comments.chain(ins_comments) {
        for c in comments {
            if let Some((_, names)) = pragma(c) {
                out.extend(
                    names
                        .into_iter()
                        .filter(|n| canonical(n).is_none())
                        .map(|n| (line, n)),
                );
            }
        }
    }
    out
}

/// Drops the findings the user turned off: `ignore` (rule names or codes, from flags and config)
/// and the file's pragmas (above the instruction a finding is on, or global).
pub fn apply(df: &Dockerfile, ignore: &[String], findings: &mut Vec<Warning>) {
    let mut global: Vec<&'static str> = ignore.iter().filter_map(|n| canonical(n)).collect();
    // (first and last line of an instruction, the rules ignored there)
    let mut local: Vec<(usize, usize, Vec<&'static str>)> = Vec::new();
    let stage_comments = df
        .stages
        .iter()
        .map(|s| (&s.comments, s.span.start_line, s.span.end_line));
    let ins_comments = instructions(df).map(|i| (&i.comments, i.span.start_line, i.span.end_line));
    for (comments, start, end) in stage_comments.chain(ins_comments) {
        for c in comments {
            if let Some((g, names)) = pragma(c) {
                let rules: Vec<&'static str> = names.iter().filter_map(|n| canonical(n)).collect();
                if g {
                    global.extend(rules);
                } else {
                    local.push((start, end, rules));
                }
            }
        }
    }
    findings.retain(|w| {
        !global.contains(&w.rule)
            && !local.iter().any(|(a, b, rules)| {
                (*a..=*b).contains(&w.span.start_line) && rules.contains(&w.rule)
            })
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{check, parse};

    fn rules_after(src: &str, ignore: &[&str]) -> Vec<&'static str> {
        let df = parse(src).unwrap();
        let mut w = check(&df);
        let ignore: Vec<String> = ignore.iter().map(|s| s.to_string()).collect();
        apply(&df, &ignore, &mut w);
        w.into_iter().map(|w| w.rule).collect()
    }

    #[test]
    fn names_codes_and_pragmas() {
        assert_eq!(canonical("dl3009"), Some("AptListsNotCleaned"));
        assert_eq!(canonical("pipnocachedir"), Some("PipNoCacheDir"));
        assert_eq!(canonical("DL9999"), None);
        let src = "FROM debian\nRUN apt-get update && apt-get install -y x\nMAINTAINER me\n";
        let all = rules_after(src, &[]);
        assert!(all.contains(&"AptListsNotCleaned") && all.contains(&"MaintainerDeprecated"));
        // --ignore with a rule name and with hadolint's code.
        let r = rules_after(src, &["DL3009", "MaintainerDeprecated"]);
        assert!(
            !r.contains(&"AptListsNotCleaned") && !r.contains(&"MaintainerDeprecated"),
            "{r:?}"
        );
        assert!(r.contains(&"AptNoInstallRecommends"));
        // A pragma above the instruction, in either tool's words; it covers that instruction only.
        let src = "FROM debian\n# hadolint ignore=DL3009,DL3015\nRUN apt-get update && apt-get install -y x\nRUN apt-get update && apt-get install -y y\n";
        let r = rules_after(src, &[]);
        assert_eq!(
            r.iter().filter(|r| **r == "AptListsNotCleaned").count(),
            1,
            "{r:?}"
        );
        let src = "# lighter global ignore=AptListsNotCleaned\nFROM debian\nRUN apt-get update\n";
        assert!(!rules_after(src, &[]).contains(&"AptListsNotCleaned"));
        let df = parse("FROM a\n# lighter ignore=NoSuchRule\nRUN x\n").unwrap();
        assert_eq!(unknown_pragmas(&df), [(3, "NoSuchRule".to_string())]);
        assert_eq!(
            codes_of("MultipleInstructionsDisallowed"),
            ["DL4003", "DL4004"]
        );
    }
}
