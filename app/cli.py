"""The `gradwalk` command: trace programs from the shell, serve the web app, export graphs for slides."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .local_trace import Tracing


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def write_traces(sources: Iterable[str]) -> None:
    """Trace each program in this process and print its trace JSON document, one per line (JSON Lines)."""
    from .config import Settings
    from .tracer import trace_json

    limits = Settings().trace
    for source in sources:
        sys.stdout.flush()
        sys.stdout.buffer.write(trace_json(source, limits) + b"\n")
        sys.stdout.buffer.flush()


def trace_command(args: argparse.Namespace) -> int:
    """Print one trace JSON document per program (JSON Lines)."""
    write_traces(_read(path) for path in args.files)
    return 0


def serve_command(args: argparse.Namespace) -> int:
    """Run the web app under uvicorn (settings from GRADWALK_* env vars and .env)."""
    import copy

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from .connections import GuardedH11Protocol

    logging_config = copy.deepcopy(LOGGING_CONFIG)
    # One JSON line per request on stdout (app.middleware); uvicorn's own access log is off.
    logging_config["formatters"]["json_line"] = {"format": "%(message)s"}
    logging_config["handlers"]["gradwalk_access"] = {
        "class": "logging.StreamHandler",
        "formatter": "json_line",
        "stream": "ext://sys.stdout",
    }
    logging_config["loggers"]["gradwalk.access"] = {"handlers": ["gradwalk_access"], "level": "INFO", "propagate": False}
    logging_config["loggers"]["gradwalk"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    uvicorn.run(
        f"{__package__}.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        proxy_headers=False,  # the app finds the client behind its proxies itself (app.middleware.ClientAddress)
        http=GuardedH11Protocol,  # header and body deadlines, connections per client (app.connections)
        log_config=logging_config,
    )
    return 0


def export_command(args: argparse.Namespace) -> int:
    """Write the graphs of one or more programs, at one or more steps, as SVG, PNG or self-contained HTML."""
    import os
    import time

    from . import export_service
    from .local_trace import Tracing

    t0 = time.monotonic()
    if args.size and args.format == "html":
        print("gradwalk export: --size is for svg and png (an HTML file fills its window)", file=sys.stderr)
        return 2
    sources = [_read(f) for f in args.files]
    # A running export service (gradwalk export-service) has torch and Chromium ready: it does the work.
    options = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
    options["files"] = [f if f == "-" else os.path.abspath(f) for f in args.files]
    if args.output:  # absolute, keeping the trailing / that asks for a folder
        options["output"] = os.path.abspath(args.output) + ("/" if args.output.endswith("/") else "")
    status = export_service.request(options, sources)
    if status is not None:
        return status
    # The programs start now, before this process loads pydantic and Chromium: they are the longest part.
    tracing = None if args.sandbox else Tracing(sources)
    try:
        return _export(args, sources, os.getcwd(), t0, tracing=tracing)
    finally:
        if tracing is not None:
            tracing.close()


def export_service_command(args: argparse.Namespace) -> int:
    """Keep a sandbox (torch loaded) and Chromium ready for `gradwalk export` until idle for --idle seconds."""
    from .export_service import serve

    return serve(args.idle)


def export_in(options: dict[str, Any], sources: list[str], cwd: str, traces: Any, browser: Any, blank: Any) -> int:
    """One export for the export service: the client's options, its programs' sources and folder, the
    service's `traces(sources)`, browser and page loaded ahead (export.Blank)."""
    import time

    args = argparse.Namespace(**options)
    args.step, args.size = list(args.step), tuple(args.size) if args.size else None
    return _export(args, sources, cwd, time.monotonic(), traces=traces, browser=browser, blank=blank, by=" by the export service")


