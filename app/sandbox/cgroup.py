"""A cgroup around the zygote's whole subtree (memory and process count), where the host allows it.

cgroup v2 with the memory and pids controllers delegated, or the v1 memory and pids hierarchies.
The per-child address-space rlimit is the fine cap; this one protects the machine from all
children together.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def _own(hierarchy: str) -> str | None:
    """This process's path in a v1 hierarchy (e.g. "memory"), or in v2 for ""."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (hierarchy == "" and controllers == "") or hierarchy in controllers.split(","):
            return path
    return None


class Cgroup:
    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs

    @property
    def procs(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def remove(self) -> None:
        for d in self.dirs:
            for _ in range(50):  # a dying subtree empties within milliseconds
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


def _sweep(parent: Path, prefix: str) -> None:
    """Remove empty cgroups left by services of ours that died without closing (named prefix-PID-...)."""
    for d in parent.glob(prefix + "-*"):
        pid = d.name[len(prefix) + 1 :].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            try:
                d.rmdir()
            except OSError:
                pass


def create(name: str, memory_bytes: int, max_pids: int) -> tuple[Cgroup | None, str]:
    """A fresh cgroup (v2) or pair of cgroups (v1) named `prefix-PID-...`, with both limits, or None and the reason."""
    if os.geteuid() != 0:
        return None, "cgroups are managed as root only"
    prefix = name.split("-")[0]
    made: list[Path] = []
    try:
        v2 = ROOT / "cgroup.controllers"
        if v2.exists():
            own = _own("")
            parent = ROOT / (own or "/").lstrip("/")
            if not {"memory", "pids"} <= set((parent / "cgroup.controllers").read_text().split()):
                return None, "the memory and pids controllers are not delegated to this cgroup (v2)"
            _sweep(parent, prefix)
            d = parent / name
            d.mkdir()
            made.append(d)
            (d / "memory.max").write_text(str(memory_bytes))
            if (d / "memory.swap.max").exists():
                (d / "memory.swap.max").write_text("0")
            (d / "pids.max").write_text(str(max_pids))
            return Cgroup(made), ""
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
        return Cgroup(made), ""
    except OSError as e:
        Cgroup(made).remove()
        return None, f"cannot create a cgroup: {e}"
