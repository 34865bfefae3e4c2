"""A torch optimizer's step() (capture.py's _Step): one update event per parameter it changed, with
the value torch gives, and the program's own code inside a step (a closure, a subclass's step, a
step that raised and was caught) still traced call by call."""

from __future__ import annotations

import torch

from app.tracer import trace_of
from tests.reference import assert_close, run_reference

ADAMW = """import torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
x = torch.randn(5, 3)
history = []
for step in range(3):
    loss = model(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    history.append([p.detach().clone() for p in model.parameters()])
"""


def _updates(trace) -> dict[int, list]:
    out: dict[int, list] = {}
    for e in trace.events:
        if e.kind == "update" and e.text is None:
            out.setdefault(e.node, []).append(e)
    return out


def test_each_parameter_updated_once_per_step_with_torchs_value() -> None:
    trace = trace_of(ADAMW)
    assert trace.status == "ok", trace.error
    ref = run_reference(ADAMW)
    names = [name for name, _ in ref.namespace["model"].named_parameters()]
    by_name = {n.name: n for n in trace.nodes if n.kind == "leaf"}
    updates = _updates(trace)
    step_line = ADAMW.splitlines().index("    opt.step()") + 1
    for i, name in enumerate(names):
        events = updates[by_name[f"model.{name}"].id]
        # AdamW changes each parameter twice in a step (decay, then the step): one event for both
        assert [e.line for e in events] == [step_line] * 3, name
        for step, e in enumerate(events):
            assert_close(e.value, ref.namespace["history"][step][i], f"{name} after step {step + 1}")


def test_a_closure_is_traced_and_its_step_still_updates() -> None:
    source = """import torch
w = torch.tensor([1.0, -2.0], requires_grad=True)
opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
def closure():
    opt.zero_grad()
    loss = (w * w).sum()
    loss.backward()
    return loss
for _ in range(2):
    opt.step(closure)
"""
    trace = trace_of(source)
    assert trace.status == "ok", trace.error
    muls = [n for n in trace.nodes if n.op == "MulBackward0"]
    assert len(muls) == 2 and all(n.line == 6 for n in muls)  # the closure's forward, each step
    assert len(trace.passes) == 2
    ref = run_reference(source)
    w = next(n for n in trace.nodes if n.name == "w")
    assert_close(_updates(trace)[w.id][-1].value, ref.namespace["w"], "w after two steps")


def test_a_step_that_raised_and_was_caught_leaves_the_rest_traced() -> None:
    source = """import torch
w = torch.tensor([1.0, 2.0], requires_grad=True)
opt = torch.optim.Adam([w], lr=0.1)
w.grad = torch.tensor([1.0, 0.0]).to_sparse()
try:
    opt.step()
except RuntimeError as e:
    print("refused")
y = (w * 3).sum()
y.backward()
"""
    ref = run_reference(source)
    assert ref.stdout == "refused\n"  # torch's Adam refuses sparse gradients inside its step
    trace = trace_of(source)
    assert trace.status == "ok", trace.error
    assert trace.stdout == "refused\n"
    assert [n.op for n in trace.nodes if n.kind == "op"] == ["MulBackward0", "SumBackward0"]
    w = next(n for n in trace.nodes if n.name == "w")
    assert_close(w.grad, ref.namespace["w"].grad.to_dense(), "w.grad")


def test_a_subclass_step_of_the_programs_own_is_traced_line_by_line() -> None:
    source = """import torch
class Plain(torch.optim.Optimizer):
    def __init__(self, params, lr):
        super().__init__(params, dict(lr=lr))
    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.mul_(0.5)
                p.add_(p.grad, alpha=-group["lr"])
w = torch.tensor([1.0, -2.0], requires_grad=True)
opt = Plain([w], lr=0.1)
(w * w).sum().backward()
opt.step()
"""
    trace = trace_of(source)
    assert trace.status == "ok", trace.error
    w = next(n for n in trace.nodes if n.name == "w")
    events = _updates(trace)[w.id]
    assert [e.line for e in events] == [9, 10]  # each of its own lines, as the program wrote them
    ref = run_reference(source)
    assert_close(events[-1].value, ref.namespace["w"], "w")
    assert torch.equal(torch.tensor(events[0].value), torch.tensor([0.5, -1.0]))


def test_a_global_step_hook_of_the_programs_is_traced() -> None:
    source = """import torch
w = torch.tensor([1.0, -2.0], requires_grad=True)
seen = []
def hook(optimizer, args, kwargs):
    seen.append(w * 10)
from torch.optim.optimizer import register_optimizer_step_pre_hook
register_optimizer_step_pre_hook(hook)
opt = torch.optim.SGD([w], lr=0.1)
(w * w).sum().backward()
opt.step()
"""
    trace = trace_of(source)
    assert trace.status == "ok", trace.error
    assert any(n.op == "MulBackward0" and n.line == 5 for n in trace.nodes)  # the hook's own op
