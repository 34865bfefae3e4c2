"""app/tracer/native.cpp against its Python reference (values.py, hooks._PythonSteps) and torch."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import torch

from app.models import Stats, Step, TensorData
from app.tracer import hooks, native, trace_json, values
from tests.conftest import need
from tests.reference import PROGRAMS

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 1_000


@pytest.fixture
def compiled() -> Any:
    if native.compiled is None:
        need("app/tracer/_native, built by `make native` (g++ and python3-dev)")
    return native.compiled


def _tensors() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    nan, inf = float("nan"), float("inf")
    return [
        torch.tensor(3.5),
        torch.tensor(-2),
        torch.tensor(True),
        torch.tensor([1.0, 2.0, 3.0]),
        torch.randn(3, 4, generator=g),
        torch.randn(2, 3, 4, generator=g).transpose(0, 2),  # not contiguous
        torch.randn(4, 4, generator=g)[:, 1],  # strided
        torch.randn(7, generator=g)[::2],
        torch.tensor([1, 2, 3]),
        torch.tensor([-5, 7], dtype=torch.int8),
        torch.arange(6, dtype=torch.uint8).reshape(2, 3),
        torch.tensor([True, False]),
        torch.tensor([nan, 1.0, inf, -inf]),
        torch.tensor([nan, nan]),
        torch.tensor([inf]),
        torch.randn(5, dtype=torch.float64, generator=g),
        torch.tensor([1e308, 1e308], dtype=torch.float64),  # the mean overflows: "Infinity"
        torch.randn(4, generator=g).half(),
        torch.randn(4, generator=g).bfloat16(),
        torch.zeros(0),
        torch.zeros(2, 0),
        torch.randn(70, generator=g),
        torch.randn(2_000, generator=g),  # above the limit: stats only
        torch.randn(2_000, generator=g).masked_fill(torch.arange(2_000) % 7 == 0, -inf),  # a mask: summed one by one
        torch.randn(200, generator=g).index_fill(0, torch.tensor([3, 150]), nan),
        torch.randn(3, generator=g, requires_grad=True) * 2,
    ]


def _same(a: Any, b: Any) -> bool:
    """Equal: values exactly (the same decimals); stats to float32 precision (below)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) == list(Stats.model_fields) == list(b):
            return _same_stats(a, b)
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _same_stats(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The mean and std of a big tensor are summed in another order by torch than by native.cpp,
    then written in its dtype: equal to float32 precision, relative to the tensor's largest element."""
    exact = ("numel", "min", "max", "nan_count", "inf_count")
    if any(not _same(a[k], b[k]) for k in exact):
        return False
    scale = max((abs(x) for x in (a["min"], a["max"]) if isinstance(x, float)), default=0.0)
    for k in ("mean", "std"):
        x, y = a[k], b[k]
        if isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=3e-7, abs_tol=3e-7 * scale):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.parametrize("stats", [True, False])
def test_encode_matches_values_py(compiled: Any, stats: bool) -> None:
    ts = _tensors()
    got = compiled.encode(ts, [stats] * len(ts), LIMIT)
    for t, result in zip(ts, got):
        assert type(result) is tuple, t
        if stats:
            expected = values.encode(t, LIMIT)
        else:
            expected = (values.value(t, LIMIT), values.encode(t, LIMIT)[1] if t.numel() > LIMIT else None)
        assert _same(list(result), list(expected)), (t, result, expected)


def test_encode_hands_back_what_it_does_not_read(compiled: Any) -> None:
    ts = [torch.tensor([1 + 2j]), torch.eye(2).to_sparse(), torch._neg_view(torch.ones(2))]
    assert [r is t for r, t in zip(compiled.encode(ts, [True] * 3, LIMIT), ts)] == [True] * 3
    # and the Deferred reads those in Python
    node: dict[str, Any] = {}
    d = values.Deferred(LIMIT)
    d.encode(ts[2], node, "value", "stats")
    d.flush()
    assert node["value"] == [-1.0, -1.0] and node["stats"]["mean"] == -1.0


def test_flush_writes_where_asked_and_leaves_out_what_changed(compiled: Any) -> None:
    a, b, c = torch.ones(2), torch.zeros(3), torch.tensor([1 + 1j])
    node: dict[str, Any] = {}
    grads: list[Any] = [None, "stale"]
    held = [(a, a._version, node, "value", "stats"), (b, b._version, grads, 0, None), (b, b._version, grads, 1, None)]
    held.append((c, c._version, node, "complex", None))
    b.add_(1)  # after it was held: its version moved
    assert compiled.flush(held[:1], LIMIT) == [] and compiled.flush(held[1:], LIMIT) == [held[3]]
    assert node == {"value": [1.0, 1.0], "stats": values.encode(a, LIMIT)[1]}
    assert grads == [None, None]


