//! lighter-sandbox: runs RUN steps (and `lighter run`) in new mount, PID, UTS, IPC (and, for
//! `--network none`, network) namespaces over an overlay rootfs.
//!
//! Why native namespaces and not an OCI runtime: measured on the development machine, `runc` costs
//! about 50 ms per container and Debian's `crun` refuses to start on its hybrid cgroup setup, while
//! unshare + chroot costs a few milliseconds. The sandbox re-executes the current binary as a small
//! init (`__sandbox-init`, see [`init_hook`]): a fresh single-threaded process is the only safe place to
//! unshare, mount and drop privileges (the build engine is multi-threaded, and fork in a threaded
//! program may only call async-signal-safe functions).
//!
//! The init: unshares the namespaces, makes mounts private, forks the PID-1 child, which mounts the
//! overlay (lowerdirs, upperdir, workdir) inside the new mount namespace (nothing to clean up on the
//! host), then `/proc`, a minimal `/dev` (tmpfs with null, zero, full, random, urandom, tty, pts, shm),
//! a read-only sysfs of its own, docker's read-only (`/proc/sys`, `/proc/sysrq-trigger`, ...) and
//! masked (`/proc/kcore`, `/proc/keys`, `/sys/firmware`, ...) paths, `/etc/hosts` and
//! `/etc/resolv.conf` bind mounts, the step's own mounts, sets the
//! hostname, chroots, drops every capability outside docker's default set from the bounding set,
//! switches user and groups, and execs the command. Mountpoints it had to create are listed in
//! [`RunOutcome::created`], so the caller keeps them out of the layer.

mod init;
mod options;
mod paths;
mod seccomp;
mod user;

pub use options::{hosts_file, parse_size, ExtraHost, Ulimit};

pub use init::init_hook;
pub use user::{resolve_user, User, UserError};

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The root filesystem of a step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Rootfs {
    /// A directory used as is (writes land in it).
    Dir(PathBuf),
    /// An overlay: `lowers` top first (may be empty), writes land in `upper`; mounted at `merged`.
    Overlay {
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        merged: PathBuf,
    },
}

/// Network mode of a step.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Network {
    /// The host's network (this machine has no bridge; docker build's default here is the same).
    Host,
    /// A new network namespace with only `lo`, up.
    None,
}

/// A mount for the step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute path inside the rootfs.
    pub target: String,
    pub kind: MountKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MountKind {
    Bind {
        source: PathBuf,
        readonly: bool,
        /// `(st_dev, st_ino)` the source had when it was resolved inside its root: the mount is
        /// refused when what got mounted is something else (a link swapped in meanwhile).
        #[serde(default)]
        identity: Option<(u64, u64)>,
    },
    Tmpfs {
        size: Option<u64>,
    },
}

/// Everything a step needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    pub rootfs: Rootfs,
    pub args: Vec<String>,
    /// `KEY=value` entries, in order.
    pub env: Vec<String>,
    pub cwd: String,
    /// The USER value (`name`, `uid`, `uid:gid`, `name:group`), resolved inside the rootfs through its
    /// /etc/passwd and /etc/group; empty means root.
    pub user: String,
    pub hostname: String,
    pub network: Network,
    pub mounts: Vec<Mount>,
    /// Content for `/etc/hosts` during the step.
    pub hosts: String,
    /// Host file bind-mounted as `/etc/resolv.conf` during the step.
    pub resolv_conf: Option<PathBuf>,
    /// Size of the `/dev/shm` tmpfs in bytes (`--shm-size`; docker's 64 MiB when unset).
    #[serde(default)]
    pub shm_size: Option<u64>,
    /// Resource limits set before the command starts (`--ulimit`).
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// `RUN --security=insecure` (granted by `--allow security.insecure`): every capability, no
    /// seccomp filter, /proc unmasked and /sys writable, as BuildKit's insecure mode.
    #[serde(default)]
    pub privileged: bool,
}

/// What the executor writes to the init's stdin: the step, and its seccomp filter unless the step
/// is privileged.
#[derive(Serialize)]
struct InitRequestRef<'a> {
    spec: &'a RunSpec,
    seccomp: Option<&'a seccomp::Program>,
}

/// [`InitRequestRef`] as the init reads it.
#[derive(Deserialize)]
struct InitRequest {
    spec: RunSpec,
    seccomp: Option<seccomp::Program>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The command's exit code (128 + signal when killed by a signal).
    pub code: i32,
    /// Paths (relative to the rootfs) the sandbox created as mountpoints and that are not content.
    pub created: Vec<String>,
}

/// Setup failures (a non-zero exit of the command is not an error).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot start the sandbox ({exe}): {source}")]
    Spawn { exe: String, source: std::io::Error },
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    #[error("RUN needs root (namespaces and overlay mounts); run lighter as root")]
    NotRoot,
}

/// Exit code the init uses for its own setup failures; the message is the last output line.
pub const SETUP_FAILED: i32 = 125;
const SETUP_PREFIX: &str = "lighter-sandbox: ";
const CREATED_PREFIX: &str = "\u{1}lighter-created:";
/// The init's control channel (created mountpoints, setup errors): fd 3 of the init.
const CONTROL_FD: i32 = 3;

/// Runs steps by re-executing `exe` (the lighter binary) as the sandbox init.
#[derive(Debug, Clone)]
pub struct Executor {
    exe: PathBuf,
}

impl Default for Executor {
    fn default() -> Self {
        Executor {
            exe: PathBuf::from("/proc/self/exe"),
        }
    }
}

