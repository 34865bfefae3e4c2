"""The parent side: one zygote, a bounded number of runs at once, deadlines, and the trust boundary."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import fcntl
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys

from ..config import Settings
from ..models import Job
from . import cgroup, linux, policy
from .boundary import Boundary, BoundaryLimits, TraceDocument, status_document, without_result
from .inflight import InFlight
from .link import ZygoteDied, ZygoteLink
from .policy import KILL_GRACE_S, PROJECT_ROOT, RunMemory
from .schedule import Schedule, Ticket

log = logging.getLogger("gradwalk.sandbox")

_F_SETPIPE_SZ = 1031
_START_TIMEOUT_S = 120.0  # importing torch on a cold disk
_SPAWN_TIMEOUT_S = 10.0
_REAP_TIMEOUT_S = 5.0
_BOOT = f"import sys; sys.path.insert(0, {{root!r}}); from {__package__}.zygote import main; main()"


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run programs: it failed to start, or strict mode found a protection missing."""


def _job_files(source: str, job: Job | None) -> tuple[int, int, int]:
    """A run's files: the result pipe (read end non-blocking, write end for the child) and a memfd
    holding the program, then NUL and the job's JSON (which has no NUL byte): the child splits at the last NUL."""
    r, w = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(r, False)
    try:
        fcntl.fcntl(r, _F_SETPIPE_SZ, 1 << 20)  # fewer wake-ups for big traces
    except OSError:
        pass
    src = os.memfd_create("gradwalk-source", os.MFD_CLOEXEC)
    plan = b"{}" if job is None else job.model_dump_json().encode()
    body = memoryview(source.encode("utf-8", "surrogatepass") + b"\0" + plan)
    while body:
        body = body[os.write(src, body) :]
    return r, w, src


