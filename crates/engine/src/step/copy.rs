//! COPY and ADD over the graph's expanded op: where the sources are read (the context, a named
//! context directory, another stage's or an image's files, heredocs, or remote sources fetched into
//! a directory), the content digest of exactly the files selected (the step's key), and the layer
//! made on the parent filesystem (or on an empty one for `--link`).

use super::{Kind, LocalWorker, Out, Output, Prepared};
use crate::context::{BuildContext, Selected};
use crate::fileop::{self, CopyRequest};
use crate::snapshot::View;
use crate::{copyplan, EngineError};
use lighter_graph::{Copy, Vertex, VertexId};
use lighter_solver::Input;
use lighter_store::layer::LayerInfo;
use std::path::PathBuf;

/// Where a COPY reads, kept from its key to its execution.
#[derive(Default)]
pub(crate) struct PreparedCopy {
    /// `None`: the build context.
    root: Option<BuildContext>,
    selected: Vec<Selected>,
    /// `--parents`: the leading part of each selected path that is not kept.
    strips: Vec<PathBuf>,
    remotes: Option<crate::remote::Remotes>,
    /// The directory heredoc files were written to, or a stage's or an image's view.
    _heredocs: Option<tempfile::TempDir>,
    _view: Option<View>,
    /// A source known only by an imported cache's content record: its files are read (and its
    /// layers fetched) only when the step runs.
    lazy: Option<Vec<LayerInfo>>,
}

