"""gradwalk in a notebook: `%%gradwalk` cells, `gradwalk.show()` and `gradwalk.trace()`.

A cell runs in the kernel itself, under the tracer, in the kernel's own namespace: it is the
user's own kernel, so there is no sandbox, and the names the cell binds stay, as a normal cell's
would. The player under the cell is the offline export (app/export.py: inline script, styles, the
fonts its text needs and the trace, under a CSP that allows nothing else) inside an iframe's
srcdoc, sandboxed to scripts only: nothing is fetched (no server, no network, no CDN), the page's
styles and keys stay apart from the notebook's, and the player is part of the saved output.

A notebook's outputs run only when the notebook is trusted (JupyterLab and Notebook 7 sanitize
an untrusted notebook's HTML, iframes included): the output then shows a note saying so instead,
in the same language.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import locale
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from . import i18n
from .config import Settings
from .models import Trace

PLAYER_HEIGHT_PX = 560


def notebook_lang() -> str:
    """zh when the kernel's locale is Chinese (LC_ALL, LC_MESSAGES, LANG, LANGUAGE, then Python's), else en."""
    names = [os.environ.get(k, "") for k in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")]
    names.append(locale.getlocale()[0] or "")
    first = next((n for n in names if n and n not in ("C", "POSIX") and not n.startswith("C.")), "")
    return "zh" if first.lower().startswith("zh") else "en"


def _run_bytes(source: str, namespace: dict[str, Any] | None) -> bytes:
    from .tracer import trace_json

    return trace_json(source, Settings().trace, namespace=namespace)


def run(source: str, namespace: dict[str, Any] | None = None) -> Trace:
    """Trace `source` in this process (no sandbox), in `namespace` if given; validated as the sandbox's parent does."""
    return Trace.model_validate_json(_run_bytes(source, namespace))


def trace(source: str | os.PathLike[str], namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """The trace document of a program (its source, or a .py file's path) as a dict: the JSON the API returns."""
    return json.loads(_run_bytes(_read(source), namespace))


def check(source: str | os.PathLike[str], overrides: dict[str, Any] | None = None, budget_s: float = 30.0) -> dict[str, Any]:
    """The trace document with its numeric check (`check`: each pass's leaf gradients by autograd and
    by nudging, app/tracer/check.py), in this process, within `budget_s`; `overrides` as POST /api/trace's."""
    from .tracer import check_json

    return json.loads(check_json(_read(source), Settings().trace, overrides=overrides or None, budget_s=budget_s))


def _read(source_or_path: str | os.PathLike[str]) -> str:
    if isinstance(source_or_path, os.PathLike) or (
        "\n" not in source_or_path and source_or_path.endswith(".py") and Path(source_or_path).is_file()
    ):
        return Path(source_or_path).read_text(encoding="utf-8")
    return str(source_or_path)


def player_html(trace: Trace, step: int | None = None, lang: str = "en", direction: str = "auto") -> str:
    """The notebook output: the offline player in a sandboxed iframe, and the note an untrusted notebook shows."""
    from . import export

    document = export.html(trace, step, lang, direction)
    # The whole file as one attribute value: & and " are all that must be escaped inside "...".
    srcdoc = document.replace("&", "&amp;").replace('"', "&quot;")
    box = "gradwalk-" + hashlib.sha256(document.encode()).hexdigest()[:12]  # the same cell gives the same output
    title = i18n.text(lang, "notebook.title")
    return (
        f'<div id="{box}" class="gradwalk-output">'
        # A trusted output keeps its <style> and so hides the note; a sanitized one loses the style and the iframe.
        f"<style>#{box} .gradwalk-untrusted{{display:none}}</style>"
        f'<iframe title="{title}" sandbox="allow-scripts" '
        f'style="width:100%;height:{PLAYER_HEIGHT_PX}px;border:1px solid #d0d7de;border-radius:4px" '
        f'srcdoc="{srcdoc}"></iframe>'
        f'<p class="gradwalk-untrusted">{i18n.text(lang, "notebook.untrusted")}</p>'
        "</div>"
    )


def _summary(trace: Trace) -> str:
    steps = sum(len(p.steps) for p in trace.passes)
    return f"<gradwalk: {len(trace.nodes)} nodes, {len(trace.passes)} backward passes ({steps} steps), status {trace.status}>"


def display(trace: Trace, step: int | None = None, lang: str | None = None, direction: str = "auto") -> None:
    """Show the player of `trace` under the running cell."""
    from IPython.display import display as ipython_display

    html = player_html(trace, step, lang or notebook_lang(), direction)
    ipython_display({"text/html": html, "text/plain": _summary(trace)}, raw=True)


def show(
    source_or_path: str | os.PathLike[str],
    *,
    lang: str | None = None,
    step: int | None = None,
    direction: str = "auto",
    namespace: dict[str, Any] | None = None,
) -> None:
    """Trace a program (its source, or a .py file's path) in this process and show its player."""
    t = run(_read(source_or_path), namespace)
    _echo(t)
    display(t, step, lang, direction)


def _last_expression_line(source: str) -> int | None:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    return body[-1].lineno if body and isinstance(body[-1], ast.Expr) else None


def _echo(trace: Trace) -> None:
    """What a normal cell would show (the tracer captured it): the prints, the last line's value, the error."""
    if trace.stdout:
        sys.stdout.write(trace.stdout)
    last = _last_expression_line(trace.source)
    shown = [e.text for e in trace.events if e.kind == "display" and e.line == last and e.text is not None]
    if shown and trace.error is None:
        sys.stdout.write(shown[-1] + "\n")
    sys.stdout.flush()
    if trace.error is not None:
        where = f" (line {trace.error.line})" if trace.error.line else ""
        text = f"{trace.error.type}: {trace.error.message}{where}\n"
        if trace.error.hint:
            text += trace.error.hint + "\n"
        sys.stderr.write(text)
        sys.stderr.flush()


def magic_parser() -> argparse.ArgumentParser:
    from .export import DIRECTIONS

    p = argparse.ArgumentParser(prog="%%gradwalk", add_help=False, exit_on_error=False)
    p.add_argument("--lang", choices=i18n.LANGS, default=None, help="player language (default: the notebook's locale)")
    p.add_argument("--step", type=int, default=None, help="step to open at (default: the last; negative counts from the end)")
    p.add_argument("--direction", choices=DIRECTIONS, default="auto", help="graph layout (default: auto)")
    return p


def cell_magic(line: str, cell: str, namespace: dict[str, Any]) -> None:
    """`%%gradwalk [--lang en|zh] [--step N] [--direction auto|TB|LR]`: run the cell traced, show its player."""
    try:
        args = magic_parser().parse_args(shlex.split(line))
    except (argparse.ArgumentError, SystemExit, ValueError) as e:
        raise UsageError(f"%%gradwalk {line}: {e}; usage: {magic_parser().format_usage().strip()}") from None
    show(cell, lang=args.lang, step=args.step, direction=args.direction, namespace=namespace)


class UsageError(ValueError):
    """A %%gradwalk line the magic cannot read."""


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext gradwalk`: registers the `%%gradwalk` cell magic."""

    from IPython.core.error import UsageError as IPythonUsageError

    def gradwalk(line: str, cell: str) -> None:
        try:
            cell_magic(line, cell, ipython.user_ns)
        except UsageError as e:  # IPython shows it as one line, without a traceback
            raise IPythonUsageError(str(e)) from None

    gradwalk.__doc__ = cell_magic.__doc__
    ipython.register_magic_function(gradwalk, magic_kind="cell", magic_name="gradwalk")
