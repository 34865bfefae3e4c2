"""The backward passes (app/tracer/hooks.py): every entry point, its arguments as torch binds them,
and the gradient changes made outside a pass."""

from __future__ import annotations

import torch

from app.tracer import trace_of
from tests.conftest import ROOT
from tests.reference import assert_close, run_reference, step_grad


def test_higher_order_and_autograd_grad() -> None:
    trace = trace_of((ROOT / "tests/programs/higher_order.py").read_text())
    assert [p.api for p in trace.passes] == ["torch.autograd.grad", "Tensor.backward"]
    assert trace.passes[0].create_graph and trace.passes[0].retain_graph
    x = next(n for n in trace.nodes if n.name == "x")
    assert [step_grad(trace, s) for s in trace.passes[0].steps if s.node == x.id] == [12.0]
    assert x.grad == 12.0


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


GRAD_OF_OUTPUTS = """import torch
torch.manual_seed(0)
x = torch.randn(6, requires_grad=True)
h = x * 2
a, b = h.split([2, 4])
loss = (a * 3).sum() + (b ** 2).sum()
ga, gb = torch.autograd.grad(loss, [a, b], retain_graph=True)
gh, gx = torch.autograd.grad(loss, [h, x])
"""


def test_autograd_grad_of_outputs_of_one_node_is_one_step_by_output(path: str) -> None:
    """autograd.grad(loss, [a, b]) of split's two outputs: one step for the split node, each gradient at
    its output's index (b's was written as output 0's, a second step of a's shape 2 holding 4 numbers);
    and an input whose node the engine ran anyway (h, on the way to x) keeps that one step."""
    trace, ref = trace_of(GRAD_OF_OUTPUTS), run_reference(GRAD_OF_OUTPUTS)
    assert trace.status == "ok", trace.error
    ns = ref.namespace
    split = next(n for n in trace.nodes if n.outputs)
    first, second = trace.passes
    (step,) = [s for s in first.steps if s.node == split.id]
    assert [o.index for o in split.outputs or []] == [ns["a"].output_nr, ns["b"].output_nr] == [0, 1]
    assert_close(step_grad(trace, step, 0), ns["ga"], "ga")
    assert_close(step_grad(trace, step, 1), ns["gb"], "gb")
    h = next(n for n in trace.nodes if n.name == "h")
    x = next(n for n in trace.nodes if n.name == "x")
    (at_h,) = [s for s in second.steps if s.node == h.id]
    assert_close(step_grad(trace, at_h), ns["gh"], "gh")
    (at_x,) = [s for s in second.steps if s.node == x.id]
    assert_close(step_grad(trace, at_x), ns["gx"], "gx")


NONLEAF_INPUTS = """import torch
torch.manual_seed(0)
x = torch.randn(3, requires_grad=True)
h = x.exp()
y = (h * h).sum()
y.backward(inputs=[h], retain_graph=True)
q = h * 3
torch.autograd.backward([q.sum()], inputs=[q])
print(h.grad, q.grad, x.grad)
"""


def test_a_non_leaf_given_as_backward_inputs_keeps_its_grad(path: str) -> None:
    """backward(inputs=[h]) of a non-leaf h accumulates into h.grad and retains it (torch sets
    retains_grad): the trace had h.grad null and retains_grad false."""
    trace, ref = trace_of(NONLEAF_INPUTS), run_reference(NONLEAF_INPUTS)
    assert trace.status == "ok", trace.error
    assert trace.stdout == ref.stdout
    for name in ("h", "q"):
        t = ref.namespace[name]
        node = next(n for n in trace.nodes if n.name == name)
        assert t.retains_grad and node.retains_grad, name
        assert_close(node.grad, t.grad, f"{name}.grad")
    x = next(n for n in trace.nodes if n.name == "x")
    assert x.grad is None and ref.namespace["x"].grad is None
