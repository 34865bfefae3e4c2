"""`make lint`'s size check: no Python module over 400 lines and no function over 60 (issue 10's
"modules under ~400 lines, functions under ~60"), so a file that grows past one idea is split when it
does, not found later. A function's lines run from its first decorator to its last line, docstring and
comments included; nested functions count in their parent too.

Usage: python scripts/check_sizes.py [--top N]   (prints what is over; --top lists the N longest)
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# Programs as students write them (their lines are part of the tests) and generated migrations.
SKIP = ("tests/programs/", "app/migrations/versions/", "app/examples/", "examples/")
ROOT = Path(__file__).resolve().parent.parent


def python_files() -> list[str]:
    """The tree's committed and new Python files, as git sees them."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(f for f in set(out.split()) if not f.startswith(SKIP) and (ROOT / f).exists())


def sizes(path: str) -> tuple[int, list[tuple[int, str]]]:
    """The module's line count, and (lines, 'path:line name') for each function in it."""
    source = (ROOT / path).read_text(encoding="utf-8")
    functions = []
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            last = node.end_lineno or node.lineno  # ast.parse always sets end_lineno
            functions.append((last - first + 1, f"{path}:{node.lineno} {node.name}"))
    return len(source.splitlines()), functions


def main() -> int:
    """Print what is over the limits; 1 if anything is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=0, help="also list the N longest modules and functions")
    args = parser.parse_args()
    modules, functions = [], []
    for path in python_files():
        lines, defs = sizes(path)
        modules.append((lines, path))
        functions += defs
    modules.sort(reverse=True)
    functions.sort(reverse=True)
    over = [f"{path}: {n} lines (module limit {MAX_MODULE_LINES})" for n, path in modules if n > MAX_MODULE_LINES]
    over += [f"{where}: {n} lines (function limit {MAX_FUNCTION_LINES})" for n, where in functions if n > MAX_FUNCTION_LINES]
    for n, what in (modules[: args.top] + functions[: args.top]) if args.top else []:
        print(f"{n:5d}  {what}")
    for line in over:
        print(line, file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
