//! Golden tests, as BuildKit's frontend tests: each `testdata/<case>/` holds a `Dockerfile`, optional
//! `args` (`KEY=VALUE` build-args, `target=NAME`, `named=NAME` lines) and `images` (`REF ENV=K=V` /
//! `REF ONBUILD=...` / `REF WORKDIR=...` lines), and `expected`: the dump of the lowered
//! definition (vertices with digests) or `error: L<line>: <message>`. `LIGHTER_BLESS=1` rewrites
//! the expected files. Nothing here needs root or a store.

use lighter_graph::{lower, ImageMeta, LowerOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn run_case(dir: &Path) -> String {
    let df_text = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    let df = match lighter_dockerfile::parse(&df_text) {
        Ok(df) => df,
        Err(e) => return format!("parse error: {}\n", e.message),
    };
    let mut build_args = BTreeMap::new();
    let mut target = None;
    let mut named = BTreeSet::new();
    for line in read_lines(&dir.join("args")) {
        let (k, v) = line.split_once('=').unwrap_or((line.as_str(), ""));
        match k {
            "target" => target = Some(v.to_string()),
            "named" => {
                named.insert(v.to_string());
            }
            _ => {
                build_args.insert(k.to_string(), v.to_string());
            }
        }
    }
    let mut images: BTreeMap<String, ImageMeta> = BTreeMap::new();
    for line in read_lines(&dir.join("images")) {
        let (r, setting) = line.split_once(' ').expect("REF SETTING");
        let m = images.entry(r.to_string()).or_default();
        let (k, v) = setting.split_once('=').expect("KEY=VALUE");
        match k {
            "ENV" => {
                let (ek, ev) = v.split_once('=').expect("ENV=K=V");
                m.env.push((ek.into(), ev.into()));
            }
            "ONBUILD" => m.onbuild.push(v.into()),
            "WORKDIR" => m.workdir = v.into(),
            "USER" => m.user = v.into(),
            other => panic!("unknown image setting {other}"),
        }
    }
    let opts = LowerOptions {
        build_args: &build_args,
        target: target.as_deref(),
        named: &named,
        resolver: &images,
    };
    match lower(&df, &opts) {
        Ok(d) => {
            let mut out = d.dump();
            out.push_str(&format!("needed: {:?}\n", d.needed_stages()));
            for s in &d.stages {
                if let Some(desc) = &s.description {
                    out.push_str(&format!("stage {} description: {desc}\n", s.index));
                }
            }
            out
        }
        Err(e) => format!(
            "error: L{}: {}\n",
            e.span.map(|s| s.start_line).unwrap_or(0),
            e.message
        ),
    }
}

fn read_lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn lowering_matches_the_goldens() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let bless = std::env::var_os("LIGHTER_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").exists())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 8,
        "golden cases missing under {}",
        root.display()
    );
    let mut failed = Vec::new();
    for dir in &cases {
        let got = run_case(dir);
        let exp_path = dir.join("expected");
        if bless {
            std::fs::write(&exp_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&exp_path).unwrap_or_default();
        if got != want {
            failed.push(format!(
                "--- {}\n--- want\n{want}--- got\n{got}",
                dir.display()
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn digests_are_stable_and_change_with_what_a_vertex_does() {
    let lower_text = |text: &str, args: &[(&str, &str)]| {
        let df = lighter_dockerfile::parse(text).unwrap();
        let build_args: BTreeMap<String, String> = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let images = BTreeMap::new();
        let named = BTreeSet::new();
        let opts = LowerOptions {
            build_args: &build_args,
            target: None,
            named: &named,
            resolver: &images,
        };
        lower(&df, &opts).unwrap().result().unwrap().digest.clone()
    };
    let df = "FROM busybox\nARG V=1\nRUN echo $V\n";
    // The same input, the same digest; comments and blank lines do not matter.
    assert_eq!(lower_text(df, &[]), lower_text(df, &[]));
    assert_eq!(
        lower_text(df, &[]),
        lower_text("# c\nFROM busybox\n\nARG V=1\nRUN echo $V\n", &[])
    );
    // A build-arg the RUN sees changes it; one it does not see does not.
    assert_ne!(lower_text(df, &[]), lower_text(df, &[("V", "2")]));
    assert_eq!(lower_text(df, &[]), lower_text(df, &[("OTHER", "2")]));
    assert_ne!(
        lower_text(df, &[]),
        lower_text("FROM busybox:1\nARG V=1\nRUN echo $V\n", &[])
    );
    // A heredoc's expanded body is part of its COPY.
    let heredoc = "FROM busybox\nARG MSG=hi\nCOPY <<EOF /m\n$MSG\nEOF\n";
    assert_ne!(
        lower_text(heredoc, &[]),
        lower_text(heredoc, &[("MSG", "bye")])
    );
    let quoted = "FROM busybox\nARG MSG=hi\nCOPY <<'EOF' /m\n$MSG\nEOF\n";
    assert_eq!(
        lower_text(quoted, &[]),
        lower_text(quoted, &[("MSG", "bye")])
    );
}
