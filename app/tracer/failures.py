"""How a run fails: the status an exception gives the trace, and its `error` as Python would print it.

A program's own exception is part of its trace (status "error", with type, message, line, the
program's frames and a plain-words hint), never an exception out of the tracer.
"""

from __future__ import annotations

import io
import re
import sys
from typing import Any

from ..models import Status
from . import doc
from .hints import hint_for
from .program import traceback_frames

_REPEATS_SHOWN = 3  # as Python's own tracebacks: the same frame thrice, then "[... repeated N more times]"
_FRAMES_SHOWN = 40  # at most, the first and last halves: a deep recursion's traceback stays readable


class Interrupted(BaseException):
    """Raised into the program (e.g. by the sandbox's timer) to stop it with a status other than "error"."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def outcome(e: BaseException) -> tuple[str, str | None] | None:
    """(status, message, None for the exception's own) of the exception that ended the program;
    None for sys.exit() with no error code, which ends a program as the end of its script does."""
    if isinstance(e, SystemExit):
        return None if e.code in (None, 0) else ("error", f"the program exited with sys.exit({shown(repr, e.code)})")
    if isinstance(e, Interrupted):
        return e.status, e.message
    if isinstance(e, MemoryError):
        return "memory", None
    # torch's allocator reports a refused allocation as a RuntimeError, not MemoryError
    if isinstance(e, RuntimeError) and "can't allocate memory" in shown(str, e):
        return "memory", None
    return "error", None  # KeyboardInterrupt, GeneratorExit...: still the program's own doing


def error(e: BaseException, line: int | None, source: str, message: str | None = None) -> dict[str, Any]:
    """The trace's `error` for `e`, raised at program line `line`."""
    text = doc.text(
        message or (shown(str, e.msg) if isinstance(e, SyntaxError) else shown(str, e) + suggestion(e)), doc.MESSAGE_CHARS
    )
    hint_id, hint = hint_for(text, source)
    tb = None
    if not isinstance(e, SyntaxError):
        tb = traceback_text(traceback_frames(e), source.splitlines()) or None
    return doc.error(type=doc.text(_NAME_OF(type(e))), message=text, line=line, hint=hint, hint_id=hint_id, traceback=tb)


_NAME_OF = type.__dict__["__name__"].__get__  # a class's own name, whatever its metaclass says


def shown(show: Any, obj: Any) -> str:
    """str(obj) or repr(obj) as Python's traceback shows it: one that raises, or returns no str, is
    "<exception str() failed>" (the program's own class decides what these do)."""
    try:
        text = show(obj)
    except Exception:  # noqa: BLE001 - whatever the program's __str__ raises
        return "<exception str() failed>"
    return str.__str__(text) if isinstance(text, str) else "<exception str() failed>"


_SUGGESTION = re.compile(r"\. (Did you mean: .*\?)$")


def suggestion(e: BaseException) -> str:
    """Python's own ". Did you mean: 'total'?" for a misspelt name or attribute, or "".

    The interpreter adds it only where it prints a traceback (not in str(e)), from the frames' names:
    so print one, into a string, while the program's frames are still alive."""
    if not isinstance(e, (NameError, AttributeError, ImportError)):
        return ""
    printed, stderr = io.StringIO(), sys.stderr
    sys.stderr = printed
    try:
        sys.__excepthook__(type(e), e, e.__traceback__)
    except Exception:  # noqa: BLE001 - a suggestion is a nicety: never a reason for the trace to fail
        return ""
    finally:
        sys.stderr = stderr
    last = printed.getvalue().rstrip("\n").rpartition("\n")[2]
    found = _SUGGESTION.search(last)
    return f". {found[1]}" if found else ""


def traceback_text(frames: list[tuple[int | None, str]], source_lines: list[str]) -> str:
    """The program's frames as Python prints them (`  line 3, in f` and the source line), repeats folded."""
    lines: list[str] = []  # one per frame shown, or a note
    i = 0
    while i < len(frames):
        j = i
        while j + 1 < len(frames) and frames[j + 1] == frames[i]:
            j += 1
        repeats = j - i + 1
        for lineno, name in frames[i : i + min(repeats, _REPEATS_SHOWN)]:
            text = source_lines[lineno - 1].strip() if lineno and lineno <= len(source_lines) else ""
            lines.append(f"  line {lineno}, in {name}\n    {text}\n")
        if repeats > _REPEATS_SHOWN:
            lines.append(f"  [Previous line repeated {repeats - _REPEATS_SHOWN} more times]\n")
        i = j + 1
    if len(lines) > _FRAMES_SHOWN:
        half = _FRAMES_SHOWN // 2
        lines[half:-half] = [f"  [... {len(lines) - 2 * half} more frames ...]\n"]
    return "".join(lines)
