"""Run as PID 1 of a VM whose only cgroup hierarchy is v2 (tests/sandbox/test_cgroup_v2.py): the v2 path
of app/sandbox/cgroup.py step by step as the pool and the zygote take it. A service cgroup whose parent
delegates memory and pids (as a systemd slice does); the pool's group made beside it; a "zygote" that
joins it, enters a cgroup namespace of its own and settles in the leaf; a memfd bomb and a neighbour,
each in a run group of its own. Prints VM-CHECK lines; exiting ends the VM. Imports cgroup.py alone
(standard library only): the VM boots in seconds, torch would take minutes under emulation."""

import ctypes
import importlib.util
import os
import sys
import time
from pathlib import Path

MiB = 1 << 20
CLONE_NEWCGROUP = 0x02000000


def say(*words: object) -> None:
    print("VM:", *words, flush=True)


def check(name: str, ok: bool, detail: object) -> None:
    print(f"VM-CHECK {name} {'ok' if ok else 'FAILED'} {detail}", flush=True)


def load(path: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("cgroup", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cgroup"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def delegate() -> None:
    """/system.slice/gradwalk.service, with memory and pids delegated to the slice's children; join it."""
    root = Path("/sys/fs/cgroup")
    service = root / "system.slice" / "gradwalk.service"
    service.mkdir(parents=True)
    (root / "cgroup.subtree_control").write_text("+memory +pids")
    (root / "system.slice" / "cgroup.subtree_control").write_text("+memory +pids")
    (service / "cgroup.procs").write_text(str(os.getpid()))


def child(role: str, go: int) -> None:
    os.read(go, 1)  # placed in its group first
    if role == "bomb":  # in-memory files: no address space, only the run's own group counts them
        files = []
        while True:
            fd = os.memfd_create("bomb")
            for _ in range(16):
                os.write(fd, b"x" * MiB)
            files.append(fd)
    hoard = bytearray(64 * MiB)  # the neighbour: 64 MiB of its own, well within its limit
    for i in range(0, len(hoard), 4096):
        hoard[i] = 1
    time.sleep(1)
    os._exit(0)


def zygote(cg, group) -> None:  # type: ignore[no-untyped-def]
    for procs in group.procs:
        Path(procs).write_text(str(os.getpid()))
    dir_fd = os.open(group.runs_parent, os.O_RDONLY | os.O_DIRECTORY)
    if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWCGROUP) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWCGROUP)")
    cg.settle_zygote(2, dir_fd)
    own = Path("/proc/self/cgroup").read_text().strip()
    check("zygote_in_its_leaf", own == "0::/zygote", own)
    runs = cg.RunGroups(2, dir_fd, 256 * MiB)
    kids = {}
    for uid, role in ((60100, "bomb"), (60101, "neighbour")):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            child(role, r)
        kids[pid] = (uid, role, runs.place(pid, uid))
        os.write(w, b"x")
    for pid, (uid, role, before) in kids.items():
        _, status = os.waitpid(pid, 0)
        kills = runs.oom_kills(uid) - before
        limits = {
            n: cg._read(dir_fd, f"{cg.RUN_PREFIX}{uid}/{n}").strip()
            for n in ("memory.max", "memory.swap.max", "memory.oom.group")
        }
        limits_ok = limits == {"memory.max": str(256 * MiB), "memory.swap.max": "0", "memory.oom.group": "1"}
        if role == "bomb":
            ok = os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9 and kills >= 1 and limits_ok
        else:
            ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and kills == 0 and limits_ok
        check(role, ok, {"status": status, "oom_kills": kills, **limits})


def main() -> None:
    cg = load(sys.argv[1])
    say("kernel", os.uname().release, "controllers", Path("/sys/fs/cgroup/cgroup.controllers").read_text().strip())
    delegate()
    group, why = cg.create(f"gradwalk-{os.getpid()}-vm", 3 * 1024 * MiB, 200)
    check("create", group is not None and group.version == 2, why or [str(d) for d in group.dirs])
    if group is None:
        return
    pool = group.dirs[0]
    made = (pool / "memory.max").read_text().strip(), (pool / "pids.max").read_text().strip(), pool.parent.name
    check("pool_group", made == (str(3 * 1024 * MiB), "200", "system.slice"), made)
    pid = os.fork()
    if pid == 0:
        try:
            zygote(cg, group)
        except BaseException as e:  # noqa: BLE001 - said, then the check fails
            check("zygote", False, repr(e))
        os._exit(0)
    os.waitpid(pid, 0)
    group.remove()
    check("removed", not pool.exists(), pool)


if __name__ == "__main__":
    try:
        main()
    finally:
        print("VM-DONE", flush=True)
