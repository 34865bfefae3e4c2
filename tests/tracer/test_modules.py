"""Module structure and loop iterations in the trace, against the models' own named_modules()."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from app.config import TraceSettings
from app.tracer import trace_of as run
from tests.reference import assert_close, assert_close_or_stats, run_reference

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "programs" / "models"


PROGRAMS = sorted(p.stem for p in MODELS.glob("*.py"))  # gpt, resnet and the ones no tracer test was written for


class _TorchsAccount(TorchFunctionMode):
    """torch's own account of a run, from the modules' global forward hooks: each module's calls and
    what each call returned, and every grad_fn each torch call made (the one it returns and those below
    it not seen before) with the innermost module whose forward was running."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[torch.nn.Module] = []
        self.made: list[tuple[Any, torch.nn.Module | None]] = []  # (grad_fn, module), kept alive
        self.returned: dict[int, list[list[torch.Tensor]]] = {}  # id(module) -> per call, the tensors it returned (copies)
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

    def enter(self, module: torch.nn.Module, args: Any) -> None:
        self.stack.append(module)

    def leave(self, module: torch.nn.Module, args: Any, out: Any) -> None:  # returns None: the output stays
        self.stack.pop()
        tensors = [out] if isinstance(out, torch.Tensor) else [t for t in out if isinstance(t, torch.Tensor)]
        self.returned.setdefault(id(module), []).append([t.detach().clone() for t in tensors])


def _torchs_account(source: str) -> tuple[torch.nn.Module, _TorchsAccount]:
    """The program's `model` and torch's account of its run, without the tracer."""
    account = _TorchsAccount()
    pre = torch.nn.modules.module.register_module_forward_pre_hook(account.enter)
    post = torch.nn.modules.module.register_module_forward_hook(account.leave)
    try:
        with account:
            ns = run_reference(source).namespace
    finally:
        pre.remove()
        post.remove()
    return ns["model"], account


def _path(prefix: str) -> str:
    return "model" + (f".{prefix}" if prefix else "")


@pytest.mark.parametrize("program", PROGRAMS)
def test_the_module_list_is_the_models_own(path: str, program: str) -> None:
    """Paths, classes, parents, parameters (names, counts) and calls as named_modules() and torch's hooks
    give them; each call's output value as torch returned it."""
    source = (MODELS / f"{program}.py").read_text()
    trace = run(source)
    model, account = _torchs_account(source)
    modules = {_path(p): m for p, m in model.named_modules()}
    assert list(dict.fromkeys(m.path for m in trace.modules)) == list(modules)  # named_modules' order, shared once
    param_names = {id(t): _path(p) for p, t in model.named_parameters()}  # a tied weight: its first name
    nodes = {n.id: n for n in trace.nodes}
    calls: dict[str, list[int | None]] = {m.path: [] for m in trace.modules}
    compared = 0
    for m in trace.modules:
        own = modules[m.path]
        calls[m.path].append(m.call)
        assert m.class_name == type(own).__name__ and m.parent == (m.path.rpartition(".")[0] or None)
        params = list(own.parameters(recurse=False))
        assert sorted(nodes[i].name for i in m.params) == sorted(param_names[id(t)] for t in params), m.path
        assert sum(math.prod(nodes[i].shape) for i in m.params) == sum(t.numel() for t in params), m.path
        assert all(i in nodes for i in m.inputs + m.outputs)
        returned = account.returned.get(id(own), [])
        if m.call is not None:
            assert len(m.outputs) == len(returned[m.call]), m.path
            for i, t in zip(m.outputs, returned[m.call], strict=True):
                node = nodes[i]
                if node.value is not None or node.stats is not None:  # both null: an output past max_nodes
                    assert_close_or_stats(node.value, node.stats, t, f"{m.path} call {m.call}")
                    compared += 1
    assert compared >= len(modules) // 2
    for p, module in modules.items():  # called as often as torch's hooks saw it, or never (call: null)
        times = len(account.returned.get(id(module), []))
        assert calls[p] == (list(range(times)) if times else [None]), p


