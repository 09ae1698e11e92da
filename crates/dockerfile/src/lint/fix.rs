//! `lighter lint --fix`: the rewrites that cannot change what the build does, applied to the source
//! text in place — instruction keywords in the file's majority casing (ConsistentInstructionCasing),
//! a shell-form CMD or ENTRYPOINT that is one plain command written in JSON form
//! (JSONArgsRecommended: no variable, quote, glob, redirect or operator, so the shell did nothing
//! but split words), and `--no-install-recommends` added to `apt-get install`
//! (AptNoInstallRecommends). Everything else is left for the user.

use super::Warning;
use crate::ast::*;

/// The instruction that starts on `line`.
fn instruction_at(df: &Dockerfile, line: usize) -> Option<&Instruction> {
    df.meta_args
        .iter()
        .chain(df.stages.iter().flat_map(|s| s.instructions.iter()))
        .find(|i| i.span.start_line == line)
}

/// The words of a shell command the shell would only split: plain words only.
fn plain_words(s: &str) -> Option<Vec<String>> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c);
    let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    (!words.is_empty() && words.iter().all(|w| w.chars().all(ok))).then_some(words)
}

/// Applies the safe fixes for `findings` to `src`; returns the new text and the rules it fixed.
pub fn fix(src: &str, df: &Dockerfile, findings: &[Warning]) -> (String, Vec<&'static str>) {
    // (start, end, replacement) in byte offsets of `src`.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut fixed = Vec::new();
    for w in findings {
        let start = w.span.line_offset + w.span.start_col.saturating_sub(1);
        match w.rule {
            "ConsistentInstructionCasing" => {
                let Some(kw) = src.get(start..).and_then(|t| t.split_whitespace().next()) else {
                    continue;
                };
                let to = if w.message.contains("(uppercase)") {
                    kw.to_ascii_uppercase()
                } else {
                    kw.to_ascii_lowercase()
                };
                edits.push((start, start + kw.len(), to));
                fixed.push(w.rule);
            }
            "JSONArgsRecommended" => {
                let Some(i) = instruction_at(df, w.span.start_line) else {
                    continue;
                };
                let (InstructionKind::Cmd(Command::Shell(text))
                | InstructionKind::Entrypoint(Command::Shell(text))) = &i.kind
                else {
                    continue;
                };
                let Some(words) = plain_words(text) else {
                    continue;
                };
                if w.span.start_line != w.span.end_line {
                    continue;
                }
                let line_end = src[start..].find('\n').map_or(src.len(), |n| start + n);
                let json = serde_json::to_string(&words).unwrap_or_default();
                edits.push((start, line_end, format!("{} {json}", i.keyword)));
                fixed.push(w.rule);
            }
            "AptNoInstallRecommends" => {
                let end = w.span.end_offset.min(src.len());
                let text = &src[start..end];
                // Each `apt-get ... install` (or `apt ... install`) without the flag, before the next
                // operator: the flag goes right after `install`.
                let mut at = 0;
                let mut any = false;
                while let Some(p) =
                    find_word(&text[at..], "apt-get").or_else(|| find_word(&text[at..], "apt"))
                {
                    let seg_start = at + p;
                    let seg_end = text[seg_start..]
                        .find(['&', ';', '|', '\n'])
                        .map_or(text.len(), |n| seg_start + n);
                    let seg = &text[seg_start..seg_end];
                    if !seg.contains("--no-install-recommends") {
                        if let Some(ip) = find_word(seg, "install") {
                            let pos = start + seg_start + ip + "install".len();
                            edits.push((pos, pos, " --no-install-recommends".into()));
                            any = true;
                        }
                    }
                    at = seg_end.max(seg_start + 1);
                    if at >= text.len() {
                        break;
                    }
                }
                if any {
                    fixed.push(w.rule);
                }
            }
            _ => {}
        }
    }
    edits.sort_by(|a, b| b.0.cmp(&a.0));
    edits.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let mut out = src.to_string();
    let mut last = usize::MAX;
    for (s, e, r) in edits {
        // Overlapping edits: keep the first applied (the later in the file).
        if e > last {
            continue;
        }
        out.replace_range(s..e, &r);
        last = s;
    }
    (out, fixed)
}

/// The byte offset of `w` as a whole word in `s`.
fn find_word(s: &str, w: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = s[from..].find(w) {
        let i = from + p;
        let before = s[..i].chars().next_back();
        let after = s[i + w.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| c.is_whitespace() || "&;|(".contains(c));
        if boundary(before) && after.is_none_or(|c| c.is_whitespace() || ";&|)".contains(c)) {
            return Some(i);
        }
        from = i + w.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::{check, parse};

    fn fixed(src: &str) -> String {
        let df = parse(src).unwrap();
        super::fix(src, &df, &check(&df)).0
    }

    #[test]
    fn safe_rewrites_only() {
        assert_eq!(
            fixed("FROM debian:12\nrun apt-get update && apt-get -y install curl && rm -rf /var/lib/apt/lists/*\nRUN true\nRUN true\nCMD node server.js\n"),
            "FROM debian:12\nRUN apt-get update && apt-get -y install --no-install-recommends curl && rm -rf /var/lib/apt/lists/*\nRUN true\nRUN true\nCMD [\"node\",\"server.js\"]\n"
        );
        // A CMD the shell does more with stays as it is.
        let src = "FROM a:1\nCMD echo $HOME > /tmp/x\n";
        assert_eq!(fixed(src), src);
        // Idempotent.
        let once = fixed("FROM debian:12\nRUN apt-get install -y x\nENTRYPOINT run.sh --flag\n");
        assert_eq!(fixed(&once), once);
        assert!(
            once.contains("ENTRYPOINT [\"run.sh\",\"--flag\"]")
                && once.contains("install --no-install-recommends -y x"),
            "{once}"
        );
    }
}
