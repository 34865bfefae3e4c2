"""The tracer against PyTorch itself: every example and test program, traced and run directly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.config import TraceSettings
from app.models import Trace
from app.tracer import native, trace_json, trace_of
from tests.reference import PROGRAMS, assert_close, assert_close_or_stats, normalize, run_reference, sent_grad, step_grad

ROOT = Path(__file__).resolve().parents[2]


def _latest(trace: Trace, name: str):
    """The node last bound to `name` at module level (a node can carry several names: `c, d = d, c`)."""
    named = [(b.binding, n) for n in trace.nodes for b in n.names if b.name == name and b.scope is None]
    return max(named, key=lambda pair: pair[0])[1] if named else None


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
            if trace.nodes[s.node].kind == "leaf":  # an op's output 0 may get no gradient (x.chunk(3)[2])
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


def test_lone_surrogates_are_shown_escaped() -> None:
    trace = trace_of('print("a\\ud800b")\nraise ValueError("\\udcff")\n')
    assert trace.stdout == "a\\ud800b\n" and trace.error.message == "\\udcff"


@pytest.mark.parametrize("compiled", [True, False], ids=["C++", "Python"])
def test_lone_surrogates_beside_tensor_values_are_shown_escaped(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A value written as JSON text (native.cpp's orjson Fragment) goes through the escaping path too:
    it made that path raise, and the run lose its trace."""
    if not compiled:
        monkeypatch.setattr(native, "compiled", None)
    source = (
        "import torch\nx = torch.tensor([1.5, -2.0], requires_grad=True)\ny = (x * x).sum()\nprint('a\\ud800')\ny.backward()\n"
    )
    trace = trace_of(source)
    assert trace.status == "ok" and trace.stdout == "a\\ud800\n"
    x = next(n for n in trace.nodes if n.name == "x")
    assert x.value == [1.5, -2.0] and x.grad == [3.0, -4.0]  # torch: d(x·x)/dx = 2x
    trace.model_dump_json().encode("utf-8")


def test_calls_that_make_no_graph_record_nothing_and_leaves_made_under_no_grad_are_kept() -> None:
    """capture's early return (a result with no grad_fn that does not require grad, or no tensor at
    all) leaves out only what records nothing: a leaf made under no_grad, a subclass's output and an
    optimizer's update are still in the trace, with torch's values and gradients."""
    source = (
        "import torch\n"
        "class Tagged(torch.Tensor):\n"
        "    pass\n"
        "x = torch.tensor([1.0, -2.0, 3.0])\n"
        "with torch.no_grad():\n"
        "    w = torch.tensor([0.5, 1.5, -1.0], requires_grad=True)\n"
        "    s = (x * 2).sqrt().sum()\n"
        "    top = x.max(dim=0)\n"
        "    flag = torch.is_complex(x)\n"
        "t = x.as_subclass(Tagged) * w\n"
        "loss = (t * 3).sum()\n"
        "loss.backward()\n"
        "with torch.no_grad():\n"
        "    w.sub_(0.1 * w.grad)\n"
    )
    trace = trace_of(source)
    assert trace.status == "ok", trace.error
    ref = run_reference(source).namespace
    by_name = {n.name: n for n in trace.nodes if n.name}
    assert by_name["w"].kind == "leaf" and by_name["w"].line == 6
    assert by_name["s"].kind == "constant" and "flag" not in by_name  # a name binds a constant; a bool has no node
    assert_close(by_name["s"].value, ref["s"], "s")
    ops = [n.op for n in trace.nodes if n.kind == "op"]
    assert not any(op.startswith(("Sqrt", "Max", "Sum")) for op in ops[: ops.index("MulBackward0")])  # nothing from no_grad
    for name in ("t", "loss"):  # a subclass's output, and what follows: recorded as before
        assert by_name[name].op == type(ref[name].grad_fn).__name__, name
    assert_close(by_name["w"].grad, ref["w"].grad, "w.grad")
    update = [e for e in trace.events if e.kind == "update" and e.node == by_name["w"].id]
    assert len(update) == 1 and update[0].line == 14
    assert_close(update[0].value, ref["w"].detach(), "w after the update")
