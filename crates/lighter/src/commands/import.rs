//! `lighter import FILE|- [REF] [--change 'CMD ["x"]'] [-m MSG]`: a rootfs tarball as a one-layer image.

use super::Context;
use crate::cli::ImportArgs;
use std::process::ExitCode;

pub fn run(ctx: &Context, args: ImportArgs) -> anyhow::Result<ExitCode> {
    if let Some(p) = &args.platform {
        // The imported image is recorded for this host's platform, the one lighter runs.
        let host = format!("{}/{}", lighter_oci::HOST_OS, lighter_oci::HOST_ARCH);
        if lighter_oci::parse_platform(p).map(|(o, a, _)| format!("{o}/{a}")) != Some(host.clone())
        {
            anyhow::bail!("--platform {p}: lighter imports images for {host} only");
        }
    }
    let store = ctx.store()?;
    let mut config = serde_json::json!({});
    for change in &args.changes {
        lighter_engine::config::apply_change(&mut config, change)
            .map_err(|e| anyhow::anyhow!("invalid --change {change:?}: {e}"))?;
    }
    let tags = match &args.reference {
        Some(r) => vec![lighter_oci::Reference::parse(r)?],
        None => vec![],
    };
    let id = if args.file == "-" {
        lighter_image::import_rootfs(
            &store,
            std::io::stdin().lock(),
            config,
            args.message.as_deref(),
            &tags,
        )?
    } else {
        let f = std::fs::File::open(&args.file)
            .map_err(|e| anyhow::anyhow!("open {}: {e}", args.file))?;
        lighter_image::import_rootfs(
            &store,
            std::io::BufReader::new(f),
            config,
            args.message.as_deref(),
            &tags,
        )?
    };
    outln!("{id}");
    Ok(ExitCode::SUCCESS)
}
