"""The sandbox policy as plain data: what a child may see, use and become. Deny by default."""

from __future__ import annotations

import os
import resource
import sys
from dataclasses import dataclass
from typing import Literal

from ..config import SandboxSettings
from ..paths import IMPORT_ROOT, PACKAGE_DIR

# What caps a run's memory outside its address space (in-memory files, tmpfs, shared memory): a memory
# cgroup of its own, or, where the host gives none, seccomp refusing memfd_create and System V shared
# memory with the tmpfs at scratch_mb; "none" only in dev mode without seccomp.
RunMemory = Literal["cgroup_v2", "cgroup_v1", "refused", "none"]

PROJECT_ROOT = IMPORT_ROOT  # what holds the package: the repository, or site-packages when installed
# Unprivileged uids for children, one per live child (reused only after the previous holder is
# reaped), so children cannot signal, trace or read each other. Below 65534 (nobody) so that
# hosts whose root is itself mapped to 65,536 ids (rootless containers) can still use them.
UID_BASE = 60_100
# The children's private writable directory (TMPDIR and HOME point there). Not /tmp: a checkout,
# and so the app and its venv, may live under /tmp (CI clones there), and a tmpfs over /tmp would
# hide them inside the view.
SCRATCH_DIR = "/scratch"
# The zygote keeps only these variables; everything else (secrets included) is gone before it
# starts, since a child can read its own /proc/self/environ even after os.environ.clear().
ENV_KEEP = ("LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Python objects through glibc malloc, on transparent huge pages where the host allows them
# (madvise): fork then copies a few thousand page-table entries instead of ~60,000, and exit frees
# them as fast (scripts/bench_sandbox.py prints both allocators' fork and exit side by side).
ENV_SET = {
    "OMP_NUM_THREADS": "1",
    # torch.set_num_threads(200) then runs on 4 threads instead of OpenMP ending the process when it
    # cannot start 200 (a run has max_processes threads): a program asks, the limit answers.
    "OMP_THREAD_LIMIT": "4",
    "MKL_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONMALLOC": "malloc",
    # Two malloc arenas at most: each thread's own would reserve 64 MiB of the run's address space.
    "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1:glibc.malloc.arena_max=2",
    "TMPDIR": SCRATCH_DIR,  # tempfile (and torch, at import) must find a writable directory
}
# Protections `sandbox_mode="strict"` refuses to start without. "landlock" and "cgroup" are
# extra layers where the kernel or host allows them; the mount namespace already hides the host.
REQUIRED = (
    "namespaces",
    "filesystem",
    "seccomp",
    "rlimits",
    "unprivileged_uid",
    "no_new_privs",
    "clean_env",
)
# Every run's CPU priority below the web server's (nice), so that answering stays quick on a busy
# machine; runs of busy clients, and runs that go on after demote_after_s, get SCHED_IDLE instead.
RUN_NICE = 5
# Exit codes of a child that leaves no trace, which the parent explains.
EXIT_HARDEN_FAILED = 70  # it could not harden itself: no program ran
EXIT_NO_RESULT = 71  # it failed before it could write a result
# Seconds after timeout_s that the child gets to send its partial trace before SIGKILL.
KILL_GRACE_S = 1.0


# Open files a child may have: the tracer, torch and the program need a few dozen.
MAX_OPEN_FILES = 256


def rlimits(limits: SandboxSettings) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) of every rlimit a child gets, from the Settings' sandbox section."""
    mib = 1024 * 1024
    return [
        (resource.RLIMIT_AS, limits.memory_mb * mib, limits.memory_mb * mib),
        (resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 1),  # SIGXCPU at the soft limit, SIGKILL 1 s later
        (resource.RLIMIT_FSIZE, limits.scratch_mb * mib, limits.scratch_mb * mib),
        (resource.RLIMIT_NOFILE, MAX_OPEN_FILES, MAX_OPEN_FILES),
        (resource.RLIMIT_NPROC, limits.max_processes, limits.max_processes),  # threads count, per uid
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_MEMLOCK, 0, 0),
        (resource.RLIMIT_MSGQUEUE, 0, 0),
    ]


