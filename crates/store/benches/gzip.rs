//! Layer compression throughput: the same input through lighter's gzip writer with one worker and
//! with every core, in memory (no disk, no hashing of the output), so the figure is the compressor's
//! own scaling. Also zstd, for comparison. Input: `$LIGHTER_BENCH_INPUT` (a tar; `scripts/bench.sh`
//! passes the debootstrap base), else 64 MB of generated text-like data.
//! Run: `cargo bench -p lighter-store --bench gzip`. Target (issue 3): every core >= 1.7x one worker.

use lighter_store::compress::{Compression, Compressor, ParGzWriter};
use std::io::Write;
use std::time::Instant;

fn input() -> (String, Vec<u8>) {
    if let Some(p) = std::env::var_os("LIGHTER_BENCH_INPUT") {
        let data = std::fs::read(&p).expect("read LIGHTER_BENCH_INPUT");
        return (format!("{}", std::path::Path::new(&p).display()), data);
    }
    let words = [
        "layer", "image", "digest", "stage", "copy", "run", "cache", "snapshot", "1234", "\n",
    ];
    let mut x: u64 = 7;
    let mut data = Vec::with_capacity(64 << 20);
    while data.len() < 64 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(words[(x % 10) as usize].as_bytes());
        data.push(b' ');
    }
    ("generated text".into(), data)
}

fn gzip(data: &[u8], threads: Option<usize>) -> (f64, usize) {
    match threads {
        Some(n) => std::env::set_var("LIGHTER_GZIP_THREADS", n.to_string()),
        None => std::env::remove_var("LIGHTER_GZIP_THREADS"),
    }
    let t = Instant::now();
    let mut w = ParGzWriter::new(Vec::with_capacity(data.len() / 2), 6);
    for part in data.chunks(1 << 20) {
        w.write_all(part).unwrap();
    }
    let out = w.finish().unwrap();
    (t.elapsed().as_secs_f64(), out.len())
}

fn main() {
    let (name, data) = input();
    let mb = data.len() as f64 / 1e6;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("input: {name}, {mb:.0} MB; {cores} cores");
    let (t1, n1) = gzip(&data, Some(1));
    let (tn, nn) = gzip(&data, None);
    assert_eq!(n1, nn, "one worker and every core write the same bytes");
    println!(
        "gzip level 6, 1 worker:     {t1:.2} s ({:.0} MB/s), ratio {:.3}",
        mb / t1,
        n1 as f64 / data.len() as f64
    );
    println!(
        "gzip level 6, {cores} workers:    {tn:.2} s ({:.0} MB/s), speedup {:.2}x",
        mb / tn,
        t1 / tn
    );
    let t = Instant::now();
    let mut z = Compressor::new(Vec::with_capacity(data.len() / 2), Compression::Zstd).unwrap();
    z.write_all(&data).unwrap();
    let zl = z.finish().unwrap().len();
    let tz = t.elapsed().as_secs_f64();
    println!(
        "zstd level 3, {cores} threads:    {tz:.2} s ({:.0} MB/s), ratio {:.3}",
        mb / tz,
        zl as f64 / data.len() as f64
    );
}
