//! Bounded concurrency per host: at most [`PER_HOST`] blob transfers to one registry at once, across
//! every pull and push of the process (the stages of a build pull their bases in parallel, each with
//! several connections). A slot is held for as long as a blob body is read or uploaded and given
//! back on drop, so a waiter's wait ends when a transfer ends (transfers have timeouts).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

/// Blob transfers at once to one host (docker's daemon: 3 downloads, 5 uploads by default).
pub const PER_HOST: usize = 4;

/// The counts of transfers in flight per host, shared by a client's clones.
#[derive(Clone, Default)]
pub struct Limiter(Arc<(Mutex<HashMap<String, usize>>, Condvar)>);

/// One transfer's slot; dropping it frees the slot.
pub struct Slot {
    limiter: Limiter,
    host: String,
}

impl Limiter {
    /// Waits for a free slot for `host`.
    pub fn acquire(&self, host: &str) -> Slot {
        self.acquire_max(host, PER_HOST)
    }

    fn acquire_max(&self, host: &str, max: usize) -> Slot {
        let (counts, freed) = &*self.0;
        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
        while c.get(host).copied().unwrap_or(0) >= max {
            c = freed.wait(c).unwrap_or_else(|e| e.into_inner());
        }
        *c.entry(host.to_string()).or_default() += 1;
        Slot {
            limiter: self.clone(),
            host: host.to_string(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (counts, freed) = &*self.limiter.0;
        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = c.get_mut(&self.host) {
            *n = n.saturating_sub(1);
        }
        freed.notify_all();
    }
}

/// A reader that holds its transfer's slot until it is dropped.
pub struct Held<R> {
    pub inner: R,
    pub _slot: Slot,
}

impl<R: std::io::Read> std::io::Read for Held<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn no_more_than_the_limit_per_host_and_hosts_are_independent() {
        let l = Limiter::default();
        let (now, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| {
                    let _slot = l.acquire_max("a", 3);
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    // Another host is never blocked by this one's full slots.
                    drop(l.acquire_max("b", 1));
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(l.0 .0.lock().unwrap()["a"], 0);
    }
}
