//! Word expansion (`process_word`, `process_words`) with either escape character and a few
//! variables set: no panic, no hang.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lighter_dockerfile::shell::Lexer;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Ok(word) = std::str::from_utf8(rest) else { return };
    let escape = if flags & 1 == 0 { '\\' } else { '`' };
    let lexer = Lexer::new(escape)
        .raw_quotes(flags & 2 != 0)
        .raw_escapes(flags & 4 != 0)
        .skip_unset_env(flags & 8 != 0);
    let env = vec![("A", "x y"), ("EMPTY", ""), ("P", "/usr/bin:/bin"), ("N", "3")];
    let _ = lexer.process_word(word, &env);
    let _ = lexer.process_words(word, &env);
});
