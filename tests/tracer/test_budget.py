"""The byte budget (trace.max_trace_bytes): a trace too big degrades, least useful values first, with a notice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.config import TraceSettings
from app.models import Trace
from app.tracer import trace_json
from tests.reference import assert_close_or_stats, run_reference

ROOT = Path(__file__).resolve().parents[2]
MLP = """import torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(20, 20), torch.nn.Tanh(), torch.nn.Linear(20, 20))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(16, 20)
for step in range(2):
    loss = model(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


def _kinds_left_out(full: dict, cut: dict) -> set[str]:
    """Which kinds of values the cut trace left out that the full one carried."""
    kinds = set()
    for a, b in zip(full["tensors"], cut["tensors"], strict=True):
        if a["value"] is not None and b["value"] is None:
            kinds.add("step gradient")
            assert b["stats"] is not None and b["stats"]["numel"] > 0  # its stats in its place
    for a, b in zip(full["nodes"], cut["nodes"], strict=True):
        if a["value"] is not None and b["value"] is None:
            kinds.add(f"{a['kind']} value")
    return kinds


def test_a_trace_within_its_budget_is_untouched() -> None:
    data = trace_json(MLP)
    assert len(data) < TraceSettings().max_trace_bytes and json.loads(data)["notice"] is None


@pytest.mark.parametrize("fraction", [0.8, 0.5, 0.3])
def test_past_the_budget_values_become_stats_least_useful_first(path: str, fraction: float) -> None:
    full = json.loads(trace_json(MLP, TraceSettings(max_trace_bytes=10**9)))
    budget = int(len(json.dumps(full, separators=(",", ":"))) * fraction)
    data = trace_json(MLP, TraceSettings(max_trace_bytes=budget))
    cut = json.loads(data)
    assert len(data) <= budget and cut["status"] == "ok" and cut["truncated"]
    assert "max_trace_bytes" in cut["notice"]
    # nothing but values went: the same graph, story and steps
    for key in ("edges", "modules"):
        assert cut[key] == full[key]
    assert [[s["node"] for s in p["steps"]] for p in cut["passes"]] == [[s["node"] for s in p["steps"]] for p in full["passes"]]
    kinds = _kinds_left_out(full, cut)
    assert "step gradient" in kinds  # the first to go
    if "leaf value" in kinds:
        assert "op value" in kinds  # parameters' values last
    Trace.model_validate_json(data)


def test_what_stays_is_still_torchs(path: str) -> None:
    full_size = len(trace_json(MLP, TraceSettings(max_trace_bytes=10**9)))
    trace = Trace.model_validate_json(trace_json(MLP, TraceSettings(max_trace_bytes=full_size // 2)))
    ref = run_reference(MLP)
    params = dict(ref.namespace["model"].named_parameters())
    for node in trace.nodes:
        if node.kind == "leaf" and node.name and node.name.startswith("model."):
            p = params[node.name.removeprefix("model.")]
            assert_close_or_stats(node.grad, node.grad_stats, p.grad, f"{node.name}.grad")
    for entry in trace.tensors:  # a left-out gradient keeps its shape, dtype and stats
        assert entry.value is not None or entry.stats is not None


def test_the_8_block_gpt_comes_back_within_the_default_budget() -> None:
    source = (ROOT / "tests" / "programs" / "models" / "gpt.py").read_text()
    data = trace_json(source)
    trace = Trace.model_validate_json(data)
    assert trace.status == "ok" and len(data) <= TraceSettings().max_trace_bytes
    assert len(trace.nodes) > 1000 and len(trace.passes) == 3 and trace.notice


def test_a_trace_past_its_budget_writes_only_about_what_it_keeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """native.cpp leaves values unwritten (copies) until budget.fit has decided: the 8-block GPT's trace,
    twice its budget before anything is left out, formats little more than the values it sends."""
    from app.tracer import native

    compiled = native.compiled
    assert compiled is not None, "app/tracer/native.cpp is built by make"
    formatted = []

    class Counting:
        def __getattr__(self, name: str):
            return getattr(compiled, name)

        def texts(self, tensors, fragment):
            formatted.extend(t.numel() for t in tensors)
            return compiled.texts(tensors, fragment)

    monkeypatch.setattr(native, "compiled", Counting())
    source = (ROOT / "tests" / "programs" / "models" / "gpt.py").read_text()
    trace = json.loads(trace_json(source))
    assert trace["notice"] and "max_trace_bytes" in trace["notice"]

    def size(holder: dict) -> int:
        if holder["value"] is None or holder["shape"] is None:  # (a multi-output node: its outputs hold the values)
            return 0
        n = 1
        for d in holder["shape"]:
            n *= d
        return n if n >= 32 else 0

    holders = trace["tensors"] + trace["nodes"] + [o for n in trace["nodes"] for o in n["outputs"] or ()]
    kept = sum(size(h) for h in holders)
    assert kept > 100_000
    assert kept <= sum(formatted) <= 1.25 * kept
