//! Compiling and loading: libseccomp builds the BPF program of the selected rules, this module
//! exports it, puts runc's ENOSYS stub in front, and loads the whole with `prctl(PR_SET_SECCOMP)`
//! as runc loads its patched program.

use super::{bounding_set, native, running_kernel, Action, Kernel, Profile, Rule};
use libseccomp::{ScmpArch, ScmpArgCompare, ScmpFilterContext, ScmpSyscall};

/// Adds `rule` for the call `nr`: one libseccomp rule, or one per condition when two conditions
/// test the same argument (libseccomp refuses that in one rule; runc falls back the same way).
fn add_rule(ctx: &mut ScmpFilterContext, nr: ScmpSyscall, rule: &Rule) -> Result<(), String> {
    let conds: Vec<ScmpArgCompare> = rule
        .args
        .iter()
        .map(|a| ScmpArgCompare::new(a.index, a.op, a.value))
        .collect();
    let repeated = (0..6).any(|i| rule.args.iter().filter(|a| a.index == i).count() > 1);
    let sets: Vec<&[ScmpArgCompare]> = if repeated {
        conds.chunks(1).collect()
    } else {
        vec![&conds[..]]
    };
    for set in sets {
        let r = if set.is_empty() {
            ctx.add_rule(rule.action.scmp(), nr)
        } else {
            ctx.add_rule_conditional(rule.action.scmp(), nr, set)
        };
        r.map_err(|e| format!("seccomp rule for {:?}: {e}", rule.names))?;
    }
    Ok(())
}

/// libseccomp's program for `rules` on `arches` (the first being the native one).
fn libseccomp_program(
    default: Action,
    arches: &[ScmpArch],
    rules: &[Rule],
) -> Result<Vec<libc::sock_filter>, String> {
    let err = |what: &str, e: libseccomp::error::SeccompError| format!("seccomp {what}: {e}");
    let mut ctx = ScmpFilterContext::new(default.scmp()).map_err(|e| err("init", e))?;
    for a in arches {
        ctx.add_arch(*a).map_err(|e| err("add architecture", e))?;
    }
    ctx.set_ctl_nnp(false).map_err(|e| err("attribute", e))?;
    for rule in rules.iter().filter(|r| r.action != default) {
        for name in &rule.names {
            // Unknown to this libseccomp: skipped, as runc skips it.
            if let Ok(nr) = ScmpSyscall::from_name(name) {
                add_rule(&mut ctx, nr, rule)?;
            }
        }
    }
    export(&ctx)
}

