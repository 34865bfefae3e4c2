"""What a bare expression shows (notebook-style display): torch's own repr of a tensor, made cheaply.

Torch finds a tensor's number format through a dozen tensor ops; `small_tensor_repr` does the same
on the values as Python numbers, for the small tensors tiny programs show, and declines (None)
wherever its text could differ from torch's, which is then used instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

MAX_DISPLAY_CHARS = 2_000  # of one displayed value's text: the rest is cut

_TENSOR_REPR = torch.Tensor.__repr__
_PRINT_OPTS = torch._tensor_str.PRINT_OPTS
_FLOATS = (torch.float32, torch.float64)
_REPR_DTYPES = frozenset((*_FLOATS, torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool))
_SMALL = 64  # elements at most: the small results tiny programs show, and what the tests compare
_PREFIX = "tensor("


def tensor_repr(t: torch.Tensor) -> str:
    """torch's repr of `t` (call it with torch-function dispatch off)."""
    return small_tensor_repr(t) or _TENSOR_REPR(t)


def small_tensor_repr(t: torch.Tensor) -> str | None:
    """torch's repr of a small dense CPU tensor, character for character; None wherever it could
    differ, for torch's own.

    It takes float32/64, int and bool dtypes, 1 to _SMALL elements (so nothing is summarized), and
    no dispatch mode, forward-AD level, functorch wrapper or negative bit in play. It follows
    torch/_tensor_str.py (_Formatter, _vector_str, _tensor_str_with_formatter, _str_intern,
    _add_suffixes) on the values as Python numbers, which are what torch formats too;
    tests/tracer/test_display.py holds it to torch's text on many tensors and print options.
    """
    opts = _PRINT_OPTS
    dtype = t.dtype
    if (
        dtype not in _REPR_DTYPES
        or not 0 < t.numel() <= min(_SMALL, opts.threshold)
        or not opts.edgeitems  # torch adds a size= suffix then
        or t.layout != torch.strided
        or t.device.type != "cpu"
        or torch._C._get_default_device() != "cpu"
        or t.is_nested
        or t.is_neg()
        or t._is_zerotensor()
        or torch._C._len_torch_dispatch_stack()
        or torch.autograd.forward_ad._current_level >= 0
        or torch._C._functorch.is_functorch_wrapped_tensor(t)
        or torch._is_functional_tensor(t)
    ):
        return None
    try:
        return _format_small(t, dtype, opts)
    except Exception:  # noqa: BLE001 - print options torch would fail on too: let torch's repr say so
        return None


def _format_small(t: torch.Tensor, dtype: torch.dtype, opts: Any) -> str:
    values = t.tolist()
    dim = t.dim()
    flat = [values] if dim == 0 else values if dim == 1 else _flatten(values)
    number, width = _formatter(flat, dtype, opts)
    indent = len(_PREFIX)
    text = _PREFIX + (number(values) if dim == 0 else _block(values, dim, indent, number, width, opts.linewidth))
    return _add_suffixes(text, _suffixes(t, dtype), indent, opts.linewidth)


def _formatter(flat: list, dtype: torch.dtype, opts: Any) -> tuple[Callable[[Any], str], int]:
    """torch's _Formatter: one number format, and its width, for every element; (format, width)."""
    precision = opts.precision
    floating = dtype in _FLOATS
    int_mode, sci_mode, width = True, False, 1
    if not floating:
        width = max(1, *(len(f"{v}") for v in flat))
    else:
        shown = [v for v in flat if math.isfinite(v) and v != 0]
        if shown:
            magnitudes = [abs(v) for v in shown]
            low, high = min(magnitudes), max(magnitudes)
            int_mode = all(v.is_integer() for v in shown)
            sci_mode = (high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4) if opts.sci_mode is None else opts.sci_mode
            if sci_mode:
                width = max(1, *(len(f"{v:.{precision}e}") for v in shown))
            elif int_mode:
                width = max(1, *(len(f"{v:.0f}") + 1 for v in shown))
            else:
                width = max(1, *(len(f"{v:.{precision}f}") for v in shown))

    def number(v: Any) -> str:
        if not floating:
            text = f"{v}"
        elif sci_mode:
            text = f"{v:{width}.{precision}e}"
        elif int_mode:
            text = f"{v:.0f}"
            if not (math.isinf(v) or math.isnan(v)):
                text += "."
        else:
            text = f"{v:.{precision}f}"
        return (width - len(text)) * " " + text

    return number, width


def _block(v: list, depth: int, indent: int, number: Callable[[Any], str], width: int, linewidth: int) -> str:
    """torch's _tensor_str_with_formatter: nested brackets, rows of `depth - 1` blank lines apart."""
    if depth == 1:  # _vector_str
        per_line = max(1, math.floor((linewidth - indent) / (width + 2)))
        cells = [number(x) for x in v]
        lines = [", ".join(cells[i : i + per_line]) for i in range(0, len(cells), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    rows = [_block(x, depth - 1, indent + 1, number, width, linewidth) for x in v]
    return "[" + ("," + "\n" * (depth - 1) + " " * (indent + 1)).join(rows) + "]"


def _suffixes(t: torch.Tensor, dtype: torch.dtype) -> list[str]:
    """torch's _str_intern: `dtype=`, then `grad_fn=<...>` or `requires_grad=True`."""
    suffixes = []
    if dtype not in (torch.get_default_dtype(), torch.int64, torch.bool):
        suffixes.append(f"dtype={dtype}")
    grad_fn_name = _grad_fn_name(t)
    if grad_fn_name is not None:
        suffixes.append(f"grad_fn=<{grad_fn_name}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return suffixes


def _grad_fn_name(t: torch.Tensor) -> str | None:
    try:
        grad_fn = t.grad_fn
    except RuntimeError:  # a no-grad view changed in place
        return "Invalid"
    if grad_fn is None:
        return None
    name = type(grad_fn).__name__
    return grad_fn.name().rsplit("::", 1)[-1] if name == "CppFunction" else name


def _add_suffixes(text: str, suffixes: list[str], indent: int, linewidth: int) -> str:
    """torch's _add_suffixes: each on the last line if it fits, else on a line of its own; then `)`."""
    parts = [text]
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def _flatten(values: list) -> list:
    if not isinstance(values[0], list):
        return values
    return [x for row in values for x in _flatten(row)]
