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
    #[serde(default, skip_serializing_if = "none_or_empty_str")]
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
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
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
    #[serde(default, skip_serializing_if = "none_or_empty")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "none_or_empty")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub working_dir: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
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

/// The `{}` value of an exposed port or a volume (whatever a base has there reads as `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Empty {}

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Empty, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Empty {})
    }
}

/// Docker's HEALTHCHECK: durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "none_or_zero")]
    pub interval: Option<u64>,
    #[serde(default, skip_serializing_if = "none_or_zero")]
    pub timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "none_or_zero")]
    pub start_period: Option<u64>,
    #[serde(default, skip_serializing_if = "none_or_zero")]
    pub start_interval: Option<u64>,
    #[serde(default, skip_serializing_if = "none_or_zero_u32")]
    pub retries: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default = "layers", deserialize_with = "nullable")]
    pub kind: String,
    /// Go writes no layers as `null` (the field has no omitempty).
    #[serde(
        default,
        deserialize_with = "nullable",
        serialize_with = "null_when_empty"
    )]
    pub diff_ids: Vec<String>,
}

fn layers() -> String {
    "layers".into()
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
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

fn none_or_empty(v: &Option<Vec<String>>) -> bool {
    v.as_ref().is_none_or(|v| v.is_empty())
}

fn none_or_empty_str(v: &Option<String>) -> bool {
    v.as_ref().is_none_or(|v| v.is_empty())
}

fn none_or_zero(v: &Option<u64>) -> bool {
    v.is_none_or(|v| v == 0)
}

fn none_or_zero_u32(v: &Option<u32>) -> bool {
    v.is_none_or(|v| v == 0)
}

fn null_when_empty<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        v.serialize(s)
    }
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

    /// The config as BuildKit's exporter writes it: its top-level keys sorted (the exporter
    /// goes through a Go map), the objects inside in the model's order.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.sort_keys();
        }
        v
    }

    /// Leaves out what BuildKit's Dockerfile frontend does not carry over from a base image
    /// (fields its model lacks: `container_config`, `docker_version`, `config.Hostname`, ...).
    pub fn without_unknown_fields(mut self) -> ImageConfig {
        self.extra
            .retain(|k, _| k == "os.version" || k == "os.features");
        self.config.extra.clear();
        self
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
        let out = serde_json::to_string(&c.to_json()).unwrap();
        // BuildKit's exporter's order: top-level keys sorted; omitempty; sorted maps; no null Cmd.
        assert!(
            out.starts_with(r#"{"architecture":"amd64","config":{"ExposedPorts":{"80/tcp":{}},"Env":["PATH=/bin"],"#),
            "{out}"
        );
        assert!(out.contains(r#""container_config""#), "{out}");
        assert!(out.contains(r#""Labels":{"a":"1","b":"2"}"#), "{out}");
        assert!(!out.contains("null"), "{out}");
        let bare = c.clone().without_unknown_fields();
        assert!(bare.extra.is_empty() && bare.config.extra.is_empty());
        let empty = ImageConfig::default().to_json();
        assert_eq!(
            empty["rootfs"]["diff_ids"],
            Value::Null,
            "Go writes no layers as null"
        );
        let odd: Value = serde_json::from_str(
            r#"{"config":{"User":null,"ExposedPorts":{"80/tcp":null},"Healthcheck":{"Test":null}},"rootfs":{}}"#,
        )
        .unwrap();
        let odd = ImageConfig::from_json(&odd).unwrap();
        assert_eq!(odd.config.exposed_ports.len(), 1);
        assert_eq!(odd.rootfs.kind, "layers");
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
