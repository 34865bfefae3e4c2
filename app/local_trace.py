"""The teacher's own programs traced as `gradwalk trace` traces them: in one child Python process, no sandbox.

`gradwalk export` runs the files named on its own command line, with its user's rights, as `python a.py`
or `gradwalk trace a.py` would: the sandbox (a zygote, a hardened child per run, a checking process)
guards a server against strangers' programs and costs an export about a second of start-up. The child
is a plain `python` that imports the tracer (and torch); this process does not, so it starts Chromium
meanwhile. Same tracer, same limits (Settings.trace), same document; no time limit (Ctrl-C stops it).
Programs you did not write (students' files) go through the sandbox: `gradwalk export --sandbox`.
Imports nothing heavy, so the child starts before the CLI has loaded pydantic.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator

# The child: every source (a JSON list on stdin), traced in order, one trace JSON document per line on stdout.
# It imports this package by the name it has here: `app` in the repository, `gradwalk` once installed.
_PACKAGE = __name__.rpartition(".")[0]
_CHILD = f"import json, sys\nfrom {_PACKAGE}.cli import write_traces\nwrite_traces(json.load(sys.stdin))\n"


class Tracing:
    """Programs being traced in a child process, started at once; `documents()` yields each trace JSON in order."""

    def __init__(self, sources: list[str]) -> None:
        self.count = len(sources)
        self.child = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        data = json.dumps(sources).encode("utf-8")
        assert self.child.stdin is not None
        # Written by a thread: a big batch could fill the pipe before the child reads it.
        self._writer = threading.Thread(target=self._write, args=(data,), name="gradwalk-sources", daemon=True)
        self._writer.start()

    def _write(self, data: bytes) -> None:
        assert self.child.stdin is not None
        try:
            self.child.stdin.write(data)
            self.child.stdin.close()
        except BrokenPipeError:  # the child is gone: documents() says why
            pass

    def documents(self) -> Iterator[bytes]:
        """Each program's trace JSON, in order; RuntimeError if the child stops before the last."""
        assert self.child.stdout is not None
        try:
            for _ in range(self.count):
                line = self.child.stdout.readline()
                if not line:
                    # Its traceback, if any, went to our stderr (the child shares it).
                    raise RuntimeError(f"the tracing process stopped (exit status {self.child.wait()})")
                yield line
        finally:
            self.close()

    def close(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
        self.child.wait()
        if self.child.stdout is not None:
            self.child.stdout.close()
