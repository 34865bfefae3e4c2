"""The backward passes (app/tracer/hooks.py): every entry point, its arguments as torch binds them,
and the gradient changes made outside a pass."""

from __future__ import annotations

import torch

from app.tracer import trace_of
from tests.conftest import ROOT
from tests.reference import step_grad


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
