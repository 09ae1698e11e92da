//! `lighter load [-i FILE]`: docker-archives (old and OCI-style) and OCI layout archives, plain or gzip.

use super::Context;
use crate::cli::LoadArgs;
use std::process::ExitCode;

pub fn run(ctx: &Context, args: LoadArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let loaded = match &args.input {
        Some(p) if p.is_dir() => lighter_image::load_dir(&store, p),
        Some(p) => {
            let f =
                std::fs::File::open(p).map_err(|e| anyhow::anyhow!("open {}: {e}", p.display()))?;
            lighter_image::load(&store, std::io::BufReader::new(f))
        }
        None => lighter_image::load(&store, std::io::stdin().lock()),
    };
    let loaded = loaded.map_err(|e| anyhow::anyhow!("load failed, nothing was added: {e}"))?;
    if !args.quiet {
        for (id, names) in loaded {
            if names.is_empty() {
                outln!("Loaded image ID: {id}");
            }
            for n in names {
                outln!("Loaded image: {}", n.familiar());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
