"""The tracer against PyTorch itself: every example and test program, traced and run directly."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from app.config import TraceSettings
from app.models import Trace
from app.tracer import Interrupted, trace_json, trace_of
from app.tracer.graph import Graph
from tests.reference import assert_close, assert_close_or_stats, normalize, run_reference, sent_grad, step_grad

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = (
    sorted((ROOT / "app" / "examples").glob("*.py"))
    + sorted((ROOT / "tests" / "programs").glob("*.py"))
    + sorted((ROOT / "tests" / "programs" / "models").glob("*.py"))
)


def _latest(trace: Trace, name: str):
    named = [n for n in trace.nodes if n.name == name]
    return max(named, key=lambda n: n.binding or 0) if named else None


def _final_value(trace: Trace, node):
    """A leaf's value after the in-place updates the trace recorded (optimizer.step())."""
    value = node.value
    for e in trace.events:
        if e.kind == "update" and e.node == node.id and e.text is None:
            value = e.value
    return value


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_trace_matches_torch(path: Path) -> None:
    source = path.read_text()
    trace = trace_of(source)
    Trace.model_validate_json(trace.model_dump_json())  # the trust boundary accepts it
    ref = run_reference(source)

    assert normalize(trace.stdout) == normalize(ref.stdout)
    if ref.error is None:
        assert trace.status == "ok", trace.error
    else:
        assert trace.status == "error"
        assert trace.error is not None and trace.error.type == type(ref.error).__name__

    # every tensor the program left bound to a name: value, grad_fn, .grad
    names = {k: v for k, v in ref.namespace.items() if isinstance(v, torch.Tensor)}
    for module_name, module in ref.namespace.items():
        if isinstance(module, torch.nn.Module):
            names.update({f"{module_name}.{p}": t for p, t in module.named_parameters()})
    checked = 0
    for name, t in names.items():
        node = _latest(trace, name)
        if node is None:
            continue
        checked += 1
        if t.grad_fn is not None:
            assert node.op == type(t.grad_fn).__name__, name
        else:
            assert node.kind == ("leaf" if t.requires_grad else "constant"), name
        assert node.dtype == str(t.dtype).removeprefix("torch."), name
        final = _final_value(trace, node)  # None where the trace left it out (too big, or for size)
        if final is not None:
            assert_close(final, t, f"{name} value")
        if t.is_leaf and t.grad is not None or (t.retains_grad and t.grad is not None):
            assert_close_or_stats(node.grad, node.grad_stats, t.grad, f"{name}.grad")
        elif node.kind == "leaf":
            assert node.grad is None, name
    if names:
        assert checked, "no named tensor of the program appears in the trace"

    # backward passes: as many, and each leaf's contribution as PyTorch's own .grad difference
    assert len(trace.passes) == len(ref.passes)
    ids = {id(t): name for name, t in names.items()}
    for p, expected in zip(trace.passes, ref.passes):
        leaf_steps = {}
        for s in p.steps:
            leaf_steps.setdefault(s.node, []).append(trace.tensors[s.grad[0]])
        for tensor_id, (_leaf, contribution) in expected.items():
            name = ids.get(tensor_id)
            node = _latest(trace, name) if name else None
            if node is None:
                continue
            grads = leaf_steps.get(node.id)
            assert grads and len(grads) == 1, f"pass {p.index}: no single step for {name}"
            assert_close_or_stats(grads[0].value, grads[0].stats, contribution, f"pass {p.index} {name}")


def test_seed_jacobian_passes() -> None:
    trace = trace_of((ROOT / "app/examples/seed_4_jacobian.py").read_text())
    a = _latest(trace, "a")
    assert [p.api for p in trace.passes] == ["Tensor.backward"] * 3
    assert [[step_grad(trace, s) for s in p.steps if s.node == a.id] for p in trace.passes] == [
        [[2.0, 1.0, 0.0]],
        [[0.0, 1.0, 1.0]],
        [[0.0, 0.0, 27.0]],
    ]
    assert all(p.retain_graph for p in trace.passes)
    zeroed = [e for e in trace.events if e.kind == "grad"]
    assert [(e.node, e.line, e.value) for e in zeroed] == [(a.id, 11, [0.0, 0.0, 0.0]), (a.id, 14, [0.0, 0.0, 0.0])]


