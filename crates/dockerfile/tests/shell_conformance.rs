//! BuildKit shell-lexer conformance: envVarTest, wordsTest and the derived substitution facts.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use lighter_dockerfile::shell::{Env, Lexer};
use serde_json::Value;

fn corpus() -> Option<PathBuf> {
    common::corpus("dockerfile-shell")
}

fn report(name: &str, passed: usize, failures: &[String]) {
    println!("{name}: {passed} passed, {} failed", failures.len());
    for f in failures {
        println!("  FAIL {f}");
    }
    assert!(failures.is_empty(), "{name}: {} failures", failures.len());
}

#[test]
fn env_var_test() {
    let Some(dir) = corpus() else { return };
    let text = std::fs::read_to_string(dir.join("envVarTest")).expect("read envVarTest");
    let env: Vec<(String, String)> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let lexer = Lexer::new('\\');
    let (mut passed, mut skipped, mut failures) = (0, 0, Vec::new());
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(fields.len(), 3, "malformed line {line:?}");
        let (platform, input, expected) = (fields[0], fields[1], fields[2]);
        match platform {
            "A" | "U" => {}
            "W" => {
                skipped += 1;
                continue;
            }
            other => panic!("unknown platform {other:?}"),
        }
        let got = lexer.process_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(e), exp) => e.value == exp,
            _ => false,
        };
        if ok {
            passed += 1;
        } else {
            failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    println!("envVarTest: {skipped} Windows-only rows skipped");
    assert!(passed > 200, "too few envVarTest rows ran: {passed}");
    report("envVarTest", passed, &failures);
}

#[test]
fn words_test() {
    let Some(dir) = corpus() else { return };
    let text = std::fs::read_to_string(dir.join("wordsTest")).expect("read wordsTest");
    let mut env: Vec<String> = Vec::new();
    let lexer = Lexer::new('\\');
    let (mut passed, mut failures) = (0, Vec::new());
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(def) = line.strip_prefix("ENV ") {
            env.push(def.trim_start().to_string());
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 2, "malformed line {line:?}");
        let input = parts[0].trim();
        let expected: Vec<&str> = parts[1].trim_start().split(',').collect();
        let got = lexer.process_words(input, &env);
        let ok = match &got {
            Err(_) => expected == ["error"],
            Ok(w) => w.words == expected,
        };
        if ok {
            passed += 1;
        } else {
            failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(passed >= 20, "too few wordsTest rows ran: {passed}");
    report("wordsTest", passed, &failures);
}

fn env_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn derived_substitution_cases() {
    let Some(dir) = corpus() else { return };
    let text =
        std::fs::read_to_string(dir.join("derived/substitution-cases.json")).expect("read json");
    let doc: Value = serde_json::from_str(&text).expect("parse json");
    let lexer = Lexer::new('\\');
    let (mut passed, mut failures) = (0, Vec::new());

    for case in doc["process_word_with_matches"]["cases"]
        .as_array()
        .expect("cases")
    {
        let input = case["input"].as_str().expect("input");
        let env = env_of(&case["env"]);
        let got = lexer.process_word(input, &env);
        let ok = match &got {
            Err(_) => case["error"].as_bool() == Some(true),
            Ok(e) => {
                case["error"].as_bool() != Some(true)
                    && case["expected"].as_str() == Some(e.value.as_str())
                    && e.matched.iter().cloned().collect::<Vec<_>>() == names(&case["matched"])
                    && e.unmatched.iter().cloned().collect::<Vec<_>>() == names(&case["unmatched"])
            }
        };
        if ok {
            passed += 1;
        } else {
            failures.push(format!(
                "with_matches {input:?} env={env:?}: got {got:?}, case {case}"
            ));
        }
    }

    for case in doc["mandatory_vars"]["cases"]
        .as_array()
        .expect("mandatory cases")
    {
        let input = case["input"].as_str().expect("input");
        let env = env_of(&case["env"]);
        let got = lexer.process_word(input, &env);
        let ok = match (&got, case["error"].as_bool() == Some(true)) {
            (Err(e), true) => e
                .to_string()
                .contains(case["error_contains"].as_str().unwrap_or("")),
            (Ok(e), false) => case["expected"].as_str() == Some(e.value.as_str()),
            _ => false,
        };
        if ok {
            passed += 1;
        } else {
            failures.push(format!("mandatory {input:?} env={env:?}: got {got:?}"));
        }
    }

    let pf = &doc["platform_filename"];
    let input = pf["input"].as_str().expect("input");
    for case in pf["cases"].as_array().expect("platform cases") {
        let env = env_of(&case["env"]);
        let got = lexer.process_word(input, &env);
        if got.as_ref().ok().map(|e| e.value.as_str()) == case["expected"].as_str() {
            passed += 1;
        } else {
            failures.push(format!("platform {env:?}: got {got:?}"));
        }
    }

    for case in doc["env_lookup"]["cases"].as_array().expect("env cases") {
        let list = names(&case["env_list"]);
        let want = case["value"].as_str().expect("value");
        let got = Env::get(list.as_slice(), case["lookup"].as_str().expect("lookup")).unwrap_or("");
        if got == want {
            passed += 1;
        } else {
            failures.push(format!("env_lookup {list:?}: got {got:?} want {want:?}"));
        }
    }

    // Pattern facts, observed through `${V#pat}` (anchored prefix removal).
    let pats = &doc["shell_pattern_to_regex"];
    for bad in pats["invalid"].as_array().expect("invalid") {
        let pat = bad.as_str().expect("pattern");
        // `\` would escape the closing brace; feed the pattern through a variable-free form.
        let word = format!("${{V#{pat}}}");
        let env: BTreeMap<String, String> = [("V".to_string(), "abc".to_string())].into();
        let got = lexer.process_word(&word, &env);
        if got.is_err() {
            passed += 1;
        } else {
            failures.push(format!("invalid pattern {pat:?} accepted: {got:?}"));
        }
    }
    report("substitution-cases", passed, &failures);
}