def _export(
    args: argparse.Namespace,
    sources: list[str],
    cwd: str,
    t0: float,
    tracing: Tracing | None = None,
    traces: Any = None,
    browser: Any = None,
    blank: Any = None,
    by: str = "",
) -> int:
    import time
    from pathlib import Path

    from . import figures as batch
    from .config import Settings
    from .export import ExportError
    from .figures import Figures, Program, export_all
    from .models import Trace

    programs = [
        Program(name="graph" if f == "-" else Path(f).stem, source=source, folder=Path(cwd) if f == "-" else Path(f).parent)
        for f, source in zip(args.files, sources, strict=True)
    ]
    settings = Settings()
    ran = traces(sources) if traces is not None else batch.traces(sources, settings, args.sandbox, tracing)
    figures = Figures(format=args.format, steps=args.step, lang=args.lang, direction=args.direction, size=args.size)
    count = 0

    def report(path: Path, size: int, trace: Trace, note: str) -> None:
        nonlocal count
        count += 1
        notes = [note] if note else []
        if trace.status != "ok":
            notes.insert(0, f"the program did not finish ({trace.status}): drawn as far as it got")
        print(f"{path}: {size:,} bytes" + "".join(f"; {n}" for n in notes), file=sys.stderr)

    try:
        problems = export_all(
            programs, figures, Path(args.output) if args.output else None, settings, report, ran, browser, blank
        )
    except ExportError as e:
        print(f"gradwalk export: {e}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"gradwalk export: {problem}", file=sys.stderr)
    print(
        f"{count} figure{'s' if count != 1 else ''} from {len(programs)} program{'s' if len(programs) != 1 else ''} in {time.monotonic() - t0:.1f} s{by}",
        file=sys.stderr,
    )
    return 2 if problems and not count else 1 if problems else 0


def _steps(text: str) -> list[int | None]:
    """--step 5,12,-1 -> [5, 12, -1]"""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"steps are whole numbers separated by commas (5,12,-1), not {text!r}") from None


def _size(text: str) -> tuple[int, int]:
    """--size 1920x1080 -> (1920, 1080)"""
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and 0 < int(width) <= 16_384 and 0 < int(height) <= 16_384):
        raise argparse.ArgumentTypeError(f"a size is WIDTHxHEIGHT in pixels (1920x1080), not {text!r}")
    return int(width), int(height)


def build_parser() -> argparse.ArgumentParser:
    from .export import DIRECTIONS
    from .i18n import LANGS

    parser = argparse.ArgumentParser(prog="gradwalk", description="Watch PyTorch autograd run.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("trace", help="print the trace JSON of each program, one per line")
    p.add_argument("files", nargs="+", metavar="FILE.py", help="program files; - reads stdin")
    p.set_defaults(func=trace_command)
    p = commands.add_parser("serve", help="serve the web app and its API with uvicorn")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes, each with its own sandbox pool (default: 1)")
    p.set_defaults(func=serve_command)
    p = commands.add_parser("export", help="write programs' graphs as SVG, PNG (2x) or self-contained HTML players")
    p.add_argument(
        "files", nargs="+", metavar="FILE.py", help="program files (one tracing process and one browser for all); - reads stdin"
    )
    p.add_argument("--format", choices=["svg", "png", "html"], default="svg", help="output format (default: svg)")
    p.add_argument(
        "--step",
        type=_steps,
        default=[None],
        help="steps to draw, comma-separated: 5,12,-1 (default: the last; negative counts from the end)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="the file, for one figure; else a folder for FILE.<format> (FILE-<step>.<format> for several steps) (default: beside each FILE)",
    )
    p.add_argument("--lang", choices=LANGS, default="en", help="language of the captions and controls (default: en)")
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="run the programs in the web service's sandbox (time and memory limits, no files or network): for programs you did not write",
    )
    p.add_argument(
        "--direction",
        choices=DIRECTIONS,
        default="auto",
        help="layout: top to bottom, left to right, or auto: the one whose shape is closest to the figure's (16:9, or --size)",
    )
    p.add_argument(
        "--size", type=_size, default=None, metavar="WxH", help="svg/png: fit the graph to WIDTHxHEIGHT px, a slide's 1920x1080"
    )
    p.set_defaults(func=export_command)
    p = commands.add_parser(
        "export-service", help="keep torch and Chromium ready for `gradwalk export` (a warm export: sandboxed, ~0.3 s a figure)"
    )
    p.add_argument(
        "--idle", type=float, default=1800, metavar="SECONDS", help="stop after this long without an export (default: 1800)"
    )
    p.set_defaults(func=export_service_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
