//! `lint`'s configuration file: `.lighter.toml`'s `[lint]` table, or, for people coming from
//! hadolint, its `.hadolint.yaml`. Keys lighter does not implement are refused, never ignored.
//!
//! `.hadolint.yaml` is read by a small hand-written reader of the YAML subset hadolint's documented
//! configuration uses (top-level `key: value` lines, lists as `- item` lines or `[a, b]`), because
//! the maintained YAML crates for serde are either archived (serde_yaml) or a large dependency for
//! three keys; anything outside that subset is an error naming the line.

use crate::cli::FailureThreshold;
use std::path::{Path, PathBuf};

/// What a configuration file sets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LintConfig {
    pub ignore: Vec<String>,
    pub failure_threshold: Option<FailureThreshold>,
    /// Where it came from (for messages).
    pub source: Option<PathBuf>,
}

fn threshold(v: &str, at: &str) -> anyhow::Result<FailureThreshold> {
    Ok(match v.trim().to_ascii_lowercase().as_str() {
        "error" => FailureThreshold::Error,
        "warning" => FailureThreshold::Warning,
        "info" => FailureThreshold::Info,
        "style" => FailureThreshold::Style,
        "ignore" | "none" => FailureThreshold::Ignore,
        o => anyhow::bail!(
            "{at}: failure-threshold {o:?}: expected error, warning, info, style or ignore"
        ),
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    lint: Option<TomlLint>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TomlLint {
    #[serde(default)]
    ignore: Vec<String>,
    failure_threshold: Option<String>,
}

/// Reads `.lighter.toml` (`[lint]`).
pub fn read_toml(path: &Path) -> anyhow::Result<LintConfig> {
    let at = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
    let f: TomlFile = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
    let Some(l) = f.lint else {
        return Ok(LintConfig {
            source: Some(path.to_path_buf()),
            ..Default::default()
        });
    };
    Ok(LintConfig {
        ignore: l.ignore,
        failure_threshold: l
            .failure_threshold
            .map(|t| threshold(&t, &at))
            .transpose()?,
        source: Some(path.to_path_buf()),
    })
}

/// Reads hadolint's `.hadolint.yaml`: `ignored`, `failure-threshold` and `no-fail`.
pub fn read_hadolint(path: &Path) -> anyhow::Result<LintConfig> {
    let at = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
    let mut c = LintConfig {
        source: Some(path.to_path_buf()),
        ..Default::default()
    };
    let mut list: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or("").trim_end();
        let where_ = format!("{at}:{}", n + 1);
        if line.trim().is_empty() || line.trim_start().starts_with('#') || line.trim() == "---" {
            continue;
        }
        if let Some(item) = line.trim_start().strip_prefix("- ") {
            match list.as_deref() {
                Some("ignored") => c.ignore.push(item.trim().trim_matches('"').to_string()),
                _ => anyhow::bail!("{where_}: a list item outside `ignored:`"),
            }
            continue;
        }
        if line.starts_with(' ') {
            anyhow::bail!("{where_}: nested settings are not supported by lighter lint: {raw:?}");
        }
        let Some((k, v)) = line.split_once(':') else {
            anyhow::bail!("{where_}: expected `key: value`: {raw:?}");
        };
        let (k, v) = (k.trim(), v.trim().trim_matches('"'));
        list = None;
        match k {
            "ignored" if v.is_empty() => list = Some("ignored".into()),
            "ignored" => {
                let inner = v
                    .strip_prefix('[')
                    .and_then(|s| s.strip_suffix(']'))
                    .ok_or_else(|| anyhow::anyhow!("{where_}: ignored: expected a list"))?;
                c.ignore.extend(
                    inner
                        .split(',')
                        .map(|s| s.trim().trim_matches('"').to_string())
                        .filter(|s| !s.is_empty()),
                );
            }
            "failure-threshold" => c.failure_threshold = Some(threshold(v, &where_)?),
            "no-fail" => {
                if v == "true" {
                    c.failure_threshold = Some(FailureThreshold::Ignore);
                }
            }
            other => anyhow::bail!(
                "{where_}: `{other}` is a hadolint setting lighter lint does not support (it reads ignored, failure-threshold and no-fail)"
            ),
        }
    }
    Ok(c)
}

/// The configuration: `explicit`, else `./.lighter.toml` when it has a `[lint]` table, else
/// `./.hadolint.yaml` (or `.hadolint.yml`); none is no configuration.
pub fn load(explicit: Option<&Path>) -> anyhow::Result<LintConfig> {
    if let Some(p) = explicit {
        let is_yaml = p.extension().is_some_and(|e| e == "yaml" || e == "yml");
        return if is_yaml {
            read_hadolint(p)
        } else {
            read_toml(p)
        };
    }
    let toml_path = Path::new(".lighter.toml");
    if toml_path.is_file() {
        let c = read_toml(toml_path)?;
        if c.failure_threshold.is_some() || !c.ignore.is_empty() {
            return Ok(c);
        }
    }
    for y in [".hadolint.yaml", ".hadolint.yml"] {
        if Path::new(y).is_file() {
            return read_hadolint(Path::new(y));
        }
    }
    Ok(LintConfig::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_files_and_their_refusals() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join(".lighter.toml");
        std::fs::write(
            &t,
            "[lint]\nignore = [\"DL3009\", \"PipNoCacheDir\"]\nfailure-threshold = \"warning\"\n",
        )
        .unwrap();
        let c = read_toml(&t).unwrap();
        assert_eq!(c.ignore, ["DL3009", "PipNoCacheDir"]);
        assert_eq!(c.failure_threshold, Some(FailureThreshold::Warning));
        std::fs::write(&t, "[lint]\ntrusted-registries = [\"x\"]\n").unwrap();
        assert!(read_toml(&t)
            .unwrap_err()
            .to_string()
            .contains("trusted-registries"));
        let y = d.path().join(".hadolint.yaml");
        std::fs::write(&y, "# hadolint config\nignored:\n  - DL3008\n  - DL3009 # lists\nfailure-threshold: warning\n").unwrap();
        let c = read_hadolint(&y).unwrap();
        assert_eq!(c.ignore, ["DL3008", "DL3009"]);
        assert_eq!(c.failure_threshold, Some(FailureThreshold::Warning));
        std::fs::write(&y, "ignored: [DL3015, \"DL3042\"]\nno-fail: true\n").unwrap();
        let c = read_hadolint(&y).unwrap();
        assert_eq!(c.ignore, ["DL3015", "DL3042"]);
        assert_eq!(c.failure_threshold, Some(FailureThreshold::Ignore));
        std::fs::write(&y, "override:\n  error:\n    - DL3001\n").unwrap();
        let e = read_hadolint(&y).unwrap_err().to_string();
        assert!(
            e.contains(".hadolint.yaml:1") && e.contains("override"),
            "{e}"
        );
    }
}
