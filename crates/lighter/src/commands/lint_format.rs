//! `lint --format`: the reports CI tools read, as hadolint writes them: SARIF 2.1.0 (GitHub code
//! scanning), Checkstyle XML, Code Climate (engine issues, NUL-separated), GitLab's Code Quality
//! (a JSON array with fingerprints) and JUnit XML. The text and JSON forms stay in `lint`.

use lighter_dockerfile::lint::ignore::codes_of;
use lighter_dockerfile::{Severity, Warning};
use serde_json::json;
use sha2::Digest as _;

fn level(w: &Warning) -> &'static str {
    if w.severity == Severity::Error {
        "error"
    } else {
        "warning"
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The report of `findings` in `file` in `format` (one of the formats above).
pub fn render(format: &str, file: &str, findings: &[Warning]) -> String {
    match format {
        "sarif" => sarif(file, findings),
        "checkstyle" => checkstyle(file, findings),
        "codeclimate" => codeclimate(file, findings),
        "gitlab_codeclimate" => gitlab(file, findings),
        _ => junit(file, findings),
    }
}

fn sarif(file: &str, findings: &[Warning]) -> String {
    let mut rules: Vec<&Warning> = Vec::new();
    for w in findings {
        if !rules.iter().any(|r| r.rule == w.rule) {
            rules.push(w);
        }
    }
    let rules: Vec<serde_json::Value> = rules
        .iter()
        .map(|w| {
            let mut r = json!({
                "id": w.rule,
                "shortDescription": { "text": w.description },
                "properties": { "hadolint": codes_of(w.rule) },
            });
            if !w.url.is_empty() {
                r["helpUri"] = json!(w.url);
            }
            r
        })
        .collect();
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|w| {
            json!({
                "ruleId": w.rule,
                "level": level(w),
                "message": { "text": w.message },
                "locations": [{ "physicalLocation": {
                    "artifactLocation": { "uri": file },
                    "region": { "startLine": w.span.start_line.max(1), "startColumn": w.span.start_col.max(1) },
                }}],
            })
        })
        .collect();
    let v = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": { "name": "lighter lint", "informationUri": "https://docs.docker.com/reference/build-checks/", "rules": rules } },
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

fn checkstyle(file: &str, findings: &[Warning]) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<checkstyle version=\"4.3\">\n");
    out.push_str(&format!("  <file name=\"{}\">\n", xml(file)));
    for w in findings {
        out.push_str(&format!(
            "    <error line=\"{}\" column=\"{}\" severity=\"{}\" message=\"{}\" source=\"{}\"/>\n",
            w.span.start_line,
            w.span.start_col,
            level(w),
            xml(&w.message),
            xml(w.rule)
        ));
    }
    out.push_str("  </file>\n</checkstyle>\n");
    out
}

fn issue(file: &str, w: &Warning) -> serde_json::Value {
    json!({
        "type": "issue",
        "check_name": w.rule,
        "description": w.message,
        "categories": [if w.url.is_empty() { "Performance" } else { "Bug Risk" }],
        "location": { "path": file, "lines": { "begin": w.span.start_line, "end": w.span.end_line.max(w.span.start_line) } },
        "severity": if w.severity == Severity::Error { "major" } else { "minor" },
    })
}

/// Code Climate's engine output: each issue a JSON object followed by a NUL.
fn codeclimate(file: &str, findings: &[Warning]) -> String {
    findings
        .iter()
        .map(|w| format!("{}\0", issue(file, w)))
        .collect()
}

/// GitLab's Code Quality report: one JSON array, each issue with a stable fingerprint.
fn gitlab(file: &str, findings: &[Warning]) -> String {
    let v: Vec<serde_json::Value> = findings
        .iter()
        .map(|w| {
            let mut i = issue(file, w);
            let key = format!("{file}:{}:{}:{}", w.span.start_line, w.rule, w.message);
            i["fingerprint"] = json!(hex::encode(sha2::Sha256::digest(key.as_bytes())));
            i
        })
        .collect();
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

fn junit(file: &str, findings: &[Warning]) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"lighter lint {}\" tests=\"{}\" failures=\"{}\">\n",
        xml(file),
        findings.len().max(1),
        findings.len()
    );
    if findings.is_empty() {
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"no problems found\"/>\n",
            xml(file)
        ));
    }
    for w in findings {
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{} (line {})\">\n      <failure type=\"{}\" message=\"{}\"/>\n    </testcase>\n",
            xml(file),
            xml(w.rule),
            w.span.start_line,
            level(w),
            xml(&w.message)
        ));
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
