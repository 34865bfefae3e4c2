"""The warm export: `gradwalk export-service` keeps torch loaded and Chromium open, and `gradwalk export`
hands its work to it while it runs, like a language server (a cold export spends seconds of CPU
importing torch and starting a browser, more than 1.5 s on any 2-core machine).

The service runs every program in the web service's sandbox (its zygote has torch loaded: a run is a
fork), so a warm export of anyone's program is as safe as `--sandbox`, and draws in one Chromium kept
open. It listens on a Unix socket in a folder only its user can enter (SOCKET); one export at a time,
each one JSON line: the client's arguments (paths made absolute), the programs' sources and its working
folder; back come the CLI's own lines and its exit status. It stops after `idle_s` without an export,
on Ctrl-C or SIGTERM, or when its socket is taken away. Never imports torch (the zygote does).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_RUNTIME = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
SOCKET = Path(_RUNTIME) / "gradwalk" / "export.sock"
IDLE_S = 1800.0  # an idle service stops after half an hour
CONNECT_TIMEOUT_S = 0.2  # a socket that does not answer at once: the export runs cold
MAX_REQUEST_BYTES = 64 * 1024 * 1024


def request(options: dict[str, Any], sources: list[str]) -> int | None:
    """Run the export `options` (the CLI's arguments, paths absolute) in the service, printing its lines to
    stderr: its exit status, or None when no service answers (the caller exports cold)."""
    import sys

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(CONNECT_TIMEOUT_S)
    try:
        conn.connect(str(SOCKET))
    except OSError:
        conn.close()
        return None
    conn.settimeout(None)
    with conn, conn.makefile("rwb") as stream:
        stream.write(json.dumps({"options": options, "sources": sources, "cwd": os.getcwd()}).encode() + b"\n")
        stream.flush()
        for line in stream:
            message = json.loads(line)
            if "status" in message:
                return int(message["status"])
            print(message["line"], file=sys.stderr, flush=True)
    return None  # the service went away mid-export: run it cold


class _Lines(io.TextIOBase):
    """stderr for one export: each line the CLI prints goes to the client as it is printed."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.pending = stream, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.stream.write(json.dumps({"line": line}).encode() + b"\n")
        self.stream.flush()
        return len(text)


def serve(idle_s: float = IDLE_S) -> int:
    """Run the service until it has been idle `idle_s`: one sandbox and one Chromium for every export."""
    from . import export
    from .cli import export_in
    from .config import Settings
    from .sandbox import SandboxPool

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # as Ctrl-C: the socket is taken away, the sandbox and Chromium closed

    signal.signal(signal.SIGTERM, stop)
    settings = Settings()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="gradwalk-sandbox", daemon=True).start()
    pool = SandboxPool(settings, warm_up_examples=False)
    asyncio.run_coroutine_threadsafe(pool.start(), loop).result()

    def traces(sources: list[str]) -> Iterator[Any]:
        runs = [asyncio.run_coroutine_threadsafe(pool.trace_document(s), loop) for s in sources]
        return (run.result().trace() for run in runs)

    SOCKET.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(SOCKET.parent, 0o700)  # only its user can reach the socket
    with contextlib.suppress(FileNotFoundError):
        SOCKET.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(SOCKET))
    server.listen(8)
    server.settimeout(idle_s)
    print(f"gradwalk export-service: listening on {SOCKET} (stops after {idle_s:.0f} s idle)", flush=True)
    try:
        with export.browser_session() as chromium:
            blank = export.Blank(chromium)  # the next export's page, loaded while the service waits for it
            while SOCKET.exists():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    break
                with conn, conn.makefile("rwb") as stream:
                    _answer(stream, lambda options, sources, cwd, b=blank: export_in(options, sources, cwd, traces, chromium, b))
                if blank.page.is_closed():  # drawn on (or did not fit): the next one
                    blank = export.Blank(chromium)
            blank.close()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            SOCKET.unlink()
        asyncio.run_coroutine_threadsafe(pool.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
    return 0


def _answer(stream: Any, run: Any) -> None:
    """One export: its request, its lines as printed, its exit status."""
    line = stream.readline(MAX_REQUEST_BYTES)
    try:
        message = json.loads(line)
        options, sources, cwd = dict(message["options"]), list(message["sources"]), str(message["cwd"])
    except (ValueError, KeyError, TypeError):
        stream.write(json.dumps({"line": "gradwalk export-service: not an export request"}).encode() + b"\n")
        stream.write(json.dumps({"status": 2}).encode() + b"\n")
        return
    lines = _Lines(stream)
    try:
        with contextlib.redirect_stderr(lines):
            status = run(options, sources, cwd)
    except BrokenPipeError:  # the client left (Ctrl-C): nobody to answer
        return
    except Exception as e:  # noqa: BLE001 - said to the client; the service keeps serving
        lines.write(f"gradwalk export-service: {type(e).__name__}: {e}\n")
        status = 2
    stream.write(json.dumps({"status": status}).encode() + b"\n")
    stream.flush()
