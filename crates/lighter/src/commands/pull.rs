//! `lighter pull NAME[:TAG|@DIGEST] [--platform P]`, as `docker pull`: layers on several
//! connections, verified as they stream, layers the store has skipped, the tag set only once every
//! blob is in.

use super::Context;
use crate::cli::PullArgs;
use lighter_registry::pull::{Event, Platform};
use std::collections::HashMap;
use std::io::IsTerminal;
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
    let bars = (!quiet && std::io::stderr().is_terminal()).then(Bars::new);
    let last = Mutex::new(std::time::Instant::now());
    let progress = |ev: Event| {
        if quiet {
            return;
        }
        if let Some(b) = &bars {
            return b.event(ev);
        }
        match ev {
            Event::Layers { .. } => {}
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
                // Not a terminal: a line at most every two seconds, with bytes and rate.
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
    outln!("{r}");
    Ok(ExitCode::SUCCESS)
}

/// On a terminal, `docker pull`'s live view: a line per layer, in the manifest's order, with its
/// state, a bar, bytes of total and the rate; finished layers keep their line.
struct Bars {
    multi: indicatif::MultiProgress,
    bars: Mutex<HashMap<lighter_oci::Digest, indicatif::ProgressBar>>,
}

impl Bars {
    fn new() -> Bars {
        Bars {
            multi: indicatif::MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, digest: &lighter_oci::Digest, size: u64) -> indicatif::ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.entry(digest.clone())
            .or_insert_with(|| {
                let style = indicatif::ProgressStyle::with_template(
                    "{prefix}: {msg:<11} [{bar:40}] {bytes:>9}/{total_bytes:<9} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> ");
                let b = self.multi.add(indicatif::ProgressBar::new(size));
                b.set_style(style);
                b.set_prefix(digest.hex()[..12].to_string());
                b.set_message("Waiting");
                b
            })
            .clone()
    }

    fn event(&self, ev: Event) {
        match ev {
            Event::Layers { layers } => {
                for (d, size) in layers {
                    self.bar(&d, size);
                }
            }
            Event::Progress { digest, done, size } => {
                let b = self.bar(&digest, size);
                b.set_message("Downloading");
                b.set_position(done);
            }
            Event::LayerDone { digest, reused } => {
                let b = self.bar(&digest, 0);
                b.set_style(
                    indicatif::ProgressStyle::with_template("{prefix}: {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b.finish_with_message(if reused {
                    "Already exists"
                } else {
                    "Pull complete"
                });
            }
        }
    }
}
