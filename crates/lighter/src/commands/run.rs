//! `lighter run [--rm] [-e K=V] [--user U] [--workdir W] [--network host|none] [--entrypoint E] IMAGE
//! [CMD...]`: an image from the store in the RUN sandbox, with its config; the exit code passes through.
//! Containers are ephemeral: the writable layer is discarded when the command exits.

use super::Context;
use crate::cli::RunArgs;
use std::process::ExitCode;

pub fn run(ctx: &Context, args: RunArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let img = lighter_image::resolve(&store, &args.image)?;
    let cfg = img.config.get("config").cloned().unwrap_or_default();
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let argv = lighter_sandbox::container_args(
        &strs(&cfg["Entrypoint"]),
        &strs(&cfg["Cmd"]),
        args.entrypoint.as_deref(),
        &args.command,
    );
    if argv.is_empty() {
        anyhow::bail!("no command specified: the image has no ENTRYPOINT or CMD");
    }
    let mut env = strs(&cfg["Env"]);
    for e in &args.env {
        let (k, v) = match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), std::env::var(e).unwrap_or_default()),
        };
        env.retain(|x| x.split('=').next() != Some(k.as_str()));
        env.push(format!("{k}={v}"));
    }
    // The same snapshot a RUN step gets; its changes are dropped with it.
    let mut snap = lighter_engine::snapshot::Active::new(&store, &img.record.layers)?;
    let spec = lighter_sandbox::RunSpec {
        rootfs: snap.rootfs(&store)?,
        args: argv,
        env,
        cwd: args
            .workdir
            .clone()
            .or_else(|| cfg["WorkingDir"].as_str().map(str::to_string))
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        user: args
            .user
            .clone()
            .or_else(|| cfg["User"].as_str().map(str::to_string))
            .unwrap_or_default(),
        hostname: img.id.short().to_string(),
        network: if args.network == "none" {
            lighter_sandbox::Network::None
        } else {
            lighter_sandbox::Network::Host
        },
        mounts: vec![],
        hosts: format!(
            "127.0.0.1\tlocalhost {}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            img.id.short()
        ),
        resolv_conf: Some("/etc/resolv.conf".into()),
    };
    let outcome = lighter_sandbox::Executor::with_exe(&std::env::current_exe()?)
        .run(&spec, &mut |line| println!("{line}"))?;
    Ok(ExitCode::from(outcome.code.clamp(0, 255) as u8))
}
