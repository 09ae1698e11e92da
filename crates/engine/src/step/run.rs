//! RUN: the argv through the stage's SHELL, its environment (ENV, then the ARGs in scope for this RUN
//! only), the cache key, and execution in the sandbox over an active snapshot.

use super::{sha, StageRun};
use crate::build::Event;
use crate::config::{env_of, shell_of};
use crate::snapshot::Active;
use crate::EngineError;
use lighter_dockerfile::{Command, Instruction, MountKind, NetworkMode, Run, Span};
use serde_json::json;

impl StageRun<'_, '_> {
    pub(super) fn run(
        &mut self,
        ins: &Instruction,
        r: &Run,
        n: usize,
        total: usize,
    ) -> Result<(), EngineError> {
        let sh = self.sh;
        let shell = shell_of(&self.config["config"]);
        let argv: Vec<String> = match &r.command {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) if !r.heredocs.is_empty() => {
                // Heredocs are handed to the shell as written: `sh -c 'cat <<EOF ... EOF'`.
                let mut script = s.clone();
                for h in &r.heredocs {
                    script.push('\n');
                    script.push_str(&h.content);
                    script.push_str(&h.name);
                }
                let mut v = shell.clone();
                v.push(script);
                v
            }
            Command::Shell(s) => {
                let mut v = shell.clone();
                v.push(s.clone());
                v
            }
        };
        // Environment: ARGs in scope as environment for this RUN only; ENV wins.
        let mut env: Vec<String> = env_of(&self.config["config"])
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let env_keys: Vec<String> = env_of(&self.config["config"])
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut arg_env: Vec<String> = Vec::new();
        for (k, v) in &self.args {
            if !env_keys.contains(k) {
                env.push(format!("{k}={v}"));
                arg_env.push(format!("{k}={v}"));
            }
        }
        // `--security=insecure`: BuildKit's entitlement, granted only by `--allow security.insecure`.
        let privileged = r.security.as_deref() == Some("insecure");
        if privileged && !sh.req.allow_insecure {
            return Err(EngineError::msg(
                "RUN --security=insecure is not allowed: pass `--allow security.insecure` to lighter build to grant it (the step then runs privileged)".to_string(),
            )
            .at(ins.span));
        }
        let network = match r.network {
            Some(NetworkMode::None) => lighter_sandbox::Network::None,
            Some(NetworkMode::Host) => lighter_sandbox::Network::Host,
            _ if sh.req.network_none => lighter_sandbox::Network::None,
            _ => lighter_sandbox::Network::Host,
        };
        // Mounts: never part of a layer; their keys name what they are, never a secret's value.
        let tmp = sh
            .store
            .temp_dir("run-")
            .map_err(|e| EngineError::msg(e.to_string()))?;
        let mut m = self.mounts(r, tmp.path())?;
        let mount_keys = m.keys.clone();
        let secret_env = std::mem::take(&mut m.env);
        // A stage's config always has a PATH (config::ensure_path); a process environment without
        // one still gets the default, as BuildKit's exec op does (addDefaultEnvvar).
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, crate::config::DEFAULT_PATH.to_string());
        }
        env.extend(secret_env);
        let user = self.config["config"]["User"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let cwd = self.config["config"]["WorkingDir"]
            .as_str()
            .unwrap_or("/")
            .to_string();
        let text = format!(
            "RUN {}",
            match &r.command {
                Command::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
                Command::Shell(s) => s.clone(),
            }
        );
        let history = if arg_env.is_empty() {
            format!("RUN {} # buildkit", argv.join(" "))
        } else {
            format!(
                "RUN |{} {} {} # buildkit",
                arg_env.len(),
                arg_env.join(" "),
                argv.join(" ")
            )
        };
        let key_env = env
            .iter()
            .filter(|e| !is_secret_env(e, &r.mounts))
            .cloned()
            .collect::<Vec<_>>()
            .join("\0");
        let (key_argv, key_mounts) = (argv.join("\0"), mount_keys.join("\0"));
        let key_network = format!("{network:?}");
        let key_options = process_options_key(sh.req);
        let mut key_parts = vec![
            self.key.as_str(),
            "RUN",
            &key_argv,
            &key_env,
            &key_mounts,
            &key_network,
            &user,
            &cwd,
        ];
        // Only when given, so the keys of builds without these options stay what they were.
        if !key_options.is_empty() {
            key_parts.push(&key_options);
        }
        if privileged {
            key_parts.push("security=insecure");
        }
        let key = sha(&key_parts);
        // The predefined proxy build-args reach the process only: not its cache key (above), the
        // config or the history, as BuildKit's exec op proxy env.
        let env = with_proxy_env(env, &sh.req.build_args);
        let inputs =
            json!({ "command": argv, "env": arg_env, "mounts": mount_keys, "parent": self.key });
        let exe = sh.req.exe.clone();
        let label = self.label.clone();
        let span: Span = ins.span;
        let run_text = text.clone();
        let tmp_dir = tmp.path().to_path_buf();
        self.execute(&key, &text, &history, n, total, &inputs, |this, id| {
            // Copies and cache locks only now that the step runs (a cache hit needs neither).
            this.realize_mounts(&mut m, &tmp_dir)?;
            let mounts = &m.mounts;
            let mut snap = Active::new(this.sh.store, &this.layers)?;
            let spec = lighter_sandbox::RunSpec {
                rootfs: snap.rootfs(this.sh.store)?,
                args: argv.clone(),
                env: env.clone(),
                cwd: cwd.clone(),
                user: user.clone(),
                hostname: "buildkitsandbox".into(),
                network,
                mounts: mounts.clone(),
                hosts: lighter_sandbox::hosts_file("buildkitsandbox", &this.sh.req.extra_hosts),
                resolv_conf: Some("/etc/resolv.conf".into()),
                shm_size: this.sh.req.shm_size,
                ulimits: this.sh.req.ulimits.clone(),
                privileged,
            };
            let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
            let progress = this.sh.progress;
            let outcome = lighter_sandbox::Executor::with_exe(&exe)
                .run(&spec, &mut |line| {
                    if tail.len() == 20 {
                        tail.pop_front();
                    }
                    tail.push_back(line.to_string());
                    progress(Event::Log {
                        id,
                        line: line.to_string(),
                    });
                })
                .map_err(|e| EngineError::msg(format!("[{label}] {run_text}: {e}")))?;
            if outcome.code != 0 {
                let mut e = EngineError::msg(format!(
                    "process \"{}\" did not complete successfully: exit code: {}",
                    argv.join(" "),
                    outcome.code
                ))
                .kind(crate::ErrorKind::Step(outcome.code))
                .at(span);
                e.detail = tail.into_iter().collect();
                return Err(e);
            }
            // The overlay was mounted inside the sandbox's namespace and went with it.
            snap.commit(this.sh.store, &outcome.created)
        })?;
        drop((m.views, m.cache_locks, m.ssh));
        drop(tmp);
        Ok(())
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

fn is_secret_env(e: &str, mounts: &[lighter_dockerfile::RunMount]) -> bool {
    let name = e.split('=').next().unwrap_or("");
    mounts
        .iter()
        .any(|m| m.kind == MountKind::Secret && m.env.as_deref() == Some(name))
}
