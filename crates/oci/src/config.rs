//! The image config as Docker and BuildKit write it, typed: the OCI image config with Docker's
//! additions to its `config` (Healthcheck, OnBuild, Shell). `oci-spec`'s `ImageConfiguration`
//! has no place for those (and its builders make edits verbose), so this is a serde model of our
//! own. Fields are in the order Go marshals BuildKit's structs, empty ones are left out as Go's
//! `omitempty` leaves them out, maps are sorted as Go sorts them, and fields this model does not
//! know (a base image's `container_config`, `os.version`, an inline build cache) are kept as they
//! were read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// An image config (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub config: ContainerConfig,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub history: Vec<History>,
    /// Fields this model does not know, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `config` of an image: how a container of it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub on_build: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub shell: Vec<String>,
    /// Fields this model does not know (Docker's Hostname, AttachStdin, ...), kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `{}` value of an exposed port or a volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Docker's HEALTHCHECK: durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub diff_ids: Vec<String>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// One history entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// `null` reads as empty (Go writes nil slices and maps as `null` where they are not omitted).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl ContainerConfig {
    /// `Env` as (key, value) pairs, in order.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect()
    }

    /// Sets `key=value`, replacing an existing entry in place (Docker keeps the position).
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self
            .env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |p| p.0) == key)
        {
            Some(slot) => *slot = entry,
            None => self.env.push(entry),
        }
    }
}

impl ImageConfig {
    /// Reads a config from its JSON.
    pub fn from_json(v: &Value) -> serde_json::Result<ImageConfig> {
        ImageConfig::deserialize(v)
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_what_it_does_not_model() {
        let text = r#"{"architecture":"amd64","config":{"Env":["PATH=/bin"],"Cmd":null,"Volumes":null,"Hostname":"x","Labels":{"b":"2","a":"1"},"ExposedPorts":{"80/tcp":{}}},"container_config":{"Cmd":["sh"]},"created":"2024-01-01T00:00:00Z","history":[{"created":"t","created_by":"RUN x","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:a"]}}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        let c = ImageConfig::from_json(&v).unwrap();
        assert_eq!(c.config.env, ["PATH=/bin"]);
        assert_eq!(c.config.cmd, None);
        assert_eq!(c.config.extra["Hostname"], "x");
        assert!(c.extra.contains_key("container_config"));
        assert!(c.history[0].empty_layer);
        let out = serde_json::to_string(&c).unwrap();
        // Go's order and omitempty: created first, sorted maps, no null Cmd.
        assert!(out.starts_with(r#"{"created":"2024-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{"#), "{out}");
        assert!(out.contains(r#""Labels":{"a":"1","b":"2"}"#), "{out}");
        assert!(!out.contains("null"), "{out}");
        assert_eq!(
            ImageConfig::from_json(&serde_json::from_str(&out).unwrap()).unwrap(),
            c
        );
    }

    #[test]
    fn env_is_set_in_place() {
        let mut c = ContainerConfig {
            env: vec!["PATH=/bin".into(), "A=1".into()],
            ..Default::default()
        };
        c.set_env("PATH", "/usr/bin");
        c.set_env("B", "2");
        assert_eq!(c.env, ["PATH=/usr/bin", "A=1", "B=2"]);
        assert_eq!(c.env_pairs()[2], ("B".to_string(), "2".to_string()));
    }
}