def test_seed_chain_story() -> None:
    trace = trace_of((ROOT / "app/examples/seed_5_chain.py").read_text())
    by_name = {n.name: n for n in trace.nodes if n.name}
    assert {k: by_name[k].op for k in ("l1", "l2", "l3", "y")} == {
        "l1": "MulBackward0",
        "l2": "AddBackward0",
        "l3": "MulBackward0",
        "y": "MeanBackward0",
    }
    assert by_name["b"].kind == "constant" and by_name["b"].line == 7
    assert (by_name["w1"].grad, by_name["w2"].grad, by_name["l1"].grad) == (3.0, 6.0, None)
    # the engine's order: y, l3, then w2 (ready first), l2, l1, then x and w1
    order = [trace.nodes[s.node].label for s in trace.passes[0].steps]
    assert order[:2] == ["y", "l3"] and set(order) == {"y", "l3", "w2", "l2", "l1", "x", "w1"}
    # l3 = l2 * w2 sends 0.2 * l2 = [1.2]*5 ... summed into w2: 6
    l3_step = next(s for s in trace.passes[0].steps if s.node == by_name["l3"].id)
    edge_w2 = next(e for e in trace.edges if e.source == by_name["w2"].id and e.target == by_name["l3"].id)
    assert sent_grad(trace, l3_step, edge_w2.slot) == pytest.approx(6.0)
    warned = [(w.line, w.hint_id) for w in trace.warnings]
    assert warned == [(18, "nonleaf_grad"), (19, "nonleaf_grad")]
    kinds = [e.kind for e in trace.events]
    assert kinds.index("backward_end") < kinds.index("print")


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


def test_loop_bindings_are_told_apart() -> None:
    trace = trace_of((ROOT / "app/examples/recurrence.py").read_text())
    hs = [n for n in trace.nodes if n.name == "h"]
    assert [n.label for n in hs] == ["h #1", "h #2", "h #3", "h #4"]
    assert [n.kind for n in hs] == ["constant", "op", "op", "op"]
    w = next(n for n in trace.nodes if n.name == "W")
    assert sum(1 for e in trace.edges if e.source == w.id) == 3  # W feeds every step


def test_module_parameters_named_by_path() -> None:
    trace = trace_of((ROOT / "app/examples/mlp_step.py").read_text())
    names = sorted(n.name for n in trace.nodes if n.kind == "leaf")
    assert names == ["model.0.bias", "model.0.weight", "model.2.bias", "model.2.weight"]
    assert any(n.op == "TBackward0" and n.value is None and n.shape for n in trace.nodes)  # inside nn.Linear
    assert sum(1 for e in trace.events if e.kind == "update") == 4  # optimizer.step()


def test_nan_and_inf_survive_strict_json() -> None:
    trace = trace_of((ROOT / "tests/programs/float64_nan.py").read_text())
    text = trace.model_dump_json()

    def refuse(c: str) -> None:
        raise ValueError(f"bare {c} in JSON")

    doc = json.loads(text, parse_constant=refuse)
    y = next(n for n in doc["nodes"] if n["name"] == "y")
    assert y["value"] == [0.0, "-Infinity", "NaN"] and y["dtype"] == "float64"
    assert y["stats"] is None  # a value is written: its stats are not (the page has the value)


@pytest.mark.parametrize(
    "change",
    [
        "z = y.detach()\nz.mul_(10)\n",  # an alias, changed in place
        "y.data.add_(100)\n",  # through .data, which keeps no version
        "n = y.detach().numpy()\nn += 5\n",  # through numpy, which torch never sees
        "y.data = torch.zeros(2)\n",  # the tensor's memory replaced
    ],
)
def test_values_are_those_of_their_moment(change: str) -> None:
    """Values are read in batches (values.Deferred); a later change to the tensor must not leak into them."""
    source = "import torch\nx = torch.ones(2, requires_grad=True)\ny = x * 2\nw = y * 3\n" + change + "w.sum().backward()\n"
    trace = trace_of(source)
    assert trace.status == "ok", trace.error
    assert _latest(trace, "y").value == [2.0, 2.0]
    assert _latest(trace, "w").value == [6.0, 6.0]


def test_a_change_the_tracer_cannot_see_leaves_no_value_rather_than_a_wrong_one() -> None:
    source = (
        "import torch\nx = torch.ones(2, requires_grad=True)\ny = x * 2\n"
        "with torch._C.DisableTorchFunction():\n    y.detach().add_(100)\n"
    )
    trace = trace_of(source)
    y = _latest(trace, "y")
    assert trace.status == "ok" and y.value is None and y.stats is None


