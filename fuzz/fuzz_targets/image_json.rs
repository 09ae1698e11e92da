//! Image JSON: a config through the typed model and back, and manifests and indexes as the
//! loaders read them (serde_json values with deep nesting and huge numbers). No panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(c) = lighter_oci::config::ImageConfig::from_json(&v) {
        let back = c.to_json();
        let again = lighter_oci::config::ImageConfig::from_json(&back).expect("own output reads back");
        assert_eq!(again.to_json(), back);
    }
});
