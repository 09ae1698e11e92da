#!/usr/bin/perl
# Syscall probe for the RUN sandbox's seccomp filter (x86_64 only).
#
# Runs with Debian bookworm's perl-base alone: no modules, the `syscall` builtin with literal x86_64
# syscall numbers. Every probe uses arguments that make the call fail fast (or do nothing) once the
# seccomp filter has let it through: invalid fds, NULL or unmapped pointers, invalid flags, bad magic.
# A call the filter refuses returns EPERM (docker's defaultErrnoRet), ENOSYS for clone3 (the
# profile's errnoRet 38) or ENOSYS from runc's stub for syscalls newer than the profile knows.
# Probes that would change this process (a new user namespace, a personality) run in a forked child.
# Nothing here changes the host, even when run as real root: no mount, no reboot (bad magic), no
# module load, no time change (unmapped pointers), no socket family autoload (invalid type first).
#
# Output: one line per probe, `NAME RESULT`, RESULT being `ok` or the errno name. Always exits 0.
use strict;
use warnings;

my %errno = (
    1 => 'EPERM', 2 => 'ENOENT', 3 => 'ESRCH', 4 => 'EINTR', 5 => 'EIO', 6 => 'ENXIO',
    7 => 'E2BIG', 8 => 'ENOEXEC', 9 => 'EBADF', 10 => 'ECHILD', 11 => 'EAGAIN', 12 => 'ENOMEM',
    13 => 'EACCES', 14 => 'EFAULT', 16 => 'EBUSY', 17 => 'EEXIST', 18 => 'EXDEV', 19 => 'ENODEV',
    20 => 'ENOTDIR', 21 => 'EISDIR', 22 => 'EINVAL', 23 => 'ENFILE', 24 => 'EMFILE',
    25 => 'ENOTTY', 28 => 'ENOSPC', 30 => 'EROFS', 34 => 'ERANGE', 36 => 'ENAMETOOLONG',
    38 => 'ENOSYS', 61 => 'ENODATA', 93 => 'EPROTONOSUPPORT', 94 => 'ESOCKTNOSUPPORT',
    95 => 'EOPNOTSUPP', 96 => 'EPFNOSUPPORT', 97 => 'EAFNOSUPPORT', 126 => 'ENOKEY',
);

