"""Runs untrusted programs: a zygote with torch preloaded forks one hardened child per run.

What it isolates. Each child runs as a uid of its own (never root), in the zygote's pid, network
(no interface up, loopback included), UTS and cgroup namespaces and in mount and IPC namespaces
of its own, with a read-only root that holds only the interpreter, its libraries, `app/` and a
few devices, a private size-capped tmpfs at /scratch (TMPDIR, HOME, the working directory;
/tmp links there unless the app itself lives under /tmp), and /proc showing only itself. It has no secrets in its environment
(the zygote starts from a cleared one), no_new_privs, rlimits on address space, CPU time, file
size, open files, threads and core dumps, a seccomp filter that denies sockets, process creation
(threads allowed), exec, ptrace, signals to others, mounts, namespaces, io_uring, BPF and kernel
interfaces, and, where the kernel has it, a Landlock domain (files, TCP, abstract sockets,
signals). The parent enforces the wall-clock deadline with SIGKILL, reads at most
`max_result_bytes` from a private pipe (fds 1 and 2 lead to /dev/null), kills every child after
its result, and validates the result as a `Trace`: the trust boundary. A cgroup caps the memory
and process count of the whole subtree where the host allows it.

What it does not. A program can replace its own trace with any valid `Trace` of its own source
(it owns the result pipe): that changes nothing for anyone else. It shares CPU caches and the
kernel with the service: kernel bugs and side channels are out of scope. Without root, user
namespaces give every layer but per-child uids (children then share the service's uid, without
capabilities); without those either, the namespace layers are missing. `protections()` says
which, and `sandbox_mode="strict"` refuses to start without all of `policy.REQUIRED`.

Contract for the web service: `SandboxPool(settings)`, `await start()`, `await
trace_document(source, client) -> TraceDocument` (the checked trace as canonical JSON bytes; never
raises for anything a program does; raises `QueueFull` when the client's queue or the whole queue
is full), `protections()`, `protection_errors()`, `run_memory()`, `in_flight`, `queued`, `mode`, `await close()`.
Runs are scheduled fairly between clients (`schedule.py`); results cross the trust boundary in
`boundary.py`.
"""

from __future__ import annotations

import asyncio

from ..config import Settings
from ..models import Trace
from .boundary import TraceDocument
from .pool import SandboxPool, SandboxUnavailable
from .schedule import QueueFull

__all__ = ["QueueFull", "SandboxPool", "SandboxUnavailable", "TraceDocument", "trace_in_sandbox"]


def trace_in_sandbox(source: str, settings: Settings | None = None) -> Trace:
    """Start a zygote, run one program in the sandbox, stop it; its trace (for the CLI; a few seconds)."""

    async def go() -> Trace:
        pool = SandboxPool(settings or Settings())
        await pool.start()
        try:
            document = await pool.trace_document(source)
        finally:
            await pool.close()
        return document.trace()

    return asyncio.run(go())
