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


_DTYPE_NAMES: dict[torch.dtype, str] = {}


def dtype_name(dtype: torch.dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


_MIN_BATCH = 8  # tensors of one dtype and shape below which reading them one by one is faster


class Deferred:
    """Small tensors read later, many at once: one stack, one tolist and a few row-wise kernels per
    dtype and shape instead of a handful of calls per tensor (most of a big trace's value cost).

    A tensor is held, with its version counter, until the next flush. The tracer flushes before
    anything can change a held tensor: before every in-place torch call, around backward passes,
    and at the end. Should a tensor still have changed, its value is left out rather than shown wrong.
    A tensor asked for twice (a gradient is one node's output and the next node's input) is read once.
    """

    _MAX_HELD_ELEMENTS = 1_000_000  # flush early beyond this: holding values must not cost real memory

    def __init__(self, max_elements: int) -> None:
        self.max_elements = max_elements
        # [tensor, its version, (dtype, shape), stats wanted, [(into, key, stats_key or None)]]
        self._held: list[list[Any]] = []
        self._index: dict[int, int] = {}  # id(held tensor) -> its place in _held
        self._held_elements = 0

    def value(self, t: torch.Tensor, into: Any, key: Any, big_stats_key: Any = None) -> None:
        """into[key] = t's value (as `value`), at the next flush; a too-big tensor's stats go to big_stats_key now."""
        self._put(t, into, key, big_stats_key, False)

    def encode(self, t: torch.Tensor, into: Any, key: Any, stats_key: Any) -> None:
        """into[key], into[stats_key] = t's value and stats (as `encode`), at the next flush."""
        self._put(t, into, key, stats_key, True)

    def _put(self, t: torch.Tensor, into: Any, key: Any, stats_key: Any, small_stats: bool) -> None:
        n = t.numel()
        if n > self.max_elements:  # stats only, computed now: a big tensor is never held
            into[key] = None
            if stats_key is not None:
                into[stats_key] = encode(t, self.max_elements)[1]
            return
        target = (into, key, stats_key if small_stats else None)
        i = self._index.get(id(t))
        if i is not None:  # held already (so its id is still its own)
            held = self._held[i]
            if held[1] == t._version:
                held[3] = held[3] or small_stats
                held[4].append(target)
                return
        self._index[id(t)] = len(self._held)
        # the group key now, while the tensor is fresh in the cache: at flush it costs several times more
        self._held.append([t, t._version, (t.dtype, t.shape), small_stats, [target]])
        self._held_elements += n
        if self._held_elements > self._MAX_HELD_ELEMENTS:
            self.flush()

    def flush(self) -> None:
        held, self._held, self._index, self._held_elements = self._held, [], {}, 0
        groups: dict[tuple, list[list[Any]]] = {}
        for item in held:
            if item[0]._version == item[1]:
                groups.setdefault(item[2], []).append(item)
            else:  # changed behind the tracer's back: no value rather than a wrong one
                for into, key, stats_key in item[4]:
                    into[key] = None
                    if stats_key is not None:
                        into[stats_key] = None
        with torch.no_grad():
            for items in groups.values():
                try:
                    _read_group(items)
                except Exception:  # noqa: BLE001 - sparse, meta, quantized...: one at a time
                    for item in items:
                        _read_one(item)


def _read_one(item: list[Any]) -> None:
    t, targets = item[0], item[4]
    v, stats = encode(t, t.numel()) if item[3] else (value(t, t.numel()), None)
    for into, key, stats_key in targets:
        into[key] = v
        if stats_key is not None:
            into[stats_key] = stats


def _read_group(items: list[list[Any]]) -> None:
    """Tensors of one dtype and shape: values by one tolist, float stats by a few row-wise kernels."""
    first = items[0][0]
    if first.layout != torch.strided or first.device.type == "meta":
        raise ValueError("not a dense tensor")
    if len(items) < _MIN_BATCH:  # a few kernels cost more than Python's arithmetic on a few tensors
        for item in items:
            _read_one(item)
        return
    stacked = torch.stack([item[0] for item in items])
    floating = stacked.is_floating_point()
    flat = stacked.reshape(len(items), -1).to(torch.float64) if floating else stacked
    k = flat.shape[1] if floating else 0
    if stacked.is_complex() or (floating and (k == 0 or not bool(torch.isfinite(flat).all()))):
        for item in items:  # NaN, Inf, empty or complex: the careful path, one by one
            _read_one(item)
        return
    for item, v in zip(items, stacked.tolist()):
        for into, key, _ in item[4]:
            into[key] = v
    rows = [i for i, item in enumerate(items) if item[3]]
    if not rows:
        return
    if not floating:
        for i in rows:
            for into, _, stats_key in items[i][4]:
                if stats_key is not None:
                    into[stats_key] = None
        return
    picked = flat if len(rows) == len(items) else flat[rows]
    mins, maxs, means = picked.amin(1).tolist(), picked.amax(1).tolist(), picked.mean(1).tolist()
    stds = picked.std(1).tolist() if k > 1 else [0.0] * len(rows)
    for i, lo, hi, mean, std in zip(rows, mins, maxs, means, stds):
        # doc.stats' keys, as a literal: thousands of these per flush
        stats = {"numel": k, "min": lo, "max": hi, "mean": mean, "std": std, "nan_count": 0, "inf_count": 0}
        for into, _, stats_key in items[i][4]:
            if stats_key is not None:
                into[stats_key] = stats
