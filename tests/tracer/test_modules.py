"""Module structure and loop iterations in the trace, against the models' own named_modules()."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from app.config import TraceSettings
from app.tracer import trace_of as run
from tests.reference import assert_close, run_reference

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "programs" / "models"


def _paths(model: torch.nn.Module, name: str) -> list[str]:
    return [f"{name}.{path}" if path else name for path, _ in model.named_modules()]


@pytest.mark.parametrize("program", ["gpt", "resnet"])
def test_the_module_list_is_the_models_own(path: str, program: str) -> None:
    source = (MODELS / f"{program}.py").read_text()
    trace, ref = run(source), run_reference(source)
    model = ref.namespace["model"]
    paths = _paths(model, "model")
    assert list(dict.fromkeys(m.path for m in trace.modules)) == paths  # named_modules' order
    modules = dict(model.named_modules())
    nodes = {n.id: n for n in trace.nodes}
    for m in trace.modules:
        own = modules[m.path.removeprefix("model").removeprefix(".")]
        assert m.class_name == type(own).__name__ and m.parent == (m.path.rpartition(".")[0] or None)
        expected = {f"{m.path}.{p}" for p, _ in own.named_parameters(recurse=False)}
        assert {nodes[i].name for i in m.params} == expected, m.path
        for i in m.outputs + m.inputs:
            assert i in nodes
    calls = {m.path: [] for m in trace.modules}
    for m in trace.modules:
        calls[m.path].append(m.call)
    steps = 3 if program == "gpt" else 1
    assert calls["model"] == list(range(steps))
    container = "model.blocks"  # a ModuleList (never called) or a Sequential (called)
    assert calls[container] == ([None] if program == "gpt" else list(range(steps)))


class _ModuleOfEachGradFn(TorchFunctionMode):
    """torch's own account: every grad_fn a call makes (the one it returns and those below it not seen
    before), with the innermost module whose forward was running, from the modules' global hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[torch.nn.Module] = []
        self.made: list[tuple[Any, torch.nn.Module | None]] = []  # (grad_fn, module), kept alive
        self._seen: set[int] = set()

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        outputs = result if isinstance(result, (tuple, list)) else [result]
        stack = [t.grad_fn for t in outputs if isinstance(t, torch.Tensor) and t.grad_fn is not None]
        while stack:
            f = stack.pop()
            if f is None or id(f) in self._seen or type(f).__name__ == "AccumulateGrad":
                continue
            self._seen.add(id(f))
            self.made.append((f, self.stack[-1] if self.stack else None))
            stack.extend(c for c, _ in f.next_functions)
        return result


def _torchs_modules_of_ops(source: str) -> Counter[tuple[str | None, str]]:
    """(module path, grad_fn class) of every grad_fn the program made, run in torch without the tracer."""
    mode = _ModuleOfEachGradFn()

    def enter(module: torch.nn.Module, args: Any) -> None:
        mode.stack.append(module)

    def leave(module: torch.nn.Module, args: Any, out: Any) -> None:  # returns None: the output stays
        mode.stack.pop()

    pre = torch.nn.modules.module.register_module_forward_pre_hook(enter)
    post = torch.nn.modules.module.register_module_forward_hook(leave)
    try:
        with mode:
            ns = run_reference(source).namespace
    finally:
        pre.remove()
        post.remove()
    paths = {id(m): "model" + (f".{p}" if p else "") for p, m in ns["model"].named_modules()}
    return Counter((None if m is None else paths[id(m)], type(f).__name__) for f, m in mode.made)


@pytest.mark.parametrize("program", ["gpt", "resnet"])
def test_every_op_node_carries_the_module_torch_ran_it_in(path: str, program: str) -> None:
    source = (MODELS / f"{program}.py").read_text()
    trace = run(source)
    got = Counter((n.module, n.op) for n in trace.nodes if n.kind == "op")
    expected = _torchs_modules_of_ops(source)
    assert got == expected, (got - expected, expected - got)
    assert sum(c for (module, _), c in got.items() if module is not None) > 0.9 * sum(got.values())  # most are inside