impl Executor {
    /// An executor that starts `exe __sandbox-init` (the binary must call [`init_hook`] first thing).
    pub fn with_exe(exe: &Path) -> Executor {
        Executor {
            exe: exe.to_path_buf(),
        }
    }

    /// Runs the step, calling `output` with each line it prints (stdout and stderr merged).
    pub fn run(
        &self,
        spec: &RunSpec,
        output: &mut dyn FnMut(&str),
    ) -> Result<RunOutcome, SandboxError> {
        if nix::unistd::geteuid().as_raw() != 0 {
            return Err(SandboxError::NotRoot);
        }
        // Compiled once per process, before anything is spawned.
        let seccomp = match spec.privileged {
            true => None,
            false => Some(seccomp::Program::for_steps().map_err(SandboxError::Setup)?),
        };
        let spawn_err = |source| SandboxError::Spawn {
            exe: self.exe.display().to_string(),
            source,
        };
        let (reader, writer) = std::io::pipe().map_err(spawn_err)?;
        let writer2 = writer.try_clone().map_err(spawn_err)?;
        // The control channel: its own pipe, given to the init (and nothing else: both ends are
        // close-on-exec here, and only the child's dup at fd 3 is not) so that the step's output,
        // which it cannot write to, never passes for the init's reports.
        let (ctl_reader, ctl_writer) = std::io::pipe().map_err(spawn_err)?;
        let ctl_fd = ctl_writer.as_raw_fd();
        let mut cmd = Command::new(&self.exe);
        cmd.arg("__sandbox-init")
            .stdin(Stdio::piped())
            .stdout(writer)
            .stderr(writer2)
            .env_clear();
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: dup2, fcntl, prctl and getppid are async-signal-safe, as pre_exec requires.
        unsafe {
            cmd.pre_exec(move || {
                // The init dies with this process (a killed build stops its step; the step dies
                // with the init): PR_SET_PDEATHSIG, then a check that the parent did not die first.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                if ctl_fd == CONTROL_FD {
                    if libc::fcntl(ctl_fd, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(ctl_fd, CONTROL_FD) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let spawned = cmd.spawn();
        // Our copies of every pipe's write end go now, or the reads below never see EOF.
        drop(cmd);
        drop(ctl_writer);
        let mut child = spawned.map_err(spawn_err)?;
        let request = InitRequestRef {
            spec,
            seccomp: seccomp.as_ref(),
        };
        let json = serde_json::to_vec(&request).map_err(|e| SandboxError::Setup(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&json);
        }
        let mut created = Vec::new();
        let mut last_setup = None;
        let mut r = BufReader::new(reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let s = String::from_utf8_lossy(&line);
                    output(s.trim_end_matches('\n'));
                }
            }
        }
        let status = child.wait().map_err(spawn_err)?;
        // Every holder of the control pipe has exited: read it to its end.
        let mut control = String::new();
        let _ = std::io::Read::read_to_string(&mut { ctl_reader }, &mut control);
        for l in control.lines() {
            if let Some(p) = l.strip_prefix(CREATED_PREFIX) {
                created.push(p.to_string());
            } else if let Some(m) = l.strip_prefix(SETUP_PREFIX) {
                last_setup = Some(m.to_string());
            }
        }
        let code = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        });
        if code == SETUP_FAILED {
            if let Some(m) = last_setup {
                return Err(SandboxError::Setup(m));
            }
        }
        Ok(RunOutcome { code, created })
    }
}

/// Docker's default capability set (capability numbers from linux/capability.h).
pub const DEFAULT_CAPS: &[u32] = &[
    0,  // CHOWN
    1,  // DAC_OVERRIDE
    3,  // FOWNER
    4,  // FSETID
    5,  // KILL
    6,  // SETGID
    7,  // SETUID
    8,  // SETPCAP
    10, // NET_BIND_SERVICE
    13, // NET_RAW
    18, // SYS_CHROOT
    27, // MKNOD
    29, // AUDIT_WRITE
    31, // SETFCAP
];

/// The command line for a shell-form command: the SHELL plus the command string.
pub fn shell_args(shell: &[String], cmd: &str) -> Vec<String> {
    let mut v = shell.to_vec();
    v.push(cmd.to_string());
    v
}

/// `lighter run`: the argv from an image's Entrypoint and Cmd and the user's overrides, as docker.
pub fn container_args(
    entrypoint: &[String],
    cmd: &[String],
    override_entrypoint: Option<&str>,
    override_cmd: &[String],
) -> Vec<String> {
    let ep: Vec<String> = match override_entrypoint {
        Some("") => Vec::new(),
        Some(e) => vec![e.to_string()],
        None => entrypoint.to_vec(),
    };
    let c: Vec<String> = if !override_cmd.is_empty() {
        override_cmd.to_vec()
    } else if override_entrypoint.is_some() {
        Vec::new()
    } else {
        cmd.to_vec()
    };
    let mut all = ep;
    all.extend(c);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_args_follow_docker() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            container_args(&s(&["/app"]), &s(&["-x"]), None, &[]),
            s(&["/app", "-x"])
        );
        assert_eq!(
            container_args(&s(&["/app"]), &s(&["-x"]), None, &s(&["-y"])),
            s(&["/app", "-y"])
        );
        assert_eq!(
            container_args(&s(&["/app"]), &s(&["-x"]), Some("sh"), &[]),
            s(&["sh"])
        );
        assert_eq!(
            container_args(&[], &s(&["sh"]), None, &s(&["ls", "/"])),
            s(&["ls", "/"])
        );
    }
}
