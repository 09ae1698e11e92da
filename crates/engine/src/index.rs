//! The build cache index of a store: the solver's [`CacheIndex`] over the store's metadata
//! database (tables `Cache` and `CacheInputs`, one redb transaction per batch), with the records a
//! build imported from `--cache-from` behind the local ones. A local record whose layer blob was
//! pruned gives way to an imported record of the same key; the keys served from imports are noted
//! so the build can keep them locally and count the hits.

use lighter_solver::{Batch, CacheIndex, CacheKey, IndexError, Inputs};
use lighter_store::layer::LayerInfo;
use lighter_store::{Store, Table};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

pub(crate) struct StoreIndex<'a> {
    store: &'a Store,
    /// Records imported from `--cache-from` (key -> layer, created).
    imported: Option<&'a BTreeMap<String, (Option<LayerInfo>, String)>>,
    /// Keys answered by an imported record, with the record.
    pub served: Mutex<Vec<(CacheKey, String)>>,
}

impl<'a> StoreIndex<'a> {
    pub fn new(
        store: &'a Store,
        imported: Option<&'a BTreeMap<String, (Option<LayerInfo>, String)>>,
    ) -> StoreIndex<'a> {
        StoreIndex {
            store,
            imported,
            served: Mutex::new(Vec::new()),
        }
    }

    /// Whether `key` was answered from an imported record.
    pub fn was_imported(&self, key: &CacheKey) -> bool {
        self.served
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(k, _)| k == key)
    }

    fn import(&self, key: &CacheKey) -> Option<String> {
        let (layer, created) = self.imported?.get(key.as_str())?;
        let rec = record(layer.as_ref(), created);
        self.served
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key.clone(), rec.clone()));
        Some(rec)
    }
}

/// A step's record: the layer it added (`null` for none) and when it was made.
pub(crate) fn record(layer: Option<&LayerInfo>, created: &str) -> String {
    json!({ "layer": layer, "created": created }).to_string()
}

/// The layer and creation time of a record.
pub(crate) fn parse_record(rec: &str) -> Option<(Option<LayerInfo>, String)> {
    let v: Value = serde_json::from_str(rec).ok()?;
    let created = v.get("created")?.as_str().unwrap_or("").to_string();
    let layer = match v.get("layer") {
        None | Some(Value::Null) => None,
        Some(l) => Some(serde_json::from_value(l.clone()).ok()?),
    };
    Some((layer, created))
}

fn err(e: impl std::fmt::Display) -> IndexError {
    IndexError(e.to_string())
}

impl CacheIndex for StoreIndex<'_> {
    fn get(&self, key: &CacheKey) -> Result<Option<String>, IndexError> {
        let local = self
            .store
            .meta()
            .get(Table::Cache, key.as_str())
            .map_err(err)?;
        let Some(local) = local else {
            return Ok(self.import(key));
        };
        // The local record's blob is gone (pruned): an imported record may still have it.
        let gone = matches!(parse_record(&local), Some((Some(l), _)) if !self.store.content().exists(&l.digest));
        if gone {
            if let Some(r) = self.import(key) {
                return Ok(Some(r));
            }
        }
        Ok(Some(local))
    }

    fn last_inputs(&self, position: &str) -> Result<Option<Inputs>, IndexError> {
        let Some(v) = self
            .store
            .meta()
            .get(Table::CacheInputs, position)
            .map_err(err)?
        else {
            return Ok(None);
        };
        // Records of another format read as none: the step then explains nothing.
        Ok(serde_json::from_str::<Inputs>(&v).ok())
    }

    fn commit(&self, batch: &Batch) -> Result<(), IndexError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.store
            .meta()
            .update(|tx| {
                for (k, v) in &batch.records {
                    tx.put(Table::Cache, k.as_str(), v)?;
                }
                for (p, i) in &batch.inputs {
                    let text = serde_json::to_string(i).unwrap_or_default();
                    tx.put(Table::CacheInputs, p, &text)?;
                }
                Ok(())
            })
            .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_index_passes_the_solver_suite() {
        let dirs = Mutex::new(Vec::new());
        lighter_solver::suite::run(&|| {
            let d = tempfile::tempdir().unwrap();
            let store = Box::leak(Box::new(Store::open(d.path()).unwrap()));
            dirs.lock().unwrap().push(d);
            Box::new(StoreIndex::new(store, None))
        });
    }

    #[test]
    fn a_pruned_local_record_gives_way_to_an_imported_one() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let key = CacheKey::of_parts(&["k"]);
        let gone = LayerInfo {
            digest: lighter_oci::Digest::sha256(b"pruned"),
            diff_id: lighter_oci::Digest::sha256(b"pruned-diff"),
            size: 1,
            uncompressed_size: 1,
            media_type: lighter_oci::media::OCI_LAYER_GZIP.into(),
        };
        let local = StoreIndex::new(&store, None);
        local
            .commit(&Batch {
                records: vec![(key.clone(), record(Some(&gone), "t1"))],
                inputs: vec![],
            })
            .unwrap();
        let mut imported = BTreeMap::new();
        imported.insert(key.as_str().to_string(), (None, "t2".to_string()));
        let ix = StoreIndex::new(&store, Some(&imported));
        let got = ix.get(&key).unwrap().unwrap();
        assert_eq!(parse_record(&got), Some((None, "t2".to_string())));
        assert!(ix.was_imported(&key));
        // Without an import, the local record is what there is (the solver's worker refuses it).
        assert_eq!(
            local
                .get(&key)
                .unwrap()
                .map(|r| parse_record(&r).unwrap().1),
            Some("t1".into())
        );
    }
}