def test_each_op_records_the_innermost_module_and_the_call() -> None:
    source = (MODELS / "gpt.py").read_text()
    trace, ref = run(source, TraceSettings(max_trace_bytes=10**9)), run_reference(source)
    model_calls = [m for m in trace.modules if m.path == "model"]
    logits = [n for n in trace.nodes for b in n.names if b.name == "logits" and b.scope is None]
    assert [c.outputs for c in model_calls] == [[n.id] for n in logits]
    assert_close(logits[-1].value, ref.namespace["logits"], "logits")
    for call, node in enumerate(logits):
        assert (node.op, node.module, node.module_call) == ("UnsafeViewBackward0", "model.head", call)
    head_ops = {n.op for n in trace.nodes if n.module == "model.blocks.7.attn.qkv"}
    assert "AddmmBackward0" in head_ops or "AddBackward0" in head_ops
    splits = [n for n in trace.nodes if n.op == "SplitBackward0"]
    assert [n.module for n in splits] == [f"model.blocks.{i}.attn" for i in range(8)] * 3
    loss = [n for n in trace.nodes for b in n.names if b.name == "loss"]
    assert [n.module for n in loss] == [None] * 3  # F.cross_entropy at module level: no module
    params = [n for n in trace.nodes if n.kind == "leaf"]
    assert all(n.module == n.name.rpartition(".")[0] for n in params)  # first used by its own module


def test_training_loop_iterations_group_nodes_and_passes() -> None:
    source = (MODELS / "gpt.py").read_text()
    trace = run(source)
    line = next(i for i, text in enumerate(source.splitlines(), 1) if text.startswith("for step in range(3)"))
    assert [(p.iteration, p.loop) for p in trace.passes] == [(1, line), (2, line), (3, line)]
    loss = [n for n in trace.nodes for b in n.names if b.name == "loss"]
    assert [(n.iteration, n.loop) for n in loss] == [(1, line), (2, line), (3, line)]
    before = [n for n in trace.nodes if n.name in ("data", "inputs", "targets")]  # made before the loop
    assert len(before) == 3 and all(n.iteration is None and n.loop is None for n in before)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("y = torch.nn.Linear(2, 2)(x)\n", ["Linear"]),
        ("y = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh())(x)\n", ["Sequential", "Sequential.0", "Sequential.1"]),
        (  # a module-level name before the one inside the function that made it
            "def make():\n    net = torch.nn.Sequential(torch.nn.Linear(2, 2))\n    return net\nmodel = make()\ny = model(x)\n",
            ["model", "model.0"],
        ),
        (  # a forward that raised: the calls after it are still told apart
            (
                "class Bad(torch.nn.Module):\n    def forward(self, x):\n        raise ValueError('no')\n"
                "bad, lin = Bad(), torch.nn.Linear(2, 2)\ntry:\n    bad(x)\nexcept ValueError:\n    pass\ny = lin(x)\n"
            ),
            ["bad", "lin"],
        ),
    ],
)
def test_module_paths_without_a_model_name(body: str, expected: list[str]) -> None:
    trace = run(f"import torch\ntorch.manual_seed(0)\nx = torch.randn(3, 2, requires_grad=True)\n{body}")
    assert trace.status == "ok", trace.error
    assert [m.path for m in trace.modules] == expected
    y = next(n for n in trace.nodes if n.name == "y")
    assert y.module == expected[-1]


def test_module_calls_and_outputs_are_bounded_by_max_nodes() -> None:
    source = (
        "import torch\nlin = torch.nn.Linear(2, 2)\nx = torch.randn(3, 2)\nwith torch.no_grad():\n"
        "    for i in range(40):\n        x = lin(x)\nparts = torch.randn(60, requires_grad=True).unbind()\n"
    )
    trace = run(source, TraceSettings(max_nodes=20))
    assert trace.status == "ok" and trace.truncated and "max_nodes" in trace.notice
    assert [m.call for m in trace.modules] == list(range(20))
    assert sum(len(n.outputs or []) for n in trace.nodes) <= 20
