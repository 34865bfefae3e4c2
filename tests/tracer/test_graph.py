"""The walk of autograd's graph (app/tracer/graph.py): iterative, so no chain is too long for it."""

from __future__ import annotations

import sys

import pytest
import torch

from app.config import TraceSettings
from app.tracer import trace_of
from app.tracer.graph import Graph


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
