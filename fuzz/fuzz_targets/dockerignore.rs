//! `.dockerignore` parsing and matching: the first line is a path to test, the rest the file.
//! No panic, no hang; `filter` agrees with `matches`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lighter_dockerfile::dockerignore::{parse_dockerignore, Matcher};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (path, file) = text.split_once('\n').unwrap_or((text, ""));
    let patterns = parse_dockerignore(file);
    let Ok(m) = Matcher::new(patterns.iter().map(|p| p.as_str().to_string())) else { return };
    let paths = [path, "a/b/c", ".git/config", "node_modules/x.js", "x.log"];
    let kept = m.filter(&paths);
    for p in paths {
        assert_eq!(kept.contains(&p), !m.matches(p), "{p:?}");
    }
    let _ = m.can_skip_dir(path);
});
