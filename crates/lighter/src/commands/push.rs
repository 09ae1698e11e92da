//! `lighter push NAME[:TAG]`: uploads a stored image to its registry, as `docker push`.

use super::Context;
use crate::cli::PushArgs;
use std::process::ExitCode;

pub fn run(ctx: &Context, args: PushArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let r = lighter_oci::Reference::parse(&args.reference)?;
    let img = lighter_image::resolve(&store, &args.reference).map_err(|_| {
        anyhow::anyhow!(
            "An image does not exist locally with the tag: {}",
            r.familiar_name()
        )
    })?;
    let client = super::registry::client()?;
    if !args.quiet {
        eprintln!("The push refers to repository [{}]", r.name());
    }
    let digest = super::registry::push_image(&store, &client, &img, &r, args.quiet)?;
    let size = store.content().size(&img.record.manifest)?;
    outln!(
        "{}: digest: {digest} size: {size}",
        r.tag.as_deref().unwrap_or("latest")
    );
    Ok(ExitCode::SUCCESS)
}
