//! `RUN --mount=type=ssh`'s socket: a proxy socket per mount with the mount's owner and mode
//! (BuildKit's `uid`, `gid`, `mode`; default 0:0 and 0600), whose connections are relayed to the agent
//! (the host's, or lighter's own for key files). Binding the agent's socket itself would give the RUN
//! the host socket's owner and mode, which a non-root USER may not be able to open, and a chmod there
//! would change the host's socket.

use crate::EngineError;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A listening proxy; dropping it stops accepting (connections already relayed end with their peers,
/// which are the step's processes).
pub(super) struct SshProxy {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl SshProxy {
    /// Listens at `path` (owner `uid`:`gid`, permission bits `mode`) and relays to `agent`.
    pub(super) fn start(
        agent: &Path,
        path: &Path,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> Result<SshProxy, EngineError> {
        let err = |what: &str, e: std::io::Error| {
            EngineError::msg(format!("ssh mount: {what} {}: {e}", path.display()))
        };
        let listener = UnixListener::bind(path).map_err(|e| err("listen on", e))?;
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| err("chown", e))?;
        std::fs::set_permissions(
            path,
            std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777),
        )
        .map_err(|e| err("chmod", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (agent, stopping) = (agent.to_path_buf(), stop.clone());
        let accept = std::thread::Builder::new()
            .name("ssh-proxy".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    // An agent that went away closes the client: ssh-add then says it cannot connect.
                    let Ok(upstream) = UnixStream::connect(&agent) else {
                        continue;
                    };
                    relay(client, upstream);
                }
            })
            .map_err(|e| err("start the relay for", e))?;
        Ok(SshProxy {
            path: path.to_path_buf(),
            stop,
            accept: Some(accept),
        })
    }
}

/// Copies both ways until either side closes.
fn relay(client: UnixStream, upstream: UnixStream) {
    let pairs = match (client.try_clone(), upstream.try_clone()) {
        (Ok(c2), Ok(u2)) => [(client, upstream), (u2, c2)],
        _ => return,
    };
    for (mut from, mut to) in pairs {
        let _ = std::thread::Builder::new()
            .name("ssh-relay".into())
            .spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 || to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(std::net::Shutdown::Write);
                let _ = from.shutdown(std::net::Shutdown::Read);
            });
    }
}

impl Drop for SshProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo "agent": what a client writes through the proxy comes back, the proxy socket has the
    /// asked-for mode, and dropping the proxy removes it.
    #[test]
    fn relays_both_ways_with_the_mounts_mode() {
        let d = tempfile::tempdir().unwrap();
        let agent = d.path().join("agent.sock");
        let l = UnixListener::bind(&agent).unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let mut r = s.try_clone().unwrap();
                let mut w = s;
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut r, &mut w);
                });
            }
        });
        let path = d.path().join("proxy.sock");
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        let p = SshProxy::start(&agent, &path, uid, gid, 0o640).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        for msg in [&b"first"[..], &b"second, longer message"[..]] {
            let mut c = UnixStream::connect(&path).unwrap();
            c.write_all(msg).unwrap();
            c.shutdown(std::net::Shutdown::Write).unwrap();
            let mut back = Vec::new();
            c.read_to_end(&mut back).unwrap();
            assert_eq!(back, msg);
        }
        drop(p);
        assert!(!path.exists(), "the proxy socket is removed with the proxy");
    }
}