sub ename { my ($n) = @_; return $n == 0 ? 'ok' : ($errno{$n} // "E$n") }

# Runs one syscall in this process; a non-negative return is `ok`.
sub probe {
    my ($name, $nr, @args) = @_;
    $! = 0;
    my $r = syscall($nr, @args);    # syscall's prototype is ($@): the number must be a scalar
    print "$name ", ($r == -1 ? ename($! + 0) : 'ok'), "\n";
}

# Runs one syscall in a forked child (for calls that would change the calling process when
# allowed); the child reports errno through its exit status.
sub probe_child {
    my ($name, $nr, @args) = @_;
    my $pid = fork();
    if (!defined $pid) { print "$name fork-failed\n"; return }
    if ($pid == 0) {
        $! = 0;
        my $r = syscall($nr, @args);    # syscall's prototype is ($@): the number must be a scalar
        my $e = $r == -1 ? ($! + 0) : 0;
        syscall(231, $e);    # exit_group: no perl teardown in the child
        exit($e);
    }
    waitpid($pid, 0);
    my $st = $?;
    print "$name ", (($st & 127) ? "signal" . ($st & 127) : ename($st >> 8)), "\n";
}

my $root    = "/";
my $missing = "/nonexistent-lighter-probe";
my $modname = "lighter_probe_no_such_module";
my $memname = "lighter-probe";
my $timex   = "\0" x 208;    # struct timex with modes = 0: read only
my $bad     = 8;             # an unmapped user address
my $pid     = $$;

# controls: allowed everywhere
probe('getpid', 39);
probe('personality_query', 135, 0xffffffff);
probe('adjtimex_read', 159, $timex);
probe('clock_adjtime_read', 305, 0, $timex);
probe('landlock_create_ruleset_version', 444, 0, 0, 1);
probe('memfd_create_badflags', 319, $memname, 0x100);
probe('clone_thread_without_sighand', 56, 0x10000, 0, 0, 0, 0);

# namespaces, clone
probe('clone_newuser', 56, 0x10000200, 0, 0, 0, 0);    # CLONE_NEWUSER|CLONE_FS: EINVAL if allowed
probe('clone_newns', 56, 0x00020200, 0, 0, 0, 0);      # CLONE_NEWNS|CLONE_FS: EINVAL if allowed
probe('clone3_null', 435, 0, 0);                       # EINVAL (size 0) if allowed
probe('unshare_badflags', 272, 0x1);
probe_child('unshare_newuser', 272, 0x10000000);
probe('setns_badfd', 308, -1, 0);

# keys
probe('keyctl_badop', 250, 9999, 0, 0, 0, 0);
probe('add_key_null', 248, 0, 0, 0, 0, -1);
probe('request_key_null', 249, 0, 0, 0, 0);

# kernel facilities
probe('bpf_badcmd', 321, 9999, 0, 0);
probe('perf_event_open_null', 298, 0, 0, -1, -1, 0);
probe('userfaultfd_badflags', 323, 0x3);
probe('io_uring_setup_null', 425, 1, 0);
probe('syslog_read_all_null', 103, 3, 0, 0);
probe('fanotify_init_badflags', 300, 0x80000000, 0);
probe_child('personality_addr_no_randomize', 135, 0x0040000);

# privileged administration
probe('acct_badptr', 163, $bad);
probe('swapon_null', 167, 0, 0);
probe('swapoff_null', 168, 0);
probe('kexec_load_toomany', 246, 0, 1000, 0, 0);
probe('init_module_empty', 175, 0, 0, 0);
probe('finit_module_badfd', 313, -1, 0, 0);
probe('delete_module_missing', 176, $modname, 0x800);
probe('reboot_badmagic', 169, 0, 0, 0, 0);
probe('settimeofday_badptr', 164, $bad, 0);
probe('clock_settime_badptr', 227, 0, $bad);
probe('iopl_4', 172, 4);
probe('ioperm_zero', 173, 0, 0, 0);

# mounts and file handles
probe('mount_null', 165, 0, 0, 0, 0, 0);
probe('umount2_badflags', 166, 0, 0x80000000);
probe('pivot_root_null', 155, 0, 0);
probe('open_tree_badflags', 428, -1, 0, 0x40000000);
probe('mount_setattr_badflags', 442, -1, 0, 0x40000000, 0, 0);
probe('fsopen_badflags', 430, 0, 0x40000000);
probe('quotactl_getfmt_null', 179, 0x80000400, 0, 0, 0);
probe('quotactl_fd_badfd', 443, -1, 0x80000400, 0, 0);
probe('name_to_handle_at_null', 303, -100, $root, 0, 0, 0);
probe('open_by_handle_at_badfd', 304, -1, 0, 0);
probe('chroot_missing', 161, $missing);

# processes and memory policy
probe('ptrace_peek_nopid', 101, 2, 0x3ffffff0, 0, 0);
probe('process_vm_readv_empty', 310, $pid, 0, 0, 0, 0, 0);
probe('kcmp_badtype', 312, $pid, $pid, 9999, 0, 0);
probe('pidfd_getfd_badfd', 438, -1, -1, 0);
probe('process_madvise_badfd', 440, -1, 0, 0, 0, 0);
probe('get_mempolicy_null', 239, 0, 0, 0, 0, 0);
probe('set_mempolicy_badmode', 238, 9999, 0, 0);
probe('mbind_badmode', 237, 0, 0, 9999, 0, 0, 0);
probe('move_pages_badflags', 279, 0, 0, 0, 0, 0, 0x80);
probe('pkey_alloc_badflags', 330, 1, 0);

# obsolete syscalls
probe('uselib_null', 134, 0);
probe('ustat_nodev', 136, 0xffff, 0);
probe('sysfs_count', 139, 3);
probe('_sysctl_null', 156, 0);
probe('nfsservctl', 180, 0, 0, 0);
probe('lookup_dcookie', 212, 0, 0, 0);

# sockets (type 15 >= SOCK_MAX: EINVAL before any protocol module is looked up)
probe('socket_netlink_badtype', 41, 16, 15, 0);
probe('socket_alg_badtype', 41, 38, 15, 0);
probe('socket_nfc_badtype', 41, 39, 15, 0);
probe('socket_vsock_badtype', 41, 40, 15, 0);
probe('socket_kcm_badtype', 41, 41, 15, 0);

# syscalls newer than libseccomp 2.5.4 / docker 20.10's profile
probe('futex_waitv_null', 449, 0, 0, 0, 0, 0);
probe('set_mempolicy_home_node_badflags', 450, 0, 0, 0, 1);
probe('cachestat_badflags', 451, -1, 0, 0, 1);
probe('fchmodat2_badflags', 452, -100, $root, 0, 0x40000000);
probe('statmount_badflags', 457, 0, 0, 0, 1);
probe('lsm_list_modules_badflags', 461, 0, 0, 1);
probe('mseal_badflags', 462, 0, 0, 1);

# a character device node (CAP_MKNOD), removed again
my $node = "/tmp/lighter-probe-null.$$";
probe('mknod_chr', 133, $node, 0020600, 0x0103);
unlink $node;

exit 0;
