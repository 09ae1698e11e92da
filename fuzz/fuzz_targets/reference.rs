//! Image references: no panic, and a parsed reference prints as text that parses (without a default tag) to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lighter_oci::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    for r in [Reference::parse(s), Reference::parse_named(s)].into_iter().flatten() {
        let text = r.to_string();
        let again = Reference::parse_named(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(again.to_string(), text);
    }
});
