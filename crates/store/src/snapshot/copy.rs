//! The copy snapshotter, for machines where overlayfs cannot mount: the layer chain is applied
//! into a base tree and copied into a working tree; committing diffs the two into an
//! overlay-format upper directory, so the layer comes out of the same writer with the same bytes.
//! It never unpacks overlay-format directories (their opaque xattrs need privileges such a
//! machine may lack): views are the chain applied as a plain tree.

use super::{remove_stubs, store_upper, ActiveSnapshot, Dirs, Root, Snapshotter, View};
use crate::layer::LayerInfo;
use crate::Store;
use std::path::Path;

type Result<T> = crate::Result<T>;

pub struct Copy;

impl Snapshotter for Copy {
    fn name(&self) -> &'static str {
        "copy"
    }

    fn prepare(&self, store: &Store, parent: &[LayerInfo]) -> Result<Box<dyn ActiveSnapshot>> {
        Ok(Box::new(Active {
            layers: parent.to_vec(),
            dirs: Dirs::new(store)?,
            materialized: false,
        }))
    }

    fn view(&self, store: &Store, parent: &[LayerInfo]) -> Result<View> {
        let tmp = store.temp_dir("view-")?;
        let path = tmp.path().join("v");
        if parent.is_empty() {
            std::fs::create_dir(&path).map_err(crate::io_err("create", &path))?;
        } else {
            super::fetch_missing(store, parent)?;
            crate::layer::materialize(store, parent, &path)?;
        }
        Ok(View {
            path,
            mounted: false,
            _tmp: Some(tmp),
        })
    }
}

struct Active {
    /// The layer chain (bottom first), for the base tree.
    layers: Vec<LayerInfo>,
    dirs: Dirs,
    materialized: bool,
}

impl Active {
    /// The layers applied into `work/base` (kept for the diff) and copied into `merged` (the
    /// working tree).
    fn materialize(&mut self, store: &Store) -> Result<()> {
        if self.materialized {
            return Ok(());
        }
        super::fetch_missing(store, &self.layers)?;
        let base = self.dirs.work.join("base");
        crate::layer::materialize(store, &self.layers, &base)?;
        std::fs::remove_dir(&self.dirs.merged)
            .map_err(crate::io_err("remove", &self.dirs.merged))?;
        crate::layer::copy_tree(&base, &self.dirs.merged)?;
        self.materialized = true;
        Ok(())
    }
}

impl ActiveSnapshot for Active {
    fn root(&mut self, store: &Store) -> Result<Root> {
        self.materialize(store)?;
        Ok(Root::Dir(self.dirs.merged.clone()))
    }

    fn mount(&mut self, store: &Store) -> Result<&Path> {
        self.materialize(store)?;
        Ok(&self.dirs.merged)
    }

    fn commit(self: Box<Self>, store: &Store, skip: &[String]) -> Result<Option<LayerInfo>> {
        if !self.materialized {
            return Ok(None);
        }
        // The sandbox's mountpoint stubs are in the working tree; the changes go into the upper
        // directory, and the rest is the overlay path.
        remove_stubs(&self.dirs.merged, skip);
        crate::layer::diff_to_upper(
            &self.dirs.work.join("base"),
            &self.dirs.merged,
            &self.dirs.upper,
        )?;
        store_upper(store, &self.dirs.upper)
    }
}
