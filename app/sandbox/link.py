"""The parent's link to its zygote: the process, its control socket, and the runs waiting on its answers.

The zygote answers each job with `pid` (a pidfd of the child running it), `failed` (it could not fork),
and later `status` (how the child exited); `ready` once, after its self-test. Everything here runs on
the event loop; a closed socket fails every waiting run at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
from typing import Any


class ZygoteDied(Exception):
    """The zygote stopped, or cannot be reached: every run waiting on it fails with this."""


class ZygoteLink:
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
                    fut.set_exception(ZygoteDied(m["failed"]))
            elif "status" in m:
                fut = self.exited.pop(rid, None)
                if fut is not None and not fut.done():
                    fut.set_result(m)

    def _died(self) -> None:
        self.alive = False
        self.loop.remove_reader(self.ctrl.fileno())
        for fut in [*self.started.values(), self.ready]:
            if not fut.done():
                fut.set_exception(ZygoteDied("the sandbox's zygote stopped"))
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
            raise ZygoteDied(f"cannot reach the zygote: {e}") from e

    def kill(self) -> None:
        if self.alive:
            self._died()
        try:
            self.proc.kill()  # P0; its child, pid 1 of the namespace, follows, and with it every run
        except ProcessLookupError:
            pass
        self.ctrl.close()
