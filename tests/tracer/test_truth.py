"""Where the trace once disagreed with torch or lost what the program bound (issue 11), on both paths.

Each test runs through the tracer's C++ part and through its pure-Python fallback (the `path`
fixture), and compares with the same program run directly in torch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch

from app.models import Node, Trace
from app.tracer import trace_of as run
from tests.conftest import settings_for
from tests.reference import assert_close, normalize, run_reference

if TYPE_CHECKING:
    from app.models import Output

ROOT = Path(__file__).resolve().parents[2]


def _bound(trace: Trace, name: str, scope: str | None = None) -> tuple[Node, Output | None]:
    """The node (and output, for a multi-output node) last bound to `name` in `scope`."""
    found: list[tuple[int, Node, Output | None]] = []
    for node in trace.nodes:
        holders: list[tuple[Any, Output | None]] = [(node, None)] + [(o, o) for o in node.outputs or []]
        for holder, output in holders:
            for b in holder.names:
                if b.name == name and b.scope == scope:
                    found.append((b.binding or 0, node, output))
    assert found, f"{name!r} (scope {scope}) is bound to nothing in the trace"
    _, node, output = max(found, key=lambda f: f[0])
    return node, output


def _value(node: Node, output: Output | None) -> Any:
    return node.value if output is None else output.value


def _tensor(trace: Trace, ref: int | None) -> Any:
    return None if ref is None else trace.tensors[ref].value


# -- every name bound to a node --------------------------------------------------------------

REBIND = """import torch
h = torch.ones(2, requires_grad=True)
for i in range(3):
    h = h * 2
last = h
last.sum().backward()
"""

UNPACK = """import torch
def accumulate(a):
    acc = a * 1
    for _ in range(2):
        acc = acc + a
    return acc, 2

a = torch.tensor([1.0, 2.0], requires_grad=True)
total, n = accumulate(a)
"""

MODULE_TUPLE = """import torch
class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)

    def forward(self, x):
        scores = self.lin(x).softmax(-1)
        out = scores * x
        return out, scores

