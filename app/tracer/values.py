"""Tensor → JSON value and stats. NaN and ±Inf become strings so the trace stays strict JSON."""

from __future__ import annotations

import math
from typing import Any

import torch

from . import doc, native

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
        numel=n,
        min=min(finite),
        max=max(finite),
        mean=number(mean),
        std=number(std),
        nan_count=nan_count,
        inf_count=n - m - nan_count,
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
        numel=n,
        min=float(finite.min()),
        max=float(finite.max()),
        mean=number(float(finite.mean())),
        std=number(float(finite.std())) if m > 1 else 0.0,
        nan_count=nan_count,
        inf_count=n - m - nan_count,
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
        flat: list[float] = [v] if t.dim() == 0 else (v if t.dim() == 1 else t.reshape(-1).tolist())  # type: ignore[list-item]  # tolist() of a 0-d tensor is a number
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
        flat: list[Any] | None = [v] if t.dim() == 0 else (v if t.dim() == 1 else None)
        finite = all(x - x == 0 for x in flat) if flat is not None else bool(torch.isfinite(t).all())
        if not finite:
            v = _fix(v)
    return v


_DTYPE_NAMES: dict[torch.dtype, str] = {}


def dtype_name(dtype: torch.dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


class Deferred:
    """Small tensors read later, many at once: one call into app/tracer/native.cpp per flush
    instead of a handful of torch and Python calls per tensor (most of a big trace's value cost).

    A tensor is held, with its version counter, until the next flush. The tracer flushes before
    anything can change a held tensor: before every in-place torch call, around backward passes,
    and at the end. Should a tensor still have changed, its value is left out rather than shown wrong.
    """

    _MAX_HELD_ELEMENTS = 1_000_000  # flush early beyond this: holding values must not cost real memory

    def __init__(self, max_elements: int) -> None:
        self.max_elements = max_elements
        self._held: list[tuple[torch.Tensor, int, Any, Any, Any]] = []  # (tensor, its version, into, key, stats_key)
        self._held_elements = 0

    def value(self, t: torch.Tensor, into: Any, key: Any, big_stats_key: Any = None) -> None:
        """into[key] = t's value (as `value`), at the next flush; a too-big tensor's stats go to big_stats_key now."""
        self._hold(t, into, key, None, big_stats_key)

    def encode(self, t: torch.Tensor, into: Any, key: Any, stats_key: Any) -> None:
        """into[key], into[stats_key] = t's value and stats (as `encode`), at the next flush."""
        n = t.numel()
        if n <= self.max_elements and self._held_elements + n <= self._MAX_HELD_ELEMENTS:  # the usual case, inline
            self._held.append((t, t._version, into, key, stats_key))
            self._held_elements += n
        else:
            self._hold(t, into, key, stats_key, stats_key)

    def _hold(self, t: torch.Tensor, into: Any, key: Any, stats_key: Any, big_stats_key: Any) -> None:
        n = t.numel()
        if n > self.max_elements:  # stats only, computed now: a big tensor is never held
            into[key] = None
            if big_stats_key is not None:
                into[big_stats_key] = encode(t, self.max_elements)[1]
            return
        self._held.append((t, t._version, into, key, stats_key))
        self._held_elements += n
        if self._held_elements > self._MAX_HELD_ELEMENTS:
            self.flush()

    def flush(self) -> None:
        held, self._held, self._held_elements = self._held, [], 0
        if not held:
            return
        # native.flush writes what it reads and hands back the rest (complex, sparse...)
        compiled = native.compiled
        left = held if compiled is None else compiled.flush(held, self.max_elements)
        for t, version, into, key, stats_key in left:
            if t._version == version:
                v, stats = _python_encode(t, stats_key is not None, self.max_elements)
            else:  # changed behind the tracer's back: no value rather than a wrong one
                v, stats = None, None
            into[key] = v
            if stats_key is not None:
                into[stats_key] = stats


def _python_encode(t: torch.Tensor, with_stats: bool, max_elements: int) -> tuple[Any, dict[str, Any] | None]:
    """What native.encode gives for one tensor: (value, stats if wanted)."""
    return encode(t, max_elements) if with_stats else (value(t, max_elements), None)
