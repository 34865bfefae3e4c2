"""Where a program failed: its own frames, as traceback.extract_tb reports them."""

from __future__ import annotations

import traceback

import pytest

from app.tracer.names import instrument
from app.tracer.program import PROGRAM, raised_line, traceback_frames

FAILING = [
    "import torch\na = torch.tensor([1, 2, 3], requires_grad=True)\n",
    "def f(x):\n    return (x +\n        undefined)\nf(1)\n",
    "x = [1/0 for i in range(3)]\n",
    "g = lambda: [][1]\ng()\n",
    "def r(n):\n    return r(n+1)\nr(0)\n",
    "class A:\n    x = 1\n    y = (\n      x.foo\n    )\n",
    "import torch\nx = torch.ones(3)\ny = x.sum()\ny.backward()\n",
    "def gen():\n    yield 1\n    raise ValueError('v')\nfor a in gen(): pass\n",
    "try:\n    1/0\nexcept Exception as e:\n    raise KeyError(1) from e\n",
    "import sys\nsys.exit(3)\n",
]


@pytest.mark.parametrize("source", FAILING)
def test_program_frames_as_extract_tb(source: str) -> None:
    env = {"__gw_bind__": lambda *a: None, "__gw_display__": lambda line, v: v}
    with pytest.raises(BaseException) as info:
        exec(instrument(source, PROGRAM), env)
    expected = [(f.lineno, f.name) for f in traceback.extract_tb(info.value.__traceback__) if f.filename == PROGRAM]
    assert traceback_frames(info.value) == expected
    assert raised_line(info.value) == expected[-1][0]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("total = 1\nprint(totl)\n", "name 'totl' is not defined. Did you mean: 'total'?"),
        ("import torch\nx = torch.ones(2)\nx.sumn()\n", "'Tensor' object has no attribute 'sumn'. Did you mean: 'sum'?"),
        ("print(nothing_like_it)\n", "name 'nothing_like_it' is not defined"),
    ],
)
def test_a_misspelt_name_keeps_pythons_did_you_mean(source: str, message: str) -> None:
    from app.tracer import trace_of

    assert trace_of(source).error.message == message  # type: ignore[union-attr]
