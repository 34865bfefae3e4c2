"""A floating tensor's stats (count, min, max, mean, std, NaN and ±Inf counts) as the trace writes them:
what stands for a value too big to send, or one the byte budget left out."""

from __future__ import annotations

import math
from typing import Any

import torch

from . import decimals, doc
from .decimals import number

PYTHON_STATS_MAX = 64  # up to this many elements, plain Python beats a handful of torch kernels


def python_stats(flat: list[float], dtype: torch.dtype) -> dict[str, Any]:
    n = len(flat)
    total = sum(flat)
    if total - total == 0:  # the sum is finite only if every element is
        finite, nan_count = flat, 0
    else:
        finite = [x for x in flat if x - x == 0]  # false for NaN and ±Inf
        nan_count = sum(1 for x in flat if x != x)
        total = sum(finite)
    m = len(finite)
    if m == 0:
        return doc.stats(numel=n, nan_count=nan_count, inf_count=n - nan_count)
    mean = total / m
    std = math.sqrt(sum((x - mean) * (x - mean) for x in finite) / (m - 1)) if m > 1 else 0.0
    return _stats(n, min(finite), max(finite), mean, std, nan_count, n - m - nan_count, dtype)


def stats_of(flat: list[float], dtype: torch.dtype) -> dict[str, Any]:
    """The stats of a floating tensor's elements (as Python floats, NaN and ±Inf as floats)."""
    if len(flat) <= PYTHON_STATS_MAX:
        return python_stats(flat, dtype) if flat else doc.stats(numel=0)
    return torch_stats(torch.tensor(flat, dtype=torch.float64), dtype)


_DTYPES = {name: getattr(torch, name) for name in ("float32", "float64", "float16", "bfloat16")}


def dtype_of(name: str) -> torch.dtype:
    """The floating dtype a trace names (dtype_name's inverse)."""
    return _DTYPES[name]


def _stats(n: int, lo: float, hi: float, mean: float, std: float, nans: int, infs: int, dtype: torch.dtype) -> dict[str, Any]:
    def w(x: float, dtype: torch.dtype) -> Any:
        return number(decimals.written_stat(x, dtype))

    return doc.stats(
        numel=n, min=w(lo, dtype), max=w(hi, dtype), mean=w(mean, dtype), std=w(std, dtype), nan_count=nans, inf_count=infs
    )


def torch_stats(t: torch.Tensor, dtype: torch.dtype | None = None) -> dict[str, Any]:
    """Stats by torch ops, written in `dtype` (t's own by default)."""
    n = t.numel()
    dtype = dtype or t.dtype
    t = t.detach().reshape(-1).to(torch.float64)
    finite_mask = torch.isfinite(t)
    nan_count = int(torch.isnan(t).sum())
    finite = t[finite_mask]
    m = finite.numel()
    if m == 0:
        return doc.stats(numel=n, nan_count=nan_count, inf_count=n - nan_count)
    std = float(finite.std()) if m > 1 else 0.0
    return _stats(n, float(finite.min()), float(finite.max()), float(finite.mean()), std, nan_count, n - m - nan_count, dtype)


def repeated(stats: dict[str, Any], repeat: int, dtype: torch.dtype) -> dict[str, Any]:
    """The stats of `repeat` copies of the elements `stats` describe: min, max and mean stay."""
    finite = stats["numel"] - stats["nan_count"] - stats["inf_count"]
    out = {**stats, "numel": stats["numel"] * repeat, "nan_count": stats["nan_count"] * repeat}
    out["inf_count"] = stats["inf_count"] * repeat
    if finite > 1 and isinstance(stats["std"], float):  # the sample std's n - 1 grows with the copies
        scaled = stats["std"] * math.sqrt(repeat * (finite - 1) / (repeat * finite - 1))
        out["std"] = number(decimals.written_stat(scaled, dtype))
    return out
