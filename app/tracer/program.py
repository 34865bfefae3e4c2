"""The program as the tracer runs it: the file name it is compiled under, and which of its lines is running.

Every frame of the program's own code has `PROGRAM` as its file name (names.instrument compiles it
so), which is how the tracer, the failures it reports and the sandbox's deadlines find the line.
"""

from __future__ import annotations

import linecache
import sys
from types import FrameType, TracebackType

PROGRAM = "<program>"


def remember_source(source: str) -> None:
    """Let `inspect` find the program's source by its file name, as for a file on disk: torch.jit.script
    compiles a function from its source text, and tracebacks and warnings show lines from it."""
    linecache.cache[PROGRAM] = (len(source), None, source.splitlines(keepends=True), PROGRAM)


def frame_line(frame: FrameType | None) -> int | None:
    """The line of the innermost program frame at or above `frame` (None outside the program)."""
    while frame is not None:
        if frame.f_code.co_filename == PROGRAM:
            return frame.f_lineno
        frame = frame.f_back
    return None


def running_line(depth: int = 1) -> int | None:
    """The program line running now: the innermost program frame at or above `sys._getframe(depth)`
    as the caller would count it (1: the caller's caller)."""
    frame: FrameType | None = sys._getframe(depth)
    while frame is not None:  # frame_line's loop, inline: this runs once per operation of the program
        if frame.f_code.co_filename == PROGRAM:
            return frame.f_lineno
        frame = frame.f_back
    return None


def traceback_frames(e: BaseException) -> list[tuple[int | None, str]]:
    """(line, function name) of the program's own frames in `e`'s traceback, outermost first.

    What traceback.extract_tb gives for them, without its cost: it also finds every frame's column
    positions, torch's frames too, by scanning each code object's position table.
    """
    frames: list[tuple[int | None, str]] = []
    tb: TracebackType | None = e.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == PROGRAM:
            frames.append((tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return frames


def raised_line(e: BaseException) -> int | None:
    """The program line `e` was raised at, or passed through last (None if it never ran program code)."""
    frames = traceback_frames(e)
    return frames[-1][0] if frames else None
