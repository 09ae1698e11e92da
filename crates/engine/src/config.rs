//! The image config as docker's builder writes it: metadata instructions applied to the typed
//! `config` ([`lighter_oci::config::ContainerConfig`]: Env, Cmd, Entrypoint, WorkingDir, User,
//! ExposedPorts, Volumes, Labels, StopSignal, Healthcheck, Shell, OnBuild) and the history text
//! BuildKit records for each instruction.

use lighter_dockerfile::{Command, Healthcheck, InstructionKind};
use lighter_oci::config::{ContainerConfig, Empty, ImageConfig};
use serde_json::Value;

/// The default PATH BuildKit gives `FROM scratch` images.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One EXPOSE word as BuildKit's `parsePort` reads it: `[ip:][hostport:]port[-end][/proto]` to
/// one `port/proto` per port of the range (`8000-8002` is `8000/tcp`, `8001/tcp`, `8002/tcp`).
pub fn port_specs(raw: &str) -> Result<Vec<String>, crate::EngineError> {
    let bad = |why: String| crate::EngineError::msg(format!("invalid port: \"{raw}\": {why}"));
    let (port, proto) = raw.split_once('/').unwrap_or((raw, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad(format!("invalid proto: {proto}")));
    }
    // `ip:hostport:port` and `hostport:port`: only the container port is exposed.
    let port = port.rsplit(':').next().unwrap_or(port);
    let num = |p: &str| -> Result<u32, crate::EngineError> {
        p.parse::<u32>()
            .ok()
            .filter(|n| *n <= 65535)
            .ok_or_else(|| crate::EngineError::msg(format!("invalid containerPort: {port}")))
    };
    let (start, end) = match port.split_once('-') {
        Some((a, b)) if a != b => (num(a)?, num(b)?),
        Some((a, _)) => (num(a)?, num(a)?),
        None => (num(port)?, num(port)?),
    };
    if end < start {
        return Err(crate::EngineError::msg(format!(
            "invalid containerPort: {port}"
        )));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// The config of an empty (`scratch`) image, as BuildKit's `emptyImage`.
pub fn empty_image() -> ImageConfig {
    ImageConfig {
        architecture: lighter_oci::HOST_ARCH.into(),
        os: lighter_oci::HOST_OS.into(),
        config: ContainerConfig {
            env: vec![DEFAULT_PATH.into()],
            working_dir: "/".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// BuildKit's "make sure that PATH is always set": a stage whose base config has no PATH gets the
/// default one appended to its `Env`, so it is in the stage's RUN environment and in the image
/// config (a base made by `docker import` or `lighter import` has no Env at all).
pub fn ensure_path(image: &mut ImageConfig) {
    if !image.config.env_pairs().iter().any(|(k, _)| k == "PATH") {
        image.config.env.push(DEFAULT_PATH.into());
    }
}

fn cmd_list(c: &Command, shell: &[String]) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut v: Vec<String> = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// The stage's SHELL (default `/bin/sh -c`).
pub fn shell_of(config: &ContainerConfig) -> Vec<String> {
    if config.shell.is_empty() {
        vec!["/bin/sh".into(), "-c".into()]
    } else {
        config.shell.clone()
    }
}

/// Applies one metadata instruction, whose words the caller has already expanded, to an image's
/// `config`. Returns false when the instruction is not a metadata instruction.
pub fn apply(c: &mut ContainerConfig, kind: &InstructionKind) -> bool {
    let shell = shell_of(c);
    match kind {
        InstructionKind::Env(kvs) => {
            for kv in kvs {
                c.set_env(&kv.key, &kv.value);
            }
        }
        InstructionKind::Label(kvs) => {
            for kv in kvs {
                c.labels.insert(kv.key.clone(), kv.value.clone());
            }
        }
        InstructionKind::Cmd(cmd) => {
            c.cmd = Some(cmd_list(cmd, &shell));
            // BuildKit sets it for every CMD (Docker's image spec still reads it).
            c.args_escaped = true;
        }
        InstructionKind::Entrypoint(cmd) => {
            // Setting ENTRYPOINT clears a CMD inherited from the base or set before it.
            c.entrypoint = match cmd {
                Command::Shell(s) if s.is_empty() => None,
                _ => Some(cmd_list(cmd, &shell)),
            };
            c.cmd = None;
        }
        InstructionKind::Workdir(w) => {
            let cur = if c.working_dir.is_empty() {
                "/"
            } else {
                &c.working_dir
            };
            c.working_dir = join_workdir(cur, w);
        }
        InstructionKind::User(u) => c.user = u.clone(),
        InstructionKind::Expose(ports) => {
            for p in ports {
                let p = if p.contains('/') {
                    p.to_ascii_lowercase()
                } else {
                    format!("{p}/tcp")
                };
                c.exposed_ports.insert(p, Empty {});
            }
        }
        InstructionKind::Volume(vols) => {
            for v in vols {
                c.volumes.insert(v.clone(), Empty {});
            }
        }
        InstructionKind::StopSignal(s) => c.stop_signal = s.clone(),
        InstructionKind::Shell(s) => c.shell = s.clone(),
        InstructionKind::Healthcheck(h) => {
            c.healthcheck = Some(match h {
                Healthcheck::None => lighter_oci::config::Healthcheck {
                    test: vec!["NONE".into()],
                    ..Default::default()
                },
                Healthcheck::Cmd {
                    command,
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                } => lighter_oci::config::Healthcheck {
                    test: match command {
                        Command::Exec(v) => std::iter::once("CMD".to_string())
                            .chain(v.iter().cloned())
                            .collect(),
                        Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                    },
                    interval: *interval,
                    timeout: *timeout,
                    start_period: *start_period,
                    start_interval: *start_interval,
                    retries: *retries,
                },
            });
        }
        InstructionKind::Onbuild(inner) => c.on_build.push(inner.original.trim().to_string()),
        InstructionKind::Maintainer(_) | InstructionKind::Arg(_) => {}
        InstructionKind::Run(_) | InstructionKind::Copy(_) | InstructionKind::Add(_) => {
            return false
        }
    }
    true
}

/// `WORKDIR` relative to the current one, cleaned (the build graph's rule).
pub fn join_workdir(cur: &str, w: &str) -> String {
    lighter_graph::join_path(cur, w)
}

/// The history `created_by` text BuildKit writes for a metadata instruction (expanded words);
/// `shell` is the stage's SHELL before the instruction.
pub fn created_by(kind: &InstructionKind, original: &str, shell: &[String]) -> String {
    match kind {
        InstructionKind::Env(kvs) => format!(
            "ENV {}",
            kvs.iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        InstructionKind::Label(kvs) => format!(
            "LABEL {}",
            kvs.iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        InstructionKind::Cmd(c) => format!("CMD {}", go_list(c, shell)),
        InstructionKind::Entrypoint(c) => format!("ENTRYPOINT {}", go_list(c, shell)),
        InstructionKind::Workdir(w) => format!("WORKDIR {w}"),
        InstructionKind::User(u) => format!("USER {u}"),
        InstructionKind::Expose(p) => {
            // Go prints a map with its keys sorted, once each.
            let ports: std::collections::BTreeSet<String> = p
                .iter()
                .map(|p| {
                    if p.contains('/') {
                        format!("{}:{{}}", p.to_ascii_lowercase())
                    } else {
                        format!("{p}/tcp:{{}}")
                    }
                })
                .collect();
            let ports: Vec<String> = ports.into_iter().collect();
            format!("EXPOSE map[{}]", ports.join(" "))
        }
        InstructionKind::Volume(v) => format!("VOLUME [{}]", v.join(" ")),
        InstructionKind::StopSignal(s) => format!("STOPSIGNAL {s}"),
        InstructionKind::Shell(s) => format!("SHELL [{}]", s.join(" ")),
        InstructionKind::Arg(defs) => format!(
            "ARG {}",
            defs.iter()
                .map(|d| match &d.default {
                    Some(v) => format!("{}={v}", d.name),
                    None => d.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        ),
        InstructionKind::Maintainer(m) => format!("MAINTAINER {m}"),
        InstructionKind::Onbuild(i) => format!("ONBUILD {}", i.original.trim()),
        InstructionKind::Healthcheck(_) => format!(
            "HEALTHCHECK {}",
            original
                .split_once(char::is_whitespace)
                .map(|p| p.1)
                .unwrap_or("")
                .trim()
        ),
        _ => original.to_string(),
    }
}

/// A command as BuildKit's history writes it: Go's `%q` of the argv (`["a" "b c"]`), a shell
/// form run through the stage's SHELL.
fn go_list(c: &Command, shell: &[String]) -> String {
    let argv = cmd_list(c, shell);
    let items: Vec<String> = argv.iter().map(|a| go_quote(a)).collect();
    format!("[{}]", items.join(" "))
}

/// Go's `strconv.Quote`: printable characters as they are, the rest escaped.
fn go_quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            '\r' => q.push_str("\\r"),
            '\u{7}' => q.push_str("\\a"),
            '\u{8}' => q.push_str("\\b"),
            '\u{c}' => q.push_str("\\f"),
            '\u{b}' => q.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                q.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => q.push_str(&format!("\\u{:04x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// `import --change 'CMD ["x"]'`: one Dockerfile metadata instruction applied to a `config` object.
pub fn apply_change(config: &mut Value, change: &str) -> Result<(), String> {
    let df =
        lighter_dockerfile::parse(&format!("FROM scratch\n{change}\n")).map_err(|e| e.message)?;
    let ins = df.stages[0].instructions.first().ok_or("empty change")?;
    match ins.kind {
        InstructionKind::Run(_) | InstructionKind::Copy(_) | InstructionKind::Add(_) | InstructionKind::Arg(_) | InstructionKind::Maintainer(_) => {
            Err(format!("{} is not supported by --change (use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR)", ins.name()))
        }
        _ => {
            let mut c: ContainerConfig = if config.is_null() {
                ContainerConfig::default()
            } else {
                serde_json::from_value(config.clone()).map_err(|e| format!("config: {e}"))?
            };
            apply(&mut c, &ins.kind);
            *config = serde_json::to_value(&c).map_err(|e| e.to_string())?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_base_without_path_gets_the_default_appended() {
        let with = |env: &[&str]| {
            let mut c = ImageConfig::default();
            c.config.env = env.iter().map(|s| s.to_string()).collect();
            ensure_path(&mut c);
            c.config.env
        };
        assert_eq!(with(&[]), [DEFAULT_PATH]);
        assert_eq!(with(&["A=1"]), ["A=1", DEFAULT_PATH]);
        assert_eq!(
            with(&["PATH=/x", "A=1"]),
            ["PATH=/x", "A=1"],
            "an image's own PATH is kept"
        );
    }

    #[test]
    fn entrypoint_clears_cmd_and_env_replaces_in_place() {
        let mut c = json!({ "Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"] });
        apply_change(&mut c, "ENV PATH=/usr/bin").unwrap();
        assert_eq!(c["Env"], json!(["PATH=/usr/bin", "A=1"]));
        apply_change(&mut c, "ENTRYPOINT [\"/app\"]").unwrap();
        assert_eq!(c.get("Cmd"), None, "no CMD, as Go leaves it out");
        apply_change(&mut c, "CMD echo hi").unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        apply_change(&mut c, "EXPOSE 8080 53/UDP").unwrap();
        assert_eq!(c["ExposedPorts"], json!({ "8080/tcp": {}, "53/udp": {} }));
        apply_change(&mut c, "WORKDIR app").unwrap();
        apply_change(&mut c, "WORKDIR ../srv").unwrap();
        assert_eq!(c["WorkingDir"], json!("/srv"));
        assert!(apply_change(&mut c, "RUN true").is_err());
        apply_change(
            &mut c,
            "HEALTHCHECK --interval=5s CMD curl -f http://localhost/",
        )
        .unwrap();
        assert_eq!(
            c["Healthcheck"]["Test"],
            json!(["CMD-SHELL", "curl -f http://localhost/"])
        );
        assert_eq!(c["Healthcheck"]["Interval"], json!(5_000_000_000u64));
    }
}
