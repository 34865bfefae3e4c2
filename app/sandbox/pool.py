"""The parent side: one zygote, a bounded number of runs at once, deadlines, and the trust boundary."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import itertools
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
from typing import Any

from pydantic import ValidationError

from ..config import Settings
from ..models import Error, Trace
from . import cgroup, policy
from .policy import KILL_GRACE_S, PROJECT_ROOT

log = logging.getLogger("gradwalk.sandbox")

_F_SETPIPE_SZ = 1031
_START_TIMEOUT_S = 120.0  # importing torch on a cold disk
_SPAWN_TIMEOUT_S = 10.0
_REAP_TIMEOUT_S = 5.0
_BOOT = f"import sys; sys.path.insert(0, {{root!r}}); from {__package__}.zygote import main; main()"


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run programs: it failed to start, or strict mode found a protection missing."""


class QueueFull(Exception):
    """Every run slot is busy and the queue is full; try again after `retry_after_s` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the sandbox is busy; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class _ZygoteDied(Exception):
    pass


class _Zygote:
    """One zygote process and its control socket, driven from the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen, ctrl: socket.socket) -> None:
        self.loop, self.proc, self.ctrl = loop, proc, ctrl
        self.ready: asyncio.Future = loop.create_future()
        self.started: dict[int, asyncio.Future] = {}
        self.exited: dict[int, asyncio.Future] = {}
        self.alive = True
        loop.add_reader(ctrl.fileno(), self._on_message)

    def _on_message(self) -> None:
        while self.alive:
            try:
                msg, fds, _, _ = socket.recv_fds(self.ctrl, 65536, 4)
            except BlockingIOError:
                return
            except OSError:
                msg, fds = b"", []
            if not msg:
                self._died()
                return
            m = json.loads(msg)
            if "ready" in m:
                if not self.ready.done():
                    self.ready.set_result(m)
                continue
            rid = m.get("id")
            if "pid" in m:
                fut = self.started.pop(rid, None)
                if fut is not None and not fut.done():
                    fut.set_result(fds[0])
                else:  # nobody waits for this run any more (cancelled): stop it
                    for f in fds:
                        try:
                            signal.pidfd_send_signal(f, signal.SIGKILL)
                        except OSError:
                            pass
                        os.close(f)
            elif "failed" in m:
                fut = self.started.pop(rid, None)
                if fut is not None and not fut.done():
                    fut.set_exception(_ZygoteDied(m["failed"]))
            elif "status" in m:
                fut = self.exited.pop(rid, None)
                if fut is not None and not fut.done():
                    fut.set_result(m)

    def _died(self) -> None:
        self.alive = False
        self.loop.remove_reader(self.ctrl.fileno())
        for fut in [*self.started.values(), self.ready]:
            if not fut.done():
                fut.set_exception(_ZygoteDied("the sandbox's zygote stopped"))
        for fut in self.exited.values():
            if not fut.done():
                fut.set_result(None)
        self.started.clear()
        self.exited.clear()

    def send(self, msg: dict[str, Any], fds: list[int]) -> None:
        # Messages are a few bytes and the zygote reads them at once: a full buffer means it hangs.
        try:
            socket.send_fds(self.ctrl, [json.dumps(msg).encode()], fds)
        except (BlockingIOError, OSError) as e:
            raise _ZygoteDied(f"cannot reach the zygote: {e}") from e

    def kill(self) -> None:
        if self.alive:
            self._died()
        try:
            self.proc.kill()  # P0; its child, pid 1 of the namespace, follows, and with it every run
        except ProcessLookupError:
            pass
        self.ctrl.close()


