//! `lighter save [-o FILE] [--format docker|oci|oci-dir] IMAGE...`.

use super::Context;
use crate::cli::SaveArgs;
use lighter_image::SaveFormat;
use std::io::Write;
use std::process::ExitCode;

pub fn run(ctx: &Context, args: SaveArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let mut images = Vec::new();
    for name in &args.images {
        let img = lighter_image::resolve(&store, name)?;
        // Record the name the user gave when it is a name (not an ID).
        let tags = match lighter_oci::Reference::parse(name) {
            Ok(r)
                if r.digest.is_none()
                    && !img.id.hex().starts_with(name.trim_start_matches("sha256:")) =>
            {
                vec![r]
            }
            _ => vec![],
        };
        images.push((img, tags));
    }
    let format = match args.format {
        crate::cli::SaveFormatArg::Docker => SaveFormat::Docker,
        crate::cli::SaveFormatArg::Oci => SaveFormat::Oci,
        crate::cli::SaveFormatArg::OciDir => {
            let dir = args
                .output
                .ok_or_else(|| anyhow::anyhow!("--format oci-dir needs -o DIR"))?;
            lighter_image::save_dir(&store, &images, &dir)?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    match &args.output {
        Some(p) => {
            let tmp = p.with_extension("lighter-tmp");
            let mut f = std::io::BufWriter::with_capacity(
                1 << 20,
                std::fs::File::create(&tmp)
                    .map_err(|e| anyhow::anyhow!("create {}: {e}", tmp.display()))?,
            );
            let r = lighter_image::save(&store, &images, format, &mut f)
                .map_err(anyhow::Error::from)
                .and_then(|_| Ok(f.flush()?));
            if let Err(e) = r {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, p)?;
        }
        None => {
            let stdout = std::io::stdout();
            if std::io::IsTerminal::is_terminal(&stdout) {
                anyhow::bail!(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                );
            }
            let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            lighter_image::save(&store, &images, format, &mut w)?;
            w.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
