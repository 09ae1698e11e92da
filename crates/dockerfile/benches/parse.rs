//! Parser benchmark: a generated 10,000-instruction Dockerfile with heredocs and expansions, and the
//! whole conformance corpus. Targets (issue 2): < 10 ms and < 50 ms. Run: `cargo bench -p lighter-dockerfile`.

use lighter_dockerfile::shell::Lexer;
use lighter_dockerfile::{parse, InstructionKind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn generated(n: usize) -> String {
    let mut s = String::from(
        "# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm\nFROM ${BASE} AS build\n",
    );
    let mut i = 0;
    while i < n {
        match i % 8 {
            0 => s.push_str(&format!("ENV V{i}=${{BASE:-x}}/{i} W{i}=\"a b\"\n")),
            1 => s.push_str(&format!(
                "RUN echo {i} && \\\n    ls -la /tmp/${{V{i}%%/*}}\n"
            )),
            2 => s.push_str(&format!("COPY --chown=1000:1000 src/{i} /app/{i}/\n")),
            3 => s.push_str(&format!(
                "RUN <<EOF\necho heredoc {i}\nprintf '%s' \"$HOME\"\nEOF\n"
            )),
            4 => s.push_str(&format!("LABEL k{i}=\"v {i}\"\n")),
            5 => s.push_str(&format!("WORKDIR /app/${{V{i}:-w}}\n")),
            6 => s.push_str(&format!(
                "RUN --mount=type=cache,target=/c{i} [\"sh\", \"-c\", \"true {i}\"]\n"
            )),
            _ => s.push_str(&format!("ARG A{i}=${{V{i}:+set}}\n")),
        }
        i += 1;
    }
    s
}

fn best_of<F: FnMut()>(runs: usize, mut f: F) -> Duration {
    // Warm up first: the first runs pay for growing the heap (page faults), which is not parsing.
    for _ in 0..5 {
        f();
    }
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let src = generated(10_000);
    let parse_only = best_of(20, || {
        let df = parse(&src).expect("generated Dockerfile parses");
        assert_eq!(df.stages[0].instructions.len(), 10_000);
    });
    let lexer = Lexer::new('\\');
    let env: Vec<(String, String)> = vec![
        ("BASE".into(), "debian".into()),
        ("HOME".into(), "/root".into()),
    ];
    let parse_expand = best_of(20, || {
        let df = parse(&src).unwrap();
        let mut n = 0;
        for ins in &df.stages[0].instructions {
            match &ins.kind {
                InstructionKind::Env(kvs) => {
                    for kv in kvs {
                        n += lexer
                            .process_word(&kv.value, &env)
                            .map(|e| e.value.len())
                            .unwrap_or(0);
                    }
                }
                InstructionKind::Workdir(w) => {
                    n += lexer
                        .process_word(w, &env)
                        .map(|e| e.value.len())
                        .unwrap_or(0)
                }
                InstructionKind::Copy(c) => {
                    for s in &c.sources {
                        n += lexer
                            .process_word(s, &env)
                            .map(|e| e.value.len())
                            .unwrap_or(0);
                    }
                }
                _ => {}
            }
        }
        assert!(n > 0);
    });
    println!(
        "10,000 instructions ({} KiB): parse {:.2} ms, parse + expand {:.2} ms (target < 10 ms)",
        src.len() / 1024,
        parse_only.as_secs_f64() * 1e3,
        parse_expand.as_secs_f64() * 1e3
    );

    let dir = std::env::var_os("LIGHTER_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        })
        .join("dockerfile-parser");
    let Ok(entries) = std::fs::read_dir(dir.join("testfiles")) else {
        println!("corpus: SKIP, conformance data absent at {}", dir.display());
        return;
    };
    let files: Vec<String> = entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("Dockerfile")).ok())
        .collect();
    let corpus = best_of(50, || {
        for f in &files {
            let _ = lighter_dockerfile::raw::parse_raw(f).map(|d| d.dump());
            let _ = parse(f);
        }
    });
    println!(
        "corpus ({} files): raw parse + dump + typed parse {:.3} ms (target < 50 ms)",
        files.len(),
        corpus.as_secs_f64() * 1e3
    );
}
