"""Tensor → JSON value and stats. NaN and ±Inf become strings so the trace stays strict JSON."""

from __future__ import annotations

import math
from typing import Any

import torch

from app.tracer import doc

_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_PYTHON_STATS_MAX = 64  # up to this many elements, plain Python beats a handful of torch kernels


def number(x: float | int | bool) -> float | int | bool | str:
    """A Python number as a strict-JSON value."""
    if isinstance(x, float) and not math.isfinite(x):
        return _SPECIAL[repr(x)]
    return x


def _fix(v: Any) -> Any:
    if isinstance(v, list):
        return [_fix(x) for x in v]
    return number(v)


def _stats_of(flat: list[float]) -> dict[str, Any]:
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
    return doc.stats(
        numel=n, min=min(finite), max=max(finite), mean=number(mean), std=number(std),
        nan_count=nan_count, inf_count=n - m - nan_count,
    )


def _torch_stats(t: torch.Tensor) -> dict[str, Any]:
    n = t.numel()
    t = t.detach().reshape(-1).to(torch.float64)
    finite_mask = torch.isfinite(t)
    nan_count = int(torch.isnan(t).sum())
    finite = t[finite_mask]
    m = finite.numel()
    if m == 0:
        return doc.stats(numel=n, nan_count=nan_count, inf_count=n - nan_count)
    return doc.stats(
        numel=n, min=float(finite.min()), max=float(finite.max()), mean=number(float(finite.mean())),
        std=number(float(finite.std())) if m > 1 else 0.0, nan_count=nan_count, inf_count=n - m - nan_count,
    )


def encode(t: torch.Tensor, max_elements: int) -> tuple[Any, dict[str, Any] | None]:
    """(value, stats): nested lists (a bare number for 0-d) or None when too big; stats for floats."""
    if t.layout != torch.strided or t.device.type == "meta":
        return None, None
    t = t.detach()
    n = t.numel()
    floating = t.is_floating_point()
    if n > max_elements:
        return None, (_torch_stats(t) if floating else None)
    if t.is_complex():
        return torch.view_as_real(t).tolist(), None
    v = t.tolist()
    if not floating:
        return v, None
    if n <= _PYTHON_STATS_MAX:
        flat = [v] if t.dim() == 0 else (v if t.dim() == 1 else t.reshape(-1).tolist())
        stats = _stats_of(flat)
    else:
        stats = _torch_stats(t)
    if stats["nan_count"] or stats["inf_count"]:
        v = _fix(v)
    return v, stats


def value(t: torch.Tensor, max_elements: int) -> Any:
    """Just the value (gradients on edges need no stats)."""
    if t.layout != torch.strided or t.device.type == "meta" or t.numel() > max_elements:
        return None
    t = t.detach()
    if t.is_complex():
        return torch.view_as_real(t).tolist()
    v = t.tolist()
    if t.is_floating_point():
        flat = [v] if t.dim() == 0 else (v if t.dim() == 1 else None)
        finite = all(x - x == 0 for x in flat) if flat is not None else bool(torch.isfinite(t).all())
        if not finite:
            v = _fix(v)
    return v


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
