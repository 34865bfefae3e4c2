"""The shortest decimal of a float in its tensor's own dtype: native.cpp's `decimal`, in Python.

A reader parses a decimal to the nearest double and torch casts that to the tensor's dtype: the
value written is the shortest decimal that comes back as the same float through that chain, as the
double nearest to it (float32 0.018916626, not 0.018916625529527664). tests/tracer/test_native.py
holds native.cpp to the same digits.
"""

from __future__ import annotations

import math
import struct
from array import array
from typing import Any

import torch

# A reader parses the decimal to the nearest double and torch casts that to the tensor's dtype: the
# value written is the shortest decimal that comes back as the same float through that chain, as
# the double nearest to it.

_HALF = struct.Struct("<e")
_F32_BITS = struct.Struct("<f"), struct.Struct("<I")


def _to_float32(xs: list[float]) -> list[float]:
    return array("f", xs).tolist()  # C's double -> float cast, each


def _half(f: float) -> float:
    try:
        return _HALF.unpack(_HALF.pack(f))[0]
    except OverflowError:  # past float16's range: what the cast gives
        return math.copysign(math.inf, f)


def _bfloat16(f: float) -> float:
    """float32 -> bfloat16, rounded to nearest even as c10::BFloat16 does."""
    f32, u32 = _F32_BITS
    bits = u32.unpack(f32.pack(f))[0]
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return f32.unpack(u32.pack(bits))[0]


def shortest(xs: list[float], dtype: torch.dtype) -> list[float]:
    """The finite floats of a float32, float16 or bfloat16 tensor (Python's exact doubles of them), as written."""
    out = list(xs)
    todo = [i for i, x in enumerate(xs) if x - x == 0 and x != 0]  # finite, not zero
    if dtype == torch.float32:
        # 9 digits always come back; fewer while they still do (the correctly rounded ones)
        for p in range(9, 0, -1):
            candidates = [float(f"{xs[i]:.{p - 1}e}") for i in todo]
            still = []
            for i, c, back in zip(todo, candidates, _to_float32(candidates)):
                if back == xs[i]:
                    out[i] = c
                    still.append(i)
            todo = still
            if not todo:
                break
        return out
    narrow = _half if dtype == torch.float16 else _bfloat16
    for i in todo:
        for p in range(1, 10):
            c = float(f"{xs[i]:.{p - 1}e}")
            if narrow(_to_float32([c])[0]) == xs[i]:
                out[i] = c
                break
    return out


_NARROW = frozenset((torch.float32, torch.float16, torch.bfloat16))


def written(t: torch.Tensor, v: Any) -> Any:
    """tolist()'s value `v` of t, its floats as written for t's dtype."""
    if t.dtype not in _NARROW or t.numel() == 0:
        return v
    if t.dim() == 0:
        return shortest([v], t.dtype)[0]
    flat = v if t.dim() == 1 else t.reshape(-1).tolist()
    return _nest(shortest(flat, t.dtype), list(t.shape))


def _nest(flat: list[Any], shape: list[int]) -> list[Any]:
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def written_stat(x: float, dtype: torch.dtype) -> float:
    """A statistic computed in double, in the tensor's precision (NaN and ±Inf as they are)."""
    if x - x != 0 or dtype not in _NARROW:
        return x
    f = _to_float32([x])[0]
    if f - f == 0 and dtype != torch.float32:
        f = (_half if dtype == torch.float16 else _bfloat16)(f)
    if f - f != 0:  # past the dtype's range
        return f
    return shortest([f], dtype)[0]


_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def number(x: float | int | bool) -> float | int | bool | str:
    """A Python number as a strict-JSON value."""
    if isinstance(x, float) and not math.isfinite(x):
        return _SPECIAL[repr(x)]
    return x
