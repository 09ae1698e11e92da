//! Named build contexts (`--build-context NAME=DIR|docker-image://REF`), as BuildKit has them: `FROM
//! NAME` starts from the image or from the directory's files, `COPY --from=NAME` copies from it, and
//! `RUN --mount from=NAME` mounts it. A named context wins over a stage of the same name.

use crate::build::NamedContext;
use crate::context::BuildContext;
use crate::copyplan;
use crate::fileop::CopyRequest;
use crate::EngineError;
use lighter_store::layer::LayerInfo;
use lighter_store::Store;

/// What a named context gives a stage: its layers and its config (images only).
pub(crate) struct Source {
    pub layers: Vec<LayerInfo>,
    pub config: Option<serde_json::Value>,
}

/// The layers of a named context: an image's, or one layer holding a directory's files at `/`.
pub(crate) fn source(
    store: &Store,
    images: &crate::images::ImageSource,
    name: &str,
    n: &NamedContext,
    plan_copies: bool,
) -> Result<Source, EngineError> {
    match n {
        NamedContext::Image(r) => {
            let img = images.resolve(
                store,
                r,
                &format!("--build-context {name}=docker-image://{r}"),
            )?;
            Ok(Source {
                layers: img.record.layers.clone(),
                config: Some(img.config.clone()),
            })
        }
        NamedContext::Dir(d) => {
            let ctx = BuildContext::open(d, None)?;
            let selected = ctx.select(".")?;
            let req = CopyRequest {
                sources: &ctx,
                selected,
                dest: "/",
                workdir: "/",
                owner: None,
                chmod: None,
                exclude: Vec::new(),
                extract_archives: false,
                parents: None,
            };
            let empty = crate::snapshot::view(store, &[])?;
            let layer = copyplan::copy_layer(store, &req, &[], &empty.path, plan_copies)?;
            Ok(Source {
                layers: layer.into_iter().collect(),
                config: None,
            })
        }
    }
}
