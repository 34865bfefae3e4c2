"""The walk of autograd's graph (app/tracer/graph.py): iterative, so no chain is too long for it."""

from __future__ import annotations

import sys

import pytest
import torch

from app.config import TraceSettings
from app.tracer import trace_of
from app.tracer.graph import Graph
from tests.reference import run_reference


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


class _CountedFn:
    """A grad_fn that counts how often its inputs are looked at."""

    looked = 0

    def __init__(self, below: object) -> None:
        self.below = below

    @property
    def next_functions(self) -> tuple:
        _CountedFn.looked += 1
        return ((self.below, 0),)


def test_past_the_cut_no_op_is_walked_again() -> None:
    """After max_nodes, each new op once walked down every op made since the cut (30,000 chained
    scalar ops: 74 s of CPU, a sandbox timeout, where torch takes 0.1 s): now nothing is looked for."""
    x = torch.ones(1, requires_grad=True)
    y = x
    for _ in range(5):
        y = y * 1.0
    graph = Graph(TraceSettings(max_nodes=3))
    assert graph.walk(y.grad_fn, 1) is None and len(graph.nodes) == 3 and graph.truncated_by
    chain: object = y.grad_fn
    for _ in range(50):  # ops made after the cut, none of them recorded
        chain = _CountedFn(chain)
    _CountedFn.looked = 0
    assert graph.walk(chain, 2) is None and _CountedFn.looked == 0


def test_a_long_chain_past_max_nodes_runs_as_torch_runs_it() -> None:
    source = "import torch\nx = torch.tensor(1.0, requires_grad=True)\ny = x\nfor i in range(3000):\n    y = y * 1.0001\ny.backward()\nprint(x.grad)\n"
    trace, ref = trace_of(source, TraceSettings(max_nodes=100)), run_reference(source)
    assert trace.status == "ok" and trace.truncated and "max_nodes" in (trace.notice or "")
    assert trace.stdout == ref.stdout and len(trace.nodes) == 100


def test_deep_recurrence_traced_through_backward() -> None:
    source = "import torch\nx = torch.ones(2, requires_grad=True)\nh = x\nfor i in range(3000):\n    h = h * 0.999\nh.sum().backward()\n"
    trace = trace_of(source, TraceSettings(max_nodes=10_000, max_events=20_000))
    assert trace.status == "ok" and not trace.truncated
    assert len(trace.passes[0].steps) == 3002
    assert trace.nodes[0].grad == pytest.approx([0.999**3000] * 2, rel=1e-4)