@pytest.mark.parametrize("program", PROGRAMS)
def test_every_op_node_carries_the_module_torch_ran_it_in(path: str, program: str) -> None:
    source = (MODELS / f"{program}.py").read_text()
    trace = run(source)
    model, account = _torchs_account(source)
    paths = {id(m): _path(p) for p, m in model.named_modules()}
    expected = Counter((None if m is None else paths[id(m)], type(f).__name__) for f, m in account.made)
    got = Counter((n.module, n.op) for n in trace.nodes if n.kind == "op")
    assert got == expected, (got - expected, expected - got)
    assert sum(c for (module, _), c in got.items() if module is not None) > 0.75 * sum(
        got.values()
    )  # most are inside: not vacuous


def test_a_tied_weight_and_a_shared_module() -> None:
    """tied.py: the output layer's weight is the embedding's (one leaf, in both modules' params), `mix`
    is also `again` (one module, called twice per forward), and chunk's two outputs are both held."""
    source = (MODELS / "tied.py").read_text()
    trace = run(source)
    model, account = _torchs_account(source)
    by_path: dict[str, list[Any]] = {}
    for m in trace.modules:
        by_path.setdefault(m.path, []).append(m)
    assert "model.again" not in by_path and [m.call for m in by_path["model.mix"]] == [0, 1, 2, 3]
    assert by_path["model.out"][0].params == by_path["model.embed"][0].params
    nodes = {n.id: n for n in trace.nodes}
    assert [nodes[i].name for i in by_path["model.out"][0].params] == ["model.embed.weight"]
    splits = [n for n in trace.nodes if n.op == "SplitBackward0"]
    assert [(n.module, [o.label for o in n.outputs or []]) for n in splits] == [
        ("model", ["left #1", "right #1"]),
        ("model", ["left #2", "right #2"]),
    ]
    norm_inputs = [m.inputs for m in by_path["model.norm"]]
    for call, (split, inputs) in enumerate(zip(splits, norm_inputs, strict=True)):
        assert inputs == [split.id]  # `left`: output 0 of the split node
        left = split.outputs[0]  # type: ignore[index]
        expected = account.returned[id(model.mix)][2 * call][0].tanh().chunk(2, dim=-1)[0]
        assert_close(left.value, expected, f"left, call {call}")
        assert left.shape == list(expected.shape) and split.outputs[1].shape == list(expected.shape)  # type: ignore[index]


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


def test_a_model_made_again_in_each_trial_keeps_its_name(path: str) -> None:
    """`model = ...` in each trial of a loop: two models share the path `model`; their calls are told
    apart by number in the order they ran (each (path, call) once), each trial's ops in its own call."""
    source = (
        "import torch\nfrom torch import nn\ntorch.manual_seed(0)\nx = torch.randn(4, 2)\n"
        "for lr in (0.1, 0.01):\n"
        "    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))\n"
        "    loss = model(x).pow(2).mean()\n    loss.backward()\n"
        "    print(model[0].weight.grad, model[2].bias.grad)\n"
    )
    trace, ref = run(source), run_reference(source)
    assert trace.status == "ok" and trace.stdout == ref.stdout
    keys = [(m.path, m.call) for m in trace.modules]
    assert len(keys) == len(set(keys)) == 8
    assert sorted(keys) == [(p, c) for p in ("model", "model.0", "model.1", "model.2") for c in (0, 1)]
    nodes = {n.id: n for n in trace.nodes}
    for m in trace.modules:
        for nid in m.params:  # a call's parameters are its own trial's
            assert nodes[nid].iteration == m.call + 1, (m.path, m.call, nodes[nid].name)
    for n in trace.nodes:
        if n.module is not None:
            assert n.module_call == n.iteration - 1, (n.id, n.op, n.module, n.module_call, n.iteration)
    last = {n.name: n for n in trace.nodes if n.kind == "leaf" and n.iteration == 2}
    for name, p in ref.namespace["model"].named_parameters(prefix="model"):
        assert_close(last[name].grad, p.grad, name)