torch.manual_seed(0)
layer = Layer()
x = torch.randn(2, 3)
y, scores = layer(x)
"""


def test_a_module_level_rebinding_is_one_more_name_of_the_node(path: str) -> None:
    trace, ref = run(REBIND), run_reference(REBIND)
    node, _ = _bound(trace, "last")
    assert_close(node.value, ref.namespace["last"], "last")
    assert [(b.name, b.binding, b.scope) for b in node.names] == [("h", 4, None), ("last", 1, None)]
    assert node.label == "h #4" and node.name == "h"  # both module level: the first shows


def test_names_unpacked_from_a_function_are_the_module_level_ones(path: str) -> None:
    trace, ref = run(UNPACK), run_reference(UNPACK)
    node, _ = _bound(trace, "total")
    assert_close(node.value, ref.namespace["total"], "total")
    assert node.label == "total" and node.name == "total"
    assert [(b.name, b.scope) for b in node.names] == [("acc", "accumulate"), ("total", None)]
    inside, _ = _bound(trace, "acc", "accumulate")
    assert inside.id == node.id and node.names[0].binding == 3 and node.names[0].line == 5


def test_names_returned_by_a_module_forward_are_the_callers(path: str) -> None:
    trace, ref = run(MODULE_TUPLE), run_reference(MODULE_TUPLE)
    for name, inner in (("y", "out"), ("scores", "scores")):
        node, _ = _bound(trace, name)
        assert_close(node.value, ref.namespace[name], name)
        assert node.label == name
        assert (inner, "forward") in [(b.name, b.scope) for b in node.names]


# -- every output of a multi-output grad_fn -------------------------------------------------

MULTI = {
    "split": (
        (
            "v = torch.arange(5.0, requires_grad=True)\nhead, tail = v.split([1, 4])\n"
            "loss = (head * 3).sum() + (tail * tail).sum()\n"
        ),
        ["head", "tail"],
    ),
    "chunk": (
        "w = torch.randn(6, 2, requires_grad=True)\na, b, c = w.chunk(3)\nloss = (a * b).sum() + c.exp().sum()\n",
        ["a", "b", "c"],
    ),
    "unbind": (
        "m = torch.randn(3, 4, requires_grad=True)\nr0, r1, r2 = m.unbind(0)\nloss = (r0 * r2).sum()\n",
        ["r0", "r1", "r2"],
    ),
    "qkv": (
        (
            "x = torch.randn(1, 4, 6, requires_grad=True)\nqkv = x * 2\nq, k, v = qkv.split(2, dim=2)\n"
            "att = (q @ k.transpose(-2, -1)).softmax(-1)\nloss = (att @ v).pow(2).sum()\n"
        ),
        ["q", "k", "v"],
    ),
}


@pytest.mark.parametrize("case", list(MULTI))
def test_every_output_of_a_multi_output_op_is_in_the_trace(path: str, case: str) -> None:
    body, outputs = MULTI[case]
    source = f"import torch\ntorch.manual_seed(0)\n{body}loss.backward(retain_graph=True)\n"
    trace, ref = run(source), run_reference(source)
    ns = ref.namespace
    expected = torch.autograd.grad(ns["loss"], [ns[o] for o in outputs], allow_unused=True)
    node, _ = _bound(trace, outputs[0])
    assert node.outputs is not None and node.value is None and node.label == node.op
    assert [o.index for o in node.outputs] == [ns[o].output_nr for o in outputs]
    for name, grad in zip(outputs, expected):
        holder, output = _bound(trace, name)
        assert holder.id == node.id and output is not None, name
        assert output.label == name and output.shape == list(ns[name].shape)
        assert_close(output.value, ns[name], name)
        # the edge from this output, and the gradient the backward step got for its slot
        users = [e for e in trace.edges if e.source == node.id and e.output == output.index]
        assert users or grad is None, f"no edge leaves {name}"
        step = next(s for s in trace.passes[0].steps if s.node == node.id)
        if grad is None:
            assert step.grad[output.index] is None, name
        else:
            assert_close(_tensor(trace, step.grad[output.index]), grad, f"gradient w.r.t. {name}")


@pytest.mark.parametrize("call", ["x.topk(2)", "x.max(dim=1)", "x.sort(dim=1)"])
def test_values_and_indices_of_a_reduction_are_both_in_the_trace(path: str, call: str) -> None:
    """The indices have no grad_fn (autograd treats them as constants): their own node, with their value."""
    source = f"import torch\ntorch.manual_seed(0)\nx = torch.randn(3, 4, requires_grad=True)\nvals, idx = {call}\nvals.sum().backward()\n"
    trace, ref = run(source), run_reference(source)
    for name in ("vals", "idx"):
        node, output = _bound(trace, name)
        assert output is None and node.outputs is None
        assert_close(node.value, ref.namespace[name], name)
    assert _bound(trace, "idx")[0].kind == "constant"


# -- functorch transforms, lazy views --------------------------------------------------------

FUNCTORCH = """import torch
from torch.func import grad, jacrev, vmap

torch.manual_seed(0)
def loss_fn(w, x):
    return ((x @ w) ** 2).sum()

