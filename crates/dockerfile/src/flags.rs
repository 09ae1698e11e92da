//! Instruction flags as BuildKit's `BFlags` reads them: declared per instruction with a type
//! (bool, string, repeatable string); unknown, duplicate or value-less flags are errors.

use crate::error::suggest;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagType {
    Bool,
    Str,
    Strings,
}

/// The parsed flags of one instruction.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    bools: BTreeMap<&'static str, bool>,
    strs: BTreeMap<&'static str, String>,
    strings: BTreeMap<&'static str, Vec<String>>,
}

impl Flags {
    /// Parses `args` (each `--name[=value]`) against the declared flags.
    pub(crate) fn parse(
        args: &[String],
        decl: &[(&'static str, FlagType)],
    ) -> Result<Flags, String> {
        let mut f = Flags::default();
        let mut used: Vec<&str> = Vec::new();
        for arg in args {
            let Some(body) = arg.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {arg}"));
            };
            if body.is_empty() {
                return Ok(f);
            }
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(key, ty)) = decl.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = decl.iter().map(|(n, _)| *n).collect();
                let mut msg = format!("unknown flag: {name}");
                if let Some(s) = suggest(name, &names) {
                    msg.push_str(&format!(" (did you mean {s}?)"));
                }
                return Err(msg);
            };
            if used.contains(&key) && ty != FlagType::Strings {
                return Err(format!("duplicate flag specified: {name}"));
            }
            used.push(key);
            match ty {
                FlagType::Bool => {
                    let v = match value {
                        Some("") => return Err(format!("missing a value on flag: {name}")),
                        None => true,
                        Some(v) => match v.to_ascii_lowercase().as_str() {
                            "true" => true,
                            "false" => false,
                            _ => {
                                return Err(format!(
                                    "expecting boolean value for flag {name}, not: {v}"
                                ))
                            }
                        },
                    };
                    f.bools.insert(key, v);
                }
                FlagType::Str => {
                    let Some(v) = value else {
                        return Err(format!("missing a value on flag: {name}"));
                    };
                    f.strs.insert(key, v.to_string());
                }
                FlagType::Strings => {
                    let Some(v) = value else {
                        return Err(format!("missing a value on flag: {name}"));
                    };
                    f.strings.entry(key).or_default().push(v.to_string());
                }
            }
        }
        Ok(f)
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.bools.get(name).copied().unwrap_or(false)
    }

    pub(crate) fn opt_bool(&self, name: &str) -> Option<bool> {
        self.bools.get(name).copied()
    }

    pub(crate) fn str(&self, name: &str) -> Option<String> {
        self.strs.get(name).cloned()
    }

    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.strings.get(name).cloned().unwrap_or_default()
    }
}

/// Go's `time.ParseDuration`, in nanoseconds (no negative values: Dockerfile durations are positive).
pub(crate) fn parse_duration(s: &str) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    let mut rest = s;
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * mult;
    }
    Some(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bflags_rules() {
        let decl = [
            ("link", FlagType::Bool),
            ("from", FlagType::Str),
            ("exclude", FlagType::Strings),
        ];
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let f = Flags::parse(
            &args(&["--link", "--from=a", "--exclude=x", "--exclude=y"]),
            &decl,
        )
        .unwrap();
        assert!(f.bool("link"));
        assert_eq!(f.str("from").as_deref(), Some("a"));
        assert_eq!(f.strings("exclude"), vec!["x", "y"]);
        assert_eq!(
            Flags::parse(&args(&["--frm=a"]), &decl).unwrap_err(),
            "unknown flag: frm (did you mean from?)"
        );
        assert_eq!(
            Flags::parse(&args(&["--from"]), &decl).unwrap_err(),
            "missing a value on flag: from"
        );
        assert!(Flags::parse(&args(&["--from=a", "--from=b"]), &decl)
            .unwrap_err()
            .contains("duplicate"));
        assert!(Flags::parse(&args(&["--link=maybe"]), &decl)
            .unwrap_err()
            .contains("expecting boolean"));
        assert!(!Flags::parse(&args(&["--link=false"]), &decl)
            .unwrap()
            .bool("link"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("x"), None);
    }
}