def zygote_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env["PATH"] = "/usr/bin:/bin"
    return {**env, **ENV_SET}


# Where the runtime is mounted inside the children's root when its host path says something about
# the host (a checkout under /work, a venv, a pyenv interpreter): at these neutral paths instead.
RUNTIME_DIR = "/gradwalk"
PACKAGE_NAME = __package__.split(".")[0]
RUNTIME_ENV = ("LD_LIBRARY_PATH",)  # set for the zygote's second stage when the interpreter moved
SYSTEM_LIBS = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32")
SYSTEM_PREFIXES = ("/usr", "/usr/local")  # an interpreter here keeps its path: nothing host-specific in it


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


@dataclass
class Runtime:
    """What the children's read-only root holds besides /etc's two files and /dev's five, as (host
    path, path inside) pairs: the shared libraries, the interpreter, the venv, site-packages, the
    package; never the checkout's root (it may hold .env and the share database). And how the
    zygote's second stage starts in there. Computed at the host's paths, before they go out of sight."""

    binds: list[tuple[str, str]]
    python: str = ""  # the interpreter's executable, inside
    path: list[str] | None = None  # sys.path inside: the package's import root, then site-packages
    env: dict[str, str] | None = None  # what the moved interpreter needs: its shared library, where RUNPATH no longer points

    @classmethod
    def here(cls) -> Runtime:
        binds = [(p, p) for p in SYSTEM_LIBS if os.path.lexists(p)]
        python = os.path.realpath(sys.executable)
        base = os.path.realpath(sys.base_prefix)
        runtime = cls(binds, env={})
        if base in SYSTEM_PREFIXES:
            binds += [(base, base), (os.path.dirname(python), os.path.dirname(python))]
        else:
            binds.append((base, f"{RUNTIME_DIR}/python"))
            runtime.env = {"LD_LIBRARY_PATH": f"{RUNTIME_DIR}/python/lib"}
            if not _within(python, base):
                binds.append((os.path.dirname(python), f"{RUNTIME_DIR}/bin"))
        venv = os.path.realpath(sys.prefix)
        if runtime.inside(venv) is None:
            binds.append((venv, f"{RUNTIME_DIR}/venv"))
        sites = [
            os.path.realpath(p) for p in sys.path if p and os.path.isdir(p) and ("site-packages" in p or "dist-packages" in p)
        ]
        for n, site in enumerate(dict.fromkeys(sites)):
            if runtime.inside(site) is None:
                binds.append((site, f"{RUNTIME_DIR}/site{n}"))
        if runtime.inside(str(PACKAGE_DIR)) is None:  # under the name it is imported by (app, or gradwalk)
            binds.append((str(PACKAGE_DIR), f"{RUNTIME_DIR}/lib/{PACKAGE_NAME}"))
        runtime.python = runtime.inside(python) or python
        root = runtime.inside(str(IMPORT_ROOT)) or f"{RUNTIME_DIR}/lib"
        runtime.path = list(dict.fromkeys([root, *(i for i in map(runtime.inside, sites) if i)]))
        return runtime

    def inside(self, host_path: str) -> str | None:
        """Where a host path is seen inside the children's root, or None if it is not there."""
        path = os.path.realpath(host_path)
        matches = [(host, inside) for host, inside in self.binds if _within(path, host)]
        if not matches:
            return None
        host, inside = max(matches, key=lambda pair: len(pair[0]))
        return inside + path[len(host.rstrip("/")) :] if path != host else inside


# Single files the interpreter reads (and nothing else of /etc: not passwd, not hosts).
VIEW_FILES = ("/etc/ld.so.cache", "/etc/localtime")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
