"""One run, inside a child of the zygote: harden, wait for the job, trace, write the result, exit.

Children are forked ahead of demand when the zygote is idle: they harden themselves (paying fork
and the hardening off the request's path), then block on a private socket until the zygote hands
them a job: the result pipe and the program (a memfd). When the zygote has been idle a while it
first tells them to warm the tracer up, which pays the first copy-on-write faults too; under load
it does not, since a warm-up costs more CPU than it saves. This is the hottest path of the product: a handful of system calls, no imports.
"""

from __future__ import annotations

import _thread
import os
import resource
import select
import signal
import socket
import sys
import time
from typing import Any

from ..config import SandboxSettings, TraceSettings
from ..models import Job, Status
from ..tracer import Interrupted, job_json, stuck_json, trace_json
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


def _stop_message(signum: int, limits: SandboxSettings, frame: Any, stuck: bool = False) -> str:
    at = _at(frame)
    if stuck and at:
        at = at[:-1] + ", inside one call that could not be interrupted)"
    if signum == signal.SIGXCPU:
        return f"Time limit: the program used more than {limits.cpu_s} s of CPU time{at}."
    return f"Time limit: the program ran longer than {limits.timeout_s:g} s{at}."


def _on_alarm(limits: SandboxSettings, watchdog: Watchdog | None = None) -> Any:
    def handler(signum: int, frame: Any) -> None:
        # One stop per run: the other deadline must not interrupt the tracer saving the first one's trace.
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)
        if watchdog is not None:
            watchdog.claim_or_park()
        raise Interrupted("timeout", _stop_message(signum, limits, frame))

    return handler


class Watchdog:
    """Answers for a program stuck in one native call past its deadline: a deadline's handler runs only
    between Python bytecodes, so one torch call of minutes (a sum over 2**60 broadcast elements) used to
    be SIGKILLed by the parent with nothing of its trace, stdout included. A thread of the child's own
    wakes at the deadline (its signal, through set_wakeup_fd, or the wall clock) and, if the program's
    thread has not taken its handler within GRACE_S, sends the trace so far itself and ends the child.
    Whichever thread claims the result first writes it; the other never runs again (park)."""

    GRACE_S = 0.1  # a running thread takes its handler within microseconds; the CPU limit's SIGKILL comes 1 s of CPU later

    def __init__(self, source: str, limits: SandboxSettings) -> None:
        self.source, self.limits = source, limits
        self._lock = _thread.allocate_lock()
        self.owner = ""
        self._main = _thread.get_ident()
        self._wake, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)  # the deadline's signal number lands here
        _thread.start_new_thread(self._watch, ())

    def claim(self, who: str) -> bool:
        with self._lock:
            self.owner = self.owner or who
            return self.owner == who

    def claim_or_park(self) -> None:
        """The program's thread claims the result, or stops here for good (the watchdog has it)."""
        if not self.claim("program"):
            _thread.allocate_lock().acquire()
            _thread.allocate_lock().acquire()  # never returns: os._exit ends the child

    def _watch(self) -> None:
        started, limits = time.monotonic(), self.limits
        while (left := limits.timeout_s - (time.monotonic() - started)) > 0 and time.process_time() < limits.cpu_s:
            # woken by a deadline's signal, or by the program's own (then it sleeps again)
            if select.select([self._wake], [], [], left)[0]:
                os.read(self._wake, 64)
        time.sleep(self.GRACE_S)
        frame = sys._current_frames().get(self._main)
        if frame_line(frame) is None or not self.claim("watchdog"):  # the program is done, or took its handler
            return
        sys.setswitchinterval(60)  # the program's thread may not run tracer code while this finishes its trace
        cpu = time.process_time() >= limits.cpu_s
        message = _stop_message(signal.SIGXCPU if cpu else signal.SIGALRM, limits, frame, stuck=True)
        try:
            data = stuck_json(_LEFT, "timeout", message, frame_line(frame)) or _doc(self.source, "timeout", "timeout", message)
        except BaseException:  # noqa: BLE001 - the tracer's state mid-call: the plain status instead
            data = _doc(self.source, "timeout", "timeout", message)
        _write_all(data)
        os._exit(0)


def _doc(source: str, status: Status, type_: str, message: str) -> bytes:
    return status_trace(source, status, message, type_).model_dump_json().encode()


# Nothing of the failure itself: it may come from the program's objects (an exception whose __str__
# raises), and reading it again could fail again.
TRACER_FAILED = (
    "The tracer could not write this program's trace: reading one of its objects failed "
    "(for example an exception whose __str__ raises or returns no text)."
)

# What a run leaves behind (the program's tensors, the graph): never freed, the child exits instead.
_LEFT: list[object] = []


def trace_bytes(source: str, limits: SandboxSettings, trace_settings: TraceSettings, job: Job | None = None) -> bytes:
    """Run the program under the soft deadlines (the parent's SIGKILL is the hard one); the trace's JSON
    (with the `job`'s values in place, and its check)."""
    watchdog = Watchdog(source, limits)
    handler = _on_alarm(limits, watchdog)
    signal.signal(signal.SIGALRM, handler)
    signal.signal(signal.SIGXCPU, handler)
    signal.setitimer(signal.ITIMER_REAL, limits.timeout_s)
    try:
        data = job_json(source, job or Job(), trace_settings, keep=_LEFT)
    except Interrupted as e:  # fired after the program, while the tracer was finishing
        data = _doc(source, e.status, e.status, e.message)
    except MemoryError:
        data = _doc(source, "memory", "MemoryError", "Out of memory while saving the trace.")
    except SystemExit:
        data = _doc(source, "error", "SystemExit", "The program called exit().")
    except Exception:  # noqa: BLE001 - any failure of the tracer's: a trace saying so, where the child exited with none ("killed")
        data = _doc(source, "error", "TracerError", TRACER_FAILED)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    watchdog.claim_or_park()
    return data


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
