"""The program's stdout and stderr while it runs: stdout's text is kept (up to max_stdout_bytes), and
every line written to either becomes a print event of the program's story."""

from __future__ import annotations

import codecs
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .graph import Graph
from .program import running_line


class Output:
    def __init__(self, graph: Graph, max_stdout_bytes: int) -> None:
        self.graph = graph
        self.max_stdout_bytes = max_stdout_bytes
        self._stdout: list[str] = []
        self._stdout_bytes = 0

    @property
    def stdout(self) -> str:
        """What the program wrote to stdout, as kept."""
        return "".join(self._stdout)

    @contextmanager
    def redirected(self) -> Iterator[None]:
        """sys.stdout and sys.stderr write here for the duration."""
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Stream(self, "stdout"), _Stream(self, "stderr")
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved

    def write(self, text: str, stream: str) -> None:
        """`text` written by the program to `stream` ("stdout" or "stderr")."""
        if stream == "stdout":
            kept = self._keep(text)
            if kept is None:
                return
            text = kept
        events = self.graph.events
        last = events[-1] if events else None
        category = None if stream == "stdout" else stream
        if last is not None and last["kind"] == "print" and last["category"] == category and not last["text"].endswith("\n"):
            last["text"] += text
        else:  # depth 3: _Stream.write's caller, the program
            self.graph.event(kind="print", line=running_line(3), text=text, category=category)

    def _keep(self, text: str) -> str | None:
        """What of `text` fits in max_stdout_bytes, kept; None when nothing does (the trace says so)."""
        room = self.max_stdout_bytes - self._stdout_bytes
        notice = f"output was cut at {self.max_stdout_bytes} bytes (max_stdout_bytes)"
        if room <= 0:
            self.graph.truncate(notice)
            return None
        data = text.encode("utf-8", "replace")
        if len(data) > room:
            text = data[:room].decode("utf-8", "ignore")
            self.graph.truncate(notice)
        self._stdout.append(text)
        self._stdout_bytes += len(text.encode("utf-8", "replace"))
        return text


class _Stream:
    """Stands in for sys.stdout or sys.stderr."""

    def __init__(self, output: Output, stream: str) -> None:
        self.output, self.stream = output, stream
        self.encoding = "utf-8"
        self.buffer = _Bytes(self)  # sys.stdout.buffer.write(b"..."): the same text, as UTF-8

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.output.write(text, self.stream)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class _Bytes:
    """Stands in for sys.stdout.buffer: bytes decoded as UTF-8 (a character split between two writes
    is kept for the next), then written as text."""

    def __init__(self, text: _Stream) -> None:
        self.text = text
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"a bytes-like object is required, not '{type(data).__name__}'")
        text = self._decoder.decode(bytes(data))
        if text:
            self.text.write(text)
        return len(data)

    def flush(self) -> None:
        pass
