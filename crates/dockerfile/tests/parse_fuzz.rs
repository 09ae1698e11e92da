//! No input may panic the parser or the checks: random text, and mutations of real Dockerfiles.

use proptest::prelude::*;

const SEEDS: &[&str] = &[
    "# syntax=docker/dockerfile:1\n# escape=`\nFROM --platform=$BUILDPLATFORM golang:1.22 AS build\nWORKDIR /src\nCOPY --chown=1000:1000 --chmod=0755 go.mod go.sum ./\nRUN --mount=type=cache,target=/root/.cache/go-build go build -o /out/app .\nFROM scratch\nCOPY --from=build /out/app /app\nENTRYPOINT [\"/app\"]\n",
    "FROM alpine\nRUN <<EOF\necho hi\nEOF\nCOPY <<-EOT /x\n\thello\nEOT\nENV A=1 B=\"two words\" C=${A:-x}\nLABEL a=b\nONBUILD RUN echo\nHEALTHCHECK --interval=5s CMD [\"true\"]\nSHELL [\"/bin/sh\", \"-c\"]\n",
    "ARG V=1\nFROM busybox:$V\nUSER 1000:1000\nEXPOSE 80/tcp 443\nVOLUME [\"/data\"]\nSTOPSIGNAL SIGTERM\nCMD echo \\\n  continued \\\n\n  done\n",
];

