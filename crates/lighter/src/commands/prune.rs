//! `lighter prune`: removes blobs and unpacked layers no image uses; `-a` also clears the build cache
//! and cache mounts.

use super::Context;
use crate::cli::PruneArgs;
use crate::printer::human_size;
use std::process::ExitCode;

pub fn run(ctx: &Context, args: PruneArgs) -> anyhow::Result<ExitCode> {
    if args.keep_storage.is_some() {
        return Err(crate::diagnostics::NotImplemented("lighter prune --keep-storage").into());
    }
    let store = ctx.store()?;
    let r = lighter_image::prune(&store, args.all, &mut super::waiting_note)?;
    outln!(
        "Deleted {} blobs, {} unpacked layers, {} build cache entries\nTotal reclaimed space: {}",
        r.blobs,
        r.layer_dirs,
        r.cache_entries,
        human_size(r.bytes)
    );
    Ok(ExitCode::SUCCESS)
}
