//! The image config as docker's builder writes it: metadata instructions applied to the `config`
//! object (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes, Labels, StopSignal,
//! Healthcheck, Shell, OnBuild) and the history text BuildKit records for each instruction.

use lighter_dockerfile::{Command, Healthcheck, InstructionKind};
use serde_json::{json, Map, Value};

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
pub fn empty_image() -> Value {
    json!({
        "architecture": lighter_oci::HOST_ARCH,
        "os": lighter_oci::HOST_OS,
        "config": { "Env": [DEFAULT_PATH], "WorkingDir": "/" },
        "rootfs": { "type": "layers", "diff_ids": [] },
        "history": [],
    })
}

/// BuildKit's "make sure that PATH is always set": a stage whose base config has no PATH gets the
/// default one appended to its `Env`, so it is in the stage's RUN environment and in the image
/// config (a base made by `docker import` or `lighter import` has no Env at all).
pub fn ensure_path(image: &mut Value) {
    let has_path = env_of(&image["config"]).iter().any(|(k, _)| k == "PATH");
    if has_path {
        return;
    }
    let config = obj(obj(image).entry("config").or_insert_with(|| json!({})));
    match config.get_mut("Env").and_then(|e| e.as_array_mut()) {
        Some(env) => env.push(json!(DEFAULT_PATH)),
        None => {
            config.insert("Env".into(), json!([DEFAULT_PATH]));
        }
    }
}

fn obj(cfg: &mut Value) -> &mut Map<String, Value> {
    if !cfg.is_object() {
        *cfg = json!({});
    }
    cfg.as_object_mut().expect("object")
}

