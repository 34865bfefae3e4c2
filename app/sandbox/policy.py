"""The sandbox policy as plain data: what a child may see, use and become. Deny by default."""

from __future__ import annotations

import os
import resource
import sys

from ..config import SandboxSettings
from ..paths import IMPORT_ROOT, PACKAGE_DIR

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
# them as fast. Measured with the seed programs: fork 5.6 -> 1.1 ms, exit 7.0 -> 2.4 ms.
ENV_SET = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONMALLOC": "malloc",
    "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1",
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


def view_paths() -> list[str]:
    """Host paths bound read-only, at the same place, into the children's file system."""
    wanted = [
        "/usr/lib",
        "/usr/lib64",
        "/usr/lib32",
        "/lib",
        "/lib64",
        "/lib32",  # shared libraries
        sys.base_prefix,
        sys.base_exec_prefix,
        sys.prefix,
        sys.exec_prefix,  # the interpreter, the venv
        os.path.dirname(os.path.realpath(sys.executable)),
        str(PACKAGE_DIR),  # only the package (app/): the repo root may hold .env and the share database
    ]
    wanted += [p for p in sys.path if p and os.path.isdir(p) and ("site-packages" in p or "dist-packages" in p)]
    out: list[str] = []
    for p in wanted:
        p = os.path.normpath(p)
        if os.path.lexists(p) and p not in out:
            out.append(p)
    return out


# Single files the interpreter reads (and nothing else of /etc: not passwd, not hosts).
VIEW_FILES = ("/etc/ld.so.cache", "/etc/localtime")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
