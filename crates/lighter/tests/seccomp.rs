//! The RUN step's seccomp filter against docker's: `tests/data/seccomp-probe.pl` (75 syscalls, each
//! with arguments that fail fast once a call gets through) runs in a lighter RUN step on Debian
//! bookworm, whose answers must be those of docker's default profile (moby/profiles v0.2.3), then in
//! `docker run --network host` of the same rootfs, whose answers must be lighter's but for the
//! documented differences of docker 20.10's older built-in profile.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// What the filter does with a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Refused: EPERM, the profile's default errno.
    Refused,
    /// ENOSYS from the filter: clone3's own rule, or runc's stub above the highest known call.
    Enosys,
    /// Let through: the kernel answers (its answer varies by kernel, but is never the filter's
    /// EPERM, as every probe's arguments make the kernel fail otherwise or succeed harmlessly).
    Through,
}

use Expect::*;

/// docker's default profile v0.2.3 with docker's default capabilities, on x86_64.
const PROFILE: &[(&str, Expect)] = &[
    ("getpid", Through),
    ("personality_query", Through),
    ("adjtimex_read", Through),
    ("clock_adjtime_read", Through),
    ("landlock_create_ruleset_version", Through),
    ("memfd_create_badflags", Through),
    ("clone_thread_without_sighand", Through),
    ("clone_newuser", Refused),
    ("clone_newns", Refused),
    ("clone3_null", Enosys),
    ("unshare_badflags", Refused),
    ("unshare_newuser", Refused),
    ("setns_badfd", Refused),
    ("keyctl_badop", Refused),
    ("add_key_null", Refused),
    ("request_key_null", Refused),
    ("bpf_badcmd", Refused),
    ("perf_event_open_null", Refused),
    ("userfaultfd_badflags", Refused),
    ("io_uring_setup_null", Refused),
    ("syslog_read_all_null", Refused),
    ("fanotify_init_badflags", Refused),
    ("personality_addr_no_randomize", Refused),
    ("acct_badptr", Refused),
    ("swapon_null", Refused),
    ("swapoff_null", Refused),
    ("kexec_load_toomany", Refused),
    ("init_module_empty", Refused),
    ("finit_module_badfd", Refused),
    ("delete_module_missing", Refused),
    ("reboot_badmagic", Refused),
    ("settimeofday_badptr", Refused),
    ("clock_settime_badptr", Refused),
    ("iopl_4", Refused),
    ("ioperm_zero", Refused),
    ("mount_null", Refused),
    ("umount2_badflags", Refused),
    ("pivot_root_null", Refused),
    ("open_tree_badflags", Refused),
    ("mount_setattr_badflags", Refused),
    ("fsopen_badflags", Refused),
    ("quotactl_getfmt_null", Refused),
    ("quotactl_fd_badfd", Refused),
    ("name_to_handle_at_null", Through),
    ("open_by_handle_at_badfd", Refused),
    ("chroot_missing", Through),
    ("ptrace_peek_nopid", Through),
    ("process_vm_readv_empty", Through),
    ("kcmp_badtype", Refused),
    ("pidfd_getfd_badfd", Refused),
    ("process_madvise_badfd", Refused),
    ("get_mempolicy_null", Refused),
    ("set_mempolicy_badmode", Refused),
    ("mbind_badmode", Refused),
    ("move_pages_badflags", Refused),
    ("pkey_alloc_badflags", Through),
    ("uselib_null", Refused),
    ("ustat_nodev", Refused),
    ("sysfs_count", Refused),
    ("_sysctl_null", Refused),
    ("nfsservctl", Refused),
    ("lookup_dcookie", Refused),
    ("socket_netlink_badtype", Through),
    ("socket_alg_badtype", Refused),
    ("socket_nfc_badtype", Through),
    ("socket_vsock_badtype", Refused),
    ("socket_kcm_badtype", Through),
    // Newer calls: 449-452 are in the profile and known to Debian's libseccomp 2.5.4 (which knows
    // up to 456), set_mempolicy_home_node needs CAP_SYS_NICE; 457 and later are unknown to it, so
    // they are above the filter's highest call and runc's stub answers ENOSYS.
    ("futex_waitv_null", Through),
    ("set_mempolicy_home_node_badflags", Refused),
    ("cachestat_badflags", Through),
    ("fchmodat2_badflags", Through),
    ("statmount_badflags", Enosys),
    ("lsm_list_modules_badflags", Enosys),
    ("mseal_badflags", Enosys),
    ("mknod_chr", Through),
];

