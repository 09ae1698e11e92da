//! The step's seccomp filter: docker's default profile, compiled the way docker and runc compile it.
//!
//! The profile is moby/profiles `seccomp/v0.2.3`, embedded verbatim from
//! `profiles/docker-default.json`: an allowlist of ~370 calls, everything else failing with EPERM
//! (its `defaultErrnoRet`). A capability set alone leaves too much open to a root step (the kernel
//! keyring, new user namespaces that hand back every capability, `bpf`, io_uring, obsolete calls), and
//! images are built and tested under docker's profile, so a step sees what a `docker build` step sees.
//!
//! Compiling follows moby's `profiles/seccomp` and runc's `libcontainer/seccomp`:
//! - architectures from `archMap`: x86_64 with i386 and x32, or aarch64 with arm;
//! - a rule is kept or dropped by its `includes` and `excludes` ([`Profile::rules_for`]): the
//!   architecture (Go's name, `amd64` or `arm64`), the step's capabilities (its bounding set, docker's
//!   default set unless privileged) and the running kernel's `major.minor` against `minKernel`;
//! - a rule's `args` are ANDed; several rules for one call are ORed (one libseccomp rule each, or one
//!   per condition when two conditions test the same argument, as runc does);
//! - names that this libseccomp (2.5.4 on Debian bookworm) does not know are skipped, as runc skips
//!   them, and rules whose action is the default action are skipped;
//! - `no_new_privs` stays off, so setuid programs keep working: [`install`] runs in the step's init
//!   while it still holds `CAP_SYS_ADMIN`, and the command inherits the filter through exec;
//! - runc's ENOSYS stub ([`enosys_stub`]): a call numbered above the highest one the filter knows for
//!   its architecture fails with ENOSYS, not EPERM, so that libc falls back from calls newer than the
//!   profile or libseccomp (as it does from `clone3`, which the profile answers with ENOSYS itself).
//!   The stub knows x86_64, x32, i386, aarch64 and arm; elsewhere such calls get EPERM.
//!
//! [`bpf`] builds the program with libseccomp, puts the stub in front and loads the whole with
//! `prctl(PR_SET_SECCOMP)`, as runc loads its patched program. The executor compiles it once per
//! process and hands it to each step's init ([`Program`]).

mod bpf;

pub(crate) use bpf::{install, Program};
use libseccomp::{ScmpAction, ScmpArch, ScmpCompareOp};
use std::str::FromStr;

/// moby/profiles `seccomp/v0.2.3`, unedited.
const DOCKER_DEFAULT: &str = include_str!("../../profiles/docker-default.json");

/// Capability names by number, as the profile spells them.
#[rustfmt::skip]
const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];

/// What the filter does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Allow,
    Errno(u16),
    KillThread,
    KillProcess,
    Trap,
    Trace(u16),
    Log,
}

impl Action {
    /// `SCMP_ACT_*` with the rule's `errnoRet` (EPERM when absent, as runc).
    fn parse(name: &str, errno: Option<u16>) -> Result<Self, String> {
        let ret = errno.unwrap_or(libc::EPERM as u16);
        Ok(match name {
            "SCMP_ACT_ALLOW" => Self::Allow,
            "SCMP_ACT_ERRNO" => Self::Errno(ret),
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Self::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Self::KillProcess,
            "SCMP_ACT_TRAP" => Self::Trap,
            "SCMP_ACT_TRACE" => Self::Trace(ret),
            "SCMP_ACT_LOG" => Self::Log,
            // SCMP_ACT_NOTIFY needs a listener on the other end, which a build has not.
            other => return Err(format!("unsupported seccomp action {other}")),
        })
    }

    fn scmp(self) -> ScmpAction {
        match self {
            Self::Allow => ScmpAction::Allow,
            Self::Errno(e) => ScmpAction::Errno(e.into()),
            Self::KillThread => ScmpAction::KillThread,
            Self::KillProcess => ScmpAction::KillProcess,
            Self::Trap => ScmpAction::Trap,
            Self::Trace(v) => ScmpAction::Trace(v),
            Self::Log => ScmpAction::Log,
        }
    }
}

/// One condition on a call's argument: `args[index] OP value` (`args[index] & mask == value` for
/// MASKED_EQ, whose `value` in the profile is the mask and `valueTwo` the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arg {
    pub index: u32,
    pub op: ScmpCompareOp,
    pub value: u64,
}

