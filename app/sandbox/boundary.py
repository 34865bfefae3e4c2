"""The trust boundary: whatever a sandbox child sends back becomes a checked, canonical trace document.

A child's result is hostile: a program owns its result pipe and may write any JSON there. Here it
is parsed, held to the same limits the tracer keeps while it builds a trace (nodes, events, steps,
stdout, bytes), validated as a `Trace` with the program's own source, and written back out by the
model itself, so that what is stored, returned and embedded in pages is only what the model says
a trace is. The characters `<`, `>`, `&` and `'` are written as JSON escapes: the same document,
which a page can carry inside a `<script>` element as it is, never parsing it again.

Big results are checked in a worker process (`Boundary`), never on the web server's event loop:
validating 30 MB of JSON takes a second of CPU. Small ones (nearly all) are checked in place,
which costs less than the hand-over.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import signal
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from ..config import SandboxSettings, TraceSettings
from ..models import Error, Status, Trace
from .policy import EXIT_HARDEN_FAILED, EXIT_NO_RESULT

log = logging.getLogger("gradwalk.sandbox")

INLINE_MAX_BYTES = 256 * 1024  # checked in place below this: a few ms (the seed programs' traces are 5-60 KB)
WORKER_TASKS = 50  # a worker process is replaced after this many big documents, so its memory does not stay grown
# Lists the tracer bounds, with the limit that bounds them (a pass's steps are bounded per pass).
COUNTED = {"nodes": "max_nodes", "events": "max_events", "passes": "max_events", "warnings": "max_events"}
STDOUT_EXPANSION = 6  # a lone surrogate in the output is written as the six characters \udXXX
# Escapes that keep a JSON document inert inside an HTML <script> element (as Jinja's tojson).
_HTML_SAFE = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"), (b"'", b"\\u0027"))


@dataclass(frozen=True)
class BoundaryLimits:
    """What a result may hold (the tracer's limits, the result size) and the run's limits, for messages:
    the settings' two sections as they are (a frozen pair, pickled to the worker with each big result)."""

    trace: TraceSettings
    sandbox: SandboxSettings


@dataclass(frozen=True)
class TraceDocument:
    """A checked trace as canonical, HTML-safe JSON bytes: what the API returns and the store saves."""

    json: bytes
    status: str
    # Where the request's time went, in ms (the pool fills it in; Server-Timing shows it): waiting for a
    # slot (`queue`), for a child (`start`), the program (`run`), the boundary's check (`check`).
    timing_ms: dict[str, float] = field(default_factory=dict, compare=False)

    def trace(self) -> Trace:
        """The document as the model (parses it: for callers that need the objects, not the web path)."""
        return Trace.model_validate_json(self.json)


def html_safe(json: bytes) -> bytes:
    for raw, escaped in _HTML_SAFE:
        json = json.replace(raw, escaped)
    return json


def status_trace(source: str, status: Status, message: str, type_: str | None = None) -> Trace:
    """A trace holding only a status and its reason: a run that left no trace of its own."""
    return Trace(source=source, status=status, error=Error(type=type_ or status, message=message))


def status_document(source: str, status: Status, message: str) -> TraceDocument:
    return TraceDocument(html_safe(status_trace(source, status, message).model_dump_json().encode()), status)


def memory_message(memory_mb: int) -> str:
    return f"The program used more than {memory_mb:,} MiB of memory (memory_mb), and was stopped."


def without_result(
    source: str, why: str, has_result: bool, report: dict[str, Any] | None, limits: BoundaryLimits
) -> TraceDocument | None:
    """A status document saying why a run left no result to check (from how its read and its process
    ended), or None when there is a result to `check`.

    `why` is how reading the result pipe ended: "eof", "too_big", "deadline" or "error"; `report` the
    zygote's account of the child's end (wait status, CPU seconds, peak RSS, whether its cgroup ran
    out of memory), or None when the child could not be reaped in time."""
    if why == "too_big":
        return status_document(source, "killed", f"The trace is larger than the {limits.sandbox.max_result_bytes:,} byte limit.")
    if why == "deadline":
        message = f"Time limit: the program ran longer than {limits.sandbox.timeout_s:g} s and did not stop when asked."
        return status_document(source, "timeout", message)
    if has_result:
        return None
    if report is None:
        return status_document(source, "killed", "The program stopped without producing a trace.")
    if report.get("oom"):  # its own memory cgroup ran out: the kernel stopped it, and only it
        return status_document(source, "memory", memory_message(limits.sandbox.memory_mb))
    status = report["status"]
    if os.WIFSIGNALED(status):
        return _signalled(source, os.WTERMSIG(status), why, report, limits)
    code = os.waitstatus_to_exitcode(status)
    if code == EXIT_HARDEN_FAILED:
        return status_document(source, "killed", "The sandbox could not prepare a safe place for the program.")
    if code not in (0, EXIT_NO_RESULT):
        message = (
            f"The program's process ended with exit status {code} before it sent its trace: the program called "
            "os._exit(), or a native library ended it. OpenMP (torch's thread pool) does that when it cannot start "
            f"the threads it wants; a run may have {limits.sandbox.max_processes} threads (max_processes)."
        )
        return status_document(source, "killed", message)
    message = "The program ended without producing a trace (it closed the sandbox's result channel or exited early)."
    return status_document(source, "killed", message)


def _signalled(source: str, sig: int, why: str, report: dict[str, Any], limits: BoundaryLimits) -> TraceDocument:
    cpu = f"Time limit: the program used more than {limits.sandbox.cpu_s} s of CPU time."
    if sig == signal.SIGKILL:  # ours (after its channel closed), the CPU rlimit's, or the OOM killer's
        if report.get("cpu_s", 0) >= limits.sandbox.cpu_s:
            return status_document(source, "timeout", cpu)
        if report.get("maxrss_kb", 0) * 1024 >= limits.sandbox.memory_mb * 1024 * 1024 // 2:  # no cgroup to ask
            return status_document(source, "memory", memory_message(limits.sandbox.memory_mb))
        if why == "eof":  # it closed its result channel and kept running: our SIGKILL
            return status_document(source, "killed", "The program closed the sandbox's result channel without producing a trace.")
        return status_document(source, "killed", "The program was stopped by the system.")
    if sig == signal.SIGSYS:
        return status_document(source, "killed", "The program made a system call that is not allowed in the sandbox.")
    if sig == signal.SIGXCPU:
        return status_document(source, "timeout", cpu)
    return status_document(source, "killed", f"The program crashed ({signal.Signals(sig).name}).")


def _over_limits(doc: object, source: str, limits: BoundaryLimits) -> str | None:
    """Why a parsed result cannot be a trace of `source` made under `limits`, or None."""
    if not isinstance(doc, dict) or doc.get("source") != source:
        return "The program's output was not a valid trace, so it was discarded."
    for key, limit_name in COUNTED.items():
        items = doc.get(key)
        limit = getattr(limits.trace, limit_name)
        if isinstance(items, list) and len(items) > limit:
            return _forged(f"{len(items):,} {key}, more than {limit_name} ({limit:,}) allows")
    for index, one in enumerate(doc.get("passes") or []):
        steps = one.get("steps") if isinstance(one, dict) else None
        if isinstance(steps, list) and len(steps) > limits.trace.max_nodes:
            return _forged(
                f"{len(steps):,} steps in backward pass {index}, more than max_nodes ({limits.trace.max_nodes:,}) allows"
            )
    stdout = doc.get("stdout")
    if isinstance(stdout, str) and len(stdout) > STDOUT_EXPANSION * limits.trace.max_stdout_bytes:
        return _forged(
            f"{len(stdout):,} characters of output, more than max_stdout_bytes ({limits.trace.max_stdout_bytes:,}) allows"
        )
    return None


def _forged(what: str) -> str:
    return f"The program's result has {what}: the tracer never makes that, so it was discarded."


def check(data: bytes, source: str, limits: BoundaryLimits) -> TraceDocument:
    """The child's result as a checked document, or a status-only one saying why it was refused.

    Runs in a worker process for big results: everything it takes and returns pickles."""
    try:
        parsed = orjson.loads(data)  # a fifth of the model's time: refuse the wrong ones early
    except orjson.JSONDecodeError:
        return status_document(source, "killed", "The program's output was not a valid trace, so it was discarded.")
    why = _over_limits(parsed, source, limits)
    del parsed
    if why is not None:
        return status_document(source, "killed", why)
    try:
        trace = Trace.model_validate_json(data)
    except (ValidationError, ValueError):
        return status_document(source, "killed", "The program's output was not a valid trace, so it was discarded.")
    if trace.status == "memory" and trace.error is not None and trace.error.type == "MemoryError" and not trace.error.message:
        trace.error.message = memory_message(limits.sandbox.memory_mb)  # Python's MemoryError says nothing
    canonical = html_safe(trace.model_dump_json().encode())
    if len(canonical) > limits.sandbox.max_result_bytes:  # defaults filled in: a forged result can swell
        return status_document(
            source, "killed", f"The trace is larger than the {limits.sandbox.max_result_bytes:,} byte limit (max_result_bytes)."
        )
    return TraceDocument(canonical, trace.status)


def check_file(given: str, written: str, source: str, limits: BoundaryLimits) -> str:
    """`check` from one file to another (the worker's side of Boundary.check); returns the status."""
    with open(given, "rb") as f:
        document = check(f.read(), source, limits)
    with open(written, "wb") as f:
        f.write(document.json)
    return document.status


def _write_all(fd: int, chunks: list[bytes]) -> None:
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]


