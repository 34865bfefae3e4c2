"""The few Linux system calls the sandbox needs that Python 3.11's `os` lacks, through ctypes."""

from __future__ import annotations

import ctypes
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

X86_64 = platform.machine() == "x86_64"

# <linux/sched.h>
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_THREAD = 0x00010000

# <linux/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# x86_64 numbers of the calls made here (the seccomp table lives in seccomp.py).
_NR_CAPSET = 126
_NR_PIVOT_ROOT = 155
_NR_LANDLOCK_CREATE_RULESET = 444
_NR_LANDLOCK_ADD_RULE = 445
_NR_LANDLOCK_RESTRICT_SELF = 446


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731 - a one-line helper beside its only use
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def umount(target: str, flags: int = MNT_DETACH) -> None:
    _check(_libc.umount2(target.encode(), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_NR_PIVOT_ROOT, new_root.encode(), put_old.encode()), "pivot_root")


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, 0, 0), f"prctl {option}")


def drop_capabilities() -> None:
    """Clear the effective, permitted and inheritable capability sets (all 64 bits)."""
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.syscall(_NR_CAPSET, header, data), "capset")


def install_seccomp(program: bytes) -> None:
    """Load a classic-BPF seccomp filter (a packed array of sock_filter) into this thread group."""

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    prog = SockFprog(len(program) // 8, program)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0), "seccomp")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is absent or disabled."""
    if not X86_64:
        return 0
    version = _libc.syscall(_NR_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(version), 0)


def landlock_create_ruleset(attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, len(attr))
    return _check(
        _libc.syscall(_NR_LANDLOCK_CREATE_RULESET, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0)),
        "landlock_create_ruleset",
    )


def landlock_add_path_rule(ruleset_fd: int, attr: bytes) -> None:
    buf = ctypes.create_string_buffer(attr, len(attr))
    _check(_libc.syscall(_NR_LANDLOCK_ADD_RULE, ruleset_fd, 1, buf, ctypes.c_uint32(0)), "landlock_add_rule")


def landlock_restrict_self(ruleset_fd: int) -> None:
    _check(_libc.syscall(_NR_LANDLOCK_RESTRICT_SELF, ruleset_fd, ctypes.c_uint32(0)), "landlock_restrict_self")


def pidfd_pid(pidfd: int) -> int:
    """The pid (in this process's pid namespace) of the process a pidfd refers to."""
    with open(f"/proc/self/fdinfo/{pidfd}") as f:
        for line in f:
            if line.startswith("Pid:"):
                pid = int(line.split()[1])
                if pid > 0:
                    return pid
    raise ProcessLookupError("the process has ended")


def set_idle_priority(pid: int) -> None:
    """SCHED_IDLE for every thread of a process: it runs only on CPU time nobody else wants.
    (Scheduling policy is per thread; threads it starts later inherit it.)"""
    for _ in range(2):  # again, for any thread started while the first pass ran
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                os.sched_setscheduler(int(tid), os.SCHED_IDLE, os.sched_param(0))
            except (ProcessLookupError, PermissionError):
                pass


_MADV_COLLAPSE = 25
_HUGE_PAGE = 2 * 1024 * 1024


def collapse_to_huge_pages() -> None:
    """Ask the kernel to back this process's private anonymous memory with huge pages, now
    (MADV_COLLAPSE, Linux 6.1+; a no-op where transparent huge pages are off)."""
    with open("/proc/self/maps") as f:
        maps = f.read().splitlines()
    for line in maps:
        parts = line.split()
        path = parts[5] if len(parts) > 5 else ""
        if parts[1][:2] != "rw" or parts[1][3] != "p" or path not in ("", "[heap]"):
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        lo, hi = (start + _HUGE_PAGE - 1) & ~(_HUGE_PAGE - 1), end & ~(_HUGE_PAGE - 1)
        if hi > lo:
            _libc.madvise(lo, hi - lo, _MADV_COLLAPSE)  # failures (EINVAL, EAGAIN) just leave 4 KiB pages


try:  # glibc's; another libc (musl) lacks malloc_info, and the zygote then simply does not drain
    _libc.malloc.restype = ctypes.c_void_p
    _libc.malloc.argtypes = [ctypes.c_size_t]
    _libc.open_memstream.restype = ctypes.c_void_p
    _libc.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)]
    _libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    _libc.fclose.argtypes = [ctypes.c_void_p]
    _libc.free.argtypes = [ctypes.c_void_p]
    _HAVE_MALLOC_INFO = True
except AttributeError:
    _HAVE_MALLOC_INFO = False


def _malloc_free_chunks() -> list[tuple[int, int]]:
    """(chunk size, count) of every free chunk in glibc's bins, from malloc_info(3)."""
    buf, size = ctypes.c_void_p(), ctypes.c_size_t()
    stream = _libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
    if not stream:
        return []
    _libc.malloc_info(0, stream)
    _libc.fclose(stream)
    xml = ctypes.string_at(buf, size.value).decode()
    _libc.free(buf)
    heap0 = xml.split("</heap>", 1)[0]  # the main arena: the only one a forked child's main thread uses
    out = []
    for row in heap0.split("<size ")[1:]:
        attrs = dict(a.split("=", 1) for a in row.split("/>", 1)[0].split())
        if attrs.get("from", "").strip('"').isdigit():
            out.append((int(attrs["from"].strip('"')) & ~15, int(attrs["count"].strip('"'))))
    return out


def drain_malloc_free_lists(passes: int = 4) -> int:
    """Allocate, and keep for good, every chunk on glibc's free lists in this process; the bytes taken.

    Done in the zygote just before it starts forking. A child's malloc then carves from the top
    of the heap (fresh, contiguous pages) instead of unlinking chunks scattered over the zygote's
    ~200 MiB heap, each unlink a write (so a copy-on-write page fault) to one or two more pages.
    The chunks' untouched pages stay as they are; nothing is written to them."""
    if not _HAVE_MALLOC_INFO:
        return 0
    taken = 0
    for request in range(24, 1033, 16):  # the per-thread cache first: up to 7 chunks of each small size
        for _ in range(8):
            if _libc.malloc(request):
                taken += request
    for _ in range(passes):
        chunks = _malloc_free_chunks()
        if not chunks:
            break
        for chunk, count in chunks:
            for _ in range(count):
                if _libc.malloc(max(chunk - 8, 24)):
                    taken += chunk
    return taken
