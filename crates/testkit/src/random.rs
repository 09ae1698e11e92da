//! Deterministic incompressible test data: an xorshift generator, files and rootfs tars of it.

use std::path::Path;

/// xorshift64: fast, deterministic, and its bytes do not compress.
pub struct Rng(pub u64);

impl Rng {
    /// A generator for `seed` (any value; forced odd so it never sticks at zero).
    pub fn new(seed: u64) -> Rng {
        Rng((seed << 1) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// Writes `bytes` incompressible bytes to `path`.
pub fn random_file(path: &Path, bytes: usize, seed: u64) {
    std::fs::write(path, Rng::new(seed).bytes(bytes)).unwrap();
}

/// Writes a rootfs tar of `files` incompressible files `data/f<i>` of `file_bytes` each.
pub fn random_rootfs_tar(path: &Path, files: usize, file_bytes: usize, seed: u64) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut rng = Rng::new(seed);
    for i in 0..files {
        let data = rng.bytes(file_bytes);
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, format!("data/f{i}"), &data[..])
            .unwrap();
    }
    b.finish().unwrap();
}