class SandboxPool:
    """Runs untrusted programs in hardened children of one zygote. See `app.sandbox` for the contract."""

    def __init__(self, settings: Settings, warm_up_examples: bool = True) -> None:
        self.settings = settings
        # A server warms its zygote up on every example program (each child then starts warm); a
        # command that runs a few programs and exits (gradwalk export) starts sooner without it.
        self._warm_up_examples = warm_up_examples
        self.mode: str = settings.sandbox.sandbox_mode
        self._limits = settings.sandbox
        self._boundary = Boundary(BoundaryLimits(settings.trace, settings.sandbox))
        self._zygote: ZygoteLink | None = None
        self._protections: dict[str, bool] = {}
        self._errors: dict[str, str] = {}
        self._cgroup: cgroup.Cgroup | None = None
        self._ids = itertools.count(1)
        self._identical: InFlight[TraceDocument] = InFlight()  # share_identical_runs
        self._schedule: Schedule | None = None
        self._starting: asyncio.Lock | None = None
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Runs executing now (in regular and background slots)."""
        return self._schedule.in_flight if self._schedule else 0

    @property
    def queued(self) -> int:
        """Runs waiting for a slot."""
        return self._schedule.queued if self._schedule else 0

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the zygote; in strict mode raise SandboxUnavailable if any protection is missing."""
        s = self._limits
        self._schedule = Schedule(
            regular=s.max_concurrent_runs,
            background=s.max_background_runs,
            max_queued=s.max_queued_runs,
            max_queued_per_client=s.max_client_queued_runs,
            busy_after_s=s.busy_client_s,
        )
        self._starting = asyncio.Lock()
        self._closed = False
        boundary = asyncio.ensure_future(asyncio.to_thread(self._boundary.start))  # beside the zygote's start
        try:
            await self._spawn()
        finally:
            await boundary
        missing = [p for p in policy.REQUIRED if not self._protections.get(p)]
        if missing:
            detail = "; ".join(f"{p}: {self._errors.get(p, 'missing')}" for p in missing)
            if self.mode == "strict":
                await self.close()
                raise SandboxUnavailable(f"sandbox_mode=strict and protections are missing: {detail}")
            log.warning("SANDBOX DEGRADED (dev mode): running untrusted programs without %s", detail)
        log.info("sandbox protections: %s", json.dumps(self._protections))

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        s = self._limits
        if self._cgroup is None:
            budget_mb = 512 + (s.max_concurrent_runs + s.max_background_runs) * (s.memory_mb + s.scratch_mb)
            self._cgroup, why = cgroup.create(
                f"gradwalk-{os.getpid()}-{id(self):x}",
                budget_mb * 1024 * 1024,
                (s.max_concurrent_runs + s.max_background_runs) * s.max_processes + 32,
            )
            if why:
                self._errors["cgroup"] = why
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        runs_fd = os.open(self._cgroup.runs_parent, os.O_RDONLY | os.O_DIRECTORY) if self._cgroup else -1
        cfg = {
            "ctrl_fd": theirs.fileno(),
            "limits": self._limits.model_dump(),
            "trace": self.settings.trace.model_dump(),
            "max_children": 4 * (s.max_concurrent_runs + s.max_background_runs) + 16,  # running, idle and still exiting
            "idle_children": s.max_concurrent_runs,
            "kill_after_s": self._limits.timeout_s + KILL_GRACE_S + 2.0,  # the zygote's own backstop
            "cgroup_procs": self._cgroup.procs if self._cgroup else [],
            "run_cgroups": {"version": self._cgroup.version, "fd": runs_fd} if self._cgroup else None,
            "errors": {} if self._cgroup else {"run_cgroup": self._errors.get("cgroup", "no cgroup")},
            "warm_up_examples": self._warm_up_examples,
        }
        theirs.set_inheritable(True)
        # Started from the loop's own thread on purpose: a worker thread's exit would count as the
        # parent's death for anything the zygote ties to it. Takes a few ms, once.
        try:
            proc = subprocess.Popen(
                # -s -P rather than -I: the environment is ours (cleared) and PYTHONMALLOC must count.
                [sys.executable, "-s", "-P", "-c", _BOOT.format(root=str(PROJECT_ROOT)), json.dumps(cfg)],
                env=policy.zygote_env(),
                pass_fds=[theirs.fileno(), *([runs_fd] if runs_fd >= 0 else [])],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                cwd="/",
                start_new_session=True,
            )
        finally:
            if runs_fd >= 0:
                os.close(runs_fd)
        theirs.close()
        ours.setblocking(False)
        z = ZygoteLink(loop, proc, ours)
        try:
            ready = await asyncio.wait_for(z.ready, _START_TIMEOUT_S)
        except (TimeoutError, ZygoteDied) as e:
            z.kill()
            await asyncio.to_thread(proc.wait)
            raise SandboxUnavailable(f"the sandbox's zygote did not start: {e}") from None
        self._protections = ready["ready"]
        self._errors.update(ready.get("errors", {}))
        self._zygote = z

    async def close(self) -> None:
        """Stop the zygote and every run (they end with status "killed")."""
        self._closed = True
        z, self._zygote = self._zygote, None
        if z is not None:
            z.kill()
            await asyncio.to_thread(z.proc.wait)
        if self._cgroup is not None:
            await asyncio.to_thread(self._cgroup.remove)
            self._cgroup = None
        await asyncio.to_thread(self._boundary.close)

    def protections(self) -> dict[str, bool]:
        """Which protections hold for children, as the zygote's self-test found them."""
        return dict(self._protections)

    def run_memory(self) -> RunMemory:
        """What caps one run's memory outside its address space: its own memory cgroup, or refusals."""
        if self._protections.get("run_cgroup") and self._cgroup is not None:
            return "cgroup_v2" if self._cgroup.version == 2 else "cgroup_v1"
        return "refused" if self._protections.get("seccomp") else "none"

    def protection_errors(self) -> dict[str, str]:
        """Why each missing protection is missing."""
        return {k: v for k, v in self._errors.items() if not self._protections.get(k)}

    # -- runs ----------------------------------------------------------------------------------

    async def trace_document(self, source: str, client: str = "", job: Job | None = None) -> TraceDocument:
        """Run one program in a fresh child, in `client`'s turn; always a checked document, whatever
        the program does. Raises QueueFull when this client's queue or the whole queue is full.
        `job`: what else to do with it (values put in place, the numeric check: models.Job)."""
        if self._schedule is None or self._closed:
            raise SandboxUnavailable("the sandbox pool is not started")
        if not self._limits.share_identical_runs:
            return await self._traced(source, client, job)
        key = (source, None if job is None else job.model_dump_json())
        return await self._identical.run(key, lambda: self._traced(source, client, job))

    async def _traced(self, source: str, client: str, job: Job | None) -> TraceDocument:
        assert self._schedule is not None
        loop = asyncio.get_running_loop()
        asked = loop.time()
        ticket = await self._schedule.admit(client)
        timing = {"queue": (ticket.started - asked) * 1000}
        try:
            document = await self._run(source, ticket, job, timing)
        finally:
            self._schedule.release(ticket, loop.time() - ticket.started)
        return dataclasses.replace(document, timing_ms={k: round(v, 2) for k, v in timing.items()})

    async def _ready_zygote(self) -> ZygoteLink:
        z = self._zygote
        if z is not None and z.alive:
            return z
        assert self._starting is not None
        async with self._starting:
            if self._zygote is None or not self._zygote.alive:
                if self._zygote is not None:
                    old, self._zygote = self._zygote, None
                    old.kill()
                    await asyncio.to_thread(old.proc.wait)
                log.warning("restarting the sandbox's zygote")
                await self._spawn()
            assert self._zygote is not None
            return self._zygote

    async def _run(self, source: str, ticket: Ticket, job: Job | None, timing: dict[str, float]) -> TraceDocument:
        loop = asyncio.get_running_loop()
        mark = loop.time()
        try:
            z = await self._ready_zygote()
        except SandboxUnavailable as e:
            return status_document(source, "killed", f"The sandbox is not available: {e}")
        rid = next(self._ids)
        r, w, src = _job_files(source, job)
        started = z.started[rid] = loop.create_future()
        exited = z.exited[rid] = loop.create_future()
        deadline = loop.time() + self._limits.timeout_s + KILL_GRACE_S
        pidfd = -1
        demotion: asyncio.TimerHandle | None = None
        why, data = "eof", list[bytes]()
        try:
            try:
                z.send({"id": rid, "idle": ticket.background}, [w, src])
            finally:
                os.close(w)
                os.close(src)
            pidfd = await asyncio.wait_for(started, _SPAWN_TIMEOUT_S)
            timing["start"], mark = (loop.time() - mark) * 1000, loop.time()
            if not ticket.background:
                demotion = loop.call_later(self._limits.demote_after_s, self._demote, ticket, pidfd)
            why, data = await self._read(r, deadline)
        except (TimeoutError, ZygoteDied) as e:
            z.started.pop(rid, None)
            z.exited.pop(rid, None)
            if isinstance(e, asyncio.TimeoutError):  # a zygote that cannot fork in 10 s is broken
                z.kill()
            message = f"The sandbox could not start the program ({e or 'timeout'}); please run it again."
            return status_document(source, "killed", message)
        finally:
            if demotion is not None:
                demotion.cancel()
            os.close(r)
            if pidfd >= 0:
                try:  # always: a child that sent its result may still be running
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.close(pidfd)
        report = None
        if why != "eof" or not data:  # no result: the exit status explains why
            try:
                report = await asyncio.wait_for(asyncio.shield(exited), _REAP_TIMEOUT_S)
            except TimeoutError:
                pass
        z.exited.pop(rid, None)
        timing["run"], mark = (loop.time() - mark) * 1000, loop.time()
        document = without_result(source, why, bool(data), report, self._boundary.limits)
        if document is None:
            document = await self._boundary.check(data, source)
        timing["check"] = (loop.time() - mark) * 1000
        return document

    def _demote(self, ticket: Ticket, pidfd: int) -> None:
        """A run still going after demote_after_s: its slot goes to the next client, it goes on at idle priority."""
        assert self._schedule is not None
        if self._schedule.demote(ticket):
            try:
                linux.set_idle_priority(linux.pidfd_pid(pidfd))
            except OSError:  # it ended meanwhile
                pass

    async def _read(self, r: int, deadline: float) -> tuple[str, list[bytes]]:
        """Read the result pipe to EOF, at most max_result_bytes, until the deadline: why it stopped, and the chunks read."""
        loop = asyncio.get_running_loop()
        limit = self._limits.max_result_bytes
        chunks: list[bytes] = []
        size = 0
        done: asyncio.Future = loop.create_future()

        def readable() -> None:  # one read a wake-up: a child writing as fast as we read must not hold the loop
            nonlocal size
            if done.done():
                return
            try:
                b = os.read(r, 1 << 20)
            except BlockingIOError:
                return
            except OSError as e:
                done.set_result("eof" if e.errno == errno.EIO else "error")
                return
            if not b:
                done.set_result("eof")
                return
            chunks.append(b)
            size += len(b)
            if size > limit:
                done.set_result("too_big")

        loop.add_reader(r, readable)
        try:
            why = await asyncio.wait_for(done, max(0.0, deadline - loop.time()))
        except TimeoutError:
            why = "deadline"
        finally:
            loop.remove_reader(r)
        return why, chunks  # joined where it is checked: 30 MB joined here held the loop (and the GIL)