def test_one_gradient_read_once_shows_in_every_place() -> None:
    """A node's output gradient is the next node's input gradient: one tensor, the same value in both steps."""
    trace = trace_of("import torch\nx = torch.ones(3, requires_grad=True)\ny = (x * 2).exp()\ny.sum().backward()\n")
    steps = {trace.nodes[s.node].op: s for s in trace.passes[0].steps}
    assert steps["ExpBackward0"].grad_inputs == steps["MulBackward0"].grad  # one entry of trace.tensors
    assert_close(step_grad(trace, steps["MulBackward0"]), (torch.ones(3) * 2).exp(), "exp's input gradient")


def test_tensors_held_by_a_bound_list_or_dict_are_named_by_their_place() -> None:
    source = (
        "import torch\nws = [torch.ones(2, requires_grad=True) for _ in range(2)]\n"
        "outs = {'a': ws[0] * 2}\ny = outs['a'].sum() + ws[1].sum()\nfor w in ws:\n    pass\n"
    )
    labels = {n.label for n in trace_of(source).nodes}
    assert {"ws[0]", "ws[1]", "outs['a']", "y"} <= labels and "leaf" not in labels


def test_big_tensors_carry_stats_not_values() -> None:
    trace = trace_of("import torch\nx = torch.arange(2000.0, requires_grad=True)\ny = (x * 2).sum()\ny.backward()\n")
    x = next(n for n in trace.nodes if n.name == "x")
    assert x.value is None and x.grad is None and x.stats.numel == 2000 and x.stats.max == 1999.0
    assert x.grad_stats.mean == 2.0


def test_limits_truncate_with_notice() -> None:
    source = "import torch\nh = torch.ones(2, requires_grad=True)\nfor i in range(200):\n    h = h * 1.01\nh.sum().backward()\nprint('x' * 5000)\n"
    trace = trace_of(source, TraceSettings(max_nodes=50, max_stdout_bytes=100))
    assert trace.status == "ok" and trace.truncated and trace.notice
    assert len(trace.nodes) <= 50 and len(trace.stdout) == 100
    Trace.model_validate_json(trace.model_dump_json())


