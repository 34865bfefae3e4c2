"""Where a program failed: its own frames, as traceback.extract_tb reports them."""

from __future__ import annotations

import traceback

import pytest

from app.tracer import Interrupted, trace_of
from app.tracer.names import instrument
from app.tracer.program import PROGRAM, raised_line, traceback_frames
from tests.conftest import ROOT
from tests.reference import PROGRAMS

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


@pytest.mark.parametrize(
    ("program", "hint_id", "line"),
    [
        ("seed_2_int_requires_grad", "int_requires_grad", 3),
        ("nonscalar_backward", "nonscalar_backward", 5),
        ("functions_and_errors", "backward_twice", 14),
    ],
)
def test_errors_have_line_and_hint(program: str, hint_id: str, line: int) -> None:
    path = next(p for p in PROGRAMS if p.stem == program)
    trace = trace_of(path.read_text())
    assert trace.status == "error" and trace.error is not None
    assert (trace.error.hint_id, trace.error.line) == (hint_id, line)
    assert trace.error.hint and trace.events[-1].kind == "error"


def test_graph_before_the_error_is_kept() -> None:
    trace = trace_of((ROOT / "tests/programs/functions_and_errors.py").read_text())
    assert {n.name for n in trace.nodes} >= {"w", "v", "out", "y"}
    assert len(trace.passes) == 2 and trace.passes[1].error


def test_inplace_on_saved_tensor_hint() -> None:
    trace = trace_of("import torch\na = torch.ones(2, requires_grad=True)\nb = a.sigmoid()\nb.mul_(2)\nb.sum().backward()\n")
    assert trace.error is not None and trace.error.hint_id == "inplace_saved" and trace.error.line == 5


def test_syntax_error() -> None:
    trace = trace_of("x = (1\n")
    assert trace.status == "error" and trace.error.type == "SyntaxError" and trace.error.line == 1


def test_interrupted_keeps_partial_graph() -> None:
    source = "import torch\nx = torch.ones(2, requires_grad=True)\ny = x * 2\nraise_it()\n"

    def raise_it() -> None:
        raise Interrupted("timeout", "the program ran past the 5 s limit")

    import builtins

    builtins.raise_it = raise_it  # type: ignore[attr-defined]
    try:
        trace = trace_of(source)
    finally:
        del builtins.raise_it  # type: ignore[attr-defined]
    assert trace.status == "timeout" and trace.error.line == 4
    assert {n.name for n in trace.nodes} == {"x", "y"}


@pytest.mark.parametrize(
    ("tail", "status"), [("sys.exit()", "ok"), ("sys.exit(3)", "error"), ("raise KeyboardInterrupt", "error")]
)
def test_exits_end_the_program_not_the_tracer(tail: str, status: str) -> None:
    trace = trace_of(f"import sys, torch\nx = torch.ones(1, requires_grad=True)\nprint('before')\n{tail}\nprint('after')\n")
    assert (trace.status, trace.stdout) == (status, "before\n")
    assert [n.name for n in trace.nodes] == ["x"]


def test_refused_allocation_is_a_memory_status() -> None:
    trace = trace_of("import torch\nx = torch.ones(2, requires_grad=True)\nbig = torch.zeros(10**13)\n")
    assert trace.status == "memory" and trace.error.line == 3 and trace.error.hint_id == "out_of_memory"
    assert [n.name for n in trace.nodes] == ["x"]


@pytest.mark.parametrize("source", ["x = 1\0\n", "y = " + "(" * 300 + ")" * 300 + "\n", "z = " + "-" * 100_000 + "1\n"])
def test_sources_python_refuses_are_errors(source: str) -> None:
    trace = trace_of(source)
    assert trace.status == "error" and trace.error is not None and trace.nodes == []


@pytest.mark.parametrize(
    ("source", "fold"),
    [
        ("def f(n):\n    return f(n + 1)\n\nf(0)\n", "[Previous line repeated"),  # as Python folds it
        ("def a(n):\n    return b(n)\ndef b(n):\n    return a(n + 1)\na(0)\n", "more frames ...]"),  # Python does not
    ],
)
def test_a_deep_recursion_has_a_short_traceback(source: str, fold: str) -> None:
    error = trace_of(source).error
    assert error.type == "RecursionError" and error.line in (2, 4)
    assert fold in error.traceback and len(error.traceback) < 2_000
    assert error.traceback.startswith("  line ") and "in <module>" in error.traceback.splitlines()[0]
