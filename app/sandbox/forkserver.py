"""The zygote's loop: hardened children forked ahead of demand, a job handed to each, every one reaped.

Requests first; the idle pool is topped up only when no job waits. Each child gets a uid of its own
(reused only after the previous holder is reaped) and, where the host allows, a memory cgroup of its
own (`cgroup.RunGroups`) before it is handed a job; when it is reaped, the pool is told how it ended
and whether its cgroup's OOM killer stopped it. A child the pool forgot is killed at `kill_after_s`.
"""

from __future__ import annotations

import collections
import json
import os
import select
import signal
import socket
import time
from typing import Any, NoReturn

from . import child, policy
from .cgroup import RunGroups

IDLE_BEFORE_WARM_UP_MS = 50  # idle this long: under load, a warm-up costs more CPU than it saves


def send(ctrl: socket.socket, msg: dict[str, Any], fds: list[int] | None = None) -> None:
    try:
        socket.send_fds(ctrl, [json.dumps(msg).encode()], fds or [])
    except OSError:  # the pool is gone: exiting as pid 1 kills every child
        os._exit(0)


class _Child:
    __slots__ = ("job", "oom_kills", "pid", "pidfd", "uid", "warm")

    def __init__(self, pid: int, pidfd: int, job: socket.socket, uid: int, oom_kills: int) -> None:
        self.pid, self.pidfd, self.job, self.uid, self.oom_kills = pid, pidfd, job, uid, oom_kills
        self.warm = False


class ForkServer:
    def __init__(
        self,
        ctrl: socket.socket,
        jail: child.Jail,
        max_children: int,
        idle_target: int,
        kill_after_s: float,
        runs: RunGroups | None,
    ) -> None:
        self.ctrl, self.jail, self.runs = ctrl, jail, runs
        self.idle_target, self.kill_after_s = idle_target, kill_after_s
        self.uids = collections.deque(range(policy.UID_BASE, policy.UID_BASE + max_children))
        self.idle: collections.deque[_Child] = collections.deque()
        self.running: dict[int, tuple[int, _Child]] = {}  # pid -> (run id, child)
        self.deadlines: dict[int, float] = {}  # pid -> monotonic time to SIGKILL it, whatever the pool does
        self.idle_pids: dict[int, _Child] = {}  # idle children that may die before a job
        self.waiting: collections.deque[tuple[int, bool, list[int]]] = collections.deque()  # (run id, idle, fds)
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.poller = select.poll()
        self.poller.register(ctrl, select.POLLIN)
        self.poller.register(self.wake_r, select.POLLIN)

    def run(self) -> NoReturn:
        while True:
            self._kill_overdue()
            timeout_ms = self._timeout_ms()
            events = self.poller.poll(timeout_ms)
            if not events and not self.waiting:
                self._when_idle(timeout_ms)
                continue
            for fd, _ in events:
                if fd == self.wake_r:
                    self._drain_wakeups()
                else:
                    self._receive()
            self._hand_out()
            self._reap()

    def fork(self) -> _Child | None:
        """A fresh hardened child waiting for its job, in its own memory cgroup; None when none can be made."""
        if not self.uids:
            return None
        uid = self.uids.popleft()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            self.uids.appendleft(uid)
            ours.close()
            theirs.close()
            return None
        if pid == 0:
            child.main(self.jail, uid, theirs.fileno())
        theirs.close()
        oom_kills = 0
        if self.runs is not None:
            try:  # before any job: whatever the program does is charged to its own group
                oom_kills = self.runs.place(pid, uid)
            except OSError:
                os.kill(pid, signal.SIGKILL)  # never run a program outside its group
        c = _Child(pid, os.pidfd_open(pid), ours, uid, oom_kills)
        self.idle_pids[pid] = c
        return c

    def _timeout_ms(self) -> float | None:
        cold = any(not c.warm for c in self.idle)
        timeout_ms: float | None = None
        if len(self.idle) < self.idle_target and self.uids and not self.waiting:
            timeout_ms = 0
        elif cold:
            timeout_ms = IDLE_BEFORE_WARM_UP_MS
        if self.deadlines:
            until = max(0.0, (min(self.deadlines.values()) - time.monotonic()) * 1000) + 1
            timeout_ms = until if timeout_ms is None else min(timeout_ms, until)
        return timeout_ms

    def _when_idle(self, timeout_ms: float | None) -> None:
        """Nothing to do: top the idle children up, or warm a cold one up when idle a while."""
        if len(self.idle) < self.idle_target and self.uids:
            c = self.fork()
            if c is not None:
                self.idle.append(c)
            return
        cold = [c for c in self.idle if not c.warm]
        if cold and timeout_ms == IDLE_BEFORE_WARM_UP_MS:
            cold[0].warm = True
            try:
                cold[0].job.send(child.WARM)
            except OSError:
                pass

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for pid in [p for p, t in self.deadlines.items() if t <= now]:
            del self.deadlines[pid]
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _drain_wakeups(self) -> None:
        while True:
            try:
                if not os.read(self.wake_r, 512):
                    return
            except BlockingIOError:
                return

    def _receive(self) -> None:
        try:
            msg, fds, _, _ = socket.recv_fds(self.ctrl, 4096, 4)
        except OSError:
            msg, fds = b"", []
        if not msg:  # the pool is gone: exiting as pid 1 kills every child
            os._exit(0)
        job = json.loads(msg)
        if len(fds) != 2:
            for f in fds:
                os.close(f)
            send(self.ctrl, {"id": job["id"], "failed": "bad request"})
            return
        self.waiting.append((job["id"], bool(job.get("idle")), fds))

    def _hand_out(self) -> None:
        """Each waiting job to an idle child, else a fresh one; else it waits for a reap."""
        while self.waiting:
            c = self.idle.popleft() if self.idle else self.fork()
            if c is None:
                return
            rid, idle_job, fds = self.waiting.popleft()
            try:
                socket.send_fds(c.job, [child.IDLE_JOB if idle_job else child.JOB], fds)
            except OSError:  # the idle child died meanwhile: the parent sees a run without result
                pass
            for f in fds:
                os.close(f)
            c.job.close()
            self.idle_pids.pop(c.pid, None)
            self.running[c.pid] = (rid, c)
            self.deadlines[c.pid] = time.monotonic() + self.kill_after_s
            send(self.ctrl, {"id": rid, "pid": c.pid}, [c.pidfd])
            os.close(c.pidfd)

    def _reap(self) -> None:
        """Reap children, and any orphan: we are pid 1."""
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.running:
                rid, c = self.running.pop(pid)
                self.deadlines.pop(pid, None)
                self.uids.append(c.uid)
                report = {"id": rid, "status": status, "cpu_s": round(usage.ru_utime + usage.ru_stime, 4)}
                report.update(maxrss_kb=usage.ru_maxrss, oom=self._oom_killed(c))
                send(self.ctrl, report)
            elif pid in self.idle_pids:  # an idle child died (out of memory?): forget it
                c = self.idle_pids.pop(pid)
                self.uids.append(c.uid)
                if c in self.idle:
                    self.idle.remove(c)
                c.job.close()
                os.close(c.pidfd)

    def _oom_killed(self, c: _Child) -> bool:
        if self.runs is None:
            return False
        try:
            return self.runs.oom_kills(c.uid) > c.oom_kills
        except OSError:
            return False
