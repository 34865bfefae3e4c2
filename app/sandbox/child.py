"""One run, inside a child of the zygote: harden, wait for the job, trace, write the result, exit.

Children are forked ahead of demand when the zygote is idle: they harden themselves (paying fork
and the hardening off the request's path), then block on a private socket until the zygote hands
them a job: the result pipe and the program (a memfd). When the zygote has been idle a while it
first tells them to warm the tracer up, which pays the first copy-on-write faults too; under load
it does not, since a warm-up costs more CPU than it saves. This is the hottest path of the product: a handful of system calls, no imports.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import sys
from typing import Any

from ..config import SandboxSettings, TraceSettings
from ..models import Job, Status
from ..tracer import Interrupted, job_json, trace_json
from ..tracer.program import frame_line
from . import linux, policy, seccomp
from .boundary import status_trace
from .jail import Landlock
from .policy import EXIT_HARDEN_FAILED, EXIT_NO_RESULT, RUN_NICE, SCRATCH_DIR

WARM = b"warm"  # from the zygote, on the job socket, when it has been idle for a while
JOB, IDLE_JOB = b"job", b"idle"  # a job; a job to run at idle CPU priority (a busy client's)
RESULT_FD = 3
JOB_FD = 4
WARM_UP = """\
import torch
w = torch.tensor([0.5, -1.0], requires_grad=True)
x = torch.tensor([1.0, 2.0])
loss = ((w * x).sum() - 1.0) ** 2
loss.backward()
print(w.grad)
"""

NETWORK = "network access is not available in the sandbox"
PROCESSES = "starting processes or other programs is not available in the sandbox"
SIGNALS = "signalling other processes is not allowed in the sandbox"
_AUDIT_DENY = {
    **dict.fromkeys(
        (
            "socket.__new__",
            "socket.connect",
            "socket.bind",
            "socket.getaddrinfo",
            "socket.gethostbyname",
            "socket.gethostbyaddr",
            "socket.gethostbyname_ex",
            "socket.sendto",
            "urllib.Request",
        ),
        NETWORK,
    ),
    **dict.fromkeys(
        (
            "os.fork",
            "os.forkpty",
            "os.system",
            "os.exec",
            "os.posix_spawn",
            "os.spawn",
            "subprocess.Popen",
            "os.startfile",
            "pty.spawn",
        ),
        PROCESSES,
    ),
    "os.killpg": SIGNALS,
}


class Jail:
    """What the zygote prepared once and every child applies."""

    def __init__(
        self,
        limits: SandboxSettings,
        trace: TraceSettings,
        protections: dict[str, bool],
        landlock: Landlock | None = None,
        shared_memory: bool = False,
    ) -> None:
        self.limits = limits
        self.trace = trace
        self.protections = protections
        self.landlock = landlock
        self.shared_memory = shared_memory  # in-memory files, System V IPC: only where the run's own cgroup counts them
        self.devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)


def _at(frame: Any) -> str:
    line = frame_line(frame)
    return f" (it was running line {line})" if line else ""


def _audit(event: str, args: tuple) -> None:
    """Names the reason before the kernel says no; seccomp and Landlock enforce it below ctypes."""
    reason = _AUDIT_DENY.get(event)
    if reason is None and event == "os.kill" and args[0] != os.getpid():
        reason = SIGNALS
    if reason is not None:
        raise Interrupted("killed", f"Stopped: {reason}.")


def harden(jail: Jail, uid: int, keep_fd: int) -> None:
    """Turn this fresh child into a sandboxed one. Keeps fds 0-2 (/dev/null) and `keep_fd` only."""
    p = jail.protections
    # No setsid(): a new session is a new scheduling autogroup (Linux's sched_autogroup, on by default),
    # which the kernel weighs like any other, so every run in its own would get as much CPU as the web
    # server and a SCHED_IDLE run as much as a student's. In the zygote's session, nice and SCHED_IDLE
    # rank the runs among themselves; seccomp refuses the program's own setsid(). Signals to the
    # process group are refused by seccomp anyway.
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    if p.get("namespaces"):
        # A private scratch dir that vanishes with the child (own mount namespace, own size-capped tmpfs),
        # and System V IPC objects that vanish with it too, instead of outliving it in the zygote's.
        linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWIPC)
        owner = uid if p.get("unprivileged_uid") else os.getuid()  # without root, only our own id is mapped
        linux.mount(
            "tmpfs",
            SCRATCH_DIR,
            "tmpfs",
            linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC,
            f"size={jail.limits.scratch_mb}m,nr_inodes=4096,mode=0700,uid={owner},gid={owner}",
        )
        _hide_mount_tables()
    try:
        with open("/proc/self/oom_score_adj", "w") as f:  # under memory pressure, children go first
            f.write("1000")
    except OSError:
        pass
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    if jail.landlock is not None:
        jail.landlock.enforce()
    for fd in (0, 1, 2):  # the program's fds 1 and 2 lead nowhere: they cannot forge a result
        os.dup2(jail.devnull, fd)
    if keep_fd != JOB_FD:
        os.dup2(keep_fd, JOB_FD)
    os.closerange(RESULT_FD, JOB_FD)
    os.closerange(JOB_FD + 1, 1 << 16)
    for which, soft, hard in policy.rlimits(jail.limits):
        resource.setrlimit(which, (soft, hard))
    if p.get("unprivileged_uid"):
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # drops every capability, and makes the child non-dumpable
    else:  # not root: perhaps uid 0 of the zygote's user namespace, so shed any capabilities by hand
        linux.prctl(linux.PR_SET_DUMPABLE, 0)
        linux.drop_capabilities()
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
    if p.get("seccomp"):
        linux.install_seccomp(seccomp.build(os.getpid(), shared_memory=jail.shared_memory))
    os.chdir(SCRATCH_DIR if p.get("namespaces") else "/")
    os.environ.clear()
    os.environ.update(HOME=SCRATCH_DIR, TMPDIR=SCRATCH_DIR, LANG="C.UTF-8")


def _hide_mount_tables() -> None:
    """Empty this process's mount tables: their lines name the host directory behind every bind
    mount. Threads' copies go with /proc/<pid>/task, which nothing a program needs reads."""
    proc = f"/proc/{os.getpid()}"
    for table in ("mountinfo", "mounts", "mountstats"):
        linux.mount("/dev/null", f"{proc}/{table}", None, linux.MS_BIND)
    linux.mount("tmpfs", f"{proc}/task", "tmpfs", linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, "size=4k")


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(RESULT_FD, view) :]