w = torch.randn(3)
x = torch.randn(4, 3)
g = grad(loss_fn)(w, x)
j = jacrev(torch.sin)(w)
v = vmap(torch.dot)(x, x)
p = torch.randn(3, requires_grad=True)
per_example = vmap(grad(loss_fn), in_dims=(None, 0))(p, x)
print(g, j, v, per_example, sep="\\n")
"""


def test_functorch_transforms_run_under_the_tracer(path: str) -> None:
    trace, ref = run(FUNCTORCH), run_reference(FUNCTORCH)
    assert trace.status == "ok", trace.error
    assert normalize(trace.stdout) == normalize(ref.stdout)
    for name in ("g", "j", "v", "per_example"):
        node, _ = _bound(trace, name)
        assert_close(node.value, ref.namespace[name], name)


BATCHED = """import torch
torch.manual_seed(0)
x = torch.randn(3, requires_grad=True)
y = x.sin() * x
(jac,) = torch.autograd.grad(y, x, grad_outputs=torch.eye(3), is_grads_batched=True)
print(jac)
"""


def test_batched_gradients_of_autograd_grad_are_traced(path: str) -> None:
    """is_grads_batched=True runs backward under legacy vmap: its steps' gradients are batched tensors
    (no one value; reading one raised inside the pass's end and lost the whole trace: "killed" through
    the sandbox). Now the steps are there without values, and what autograd.grad returned with its own."""
    trace, ref = run(BATCHED), run_reference(BATCHED)
    assert trace.status == "ok", trace.error
    assert normalize(trace.stdout) == normalize(ref.stdout)
    (p,) = trace.passes
    x = next(n for n in trace.nodes if n.name == "x")
    (at_x,) = [s for s in p.steps if s.node == x.id]
    assert_close(_tensor(trace, at_x.grad[0]), ref.namespace["jac"], "jac")


CONJ = """import torch
z = torch.tensor([1 + 2j, 3 - 1j], requires_grad=True)
c = torch.tensor([2 + 0j, 1j])
w = z.conj()
im = w.imag
loss = (w * c).real.sum() + im.sum()
loss.backward()
"""


def test_lazy_conjugate_and_negative_views_are_read_resolved(path: str) -> None:
    trace, ref = run(CONJ), run_reference(CONJ)
    assert trace.status == "ok", trace.error
    for name in ("w", "im"):
        node, _ = _bound(trace, name)
        expected = ref.namespace[name].resolve_conj().resolve_neg()
        assert_close(node.value, torch.view_as_real(expected) if expected.is_complex() else expected, name)
    z, _ = _bound(trace, "z")
    assert_close(z.grad, torch.view_as_real(ref.namespace["z"].grad.resolve_conj()), "z.grad")
    step = next(s for s in trace.passes[0].steps if s.node == z.id)
    assert_close(_tensor(trace, step.grad[0]), torch.view_as_real(ref.namespace["z"].grad.resolve_conj()), "z's step")


# -- one program, one trace, wherever it runs -----------------------------------------------

THREADED = """import torch
torch.manual_seed(0)
x = torch.randn(4_000_000)
print(x.sum().item(), (x @ x).item())  # summed in one chunk per thread: the last digits depend on how many
"""


def test_the_cli_prints_what_the_sandbox_prints(tmp_path: Path) -> None:
    """torch's reductions split by thread count: the CLI (torch's default, one per core) prints as the sandbox (one)."""
    from app.sandbox import trace_in_sandbox

    cli = subprocess.run(
        [str(Path(sys.executable).parent / "gradwalk"), "trace", "-"],
        input=THREADED,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    shown = Trace.model_validate_json(cli.stdout.splitlines()[0])
    sandboxed = trace_in_sandbox(THREADED, settings_for(tmp_path))
    assert sandboxed.status == "ok", sandboxed.error
    assert shown.stdout == sandboxed.stdout


INFERENCE = """import torch
torch.manual_seed(0)
m = torch.nn.Linear(3, 1)
x = torch.ones(2, 3)
with torch.inference_mode():
    p = m(x)
    p.mul_(2)
print(p)
y = m(x).sum()
y.backward()
print(m.weight.grad)
"""


def test_inference_mode_tensors_are_read_without_a_version_counter(path: str) -> None:
    """Inference tensors keep no version counter (reading `_version` raises): the tracer once failed such a
    program with "Inference tensors do not track version counter." where torch runs it."""
    trace, ref = run(INFERENCE), run_reference(INFERENCE)
    assert trace.status == "ok", trace.error
    assert normalize(trace.stdout) == normalize(ref.stdout)
    node, _ = _bound(trace, "y")
    assert_close(node.value, ref.namespace["y"], "y")
    weight = next(n for n in trace.nodes if n.name == "m.weight")
    assert_close(weight.grad, ref.namespace["m"].weight.grad, "m.weight.grad")
