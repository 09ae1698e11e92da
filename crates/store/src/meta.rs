//! Metadata in redb (transactional, crash-safe): refs, image records, layer records, the build
//! cache index. Several lighter processes share one store: redb lets one process open the file at a
//! time, and an open that finds it busy retries with backoff (up to a minute). A process keeps its
//! handle while it uses the database and closes it once it has been idle for [`LINGER`]: a build's
//! run of cache lookups costs one open (each open and close of redb 2 syncs its header three times)
//! while another process never waits longer than a burst of lookups and the linger. Values are JSON
//! strings; keys are plain strings.

use crate::{Result, StoreError};
use redb::{Database, ReadableTable, TableDefinition};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long an idle handle stays open.
const LINGER: Duration = Duration::from_millis(25);

/// The tables of the metadata DB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Normalised reference (`docker.io/library/busybox:latest`) -> image id (config digest).
    Refs,
    /// Image id -> image record JSON (manifest digest, created, sizes).
    Images,
    /// Layer diffID -> layer record JSON (compressed blob digest, size, media type).
    Layers,
    /// Build cache key -> step result JSON.
    Cache,
    /// Step position (stage + instruction) -> what its last cache key was made of (for "why rebuilt").
    CacheInputs,
    /// `gz<level>:<sha256 of an uncompressed chunk>` -> `<blob digest> <offset> <length>`: where a layer
    /// blob holds the gzip member of that chunk, so a later layer with the same chunk reuses it.
    Chunks,
    /// sha256 of an http(s) URL ADD fetched -> `{"etag", "sha256", "last_modified"}` of its last
    /// download, so a rebuild revalidates with `If-None-Match` instead of downloading again.
    HttpCache,
    /// `<registry>/<repository>@<manifest digest>` a pull or push saw -> image id (RepoDigests).
    RepoDigests,
}

impl Table {
    fn def(self) -> TableDefinition<'static, &'static str, &'static str> {
        TableDefinition::new(match self {
            Table::Refs => "refs",
            Table::Images => "images",
            Table::Layers => "layers",
            Table::Cache => "cache",
            Table::CacheInputs => "cache_inputs",
            Table::Chunks => "chunks",
            Table::HttpCache => "http_cache",
            Table::RepoDigests => "repo_digests",
        })
    }
}

/// Handle on the metadata DB.
#[derive(Debug, Clone)]
pub struct Meta {
    path: PathBuf,
    open: Arc<Handle>,
}

/// The process's open database, shared by its threads, and who is using it.
#[derive(Default)]
struct Handle {
    state: Mutex<HandleState>,
}

#[derive(Default)]
struct HandleState {
    db: Option<Arc<Database>>,
    users: usize,
    last_use: Option<Instant>,
    /// A closer thread is waiting for the handle to go idle.
    closing: bool,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handle")
    }
}

impl Handle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HandleState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Closes the handle once nobody has used it for [`LINGER`]; ends early when the store is dropped
/// (dropping the last `Meta` closes the database itself).
fn close_when_idle(handle: Weak<Handle>) {
    loop {
        std::thread::sleep(LINGER);
        let Some(h) = handle.upgrade() else { return };
        let mut s = h.lock();
        if s.users == 0 && s.last_use.is_none_or(|t| t.elapsed() >= LINGER) {
            // Closed under the lock, so an open in this process never finds its own file busy.
            s.db = None;
            s.closing = false;
            return;
        }
    }
}

/// A write transaction: changes are applied together at commit, or not at all.
pub struct Tx<'a> {
    tx: &'a redb::WriteTransaction,
    path: &'a PathBuf,
}

impl Tx<'_> {
    pub fn put(&mut self, table: Table, key: &str, value: &str) -> Result<()> {
        let mut t = self.tx.open_table(table.def()).map_err(db_err(self.path))?;
        t.insert(key, value).map_err(db_err(self.path))?;
        Ok(())
    }

    pub fn delete(&mut self, table: Table, key: &str) -> Result<bool> {
        let mut t = self.tx.open_table(table.def()).map_err(db_err(self.path))?;
        let removed = t.remove(key).map_err(db_err(self.path))?.is_some();
        Ok(removed)
    }

    pub fn get(&self, table: Table, key: &str) -> Result<Option<String>> {
        let t = self.tx.open_table(table.def()).map_err(db_err(self.path))?;
        let v = t
            .get(key)
            .map_err(db_err(self.path))?
            .map(|g| g.value().to_string());
        Ok(v)
    }

    pub fn list(&self, table: Table) -> Result<Vec<(String, String)>> {
        let t = self.tx.open_table(table.def()).map_err(db_err(self.path))?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_err(self.path))? {
            let (k, v) = item.map_err(db_err(self.path))?;
            out.push((k.value().to_string(), v.value().to_string()));
        }
        Ok(out)
    }
}