fn check_no_panic(src: &str) {
    let _ = lighter_dockerfile::raw::parse_raw(src);
    if let Ok(df) = lighter_dockerfile::parse(src) {
        let _ = lighter_dockerfile::check(&df);
    } else if let Err(e) = lighter_dockerfile::parse(src) {
        let _ = e.render("Dockerfile", src);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(s in "(?s).{0,300}") {
        check_no_panic(&s);
    }

    #[test]
    fn dockerfile_like_text_never_panics(lines in proptest::collection::vec(
        "(FROM|RUN|COPY|ADD|ENV|ARG|LABEL|CMD|ENTRYPOINT|ONBUILD|HEALTHCHECK|SHELL|USER|WORKDIR|EXPOSE|VOLUME|#|) ?(--[a-z]+(=[a-z0-9\"'$]*)? )*[a-zA-Z0-9 =$\\{\\}\\[\\]\"'\\\\`<<:/.,-]{0,40}\\\\?", 0..12)) {
        check_no_panic(&lines.join("\n"));
    }

    #[test]
    fn mutated_dockerfiles_never_panic(seed in 0usize..SEEDS.len(), cuts in proptest::collection::vec((0usize..400, any::<u8>()), 1..8)) {
        let mut bytes = SEEDS[seed].as_bytes().to_vec();
        for (pos, b) in cuts {
            let p = pos % (bytes.len() + 1);
            match b % 3 {
                0 => bytes.insert(p, b"\\\n\"'`[]{}$<-="[(b as usize) % 15]),
                1 if p < bytes.len() => { bytes.remove(p); }
                _ => bytes.truncate(p.max(1)),
            }
        }
        check_no_panic(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn errors_point_at_the_line() {
    let src = "FROM alpine\nCOPPY a b\n";
    let e = lighter_dockerfile::parse(src).unwrap_err();
    assert_eq!((e.span.start_line, e.span.start_col), (2, 1));
    let r = e.render("Dockerfile", src);
    assert!(
        r.starts_with("Dockerfile:2:1: error: unknown instruction: COPPY"),
        "{r}"
    );
    assert!(r.contains("did you mean COPY?"), "{r}");
    assert!(r.contains("2 | COPPY a b"), "{r}");

    let src = "FROM alpine\n  COPY --form=x a b\n";
    let e = lighter_dockerfile::parse(src).unwrap_err();
    assert_eq!((e.span.start_line, e.span.start_col), (2, 3));
    assert!(
        e.message
            .contains("unknown flag: form (did you mean from?)"),
        "{}",
        e.message
    );

    for (src, want) in [
        ("FROM a\nHEALTHCHECK\n", "HEALTHCHECK requires an argument"),
        ("FROM a\nENV PATH\n", "ENV must have two arguments"),
        ("FROM a\nCMD [\"a\", 1]\n", "strings only"),
        ("", "file with no instructions"),
        ("# just a comment\n", "file with no instructions"),
        ("ARG X=1\n", "no stages"),
        ("RUN true\n", "no build stage in current context"),
        ("FROM a AS x\nFROM b AS x\n", "duplicate stage name"),
        ("FROM a b\n", "one or three arguments"),
        ("FROM a\nCOPY x\n", "at least two arguments"),
        (
            "FROM a\nRUN --mount=type=bind,from=$X echo\n",
            "doesn't support variable expansion",
        ),
        (
            "FROM a\nONBUILD FROM b\n",
            "isn't allowed as an ONBUILD trigger",
        ),
        ("FROM a\nSHELL sh -c\n", "JSON form"),
        ("FROM a\nCOPY --chmod=999 a b\n", "invalid chmod"),
        ("FROM a\nRUN <<EOF\nnever ends\n", "unterminated heredoc"),
        ("# escape=x\nFROM a\n", "invalid escape token"),
    ] {
        let e = lighter_dockerfile::parse(src).expect_err(src);
        assert!(
            e.message.contains(want),
            "{src:?}: {} does not contain {want}",
            e.message
        );
    }
}

#[test]
fn typed_instructions() {
    use lighter_dockerfile::*;
    let df = parse(SEEDS[0]).unwrap();
    assert_eq!(df.escape, '`');
    assert_eq!(df.stages.len(), 2);
    let b = &df.stages[0];
    assert_eq!(b.name.as_deref(), Some("build"));
    assert_eq!(b.platform.as_deref(), Some("$BUILDPLATFORM"));
    match &b.instructions[1].kind {
        InstructionKind::Copy(c) => {
            assert_eq!(c.sources, vec!["go.mod", "go.sum"]);
            assert_eq!(c.dest, "./");
            assert_eq!(c.chown.as_deref(), Some("1000:1000"));
            assert_eq!(c.chmod.as_deref(), Some("0755"));
        }
        k => panic!("{k:?}"),
    }
    match &b.instructions[2].kind {
        InstructionKind::Run(r) => {
            assert_eq!(r.mounts[0].kind, MountKind::Cache);
            assert_eq!(r.mounts[0].target.as_deref(), Some("/root/.cache/go-build"));
            assert_eq!(r.command, Command::Shell("go build -o /out/app .".into()));
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(
        df.stages[1].instructions[1].kind,
        InstructionKind::Entrypoint(Command::Exec(vec!["/app".into()]))
    );
    assert_eq!(df.target_stage(Some("BUILD")), Some(0));
    assert_eq!(df.stage_ref("build", 1), Some(0));
    assert_eq!(df.stage_ref("0", 1), Some(0));

    let df = parse(SEEDS[1]).unwrap();
    let ins = &df.stages[0].instructions;
    match &ins[0].kind {
        InstructionKind::Run(r) => assert_eq!(r.heredocs[0].content, "echo hi\n"),
        k => panic!("{k:?}"),
    }
    match &ins[1].kind {
        InstructionKind::Copy(c) => {
            assert_eq!(c.heredocs[0].body(), "hello\n");
            assert_eq!(c.sources, vec!["<<-EOT"]);
        }
        k => panic!("{k:?}"),
    }
    match &ins[2].kind {
        InstructionKind::Env(kv) => {
            assert_eq!(kv.len(), 3);
            assert_eq!(kv[1].value, "\"two words\"");
        }
        k => panic!("{k:?}"),
    }
    assert!(matches!(&ins[4].kind, InstructionKind::Onbuild(i) if i.name() == "RUN"));
    assert!(matches!(
        &ins[5].kind,
        InstructionKind::Healthcheck(Healthcheck::Cmd {
            interval: Some(5_000_000_000),
            ..
        })
    ));
    assert_eq!(ins[2].span.start_line, 8);
}
