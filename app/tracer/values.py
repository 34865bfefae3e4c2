"""Tensor → JSON value and stats. NaN and ±Inf become strings so the trace stays strict JSON."""

from __future__ import annotations

import math
from typing import Any

import torch

from app.models import Stats

_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def number(x: float | int | bool) -> float | int | bool | str:
    """A Python number as a strict-JSON value."""
    if isinstance(x, float) and not math.isfinite(x):
        return _SPECIAL[repr(x)]
    return x


def _fix(v: Any) -> Any:
    if isinstance(v, list):
        return [_fix(x) for x in v]
    return number(v)


def value(t: torch.Tensor, max_elements: int) -> Any:
    """The tensor's value as nested lists (a bare number for 0-d), or None when too big."""
    if t.numel() > max_elements or t.layout != torch.strided or t.device.type == "meta":
        return None
    t = t.detach()
    if t.is_complex():
        t = torch.view_as_real(t)
    v = t.tolist()
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        v = _fix(v)
    return v


def stats(t: torch.Tensor) -> Stats | None:
    """Summary of a floating tensor (over its finite entries); None for other dtypes."""
    if not t.is_floating_point() or t.layout != torch.strided or t.device.type == "meta":
        return None
    n = t.numel()
    t = t.detach().to(torch.float64).reshape(-1)
    if n <= 64:  # small tensors: plain Python is cheaper than a handful of torch kernels
        xs = t.tolist()
        finite = [x for x in xs if math.isfinite(x)]
        nan_count = sum(1 for x in xs if x != x)
        inf_count = n - len(finite) - nan_count
    else:
        nan_mask = torch.isnan(t)
        finite_mask = torch.isfinite(t)
        nan_count = int(nan_mask.sum())
        inf_count = n - int(finite_mask.sum()) - nan_count
        finite = t[finite_mask]
    m = len(finite)
    if m == 0:
        return Stats(numel=n, nan_count=nan_count, inf_count=inf_count)
    if isinstance(finite, list):
        mean = math.fsum(finite) / m
        std = math.sqrt(math.fsum((x - mean) ** 2 for x in finite) / (m - 1)) if m > 1 else 0.0
        lo, hi = min(finite), max(finite)
    else:
        mean = float(finite.mean())
        std = float(finite.std()) if m > 1 else 0.0
        lo, hi = float(finite.min()), float(finite.max())
    return Stats(
        numel=n, min=number(lo), max=number(hi), mean=number(mean), std=number(std),
        nan_count=nan_count, inf_count=inf_count,
    )


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
