"""Teachers' figures in batch: `gradwalk export a.py b.py --format svg --step 5,12,-1 -o figures/`.

One tracing process (app.local_trace; or, with --sandbox, one sandbox) and one Chromium for the whole
batch: the programs are traced while the browser starts and the font subsetter loads, and each
program's trace is loaded into the offline page once and drawn at every step asked. The fixed costs
of an export are paid once, and side by side. Never imports torch.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import export
from .config import Settings
from .local_trace import Tracing
from .models import Trace

# The shape "auto" aims at when no --size says: a 16:9 slide.
SLIDE_ASPECT = 16 / 9


@dataclass(frozen=True)
class Program:
    name: str  # what its figures are called after: the file's stem ("graph" for stdin)
    source: str
    folder: Path  # where its figures go when no -o says


@dataclass(frozen=True)
class Figures:
    """What to draw of every program: the format, the steps (None: the last), language, direction, size."""

    format: str
    steps: list[int | None]
    lang: str = "en"
    direction: str = "auto"
    size: tuple[int, int] | None = None  # (width, height) px: fitted to it (a slide); else the graph's own

    @property
    def aspect(self) -> float:
        return self.size[0] / self.size[1] if self.size else SLIDE_ASPECT


def traces(sources: list[str], settings: Settings, sandbox: bool = False, started: Tracing | None = None) -> Iterator[Trace]:
    """Each program's trace, in order: from one tracing process (`started`, or started now), or with
    `sandbox` from one sandbox started once; either way running while the caller starts Chromium."""
    if not sandbox:
        return _checked(started or Tracing(sources))
    return _sandboxed(sources, settings)


def _checked(tracing: Tracing) -> Iterator[Trace]:
    """The tracing process's documents, checked as the sandbox's are (the document the page reads, whatever was printed)."""
    try:
        for document in tracing.documents():
            yield Trace.model_validate_json(document)
    except RuntimeError as e:
        raise export.ExportError(str(e)) from e


def _sandboxed(sources: list[str], settings: Settings) -> Iterator[Trace]:
    """Each program's trace from one sandbox started once, in a thread; the programs run as its slots allow."""
    results: queue.Queue[tuple[int, Trace | BaseException]] = queue.Queue()

    async def run() -> None:
        from .sandbox import SandboxPool

        pool = SandboxPool(settings, warm_up_examples=False)
        try:
            await pool.start()
            runs = [asyncio.ensure_future(pool.trace_document(source)) for source in sources]
            for i, done in enumerate(runs):
                results.put((i, (await done).trace()))
        except BaseException as e:  # noqa: BLE001 - handed to the caller, raised there
            results.put((-1, e))
        finally:
            await pool.close()

    # The thread lives as long as the pool: the zygote takes its parent thread's end for the parent's death.
    thread = threading.Thread(target=asyncio.run, args=(run(),), name="gradwalk-sandbox", daemon=True)
    thread.start()  # now, not at the first next(): the sandbox starts while the caller starts Chromium

    def each() -> Iterator[Trace]:
        try:
            for _ in sources:
                _, got = results.get()
                if isinstance(got, BaseException):
                    raise got
                yield got
        finally:
            thread.join()

    return each()


def path_for(program: Program, figures: Figures, out: Path | None, step: int | str, single: bool) -> Path:
    """Where a figure goes: `out` itself for a single figure that names a file; else a file called after the
    program (and the step, when several are asked) in `out`, or beside the program."""
    if single and out is not None and not out.is_dir() and not str(out).endswith("/"):
        return out
    folder = out if out is not None else program.folder
    return folder / (f"{program.name}.{figures.format}" if len(figures.steps) == 1 else f"{program.name}-{step}.{figures.format}")


def export_all(
    programs: list[Program],
    figures: Figures,
    out: Path | None,
    settings: Settings,
    report: Callable[[Path, int, Trace, str], None],
    ran: Iterator[Trace] | None = None,
    browser: Any = None,
    blank: export.Blank | None = None,
) -> list[str]:
    """Write every figure of every program; `report(path, bytes, trace, note)` after each. Returns the problems
    (a step out of range, a program that failed to draw): the other figures are still written. The traces
    come from `ran` (the CLI's, started first; the export service's) or a tracing process started now, and
    are drawn in `browser` (the service's, with its `blank` page for the first) or a Chromium started now."""
    single = len(programs) == 1 and len(figures.steps) == 1
    if not single:
        _refuse_clashes(programs, out)
    if out is not None and not single:
        out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    if ran is None:
        ran = traces([p.source for p in programs], settings)
    if figures.format == "html":
        for program, trace in zip(programs, ran, strict=True):
            for step in figures.steps:  # the file opens there; its steps are counted in the page, so named as asked
                data = export.html(trace, step, figures.lang, figures.direction).encode("utf-8")
                report(
                    _write(path_for(program, figures, out, "last" if step is None else step, single), data), len(data), trace, ""
                )
        return problems
    with export.browser_session(browser) as chromium:  # started while the programs run
        for program, trace in zip(programs, ran, strict=True):
            try:
                with export.Drawing(chromium, trace, figures.lang, figures.direction, figures.aspect, blank) as drawing:
                    for asked in figures.steps:
                        try:
                            step = drawing.step(asked)
                        except export.ExportError as e:
                            problems.append(f"{program.name}: {e}")
                            continue
                        path = path_for(program, figures, out, step, single)
                        note = ""
                        if figures.format == "svg":
                            data = drawing.svg(step, figures.size).encode("utf-8")
                        else:
                            data, scale = drawing.png(step, figures.size)
                            if scale < export.PNG_SCALE and figures.size is None:
                                note = f"too big for a {export.PNG_SCALE}x PNG: drawn at {scale:.2f}x (SVG keeps every detail)"
                        report(_write(path, data), len(data), trace, note)
            except export.ExportError as e:
                problems.append(f"{program.name}: {e}")
            blank = None  # taken by the first drawing (or closed by it); one left unused stays its owner's
    return problems


def _refuse_clashes(programs: list[Program], out: Path | None) -> None:
    """Two programs whose figures would have the same name (a/x.py and b/x.py into one folder): said
    before anything runs, rather than one overwriting the other."""
    seen: dict[tuple[Path, str], int] = {}
    for program in programs:
        key = (out if out is not None else program.folder, program.name)
        seen[key] = seen.get(key, 0) + 1
    clashes = sorted(name for (_, name), n in seen.items() if n > 1)
    if clashes:
        raise export.ExportError(
            f"several programs are called {', '.join(clashes)}: their figures would overwrite each other (export them to different folders)"
        )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