def test_steps_record_the_engine_order_and_gradients(compiled: Any) -> None:
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    fns = [y.grad_fn, y.grad_fn.next_functions[0][0], y.grad_fn.next_functions[0][0].next_functions[0][0]]
    steps = compiled.Steps()
    steps.add_below([y.grad_fn], {id(f): nid for f, nid in zip(fns, [10, 11, 12])})
    y.backward()
    steps.remove()
    tensors: list[Any] = []
    taken, handed_back = steps.take(tensors, LIMIT, values.dtype_name)
    assert not handed_back
    assert [s["node"] for s in taken] == [10, 11, 12]  # sum, mul, x's AccumulateGrad
    value = [None if t is None else t["value"] for t in tensors]
    assert [[value[i] for i in s["grad"]] for s in taken] == [[1.0], [[1.0, 1.0, 1.0]], [[2.0, 4.0, 6.0]]]
    # x*g to each input: one tensor (the same content), and the leaf sums them into a new one
    assert taken[1]["grad_inputs"] == [2, 2] and value[2] == [1.0, 2.0, 3.0]
    assert taken[0]["grad_inputs"] == taken[1]["grad"]  # sent by one step, received by the next: one entry
    assert list(taken[0]) == list(Step.model_fields) and list(tensors[0]) == list(TensorData.model_fields)
    assert tensors[1]["value"] == [1.0, 1.0, 1.0] and tensors[1]["stats"] == values.encode(torch.ones(3), LIMIT)[1]
    assert (tensors[1]["shape"], tensors[1]["dtype"]) == ([3], "float32")  # the stats wait aside, for the byte budget
    # removed: a second pass records nothing
    x.grad = None
    (x * 2).sum().backward()
    assert steps.take(tensors, LIMIT, values.dtype_name) == ([], False)


def test_tensor_entries_are_written_once_by_identity_and_content() -> None:
    """values.Entries, the reference of native.cpp's (the whole documents are compared below)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, generator=g)
    grads = [a, a, a.clone(), a.reshape(1, 3).clone(), a.double(), -a, torch._neg_view(-a), torch.randn(2000, generator=g)]
    python: list[Any] = []
    entries = values.Entries(python, LIMIT)
    assert [entries.index(t) for t in grads] == [0, 0, 0, 1, 2, 3, 4, 5]
    assert python[4]["value"] == python[0]["value"] and python[5]["value"] is None and python[5]["stats"]["numel"] == 2000


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_trace_is_the_same_without_native(compiled: Any, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole trace, native and pure Python: the same document (but for printed addresses)."""
    source = path.read_text()

    def trace() -> Any:
        return json.loads(re.sub(r"0x[0-9a-f]+", "0x", trace_json(source).decode()))

    fast = trace()
    monkeypatch.setattr(native, "compiled", None)
    assert isinstance(hooks._steps_recorder(), hooks._PythonSteps)
    assert _same(fast, trace())