impl LocalWorker<'_, '_> {
    pub(super) fn copy_content(
        &self,
        id: VertexId,
        v: &Vertex,
        c: &Copy,
        inputs: &[Input<'_, Output>],
    ) -> Result<Vec<(String, String)>, EngineError> {
        let remote = c.sources.iter().any(|s| crate::remote::is_remote(s)) && c.heredocs.is_empty();
        if let Some(s) = c
            .sources
            .iter()
            .find(|s| !c.add && crate::remote::is_remote(s))
        {
            return Err(crate::remote::copy_error(s));
        }
        crate::remote::check_checksum(&c.sources, c.checksum.as_deref())?;
        if let Some(m) = c.chmod.as_deref() {
            fileop::parse_chmod(m)?;
        }
        let source = inputs.get(1);
        // Another stage's or an image's files: known by content to a build cache already?
        let selection = source.filter(|s| s.output.kind == Kind::Fs).map(|s| {
            super::sha(&[
                "copy-source",
                s.key.as_str(),
                &c.sources.join("\0"),
                &c.exclude.join("\0"),
            ])
        });
        if let (Some(sel), Some(src)) = (&selection, source) {
            let imported = self.sh.imported.contents.get(sel).cloned();
            // Used only when the step's key with that content is cached: a miss copies the
            // source's real files, so it is keyed by their real digest.
            let hits = |content: &String| {
                use lighter_solver::{CacheIndex, Worker};
                let keys: Vec<lighter_solver::CacheKey> =
                    inputs.iter().map(|i| i.key.clone()).collect();
                let uses: Vec<_> = (0..keys.len()).map(|i| self.input_use(v, i)).collect();
                let content = [("files".to_string(), content.clone())];
                let (key, _) = lighter_solver::vertex_keys(&v.op_digest, &keys, &uses, &content);
                !self.sh.req.no_cache && matches!(self.index.get(&key), Ok(Some(_)))
            };
            if let Some(content) = imported.filter(|c| hits(c)) {
                self.remember_content(v, sel.clone(), content.clone());
                self.prepare(
                    id,
                    Prepared::Copy(PreparedCopy {
                        lazy: Some(src.output.layers.clone()),
                        ..Default::default()
                    }),
                );
                return Ok(vec![("files".into(), content)]);
            }
        }
        let prep = self.copy_sources(c, remote, source.map(|s| s.output.as_ref()))?;
        let content = match &prep.remotes {
            Some(r) => r.key(),
            None => self.copy_root(&prep)?.digest(&prep.selected)?,
        };
        if let Some(sel) = selection {
            self.remember_content(v, sel, content.clone());
        }
        self.prepare(id, Prepared::Copy(prep));
        Ok(vec![("files".into(), content)])
    }

    fn copy_root<'p>(&'p self, p: &'p PreparedCopy) -> Result<&'p BuildContext, EngineError> {
        match &p.root {
            Some(r) => Ok(r),
            None => self.sh.context.as_ref().ok_or_else(|| {
                EngineError::msg("COPY needs a build context (`lighter build -` has none)")
            }),
        }
    }

    /// The root a COPY reads and what it selects there.
    fn copy_sources(
        &self,
        c: &Copy,
        remote: bool,
        source: Option<&Out>,
    ) -> Result<PreparedCopy, EngineError> {
        let sh = self.sh;
        let mut p = PreparedCopy::default();
        let mut sources = c.sources.clone();
        if !c.heredocs.is_empty() {
            let dir = sh.store.temp_dir("heredoc-")?;
            for (name, body) in &c.heredocs {
                // The name is a path inside the heredoc's own directory (BuildKit makes the file in
                // an empty filesystem): `/` and `..` never lead out of it.
                let rel = crate::context::clean_rel(name);
                if rel.is_empty() {
                    return Err(EngineError::msg(format!(
                        "heredoc name {name:?} names no file"
                    )));
                }
                let file = dir.path().join(&rel);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        EngineError::msg(format!("heredoc {name}: {e}")).kind(crate::ErrorKind::Io)
                    })?;
                }
                std::fs::write(&file, body).map_err(|e| {
                    EngineError::msg(format!("heredoc {name}: {e}")).kind(crate::ErrorKind::Io)
                })?;
            }
            sources = c.heredocs.iter().map(|h| h.0.clone()).collect();
            p.root = Some(BuildContext::plain(dir.path())?);
            p._heredocs = Some(dir);
        } else if remote {
            let r = crate::remote::Remotes::resolve(
                sh.store,
                &c.sources,
                c.checksum.as_deref(),
                c.keep_git_dir,
                c.unpack,
            )?;
            sources = r.picks();
            p.root = Some(BuildContext::plain(r.dir())?);
            p.remotes = Some(r);
        } else {
            match source.map(|s| &s.kind) {
                // A named local context is read in place, like the main context.
                Some(Kind::NamedDir(dir)) => p.root = Some(BuildContext::open(dir, None)?),
                Some(Kind::Fs) => {
                    let layers = source.map(|s| s.layers.clone()).unwrap_or_default();
                    let view = crate::snapshot::view(sh.store, &layers)?;
                    // Another stage's or an image's files keep their owners, as BuildKit copies them.
                    p.root = Some(BuildContext::plain(&view.path)?.keeping_owners());
                    p._view = Some(view);
                }
                Some(Kind::Context) | None => {
                    self.copy_root(&p)?;
                }
            }
        }
        // --parents keeps each source's path under the destination, from after a `/./` if any.
        for s in &sources {
            let sel = self.copy_root(&p)?.select(s)?;
            let strip = s
                .find("/./")
                .map(|i| crate::context::clean_rel(&s[..i]))
                .unwrap_or_default();
            p.strips.extend(sel.iter().map(|_| PathBuf::from(&strip)));
            p.selected.extend(sel);
        }
        Ok(p)
    }

    /// Notes the content digest of a `COPY --from` selection, for `--cache-to`.
    fn remember_content(&self, v: &Vertex, selection: String, content: String) {
        let mut contents = self.sh.contents.lock().unwrap_or_else(|e| e.into_inner());
        for stage in self.stages(v) {
            contents.push((stage, selection.clone(), content.clone()));
        }
    }

    pub(super) fn copy_exec(
        &self,
        id: VertexId,
        v: &Vertex,
        c: &Copy,
        inputs: &[Input<'_, Output>],
    ) -> Result<Output, EngineError> {
        let store = self.sh.store;
        let parent = inputs[0].output.as_ref();
        let source = inputs.get(1).map(|s| s.output.as_ref());
        let remote = c.sources.iter().any(|s| crate::remote::is_remote(s)) && c.heredocs.is_empty();
        let prep = match self.take_prepared(id) {
            Some(Prepared::Copy(p)) if p.lazy.is_none() => p,
            // Keyed by an imported content record: read the source's files now.
            _ => self.copy_sources(c, remote, source)?,
        };
        let workdir = match parent.config.config.working_dir.as_str() {
            "" => "/".to_string(),
            w => w.to_string(),
        };
        // The filesystem the copy lands on: the stage's, or an empty one for --link. Owners
        // resolve through the stage's /etc/passwd and /etc/group as they are now.
        let base: &[LayerInfo] = if c.link { &[] } else { &parent.layers };
        let lower = crate::snapshot::view(store, base)?;
        let owner = match c.chown.as_deref() {
            Some(spec) if c.link => {
                let current = crate::snapshot::view(store, &parent.layers)?;
                Some(fileop::resolve_chown(&current.path, spec)?)
            }
            Some(spec) => Some(fileop::resolve_chown(&lower.path, spec)?),
            None => None,
        };
        // A git checkout or a download pinned by --checksum happens only now, on a miss.
        if let Some(r) = &prep.remotes {
            r.fetch()?;
        }
        let from_context = matches!(source.map(|s| &s.kind), Some(Kind::Context) | None);
        let req = CopyRequest {
            sources: self.copy_root(&prep)?,
            selected: prep.selected.clone(),
            dest: &c.dest,
            workdir: &workdir,
            owner,
            chmod: c.chmod.as_deref().map(fileop::parse_chmod).transpose()?,
            exclude: c.exclude.clone(),
            extract_archives: match &prep.remotes {
                Some(r) => r.unpack(),
                None => c.add && from_context,
            },
            parents: (c.parents && prep.remotes.is_none()).then(|| prep.strips.clone()),
        };
        let layer = copyplan::copy_layer(store, &req, base, &lower.path, self.sh.req.plan_copies)?;
        Ok(self.finish(
            v,
            parent,
            layer,
            lighter_image::now_rfc3339(self.sh.store.settings().source_date_epoch),
        ))
    }
}
