"""Tensors that are not one strided block of memory, as programs make them: the sparse gradient of an
nn.Embedding(sparse=True) (read as dense: torch's .grad, to_dense()) and torch.nested tensors (their
ragged dimensions have no one size: -1 in a shape, no value). Both once broke the trace: the sparse
gradient vanished (no grad, no value, no stats), a nested tensor failed the program at its first line."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from app.tracer import trace_of as run
from tests.reference import assert_close

SPARSE = """import torch
from torch import nn
torch.manual_seed(0)
emb = nn.Embedding(10, 3, sparse=True)
idx = torch.tensor([1, 2, 2, 5])
loss = emb(idx).pow(2).sum()
loss.backward()
print(emb.weight.grad.is_sparse, emb.weight.grad.to_dense()[2])
"""

NESTED = """import torch
torch.manual_seed(0)
a = torch.nested.nested_tensor([torch.randn(2, 3), torch.randn(4, 3)], requires_grad=True)
padded = torch.nested.to_padded_tensor(a * 2, 0.0)
j = torch.nested.nested_tensor([torch.randn(1, 3), torch.randn(3, 3)], layout=torch.jagged, requires_grad=True)
flat = (j * 3).sin().values()
loss = padded.sum() + flat.sum()
loss.backward()
print(a.grad is not None, j.grad is not None, round(loss.item(), 4))
"""


def _torch(source: str) -> tuple[dict[str, Any], str]:
    """The program run by plain torch: its names and what it printed."""
    ns: dict[str, Any] = {"__name__": "__main__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<program>", "exec"), ns)
    return ns, out.getvalue()


def test_a_sparse_gradient_is_read_as_torchs_dense_grad(path: str) -> None:
    trace, (ns, stdout) = run(SPARSE), _torch(SPARSE)
    assert trace.status == "ok", trace.error
    assert trace.stdout == stdout
    weight = next(n for n in trace.nodes if n.name == "emb.weight")
    dense = ns["emb"].weight.grad.to_dense()
    assert_close(weight.grad, dense, "emb.weight.grad")
    (step,) = [s for p in trace.passes for s in p.steps if s.node == weight.id]
    sent = trace.tensors[step.grad[0]]  # what reached the leaf: the sparse gradient, as dense
    assert sent.shape == [10, 3]
    assert_close(sent.value, dense, "the gradient at emb.weight's step")


def test_nested_tensors_trace_as_torch_runs_them(path: str) -> None:
    trace, (ns, stdout) = run(NESTED), _torch(NESTED)
    assert trace.status == "ok", trace.error
    assert trace.stdout == stdout
    shapes = {n.name: n.shape for n in trace.nodes if n.name in ("a", "j", "padded", "flat")}
    assert shapes == {"a": [2, -1, 3], "j": [2, -1, 3], "padded": [2, 4, 3], "flat": [4, 3]}
    nodes = {n.name: n for n in trace.nodes}
    assert nodes["a"].value is None and nodes["j"].value is None  # ragged: no one value
    assert_close(nodes["padded"].value, ns["padded"], "padded")
    assert_close(nodes["flat"].value, ns["flat"], "flat")
    assert_close(nodes["loss"].value, ns["loss"], "loss")