@pytest.mark.parametrize(
    "source",
    [
        # complex gradients: native.cpp hands them back to values.py
        "import torch\nz = torch.tensor([1 + 2j, 3 - 1j], requires_grad=True)\ny = (z * z).abs().sum()\ny.backward()\n",
        # a gradient too big to send: stats only, from C++
        "import torch\nx = torch.ones(2000, requires_grad=True)\ny = (x * 3).sum()\ny.backward()\n",
        # a view whose values changed in place after it was recorded, then a second pass
        "import torch\nx = torch.ones(3, requires_grad=True)\ny = x * 2\nz = y.sum()\nz.backward(retain_graph=True)\n"
        "with torch.no_grad():\n    x.mul_(5)\nz.backward()\n",
    ],
    ids=["complex", "big", "two_passes_after_update"],
)
def test_edge_cases_are_the_same_without_native(compiled: Any, source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = json.loads(trace_json(source).decode())
    assert fast["status"] == "ok", fast["error"]
    monkeypatch.setattr(native, "compiled", None)
    assert _same(fast, json.loads(trace_json(source).decode()))


def test_native_works_with_the_package_under_another_name(compiled: Any, tmp_path: Path) -> None:
    """Installed, the package is `gradwalk` (issue 15): the C++ part must not import `app` by name."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(ROOT / "app", tmp_path / "gradwalk", ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    script = (
        "import json, sys\n"
        "sys.modules['app'] = None  # `import app...` fails from here on\n"
        "from gradwalk.tracer import native, trace_json\n"
        "assert native.compiled is not None and native.compiled.__name__ == 'gradwalk.tracer._native'\n"
        "print(trace_json('import torch\\nx = torch.ones(2, requires_grad=True)\\ny = (x * 3).sum()\\ny.backward()\\n').decode())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    trace = json.loads(out.stdout)
    assert trace["status"] == "ok", trace["error"]
    assert [n["op"] for n in trace["nodes"]] == ["AccumulateGrad", "MulBackward0", "SumBackward0"]


def _digits(x: float) -> int:
    """Significant digits of x's shortest repr (10000.0 has one, 9984.0 four)."""
    mantissa = repr(x).lstrip("-").split("e")[0].replace(".", "")
    return max(1, len(mantissa.strip("0")))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_floats_are_the_shortest_decimals_that_come_back(compiled: Any, dtype: torch.dtype) -> None:
    """native.cpp (Dragonbox, std::to_chars) and values.py (decimals.shortest) write the same digits, and each
    decimal read as a double and cast to the dtype is the float it was (powers of two: an uneven gap)."""
    g = torch.Generator().manual_seed(0)
    bits = torch.randint(-(2**31), 2**31 - 1, (20_000,), generator=g, dtype=torch.int32).view(torch.float32)
    cases = [
        torch.randn(20_000, generator=g),
        torch.randn(5_000, generator=g) * 1e-30,
        torch.tensor([2.0**k for k in range(-149, 128)]),
        torch.tensor([0.1, 0.2, 1 / 3, 3.4028235e38, 1e-45, 1.17549435e-38, 2.0**27, 65504.0, -0.0, 0.0]),
        bits[torch.isfinite(bits)],
    ]
    for t in cases:
        x = t.to(dtype)
        x = x[torch.isfinite(x)]
        for chunk in x.split(LIMIT):
            ours = compiled.encode([chunk], [False], LIMIT)[0][0]
            assert ours == values.value(chunk, LIMIT)
            assert torch.equal(torch.tensor(ours, dtype=torch.float64).to(dtype), chunk)
            assert all(_digits(v) <= _digits(c) for v, c in zip(ours, chunk.tolist()))
    assert compiled.encode([torch.tensor([0.018916625529527664, 0.1])], [False], LIMIT)[0][0] == [0.018916626, 0.1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_values_as_json_text_are_the_bytes_orjson_writes(compiled: Any, dtype: torch.dtype) -> None:
    """native.cpp writes a value of one or more dimensions as its JSON text (values.TEXT): byte for byte
    what orjson.dumps writes for values.py's nested lists, at every magnitude, NaN and ±Inf included."""
    g = torch.Generator().manual_seed(0)
    width = torch.finfo(dtype).bits
    ints = {64: torch.int64, 32: torch.int32, 16: torch.int16}[width]
    low, high = -(2 ** (width - 1)), 2 ** (width - 1) - 1
    cases = [torch.randint(low, high, (20_000,), generator=g, dtype=torch.int64).to(ints).view(dtype)]  # any bits
    cases += [(torch.randn(2_000, generator=g, dtype=torch.float64) * 10.0**k).to(dtype) for k in range(-40, 40, 3)]
    specials = [0.0, -0.0, 1.0, 1e-5, 9.999999e-6, 1e-6, 1e16, 9.999999e15, 2.0**24, 2.0**60, math.nan, math.inf, -math.inf]
    cases.append(torch.tensor(specials, dtype=torch.float64).to(dtype))
    for t in cases + [torch.randn(3, 4, 5, generator=g).to(dtype).transpose(0, 2), torch.zeros(2, 0, dtype=dtype)]:
        for chunk in t.split(LIMIT):
            held: dict[str, Any] = {}
            assert compiled.flush([(chunk, chunk._version, held, "value", None)], LIMIT, values.TEXT) == []
            assert type(held["value"]) is values.TEXT
            assert orjson.dumps(held["value"]) == orjson.dumps(values.value(chunk, LIMIT)), chunk
    ints_and_bools = [torch.arange(-500, 500).reshape(10, 100), torch.tensor([2**63 - 1, -(2**63)]), torch.tensor([True, False])]
    for t in ints_and_bools + [torch.tensor([-5, 7], dtype=torch.int8), torch.arange(6, dtype=torch.uint8).reshape(2, 3)]:
        held = {}
        compiled.flush([(t, t._version, held, "value", None)], LIMIT, values.TEXT)
        assert orjson.dumps(held["value"]) == orjson.dumps(t.tolist())
    scalar: dict[str, Any] = {}
    compiled.flush([(torch.tensor(2.5), 0, scalar, "value", None)], LIMIT, values.TEXT)
    assert scalar["value"] == 2.5  # a 0-d value stays a number (bindings.py labels constants by it)