/// Reads `Env` as ordered (key, value) pairs.
pub fn env_of(config: &Value) -> Vec<(String, String)> {
    config
        .get("Env")
        .and_then(|e| e.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (kv.to_string(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sets `key=value` in `Env`, replacing an existing entry in place (docker keeps the position).
pub fn set_env(config: &mut Value, key: &str, value: &str) {
    let c = obj(config);
    let env = c.entry("Env").or_insert_with(|| json!([]));
    if !env.is_array() {
        *env = json!([]);
    }
    let arr = env.as_array_mut().expect("array");
    let entry = format!("{key}={value}");
    if let Some(slot) = arr.iter_mut().find(|v| {
        v.as_str()
            .is_some_and(|s| s.split_once('=').map_or(s, |p| p.0) == key)
    }) {
        *slot = json!(entry);
    } else {
        arr.push(json!(entry));
    }
}

fn cmd_json(c: &Command, shell: &[String]) -> Value {
    match c {
        Command::Exec(v) => json!(v),
        Command::Shell(s) => {
            let mut v: Vec<String> = shell.to_vec();
            v.push(s.clone());
            json!(v)
        }
    }
}

/// The stage's SHELL (default `/bin/sh -c`).
pub fn shell_of(config: &Value) -> Vec<String> {
    config
        .get("Shell")
        .and_then(|s| s.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .filter(|v: &Vec<String>| !v.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

/// Applies one metadata instruction, whose words the caller has already expanded, to the `config`
/// object. Returns false when the instruction is not a metadata instruction.
pub fn apply(config: &mut Value, kind: &InstructionKind) -> bool {
    let shell = shell_of(config);
    let c = obj(config);
    match kind {
        InstructionKind::Env(kvs) => {
            let mut v = Value::Object(std::mem::take(c));
            for kv in kvs {
                set_env(&mut v, &kv.key, &kv.value);
            }
            *c = v.as_object().cloned().unwrap_or_default();
        }
        InstructionKind::Label(kvs) => {
            let labels = c.entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for kv in kvs {
                labels[&kv.key] = json!(kv.value);
            }
        }
        InstructionKind::Cmd(cmd) => {
            c.insert("Cmd".into(), cmd_json(cmd, &shell));
        }
        InstructionKind::Entrypoint(cmd) => {
            // Setting ENTRYPOINT clears a CMD inherited from the base or set before it.
            let v = match cmd {
                Command::Shell(s) if s.is_empty() => Value::Null,
                _ => cmd_json(cmd, &shell),
            };
            c.insert("Entrypoint".into(), v);
            c.insert("Cmd".into(), Value::Null);
        }
        InstructionKind::Workdir(w) => {
            let cur = c
                .get("WorkingDir")
                .and_then(|v| v.as_str())
                .unwrap_or("/")
                .to_string();
            c.insert("WorkingDir".into(), json!(join_workdir(&cur, w)));
        }
        InstructionKind::User(u) => {
            c.insert("User".into(), json!(u));
        }
        InstructionKind::Expose(ports) => {
            let e = c.entry("ExposedPorts").or_insert_with(|| json!({}));
            if !e.is_object() {
                *e = json!({});
            }
            for p in ports {
                let p = if p.contains('/') {
                    p.to_ascii_lowercase()
                } else {
                    format!("{p}/tcp")
                };
                e[&p] = json!({});
            }
        }
        InstructionKind::Volume(vols) => {
            let e = c.entry("Volumes").or_insert_with(|| json!({}));
            if !e.is_object() {
                *e = json!({});
            }
            for v in vols {
                e[v] = json!({});
            }
        }
        InstructionKind::StopSignal(s) => {
            c.insert("StopSignal".into(), json!(s));
        }
        InstructionKind::Shell(s) => {
            c.insert("Shell".into(), json!(s));
        }
        InstructionKind::Healthcheck(h) => {
            let v = match h {
                Healthcheck::None => json!({ "Test": ["NONE"] }),
                Healthcheck::Cmd {
                    command,
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                } => {
                    let test = match command {
                        Command::Exec(v) => {
                            let mut t = vec!["CMD".to_string()];
                            t.extend(v.iter().cloned());
                            t
                        }
                        Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                    };
                    let mut m = json!({ "Test": test });
                    for (k, v) in [
                        ("Interval", interval),
                        ("Timeout", timeout),
                        ("StartPeriod", start_period),
                        ("StartInterval", start_interval),
                    ] {
                        if let Some(v) = v {
                            m[k] = json!(v);
                        }
                    }
                    if let Some(r) = retries {
                        m["Retries"] = json!(r);
                    }
                    m
                }
            };
            c.insert("Healthcheck".into(), v);
        }
        InstructionKind::Onbuild(inner) => {
            let o = c.entry("OnBuild").or_insert_with(|| json!([]));
            if !o.is_array() {
                *o = json!([]);
            }
            o.as_array_mut()
                .expect("array")
                .push(json!(inner.original.trim()));
        }
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

/// The history `created_by` text BuildKit writes for a metadata instruction (expanded words).
pub fn created_by(kind: &InstructionKind, original: &str) -> String {
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
        InstructionKind::Cmd(c) => format!("CMD {}", go_list(c)),
        InstructionKind::Entrypoint(c) => format!("ENTRYPOINT {}", go_list(c)),
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

fn go_list(c: &Command) -> String {
    match c {
        Command::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
        Command::Shell(s) => {
            serde_json::to_string(&["/bin/sh", "-c", s.as_str()]).unwrap_or_default()
        }
    }
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
            apply(config, &ins.kind);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_without_path_gets_the_default_appended() {
        let mut imported = json!({ "config": {} });
        ensure_path(&mut imported);
        assert_eq!(imported["config"]["Env"], json!([DEFAULT_PATH]));
        let mut some_env = json!({ "config": { "Env": ["A=1"] } });
        ensure_path(&mut some_env);
        assert_eq!(some_env["config"]["Env"], json!(["A=1", DEFAULT_PATH]));
        let mut own = json!({ "config": { "Env": ["PATH=/x", "A=1"] } });
        ensure_path(&mut own);
        assert_eq!(
            own["config"]["Env"],
            json!(["PATH=/x", "A=1"]),
            "an image's own PATH is kept"
        );
        let mut bare = json!({});
        ensure_path(&mut bare);
        assert_eq!(bare["config"]["Env"], json!([DEFAULT_PATH]));
    }

    #[test]
    fn entrypoint_clears_cmd_and_env_replaces_in_place() {
        let mut c = json!({ "Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"] });
        apply_change(&mut c, "ENV PATH=/usr/bin").unwrap();
        assert_eq!(c["Env"], json!(["PATH=/usr/bin", "A=1"]));
        apply_change(&mut c, "ENTRYPOINT [\"/app\"]").unwrap();
        assert_eq!(c["Cmd"], Value::Null);
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
