"""The tracer's own repr of small tensors (display of a bare expression) is torch's, character for character."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import torch

from app.tracer.display import small_tensor_repr

_SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-5, 1e8, 1.5e9, 123456.789, float("nan"), float("inf"), float("-inf"), 2.0**-140]


def _values(rng: random.Random, n: int) -> list[float]:
    kind = rng.choice(["ints", "decimals", "wide", "tiny", "special", "zeros", "mixed"])
    if kind == "ints":
        return [float(rng.randint(-1000, 1000)) for _ in range(n)]
    if kind == "decimals":
        return [rng.uniform(-10, 10) for _ in range(n)]
    if kind == "wide":
        return [rng.choice([-1, 1]) * 10 ** rng.uniform(-6, 10) for _ in range(n)]
    if kind == "tiny":
        return [rng.uniform(-1e-4, 1e-4) for _ in range(n)]
    if kind == "special":
        return [rng.choice(_SPECIAL) for _ in range(n)]
    if kind == "zeros":
        return [0.0] * n
    return [rng.choice([rng.randint(-5, 5), rng.uniform(-3, 3), rng.choice(_SPECIAL)]) for _ in range(n)]


def _shape(rng: random.Random) -> tuple[int, ...]:
    return rng.choice(
        [(), (1,), (3,), (rng.randint(1, 64),), (2, 3), (rng.randint(1, 8), rng.randint(1, 8)), (2, 2, 3), (1, 1, 1, 2)]
    )


def _tensors(seed: int, count: int) -> Iterator[torch.Tensor]:
    rng = random.Random(seed)
    dtypes = [torch.float32, torch.float64, torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool]
    for _ in range(count):
        shape = _shape(rng)
        n = 1
        for d in shape:
            n *= d
        dtype = rng.choice(dtypes)
        base = torch.tensor(_values(rng, n), dtype=torch.float64).reshape(shape)
        if dtype.is_floating_point:
            t = base.to(dtype)
            how = rng.choice(["plain", "leaf", "op", "sum", "view"])
            if how != "plain":
                t.requires_grad_()
            if how == "op":
                t = t * 2
            elif how == "sum":
                t = t.sum()
            elif how == "view" and t.dim() > 0:
                t = t[: max(1, t.shape[0] // 2)]
        elif dtype == torch.bool:
            t = base > 0
        else:
            info = torch.iinfo(dtype)
            t = torch.nan_to_num(base, nan=0.0).clamp(info.min, info.max).to(dtype)
        yield t


_OPTIONS = [
    {},
    {"precision": 2},
    {"precision": 0},
    {"precision": 8},
    {"linewidth": 20},
    {"linewidth": 200},
    {"linewidth": 1},
    {"sci_mode": True},
    {"sci_mode": False},
    {"threshold": 5},
    {"edgeitems": 0},
    {"profile": "short"},
    {"profile": "full"},
]


@pytest.mark.parametrize("options", _OPTIONS, ids=[str(o) or "default" for o in _OPTIONS])
def test_same_text_as_torch(options: dict) -> None:
    taken = 0
    with torch._tensor_str.printoptions(**options) if "profile" not in options else _Profile(options["profile"]):
        for t in _tensors(seed=len(str(options)), count=400):
            ours = small_tensor_repr(t)
            if ours is not None:
                taken += 1
                assert ours == torch.Tensor.__repr__(t), (t.dtype, t.shape, options)
    if "threshold" not in options and "edgeitems" not in options:
        assert taken > 300  # the fast path is taken for most of them


class _Profile:
    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        torch.set_printoptions(profile=self.name)

    def __exit__(self, *exc: object) -> None:
        torch.set_printoptions(profile="default")


def test_default_dtype_float64() -> None:
    torch.set_default_dtype(torch.float64)
    try:
        for t in _tensors(seed=7, count=300):
            ours = small_tensor_repr(t)
            assert ours is None or ours == torch.Tensor.__repr__(t)
    finally:
        torch.set_default_dtype(torch.float32)


def test_falls_back_where_it_could_differ() -> None:
    assert small_tensor_repr(torch.zeros(65)) is None  # beyond _SMALL
    assert small_tensor_repr(torch.zeros(0)) is None
    assert small_tensor_repr(torch.zeros(3, dtype=torch.float16)) is None
    assert small_tensor_repr(torch.zeros(3, dtype=torch.complex64)) is None
    assert small_tensor_repr(torch._neg_view(torch.ones(3))) is None
    assert small_tensor_repr(torch.ones(3).to_sparse()) is None


def test_invalid_grad_fn() -> None:
    base = torch.ones(4, requires_grad=True).clone()
    with torch.no_grad():
        view = base[:2]
        view.mul_(2)
    expected = torch.Tensor.__repr__(view)
    assert small_tensor_repr(view) in (None, expected)