/// The BPF program of `ctx`, through a memfd (`seccomp_export_bpf_mem` is libseccomp 2.6).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, String> {
    use std::io::{Read, Seek};
    use std::os::fd::FromRawFd;
    // SAFETY: a NUL-terminated name; the fd returned is owned by the File below.
    let fd = unsafe { libc::memfd_create(c"lighter-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    ctx.export_bpf(&f)
        .map_err(|e| format!("export the seccomp filter: {e}"))?;
    let mut bytes = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut bytes))
        .map_err(|e| format!("read the seccomp filter: {e}"))?;
    let size = std::mem::size_of::<libc::sock_filter>();
    Ok(bytes
        .chunks_exact(size)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
const RET_ERRNO: u32 = 0x0005_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn insn(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch` (x32 shares x86_64's).
fn audit_arch(a: ScmpArch) -> Option<u32> {
    Some(match a {
        ScmpArch::X8664 | ScmpArch::X32 => 0xc000_003e,
        ScmpArch::X86 => 0x4000_0003,
        ScmpArch::Aarch64 => 0xc000_00b7,
        ScmpArch::Arm => 0x4000_0028,
        _ => return None,
    })
}

/// The highest number, on `arch`, of a call that `rules` name (None when it knows none).
fn last_syscall(arch: ScmpArch, rules: &[Rule]) -> Option<u32> {
    rules
        .iter()
        .flat_map(|r| &r.names)
        .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
        .map(|s| s.as_raw_syscall())
        .filter(|&nr| nr >= 0)
        .map(|nr| nr as u32)
        .max()
}

/// runc's ENOSYS stub (`libcontainer/seccomp/patchbpf`), run before libseccomp's program: on each
/// architecture, a call numbered above the highest one `rules` name returns ENOSYS; anything else
/// goes on to the program (which reloads what it tests). On x86_64, x32 calls (their numbers carry
/// bit 30) are compared with x32's highest.
pub(crate) fn enosys_stub(arches: &[ScmpArch], rules: &[Rule]) -> Vec<libc::sock_filter> {
    let enosys = insn(RET, RET_ERRNO | libc::ENOSYS as u32, 0, 0);
    let mut blocks: Vec<Vec<libc::sock_filter>> = Vec::new();
    for &a in arches.iter().filter(|a| **a != ScmpArch::X32) {
        let (Some(audit), Some(last)) = (audit_arch(a), last_syscall(a, rules)) else {
            continue;
        };
        // A check is `jgt LAST; ret ENOSYS; ja END`; END is patched below (k = u32::MAX).
        let check = |last: u32| vec![insn(JGT, last, 0, 1), enosys, insn(JA, u32::MAX, 0, 0)];
        let mut body = vec![insn(LD_W_ABS, NR, 0, 0)];
        let x32 = (a == ScmpArch::X8664 && arches.contains(&ScmpArch::X32))
            .then(|| last_syscall(ScmpArch::X32, rules))
            .flatten();
        if let Some(last32) = x32 {
            body.push(insn(JSET, X32_SYSCALL_BIT, 0, 3));
            body.extend(check(last32));
        }
        body.extend(check(last));
        let mut block = vec![insn(JEQ, audit, 0, body.len() as u8)];
        block.extend(body);
        blocks.push(block);
    }
    let mut stub = vec![insn(LD_W_ABS, ARCH, 0, 0)];
    stub.extend(blocks.into_iter().flatten());
    let len = stub.len();
    for (i, ins) in stub.iter_mut().enumerate() {
        if ins.code == JA && ins.k == u32::MAX {
            ins.k = (len - i - 1) as u32;
        }
    }
    stub
}

/// The whole program for the step: the stub, then libseccomp's filter of docker's profile as it
/// applies to `caps` on `kernel`.
pub(crate) fn program(caps: &[&str], kernel: Kernel) -> Result<Vec<libc::sock_filter>, String> {
    let profile = Profile::docker_default()?;
    let (arch, goarch) = native()?;
    let arches = profile.arches_for(arch);
    let rules = profile.rules_for(goarch, caps, kernel);
    let mut prog = enosys_stub(&arches, &rules);
    prog.extend(libseccomp_program(profile.default, &arches, &rules)?);
    if prog.len() > libc::BPF_MAXINSNS as usize {
        return Err(format!("seccomp program of {} instructions", prog.len()));
    }
    Ok(prog)
}

/// A compiled filter as it travels from the executor to the init, one instruction per `u64`
/// (`code << 48 | jt << 40 | jf << 32 | k`). The executor compiles it once per process
/// ([`Program::for_steps`]); each step's init only loads it, so a RUN step does not pay for
/// parsing the profile and running libseccomp (about 9 ms a step).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct Program(Vec<u64>);

impl Program {
    fn pack(prog: &[libc::sock_filter]) -> Self {
        let word = |i: &libc::sock_filter| {
            (i.code as u64) << 48 | (i.jt as u64) << 40 | (i.jf as u64) << 32 | i.k as u64
        };
        Self(prog.iter().map(word).collect())
    }

    fn unpack(&self) -> Vec<libc::sock_filter> {
        let insn = |w: &u64| libc::sock_filter {
            code: (w >> 48) as u16,
            jt: (w >> 40) as u8,
            jf: (w >> 32) as u8,
            k: *w as u32,
        };
        self.0.iter().map(insn).collect()
    }

    /// The program for an unprivileged step of this process: docker's profile for the
    /// capabilities a step keeps (docker's default set, less what this process's bounding set
    /// already lacks, exactly what the init's bounding set becomes) on the running kernel.
    /// Compiled on first use, then shared.
    pub(crate) fn for_steps() -> Result<Program, String> {
        static COMPILED: std::sync::OnceLock<Result<Program, String>> = std::sync::OnceLock::new();
        COMPILED
            .get_or_init(|| {
                let step_caps: Vec<&str> = crate::DEFAULT_CAPS
                    .iter()
                    .map(|&c| super::CAP_NAMES[c as usize])
                    .collect();
                let caps: Vec<&str> = bounding_set()
                    .into_iter()
                    .filter(|c| step_caps.contains(c))
                    .collect();
                Ok(Self::pack(&program(&caps, running_kernel()?)?))
            })
            .clone()
    }
}

/// Installs `program` on the calling thread (inherited by the command it execs). Needs
/// `CAP_SYS_ADMIN`, which the init still has; `no_new_privs` is left unset.
pub(crate) fn install(program: &Program) -> Result<(), String> {
    let mut filter = program.unpack();
    if filter.is_empty() || filter.len() > libc::BPF_MAXINSNS as usize {
        return Err(format!(
            "a seccomp program of {} instructions",
            filter.len()
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::tests::docker_caps;
    use libseccomp::ScmpArch;

    const KERNEL: Kernel = (6, 1);

    /// Runs a seccomp program on one call the way the kernel's BPF interpreter would, for the
    /// instructions that libseccomp and the stub emit.
    fn eval(prog: &[libc::sock_filter], arch: u32, nr: u32, args: &[u64]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let and = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
        let jge = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            pc += 1;
            let hit = match i.code {
                LD_W_ABS => {
                    let k = i.k as usize;
                    a = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                    continue;
                }
                c if c == and => {
                    a &= i.k;
                    continue;
                }
                RET => return i.k,
                JA => {
                    pc += i.k as usize;
                    continue;
                }
                JEQ => a == i.k,
                JGT => a > i.k,
                c if c == jge => a >= i.k,
                JSET => a & i.k != 0,
                c => panic!("unexpected instruction {c:#x} at {}", pc - 1),
            };
            pc += if hit { i.jt } else { i.jf } as usize;
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_compiled_program_answers_as_docker() {
        let p = program(&docker_caps(), KERNEL).unwrap();
        assert!(p.len() > 300, "{}", p.len());
        let (x86_64, i386) = (0xc000_003e, 0x4000_0003);
        let allow = 0x7fff_0000;
        let eperm = RET_ERRNO | libc::EPERM as u32;
        let enosys = RET_ERRNO | libc::ENOSYS as u32;
        let run = |nr: libc::c_long, args: &[u64]| eval(&p, x86_64, nr as u32, args);
        assert_eq!(run(libc::SYS_getpid, &[]), allow);
        assert_eq!(run(libc::SYS_ptrace, &[]), allow);
        for nr in [
            libc::SYS_keyctl,
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_bpf,
        ] {
            assert_eq!(run(nr, &[]), eperm, "{nr}");
        }
        assert_eq!(run(libc::SYS_io_uring_setup, &[]), eperm);
        assert_eq!(run(libc::SYS_clone3, &[]), enosys);
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(run(libc::SYS_clone, &[thread]), allow);
        assert_eq!(run(libc::SYS_clone, &[libc::SIGCHLD as u64]), allow);
        let newuser = libc::CLONE_NEWUSER as u64 | libc::SIGCHLD as u64;
        assert_eq!(run(libc::SYS_clone, &[newuser]), eperm);
        assert_eq!(run(libc::SYS_personality, &[0xffff_ffff]), allow);
        assert_eq!(run(libc::SYS_personality, &[0x0040000]), eperm);
        // AF_ALG (38) and AF_VSOCK (40) are refused, AF_INET and AF_NFC (39) are not.
        assert_eq!(run(libc::SYS_socket, &[2]), allow);
        assert_eq!(run(libc::SYS_socket, &[39]), allow);
        assert_eq!(run(libc::SYS_socket, &[38]), eperm);
        assert_eq!(run(libc::SYS_socket, &[40]), eperm);
        assert_eq!(
            run(libc::SYS_personality, &[1 << 32]),
            eperm,
            "64-bit compare"
        );
        // Beyond the highest call the filter knows: ENOSYS, from the stub.
        assert_eq!(run(1000, &[]), enosys);
        assert_eq!(eval(&p, x86_64, X32_SYSCALL_BIT, &[]), allow, "x32 read");
        assert_eq!(eval(&p, x86_64, X32_SYSCALL_BIT | 1000, &[]), enosys);
        assert_eq!(eval(&p, i386, 3, &[]), allow, "read on i386");
        assert_eq!(eval(&p, i386, 288, &[]), eperm, "keyctl on i386");
        assert_eq!(eval(&p, i386, 120, &[libc::CLONE_NEWNS as u64]), eperm);
        assert_eq!(eval(&p, i386, 2000, &[]), enosys);
    }

    #[test]
    fn a_program_survives_the_trip_to_the_init() {
        let prog = program(&docker_caps(), KERNEL).unwrap();
        let sent: Program =
            serde_json::from_slice(&serde_json::to_vec(&Program::pack(&prog)).unwrap()).unwrap();
        let back = sent.unpack();
        assert_eq!(back.len(), prog.len());
        for (a, b) in prog.iter().zip(&back) {
            assert_eq!((a.code, a.jt, a.jf, a.k), (b.code, b.jt, b.jf, b.k));
        }
        // The executor's own program: docker's set, as this process's bounding set allows.
        assert!(Program::for_steps().unwrap().unpack().len() > 300);
    }

    #[test]
    fn the_stub_sends_unknown_numbers_to_enosys_and_the_rest_on() {
        let rules = [Rule {
            names: vec!["read".into(), "getpid".into()],
            action: Action::Allow,
            args: vec![],
        }];
        let arches = [ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32];
        let mut prog = enosys_stub(&arches, &rules);
        prog.push(insn(RET, 0x7fff_0000, 0, 0));
        let enosys = RET_ERRNO | libc::ENOSYS as u32;
        let getpid = 39; // x86_64: the highest of the two; i386 getpid is 20
        assert_eq!(eval(&prog, 0xc000_003e, getpid, &[]), 0x7fff_0000);
        assert_eq!(eval(&prog, 0xc000_003e, getpid + 1, &[]), enosys);
        assert_eq!(
            eval(&prog, 0xc000_003e, X32_SYSCALL_BIT | 39, &[]),
            0x7fff_0000
        );
        assert_eq!(eval(&prog, 0xc000_003e, X32_SYSCALL_BIT | 40, &[]), enosys);
        assert_eq!(eval(&prog, 0x4000_0003, 20, &[]), 0x7fff_0000);
        assert_eq!(eval(&prog, 0x4000_0003, 21, &[]), enosys);
        assert_eq!(
            eval(&prog, 0xc000_00b7, 9999, &[]),
            0x7fff_0000,
            "other arches pass"
        );
    }
}
