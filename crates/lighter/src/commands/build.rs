//! `lighter build`: docker build's flags; `--check` validates only; plain progress prints one line per
//! event (`#3 [build 2/4] COPY ...`, `#3 CACHED`, `#3 DONE 0.1s`).

use super::Context;
use crate::cli::{BuildArgs, Progress};
use crate::diagnostics::Rendered;
use lighter_dockerfile::render_at;
use lighter_engine::ssh_agent::{SshAgent, SshAgentError, SshKey};
use lighter_engine::{BuildRequest, Event, Output, Secret};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

pub fn run(ctx: &Context, args: BuildArgs) -> anyhow::Result<ExitCode> {
    // The Dockerfile: -f -, build - (Dockerfile on stdin, no context), -f PATH, or PATH/Dockerfile.
    let (context, df_path, df_name, src) = if args.context == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        (None, None, "<stdin>".to_string(), s)
    } else {
        let dir = PathBuf::from(&args.context);
        if !dir.is_dir() {
            anyhow::bail!(
                "unable to prepare context: path {:?} not found",
                args.context
            );
        }
        match args.file.as_deref() {
            Some("-") => {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                (Some(dir), None, "<stdin>".to_string(), s)
            }
            Some(f) => {
                let p = PathBuf::from(f);
                let (name, src) = super::lint::read_dockerfile(f)?;
                (Some(dir), Some(p), name, src)
            }
            None => {
                let p = dir.join("Dockerfile");
                let (name, src) = super::lint::read_dockerfile(&p.to_string_lossy())?;
                (Some(dir), Some(p), name, src)
            }
        }
    };
    let call = args.call.as_deref().map(super::call::parse).transpose()?;
    if let Some(c) = call.filter(|c| c.method != super::call::Method::Build) {
        if c.method != super::call::Method::Check {
            return super::call::run(&c, &args, &df_name, &src);
        }
    }
    if args.check || call.is_some_and(|c| c.method == super::call::Method::Check) {
        // A Dockerfile that does not parse: the parse error, with its exit code.
        lighter_dockerfile::parse(&src).map_err(|e| Rendered {
            message: e.render(&df_name, &src),
            code: crate::diagnostics::DOCKERFILE,
        })?;
        let code = super::lint::lint_source(&df_name, &src, "text")?;
        // The errors a build would stop at before running anything (blank base names, `--from`
        // with variables, unknown targets, circular stages), as BuildKit's check reports them.
        let df = lighter_dockerfile::parse(&src).map_err(|e| Rendered {
            message: e.render(&df_name, &src),
            code: crate::diagnostics::DOCKERFILE,
        })?;
        let named: BTreeMap<String, ()> = args
            .build_contexts
            .iter()
            .filter_map(|bc| bc.split_once('=').map(|(n, _)| (n.to_string(), ())))
            .collect();
        let build_args = build_args_of(&args.build_args);
        if let Err(e) = lighter_engine::validate(&df, &build_args, args.target.as_deref(), &named) {
            return Err(Rendered {
                message: match e.span {
                    Some(span) => render_at(&df_name, &src, &span, "error", &e.message, None, None),
                    None => format!("error: {}\n", e.message),
                },
                code: crate::diagnostics::DOCKERFILE,
            }
            .into());
        }
        return Ok(code);
    }
    let dockerfile = lighter_dockerfile::parse(&src).map_err(|e| Rendered {
        message: e.render(&df_name, &src),
        code: crate::diagnostics::DOCKERFILE,
    })?;
    if let Some(p) = &args.platform {
        let host = format!("{}/{}", lighter_oci::HOST_OS, lighter_oci::HOST_ARCH);
        if lighter_oci::parse_platform(p).map(|(o, a, _)| format!("{o}/{a}")) != Some(host.clone())
        {
            anyhow::bail!("--platform {p}: lighter builds for {host} only");
        }
    }
    let build_args = build_args_of(&args.build_args);
    let tags = args
        .tags
        .iter()
        .map(|t| lighter_oci::Reference::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let labels = args
        .labels
        .iter()
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .unwrap_or((l.clone(), String::new()))
        })
        .collect();
    let mut outputs = Vec::new();
    // Every output is `type=registry`: the image is pushed and not kept.
    let mut registry_only = !args.outputs.is_empty();
    // Registry names the built image is pushed to (`--push`, `-o type=registry`, `push=true`).
    let mut push_to: Vec<lighter_oci::Reference> = Vec::new();
    let mut tags = tags;
    for o in &args.outputs {
        let p = parse_output(o, &tags)?;
        registry_only &= p.registry_only;
        outputs.push(p.output);
        if p.push {
            push_to.extend(p.names);
        } else {
            tags.extend(
                p.names
                    .into_iter()
                    .filter(|n| !tags.contains(n))
                    .collect::<Vec<_>>(),
            );
        }
    }
    if args.push {
        if tags.is_empty() {
            anyhow::bail!("--push needs a name to push to: give one with -t NAME:TAG");
        }
        push_to.extend(tags.iter().cloned());
    }
    let cache = lighter_engine::cache::CacheOptions {
        from: args
            .cache_from
            .iter()
            .map(|s| lighter_engine::cache::parse_cache_from(s))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("{}", e.message))?,
        to: args
            .cache_to
            .iter()
            .map(|s| lighter_engine::cache::parse_cache_to(s))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("{}", e.message))?,
    };
    let registry = std::sync::Arc::new(super::registry::client()?);
    let secrets = args
        .secrets
        .iter()
        .map(|s| parse_secret(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let network_none = args.network == crate::cli::BuildNetwork::None;
    let mut allow_insecure = false;
    for a in args.allow.iter().flat_map(|a| a.split(',')) {
        match a.trim() {
            "security.insecure" => allow_insecure = true,
            "network.host" => {}
            other => anyhow::bail!(
                "--allow {other}: unknown entitlement (security.insecure, network.host)"
            ),
        }
    }
    let (extra_hosts, shm_size, ulimits) =
        super::run::process_options(&args.add_hosts, args.shm_size.as_deref(), &args.ulimits)?;
    let store = ctx.store()?;
    let mut named_contexts = std::collections::BTreeMap::new();
    for bc in &args.build_contexts {
        let (name, value) = bc
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--build-context {bc}: expected NAME=VALUE"))?;
        named_contexts.insert(
            name.to_string(),
            lighter_engine::NamedContext::parse(value).map_err(|e| {
                crate::diagnostics::Rendered {
                    message: format!("error: {}\n", e.message),
                    code: crate::diagnostics::build_code(e.kind),
                }
            })?,
        );
    }
    // --ssh default (the agent of $SSH_AUTH_SOCK), --ssh ID=SOCKET, --ssh ID=KEY[,KEY]: key files are
    // served by an agent of our own (in `agents`), stopped and removed once the build ends.
    let mut ssh = BTreeMap::new();
    let mut agents = Vec::new();
    for spec in &args.ssh {
        let (id, socket, agent) = parse_ssh(spec)?;
        if ssh.contains_key(&id) {
            anyhow::bail!("--ssh {spec}: the id {id:?} is given twice");
        }
        ssh.insert(id, socket);
        agents.extend(agent);
    }
    // Pushed and not kept: `-o type=registry` with no local name and no file output.
    let push_only = registry_only && !push_to.is_empty() && tags.is_empty();
    let req = BuildRequest {
        context,
        dockerfile_path: df_path.clone(),
        dockerfile,
        target: args.target.clone(),
        build_args,
        tags,
        labels,
        no_cache: args.no_cache,
        network_none,
        secrets,
        outputs,
        exe: std::env::current_exe()?,
        named_contexts,
        ssh,
        extra_hosts,
        shm_size,
        ulimits,
        allow_insecure,
        plan_copies: super::plan_copies()?,
        images: lighter_engine::images::ImageSource {
            registry: Some(registry.clone()),
            always_check: args.pull,
            platform: None,
            // With a shared cache every step may hit: base layers come only when a step reads them.
            lazy: !cache.from.is_empty() && !args.no_cache,
            fetched: Default::default(),
            resolved: Default::default(),
        },
        cache,
        push_only,
    };
    let quiet = args.quiet || args.progress == Progress::Quiet;
    let json = args.progress == Progress::Rawjson;
    let start = Instant::now();
    let out = Mutex::new(());
    // The live view on a terminal (or when asked for), else one line per event.
    use std::io::IsTerminal;
    let live = match args.progress {
        Progress::Tty => true,
        Progress::Auto => std::io::stderr().is_terminal(),
        _ => false,
    };
    let tty = (live && !quiet && !json).then(|| crate::tty::Tty::new(Box::new(std::io::stderr())));
    let progress = |ev: Event| {
        if quiet {
            return;
        }
        if let Some(t) = &tty {
            t.event(ev);
            return;
        }
        let _g = out.lock();
        let t = start.elapsed().as_secs_f64();
        if json {
            let v = match &ev {
                Event::Start { id, label, text } => {
                    serde_json::json!({ "type": "start", "id": id, "name": format!("{label} {text}"), "time": t })
                }
                Event::Cached { id } => {
                    serde_json::json!({ "type": "cached", "id": id, "time": t })
                }
                Event::Done { id, secs, why } => {
                    serde_json::json!({ "type": "done", "id": id, "duration": secs, "reason": why, "time": t })
                }
                Event::Log { id, line } => {
                    serde_json::json!({ "type": "log", "id": id, "line": line, "time": t })
                }
                Event::Info(m) => serde_json::json!({ "type": "info", "message": m, "time": t }),
            };
            eprintln!("{v}");
            return;
        }
        match ev {
            Event::Start { id, label, text } => eprintln!("#{id} {label} {text}"),
            Event::Cached { id } => eprintln!("#{id} CACHED"),
            Event::Done { id, secs, why } => match why {
                Some(w) => eprintln!("#{id} DONE {secs:.1}s (rebuilt: {w})"),
                None => eprintln!("#{id} DONE {secs:.1}s"),
            },
            Event::Log { id, line } => eprintln!("#{id} {t:.3} {line}"),
            Event::Info(m) => eprintln!("{m}"),
        }
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    let built = std::thread::scope(|sc| {
        if let Some(t) = &tty {
            let done = &done;
            sc.spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    t.tick();
                }
            });
        }
        let r = lighter_engine::build(&store, &req, &progress);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        r
    });
    drop(agents);
    if let Some(t) = &tty {
        t.finish(built.is_ok());
    }
    let result = match built {
        Ok(r) => r,
        Err(e) => {
            let mut msg = String::new();
            if !e.detail.is_empty() {
                msg.push_str("------\n");
                for l in &e.detail {
                    msg.push_str(&format!(" > {l}\n"));
                }
                msg.push_str("------\n");
            }
            match e.span {
                Some(span) => msg.push_str(&render_at(
                    &df_name, &src, &span, "error", &e.message, None, None,
                )),
                None => msg.push_str(&format!("error: {}\n", e.message)),
            }
            return Err(Rendered {
                message: msg,
                code: crate::diagnostics::build_code(e.kind),
            }
            .into());
        }
    };
    if let Some(p) = &args.iidfile {
        std::fs::write(p, result.image_id.as_str())?;
    }
    if !quiet {
        print_critical_path(
            &result.critical_path,
            start.elapsed().as_secs_f64(),
            json,
            tty.is_some(),
        );
    }
    if !quiet {
        let kept = result.manifest.is_none().then_some(&result.image_id);
        super::build_lint::report(&store, kept, &df_name, &src, json);
    }
    if args.quiet {
        outln!("{}", result.image_id);
    } else {
        for t in &req.tags {
            eprintln!("naming to {}", t.familiar());
        }
        if result.manifest.is_some() {
            eprintln!("assembled image {} (to push, not kept)", result.image_id);
        } else {
            eprintln!("writing image {}", result.image_id);
        }
    }
    if let Some(manifest) = &result.manifest {
        // Not in the store: pushed from its manifest, blobs mounted where the build read them.
        for r in &push_to {
            let digest = super::registry::push_manifest(
                &store,
                &registry,
                manifest,
                &result.layers,
                r,
                &result.mount_from,
                quiet,
            )?;
            if !quiet {
                eprintln!("pushed {} ({digest})", r.familiar());
            }
        }
    } else if !push_to.is_empty() {
        let img = lighter_image::Image::read(&store, &result.image_id)?;
        for r in &push_to {
            let digest = super::registry::push_image(&store, &registry, &img, r, quiet)?;
            if !quiet {
                eprintln!("pushed {} ({digest})", r.familiar());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The chain of steps that bounded the build's wall time: the steps on it that ran (cached ones took
/// no time); nothing when every step was cached. On a terminal, by name; in plain progress, by step
/// number (`#N`, as the lines above), so that log readers do not see a step twice.
fn print_critical_path(
    path: &[lighter_engine::critical::PathStep],
    total: f64,
    json: bool,
    names: bool,
) {
    // FROM steps only resolve their image (pulls show on their own lines): not listed.
    let path: Vec<&lighter_engine::critical::PathStep> = path
        .iter()
        .filter(|p| {
            let instruction = p.name.split_once("] ").map(|(_, t)| t).unwrap_or("");
            !p.cached && !instruction.starts_with("FROM ")
        })
        .collect();
    if path.is_empty() {
        return;
    }
    let sum: f64 = path.iter().map(|p| p.secs).sum();
    if json {
        let steps: Vec<serde_json::Value> = path
            .iter()
            .map(|p| serde_json::json!({ "id": p.id, "name": p.name, "duration": p.secs }))
            .collect();
        eprintln!(
            "{}",
            serde_json::json!({ "type": "critical_path", "duration": sum, "steps": steps })
        );
    } else if names {
        eprintln!("critical path {sum:.1}s of {total:.1}s:");
        for p in path {
            let name: String = p.name.chars().take(90).collect();
            eprintln!("  {name}  {:.1}s", p.secs);
        }
    } else {
        let chain: Vec<String> = path
            .iter()
            .map(|p| format!("#{} ({:.1}s)", p.id, p.secs))
            .collect();
        eprintln!(
            "critical path {sum:.1}s of {total:.1}s: {}",
            chain.join(" -> ")
        );
    }
}

fn kv(spec: &str) -> BTreeMap<String, String> {
    spec.split(',')
        .filter_map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// `-o type=docker,dest=FILE`, `type=oci,dest=...`, `type=local,dest=DIR`, `type=tar,dest=FILE`,
/// `type=image[,name=REF][,push=true]`, `type=registry[,name=REF]` (pushed; the -t names when no
/// name is given); a bare path means `type=local,dest=PATH` (docker's shorthand). Keys an output
/// type does not take are errors. Returns the output and the names to push to.
fn parse_output(spec: &str, tags: &[lighter_oci::Reference]) -> anyhow::Result<ParsedOutput> {
    let plain = |output| ParsedOutput {
        output,
        names: Vec::new(),
        push: false,
        registry_only: false,
    };
    if !spec.contains('=') {
        return Ok(if spec == "-" {
            anyhow::bail!("-o - (tar to stdout) is not supported yet")
        } else {
            plain(Output::Local(PathBuf::from(spec)))
        });
    }
    let m = kv(spec);
    // Every part is a key=value, each key once: nothing of the spec is dropped.
    let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
    if let Some(p) = parts.iter().find(|p| !p.contains('=')) {
        anyhow::bail!("output {spec:?}: {p:?} is not a key=value pair");
    }
    if m.len() != parts.len() {
        anyhow::bail!("output {spec:?}: a key is given twice");
    }
    let ty = m.get("type").map(String::as_str).unwrap_or("");
    let allowed: &[&str] = match ty {
        "image" | "registry" => &["type", "name", "push"],
        _ => &["type", "dest"],
    };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        anyhow::bail!(
            "output {spec:?}: type={ty} does not take {k}= (it takes {})",
            allowed.join(", ")
        );
    }
    if matches!(ty, "image" | "registry") {
        let names = match m.get("name") {
            Some(n) => vec![lighter_oci::Reference::parse(n)?],
            None => tags.to_vec(),
        };
        let push = match m.get("push").map(String::as_str) {
            None => ty == "registry",
            Some("true") => true,
            Some("false") => false,
            Some(o) => anyhow::bail!("output {spec:?}: push={o}: use true or false"),
        };
        if push && names.is_empty() {
            anyhow::bail!("output {spec:?}: nothing to push to: give name=REF or -t NAME:TAG");
        }
        let names = if push || m.contains_key("name") {
            names
        } else {
            Vec::new()
        };
        return Ok(ParsedOutput {
            output: Output::Image,
            names,
            push,
            registry_only: ty == "registry" && push,
        });
    }
    let dest = || {
        m.get("dest")
            .map(PathBuf::from)
            .ok_or_else(|| anyhow::anyhow!("output {spec:?} needs dest="))
    };
    Ok(plain(match m.get("type").map(String::as_str) {
        Some("docker") if !m.contains_key("dest") => Output::Image,
        Some("docker") => Output::Docker(dest()?),
        Some("oci") => Output::Oci(dest()?),
        Some("local") => Output::Local(dest()?),
        Some("tar") => Output::Tar(dest()?),
        other => {
            anyhow::bail!(
                "unknown output type {other:?}: use image, registry, docker, oci, local or tar"
            )
        }
    }))
}

/// One `-o`: the output, and names to tag (`type=image,name=`) or push to.
struct ParsedOutput {
    output: Output,
    names: Vec<lighter_oci::Reference>,
    push: bool,
    /// `type=registry`: pushed and not kept in the store.
    registry_only: bool,
}

/// `--ssh default`, `--ssh ID=SOCKET` or `--ssh ID=KEY[,KEY...]` (buildx's forms): the id, the agent
/// socket to forward and, for key files, the agent serving them.
fn parse_ssh(spec: &str) -> anyhow::Result<(String, PathBuf, Option<SshAgent>)> {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = |p: &PathBuf| {
        std::fs::metadata(p)
            .map(|m| m.file_type().is_socket())
            .unwrap_or(false)
    };
    let Some((id, list)) = spec.split_once('=') else {
        let sock = std::env::var_os("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow::anyhow!("--ssh {spec}: SSH_AUTH_SOCK is not set (start ssh-agent or give --ssh {spec}=SOCKET or {spec}=KEYFILE)"))?;
        let sock = PathBuf::from(sock);
        if !is_socket(&sock) {
            anyhow::bail!(
                "--ssh {spec}: SSH_AUTH_SOCK={} is not an SSH agent socket",
                sock.display()
            );
        }
        return Ok((spec.to_string(), sock, None));
    };
    if id.is_empty() || list.is_empty() {
        anyhow::bail!("--ssh {spec}: expected default, ID=SOCKET or ID=KEYFILE[,KEYFILE...]");
    }
    let paths: Vec<PathBuf> = list.split(',').map(PathBuf::from).collect();
    if let [p] = &paths[..] {
        if is_socket(p) {
            return Ok((id.to_string(), p.clone(), None));
        }
    }
    let mut keys = Vec::new();
    for p in &paths {
        let shown = format!("--ssh {id}={}", p.display());
        if is_socket(p) {
            anyhow::bail!("{shown}: an agent socket cannot be mixed with key files (give it its own --ssh ID=SOCKET)");
        }
        keys.push(SshKey::load(p).map_err(|e| match e {
            SshAgentError::Encrypted { .. } => {
                anyhow::anyhow!("{shown}: the key is encrypted; add it to ssh-agent and pass --ssh {id} instead")
            }
            SshAgentError::NotAKey { reason, .. } => {
                anyhow::anyhow!("{shown}: not an SSH agent socket nor an SSH private key file ({reason})")
            }
            SshAgentError::Read { source, .. } => anyhow::anyhow!(
                "{shown}: {source} (expected an SSH agent socket or an SSH private key file)"
            ),
            other => anyhow::anyhow!("--ssh {id}: {other}"),
        })?);
    }
    let agent = SshAgent::start(keys, &std::env::temp_dir())
        .map_err(|e| anyhow::anyhow!("--ssh {id}: {e}"))?;
    Ok((id.to_string(), agent.socket().to_path_buf(), Some(agent)))
}

/// `--secret id=x,src=FILE` or `id=x,env=VAR` (docker's forms; `source`/`type=file|env` accepted too).
fn parse_secret(spec: &str) -> anyhow::Result<Secret> {
    let m = kv(spec);
    let id = m
        .get("id")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("--secret {spec:?}: id= is required"))?;
    let value = if let Some(src) = m.get("src").or_else(|| m.get("source")) {
        std::fs::read(src).map_err(|e| anyhow::anyhow!("--secret id={id}: read {src}: {e}"))?
    } else if let Some(var) = m.get("env") {
        std::env::var(var)
            .map_err(|_| {
                anyhow::anyhow!("--secret id={id}: environment variable {var} is not set")
            })?
            .into_bytes()
    } else {
        std::env::var(&id)
            .map(String::into_bytes)
            .map_err(|_| anyhow::anyhow!("--secret id={id}: give src=FILE or env=VAR"))?
    };
    Ok(Secret { id, value })
}

/// `--build-arg K=V`, and `--build-arg K` taking K from the environment (docker's rule).
pub(super) fn build_args_of(given: &[String]) -> BTreeMap<String, String> {
    let mut build_args = BTreeMap::new();
    for a in given {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    build_args.insert(a.clone(), v);
                }
            }
        }
    }
    build_args
}
