//! The step's seccomp filter: what docker's default profile refuses that the capability set alone
//! does not. Docker's profile is an allowlist of ~350 calls; this is the denylist of its calls that
//! matter once the bounding set has dropped `CAP_SYS_ADMIN` and friends (mount, kexec, modules,
//! clock and reboot already fail without their capabilities):
//! - the kernel keyring (`keyctl`, `add_key`, `request_key`): not namespaced, so root in a step would
//!   share the host root's keys;
//! - new namespaces (`unshare`, `setns`, `clone` with any `CLONE_NEW*` flag): a user namespace hands
//!   the step every capability again inside it, and with it a large kernel attack surface;
//! - `bpf`, `perf_event_open`, `userfaultfd`, io_uring (which docker 25 refuses too), and
//!   `syslog` (the kernel log, which docker refuses without `CAP_SYSLOG`);
//! - `clone3` answers ENOSYS, as in docker, so that libc falls back to `clone`, whose flags a filter
//!   can read.
//!
//! Refused calls fail with EPERM. 32-bit (i386) calls get the same filter with their own numbers,
//! and x32 calls are refused. The filter is installed without `no_new_privs` (the init still holds
//! `CAP_SYS_ADMIN` then), so setuid programs such as `su` keep working, as under docker.

/// Namespace flags of clone(2) (docker's mask 0x7E020000): NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
/// NEWUSER, NEWPID, NEWNET.
const CLONE_NS_FLAGS: u32 = 0x7E02_0000;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// One architecture's numbers.
struct Table {
    denied: &'static [u32],
    clone: u32,
    clone3: u32,
}

/// x86_64 (see arch/x86/entry/syscalls/syscall_64.tbl).
const X86_64: Table = Table {
    // keyctl, add_key, request_key, unshare, setns, bpf, perf_event_open, userfaultfd,
    // io_uring_setup, io_uring_enter, io_uring_register, syslog
    denied: &[250, 248, 249, 272, 308, 321, 298, 323, 425, 426, 427, 103],
    clone: 56,
    clone3: 435,
};

/// i386 (syscall_32.tbl): the same calls.
const I386: Table = Table {
    denied: &[288, 286, 287, 310, 346, 357, 336, 374, 425, 426, 427, 103],
    clone: 120,
    clone3: 435,
};

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// Offsets in `struct seccomp_data`: nr, arch, and the low half of args[0] (little endian).
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LOW: u32 = 16;

/// The checks for one architecture, ending in ALLOW.
fn section(t: &Table, refuse_x32: bool) -> Vec<libc::sock_filter> {
    let eperm = RET_ERRNO | libc::EPERM as u32;
    let mut p = vec![stmt(LD_W_ABS, NR)];
    if refuse_x32 {
        p.push(jump(JGE, X32_SYSCALL_BIT, 0, 1));
        p.push(stmt(RET, eperm));
    }
    for &nr in t.denied {
        p.push(jump(JEQ, nr, 0, 1));
        p.push(stmt(RET, eperm));
    }
    p.push(jump(JEQ, t.clone3, 0, 1));
    p.push(stmt(RET, RET_ERRNO | libc::ENOSYS as u32));
    // clone: refused with a namespace flag, else allowed.
    p.push(jump(JEQ, t.clone, 0, 4));
    p.push(stmt(LD_W_ABS, ARG0_LOW));
    p.push(jump(JSET, CLONE_NS_FLAGS, 0, 1));
    p.push(stmt(RET, eperm));
    p.push(stmt(RET, RET_ALLOW));
    p.push(stmt(RET, RET_ALLOW));
    p
}

/// The whole program: dispatch on the architecture, then that architecture's section.
pub(crate) fn program() -> Vec<libc::sock_filter> {
    let native = section(&X86_64, true);
    let compat = section(&I386, false);
    let mut p = vec![stmt(LD_W_ABS, ARCH)];
    p.push(jump(JEQ, AUDIT_ARCH_X86_64, 1, 0));
    p.push(stmt(JA, native.len() as u32));
    p.extend(native);
    // Not x86_64: the accumulator still holds the architecture.
    p.push(jump(JEQ, AUDIT_ARCH_I386, 0, compat.len() as u8));
    p.extend(compat);
    p.push(stmt(RET, RET_ALLOW));
    p
}

