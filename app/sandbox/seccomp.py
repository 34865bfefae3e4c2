"""The child's seccomp filter: classic BPF built by hand, deny by list (x86_64 only).

A hand-built filter needs no library (our venv is not Debian's python, so `python3-seccomp` is
out of reach) and installs in microseconds. Python and torch make hundreds of different system
calls, so the filter denies the ones a traced program never needs and that cross the sandbox's
walls: sockets, process creation (threads stay allowed), exec, ptrace and cross-process memory,
signals to any process but the child itself, a session of its own (a scheduling autogroup), mounts
and namespaces, io_uring (which would bypass this filter), BPF, perf, keyrings, kernel modules and clocks.
"""

from __future__ import annotations

import errno
import struct

from .linux import CLONE_THREAD

AUDIT_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000

_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000

_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET = 0x06  # BPF_RET | BPF_K

_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16  # struct seccomp_data; args are little-endian u64

# x86_64 numbers. Each group's reason is what a student would be told.
NETWORK = {"socket": 41, "connect": 42, "accept": 43, "bind": 49, "listen": 50, "socketpair": 53, "accept4": 288}
PROCESSES = {"fork": 57, "vfork": 58, "execve": 59, "execveat": 322}
OTHER_PROCESSES = {
    "ptrace": 101,
    "tkill": 200,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "pidfd_send_signal": 424,
    "pidfd_open": 434,
    "pidfd_getfd": 438,
    "process_madvise": 440,
}
SYSTEM = {
    "syslog": 103,
    "mknod": 133,
    "uselib": 134,
    "personality": 135,
    "vhangup": 153,
    "pivot_root": 155,
    "_sysctl": 156,
    "adjtimex": 159,
    "chroot": 161,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "sethostname": 170,
    "setdomainname": 171,
    "iopl": 172,
    "ioperm": 173,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "nfsservctl": 180,
    "lookup_dcookie": 212,
    "clock_settime": 227,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "migrate_pages": 256,
    "mknodat": 259,
    "unshare": 272,
    "move_pages": 279,
    "perf_event_open": 298,
    "fanotify_init": 300,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "clock_adjtime": 305,
    "setns": 308,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
    "quotactl_fd": 443,
    "memfd_secret": 447,
    "statmount": 457,
    "listmount": 458,
}
# A session of its own is a scheduling autogroup of its own, which the kernel weighs like the web
# server's whatever the run's nice or SCHED_IDLE (child.harden's note): a run stays in the zygote's.
SESSIONS = {"setsid": 112}
# Memory outside the address space (RLIMIT_AS): refused where no cgroup of the run's own counts it.
SHARED_MEMORY = {
    "shmget": 29,
    "shmat": 30,
    "shmctl": 31,
    "semget": 64,
    "semop": 65,
    "semctl": 66,
    "shmdt": 67,
    "msgget": 68,
    "msgsnd": 69,
    "msgrcv": 70,
    "msgctl": 71,
    "semtimedop": 220,
    "memfd_create": 319,
}
_DENIED = {**NETWORK, **PROCESSES, **OTHER_PROCESSES, **SESSIONS, **SYSTEM}
_NR_CLONE, _NR_CLONE3 = 56, 435
# Signals: allowed only to the child itself (first argument == its pid).
_SELF_ONLY = {"kill": 62, "rt_sigqueueinfo": 129, "tgkill": 234, "rt_tgsigqueueinfo": 297}


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _errno(value: int) -> bytes:
    return _ins(_RET, _RET_ERRNO | value)


def _static() -> bytes:
    """Everything but the signal rules, which name the child's pid: built once, at import."""
    allow, eperm = _ins(_RET, _RET_ALLOW), _errno(errno.EPERM)
    kill = _ins(_RET, _RET_KILL_PROCESS)
    prog = [
        _ins(_LD_ABS, _OFF_ARCH),
        _ins(_JEQ, AUDIT_ARCH_X86_64, 1, 0),
        kill,  # i386 or x32 entry points would sidestep every number below
        _ins(_LD_ABS, _OFF_NR),
        _ins(_JGE, _X32_BIT, 0, 1),
        kill,
    ]
    for nr in sorted(_DENIED.values()):
        prog += [_ins(_JEQ, nr, 0, 1), eperm]
    # clone3 passes its flags in memory BPF cannot read: ENOSYS makes glibc fall back to clone.
    prog += [_ins(_JEQ, _NR_CLONE3, 0, 1), _errno(errno.ENOSYS)]
    # clone: threads (CLONE_THREAD) only.
    prog += [_ins(_JEQ, _NR_CLONE, 0, 4), _ins(_LD_ABS, _OFF_ARG0), _ins(_JSET, CLONE_THREAD, 0, 1), allow, eperm]
    return b"".join(prog)


_STATIC = _static()


def build(own_pid: int, shared_memory: bool = True) -> bytes:
    """The filter for the child whose pid (as it sees itself) is `own_pid`; without `shared_memory`,
    in-memory files and System V IPC are refused too."""
    allow, eperm = _ins(_RET, _RET_ALLOW), _errno(errno.EPERM)
    prog = [_STATIC]
    if not shared_memory:
        for nr in sorted(SHARED_MEMORY.values()):
            prog += [_ins(_JEQ, nr, 0, 1), eperm]
    for nr in _SELF_ONLY.values():
        prog += [_ins(_JEQ, nr, 0, 4), _ins(_LD_ABS, _OFF_ARG0), _ins(_JEQ, own_pid, 0, 1), allow, eperm]
    prog.append(allow)
    return b"".join(prog)
