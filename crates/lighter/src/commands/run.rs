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
    let lowers = {
        let mut out = Vec::new();
        for l in img.record.layers.iter().rev() {
            // A layer repeated in the chain is listed once, at its topmost position (overlayfs
            // refuses duplicate lowerdirs; the lower copy is covered by the upper one).
            let dir = lighter_store::layer::unpacked(&store, &l.diff_id, &l.digest)?;
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
        out
    };
    let tmp = store.temp_dir("run-")?;
    let spec = lighter_sandbox::RunSpec {
        rootfs: lighter_sandbox::Rootfs::Overlay {
            lowers,
            upper: tmp.path().join("upper"),
            work: tmp.path().join("work"),
            merged: tmp.path().join("merged"),
        },
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
    for d in ["upper", "work", "merged"] {
        std::fs::create_dir_all(tmp.path().join(d))?;
    }
    let outcome = lighter_sandbox::Executor::with_exe(&std::env::current_exe()?)
        .run(&spec, &mut |line| println!("{line}"))?;
    Ok(ExitCode::from(outcome.code.clamp(0, 255) as u8))
}
