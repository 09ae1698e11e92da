//! The layer reader: decompression (gzip, zstd or plain, sniffed) and the tar unpacker that
//! applies whiteouts, links and PAX records under a root. No panic, no hang, and nothing is
//! written outside the root (the root's parent holds only the root).
#![no_main]
use libfuzzer_sys::fuzz_target;
use lighter_store::compress::decompress;
use lighter_store::layer::{apply, ApplyFormat};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    if let Ok(mut r) = decompress(data) {
        let _ = apply(&mut r, &root, ApplyFormat::Overlay);
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["root"], "written next to the root");
});
