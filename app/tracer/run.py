"""Entry point of the tracer (provisional: full capture lands next)."""

from __future__ import annotations

import contextlib
import io

import torch

from app.config import TraceLimits
from app.models import Error, Trace


class Interrupted(BaseException):
    """Raised into the program (e.g. by the sandbox's timer) to stop it with a status other than "error"."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def run(source: str, limits: TraceLimits | None = None) -> Trace:
    limits = limits or TraceLimits()
    out = io.StringIO()
    trace = Trace(source=source, torch_version=torch.__version__)
    try:
        code = compile(source, "<program>", "exec")
        with contextlib.redirect_stdout(out):
            exec(code, {"__name__": "__main__"})
    except Interrupted as e:
        trace.status = e.status  # type: ignore[assignment]
        trace.error = Error(type=e.status, message=e.message)
    except MemoryError as e:
        trace.status = "memory"
        trace.error = Error(type="MemoryError", message=str(e))
    except Exception as e:
        trace.status = "error"
        trace.error = Error(type=type(e).__name__, message=str(e))
    trace.stdout = out.getvalue()[: limits.max_stdout_bytes]
    return trace
