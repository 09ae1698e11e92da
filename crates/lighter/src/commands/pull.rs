//! `lighter pull NAME[:TAG|@DIGEST] [--platform P]`, as `docker pull`: layers on several
//! connections, verified as they stream, layers the store has skipped, the tag set only once every
//! blob is in.

use super::Context;
use crate::cli::PullArgs;
use lighter_registry::pull::{Event, Platform};
use std::process::ExitCode;
use std::sync::Mutex;

pub fn run(ctx: &Context, args: PullArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let r = lighter_oci::Reference::parse(&args.reference)?;
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)
            .ok_or_else(|| anyhow::anyhow!("--platform {p}: expected os/arch[/variant]"))?,
        None => Platform::host(),
    };
    let client = super::registry::client()?;
    let quiet = args.quiet;
    if !quiet {
        if !args.reference.contains(':') && !args.reference.contains('@') {
            eprintln!("Using default tag: latest");
        }
        eprintln!(
            "{}: Pulling from {}",
            r.tag.as_deref().unwrap_or_else(|| r
                .digest
                .as_ref()
                .map(|d| d.as_str())
                .unwrap_or("latest")),
            r.path
        );
    }
    let start = std::time::Instant::now();
    let last = Mutex::new(std::time::Instant::now());
    let progress = |ev: Event| {
        if quiet {
            return;
        }
        match ev {
            Event::LayerDone { digest, reused } => eprintln!(
                "{}: {}",
                &digest.hex()[..12],
                if reused {
                    "Already exists"
                } else {
                    "Pull complete"
                }
            ),
            Event::Progress { digest, done, size } => {
                // A line per layer at most every two seconds: bytes and rate.
                let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
                if l.elapsed().as_secs_f64() >= 2.0 {
                    *l = std::time::Instant::now();
                    let secs = start.elapsed().as_secs_f64().max(0.001);
                    eprintln!(
                        "{}: Downloading {:.1}MB/{:.1}MB ({:.1} MB/s overall)",
                        &digest.hex()[..12],
                        done as f64 / 1e6,
                        size as f64 / 1e6,
                        done as f64 / 1e6 / secs
                    );
                }
            }
        }
    };
    let had = lighter_image::resolve(&store, &args.reference)
        .ok()
        .map(|i| i.id);
    let pulled = lighter_engine::images::pull(&store, &client, &r, &platform, &progress)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if !quiet {
        eprintln!("Digest: {}", pulled.digest);
        if had.as_ref() == Some(&pulled.id) {
            eprintln!("Status: Image is up to date for {}", r.familiar());
        } else {
            eprintln!("Status: Downloaded newer image for {}", r.familiar());
        }
        eprintln!(
            "pulled {:.1} MB in {:.2}s",
            pulled.downloaded as f64 / 1e6,
            start.elapsed().as_secs_f64()
        );
    }
    println!("{r}");
    Ok(ExitCode::SUCCESS)
}
