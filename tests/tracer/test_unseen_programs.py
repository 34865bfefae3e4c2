"""Programs of kinds no other test had (found by running new programs against torch): each holds
the trace to torch, and each failed before its fix."""

from __future__ import annotations

from app.tracer import trace_of
from tests.reference import assert_close, run_reference


def _named(trace, name):
    return [n for n in trace.nodes if any(b.name == name for b in n.names)]


def test_in_place_on_a_view_makes_its_base_a_new_node_with_its_value() -> None:
    source = """import torch
torch.manual_seed(0)
a = torch.randn(4, 3, requires_grad=True)
b = a * 1
row = b[1]
row.mul_(3)
loss = (b ** 2).sum()
loss.backward()
"""
    trace, ref = trace_of(source), run_reference(source)
    assert trace.status == "ok", trace.error
    latest = _named(trace, "b")[-1]
    assert latest.op == "CopySlices"  # b after row.mul_(3): not the MulBackward0 of `a * 1`
    assert_close(latest.value, ref.namespace["b"], "b")
    assert_close(next(n for n in trace.nodes if n.name == "a").grad, ref.namespace["a"].grad, "a.grad")


def test_a_custom_functions_two_outputs_are_two_outputs() -> None:
    source = """import torch
torch.manual_seed(0)
class Split2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2, x * 3
    @staticmethod
    def backward(ctx, ga, gb):
        return ga * 2 + gb * 3
x = torch.randn(5, requires_grad=True)
p, q = Split2.apply(x)
(p * q).sum().backward()
"""
    trace, ref = trace_of(source), run_reference(source)
    assert trace.status == "ok", trace.error
    node = next(n for n in trace.nodes if n.op == "Split2Backward")
    outputs = {o.index: o for o in node.outputs or []}
    assert sorted(outputs) == [0, 1]
    assert_close(outputs[0].value, ref.namespace["p"], "p")
    assert_close(outputs[1].value, ref.namespace["q"], "q")
    assert_close(next(n for n in trace.nodes if n.name == "x").grad, ref.namespace["x"].grad, "x.grad")


def test_a_name_declared_global_in_a_function_is_the_modules() -> None:
    source = """import torch
total = torch.zeros(1)
w = torch.tensor([2.0], requires_grad=True)
def add(v):
    global total
    total = total + v * w
for k in range(3):
    add(torch.tensor([float(k)]))
total.sum().backward()
"""
    trace, ref = trace_of(source), run_reference(source)
    bindings = [b for n in trace.nodes for b in n.names if b.name == "total"]
    assert len(bindings) == 4 and all(b.scope is None for b in bindings)
    assert_close(_named(trace, "total")[-1].value, ref.namespace["total"], "total")


def test_a_fused_optimizer_updates_each_parameter_with_torchs_value() -> None:
    source = """import torch
torch.manual_seed(0)
model = torch.nn.Linear(3, 2)
opt = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)
x = torch.randn(5, 3)
history = []
for step in range(2):
    opt.zero_grad()
    model(x).pow(2).mean().backward()
    opt.step()
    history.append([p.detach().clone() for p in model.parameters()])
"""
    trace, ref = trace_of(source), run_reference(source)
    assert trace.status == "ok", trace.error
    for i, name in enumerate(("weight", "bias")):
        leaf = next(n for n in trace.nodes if n.name == f"model.{name}")
        updates = [e for e in trace.events if e.kind == "update" and e.node == leaf.id]
        assert len(updates) == 2, name
        for step, e in enumerate(updates):
            assert_close(e.value, ref.namespace["history"][step][i], f"{name} after step {step + 1}")


def test_zero_grad_without_none_is_one_grad_event_per_parameter() -> None:
    source = """import torch
w = torch.tensor([1.0, 2.0], requires_grad=True)
opt = torch.optim.SGD([w], lr=0.1)
for _ in range(2):
    opt.zero_grad(set_to_none=False)
    (w * w).sum().backward()
    opt.step()
"""
    trace = trace_of(source)
    grads = [e for e in trace.events if e.kind == "grad" and e.line == 5]
    assert [e.value for e in grads] == [[0.0, 0.0]]  # the first zero_grad: .grad is None, nothing to zero


def test_a_model_built_in_a_function_is_named_where_the_program_binds_it() -> None:
    source = """import torch
def build():
    inner = torch.nn.Sequential(torch.nn.Linear(2, 2))
    return inner
m = build()
m(torch.ones(1, 2)).sum().backward()
"""
    trace = trace_of(source)
    weight = next(n for n in trace.nodes if n.kind == "leaf" and n.shape == [2, 2])
    assert weight.name == "m.0.weight", [b.name for b in weight.names]


def test_a_constant_changed_in_place_shows_its_new_value() -> None:
    source = """import torch
w = torch.tensor([1.0, 2.0], requires_grad=True)
c = torch.tensor([3.0, 4.0])
first = (w + c).pow(2).sum()
c.add_(1)
second = (w + c).pow(2).sum()
(first + second).backward()
"""
    trace, ref = trace_of(source), run_reference(source)
    assert trace.status == "ok", trace.error
    c = next(n for n in trace.nodes if n.name == "c")
    updates = [e for e in trace.events if e.kind == "update" and e.node == c.id]
    assert [e.line for e in updates] == [5]
    assert_close(updates[0].value, ref.namespace["c"], "c after c.add_(1)")
    assert_close(next(n for n in trace.nodes if n.name == "w").grad, ref.namespace["w"].grad, "w.grad")


def test_a_module_replaced_after_its_model_was_bound_names_its_parameters() -> None:
    """Transfer learning's `model.head = nn.Linear(...)`, and add_module after the binding."""
    source = """import torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(3, 4)
        self.head = torch.nn.Linear(4, 4)
    def forward(self, x):
        return self.head(self.body(x).relu())
model = Net()
model.head = torch.nn.Linear(4, 2)
model.body.add_module("extra", torch.nn.Linear(1, 1))
loss = model(torch.randn(5, 3)).sum()
loss.backward()
"""
    trace, ref = trace_of(source), run_reference(source)
    assert trace.status == "ok", trace.error
    used = {n.name for n in trace.nodes if n.kind == "leaf"}
    assert used == {f"model.{name}" for name, p in ref.namespace["model"].named_parameters() if p.grad is not None}
    assert {m.path for m in trace.modules} == {f"model.{name}".rstrip(".") for name, _ in ref.namespace["model"].named_modules()}