def _read_all(fd: int) -> bytes:
    return os.pread(fd, os.fstat(fd).st_size, 0)


def _ready() -> None:
    """A first task for a fresh worker: by its end the worker has imported this module."""


def _worker_start() -> None:
    os.nice(10)  # behind the web server's own process when both want a core


class Boundary:
    """Checks results: small ones in place, big ones in a worker process off the event loop."""

    def __init__(self, limits: BoundaryLimits) -> None:
        self.limits = limits
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    def _worker(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),  # not fork: the server has threads
                initializer=_worker_start,
                max_tasks_per_child=WORKER_TASKS,
            )
        return self._executor

    def start(self) -> None:
        """Start the worker process and let it import what it needs (blocks for a second: call it
        from a thread). Starting it at the first big result would stall whoever waits for that."""
        self._worker().submit(_ready).result()

    async def check(self, result: bytes | list[bytes], source: str) -> TraceDocument:
        """`result`: the bytes the child sent, or the chunks they were read in (never joined here when big)."""
        chunks = [result] if isinstance(result, bytes) else result
        if sum(map(len, chunks)) <= INLINE_MAX_BYTES:
            return check(b"".join(chunks), source, self.limits)
        loop = asyncio.get_running_loop()
        # The result and the document go by memfd, not through the executor's pipes: pickling 30 MB
        # holds this process's GIL, and the event loop waits for it (0.1-0.3 s on a busy machine).
        given, written = os.memfd_create("gradwalk-result", os.MFD_CLOEXEC), os.memfd_create("gradwalk-checked", os.MFD_CLOEXEC)
        try:
            await asyncio.to_thread(_write_all, given, chunks)
            paths = (f"/proc/{os.getpid()}/fd/{given}", f"/proc/{os.getpid()}/fd/{written}")
            try:
                status = await loop.run_in_executor(self._worker(), check_file, *paths, source, self.limits)
            except OSError:  # /proc is not ours to open here: the data through the executor's pipes, then
                return await loop.run_in_executor(self._worker(), check, b"".join(chunks), source, self.limits)
            return TraceDocument(await asyncio.to_thread(_read_all, written), status)
        except concurrent.futures.BrokenExecutor:  # the worker died (out of memory?): a fresh one next time
            log.warning("the trust boundary's worker process died; starting another")
            self.close(wait=False)
            return status_document(source, "killed", "The program's result could not be checked, so it was discarded.")
        finally:
            os.close(given)
            os.close(written)

    def close(self, wait: bool = True) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)
