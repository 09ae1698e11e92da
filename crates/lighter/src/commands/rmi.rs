//! `lighter rmi [-f] IMAGE...`: untags, and deletes the image with its last name. Space is reclaimed by
//! `lighter prune`.

use super::Context;
use crate::cli::RmiArgs;
use std::process::ExitCode;

pub fn run(ctx: &Context, args: RmiArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let mut failed = false;
    for name in &args.images {
        match lighter_image::remove(&store, name, args.force) {
            Ok(lines) => lines.iter().for_each(|l| outln!("{l}")),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
