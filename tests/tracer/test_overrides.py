"""What if: a traced run with a value put in place changes exactly what torch says the edited program changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from app.models import Trace
from app.tracer import trace_of
from app.tracer.names import bound_names
from app.tracer.run import trace_json
from tests.reference import decode, normalize, run_reference

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "app" / "examples"


def _traced(source: str, overrides: dict[str, Any] | None = None) -> Trace:
    return Trace.model_validate_json(trace_json(source, overrides=overrides))


def _named(trace: Trace) -> dict[str, Any]:
    """Each name's last binding: (value after the in-place updates the trace recorded, grad)."""
    updated = {e.node: e.value for e in trace.events if e.kind == "update" and e.text is None}
    out: dict[str, Any] = {}
    for node in trace.nodes:
        if node.name is not None and (node.name not in out or (node.binding or 0) >= out[node.name][0]):
            out[node.name] = (node.binding or 0, updated.get(node.id, node.value), node.grad)
    return {name: (value, grad) for name, (_, value, grad) in out.items()}


def _torch_named(source: str) -> dict[str, Any]:
    ns = run_reference(source).namespace
    tensors = {k: v for k, v in ns.items() if isinstance(v, torch.Tensor)}
    for name, module in list(ns.items()):
        if isinstance(module, torch.nn.Module):
            tensors.update({f"{name}.{p}": t for p, t in module.named_parameters()})
    grads = {k: t.grad if t.is_leaf or t.retains_grad else None for k, t in tensors.items()}
    return {k: (t.detach().tolist(), None if grads[k] is None else grads[k].tolist()) for k, t in tensors.items()}


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    x, y = torch.tensor(decode(a), dtype=torch.float64), torch.tensor(decode(b), dtype=torch.float64)
    return x.shape == y.shape and torch.allclose(x, y, rtol=1e-6, atol=1e-7, equal_nan=True)


CASES = [
    ("seed_5_chain", {"w1": 2.5}, "w1 = torch.tensor(2.0, requires_grad=True)", "w1 = torch.tensor(2.5, requires_grad=True)"),
    ("seed_5_chain", {"b": -1.0}, "b = torch.tensor(4.0, requires_grad=False)", "b = torch.tensor(-1.0, requires_grad=False)"),
    (
        "seed_5_chain",
        {"x": [1, 2, 3, 4, 5]},
        "x = torch.ones(5, requires_grad=True)",
        "x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], requires_grad=True)",
    ),
    ("recurrence", {"h": [0.5, -0.5]}, "h = torch.zeros(2)", "h = torch.tensor([0.5, -0.5])"),
    (
        "mlp_step",
        {"model.0.bias": [0.1, -0.2, 0.3]},
        "optimizer = torch.optim",
        "with torch.no_grad():\n    model[0].bias.copy_(torch.tensor([0.1, -0.2, 0.3]))\noptimizer = torch.optim",
    ),
]


@pytest.mark.parametrize(("example", "overrides", "line", "edited"), CASES, ids=lambda c: str(c)[:30])
def test_an_override_changes_exactly_what_torch_says(example: str, overrides: dict[str, Any], line: str, edited: str) -> None:
    source = (EXAMPLES / f"{example}.py").read_text()
    assert line in source
    before, after = _traced(source), _traced(source, overrides)
    torch_before, torch_after = _torch_named(source), _torch_named(source.replace(line, edited, 1))
    assert after.status == "ok" and normalize(after.stdout) == normalize(run_reference(source.replace(line, edited, 1)).stdout)
    assert [o.applied for o in after.overrides] == [True] * len(overrides)
    traced_before, traced_after = _named(before), _named(after)
    for name, (value, grad) in torch_after.items():
        if name in traced_after:
            assert _close(traced_after[name][0], value), name
            assert _close(traced_after[name][1], grad), name
    moved = {n for n in torch_after if n in traced_after and torch_after[n] != torch_before[n]}
    traced_moved = {
        n
        for n in traced_after
        if not (_close(traced_after[n][0], traced_before[n][0]) and _close(traced_after[n][1], traced_before[n][1]))
    }
    assert traced_moved == moved


def test_the_node_that_took_the_value_says_so() -> None:
    trace = _traced((EXAMPLES / "seed_5_chain.py").read_text(), {"w1": 2.5})
    (o,) = trace.overrides
    node = trace.nodes[o.node]
    assert (o.name, o.value, o.line, o.problem, node.name, node.value) == ("w1", 2.5, 5, None, "w1", 2.5)
    assert node.kind == "leaf" and node.grad == 3.0  # dy/dw1 = mean(x) * w2 does not depend on w1


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"w9": 1.0}, "unknown_name"),
        ({"x": [1.0, 2.0]}, "shape"),
        ({"w1": "two"}, "shape"),
        ({"l1": 1.0}, "not_leaf"),
    ],
)
def test_what_cannot_be_put_in_place_is_reported(overrides: dict[str, Any], problem: str) -> None:
    trace = _traced((EXAMPLES / "seed_5_chain.py").read_text(), overrides)
    assert [(o.applied, o.problem) for o in trace.overrides] == [(False, problem)]
    if problem == "unknown_name":
        assert trace.nodes == [] and trace.stdout == ""  # not run at all


def test_a_name_bound_only_to_numbers_is_not_a_tensor() -> None:
    source = "import torch\nlr = 0.1\nw = torch.tensor(1.0, requires_grad=True)\n(w * lr).backward()\n"
    trace = _traced(source, {"lr": 0.5})
    assert [o.problem for o in trace.overrides] == ["not_tensor"]


def test_a_binding_the_run_never_reaches_is_not_applied() -> None:
    source = "import torch\nif False:\n    w = torch.tensor(1.0)\nprint('done')\n"
    trace = _traced(source, {"w": 2.0})
    assert [(o.applied, o.problem) for o in trace.overrides] == [(False, "not_reached")] and trace.stdout == "done\n"


def test_only_the_first_binding_takes_the_value() -> None:
    source = "import torch\nh = torch.zeros(1)\nfor i in range(3):\n    h = h + 1\nprint(h)\n"
    assert _traced(source, {"h": 10.0}).stdout == "tensor([13.])\n"


def test_a_scalar_fills_a_tensor_and_keeps_its_dtype() -> None:
    source = "import torch\nk = torch.arange(3)\nprint(k * 2)\n"
    assert _traced(source, {"k": 4}).stdout == "tensor([8, 8, 8])\n"


def test_without_overrides_the_trace_is_unchanged() -> None:
    source = (EXAMPLES / "seed_5_chain.py").read_text()
    plain = normalize(trace_of(source).model_dump_json())
    assert normalize(_traced(source).model_dump_json()) == plain
    assert normalize(_traced(source, {}).model_dump_json()) == plain  # nothing asked: nothing to report


def test_bound_names_are_the_bindings_the_rewrite_reports() -> None:
    source = "import torch\na = 1\nb, (c, d) = 1, (2, 3)\nfor i in range(2):\n    e = i\nwith open('f') as f:\n    pass\ndef g(x):\n    y = x\n"
    assert sorted(bound_names(source)) == ["a", "b", "c", "d", "e", "f", "i", "y"]