/// Where docker 20.10.24's built-in profile (older than v0.2.3) answers otherwise: its answer, and why.
const DOCKER_20_10: &[(&str, Expect, &str)] = &[
    (
        "io_uring_setup_null",
        Through,
        "20.10 allows io_uring; v0.2.3 dropped it",
    ),
    (
        "name_to_handle_at_null",
        Refused,
        "20.10 needs CAP_DAC_READ_SEARCH; v0.2.3 allows it",
    ),
    (
        "process_vm_readv_empty",
        Refused,
        "20.10 needs CAP_SYS_PTRACE; v0.2.3 allows it from 4.8",
    ),
    (
        "pkey_alloc_badflags",
        Refused,
        "not in 20.10's list; v0.2.3 allows the pkey calls",
    ),
    (
        "socket_alg_badtype",
        Through,
        "20.10 allows every family; v0.2.3 refuses AF_ALG",
    ),
    (
        "socket_vsock_badtype",
        Through,
        "20.10 allows every family; v0.2.3 refuses AF_VSOCK",
    ),
    (
        "set_mempolicy_home_node_badflags",
        Enosys,
        "450 is above 20.10's list: runc's ENOSYS",
    ),
    (
        "cachestat_badflags",
        Enosys,
        "451 is above 20.10's list: runc's ENOSYS",
    ),
    (
        "fchmodat2_badflags",
        Enosys,
        "452 is above 20.10's list: runc's ENOSYS",
    ),
];

fn matches(expect: Expect, answer: &str) -> bool {
    match expect {
        Refused => answer == "EPERM",
        Enosys => answer == "ENOSYS",
        Through => answer != "EPERM",
    }
}

/// `NAME RESULT` lines into a map, checking that every probe of [`PROFILE`] answered once.
fn parse(out: &str, who: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in out.lines() {
        let (name, answer) = line.split_once(' ').unwrap_or((line, ""));
        assert!(
            m.insert(name.to_string(), answer.to_string()).is_none(),
            "{who}: {name} twice"
        );
    }
    let names: Vec<&str> = m.keys().map(String::as_str).collect();
    let mut want: Vec<&str> = PROFILE.iter().map(|(n, _)| *n).collect();
    want.sort_unstable();
    assert_eq!(names, want, "{who}'s probes:\n{out}");
    m
}

fn probe_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seccomp-probe.pl")
}

/// The probe's answers in a lighter RUN step on debian:bookworm.
fn lighter_answers(bookworm: &Path) -> BTreeMap<String, String> {
    let env = Env {
        root: tempfile::tempdir().unwrap(),
    };
    let o = env.lighter(&["import", bookworm.to_str().unwrap(), "debian:bookworm"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(probe_path(), ctx.path().join("seccomp-probe.pl")).unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM debian:bookworm\nCOPY seccomp-probe.pl /probe.pl\n\
             RUN perl /probe.pl > /probe.out && grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\\t' > /status\n",
        )],
    );
    let (ok, err, out) = env.build_local(ctx.path(), &[]);
    assert!(ok, "{err}");
    let status = std::fs::read_to_string(out.path().join("status")).unwrap();
    assert_eq!(status, "NoNewPrivs:0\nSeccomp:2\n");
    parse(
        &std::fs::read_to_string(out.path().join("probe.out")).unwrap(),
        "lighter",
    )
}

/// The probe's answers under `docker run --network host` of the same rootfs.
fn docker_answers(d: &str, bookworm: &Path) -> BTreeMap<String, String> {
    let image = "lighter-seccomp-probe:bookworm";
    let have = Command::new(d).args(["image", "inspect", image]).output();
    if !have.is_ok_and(|o| o.status.success()) {
        let o = Command::new(d)
            .args(["import", bookworm.to_str().unwrap(), image])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let mount = format!("{}:/probe.pl:ro", probe_path().display());
    // Under a timeout: a stuck engine must fail the test, not hang it.
    let o = Command::new("timeout")
        .args([
            "120",
            d,
            "run",
            "--rm",
            "--network",
            "host",
            "-v",
            &mount,
            image,
        ])
        .args(["perl", "/probe.pl"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    parse(&String::from_utf8_lossy(&o.stdout), "docker")
}

/// Every probe answers as docker's default profile says, and as `docker run` answers on this
/// machine, but for the documented differences of docker 20.10's profile (there, docker must give
/// the documented answer, so a change on either side shows).
#[test]
fn seccomp_probe_answers_as_dockers_default_profile() {
    if !cfg!(target_arch = "x86_64") || !is_root() {
        return;
    }
    let Some(cache) = bases() else { return };
    let bookworm = cache.join("bookworm.tar");
    if !bookworm.is_file() {
        missing_peer(&format!(
            "no bookworm base at {} (scripts/make-bases.sh bookworm makes it)",
            cache.display()
        ));
        return;
    }
    let ours = lighter_answers(&bookworm);
    let wrong: Vec<String> = PROFILE
        .iter()
        .filter(|(n, e)| !matches(*e, &ours[*n]))
        .map(|(n, e)| format!("{n}: {} where the profile says {e:?}", ours[*n]))
        .collect();
    assert!(wrong.is_empty(), "lighter:\n{}", wrong.join("\n"));

    let Some(d) = docker() else { return };
    let theirs = docker_answers(d, &bookworm);
    let mut wrong = Vec::new();
    for (name, expect) in PROFILE {
        let (a, b) = (&ours[*name], &theirs[*name]);
        match DOCKER_20_10.iter().find(|(n, ..)| n == name) {
            Some((_, docker, why)) if docker == expect || !matches(*docker, b) => {
                wrong.push(format!("{name}: lighter {a}, docker {b} ({why})"))
            }
            Some(_) => {}
            None if a != b => wrong.push(format!("{name}: lighter {a}, docker {b}")),
            None => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "lighter against docker:\n{}",
        wrong.join("\n")
    );
}
