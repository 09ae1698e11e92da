//! `--progress=tty` (the default on a terminal): BuildKit-style live progress. Finished steps are
//! printed once, for good (`=> CACHED [stage n/m] ...`, `=> [stage n/m] ... 1.2s`). Below them a live
//! area is redrawn in place: a `[+] Building` header with the elapsed time and the count of steps done,
//! then every running step with its timer and its last log lines. Parallel stages are visible at once.

use lighter_engine::Event;
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

/// Log lines kept under a running step.
const LOG_LINES: usize = 6;

struct Step {
    label: String,
    text: String,
    started: Instant,
    logs: VecDeque<String>,
}

struct State {
    running: BTreeMap<usize, Step>,
    /// Lines of the live area on screen now (erased before each redraw).
    live: usize,
    started: usize,
    finished: usize,
    out: Box<dyn Write + Send>,
}

pub struct Tty {
    start: Instant,
    width: usize,
    state: Mutex<State>,
}

impl Tty {
    pub fn new(out: Box<dyn Write + Send>) -> Tty {
        let width = ratatui::crossterm::terminal::size()
            .map(|(w, _)| w as usize)
            .unwrap_or(100)
            .max(40);
        Tty {
            start: Instant::now(),
            width,
            state: Mutex::new(State {
                running: BTreeMap::new(),
                live: 0,
                started: 0,
                finished: 0,
                out,
            }),
        }
    }

    fn fit(&self, s: &str, room: usize) -> String {
        let s = s.replace(['\n', '\r'], " ");
        if s.chars().count() <= room {
            s
        } else {
            let mut t: String = s.chars().take(room.saturating_sub(1)).collect();
            t.push('…');
            t
        }
    }

    /// A finished line: `text` left, `secs` right-aligned.
    fn line(&self, text: &str, secs: f64) -> String {
        let t = format!("{secs:.1}s");
        let room = self.width.saturating_sub(t.len() + 2);
        let left = self.fit(text, room);
        let pad = room.saturating_sub(left.chars().count());
        format!("{left}{} {t}\n", " ".repeat(pad + 1))
    }

    pub fn event(&self, ev: Event) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut permanent = String::new();
        match ev {
            Event::Start { id, label, text } => {
                st.started += 1;
                st.running.insert(
                    id,
                    Step {
                        label,
                        text,
                        started: Instant::now(),
                        logs: VecDeque::new(),
                    },
                );
            }
            Event::Cached { id } => {
                if let Some(s) = st.running.remove(&id) {
                    st.finished += 1;
                    permanent = self.line(&format!(" => CACHED {} {}", s.label, s.text), 0.0);
                }
            }
            Event::Done { id, secs, why } => {
                if let Some(s) = st.running.remove(&id) {
                    st.finished += 1;
                    let why = why.map(|w| format!(" (rebuilt: {w})")).unwrap_or_default();
                    permanent = self.line(&format!(" => {} {}{why}", s.label, s.text), secs);
                }
            }
            Event::Log { id, line } => {
                if let Some(s) = st.running.get_mut(&id) {
                    s.logs.push_back(line);
                    while s.logs.len() > LOG_LINES {
                        s.logs.pop_front();
                    }
                }
            }
            Event::Info(m) => permanent = format!("{m}\n"),
        }
        self.redraw(&mut st, &permanent);
    }

    /// Redraws the live area (the timers move).
    pub fn tick(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.redraw(&mut st, "");
    }

    /// Replaces the live area by the final header.
    pub fn finish(&self, ok: bool) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut buf = erase(st.live);
        let verdict = if ok { "FINISHED" } else { "ERROR" };
        buf.push_str(&format!(
            "[+] Building {:.1}s ({}/{}) {verdict}\n",
            self.start.elapsed().as_secs_f64(),
            st.finished,
            st.started
        ));
        st.live = 0;
        let _ = st.out.write_all(buf.as_bytes());
        let _ = st.out.flush();
    }

    fn redraw(&self, st: &mut State, permanent: &str) {
        let mut buf = erase(st.live);
        buf.push_str(permanent);
        let mut live = vec![format!(
            "[+] Building {:.1}s ({}/{})",
            self.start.elapsed().as_secs_f64(),
            st.finished,
            st.started
        )];
        for s in st.running.values() {
            let l = self.line(
                &format!(" => {} {}", s.label, s.text),
                s.started.elapsed().as_secs_f64(),
            );
            live.push(l.trim_end().to_string());
            for log in &s.logs {
                live.push(self.fit(&format!(" => => # {log}"), self.width.saturating_sub(1)));
            }
        }
        for l in &live {
            buf.push_str(l);
            buf.push('\n');
        }
        st.live = live.len();
        let _ = st.out.write_all(buf.as_bytes());
        let _ = st.out.flush();
    }
}

/// Moves the cursor up over the `n` live lines and clears to the end of the screen.
fn erase(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!("\x1b[{n}A\x1b[J")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What the terminal shows after the byte stream: cursor-up and clear-to-end applied.
    fn screen(bytes: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(bytes);
        let mut lines: Vec<String> = Vec::new();
        let mut rest = text.as_ref();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("\x1b[") {
                let a = r.find('A').unwrap();
                let n: usize = r[..a].parse().unwrap();
                lines.truncate(lines.len() - n);
                rest = r[a + 1..].strip_prefix("\x1b[J").unwrap();
                continue;
            }
            let end = rest.find('\n').unwrap();
            lines.push(rest[..end].to_string());
            rest = &rest[end + 1..];
        }
        lines
    }

    #[test]
    fn parallel_steps_live_then_finished_lines() {
        let buf = Buf::default();
        let t = Tty::new(Box::new(buf.clone()));
        t.event(Event::Start {
            id: 1,
            label: "[a 2/3]".into(),
            text: "RUN make".into(),
        });
        t.event(Event::Start {
            id: 2,
            label: "[b 2/2]".into(),
            text: "COPY x /x".into(),
        });
        t.event(Event::Log {
            id: 1,
            line: "compiling".into(),
        });
        let s = screen(&buf.0.lock().unwrap());
        assert!(
            s[0].starts_with("[+] Building") && s[0].ends_with("(0/2)"),
            "{s:?}"
        );
        assert!(
            s[1].contains("[a 2/3] RUN make")
                && s[2] == " => => # compiling"
                && s[3].contains("[b 2/2] COPY x /x"),
            "{s:?}"
        );
        t.event(Event::Cached { id: 2 });
        t.event(Event::Done {
            id: 1,
            secs: 1.25,
            why: Some("changed: files".into()),
        });
        t.finish(true);
        let s = screen(&buf.0.lock().unwrap());
        assert_eq!(s.len(), 3, "{s:?}");
        assert!(
            s[0].starts_with(" => CACHED [b 2/2] COPY x /x") && s[0].ends_with("0.0s"),
            "{s:?}"
        );
        assert!(
            s[1].starts_with(" => [a 2/3] RUN make (rebuilt: changed: files)")
                && s[1].ends_with("1.2s"),
            "{s:?}"
        );
        assert!(
            s[2].starts_with("[+] Building") && s[2].ends_with("(2/2) FINISHED"),
            "{s:?}"
        );
    }
}
