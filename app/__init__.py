"""gradwalk: watch PyTorch autograd run. In a notebook: `%load_ext gradwalk`, then a cell starting with `%%gradwalk`.

The package is `app` in the repository and `gradwalk` when installed (setup.py maps it); nothing
here imports torch until a function is called.
"""

from __future__ import annotations

import os
from typing import Any


def trace(source: str | os.PathLike[str], namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """The trace document of a program (its source, or a .py file's path), run in this process, as a dict."""
    from .notebook import trace as _trace

    return _trace(source, namespace)


def check(source: str | os.PathLike[str], overrides: dict[str, Any] | None = None, budget_s: float = 30.0) -> dict[str, Any]:
    """The trace document with `check`: every backward pass's leaf gradients by autograd beside their
    estimate by nudging (float64, central differences), run in this process within budget_s."""
    from .notebook import check as _check

    return _check(source, overrides, budget_s)


def show(
    source_or_path: str | os.PathLike[str],
    *,
    lang: str | None = None,
    step: int | None = None,
    direction: str = "auto",
    namespace: dict[str, Any] | None = None,
) -> None:
    """Trace a program in this process and show its player under the cell (a notebook's, or any IPython display)."""
    from .notebook import show as _show

    _show(source_or_path, lang=lang, step=step, direction=direction, namespace=namespace)


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext gradwalk`: registers the `%%gradwalk` cell magic."""
    from .notebook import load_ipython_extension as _load

    _load(ipython)
