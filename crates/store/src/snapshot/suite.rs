//! The conformance suite every [`Snapshotter`] runs (rule 3 of ARCHITECTURE.md). [`run`] makes a
//! base layer, then in snapshots over it adds, changes, removes and replaces files, links and
//! directories, and checks the committed layers through views; it returns the diffIDs of the
//! layers whose bytes are determined by the tree (every case but a replaced directory), so a test
//! can check that two snapshotters write the same bytes (with a `source_date_epoch` setting
//! clamping mtimes).

use super::{Root, Snapshotter};
use crate::compress::Compression;
use crate::layer::{store_dir, DirFormat, LayerInfo, WriteOptions};
use crate::Store;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn read(root: &Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(root.join(rel)).ok()
}

/// The base layer: files, a directory with files, a symlink.
fn base(store: &Store) -> LayerInfo {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "keep", "keep");
    write(d.path(), "change", "old");
    write(d.path(), "remove", "gone soon");
    write(d.path(), "dir/a", "a");
    write(d.path(), "dir/sub/b", "b");
    write(d.path(), "mode", "m");
    std::os::unix::fs::symlink("keep", d.path().join("link")).unwrap();
    store_dir(
        store,
        d.path(),
        DirFormat::Plain,
        &WriteOptions::for_store(store),
        Compression::Gzip,
    )
    .unwrap()
}

/// Runs every case against `s`; panics with the case on the first failure.
pub fn run(store: &Store, s: &dyn Snapshotter) -> Vec<String> {
    let name = s.name();
    let mut made = Vec::new();
    // An empty chain: a new file is the layer.
    let mut a = s.prepare(store, &[]).unwrap();
    write(a.mount(store).unwrap(), "hello", "world");
    let first = a.commit(store, &[]).unwrap().expect("a layer");
    made.push(first.diff_id.to_string());
    let v = s.view(store, std::slice::from_ref(&first)).unwrap();
    assert_eq!(
        read(&v.path, "hello").as_deref(),
        Some("world"),
        "{name}: new file"
    );
    drop(v);

    // Nothing changed: no layer.
    let b = base(store);
    let mut n = s.prepare(store, std::slice::from_ref(&b)).unwrap();
    let root = n.mount(store).unwrap();
    assert_eq!(
        read(root, "dir/sub/b").as_deref(),
        Some("b"),
        "{name}: the base shows"
    );
    assert!(
        n.commit(store, &[]).unwrap().is_none(),
        "{name}: no change, no layer"
    );

    // Changes of every kind over the base.
    let mut c = s.prepare(store, std::slice::from_ref(&b)).unwrap();
    let root = c.mount(store).unwrap().to_path_buf();
    write(&root, "change", "new");
    std::fs::remove_file(root.join("remove")).unwrap();
    std::fs::set_permissions(root.join("mode"), std::fs::Permissions::from_mode(0o751)).unwrap();
    std::fs::hard_link(root.join("keep"), root.join("hard")).unwrap();
    std::os::unix::fs::symlink("/nowhere", root.join("dangling")).unwrap();
    // Mountpoint stubs a process left are not changes.
    std::fs::create_dir_all(root.join("run/stub")).unwrap();
    std::fs::write(root.join("stubfile"), "").unwrap();
    let skip = [
        "run".to_string(),
        "run/stub".to_string(),
        "stubfile".to_string(),
    ];
    let changed = c.commit(store, &skip).unwrap().expect("a layer");
    made.push(changed.diff_id.to_string());
    let chain = [b.clone(), changed];
    let v = s.view(store, &chain).unwrap();
    let p = &v.path;
    assert_eq!(read(p, "keep").as_deref(), Some("keep"), "{name}: kept");
    assert_eq!(read(p, "change").as_deref(), Some("new"), "{name}: changed");
    assert!(!p.join("remove").exists(), "{name}: removed (whiteout)");
    assert_eq!(
        read(p, "dir/sub/b").as_deref(),
        Some("b"),
        "{name}: untouched dir"
    );
    let mode = std::fs::metadata(p.join("mode")).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o751, "{name}: chmod");
    assert_eq!(
        read(p, "hard").as_deref(),
        Some("keep"),
        "{name}: hard link"
    );
    assert_eq!(
        std::fs::read_link(p.join("dangling")).unwrap(),
        Path::new("/nowhere"),
        "{name}: symlink"
    );
    assert_eq!(
        std::fs::read_link(p.join("link")).unwrap(),
        Path::new("keep"),
        "{name}: base link"
    );
    assert!(
        !p.join("run").exists() && !p.join("stubfile").exists(),
        "{name}: stubs skipped"
    );
    drop(v);

    // A directory removed and made again: none of its old entries show. (Overlay writes an opaque
    // whiteout, copy one whiteout per old entry: the same tree, not the same bytes.)
    let mut d = s.prepare(store, std::slice::from_ref(&b)).unwrap();
    let root = d.mount(store).unwrap().to_path_buf();
    std::fs::remove_dir_all(root.join("dir")).unwrap();
    write(&root, "dir/fresh", "f");
    let replaced = d.commit(store, &[]).unwrap().expect("a layer");
    let v = s.view(store, &[b.clone(), replaced]).unwrap();
    let p = &v.path;
    assert!(
        !p.join("dir/a").exists() && !p.join("dir/sub").exists(),
        "{name}: old entries gone"
    );
    assert_eq!(
        read(p, "dir/fresh").as_deref(),
        Some("f"),
        "{name}: replaced dir's file"
    );
    drop(v);

    // Only stubs: no layer.
    let mut o = s.prepare(store, std::slice::from_ref(&b)).unwrap();
    let root = o.mount(store).unwrap().to_path_buf();
    std::fs::create_dir_all(root.join("proc")).unwrap();
    assert!(
        o.commit(store, &["proc".to_string()]).unwrap().is_none(),
        "{name}: only stubs"
    );

    // The root a process mounts shows the chain; dropping a snapshot discards it.
    let mut r = s.prepare(store, &chain).unwrap();
    match r.root(store).unwrap() {
        Root::Dir(d) => assert_eq!(
            read(&d, "change").as_deref(),
            Some("new"),
            "{name}: root dir"
        ),
        Root::Overlay { lowers, .. } => assert_eq!(lowers.len(), 2, "{name}: overlay lowers"),
    }
    let merged = r.mount(store).unwrap().to_path_buf();
    drop(r);
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    assert!(
        !mounts.contains(&merged.display().to_string()),
        "{name}: unmounted when dropped"
    );
    made
}
