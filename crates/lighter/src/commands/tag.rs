//! `lighter tag SOURCE TARGET`.

use super::Context;
use crate::cli::TagArgs;
use std::process::ExitCode;

pub fn run(ctx: &Context, args: TagArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    lighter_image::tag(&store, &args.source, &args.target)?;
    Ok(ExitCode::SUCCESS)
}
