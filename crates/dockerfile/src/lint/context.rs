//! The `.dockerignore` rule, judged against what the build context really holds: when a COPY or
//! ADD takes the whole context, a `.git` directory, `node_modules` or `.env` files that
//! `.dockerignore` does not exclude go into the image, with their sizes. The caller (which may do
//! I/O) lists those entries; this module only decides.

use super::{Severity, Warning};
use crate::ast::*;

/// A top-level entry of the build context that rarely belongs in an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    pub name: String,
    pub bytes: u64,
    /// Whether `.dockerignore` excludes it.
    pub ignored: bool,
}

/// The names to look for: `.git`, `node_modules`, and `.env` files.
pub fn wanted(name: &str) -> bool {
    name == ".git" || name == "node_modules" || name == ".env" || name.starts_with(".env.")
}

fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", units[i])
    }
}

/// `WeakDockerignore` for the first whole-context COPY/ADD, when some entry would be copied.
pub fn check(df: &Dockerfile, entries: &[ContextEntry], has_dockerignore: bool) -> Vec<Warning> {
    let shipped: Vec<&ContextEntry> = entries.iter().filter(|e| !e.ignored).collect();
    if shipped.is_empty() {
        return Vec::new();
    }
    let whole = df
        .stages
        .iter()
        .flat_map(|s| &s.instructions)
        .find(|i| match &i.kind {
            InstructionKind::Copy(c) | InstructionKind::Add(c) => {
                c.from.is_none()
                    && c.sources
                        .iter()
                        .any(|s| matches!(s.as_str(), "." | "./" | "*"))
            }
            _ => false,
        });
    let Some(i) = whole else {
        return Vec::new();
    };
    let list: Vec<String> = shipped
        .iter()
        .map(|e| format!("{} ({})", e.name, human(e.bytes)))
        .collect();
    let secrets = shipped.iter().any(|e| e.name.starts_with(".env"));
    vec![Warning {
        rule: "WeakDockerignore",
        message: format!(
            "{} copies the whole context, and {} {}: add {} to {}{}",
            i.keyword.to_ascii_uppercase(),
            if has_dockerignore {
                ".dockerignore lets through"
            } else {
                "there is no .dockerignore, so it takes"
            },
            list.join(", "),
            shipped
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if has_dockerignore {
                ".dockerignore"
            } else {
                "a .dockerignore"
            },
            if secrets {
                " (.env files hold secrets)"
            } else {
                ""
            }
        ),
        description: "files the image does not need are copied into it",
        url: String::new(),
        span: i.span,
        severity: Severity::Warning,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_whole_context_copy_takes() {
        let e = |n: &str, b, ignored| ContextEntry {
            name: n.into(),
            bytes: b,
            ignored,
        };
        let entries = [
            e(".git", 12_300_000, false),
            e("node_modules", 180_000_000, true),
            e(".env", 40, false),
        ];
        let df = crate::parse("FROM node:18\nCOPY package.json .\nCOPY . .\n").unwrap();
        let w = check(&df, &entries, true);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].span.start_line, 3);
        assert!(
            w[0].message.contains(".git (12.3MB), .env (40B)") && w[0].message.contains("secrets"),
            "{}",
            w[0].message
        );
        assert!(!w[0].message.contains("node_modules"));
        let df = crate::parse("FROM node:18\nCOPY src/ src/\n").unwrap();
        assert!(
            check(&df, &entries, true).is_empty(),
            "no whole-context copy"
        );
        assert!(check(
            &crate::parse("FROM a\nCOPY . .\n").unwrap(),
            &[e(".git", 1, true)],
            true
        )
        .is_empty());
        assert!(wanted(".env.local") && !wanted(".envrc") && !wanted("src"));
    }
}
