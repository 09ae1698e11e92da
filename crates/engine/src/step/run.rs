//! RUN over the graph's expanded exec op: the argv (heredocs handed to the shell as written), the
//! environment (ENV, then the ARGs in scope for this RUN only, then the proxy build-args, which
//! reach the process only), the mounts, and the process in the sandbox over an active snapshot.

use super::{LocalWorker, Output, Prepared};
use crate::build::Event;
use crate::snapshot::Active;
use crate::EngineError;
use lighter_graph::{Exec, Vertex, VertexId};
use lighter_solver::Input;

/// A RUN's mounts, prepared for its key and kept for its execution.
pub(crate) struct PreparedRun {
    mounts: super::run_mount::Mounts,
    network: lighter_sandbox::Network,
    tmp: tempfile::TempDir,
}

/// The argv: a shell-form command with heredocs gets their bodies after it, as BuildKit hands
/// them to the shell (`sh -c 'cat <<EOF ... EOF'`).
fn argv(e: &Exec) -> Vec<String> {
    let mut argv = e.args.clone();
    if !e.heredocs.is_empty() {
        if let Some(script) = argv.last_mut() {
            for (name, content) in &e.heredocs {
                script.push('\n');
                script.push_str(content);
                script.push_str(name);
            }
        }
    }
    argv
}

/// The history entry BuildKit writes for a RUN: the build ARGs it sees, then its argv.
pub(super) fn history(e: &Exec) -> String {
    let argv = argv(e).join(" ");
    if e.arg_env.is_empty() {
        return format!("RUN {argv} # buildkit");
    }
    let args: Vec<String> = e.arg_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("RUN |{} {} {argv} # buildkit", args.len(), args.join(" "))
}

impl LocalWorker<'_, '_> {
    fn network(&self, e: &Exec) -> lighter_sandbox::Network {
        match e.network.as_str() {
            "none" => lighter_sandbox::Network::None,
            "host" => lighter_sandbox::Network::Host,
            _ if self.sh.req.network_none => lighter_sandbox::Network::None,
            _ => lighter_sandbox::Network::Host,
        }
    }

