//! `lighter analyze -i` driven through a pseudo-terminal, as a user drives it: keys in, the screen
//! (rendered by the `vt100` terminal emulator from what the binary writes) out. Every wait has a
//! deadline, and the child is killed on drop.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn layer(files: &[(&str, usize)]) -> Vec<u8> {
    let entries: Vec<(&str, Option<usize>)> = files.iter().map(|(p, n)| (*p, Some(*n))).collect();
    layer_tar(&entries)
}

fn archive(layers: &[Vec<u8>]) -> Vec<u8> {
    docker_archive("t:1", &[], layers)
}

/// The explorer in a 120x30 pty.
struct Tty {
    child: std::process::Child,
    master: std::fs::File,
    screen: Arc<Mutex<vt100::Parser>>,
}

impl Tty {
    fn spawn(env: &Env, file: &std::path::Path) -> Tty {
        let ws = nix::pty::Winsize {
            ws_row: 30,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).unwrap();
        let slave: OwnedFd = pty.slave;
        let mut cmd = env.cmd();
        cmd.env("TERM", "xterm-256color")
            .args(["analyze", file.to_str().unwrap(), "-i"])
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        let child = cmd.spawn().unwrap();
        let master = std::fs::File::from(pty.master);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(30, 120, 0)));
        let (mut r, s) = (master.try_clone().unwrap(), screen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            // Ends when the child exits and the pty closes (EIO).
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s.lock().unwrap().process(&buf[..n]);
            }
        });
        Tty {
            child,
            master,
            screen,
        }
    }

    fn text(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits (at most 20 s) until the screen shows `want`.
    fn wait_for(&self, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let t = self.text();
            if t.contains(want) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "never showed {want:?}; screen:\n{t}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn keys(&mut self, k: &str) {
        self.master.write_all(k.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_explorer_answers_keys_through_a_pty() {
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.tar");
    // A 20,000-file layer, then a layer that changes one file and adds another.
    let names: Vec<String> = (0..20_000).map(|i| format!("d{}/f{i}", i % 50)).collect();
    let files: Vec<(&str, usize)> = names.iter().map(|n| (n.as_str(), 1)).collect();
    let l0 = layer(&files);
    let l1 = layer(&[("d7/f7", 3000), ("app/main", 5000)]);
    std::fs::write(&file, archive(&[l0, l1])).unwrap();
    let mut t = Tty::spawn(&env, &file);
    t.wait_for("Layer 0: this layer's changes");
    t.wait_for("(20050 rows)");
    // Down in the layers pane: layer 1 and its marks.
    t.keys("j");
    let s = t.wait_for("Layer 1: this layer's changes");
    assert!(s.contains("+ ") && s.contains("app/"), "{s}");
    // Only what layer 1 added or modified: hide unchanged paths.
    t.keys("U");
    let s = t.wait_for("[AMR-] (4 rows)");
    assert!(s.contains("main") && s.contains("f7"), "{s}");
    // Files pane: fold the first directory (app/) with Space.
    t.keys("\t ");
    let s = t.wait_for("▸ app/");
    assert!(!s.contains(" main"), "{s}");
    // Search, then quit; the terminal is restored and the process exits 0.
    t.keys("U/f7\r");
    t.wait_for("search \"f7\"");
    t.keys("q");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = t.child.try_wait().unwrap() {
            assert!(st.success(), "{st}");
            break;
        }
        assert!(Instant::now() < deadline, "q did not quit");
        std::thread::sleep(Duration::from_millis(20));
    }
}
