//! Per-build (and per-`run`) process options docker build and docker run take on the command line:
//! `--add-host`, `--shm-size` and `--ulimit`, parsed with docker's syntax and errors, and the
//! `/etc/hosts` text BuildKit writes for a step.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// `--add-host HOST:IP` (also `HOST=IP`, and `[v6]` brackets, as buildx accepts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    pub host: String,
    pub ip: IpAddr,
}

impl ExtraHost {
    /// Parses one `--add-host` value. `host-gateway` names the host itself: with the host network
    /// (the only network here besides none) that is 127.0.0.1.
    pub fn parse(value: &str) -> Result<ExtraHost, String> {
        let split = value
            .find('=')
            .or_else(|| value.find(':'))
            .ok_or_else(|| format!("bad format for add-host: {value:?} (expected HOST:IP)"))?;
        let (host, ip) = (&value[..split], &value[split + 1..]);
        if host.is_empty() || host.chars().any(|c| c.is_whitespace()) {
            return Err(format!(
                "bad format for add-host: {value:?} (empty or blank host name)"
            ));
        }
        let ip = if ip == "host-gateway" {
            IpAddr::from([127, 0, 0, 1])
        } else {
            let bare = ip
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .unwrap_or(ip);
            bare.parse()
                .map_err(|_| format!("invalid IP address in add-host: {ip:?}"))?
        };
        Ok(ExtraHost {
            host: host.to_string(),
            ip,
        })
    }
}

/// The `/etc/hosts` of a step, as BuildKit writes it: localhost and the sandbox's name, then one
/// `IP<TAB>HOST` line per `--add-host`, in order.
pub fn hosts_file(hostname: &str, extra: &[ExtraHost]) -> String {
    let mut s =
        format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for h in extra {
        s.push_str(&format!("{}\t{}\n", h.ip, h.host));
    }
    s
}

/// `--ulimit NAME=SOFT[:HARD]`, as docker's `units.ParseUlimit` (HARD defaults to SOFT; -1 is
/// unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// The resources docker knows by name, and their `RLIMIT_*` numbers.
const ULIMITS: [(&str, u32); 15] = [
    ("core", libc::RLIMIT_CORE as u32),
    ("cpu", libc::RLIMIT_CPU as u32),
    ("data", libc::RLIMIT_DATA as u32),
    ("fsize", libc::RLIMIT_FSIZE as u32),
    ("locks", libc::RLIMIT_LOCKS as u32),
    ("memlock", libc::RLIMIT_MEMLOCK as u32),
    ("msgqueue", libc::RLIMIT_MSGQUEUE as u32),
    ("nice", libc::RLIMIT_NICE as u32),
    ("nofile", libc::RLIMIT_NOFILE as u32),
    ("nproc", libc::RLIMIT_NPROC as u32),
    ("rss", libc::RLIMIT_RSS as u32),
    ("rtprio", libc::RLIMIT_RTPRIO as u32),
    ("rttime", libc::RLIMIT_RTTIME as u32),
    ("sigpending", libc::RLIMIT_SIGPENDING as u32),
    ("stack", libc::RLIMIT_STACK as u32),
];

