//! The Dockerfile parser and the lint pass over what it parses: no panic, no hang, and every
//! error points inside the source.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    match lighter_dockerfile::parse(src) {
        Ok(df) => {
            let _ = lighter_dockerfile::check(&df);
        }
        Err(e) => {
            let lines = src.split('\n').count();
            assert!(e.span.start_line <= lines + 1, "error at line {} of {lines}", e.span.start_line);
            let _ = e.render("Dockerfile", src);
        }
    }
});