def test_a_name_bound_again_to_a_module_that_holds_it(path: str) -> None:
    """`m = nn.Sequential(m, ...)`: the module `m` named before is now `m.0`, as named_modules() says."""
    source = (
        "import torch\nfrom torch import nn\ntorch.manual_seed(0)\nm = nn.Linear(2, 2)\n"
        "m = nn.Sequential(m, nn.Tanh())\nm = nn.Sequential(m, nn.Linear(2, 1))\n"
        "y = m(torch.randn(3, 2)).sum()\ny.backward()\n"
    )
    trace, ref = run(source), run_reference(source)
    assert trace.status == "ok", trace.error
    expected = [(p, type(mod).__name__) for p, mod in ref.namespace["m"].named_modules(prefix="m")]
    assert [(m.path, m.class_name) for m in trace.modules] == expected
    assert [m.parent for m in trace.modules] == [None, "m", "m.0", "m.0", "m"]
    assert {n.module for n in trace.nodes if n.op == "AddmmBackward0"} == {"m.0.0", "m.1"}


def test_a_module_nested_a_thousand_deep_fails_where_torch_fails(path: str) -> None:
    """Binding it walks its modules without recursion: the program's own RecursionError, at the line
    torch gives it (calling the model), not one from the tracer at `m = nn.Sequential(m)`."""
    source = (
        "import torch\nfrom torch import nn\nm = nn.Linear(2, 2)\nfor i in range(1000):\n"
        "    m = nn.Sequential(m)\nprint('built')\ny = m(torch.ones(1, 2)).sum()\n"
    )
    trace, ref = run(source), run_reference(source)
    assert isinstance(ref.error, RecursionError) and ref.stdout == "built\n"
    assert trace.status == "error" and trace.stdout == "built\n"
    assert (trace.error.type, trace.error.line) == ("RecursionError", 7)


COMPOSED = """import torch
from torch import nn
torch.manual_seed(0)
encoder = nn.Sequential(nn.Linear(4, 2), nn.ReLU())
decoder = nn.Sequential(nn.Linear(2, 4))
model = nn.Sequential(encoder, decoder)
shared = nn.Linear(4, 4)
x = torch.randn(3, 4)
z = encoder(x)
recon = model(shared(x))
loss = ((recon - x) ** 2).mean() + z.sum()
loss.backward()
"""


def test_a_module_built_under_its_own_name_is_called_in_its_place_in_the_model(path: str) -> None:
    """`model = nn.Sequential(encoder, decoder)`: the ops model(x) runs are in model.0.0, as named_modules()
    and torch's hooks say, not in encoder.0 (which left model's box empty and its parts beside it);
    encoder(x), called on its own, keeps its own name."""
    trace, ref = run(COMPOSED), run_reference(COMPOSED)
    assert trace.status == "ok", trace.error
    model, account = _torchs_account(COMPOSED)
    in_model = [m for m in trace.modules if m.path == "model" or m.path.startswith("model.")]
    expected = [(_path(p), type(m).__name__) for p, m in model.named_modules()]
    assert [(m.path, m.class_name) for m in in_model] == expected
    assert [m.call for m in in_model] == [0] * len(expected)
    assert [(m.path, m.call) for m in trace.modules if not m.path.startswith("model")] == [
        ("encoder", 0),
        ("encoder.0", 0),
        ("encoder.1", 0),
        ("shared", 0),
    ]
    encoder_call = account.returned[id(model[0])]
    nodes = {n.id: n for n in trace.nodes}
    (model_0,) = [m for m in trace.modules if m.path == "model.0"]
    (out,) = model_0.outputs
    assert_close(nodes[out].value, encoder_call[1][0], "model.0's output")  # the second call of encoder's module
    addmm = [(n.module, n.module_call) for n in trace.nodes if n.op == "AddmmBackward0"]
    assert addmm == [("encoder.0", 0), ("shared", 0), ("model.0.0", 0), ("model.1.0", 0)]
    for m in in_model:  # each entry's parameters are its module's own
        own = dict(ref.namespace["model"].named_modules(prefix="model"))[m.path]
        assert sum(math.prod(nodes[i].shape) for i in m.params) == sum(t.numel() for t in own.parameters(recurse=False))