def _on_alarm(limits: SandboxSettings) -> Any:
    def handler(signum: int, frame: Any) -> None:
        # One stop per run: the other deadline must not interrupt the tracer saving the first one's trace.
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)
        if signum == signal.SIGXCPU:
            raise Interrupted("timeout", f"Time limit: the program used more than {limits.cpu_s} s of CPU time{_at(frame)}.")
        raise Interrupted("timeout", f"Time limit: the program ran longer than {limits.timeout_s:g} s{_at(frame)}.")

    return handler


def _doc(source: str, status: Status, type_: str, message: str) -> bytes:
    return status_trace(source, status, message, type_).model_dump_json().encode()


# What a run leaves behind (the program's tensors, the graph): never freed, the child exits instead.
_LEFT: list[object] = []


def trace_bytes(source: str, limits: SandboxSettings, trace_settings: TraceSettings, job: Job | None = None) -> bytes:
    """Run the program under the soft deadlines (the parent's SIGKILL is the hard one); the trace's JSON
    (with the `job`'s values in place, and its check)."""
    handler = _on_alarm(limits)
    signal.signal(signal.SIGALRM, handler)
    signal.signal(signal.SIGXCPU, handler)
    signal.setitimer(signal.ITIMER_REAL, limits.timeout_s)
    try:
        return job_json(source, job or Job(), trace_settings, keep=_LEFT)
    except Interrupted as e:  # fired after the program, while the tracer was finishing
        return _doc(source, e.status, e.status, e.message)
    except MemoryError:
        return _doc(source, "memory", "MemoryError", "Out of memory while saving the trace.")
    except SystemExit:
        return _doc(source, "error", "SystemExit", "The program called exit().")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)


def main(jail: Jail, uid: int, job_fd: int) -> None:
    """The child's whole life; never returns."""
    code = EXIT_HARDEN_FAILED
    try:
        harden(jail, uid, job_fd)
        job = socket.socket(fileno=JOB_FD)  # before the audit hook, which forbids sockets
        code = EXIT_NO_RESULT
        msg, fds, _, _ = socket.recv_fds(job, 16, 2)
        if msg == WARM and not fds:  # the zygote is idle: pay the first copy-on-write faults now
            trace_json(WARM_UP, jail.trace)
            msg, fds, _, _ = socket.recv_fds(job, 16, 2)
        job.close()
        if len(fds) != 2:  # the zygote is retiring this child
            os._exit(0)
        os.nice(RUN_NICE)  # before the program, which may not undo it (no CAP_SYS_NICE)
        if msg == IDLE_JOB:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        result_fd, source_fd = fds
        if result_fd != RESULT_FD:
            os.dup2(result_fd, RESULT_FD)
            os.close(result_fd)
        text, nul, plan = os.pread(source_fd, os.fstat(source_fd).st_size, 0).rpartition(b"\0")  # the pool's layout
        os.close(source_fd)
        if not nul:  # the program alone: no job
            text, plan = plan, b"{}"
        source, asked = text.decode("utf-8", "replace"), Job.model_validate_json(plan)
        sys.addaudithook(_audit)
        _write_all(trace_bytes(source, jail.limits, jail.trace, asked))
        os.close(RESULT_FD)  # EOF now: tearing down a torch-sized address space takes milliseconds
        code = 0
    except BaseException:  # noqa: BLE001 - nothing may escape into the zygote's code
        pass
    finally:
        os._exit(code)
