//! `lighter run [--rm] [-e K=V] [--user U] [--workdir W] [--network host|none] [--entrypoint E]
//! [--add-host H:IP] [--shm-size N] [--ulimit L] IMAGE [CMD...]`: an image from the store in the RUN sandbox, with its config; the exit code passes through.
//! Containers are ephemeral: the writable layer is discarded when the command exits.

use super::Context;
use crate::cli::RunArgs;
use std::process::ExitCode;

pub fn run(ctx: &Context, args: RunArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let img = lighter_image::resolve(&store, &args.image)?;
    let cfg = img.typed().config;
    let argv = lighter_sandbox::container_args(
        &cfg.entrypoint.clone().unwrap_or_default(),
        &cfg.cmd.clone().unwrap_or_default(),
        args.entrypoint.as_deref(),
        &args.command,
    );
    if argv.is_empty() {
        anyhow::bail!("no command specified: the image has no ENTRYPOINT or CMD");
    }
    let mut env = cfg.env.clone();
    for e in &args.env {
        let (k, v) = match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), std::env::var(e).unwrap_or_default()),
        };
        env.retain(|x| x.split('=').next() != Some(k.as_str()));
        env.push(format!("{k}={v}"));
    }
    let (extra_hosts, shm_size, ulimits) =
        process_options(&args.add_hosts, args.shm_size.as_deref(), &args.ulimits)?;
    // The same snapshot a RUN step gets; its changes are dropped with it.
    let mut snap = lighter_engine::snapshot::Active::new(&store, &img.record.layers)?;
    let spec = lighter_sandbox::RunSpec {
        rootfs: snap.rootfs(&store)?,
        args: argv,
        env,
        cwd: args
            .workdir
            .clone()
            .or_else(|| Some(cfg.working_dir.clone()))
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        user: args
            .user
            .clone()
            .or_else(|| Some(cfg.user.clone()))
            .unwrap_or_default(),
        hostname: img.id.short().to_string(),
        network: if args.network == crate::cli::RunNetwork::None {
            lighter_sandbox::Network::None
        } else {
            lighter_sandbox::Network::Host
        },
        mounts: vec![],
        hosts: lighter_sandbox::hosts_file(img.id.short(), &extra_hosts),
        resolv_conf: Some("/etc/resolv.conf".into()),
        shm_size,
        ulimits,
        privileged: false,
    };
    let outcome = lighter_sandbox::Executor::with_exe(&std::env::current_exe()?)
        .run(&spec, &mut |line| outln!("{line}"))?;
    Ok(ExitCode::from(outcome.code.clamp(0, 255) as u8))
}

/// `--add-host`, `--shm-size` and `--ulimit` of `build` and `run`, parsed with docker's syntax.
pub(crate) type ProcessOptions = (
    Vec<lighter_sandbox::ExtraHost>,
    Option<u64>,
    Vec<lighter_sandbox::Ulimit>,
);

pub(crate) fn process_options(
    add_hosts: &[String],
    shm_size: Option<&str>,
    ulimits: &[String],
) -> anyhow::Result<ProcessOptions> {
    let hosts = add_hosts
        .iter()
        .map(|h| {
            lighter_sandbox::ExtraHost::parse(h).map_err(|e| anyhow::anyhow!("--add-host {h}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let shm = shm_size
        .map(|s| {
            lighter_sandbox::parse_size(s)
                .ok()
                .filter(|b| *b > 0)
                .ok_or_else(|| {
                    anyhow::anyhow!("--shm-size {s}: expected a positive size such as 64m or 1g")
                })
        })
        .transpose()?;
    let limits = ulimits
        .iter()
        .map(|u| {
            lighter_sandbox::Ulimit::parse(u).map_err(|e| anyhow::anyhow!("--ulimit {u}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((hosts, shm, limits))
}