fn db_err<E: std::fmt::Display>(path: &std::path::Path) -> impl Fn(E) -> StoreError + '_ {
    move |e| StoreError::Db {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl Meta {
    pub(crate) fn new(path: PathBuf) -> Meta {
        Meta {
            path,
            open: Arc::new(Handle::default()),
        }
    }

    /// Runs `f` on the process's open database, opening it when closed.
    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let db = {
            let mut s = self.open.lock();
            let db = match &s.db {
                Some(db) => db.clone(),
                None => {
                    let db = Arc::new(self.open()?);
                    s.db = Some(db.clone());
                    db
                }
            };
            s.users += 1;
            db
        };
        // Released even when `f` panics, so the handle can still close.
        struct User<'a>(&'a Meta);
        impl Drop for User<'_> {
            fn drop(&mut self) {
                self.0.release();
            }
        }
        let _user = User(self);
        f(&db)
    }

    /// One user fewer; the first release starts the closer.
    fn release(&self) {
        let mut s = self.open.lock();
        s.users -= 1;
        s.last_use = Some(Instant::now());
        if !s.closing {
            s.closing = true;
            let weak = Arc::downgrade(&self.open);
            if std::thread::Builder::new()
                .name("meta-close".into())
                .spawn(move || close_when_idle(weak))
                .is_err()
            {
                // No thread: close now rather than hold the file.
                s.db = None;
                s.closing = false;
            }
        }
    }

    fn open(&self) -> Result<Database> {
        let start = Instant::now();
        let mut wait = Duration::from_millis(2);
        loop {
            match Database::create(&self.path) {
                Ok(db) => return Ok(db),
                Err(redb::DatabaseError::DatabaseAlreadyOpen)
                    if start.elapsed() < Duration::from_secs(60) =>
                {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(StoreError::Db {
                        path: self.path.clone(),
                        message: e.to_string(),
                    })
                }
            }
        }
    }

    /// Runs `f` in one write transaction and commits it; an error from `f` aborts every change.
    pub fn update<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        thread_local!(static WRITING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
        if WRITING.with(|w| w.replace(true)) {
            // redb would wait forever for the outer transaction of this same thread.
            return Err(StoreError::Invalid(
                "a metadata write inside a metadata write".into(),
            ));
        }
        struct Done;
        impl Drop for Done {
            fn drop(&mut self) {
                WRITING.with(|w| w.set(false));
            }
        }
        let _done = Done;
        self.with_db(|db| {
            let tx = db.begin_write().map_err(db_err(&self.path))?;
            let out = {
                let mut t = Tx {
                    tx: &tx,
                    path: &self.path,
                };
                f(&mut t)?
            };
            tx.commit().map_err(db_err(&self.path))?;
            Ok(out)
        })
    }

    /// Runs `f` on `table` in a read transaction; a table never written reads as empty (`T::default()`).
    fn read<T: Default>(
        &self,
        table: Table,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static str, &'static str>) -> Result<T>,
    ) -> Result<T> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(db_err(&self.path))?;
            match tx.open_table(table.def()) {
                Ok(t) => f(&t),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(T::default()),
                Err(e) => Err(db_err(&self.path)(e)),
            }
        })
    }

    pub fn get(&self, table: Table, key: &str) -> Result<Option<String>> {
        self.read(table, |t| {
            Ok(t.get(key)
                .map_err(db_err(&self.path))?
                .map(|g| g.value().to_string()))
        })
    }

    pub fn put(&self, table: Table, key: &str, value: &str) -> Result<()> {
        self.update(|tx| tx.put(table, key, value))
    }

    pub fn delete(&self, table: Table, key: &str) -> Result<bool> {
        self.update(|tx| tx.delete(table, key))
    }

    /// Every (key, value) of a table, in key order.
    pub fn list(&self, table: Table) -> Result<Vec<(String, String)>> {
        self.list_prefix(table, "")
    }

    /// The (key, value) pairs whose key starts with `prefix`, in key order (a range scan, not a full
    /// table walk).
    pub fn list_prefix(&self, table: Table, prefix: &str) -> Result<Vec<(String, String)>> {
        self.read(table, |t| {
            let mut out = Vec::new();
            for item in t.range(prefix..).map_err(db_err(&self.path))? {
                let (k, v) = item.map_err(db_err(&self.path))?;
                if !k.value().starts_with(prefix) {
                    break;
                }
                out.push((k.value().to_string(), v.value().to_string()));
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let m = store.meta();
        assert_eq!(m.get(Table::Refs, "a").unwrap(), None);
        m.put(Table::Refs, "a", "1").unwrap();
        assert_eq!(m.get(Table::Refs, "a").unwrap().as_deref(), Some("1"));
        let r: Result<()> = m.update(|tx| {
            tx.put(Table::Refs, "b", "2")?;
            Err(StoreError::Invalid("abort".into()))
        });
        assert!(r.is_err());
        assert_eq!(m.get(Table::Refs, "b").unwrap(), None);
        assert_eq!(
            m.list(Table::Refs).unwrap(),
            vec![("a".to_string(), "1".to_string())]
        );
        assert!(m.delete(Table::Refs, "a").unwrap());
        assert!(m.list(Table::Refs).unwrap().is_empty());
    }

    #[test]
    fn concurrent_processes_wait_for_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let m = store.meta().clone();
                std::thread::spawn(move || {
                    for j in 0..20 {
                        m.put(Table::Cache, &format!("{i}-{j}"), "x").unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(store.meta().list(Table::Cache).unwrap().len(), 80);
    }

    /// Two stores on one directory stand for two processes: each sees the other's commits, the
    /// second waits at most for the first's linger, and an idle handle is closed.
    #[test]
    fn an_idle_handle_is_closed_for_other_processes() {
        let dir = tempfile::tempdir().unwrap();
        let a = crate::Store::open(dir.path()).unwrap();
        let b = crate::Store::open(dir.path()).unwrap();
        a.meta().put(Table::Refs, "x", "1").unwrap();
        let t = Instant::now();
        assert_eq!(
            b.meta().get(Table::Refs, "x").unwrap().as_deref(),
            Some("1")
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "waited {:?}",
            t.elapsed()
        );
        b.meta().put(Table::Refs, "x", "2").unwrap();
        assert_eq!(
            a.meta().get(Table::Refs, "x").unwrap().as_deref(),
            Some("2")
        );
        // Idle: the file is free for a plain open.
        let t = Instant::now();
        loop {
            match Database::create(dir.path().join("meta.redb")) {
                Ok(db) => break drop(db),
                Err(e) => assert!(
                    t.elapsed() < Duration::from_secs(2),
                    "still held after the linger: {e}"
                ),
            }
            std::thread::sleep(LINGER);
        }
        // Dropping the store closes at once.
        a.meta().get(Table::Refs, "x").unwrap();
        drop(a);
        // (The closer thread may hold the handle for the instant it checks for idleness.)
        let t = Instant::now();
        while Database::create(dir.path().join("meta.redb")).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "the dropped store still holds the file"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_nested_write_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let m = store.meta();
        let r = m.update(|tx| {
            tx.put(Table::Refs, "outer", "1")?;
            m.put(Table::Refs, "inner", "2")
        });
        assert!(
            matches!(r, Err(StoreError::Invalid(ref e)) if e.contains("inside a metadata write")),
            "{r:?}"
        );
        // Reads inside a write are fine, and the next write works.
        m.update(|tx| {
            tx.put(Table::Refs, "a", "1")?;
            assert_eq!(m.get(Table::Refs, "zz")?, None);
            Ok(())
        })
        .unwrap();
        assert_eq!(m.get(Table::Refs, "a").unwrap().as_deref(), Some("1"));
    }

    #[test]
    fn list_prefix_is_a_bounded_range() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let m = store.meta();
        assert_eq!(m.list_prefix(Table::Refs, "docker.io/").unwrap(), vec![]);
        m.update(|tx| {
            for k in [
                "docker.io/library/busybox:latest",
                "docker.io/library/alpine:3",
                "docker.io/library/busybox:1.36",
                "docker.io/user/app:v1",
                "ghcr.io/a/b:c",
            ] {
                tx.put(Table::Refs, k, &format!("\"{k}\""))?;
            }
            Ok(())
        })
        .unwrap();
        let keys = |p: &str| -> Vec<String> {
            m.list_prefix(Table::Refs, p)
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(
            keys("docker.io/library/busybox:"),
            [
                "docker.io/library/busybox:1.36",
                "docker.io/library/busybox:latest"
            ]
        );
        assert_eq!(keys("docker.io/").len(), 4);
        assert_eq!(keys("").len(), 5);
        assert!(keys("quay.io/").is_empty());
        let (k, v) = &m.list_prefix(Table::Refs, "ghcr").unwrap()[0];
        assert_eq!(
            (k.as_str(), v.as_str()),
            ("ghcr.io/a/b:c", "\"ghcr.io/a/b:c\"")
        );
    }
}