/// A kept rule: these calls, when every one of `args` holds, get `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub names: Vec<String>,
    pub action: Action,
    pub args: Vec<Arg>,
}

/// A kernel release as `minKernel` compares it: major and minor.
pub(crate) type Kernel = (u32, u32);

/// An `includes` or `excludes` block.
#[derive(Debug, Default)]
struct Cond {
    arches: Vec<String>,
    caps: Vec<String>,
    min_kernel: Option<Kernel>,
}

#[derive(Debug)]
struct Entry {
    rule: Rule,
    includes: Cond,
    excludes: Cond,
}

/// A parsed profile: the default action, the architecture map and the rules still to select.
#[derive(Debug)]
pub(crate) struct Profile {
    pub default: Action,
    arch_map: Vec<(ScmpArch, Vec<ScmpArch>)>,
    entries: Vec<Entry>,
}

/// The JSON as docker writes it (`profiles/seccomp/seccomp.go`); unknown fields are ignored.
mod json {
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Profile {
        pub default_action: String,
        pub default_errno_ret: Option<u16>,
        #[serde(default)]
        pub arch_map: Vec<ArchMap>,
        #[serde(default)]
        pub syscalls: Vec<Syscall>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ArchMap {
        pub architecture: String,
        pub sub_architectures: Option<Vec<String>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Syscall {
        pub name: Option<String>,
        #[serde(default)]
        pub names: Vec<String>,
        pub action: String,
        pub errno_ret: Option<u16>,
        pub args: Option<Vec<Arg>>,
        #[serde(default)]
        pub includes: Filter,
        #[serde(default)]
        pub excludes: Filter,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Arg {
        pub index: u32,
        pub value: u64,
        #[serde(default)]
        pub value_two: u64,
        pub op: String,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct Filter {
        pub arches: Option<Vec<String>>,
        pub caps: Option<Vec<String>>,
        pub min_kernel: Option<String>,
    }
}

fn parse_arg(a: &json::Arg) -> Result<Arg, String> {
    if a.index > 5 {
        return Err(format!("seccomp argument index {} out of range", a.index));
    }
    let (op, value) = match a.op.as_str() {
        "SCMP_CMP_NE" => (ScmpCompareOp::NotEqual, a.value),
        "SCMP_CMP_LT" => (ScmpCompareOp::Less, a.value),
        "SCMP_CMP_LE" => (ScmpCompareOp::LessOrEqual, a.value),
        "SCMP_CMP_EQ" => (ScmpCompareOp::Equal, a.value),
        "SCMP_CMP_GE" => (ScmpCompareOp::GreaterEqual, a.value),
        "SCMP_CMP_GT" => (ScmpCompareOp::Greater, a.value),
        "SCMP_CMP_MASKED_EQ" => (ScmpCompareOp::MaskedEqual(a.value), a.value_two),
        other => return Err(format!("unknown seccomp comparison {other}")),
    };
    Ok(Arg {
        index: a.index,
        op,
        value,
    })
}

/// `major.minor[.patch][-extra]`: the first two numbers.
fn parse_kernel(release: &str) -> Option<Kernel> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().unwrap_or(0);
    Some((major, minor))
}

fn parse_cond(f: json::Filter) -> Result<Cond, String> {
    let min_kernel = match f.min_kernel {
        Some(k) => Some(parse_kernel(&k).ok_or_else(|| format!("bad minKernel {k:?}"))?),
        None => None,
    };
    Ok(Cond {
        arches: f.arches.unwrap_or_default(),
        caps: f.caps.unwrap_or_default(),
        min_kernel,
    })
}

fn parse_arch(name: &str) -> Result<ScmpArch, String> {
    ScmpArch::from_str(name).map_err(|_| format!("unknown seccomp architecture {name}"))
}

impl Profile {
    /// Parses a profile in docker's JSON format.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let p: json::Profile =
            serde_json::from_str(text).map_err(|e| format!("seccomp profile: {e}"))?;
        let default = Action::parse(&p.default_action, p.default_errno_ret)?;
        let mut arch_map = Vec::new();
        for m in &p.arch_map {
            let subs = m.sub_architectures.as_deref().unwrap_or_default();
            let subs = subs
                .iter()
                .map(|s| parse_arch(s))
                .collect::<Result<_, _>>()?;
            arch_map.push((parse_arch(&m.architecture)?, subs));
        }
        let mut entries = Vec::new();
        for s in p.syscalls {
            let mut names = s.names;
            if let Some(n) = s.name {
                if !names.is_empty() {
                    return Err("a seccomp rule has both name and names".into());
                }
                names.push(n);
            }
            let args = s.args.unwrap_or_default();
            let rule = Rule {
                names,
                action: Action::parse(&s.action, s.errno_ret)?,
                args: args.iter().map(parse_arg).collect::<Result<_, _>>()?,
            };
            entries.push(Entry {
                rule,
                includes: parse_cond(s.includes)?,
                excludes: parse_cond(s.excludes)?,
            });
        }
        Ok(Self {
            default,
            arch_map,
            entries,
        })
    }

    /// Docker's default profile.
    pub(crate) fn docker_default() -> Result<Self, String> {
        Self::parse(DOCKER_DEFAULT)
    }

    /// The architectures a filter for `native` covers: it and its `subArchitectures`.
    pub(crate) fn arches_for(&self, native: ScmpArch) -> Vec<ScmpArch> {
        let mut v = vec![native];
        if let Some((_, subs)) = self.arch_map.iter().find(|(a, _)| *a == native) {
            v.extend(subs.iter().copied().filter(|s| *s != native));
        }
        v
    }

    /// The rules that apply to a step on `arch` (Go's name: `amd64`, `arm64`) with the capability
    /// set `caps` (`CAP_*` names) on a `kernel`, in the profile's order: moby's selection.
    pub(crate) fn rules_for(&self, arch: &str, caps: &[&str], kernel: Kernel) -> Vec<Rule> {
        let has = |c: &String| caps.contains(&c.as_str());
        self.entries
            .iter()
            .filter(|e| {
                let (inc, exc) = (&e.includes, &e.excludes);
                !exc.arches.iter().any(|a| a == arch)
                    && (inc.arches.is_empty() || inc.arches.iter().any(|a| a == arch))
                    && !exc.caps.iter().any(has)
                    && exc.min_kernel.is_none_or(|k| kernel < k)
                    && inc.caps.iter().all(has)
                    && inc.min_kernel.is_none_or(|k| kernel >= k)
            })
            .map(|e| e.rule.clone())
            .collect()
    }
}

/// The architecture this binary runs as: its libseccomp token and Go's name for it (the profile's
/// `arches` spell architectures as Go does).
fn native() -> Result<(ScmpArch, &'static str), String> {
    Ok(if cfg!(target_arch = "x86_64") {
        (ScmpArch::X8664, "amd64")
    } else if cfg!(target_arch = "aarch64") {
        (ScmpArch::Aarch64, "arm64")
    } else if cfg!(target_arch = "riscv64") {
        (ScmpArch::Riscv64, "riscv64")
    } else if cfg!(target_arch = "s390x") {
        (ScmpArch::S390X, "s390x")
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        (ScmpArch::Ppc64Le, "ppc64le")
    } else {
        return Err("no seccomp architecture for this build's target".into());
    })
}

/// The running kernel's release, from uname(2).
fn running_kernel() -> Result<Kernel, String> {
    // SAFETY: uname fills the zeroed struct; release is NUL-terminated.
    let release = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return Err(format!("uname: {}", std::io::Error::last_os_error()));
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    };
    parse_kernel(&release).ok_or_else(|| format!("unrecognised kernel release {release:?}"))
}

/// This process's bounding set, by name: the step's capabilities (docker's default set, applied
/// just before; docker selects rules by the container's bounding set too).
fn bounding_set() -> Vec<&'static str> {
    (0..CAP_NAMES.len())
        .filter(|&c| {
            // SAFETY: prctl with integer arguments only.
            unsafe { libc::prctl(libc::PR_CAPBSET_READ, c as libc::c_ulong, 0, 0, 0) == 1 }
        })
        .map(|c| CAP_NAMES[c])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KERNEL: Kernel = (6, 1);

