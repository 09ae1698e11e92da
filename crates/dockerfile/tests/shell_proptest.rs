//! Property tests: word expansion never panics and respects simple invariants on any input.

use std::collections::BTreeMap;

use lighter_dockerfile::shell::Lexer;
use proptest::prelude::*;

fn env() -> BTreeMap<String, String> {
    [("A", "x y"), ("B", ""), ("PWD", "/home")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_input_never_panics(word in "[-$\\{\\}:+?#%/*\\\\`'\" aAB_0-9\\[\\]é\t]{0,40}", backtick in any::<bool>()) {
        let lexer = Lexer::new(if backtick { '`' } else { '\\' });
        let env = env();
        let single = lexer.process_word(&word, &env);
        let split = lexer.process_words(&word, &env);
        // Both entry points run the same scanner: they fail on exactly the same inputs.
        prop_assert_eq!(single.is_ok(), split.is_ok());
        if let (Ok(s), Ok(w)) = (single, split) {
            prop_assert_eq!(&s.matched, &w.matched);
            prop_assert_eq!(&s.unmatched, &w.unmatched);
            prop_assert!(s.matched.is_disjoint(&s.unmatched));
            prop_assert!(w.words.iter().all(|x| !x.is_empty()));
        }
    }

    #[test]
    fn arbitrary_unicode_never_panics(word in any::<String>()) {
        let env = env();
        let _ = Lexer::new('\\').process_word(&word, &env);
        let _ = Lexer::new('`').raw_quotes(true).raw_escapes(true).process_words(&word, &env);
    }

    #[test]
    fn plain_words_are_unchanged(word in "[a-zA-Z0-9_./-]{0,30}") {
        let got = Lexer::new('\\').process_word(&word, &env()).expect("plain word expands");
        prop_assert_eq!(got.value, word);
    }
}

#[test]
fn backtick_escape_token() {
    let env = env();
    let lexer = Lexer::new('`');
    assert_eq!(
        lexer.process_word("a`$A\\b", &env).expect("expands").value,
        "a$A\\b"
    );
    assert_eq!(
        lexer.process_word("\"`\"q\"", &env).expect("expands").value,
        "\"q"
    );
    let words = lexer.process_words("one` two $A", &env).expect("splits");
    assert_eq!(words.words, ["one two", "x", "y"]);
}

#[test]
fn error_messages_match_buildkit() {
    let env = env();
    let lexer = Lexer::default();
    let err = lexer
        .process_word("${UNSET:?need it}", &env)
        .expect_err("unset is an error");
    assert_eq!(
        err.to_string(),
        "failed to process \"${UNSET:?need it}\": UNSET: need it"
    );
    let err = lexer
        .process_word("${B:?}", &env)
        .expect_err("empty is an error");
    assert_eq!(
        err.to_string(),
        "failed to process \"${B:?}\": B: is not allowed to be empty"
    );
    let err = lexer.process_word("${A", &env).expect_err("missing brace");
    assert!(err.to_string().contains("missing '}'"), "{err}");
    let err = lexer
        .process_word("${}", &env)
        .expect_err("bad substitution");
    assert!(err.to_string().ends_with("bad substitution"), "{err}");
}

#[test]
fn skip_unset_env_keeps_references() {
    let env = env();
    let lexer = Lexer::default().skip_unset_env(true);
    let got = lexer
        .process_word("$NOPE ${NOPE} ${NOPE:-d} $A", &env)
        .expect("expands");
    assert_eq!(got.value, "$NOPE ${NOPE} ${NOPE:-d} x y");
    assert_eq!(got.unmatched.iter().collect::<Vec<_>>(), ["NOPE"]);
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let env = env();
    let nest = |n: usize| format!("{}z{}", "${U:-".repeat(n), "}".repeat(n));
    let lexer = Lexer::new('\\');
    let max = lighter_dockerfile::shell::MAX_NESTING;
    assert_eq!(lexer.process_word(&nest(max), &env).unwrap().value, "z");
    // Quotes inside the nesting go through the same counter.
    let quoted = format!("{}z{}", "\"${U:-".repeat(max), "}\"".repeat(max));
    assert_eq!(lexer.process_word(&quoted, &env).unwrap().value, "z");
    for n in [max + 1, 10_000, 100_000] {
        let e = lexer.process_word(&nest(n), &env).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("nested more than {max} levels")),
            "{n}: {e}"
        );
    }
}
