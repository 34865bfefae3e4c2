"""The `gradwalk` command: trace programs from the shell, serve the web app, export graphs for slides."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def trace_command(args: argparse.Namespace) -> int:
    """Print one trace JSON document per program (JSON Lines)."""
    from .config import Settings
    from .tracer import trace_json

    limits = Settings().trace
    for path in args.files:
        sys.stdout.flush()
        sys.stdout.buffer.write(trace_json(_read(path), limits) + b"\n")
        sys.stdout.buffer.flush()
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
    """Run one program in the sandbox and write its graph as SVG, PNG or a self-contained HTML file."""
    import time

    from . import export as exporter
    from .config import Settings
    from .sandbox import trace_in_sandbox

    t0 = time.monotonic()
    trace = trace_in_sandbox(_read(args.file), Settings())
    t1 = time.monotonic()
    if trace.status != "ok":
        print(f"gradwalk export: the program did not finish ({trace.status}); exporting what it built", file=sys.stderr)
    try:
        if args.format == "html":
            data: bytes = exporter.html(trace, args.step, args.lang, args.direction).encode("utf-8")
        elif args.format == "svg":
            data = exporter.svg(trace, args.step, args.lang, args.direction).encode("utf-8")
        else:
            data, scale = exporter.png_scaled(trace, args.step, args.lang, args.direction)
            if scale < exporter.PNG_SCALE:
                print(
                    f"gradwalk export: the graph is too big for a {exporter.PNG_SCALE}x PNG; drawn at {scale:.2f}x, the largest Chromium can capture (SVG keeps every detail)",
                    file=sys.stderr,
                )
    except exporter.ExportError as e:
        print(f"gradwalk export: {e}", file=sys.stderr)
        return 2
    out = args.output or f"{args.file.rsplit('.', 1)[0] if args.file != '-' else 'graph'}.{args.format}"
    with open(out, "wb") as f:
        f.write(data)
    print(f"{out}: {len(data):,} bytes (sandbox {t1 - t0:.1f} s, render {time.monotonic() - t1:.1f} s)", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
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
    p = commands.add_parser("export", help="write a program's graph as SVG, PNG (2x) or a self-contained HTML player")
    p.add_argument("file", metavar="FILE.py", help="program file; - reads stdin")
    p.add_argument("--format", choices=["svg", "png", "html"], default="svg", help="output format (default: svg)")
    p.add_argument("--step", type=int, default=None, help="step to show (default: the last; negative counts from the end)")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: FILE.<format>)")
    p.add_argument("--lang", choices=["en", "zh"], default="en", help="language of the captions and controls (default: en)")
    p.add_argument(
        "--direction",
        choices=["auto", "TB", "LR"],
        default="auto",
        help="layout: top to bottom, left to right, or auto as the page picks for a 1280x800 window (default: auto)",
    )
    p.set_defaults(func=export_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
