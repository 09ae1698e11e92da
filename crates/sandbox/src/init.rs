//! The sandbox init: runs in a fresh process (`lighter __sandbox-init`, the spec and the compiled
//! seccomp filter as JSON on stdin),
//! unshares namespaces, forks PID 1 of the new PID namespace, builds the mounts, drops privileges and
//! execs the step's command.

use crate::seccomp::Program;
use crate::{
    InitRequest, MountKind, Network, Rootfs, RunSpec, CONTROL_FD, CREATED_PREFIX, DEFAULT_CAPS,
    SETUP_FAILED, SETUP_PREFIX,
};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chdir, chroot, fork, ForkResult};
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Call first thing in `main`: when the process was started as the sandbox init, this runs the step
/// and never returns.
pub fn init_hook() {
    let mut args = std::env::args_os();
    let _ = args.next();
    if args.next().as_deref() != Some(std::ffi::OsStr::new("__sandbox-init")) {
        return;
    }
    let code = match run_init() {
        Ok(code) => code,
        Err(e) => {
            report(&format!("{SETUP_PREFIX}{e}"));
            SETUP_FAILED
        }
    };
    std::process::exit(code);
}

/// The control channel to the executor: fd 3, a pipe of its own that the step never sees (it is
/// close-on-exec here), so nothing the step prints can pass for a created mountpoint or a setup
/// error. Without it (an init started by hand), stderr.
fn report(line: &str) {
    // SAFETY: fcntl on a possibly closed descriptor only reads its flags.
    let open = unsafe { libc::fcntl(CONTROL_FD, libc::F_GETFD) } != -1;
    if open {
        let bytes = format!("{line}\n");
        // SAFETY: a valid buffer; a short or failed write only loses the report.
        unsafe { libc::write(CONTROL_FD, bytes.as_ptr().cast(), bytes.len()) };
    } else {
        eprintln!("{line}");
    }
}

fn run_init() -> Result<i32, String> {
    // The control channel must not reach the step: close it on exec.
    // SAFETY: setting FD_CLOEXEC on a descriptor that may not be open is harmless.
    unsafe { libc::fcntl(CONTROL_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    let mut json = Vec::new();
    std::io::stdin()
        .read_to_end(&mut json)
        .map_err(|e| format!("read spec: {e}"))?;
    let InitRequest { spec, seccomp } =
        serde_json::from_slice(&json).map_err(|e| format!("bad spec: {e}"))?;
    // stdin of the step is empty, as in docker build.
    let devnull = std::fs::File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
    nix::unistd::dup2_stdin(devnull).map_err(|e| format!("dup2: {e}"))?;

    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if spec.network == Network::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).map_err(|e| format!("unshare namespaces: {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("make mounts private: {e}"))?;
    // SAFETY: the sandbox init is a freshly exec'd, single-threaded process, so the child may run any code after fork.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("wait: {e}")),
            }
        },
        ForkResult::Child => {
            // Die with the parent.
            // SAFETY: prctl with integer arguments only.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            let err = match child(&spec, seccomp.as_ref()) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            report(&format!("{SETUP_PREFIX}{err}"));
            std::process::exit(SETUP_FAILED);
        }
    }
}

enum Never {}