    /// What a RUN's key needs beyond its op: its mounts (a context bind's content, a cache's
    /// identity, never a secret's value), the network it gets and the process options.
    pub(super) fn run_content(
        &self,
        id: VertexId,
        v: &Vertex,
        e: &Exec,
        inputs: &[Input<'_, Output>],
    ) -> Result<Vec<(String, String)>, EngineError> {
        // `--security=insecure`: BuildKit's entitlement, granted only by `--allow security.insecure`.
        if e.security == "insecure" && !self.sh.req.allow_insecure {
            return Err(EngineError::msg(
                "RUN --security=insecure is not allowed: pass `--allow security.insecure` to lighter build to grant it (the step then runs privileged)".to_string(),
            ));
        }
        let tmp = self.sh.store.temp_dir("run-")?;
        let mounts = self.mounts(v, e, inputs, tmp.path())?;
        let network = self.network(e);
        let mut content = vec![("network".to_string(), format!("{network:?}"))];
        if !mounts.keys.is_empty() {
            content.push(("mounts".into(), mounts.keys.join("\0")));
        }
        let options = process_options_key(self.sh.req);
        if !options.is_empty() {
            content.push(("process options".into(), options));
        }
        self.prepare(
            id,
            Prepared::Run(PreparedRun {
                mounts,
                network,
                tmp,
            }),
        );
        Ok(content)
    }

    pub(super) fn run_exec(
        &self,
        id: VertexId,
        v: &Vertex,
        e: &Exec,
        inputs: &[Input<'_, Output>],
    ) -> Result<Output, EngineError> {
        let sh = self.sh;
        let mut prep = match self.take_prepared(id) {
            Some(Prepared::Run(p)) => p,
            _ => {
                self.run_content(id, v, e, inputs)?;
                match self.take_prepared(id) {
                    Some(Prepared::Run(p)) => p,
                    _ => return Err(EngineError::msg("internal error: RUN mounts not prepared")),
                }
            }
        };
        let parent = inputs[0].output.as_ref();
        let argv = argv(e);
        // Environment: ENV, then the ARGs in scope for this RUN only (ENV wins).
        let mut env: Vec<String> = e
            .env
            .iter()
            .chain(&e.arg_env)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        // A process environment without PATH still gets the default, as BuildKit's exec op does
        // (addDefaultEnvvar).
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, crate::config::DEFAULT_PATH.to_string());
        }
        env.extend(std::mem::take(&mut prep.mounts.env));
        // The predefined proxy build-args reach the process only: not its cache key, the config or
        // the history, as BuildKit's exec op proxy env.
        let env = with_proxy_env(env, &sh.req.build_args);
        let tmp_dir = prep.tmp.path().to_path_buf();
        // Copies and cache locks only now that the step runs (a cache hit needs neither).
        self.realize_mounts(&mut prep.mounts, &tmp_dir)?;
        let mut snap = Active::new(sh.store, &parent.layers)?;
        let spec = lighter_sandbox::RunSpec {
            rootfs: snap.rootfs(sh.store)?,
            args: argv.clone(),
            env,
            cwd: e.cwd.clone(),
            user: e.user.clone(),
            hostname: "buildkitsandbox".into(),
            network: prep.network,
            mounts: prep.mounts.mounts.clone(),
            hosts: lighter_sandbox::hosts_file("buildkitsandbox", &sh.req.extra_hosts),
            resolv_conf: Some("/etc/resolv.conf".into()),
            shm_size: sh.req.shm_size,
            ulimits: sh.req.ulimits.clone(),
            privileged: e.security == "insecure",
        };
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let progress = sh.progress;
        let pid = self.progress_id(id);
        let outcome = lighter_sandbox::Executor::with_exe(&sh.req.exe)
            .run(&spec, &mut |line| {
                if tail.len() == 20 {
                    tail.pop_front();
                }
                tail.push_back(line.to_string());
                progress(Event::Log {
                    id: pid,
                    line: line.to_string(),
                });
            })
            .map_err(|err| EngineError::msg(format!("{} {}: {err}", self.label(v), v.text)))?;
        if outcome.code != 0 {
            let mut err = EngineError::msg(format!(
                "process \"{}\" did not complete successfully: exit code: {}",
                argv.join(" "),
                outcome.code
            ))
            .kind(crate::ErrorKind::Step(outcome.code))
            .at(v.span);
            err.detail = tail.into_iter().collect();
            return Err(err);
        }
        // The overlay was mounted inside the sandbox's namespace and went with it.
        let layer = snap.commit(sh.store, &outcome.created)?;
        drop(prep);
        Ok(self.finish(
            v,
            parent,
            layer,
            lighter_image::now_rfc3339(self.sh.store.settings().source_date_epoch),
        ))
    }
}

/// BuildKit's predefined proxy ARGs (`http_proxy`, `https_proxy`, `ftp_proxy`, `no_proxy`,
/// `all_proxy`, in either case): a build-arg of any of them sets both the lower- and upper-case
/// variable of a RUN's process, unless the step's environment has it already (a declared ARG or an
/// ENV). Build-args are read in sorted order, so the lower-case one wins when both are given.
fn with_proxy_env(
    mut env: Vec<String>,
    build_args: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    const NAMES: [&str; 5] = [
        "http_proxy",
        "https_proxy",
        "ftp_proxy",
        "no_proxy",
        "all_proxy",
    ];
    let mut values: std::collections::BTreeMap<&str, &str> = Default::default();
    for (k, v) in build_args {
        if let Some(n) = NAMES.iter().find(|n| n.eq_ignore_ascii_case(k)) {
            values.insert(n, v);
        }
    }
    for (name, v) in values {
        for n in [name.to_ascii_uppercase(), name.to_string()] {
            let set = format!("{n}=");
            if !env.iter().any(|e| e.starts_with(&set)) {
                env.push(format!("{n}={v}"));
            }
        }
    }
    env
}

/// `--add-host`, `--shm-size` and `--ulimit` as a cache key part (BuildKit keeps them in the exec
/// op, so they are in its cache key too). Empty when none is given.
fn process_options_key(req: &crate::BuildRequest) -> String {
    let mut parts: Vec<String> = req
        .extra_hosts
        .iter()
        .map(|h| format!("host={}={}", h.host, h.ip))
        .collect();
    parts.extend(req.shm_size.map(|s| format!("shm={s}")));
    parts.extend(req.ulimits.iter().map(|u| format!("ulimit={}", u.key())));
    parts.join("\0")
}
