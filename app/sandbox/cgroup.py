"""Memory cgroups: one around the zygote's whole subtree, and one per run inside it.

The pool's group caps the memory and process count of all runs together. Each run then gets a
memory cgroup of its own, whose limit is the run's `memory_mb`: it counts what RLIMIT_AS cannot (in-
memory files, its tmpfs, shared memory, kernel memory), so a program that fills them is stopped by
the kernel's OOM killer alone, and its neighbours, whose memory is in other groups, never are.

cgroup v2: the pool's group is made beside the service's own cgroup (its parent must have delegated
the memory and pids controllers: systemd's slices do), since a cgroup holding processes cannot have
controllers for its children; the zygote then moves itself into a leaf of it and makes one group per
run beside that leaf (`memory.max`, no swap, `memory.oom.group`). cgroup v1: the pool's group in the
memory and pids hierarchies under the service's own, a run's group in the memory hierarchy under it.
The pool makes the groups and hands the zygote a directory descriptor: inside its own root, the
zygote cannot see /sys/fs/cgroup.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
ZYGOTE_LEAF = "zygote"  # v2: where the zygote and its idle children live inside the pool's group
RUN_PREFIX = "run-"


def _own(hierarchy: str) -> str | None:
    """This process's path in a v1 hierarchy (e.g. "memory"), or in v2 for ""."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (hierarchy == "" and controllers == "") or hierarchy in controllers.split(","):
            return path
    return None


def _rmdir_tree(d: Path) -> None:
    """Remove a cgroup and the groups under it (runs first); a dying group empties within milliseconds."""
    for sub in [p for p in d.glob("*") if p.is_dir()]:
        _rmdir_tree(sub)
    for _ in range(50):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)


@dataclass
class Cgroup:
    """The pool's group: its directories (one in v2, memory and pids in v1) and where runs' groups go."""

    version: int
    dirs: list[Path]
    runs_parent: Path  # v2: the pool's group; v1: its memory directory
    procs: list[str] = field(default_factory=list)  # cgroup.procs files the zygote joins first

    def remove(self) -> None:
        for d in self.dirs:
            _rmdir_tree(d)


def _sweep(parent: Path, prefix: str) -> None:
    """Remove groups left by services of ours that died without closing (named prefix-PID-...)."""
    for d in parent.glob(prefix + "-*"):
        pid = d.name[len(prefix) + 1 :].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                _rmdir_tree(d)


def _v2_parent() -> Path | None:
    """The nearest cgroup above this process's own whose children may have memory and pids limits."""
    own = _own("")
    if own is None:
        return None
    path = ROOT / own.lstrip("/")
    candidates = [path] if own == "/" else [path.parent]  # the root may hold processes and still delegate
    for candidate in candidates:
        try:
            if {"memory", "pids"} <= set((candidate / "cgroup.subtree_control").read_text().split()):
                return candidate
        except OSError:
            return None
    return None


def create(name: str, memory_bytes: int, max_pids: int) -> tuple[Cgroup | None, str]:
    """The pool's group `prefix-PID-...` with both limits, or None and the reason (no paths: it is shown publicly)."""
    if os.geteuid() != 0:
        return None, "cgroups are managed as root only"
    prefix = name.split("-")[0]
    made: list[Path] = []
    try:
        if (ROOT / "cgroup.controllers").exists():
            parent = _v2_parent()
            if parent is None:
                return None, "cgroup v2 without the memory and pids controllers delegated beside this service"
            _sweep(parent, prefix)
            d = parent / name
            d.mkdir()
            made.append(d)
            (d / "memory.max").write_text(str(memory_bytes))
            if (d / "memory.swap.max").exists():
                (d / "memory.swap.max").write_text("0")
            (d / "pids.max").write_text(str(max_pids))
            (d / ZYGOTE_LEAF).mkdir()
            return Cgroup(2, made, d, [str(d / "cgroup.procs")]), ""
        mem, pids = _own("memory"), _own("pids")
        if mem is None or pids is None or not (ROOT / "memory").is_dir() or not (ROOT / "pids").is_dir():
            return None, "no cgroup v2, and no v1 memory and pids hierarchies"
        dm = ROOT / "memory" / mem.lstrip("/") / name
        _sweep(dm.parent, prefix)
        dm.mkdir()
        made.append(dm)
        (dm / "memory.limit_in_bytes").write_text(str(memory_bytes))
        dp = ROOT / "pids" / pids.lstrip("/") / name
        _sweep(dp.parent, prefix)
        dp.mkdir()
        made.append(dp)
        (dp / "pids.max").write_text(str(max_pids))
        return Cgroup(1, made, dm, [str(dm / "cgroup.procs"), str(dp / "cgroup.procs")]), ""
    except OSError as e:
        Cgroup(0, made, Path()).remove()
        return None, f"cannot create a cgroup ({os.strerror(e.errno) if e.errno else 'error'})"


# -- in the zygote: through a directory descriptor of `runs_parent` ---------------------------------


def _write(dir_fd: int, path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY, dir_fd=dir_fd)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(dir_fd: int, path: str) -> str:
    fd = os.open(path, os.O_RDONLY, dir_fd=dir_fd)
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def settle_zygote(version: int, dir_fd: int) -> None:
    """v2, in the zygote, once it has its own cgroup namespace rooted at the pool's group: move into the
    leaf, then let the group's children have memory and pids limits (a group with processes cannot)."""
    if version == 2:
        _write(dir_fd, f"{ZYGOTE_LEAF}/cgroup.procs", str(os.getpid()))
        _write(dir_fd, "cgroup.subtree_control", "+memory +pids")


@dataclass
class RunGroups:
    """One memory cgroup per child uid, reused (as the uid is) only after its previous holder is reaped."""

    version: int
    dir_fd: int
    memory_bytes: int
    ready: set[str] = field(default_factory=set)

    def place(self, pid: int, uid: int) -> int:
        """Move a fresh child into its run's group; the group's OOM kills so far (to compare at the end)."""
        name = f"{RUN_PREFIX}{uid}"
        if name not in self.ready:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, dir_fd=self.dir_fd)
            if self.version == 2:
                _write(self.dir_fd, f"{name}/memory.max", str(self.memory_bytes))
                with contextlib.suppress(FileNotFoundError):
                    _write(self.dir_fd, f"{name}/memory.swap.max", "0")
                _write(self.dir_fd, f"{name}/memory.oom.group", "1")
            else:
                _write(self.dir_fd, f"{name}/memory.limit_in_bytes", str(self.memory_bytes))
                with contextlib.suppress(OSError):  # no swap accounting on this host
                    _write(self.dir_fd, f"{name}/memory.memsw.limit_in_bytes", str(self.memory_bytes))
            self.ready.add(name)
        _write(self.dir_fd, f"{name}/cgroup.procs", str(pid))
        return self.oom_kills(uid)

    def oom_kills(self, uid: int) -> int:
        """How many times the kernel's OOM killer acted in this uid's run group."""
        name = f"{RUN_PREFIX}{uid}"
        text = _read(self.dir_fd, f"{name}/memory.events" if self.version == 2 else f"{name}/memory.oom_control")
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0