/// Installs the filter on the calling thread (inherited by the command it execs). Needs
/// `CAP_SYS_ADMIN`, which the init still has; `no_new_privs` is left unset.
#[cfg(target_arch = "x86_64")]
pub(crate) fn install() -> Result<(), String> {
    let mut filter = program();
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: a valid sock_fprog pointing at `filter`, which outlives the call.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r != 0 {
        return Err(format!(
            "install the seccomp filter: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Other architectures: the numbers above are x86's; no filter (as before this module).
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn install() -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on a `seccomp_data` the way the kernel's BPF interpreter would, for the
    /// few instructions it uses.
    fn eval(prog: &[libc::sock_filter], arch: u32, nr: u32, arg0: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        data[16..24].copy_from_slice(&arg0.to_le_bytes());
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            match i.code {
                LD_W_ABS => {
                    let k = i.k as usize;
                    a = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                    pc += 1;
                }
                RET => return i.k,
                JA => pc += 1 + i.k as usize,
                JEQ | JGE | JSET => {
                    let hit = match i.code {
                        JEQ => a == i.k,
                        JGE => a >= i.k,
                        _ => a & i.k != 0,
                    };
                    pc += 1 + if hit { i.jt } else { i.jf } as usize;
                }
                c => panic!("unexpected instruction {c:#x}"),
            }
        }
    }

    #[test]
    fn the_filter_refuses_what_docker_refuses_and_allows_the_rest() {
        let p = program();
        assert!(p.len() < 100, "{}", p.len());
        let eperm = RET_ERRNO | libc::EPERM as u32;
        let x = AUDIT_ARCH_X86_64;
        assert_eq!(eval(&p, x, libc::SYS_keyctl as u32, 0), eperm);
        assert_eq!(eval(&p, x, libc::SYS_unshare as u32, 0), eperm);
        assert_eq!(eval(&p, x, libc::SYS_bpf as u32, 0), eperm);
        assert_eq!(eval(&p, x, libc::SYS_io_uring_setup as u32, 0), eperm);
        assert_eq!(eval(&p, x, libc::SYS_syslog as u32, 0), eperm);
        assert_eq!(
            eval(&p, x, libc::SYS_clone3 as u32, 0),
            RET_ERRNO | libc::ENOSYS as u32
        );
        // clone: threads and forks pass, namespaces do not.
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD) as u64;
        assert_eq!(eval(&p, x, libc::SYS_clone as u32, thread), RET_ALLOW);
        assert_eq!(
            eval(&p, x, libc::SYS_clone as u32, libc::SIGCHLD as u64),
            RET_ALLOW
        );
        assert_eq!(
            eval(
                &p,
                x,
                libc::SYS_clone as u32,
                libc::CLONE_NEWUSER as u64 | libc::SIGCHLD as u64
            ),
            eperm
        );
        assert_eq!(
            eval(&p, x, libc::SYS_clone as u32, libc::CLONE_NEWNS as u64),
            eperm
        );
        // Everyday calls.
        for nr in [
            libc::SYS_read,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_setuid,
            libc::SYS_mmap,
            libc::SYS_ptrace,
        ] {
            assert_eq!(eval(&p, x, nr as u32, 0), RET_ALLOW, "{nr}");
        }
        // x32 numbers are refused; i386 gets its own numbers.
        assert_eq!(eval(&p, x, X32_SYSCALL_BIT | 250, 0), eperm);
        assert_eq!(eval(&p, AUDIT_ARCH_I386, 288, 0), eperm, "keyctl on i386");
        assert_eq!(
            eval(&p, AUDIT_ARCH_I386, 120, libc::CLONE_NEWUSER as u64),
            eperm
        );
        assert_eq!(eval(&p, AUDIT_ARCH_I386, 3, 0), RET_ALLOW, "read on i386");
        assert_eq!(
            eval(&p, AUDIT_ARCH_I386, 250, 0),
            RET_ALLOW,
            "250 is not keyctl on i386"
        );
    }
}
