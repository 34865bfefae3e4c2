"""The `gradwalk` command: trace programs from the shell (and, later, serve and export)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def trace(args: argparse.Namespace) -> int:
    """Print one trace JSON document per program (JSON Lines)."""
    from app.config import Settings
    from app.tracer import run

    limits = Settings().trace_limits()
    for path in args.files:
        sys.stdout.write(run(_read(path), limits).model_dump_json() + "\n")
        sys.stdout.flush()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradwalk", description="Watch PyTorch autograd run.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("trace", help="print the trace JSON of each program, one per line")
    p.add_argument("files", nargs="+", metavar="FILE.py", help="program files; - reads stdin")
    p.set_defaults(func=trace)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