def test_walk_is_iterative_on_a_100k_chain() -> None:
    x = torch.ones(1, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    graph = Graph(TraceSettings(max_nodes=200_000, max_events=300_000))
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        root = graph.walk(y.grad_fn, 1)
    finally:
        sys.setrecursionlimit(old)
    assert root == 100_000 and len(graph.nodes) == 100_001 and len(graph.edges) == 100_000
    assert graph.nodes[0]["kind"] == "leaf"  # inputs get smaller ids than their consumers


def test_deep_recurrence_traced_through_backward() -> None:
    source = "import torch\nx = torch.ones(2, requires_grad=True)\nh = x\nfor i in range(3000):\n    h = h * 0.999\nh.sum().backward()\n"
    trace = trace_of(source, TraceSettings(max_nodes=10_000, max_events=20_000))
    assert trace.status == "ok" and not trace.truncated
    assert len(trace.passes[0].steps) == 3002
    assert trace.nodes[0].grad == pytest.approx([0.999**3000] * 2, rel=1e-4)


def test_same_program_same_bytes() -> None:
    for path in PROGRAMS:
        source = path.read_text()
        first = trace_of(source).model_dump_json()
        if " at 0x" in first:  # the program prints object addresses
            continue
        assert trace_of(source).model_dump_json() == first, path.stem


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_document_keys_in_the_models_order(path: Path) -> None:
    """The tracer builds its hottest dicts as literals (graph._add_usual_op, hooks' steps): same keys, same order."""
    from app.models import Edge, Event, Node, Pass, Step

    trace = json.loads(trace_json(path.read_text()))
    for items, model in ((trace["nodes"], Node), (trace["edges"], Edge), (trace["events"], Event), (trace["passes"], Pass)):
        for item in items:
            assert list(item) == list(model.model_fields), (model.__name__, item)
    for p in trace["passes"]:
        for step in p["steps"]:
            assert list(step) == list(Step.model_fields), step


def test_higher_order_and_autograd_grad() -> None:
    trace = trace_of((ROOT / "tests/programs/higher_order.py").read_text())
    assert [p.api for p in trace.passes] == ["torch.autograd.grad", "Tensor.backward"]
    assert trace.passes[0].create_graph and trace.passes[0].retain_graph
    x = next(n for n in trace.nodes if n.name == "x")
    assert [step_grad(trace, s) for s in trace.passes[0].steps if s.node == x.id] == [12.0]
    assert x.grad == 12.0


def test_display_of_bare_expressions() -> None:
    trace = trace_of((ROOT / "app/examples/seed_3_scalar_backward.py").read_text())
    shown = [(e.line, e.text) for e in trace.events if e.kind == "display"]
    assert shown == [(7, "tensor([2., 4., 6.])")]


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


def test_lone_surrogates_are_shown_escaped() -> None:
    trace = trace_of('print("a\\ud800b")\nraise ValueError("\\udcff")\n')
    assert trace.stdout == "a\\ud800b\n" and trace.error.message == "\\udcff"
    trace.model_dump_json().encode("utf-8")


def test_grad_changes_outside_backward_are_events() -> None:
    trace = trace_of((ROOT / "tests/programs/accumulate_and_zero.py").read_text())
    assert [(e.kind, e.line, e.value) for e in trace.events if e.kind == "grad"] == [("grad", 8, [0.0, 0.0]), ("grad", 12, None)]
    trace = trace_of((ROOT / "tests/programs/optimizer_loop.py").read_text())
    # opt.zero_grad() sets .grad to None (no event while it already is None); opt.step() updates w
    assert [(e.kind, e.line) for e in trace.events if e.kind in ("grad", "update")] == [
        ("update", 10),
        ("grad", 7),
        ("update", 10),
        ("grad", 7),
        ("update", 10),
    ]


@pytest.mark.parametrize("source", ["x = 1\0\n", "y = " + "(" * 300 + ")" * 300 + "\n", "z = " + "-" * 100_000 + "1\n"])
def test_sources_python_refuses_are_errors(source: str) -> None:
    trace = trace_of(source)
    assert trace.status == "error" and trace.error is not None and trace.nodes == []


def test_backward_arguments_are_bound_as_signature_bind_does() -> None:
    """hooks._arguments stands in for inspect.Signature.bind on the three entry points."""
    import inspect

    from app.tracer.hooks import _ORIGINAL, _arguments

    x = torch.ones(2, requires_grad=True)
    cases = {
        "Tensor.backward": [
            ((x,), {}),
            ((x, torch.ones(2)), {}),
            ((x,), {"retain_graph": True}),
            ((), {}),
            ((x,), {"bogus": 1}),
            ((x, None, True, False, None, 5), {}),
            ((x,), {"self": x}),
        ],
        "torch.autograd.backward": [((x,), {}), ((), {"tensors": x}), ((x,), {"grad_tensors": None, "inputs": [x]}), ((), {})],
        "torch.autograd.grad": [((x, x), {}), ((x,), {"inputs": x, "create_graph": True}), ((x,), {"outputs": x})],
    }
    for api, calls in cases.items():
        signature = inspect.signature(_ORIGINAL[api])
        for args, kwargs in calls:
            try:
                expected = dict(signature.bind(*args, **kwargs).arguments)
            except TypeError:
                expected = None
            assert _arguments(api, args, kwargs) == expected, (api, args, kwargs)


def test_a_run_keeps_nothing_alive_after_it() -> None:
    """Nothing of a run (its graph, its tensors) outlives it: the sandbox forks a child per run, but
    the CLI, the tests and the benchmarks trace many programs in one process. (A module the program
    imports for the first time may keep the sys.stdout of its moment, and with it one run: once.)"""
    import gc

    def graphs_alive() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if type(o) is Graph)

    for path in PROGRAMS:  # the modules they import, imported
        trace_of(path.read_text())
    before = graphs_alive()
    for path in PROGRAMS:
        trace_of(path.read_text())
    assert graphs_alive() == before


def test_keep_leaves_the_run_to_the_caller() -> None:
    """trace_json(keep=...): the same answer; the run's objects are the caller's to free (the sandbox's child never does)."""
    import weakref

    source = "import torch\nx = torch.ones(3, requires_grad=True)\ny = (x * 2).sum()\ny.backward()\n"
    keep: list = []
    assert trace_json(source, keep=keep) == trace_json(source)
    x = keep[0].globals["x"]
    assert x.grad.tolist() == [2.0, 2.0, 2.0]
    gone = weakref.ref(keep[0])
    del keep[:], x
    assert gone() is None


def test_the_program_is_compiled_as_python_would() -> None:
    """Not with the tracer's own `from __future__ import annotations`: annotations stay objects."""
    trace = trace_of("x: int = 1\nprint(__annotations__)\n")
    assert trace.status == "ok" and trace.stdout == "{'x': <class 'int'>}\n"


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
