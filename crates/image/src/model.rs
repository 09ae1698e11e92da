//! The image model: an image is a config blob, a manifest blob and layer blobs in the content store,
//! plus a record in the metadata DB keyed by image ID (the config digest, as docker's).

use crate::{format_err, ImageError, Result};
use lighter_oci::{media, Digest, Reference};
use lighter_store::layer::LayerInfo;
use lighter_store::{Store, Table};
use serde::{Deserialize, Serialize};

/// What the metadata DB holds for an image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    pub manifest: Digest,
    pub config: Digest,
    pub layers: Vec<LayerInfo>,
    /// When it was added to this store.
    pub added: String,
}

/// An image read from the store.
#[derive(Debug, Clone)]
pub struct Image {
    pub id: Digest,
    pub record: ImageRecord,
    /// The config JSON (docker/OCI image config).
    pub config: serde_json::Value,
}

impl Image {
    /// Reads image `id` from the store.
    pub fn read(store: &Store, id: &Digest) -> Result<Image> {
        let rec = store
            .meta()
            .get(Table::Images, id.as_str())?
            .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
        let record: ImageRecord = serde_json::from_str(&rec)
            .map_err(|e| format_err(id, format!("corrupt image record: {e}")))?;
        let bytes = store.content().read(&record.config)?;
        let config = serde_json::from_slice(&bytes)
            .map_err(|e| format_err(&record.config, format!("config is not JSON: {e}")))?;
        Ok(Image {
            id: id.clone(),
            record,
            config,
        })
    }

    /// Uncompressed size (what docker shows as SIZE).
    pub fn size(&self) -> u64 {
        self.record.layers.iter().map(|l| l.uncompressed_size).sum()
    }

    /// Compressed size (what a registry stores and a pull transfers).
    pub fn compressed_size(&self) -> u64 {
        self.record.layers.iter().map(|l| l.size).sum()
    }

    /// The config, typed. A config that does not fit the model (a field of the wrong type) reads
    /// as the parts that do: the raw JSON stays in [`Image::config`].
    pub fn typed(&self) -> lighter_oci::ImageConfig {
        fn part<T: serde::de::DeserializeOwned + Default>(v: &serde_json::Value, k: &str) -> T {
            v.get(k)
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default()
        }
        lighter_oci::ImageConfig::from_json(&self.config).unwrap_or_else(|_| {
            lighter_oci::ImageConfig {
                created: part(&self.config, "created"),
                config: part(&self.config, "config"),
                history: part(&self.config, "history"),
                ..Default::default()
            }
        })
    }

    /// When the image was made (read alone, without typing the whole config: listings sort by it).
    pub fn created(&self) -> Option<&str> {
        self.config.get("created").and_then(|v| v.as_str())
    }

    /// The config's history entries.
    pub fn history(&self) -> Vec<lighter_oci::config::History> {
        self.typed().history
    }
}

/// The current time as RFC 3339 with nanoseconds (docker's format), or `epoch` (the store's
/// `SOURCE_DATE_EPOCH` setting) when set.
pub fn now_rfc3339(epoch: Option<i64>) -> String {
    let secs_nanos = match epoch {
        Some(e) => (e, 0),
        None => {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (d.as_secs() as i64, d.subsec_nanos())
        }
    };
    rfc3339(secs_nanos.0, secs_nanos.1)
}

/// Formats Unix seconds + nanoseconds as `2006-01-02T15:04:05.999999999Z`.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    if nanos == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        let frac = format!("{nanos:09}");
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{}Z",
            frac.trim_end_matches('0')
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 time into Unix seconds (for "CREATED 2 hours ago").
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut dp = date.split('-');
    let (y, mo, d): (i64, i64, i64) = (
        dp.next()?.parse().ok()?,
        dp.next()?.parse().ok()?,
        dp.next()?.parse().ok()?,
    );
    let hms = &time[..8.min(time.len())];
    let mut tp = hms.split(':');
    let (h, mi, se): (i64, i64, i64) = (
        tp.next()?.parse().ok()?,
        tp.next()?.parse().ok()?,
        tp.next()?.parse().ok()?,
    );
    let mut secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se;
    // Offsets like +02:00.
    let tz = &time[8.min(time.len())..];
    let tz = tz.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if let Some(off) = tz.strip_prefix('+').or_else(|| tz.strip_prefix('-')) {
        let sign = if tz.starts_with('+') { -1 } else { 1 };
        let mut op = off.split(':');
        let oh: i64 = op.next()?.parse().ok()?;
        let om: i64 = op.next().unwrap_or("0").parse().ok()?;
        secs += sign * (oh * 3600 + om * 60);
    }
    Some(secs)
}

/// Stores `config` (whose `rootfs.diff_ids` must list `layers`), writes an OCI manifest, records the
/// image and points `tags` at it, all refs in one transaction. Returns the image ID.
pub fn commit(
    store: &Store,
    config_bytes: &[u8],
    layers: &[LayerInfo],
    tags: &[Reference],
) -> Result<Digest> {
    let (config_digest, manifest_digest) = assemble(store, config_bytes, layers)?;
    let record = ImageRecord {
        manifest: manifest_digest,
        config: config_digest.clone(),
        layers: layers.to_vec(),
        added: now_rfc3339(store.settings().source_date_epoch),
    };
    let rec_json =
        serde_json::to_string(&record).map_err(|e| format_err("record", e.to_string()))?;
    store.meta().update(|tx| {
        tx.put(Table::Images, config_digest.as_str(), &rec_json)?;
        for t in tags {
            tx.put(Table::Refs, &t.to_string(), config_digest.as_str())?;
        }
        Ok(())
    })?;
    Ok(config_digest)
}

/// Writes an image's config and manifest blobs (the config's diffIDs checked against `layers`)
/// without recording the image: for an image that is only pushed. Returns the config and manifest
/// digests; the layer blobs need not be in the store.
pub fn assemble(
    store: &Store,
    config_bytes: &[u8],
    layers: &[LayerInfo],
) -> Result<(Digest, Digest)> {
    let config: serde_json::Value = serde_json::from_slice(config_bytes)
        .map_err(|e| format_err("config", format!("not JSON: {e}")))?;
    let diff_ids: Vec<&str> = config
        .pointer("/rootfs/diff_ids")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|d| d.as_str()).collect())
        .unwrap_or_default();
    let want: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    if diff_ids != want {
        return Err(format_err(
            "config",
            "rootfs.diff_ids do not match the layers",
        ));
    }
    let config_digest = store.content().put(config_bytes)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": { "mediaType": media::OCI_CONFIG, "digest": config_digest.as_str(), "size": config_bytes.len() },
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": l.media_type, "digest": l.digest.as_str(), "size": l.size
        })).collect::<Vec<_>>(),
    });
    let manifest_bytes = lighter_oci::json::to_vec_pretty(&manifest)
        .map_err(|e| format_err("manifest", e.to_string()))?;
    let manifest_digest = store.content().put(&manifest_bytes)?;
    Ok((config_digest, manifest_digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_700_000_000, 120_000_000),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.12Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000)
        );
    }
}
