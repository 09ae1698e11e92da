//! The cache index: cache key -> the worker's record of a result, and, per build position, the
//! inputs of the last build there (to say why a step ran again). A [`Batch`] is written in one
//! transaction: a reader sees all of it or none of it. [`MemoryIndex`] is the in-memory
//! implementation; the engine's is the store's redb database. Both run [`crate::suite`].

use crate::CacheKey;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;

/// Named inputs of a step at a build position (`instruction`, `parent`, `from`, `files`, ...).
pub type Inputs = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
#[error("build cache index: {0}")]
pub struct IndexError(pub String);

/// Records and explanations written together.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    pub records: Vec<(CacheKey, String)>,
    pub inputs: Vec<(String, Inputs)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.inputs.is_empty()
    }
}

/// Where results are found by key.
pub trait CacheIndex: Sync {
    /// The record of a key, if any.
    fn get(&self, key: &CacheKey) -> Result<Option<String>, IndexError>;
    /// The inputs the last build recorded at a position.
    fn last_inputs(&self, position: &str) -> Result<Option<Inputs>, IndexError>;
    /// Writes a batch atomically (later entries for one key win).
    fn commit(&self, batch: &Batch) -> Result<(), IndexError>;
}

/// An index in memory (tests, and builds that must not touch a store's index).
#[derive(Debug, Default)]
pub struct MemoryIndex {
    inner: Mutex<(HashMap<CacheKey, String>, HashMap<String, Inputs>)>,
}

impl MemoryIndex {
    pub fn new() -> MemoryIndex {
        MemoryIndex::default()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CacheIndex for MemoryIndex {
    fn get(&self, key: &CacheKey) -> Result<Option<String>, IndexError> {
        Ok(self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .get(key)
            .cloned())
    }

    fn last_inputs(&self, position: &str) -> Result<Option<Inputs>, IndexError> {
        Ok(self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .get(position)
            .cloned())
    }

    fn commit(&self, batch: &Batch) -> Result<(), IndexError> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in &batch.records {
            g.0.insert(k.clone(), v.clone());
        }
        for (p, i) in &batch.inputs {
            g.1.insert(p.clone(), i.clone());
        }
        Ok(())
    }
}

/// Why a step ran instead of coming from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// `--no-cache` (or a filter naming its stage).
    NoCache,
    /// These named inputs differ from the last build at this position.
    Changed(Vec<String>),
    /// Its own inputs are as before: something an earlier step read changed.
    EarlierStep,
    /// A record was found but its data is gone (pruned).
    RecordUnusable,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::NoCache => f.write_str("--no-cache"),
            Why::Changed(c) => write!(f, "changed: {}", c.join(", ")),
            Why::EarlierStep => f.write_str("an earlier step changed"),
            Why::RecordUnusable => f.write_str("its cached result is gone from the store"),
        }
    }
}

/// Compares a step's inputs with the last build's at its position; `None` when there was none
/// (a first build needs no explanation).
pub fn explain(prev: Option<&Inputs>, now: &Inputs, no_cache: bool) -> Option<Why> {
    if no_cache {
        return Some(Why::NoCache);
    }
    let prev = prev?;
    let mut changed: Vec<String> = now
        .iter()
        .filter(|(k, v)| prev.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    changed.extend(prev.keys().filter(|k| !now.contains_key(*k)).cloned());
    changed.sort();
    changed.dedup();
    // Inputs that are other steps' keys changed because those steps did: that is said there.
    changed.retain(|k| k != "parent" && !k.starts_with("from"));
    Some(if changed.is_empty() {
        Why::EarlierStep
    } else {
        Why::Changed(changed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_index_passes_the_suite() {
        crate::suite::run(&|| Box::new(MemoryIndex::new()));
    }

    #[test]
    fn explanations_name_what_changed() {
        let i = |pairs: &[(&str, &str)]| -> Inputs {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let a = i(&[("instruction", "x"), ("parent", "p")]);
        assert_eq!(explain(None, &a, false), None);
        assert_eq!(explain(None, &a, true), Some(Why::NoCache));
        assert_eq!(explain(Some(&a), &a, false), Some(Why::EarlierStep));
        let b = i(&[("instruction", "y"), ("parent", "p"), ("files", "f")]);
        assert_eq!(
            explain(Some(&a), &b, false).unwrap().to_string(),
            "changed: files, instruction"
        );
    }
}