/// A directory mountpoint at `rel` inside the rootfs (symlinks resolved inside it), created with
/// its missing parents, each recorded in `created`.
fn ensure_dir(root: &Path, rel: &str, created: &mut Vec<String>) -> Result<PathBuf, String> {
    let p = crate::paths::in_root(root, rel)?;
    let tail = p
        .strip_prefix(root)
        .map_err(|_| format!("/{rel}: outside the rootfs"))?
        .to_path_buf();
    let mut cur = root.to_path_buf();
    for comp in tail.components() {
        cur.push(comp);
        match std::fs::symlink_metadata(&cur) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "mountpoint /{rel}: /{} is not a directory",
                    cur.strip_prefix(root).unwrap_or(&cur).display()
                ))
            }
            Err(_) => {
                // `cur`'s parent is resolved and real: nothing here follows a link.
                std::fs::create_dir(&cur).map_err(|e| format!("create mountpoint /{rel}: {e}"))?;
                // Every level, top down: the caller removes them bottom up, each only if empty.
                created.push(
                    cur.strip_prefix(root)
                        .unwrap_or(&cur)
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    Ok(p)
}

/// A file mountpoint at `rel` inside the rootfs: its parent is resolved inside the rootfs; a final
/// component that is a symlink is refused (a symlinked `/etc/resolv.conf` is left alone).
fn ensure_file(root: &Path, rel: &str, created: &mut Vec<String>) -> Result<PathBuf, String> {
    let rel = rel.trim_start_matches('/');
    let name = Path::new(rel)
        .file_name()
        .ok_or_else(|| format!("/{rel}: not a file path"))?;
    let parent = match Path::new(rel).parent() {
        Some(pp) if !pp.as_os_str().is_empty() => ensure_dir(root, &pp.to_string_lossy(), created)?,
        _ => root.to_path_buf(),
    };
    let p = parent.join(name);
    match std::fs::symlink_metadata(&p) {
        Ok(md) if md.file_type().is_symlink() => return Err(format!("/{rel} is a symlink")),
        Ok(_) => {}
        Err(_) => {
            std::fs::write(&p, b"").map_err(|e| format!("create mountpoint /{rel}: {e}"))?;
            created.push(
                p.strip_prefix(root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    Ok(p)
}

/// `proc`, `dev` or `sys`: an ordinary directory of the rootfs (see [`crate::paths::ordinary_dir`]).
fn kernel_dir(root: &Path, name: &str, created: &mut Vec<String>) -> Result<PathBuf, String> {
    let (p, made) = crate::paths::ordinary_dir(root, name)?;
    if made {
        created.push(name.to_string());
    }
    Ok(p)
}

fn bind(src: &Path, dst: &Path, readonly: bool) -> Result<(), String> {
    mount(
        Some(src),
        dst,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("bind {} -> {}: {e}", src.display(), dst.display()))?;
    if readonly {
        read_only_recursive(dst)?;
    }
    Ok(())
}

/// Makes the mount at `dst` and every mount below it read-only. A remount with `MS_REC` changes
/// only the top mount (the kernel ignores `MS_REC` on a remount), so a recursive bind of a tree with
/// submounts (`/sys` has the cgroup hierarchies) would leave those writable. `mount_setattr` with
/// `AT_RECURSIVE` (Linux 5.12) does the whole tree at once; on older kernels each mount found below
/// `dst` in `/proc/self/mountinfo` is remounted in turn.
fn read_only_recursive(dst: &Path) -> Result<(), String> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    let c = CString::new(dst.as_os_str().as_bytes())
        .map_err(|_| format!("bad path {}", dst.display()))?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a valid NUL-terminated path and a mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    // ENOSYS before Linux 5.12; EPERM or EINVAL where a seccomp profile refuses the call.
    if !matches!(
        err.raw_os_error(),
        Some(libc::ENOSYS | libc::EPERM | libc::EINVAL)
    ) {
        return Err(format!("make {} read-only: {err}", dst.display()));
    }
    // mountinfo lists resolved paths.
    let dst = &std::fs::canonicalize(dst).map_err(|e| format!("resolve {}: {e}", dst.display()))?;
    let mut targets = vec![dst.to_path_buf()];
    let points = lighter_store::session::mount_points()
        .map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
    targets.extend(
        points
            .into_iter()
            .filter(|p| p != dst && p.starts_with(dst)),
    );
    for t in targets {
        mount(
            None::<&str>,
            &t,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | kept_flags(&t),
            None::<&str>,
        )
        .map_err(|e| format!("remount {} read-only: {e}", t.display()))?;
    }
    Ok(())
}

/// Empties this process's inheritable capability set (capget, then capset with the effective and
/// permitted sets unchanged).
fn clear_inheritable() -> Result<(), String> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: a v3 header and the two data words v3 uses.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) } != 0 {
        return Err(format!("capget: {}", std::io::Error::last_os_error()));
    }
    if d.iter().all(|x| x.inheritable == 0) {
        return Ok(());
    }
    for x in &mut d {
        x.inheritable = 0;
    }
    // SAFETY: as above.
    if unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()) } != 0 {
        return Err(format!("capset: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The nosuid, nodev, noexec and atime flags a mount has, which a bind remount would otherwise clear.
fn kept_flags(p: &Path) -> MsFlags {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return MsFlags::empty();
    };
    // SAFETY: a valid path and a zeroed statvfs for the kernel to fill.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` a valid, writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return MsFlags::empty();
    }
    let mut f = MsFlags::empty();
    for (st_flag, ms) in [
        (libc::ST_NOSUID, MsFlags::MS_NOSUID),
        (libc::ST_NODEV, MsFlags::MS_NODEV),
        (libc::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (libc::ST_NOATIME, MsFlags::MS_NOATIME),
        (libc::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (libc::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            f |= ms;
        }
    }
    f
}

/// Docker's (and containerd's, which BuildKit uses) default masked and read-only paths. Without
/// them root in the step could write host-wide sysctls through `/proc/sys` (`core_pattern` runs a
/// program on the host) or `/proc/sysrq-trigger`, and read kernel memory and keyrings.
const READONLY_PATHS: [&str; 5] = [
    "proc/bus",
    "proc/fs",
    "proc/irq",
    "proc/sys",
    "proc/sysrq-trigger",
];
const MASKED_PATHS: [&str; 12] = [
    "proc/acpi",
    "proc/asound",
    "proc/interrupts",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
    "sys/firmware",
    "sys/devices/virtual/powercap",
];

/// Binds each read-only path onto itself read-only, and hides each masked path: `/dev/null` over a
/// file, an empty read-only tmpfs over a directory. Paths this kernel does not have are skipped.
fn protect_kernel_paths(root: &Path) -> Result<(), String> {
    for p in READONLY_PATHS {
        let t = root.join(p);
        if std::fs::symlink_metadata(&t).is_ok() {
            bind(&t, &t, true)?;
        }
    }
    for p in MASKED_PATHS {
        let t = root.join(p);
        let Ok(md) = std::fs::symlink_metadata(&t) else {
            continue;
        };
        if md.is_dir() {
            mount(
                Some("tmpfs"),
                &t,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
            .map_err(|e| format!("mask /{p}: {e}"))?;
        } else {
            mount(
                Some("/dev/null"),
                &t,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| format!("mask /{p}: {e}"))?;
        }
    }
    Ok(())
}

fn child(spec: &RunSpec, seccomp: Option<&Program>) -> Result<Never, String> {
    let mut created = Vec::new();
    let root = match &spec.rootfs {
        Rootfs::Dir(d) => {
            bind(d, d, false)?;
            // nodev: a device node that came in a layer cannot be opened (docker refuses them
            // through its device cgroup); /dev below gets its own mount.
            mount(
                None::<&str>,
                d,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NODEV | kept_flags(d),
                None::<&str>,
            )
            .map_err(|e| format!("remount {} nodev: {e}", d.display()))?;
            d.clone()
        }
        Rootfs::Overlay {
            lowers,
            upper,
            work,
            merged,
        } => {
            std::fs::create_dir_all(merged)
                .map_err(|e| format!("create {}: {e}", merged.display()))?;
            let opts = if lowers.is_empty() {
                // overlayfs needs a lowerdir: an empty one stands for scratch.
                let empty = work.with_extension("empty");
                std::fs::create_dir_all(&empty)
                    .map_err(|e| format!("create {}: {e}", empty.display()))?;
                format!(
                    "lowerdir={},upperdir={},workdir={}",
                    empty.display(),
                    upper.display(),
                    work.display()
                )
            } else {
                let l: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
                format!(
                    "lowerdir={},upperdir={},workdir={}",
                    l.join(":"),
                    upper.display(),
                    work.display()
                )
            };
            mount(
                Some("overlay"),
                merged,
                Some("overlay"),
                MsFlags::MS_NODEV,
                Some(opts.as_str()),
            )
            .map_err(|e| format!("mount overlay ({} lower layers): {e}", lowers.len()))?;
            merged.clone()
        }
    };
    // /proc
    let proc_dir = kernel_dir(&root, "proc", &mut created)?;
    mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| format!("mount /proc: {e}"))?;
    // /dev: a tmpfs with the usual nodes bound from the host.
    let dev = kernel_dir(&root, "dev", &mut created)?;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(|e| format!("mount /dev: {e}"))?;
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let t = dev.join(node);
        std::fs::write(&t, b"").map_err(|e| format!("create /dev/{node}: {e}"))?;
        bind(&Path::new("/dev").join(node), &t, false)?;
    }
    for (name, target) in [
        ("core", "/proc/kcore"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let _ = std::os::unix::fs::symlink(target, dev.join(name));
    }
    let pts = dev.join("pts");
    let _ = std::fs::create_dir(&pts);
    let _ = mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    );
    let shm = dev.join("shm");
    let _ = std::fs::create_dir(&shm);
    let shm_mounted = mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(
            format!(
                "mode=1777,size={}",
                spec.shm_size
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "65536k".into())
            )
            .as_str(),
        ),
    );
    // Docker's default /dev/shm is best effort here; a size asked for with --shm-size is not.
    if let (Err(e), Some(size)) = (shm_mounted, spec.shm_size) {
        return Err(format!("mount /dev/shm of {size} bytes (--shm-size): {e}"));
    }
    // /sys read-only: a sysfs of its own, as docker mounts it, so none of the host's mounts under
    // /sys (cgroup hierarchies, debugfs, bpf) is visible. Where a fresh sysfs may not be mounted,
    // the host's, bound read-only with everything below it.
    let sys = kernel_dir(&root, "sys", &mut created)?;
    let mut sysfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if !spec.privileged {
        sysfs_flags |= MsFlags::MS_RDONLY;
    }
    if mount(
        Some("sysfs"),
        &sys,
        Some("sysfs"),
        sysfs_flags,
        None::<&str>,
    )
    .is_err()
    {
        bind(Path::new("/sys"), &sys, !spec.privileged)?;
    }
    if !spec.privileged {
        protect_kernel_paths(&root)?;
    }
    // /etc/hosts, /etc/resolv.conf: bind mounts, never written into the rootfs.
    // A uniquely named temporary file (this process is PID 1 of its namespace, like every other
    // sandbox's init, so the pid cannot name it); the bind mount keeps it alive after it is unlinked.
    let mut hosts_file = tempfile::Builder::new()
        .prefix("lighter-hosts-")
        .tempfile()
        .map_err(|e| format!("create hosts file: {e}"))?;
    std::io::Write::write_all(&mut hosts_file, spec.hosts.as_bytes())
        .map_err(|e| format!("write hosts: {e}"))?;
    if let Ok(h) = ensure_file(&root, "etc/hosts", &mut created) {
        bind(hosts_file.path(), &h, true)?;
    }
    drop(hosts_file);
    if let Some(r) = &spec.resolv_conf {
        if r.exists() {
            if let Ok(t) = ensure_file(&root, "etc/resolv.conf", &mut created) {
                bind(r, &t, true)?;
            }
        }
    }
    // The step's own mounts; none may cover part of /proc (runc refuses them too).
    for m in &spec.mounts {
        if crate::paths::in_root(&root, &m.target)?.starts_with(&proc_dir) {
            return Err(format!(
                "mount target {}: inside /proc, which a mount may not cover",
                m.target
            ));
        }
        match &m.kind {
            MountKind::Bind {
                source,
                readonly,
                identity,
            } => {
                let t = if source.is_dir() {
                    ensure_dir(&root, &m.target, &mut created)?
                } else {
                    ensure_file(&root, &m.target, &mut created)?
                };
                bind(source, &t, *readonly)?;
                if let Some((dev, ino)) = identity {
                    use std::os::unix::fs::MetadataExt;
                    let md =
                        std::fs::metadata(&t).map_err(|e| format!("stat {}: {e}", m.target))?;
                    if (md.dev(), md.ino()) != (*dev, *ino) {
                        return Err(format!(
                            "mount source {} changed while it was being mounted at {} (a link swapped in?): refused",
                            source.display(),
                            m.target
                        ));
                    }
                }
            }
            MountKind::Tmpfs { size } => {
                let t = ensure_dir(&root, &m.target, &mut created)?;
                let opts = size.map(|s| format!("size={s}")).unwrap_or_default();
                mount(
                    Some("tmpfs"),
                    &t,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some(opts.as_str()),
                )
                .map_err(|e| format!("mount tmpfs at {}: {e}", m.target))?;
            }
        }
    }
    for c in &created {
        report(&format!("{CREATED_PREFIX}{c}"));
    }
    if spec.network == Network::None {
        bring_up_loopback();
    }
    nix::unistd::sethostname(&spec.hostname).map_err(|e| format!("sethostname: {e}"))?;
    chroot(&root).map_err(|e| format!("chroot {}: {e}", root.display()))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    let cwd = if spec.cwd.is_empty() {
        "/"
    } else {
        spec.cwd.as_str()
    };
    if std::fs::metadata(cwd).is_err() {
        std::fs::create_dir_all(cwd).map_err(|e| format!("create working directory {cwd}: {e}"))?;
    }
    chdir(cwd).map_err(|e| format!("chdir {cwd}: {e}"))?;
    // Capabilities outside docker's default set leave the bounding set (all stay when privileged).
    for cap in 0..=63u32 {
        if !spec.privileged && !DEFAULT_CAPS.contains(&cap) {
            // SAFETY: prctl with integer arguments only.
            unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        }
    }
    // Inheritable and ambient capabilities would outlive the exec whatever the bounding set says
    // (a lighter started with some, e.g. by a privileged container or a systemd unit): clear both.
    // SAFETY: prctl with constant arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    clear_inheritable()?;
    // Docker's default seccomp profile, while this process still has CAP_SYS_ADMIN (so without
    // no_new_privs); the command inherits the filter through exec.
    if !spec.privileged {
        let program = seccomp.ok_or("the executor sent no seccomp filter")?;
        crate::seccomp::install(program)?;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let user = crate::resolve_user(&spec.user, &passwd, &group).map_err(|e| e.to_string())?;
    // Limits after /etc/passwd and /etc/group are read (a tiny nofile would fail that), before
    // the user switch: raising a hard limit needs CAP_SYS_RESOURCE.
    for u in &spec.ulimits {
        if let Some((resource, soft, hard)) = u.resource() {
            let lim = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            // SAFETY: a valid resource number and rlimit struct.
            if unsafe { libc::setrlimit(resource as _, &lim) } != 0 {
                return Err(format!(
                    "set ulimit {}: {}",
                    u.key(),
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            user.home.clone().unwrap_or_else(|| "/".into())
        ));
    }
    let groups: Vec<nix::unistd::Gid> = user
        .groups
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    nix::unistd::setgid(nix::unistd::Gid::from_raw(user.gid))
        .map_err(|e| format!("setgid {}: {e}", user.gid))?;
    nix::unistd::setuid(nix::unistd::Uid::from_raw(user.uid))
        .map_err(|e| format!("setuid {}: {e}", user.uid))?;
    let argv0 = spec.args.first().ok_or("empty command")?;
    let path_env = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let exe = find_exe(argv0, path_env)
        .ok_or_else(|| format!("exec {argv0}: executable file not found in $PATH"))?;
    let cexe = CString::new(exe.as_os_str().as_bytes()).map_err(|_| "NUL in command")?;
    let cargs: Vec<CString> = spec
        .args
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| "NUL in argument")?;
    let cenv: Vec<CString> = env
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| "NUL in environment")?;
    let e = nix::unistd::execve(&cexe, &cargs, &cenv)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    Err(format!("exec {}: {e}", exe.display()))
}

fn find_exe(argv0: &str, path: &str) -> Option<PathBuf> {
    if argv0.contains('/') {
        return Some(PathBuf::from(argv0));
    }
    path.split(':').map(|d| Path::new(d).join(argv0)).find(|p| {
        std::fs::metadata(p)
            .map(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
            .unwrap_or(false)
    })
}

/// `ip link set lo up`, with an ioctl.
fn bring_up_loopback() {
    // SAFETY: a socket and ioctls on a zeroed `ifreq` whose name is written within its bounds; the descriptor is closed before returning.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return;
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) == 0 {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr);
        }
        libc::close(fd);
    }
}
