"""Built once in the zygote: its namespaces, the read-only file system view, the Landlock ruleset."""

from __future__ import annotations

import os
import struct

from . import linux, policy
from .linux import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
)

NEW_ROOT = "/tmp"  # a fresh tmpfs mounted over /tmp inside the zygote's own mount namespace


def enter_namespaces() -> None:
    """Mount, network (no interfaces but a down loopback), IPC, UTS, cgroup and pid namespaces."""
    linux.unshare(
        linux.CLONE_NEWNS
        | linux.CLONE_NEWNET
        | linux.CLONE_NEWIPC
        | linux.CLONE_NEWUTS
        | linux.CLONE_NEWPID
        | linux.CLONE_NEWCGROUP
    )


def _bind(host: str, inside: str, *, read_only: bool = True) -> None:
    if os.path.isdir(host):
        os.makedirs(inside, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        open(inside, "a").close()
    linux.mount(host, inside, None, MS_BIND | MS_REC)
    if read_only:
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID
        if not inside.startswith(NEW_ROOT + "/dev/"):
            flags |= MS_NODEV
        linux.mount(None, inside, None, flags)


def build_view(runtime: policy.Runtime) -> list[str]:
    """Pivot into a root holding only the runtime (`policy.Runtime`: libraries, the interpreter, the
    package, some at neutral paths), /dev basics, /proc and a scratch dir.

    Returns the paths visible inside (for Landlock and for the self-test).
    """
    linux.mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount propagates to the host
    # Hold every source open before the new root covers /tmp: the app or its venv may live under
    # /tmp (a CI checkout), and a bind from /proc/self/fd/N still reaches the covered directory.
    binds = sorted(runtime.binds, key=lambda pair: len(pair[0]))  # a directory before what it holds
    held: dict[str, int] = {}
    for path in [*(host for host, _ in binds), *policy.VIEW_FILES, *policy.DEVICES]:
        if os.path.exists(path) and not os.path.islink(path) and path not in held:
            held[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)

    def source(path: str) -> str:
        return f"/proc/self/fd/{held[path]}"

    linux.mount("tmpfs", NEW_ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")
    visible: list[str] = []
    bound: list[str] = []
    for host, path in binds:
        inside = NEW_ROOT + path
        if os.path.islink(host):  # /lib -> usr/lib on merged-/usr systems: the same link inside
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            if not os.path.lexists(inside):
                os.symlink(os.readlink(host), inside)
            continue
        if any(host.startswith(b + "/") for b in bound) or host not in held:
            continue  # already inside a bound directory, or missing on this host
        _bind(source(host), inside)
        bound.append(host)
        visible.append(path)
    for path in policy.VIEW_FILES:
        if os.path.islink(path):
            os.makedirs(os.path.dirname(NEW_ROOT + path), exist_ok=True)
            os.symlink(os.readlink(path), NEW_ROOT + path)
        elif path in held and os.path.isfile(source(path)):
            _bind(source(path), NEW_ROOT + path)
    for dev in policy.DEVICES:
        if dev in held:
            _bind(source(dev), NEW_ROOT + dev, read_only=False)
    for fd in held.values():
        os.close(fd)
    os.makedirs(NEW_ROOT + "/proc")
    # hidepid=2: a child sees only processes of its own uid, that is, itself.
    linux.mount("proc", NEW_ROOT + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    os.makedirs(NEW_ROOT + policy.SCRATCH_DIR, exist_ok=True)
    if not os.path.lexists(NEW_ROOT + "/tmp"):  # programs that write to /tmp/... land in their scratch
        os.symlink(policy.SCRATCH_DIR, NEW_ROOT + "/tmp")
    os.makedirs(NEW_ROOT + "/.old")
    linux.pivot_root(NEW_ROOT, NEW_ROOT + "/.old")
    os.chdir("/")
    linux.umount("/.old")
    os.rmdir("/.old")
    linux.mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    # The zygote's own scratch (torch computes cache paths from tempfile at import time); each
    # child mounts a fresh one over it in its own mount namespace.
    linux.mount("tmpfs", policy.SCRATCH_DIR, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16m,mode=0700")
    return visible


# Landlock access rights (ABI 1..5 for files, 4 for TCP, 6 for scopes).
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1, 2, 4, 8
_REMOVE_DIR, _REMOVE_FILE, _MAKE_CHAR, _MAKE_DIR, _MAKE_REG = 16, 32, 64, 128, 256
_MAKE_SOCK, _MAKE_FIFO, _MAKE_BLOCK, _MAKE_SYM = 512, 1024, 2048, 4096
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2


class Landlock:
    """The ruleset, as data, that each child builds and enforces after mounting its own scratch dir.

    Built per child because a rule on the zygote's scratch dir would not cover the tmpfs a child
    mounts over it. Read the view, write the scratch dir, no TCP; with ABI 6, no abstract unix sockets
    and no signals outside the child's own domain.
    """

    def __init__(self, visible: list[str]) -> None:
        self.abi = linux.landlock_abi()
        handled = (1 << 13) - 1
        if self.abi >= 2:
            handled |= _REFER
        if self.abi >= 3:
            handled |= _TRUNCATE
        if self.abi >= 5:
            handled |= _IOCTL_DEV
        attr = struct.pack("<Q", handled)
        if self.abi >= 4:
            attr += struct.pack("<Q", 3)  # BIND_TCP | CONNECT_TCP, with no rule allowing either
        if self.abi >= 6:
            attr += struct.pack("<Q", _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL)
        self.attr = attr
        read = _EXECUTE | _READ_FILE | _READ_DIR
        scratch = handled & ~(_EXECUTE | _MAKE_CHAR | _MAKE_BLOCK | _MAKE_SOCK | _IOCTL_DEV)
        rules = [(p, read) for p in visible] + [("/proc", _READ_FILE | _READ_DIR), (policy.SCRATCH_DIR, scratch)]
        rules += [(p, _READ_FILE) for p in policy.VIEW_FILES if os.path.isfile(p)]
        rules += [(d, _READ_FILE | _WRITE_FILE | (handled & _TRUNCATE)) for d in policy.DEVICES if os.path.exists(d)]
        self.rules = [(path.encode(), struct.pack("<Q", access)) for path, access in rules]

    def enforce(self) -> None:
        """Build the ruleset from this process's view and restrict this process to it."""
        fd = linux.landlock_create_ruleset(self.attr)
        try:
            for path, access in self.rules:
                pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                try:
                    linux.landlock_add_path_rule(fd, access + struct.pack("<i", pfd))
                finally:
                    os.close(pfd)
            linux.landlock_restrict_self(fd)
        finally:
            os.close(fd)