class SandboxPool:
    """Runs untrusted programs in hardened children of one zygote. See `app.sandbox` for the contract."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mode: str = settings.sandbox.sandbox_mode
        self.in_flight = 0
        self.queued = 0
        self._limits = settings.sandbox
        self._zygote: _Zygote | None = None
        self._protections: dict[str, bool] = {}
        self._errors: dict[str, str] = {}
        self._cgroup: cgroup.Cgroup | None = None
        self._ids = itertools.count(1)
        self._slots: asyncio.Semaphore | None = None
        self._starting: asyncio.Lock | None = None
        self._closed = False
        self._avg_run_s = 0.05

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the zygote; in strict mode raise SandboxUnavailable if any protection is missing."""
        self._slots = asyncio.Semaphore(self._limits.max_concurrent_runs)
        self._starting = asyncio.Lock()
        self._closed = False
        await self._spawn()
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
            budget_mb = 512 + s.max_concurrent_runs * (s.memory_mb + s.scratch_mb)
            self._cgroup, why = cgroup.create(
                f"gradwalk-{os.getpid()}-{id(self):x}", budget_mb * 1024 * 1024, s.max_concurrent_runs * s.max_processes + 32
            )
            if why:
                self._errors["cgroup"] = why
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cfg = {
            "ctrl_fd": theirs.fileno(),
            "limits": self._limits.model_dump(),
            "trace": self.settings.trace.model_dump(),
            "max_children": 4 * s.max_concurrent_runs + 16,  # running, idle and still exiting
            "idle_children": s.max_concurrent_runs,
            "kill_after_s": self._limits.timeout_s + KILL_GRACE_S + 2.0,  # the zygote's own backstop
            "cgroup_procs": self._cgroup.procs if self._cgroup else [],
        }
        theirs.set_inheritable(True)
        # Started from the loop's own thread on purpose: a worker thread's exit would count as the
        # parent's death for anything the zygote ties to it. Takes a few ms, once.
        proc = subprocess.Popen(
            # -s -P rather than -I: the environment is ours (cleared) and PYTHONMALLOC must count.
            [sys.executable, "-s", "-P", "-c", _BOOT.format(root=str(PROJECT_ROOT)), json.dumps(cfg)],
            env=policy.zygote_env(),
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
        )
        theirs.close()
        ours.setblocking(False)
        z = _Zygote(loop, proc, ours)
        try:
            ready = await asyncio.wait_for(z.ready, _START_TIMEOUT_S)
        except (asyncio.TimeoutError, _ZygoteDied) as e:
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

    def protections(self) -> dict[str, bool]:
        """Which protections hold for children, as the zygote's self-test found them."""
        return dict(self._protections)

    def protection_errors(self) -> dict[str, str]:
        """Why each missing protection is missing."""
        return {k: v for k, v in self._errors.items() if not self._protections.get(k)}

    # -- runs ----------------------------------------------------------------------------------

    async def run(self, source: str) -> Trace:
        """Run one program in a fresh child; always a Trace, whatever the program does."""
        if self._slots is None or self._closed:
            raise SandboxUnavailable("the sandbox pool is not started")
        if self.in_flight >= self._limits.max_concurrent_runs and self.queued >= self._limits.max_queued_runs:
            waves = (self.queued + 1) / self._limits.max_concurrent_runs + 1
            raise QueueFull(max(1, math.ceil(waves * self._avg_run_s)))
        self.queued += 1
        try:
            await self._slots.acquire()
        finally:
            self.queued -= 1
        self.in_flight += 1
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            return await self._run(source)
        finally:
            self.in_flight -= 1
            self._slots.release()
            self._avg_run_s = 0.9 * self._avg_run_s + 0.1 * (loop.time() - t0)

    async def _ready_zygote(self) -> _Zygote:
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

    async def _run(self, source: str) -> Trace:
        loop = asyncio.get_running_loop()
        try:
            z = await self._ready_zygote()
        except SandboxUnavailable as e:
            return _killed(source, f"The sandbox is not available: {e}")
        rid = next(self._ids)
        r, w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(r, False)
        try:
            fcntl.fcntl(r, _F_SETPIPE_SZ, 1 << 20)  # fewer wake-ups for big traces
        except OSError:
            pass
        src = os.memfd_create("gradwalk-source", os.MFD_CLOEXEC)
        body = memoryview(source.encode("utf-8", "surrogatepass"))
        while body:
            body = body[os.write(src, body) :]
        started = z.started[rid] = loop.create_future()
        exited = z.exited[rid] = loop.create_future()
        deadline = loop.time() + self._limits.timeout_s + KILL_GRACE_S
        pidfd = -1
        why, data = "eof", b""
        try:
            try:
                z.send({"id": rid}, [w, src])
            finally:
                os.close(w)
                os.close(src)
            pidfd = await asyncio.wait_for(started, _SPAWN_TIMEOUT_S)
            why, data = await self._read(r, deadline)
        except (_ZygoteDied, asyncio.TimeoutError) as e:
            z.started.pop(rid, None)
            z.exited.pop(rid, None)
            if isinstance(e, asyncio.TimeoutError):  # a zygote that cannot fork in 10 s is broken
                z.kill()
            return _killed(source, f"The sandbox could not start the program ({e or 'timeout'}); please run it again.")
        finally:
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
            except asyncio.TimeoutError:
                pass
        z.exited.pop(rid, None)
        return self._judge(source, why, data, report)

    async def _read(self, r: int, deadline: float) -> tuple[str, bytes]:
        """Read the result pipe to EOF, at most max_result_bytes, until the deadline."""
        loop = asyncio.get_running_loop()
        limit = self._limits.max_result_bytes
        chunks: list[bytes] = []
        size = 0
        done: asyncio.Future = loop.create_future()

        def readable() -> None:
            nonlocal size
            while not done.done():
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
        except asyncio.TimeoutError:
            why = "deadline"
        finally:
            loop.remove_reader(r)
        return why, b"".join(chunks)

    def _judge(self, source: str, why: str, data: bytes, report: dict | None) -> Trace:
        """The trust boundary: whatever came out of the child becomes a valid Trace here."""
        lim = self._limits
        if why == "too_big":
            return _killed(source, f"The trace is larger than the {lim.max_result_bytes:,} byte limit.")
        if why == "deadline":
            return _status(
                source,
                "timeout",
                f"Time limit: the program ran longer than {lim.timeout_s:g} s and did not stop when asked.",
            )
        if data:
            try:
                trace = Trace.model_validate_json(data)
            except (ValidationError, ValueError):
                return _killed(source, "The program's output was not a valid trace, so it was discarded.")
            if trace.source != source:
                return _killed(source, "The program's output was not a valid trace, so it was discarded.")
            return trace
        if report is None:
            return _killed(source, "The program stopped without producing a trace.")
        status = report["status"]
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGKILL:  # ours (after its channel closed), the CPU rlimit's, or the OOM killer's
                if report.get("cpu_s", 0) >= lim.cpu_s:
                    return _status(source, "timeout", f"Time limit: the program used more than {lim.cpu_s} s of CPU time.")
                if report.get("maxrss_kb", 0) * 1024 >= lim.memory_mb * 1024 * 1024 // 2:
                    return _status(source, "memory", "The program was stopped for using too much memory.")
                if why == "eof":  # it closed its result channel and kept running: our SIGKILL
                    return _killed(source, "The program closed the sandbox's result channel without producing a trace.")
                return _killed(source, "The program was stopped by the system.")
            if sig == signal.SIGSYS:
                return _killed(source, "The program made a system call that is not allowed in the sandbox.")
            if sig == signal.SIGXCPU:
                return _status(source, "timeout", f"Time limit: the program used more than {lim.cpu_s} s of CPU time.")
            return _killed(source, f"The program crashed ({signal.Signals(sig).name}).")
        code = os.waitstatus_to_exitcode(status)
        if code == 70:
            return _killed(source, "The sandbox could not prepare a safe place for the program.")
        return _killed(
            source, "The program ended without producing a trace (it closed the sandbox's result channel or exited early)."
        )


def _status(source: str, status: str, message: str) -> Trace:
    return Trace(source=source, status=status, error=Error(type=status, message=message))  # type: ignore[arg-type]


def _killed(source: str, message: str) -> Trace:
    return _status(source, "killed", message)
