//! `build --call targets|outline`, as buildx prints them, read from the build graph: no store,
//! no base image and no root needed.

mod common;

use common::*;

const DOCKERFILE: &str = "\
# GO_VERSION the Go toolchain to build with
ARG GO_VERSION=1.19
ARG UNUSED=x
# build compiles the service
FROM golang:${GO_VERSION} AS build
ARG VERSION=dev
RUN --mount=type=secret,id=netrc,required=true --mount=type=ssh go build -ldflags \"-X main.v=$VERSION\" -o /app .

# test runs the unit tests
FROM build AS test
ARG RACE
RUN go test ./...

FROM scratch
COPY --from=build /app /app
";

fn call(args: &[&str]) -> (bool, String, String) {
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), DOCKERFILE).unwrap();
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let c = ctx.path().display().to_string();
    all.push(&c);
    let o = env.lighter(&all);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn targets_and_outline_as_buildx_prints_them() {
    let (ok, out, err) = call(&["--call", "targets"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "TARGET    DESCRIPTION\nbuild     compiles the service\ntest      runs the unit tests\n(default)\n"
    );
    // The default target uses GO_VERSION (its FROM) and VERSION (a stage it copies from), the
    // secret and the SSH agent of that stage; not UNUSED, not the test stage's RACE.
    let (ok, out, err) = call(&["--call", "outline", "--build-arg", "VERSION=1.2"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "TARGET: (default)\n\n\
         BUILD ARG    VALUE   DESCRIPTION\n\
         GO_VERSION   1.19    the Go toolchain to build with\n\
         VERSION      1.2\n\n\
         SECRET   REQUIRED\nnetrc    true\n\n\
         SSH       REQUIRED\ndefault\n\n"
    );
    let (ok, out, err) = call(&["--call", "outline,format=json", "--target", "test"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], "test");
    assert_eq!(v["description"], "runs the unit tests");
    let names: Vec<&str> = v["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["GO_VERSION", "VERSION", "RACE"]);
    assert_eq!(v["secrets"][0]["name"], "netrc");
    // Unknown methods and options are refused, never ignored.
    let (ok, _, err) = call(&["--call", "lint"]);
    assert!(!ok && err.contains("unknown method \"lint\""), "{err}");
    let (ok, _, err) = call(&["--call", "outline,fmt=json"]);
    assert!(!ok && err.contains("unknown option"), "{err}");
    // Errors of the Dockerfile point at their line.
    let (ok, _, err) = call(&["--call", "outline", "--target", "nope"]);
    assert!(
        !ok && err.contains("target stage \"nope\" could not be found"),
        "{err}"
    );
}

#[test]
fn enumerated_flag_values_are_refused_when_unknown() {
    // Values clap validates: a value lighter would not honour is an error, never a silent default.
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    for (args, possible) in [
        (
            &["build", "--network", "bridge", "."][..],
            "default, host, none",
        ),
        (&["run", "--network", "bridge", "x"][..], "host, none"),
        (
            &["save", "--format", "zip", "x"][..],
            "docker, oci, oci-dir",
        ),
        (&["lint", "--format", "xml"][..], "text, json"),
    ] {
        let o = env.lighter(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("invalid value") && err.contains(possible),
            "{args:?}: {err}"
        );
    }
}