    pub(super) fn docker_caps() -> Vec<&'static str> {
        crate::DEFAULT_CAPS
            .iter()
            .map(|&c| CAP_NAMES[c as usize])
            .collect()
    }

    fn with<'a>(rules: &'a [Rule], name: &str) -> Vec<&'a Rule> {
        rules
            .iter()
            .filter(|r| r.names.iter().any(|n| n == name))
            .collect()
    }

    fn arg(index: u32, op: ScmpCompareOp, value: u64) -> Arg {
        Arg { index, op, value }
    }

    #[test]
    fn the_embedded_profile_parses_with_its_arch_map() {
        let p = Profile::docker_default().unwrap();
        assert_eq!(p.default, Action::Errno(1));
        assert_eq!(
            p.arches_for(ScmpArch::X8664),
            [ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32]
        );
        assert_eq!(
            p.arches_for(ScmpArch::Aarch64),
            [ScmpArch::Aarch64, ScmpArch::Arm]
        );
        assert_eq!(p.arches_for(ScmpArch::Riscv64), [ScmpArch::Riscv64]);
        assert!(Profile::parse(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#).is_err());
        let p = Profile::parse(
            r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[{"name":"read","action":"SCMP_ACT_TRACE","args":[{"index":1,"value":7,"valueTwo":3,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        )
        .unwrap();
        assert_eq!(p.default, Action::KillProcess);
        let rules = p.rules_for("amd64", &[], KERNEL);
        assert_eq!(rules[0].action, Action::Trace(1));
        assert_eq!(rules[0].args, [arg(1, ScmpCompareOp::MaskedEqual(7), 3)]);
    }

    #[test]
    fn rules_for_amd64_with_dockers_capabilities() {
        let p = Profile::docker_default().unwrap();
        let caps = docker_caps();
        let rules = p.rules_for("amd64", &caps, KERNEL);
        // ptrace only through the minKernel 4.8 rule (the CAP_SYS_PTRACE one is dropped).
        let ptrace = with(&rules, "ptrace");
        assert_eq!(ptrace.len(), 1);
        assert_eq!(ptrace[0].names.len(), 3);
        assert!(with(&p.rules_for("amd64", &caps, (4, 7)), "ptrace").is_empty());
        // clone without namespace flags; clone3 answers ENOSYS so that libc falls back to it.
        let clone = with(&rules, "clone");
        assert_eq!(clone.len(), 1);
        let mask = ScmpCompareOp::MaskedEqual(0x7E02_0000);
        assert_eq!(clone[0].args, [arg(0, mask, 0)]);
        let clone3 = with(&rules, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action, Action::Errno(38));
        for refused in [
            "keyctl",
            "mount",
            "unshare",
            "setns",
            "bpf",
            "syslog",
            "io_uring_setup",
        ] {
            assert!(with(&rules, refused).is_empty(), "{refused}");
        }
        assert!(with(&rules, "open_by_handle_at").is_empty());
        let personality: Vec<_> = with(&rules, "personality")
            .iter()
            .map(|r| r.args.clone())
            .collect();
        let eq = ScmpCompareOp::Equal;
        let values = [0, 8, 0x20000, 0x20008, 0xffff_ffff];
        let want: Vec<_> = values.iter().map(|&v| vec![arg(0, eq, v)]).collect();
        assert_eq!(personality, want);
        assert_eq!(with(&rules, "socket").len(), 3);
        assert_eq!(with(&rules, "arch_prctl").len(), 1);
        assert_eq!(with(&rules, "modify_ldt").len(), 1);
        let arm = p.rules_for("arm64", &caps, KERNEL);
        assert!(with(&arm, "arch_prctl").is_empty() && with(&arm, "modify_ldt").is_empty());
        assert!(with(&arm, "riscv_flush_icache").is_empty());
    }

    #[test]
    fn added_capabilities_select_their_rules() {
        let p = Profile::docker_default().unwrap();
        let mut caps = docker_caps();
        caps.extend(["CAP_SYS_ADMIN", "CAP_DAC_READ_SEARCH"]);
        let rules = p.rules_for("amd64", &caps, KERNEL);
        let clone = with(&rules, "clone");
        assert_eq!(clone.len(), 1, "only the unconditional CAP_SYS_ADMIN rule");
        assert!(clone[0].args.is_empty());
        let clone3 = with(&rules, "clone3");
        assert!(clone3.len() == 1 && clone3[0].action == Action::Allow);
        assert_eq!(with(&rules, "mount").len(), 1);
        assert_eq!(with(&rules, "open_by_handle_at").len(), 1);
    }

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert_eq!(parse_kernel("6.18.44-fc-v1045"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("5"), Some((5, 0)));
        assert_eq!(parse_kernel("x"), None);
        assert!((4, 10) >= (4, 8) && (5, 0) >= (4, 8) && (4, 7) < (4, 8));
    }
}