impl Ulimit {
    pub fn parse(value: &str) -> Result<Ulimit, String> {
        let (name, limits) = value
            .split_once('=')
            .ok_or_else(|| format!("invalid ulimit argument: {value}"))?;
        if !ULIMITS.iter().any(|(n, _)| *n == name) {
            return Err(format!("invalid ulimit type: {name}"));
        }
        let num = |s: &str| {
            s.parse::<i64>()
                .ok()
                .filter(|v| *v >= -1)
                .ok_or_else(|| format!("invalid ulimit value {s:?} in {value}"))
        };
        let (soft, hard) = match limits.split_once(':') {
            Some((s, h)) => (num(s)?, num(h)?),
            None => (num(limits)?, num(limits)?),
        };
        let unlimited = |v: i64| v == -1;
        if !unlimited(hard) && (unlimited(soft) || soft > hard) {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
        Ok(Ulimit {
            name: name.to_string(),
            soft,
            hard,
        })
    }

    /// The `RLIMIT_*` resource and its limits (`-1` -> `RLIM_INFINITY`).
    pub(crate) fn resource(&self) -> Option<(u32, libc::rlim_t, libc::rlim_t)> {
        let r = ULIMITS.iter().find(|(n, _)| *n == self.name)?.1;
        let v = |x: i64| {
            if x < 0 {
                libc::RLIM_INFINITY
            } else {
                x as libc::rlim_t
            }
        };
        Some((r, v(self.soft), v(self.hard)))
    }

    /// `NAME=SOFT:HARD`, as a cache key part.
    pub fn key(&self) -> String {
        format!("{}={}:{}", self.name, self.soft, self.hard)
    }
}

/// A size with docker's units (`RAMInBytes`: b, k, m, g, t, p, binary multiples, optional `b`
/// suffix after the unit), as `--shm-size 1g` takes it.
pub fn parse_size(value: &str) -> Result<u64, String> {
    let bad = || format!("invalid size: {value:?}");
    let v = value.trim().to_ascii_lowercase();
    let digits = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(digits);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim();
    // docker's RAMInBytes: an optional unit letter, then an optional `i`, then an optional `b`.
    let letter = match unit.strip_suffix('b').unwrap_or(unit) {
        "" => "",
        u => u.strip_suffix('i').unwrap_or(u),
    };
    if unit == "i" || unit == "ib" {
        return Err(bad());
    }
    let mult: u64 = match letter {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(bad()),
    };
    let bytes = num * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_host_forms_and_errors() {
        let h = ExtraHost::parse("db:10.0.0.5").unwrap();
        assert_eq!(
            (h.host.as_str(), h.ip.to_string().as_str()),
            ("db", "10.0.0.5")
        );
        assert_eq!(ExtraHost::parse("db=10.0.0.5").unwrap(), h);
        assert_eq!(ExtraHost::parse("v6:::1").unwrap().ip.to_string(), "::1");
        assert_eq!(
            ExtraHost::parse("v6=[fe80::1]").unwrap().ip.to_string(),
            "fe80::1"
        );
        assert_eq!(
            ExtraHost::parse("gw:host-gateway").unwrap().ip.to_string(),
            "127.0.0.1"
        );
        assert!(ExtraHost::parse("db").unwrap_err().contains("bad format"));
        assert!(ExtraHost::parse(":1.2.3.4")
            .unwrap_err()
            .contains("bad format"));
        assert_eq!(
            ExtraHost::parse("db:1.2.3").unwrap_err(),
            "invalid IP address in add-host: \"1.2.3\""
        );
        assert_eq!(
            hosts_file("buildkitsandbox", &[h]),
            "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.5\tdb\n"
        );
    }

    #[test]
    fn ulimit_forms_and_errors() {
        let u = Ulimit::parse("nofile=1024:2048").unwrap();
        assert_eq!((u.soft, u.hard), (1024, 2048));
        assert_eq!(u.resource(), Some((libc::RLIMIT_NOFILE as u32, 1024, 2048)));
        let u = Ulimit::parse("nproc=100").unwrap();
        assert_eq!((u.soft, u.hard), (100, 100));
        let u = Ulimit::parse("core=-1").unwrap();
        assert_eq!(
            u.resource(),
            Some((
                libc::RLIMIT_CORE as u32,
                libc::RLIM_INFINITY,
                libc::RLIM_INFINITY
            ))
        );
        assert_eq!(
            Ulimit::parse("files=1").unwrap_err(),
            "invalid ulimit type: files"
        );
        assert!(Ulimit::parse("nofile")
            .unwrap_err()
            .contains("invalid ulimit argument"));
        assert!(Ulimit::parse("nofile=2048:1024")
            .unwrap_err()
            .contains("soft limit"));
        assert!(Ulimit::parse("nofile=x")
            .unwrap_err()
            .contains("invalid ulimit value"));
    }

    #[test]
    fn sizes_with_docker_units() {
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("2048").unwrap(), 2048);
        assert_eq!(parse_size("1.5m").unwrap(), 3 << 19);
        assert!(parse_size("12q").is_err());
        assert!(parse_size("1bb").is_err());
        assert!(parse_size("1ib").is_err());
        assert_eq!(parse_size("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_size("3b").unwrap(), 3);
        assert!(parse_size("").is_err());
    }
}
