"""The program's rewrite: a report after each statement that binds names, a display of bare expressions."""

from __future__ import annotations

import ast
import textwrap

from app.tracer import names, trace_of
from tests.conftest import ROOT

PROGRAM = '''\
"""doc"""
import torch
a = torch.ones(2)
a, (b, c) = 1, (2, 3)
x = y = 4
d[0] = 5
x += 1
z: int = 6
w: int
for i, j in []:
    k = i
else:
    e = 1
with open('f') as fh, open('g'):
    q = 1
def f(n):
    m = n
    return m
class C:
    attr = 1
while False:
    v = 1
if a:
    p = 1
elif b:
    p = 2
else:
    p = 3
try:
    t = 1
except E as err:
    t = 2
else:
    t = 3
finally:
    t = 4
match a:
    case 1:
        r = 1
print(a)
a
a.sum()
'''

REWRITTEN = '''\
"""doc"""
import torch
a = torch.ones(2)
__gw_bind__(3, 'a', a)
a, (b, c) = (1, (2, 3))
__gw_bind__(4, 'a', a, 'b', b, 'c', c)
x = y = 4
__gw_bind__(5, 'x', x, 'y', y)
d[0] = 5
x += 1
__gw_bind__(7, 'x', x)
z: int = 6
__gw_bind__(8, 'z', z)
w: int
for i, j in []:
    __gw_bind__(10, 'i', i, 'j', j)
    k = i
    __gw_bind__(11, 'k', k)
else:
    e = 1
    __gw_bind__(13, 'e', e)
with open('f') as fh, open('g'):
    __gw_bind__(14, 'fh', fh)
    q = 1
    __gw_bind__(15, 'q', q)

def f(n):
    m = n
    __gw_bind__(17, 'm', m)
    return m

class C:
    attr = 1
    __gw_bind__(20, 'attr', attr)
while False:
    v = 1
    __gw_bind__(22, 'v', v)
if a:
    p = 1
    __gw_bind__(24, 'p', p)
elif b:
    p = 2
    __gw_bind__(26, 'p', p)
else:
    p = 3
    __gw_bind__(28, 'p', p)
try:
    t = 1
    __gw_bind__(30, 't', t)
except E as err:
    t = 2
    __gw_bind__(32, 't', t)
else:
    t = 3
    __gw_bind__(34, 't', t)
finally:
    t = 4
    __gw_bind__(36, 't', t)
match a:
    case 1:
        r = 1
        __gw_bind__(39, 'r', r)
print(a)
__gw_display__(41, a)
__gw_display__(42, a.sum())'''


def test_rewrite_of_every_kind_of_statement() -> None:
    tree = ast.parse(PROGRAM)
    tree.body = names._rewrite_body(tree.body, True)
    assert ast.unparse(tree) == REWRITTEN
    compile(tree, "<program>", "exec")  # every added node has its position


def test_added_calls_sit_on_the_statement_line() -> None:
    code = names.instrument(
        textwrap.dedent("""\
        x = (1 +
             2)
        x
    """),
        "<program>",
    )
    seen = []
    env = {
        "__gw_bind__": lambda line, *pairs: seen.append(("bind", line, pairs)),
        "__gw_display__": lambda line, v: seen.append(("display", line, v)),
    }
    exec(code, env)
    assert seen == [("bind", 1, ("x", 3)), ("display", 3, 3)]


def test_loop_bindings_are_told_apart() -> None:
    trace = trace_of((ROOT / "app/examples/recurrence.py").read_text())
    hs = [n for n in trace.nodes if n.name == "h"]
    assert [n.label for n in hs] == ["h #1", "h #2", "h #3", "h #4"]
    assert [n.kind for n in hs] == ["constant", "op", "op", "op"]
    w = next(n for n in trace.nodes if n.name == "W")
    assert sum(1 for e in trace.edges if e.source == w.id) == 3  # W feeds every step


def test_module_parameters_named_by_path() -> None:
    trace = trace_of((ROOT / "app/examples/mlp_step.py").read_text())
    names = sorted(n.name for n in trace.nodes if n.kind == "leaf")
    assert names == ["model.0.bias", "model.0.weight", "model.2.bias", "model.2.weight"]
    assert any(n.op == "TBackward0" and n.value is None and n.shape for n in trace.nodes)  # inside nn.Linear
    assert sum(1 for e in trace.events if e.kind == "update") == 4  # optimizer.step()


def test_tensors_held_by_a_bound_list_or_dict_are_named_by_their_place() -> None:
    source = (
        "import torch\nws = [torch.ones(2, requires_grad=True) for _ in range(2)]\n"
        "outs = {'a': ws[0] * 2}\ny = outs['a'].sum() + ws[1].sum()\nfor w in ws:\n    pass\n"
    )
    labels = {n.label for n in trace_of(source).nodes}
    assert {"ws[0]", "ws[1]", "outs['a']", "y"} <= labels and "leaf" not in labels


def test_display_of_bare_expressions() -> None:
    trace = trace_of((ROOT / "app/examples/seed_3_scalar_backward.py").read_text())
    shown = [(e.line, e.text) for e in trace.events if e.kind == "display"]
    assert shown == [(7, "tensor([2., 4., 6.])")]


WALRUS = """import torch
torch.manual_seed(0)
w = torch.randn(3, requires_grad=True)
if (s := (w * 2).sum()) > -100:
    print("ok")
steps = 0
while (loss := (w - steps).pow(2).sum()) > 1.0 and steps < 3:
    steps += 1
squares = [(q := w * k) for k in range(2)]
(s + loss).backward()
"""


def test_a_name_bound_by_an_assignment_expression_names_its_node() -> None:
    """`if (s := ...) > 0:` binds s as much as `s = ...` does; the trace left its node unnamed. A walrus
    inside a comprehension binds in the comprehension's own frame here: left unnamed."""
    trace = trace_of(WALRUS)
    assert trace.status == "ok", trace.error
    s = [n for n in trace.nodes if n.name == "s"]
    assert [(n.op, n.line, n.label) for n in s] == [("SumBackward0", 4, "s")]
    loss = [n for n in trace.nodes if n.name == "loss"]
    assert [(n.op, n.line, n.label) for n in loss] == [("SumBackward0", 7, f"loss #{i}") for i in (1, 2, 3, 4)]
    assert {"s", "loss"} <= set(names.bound_names(WALRUS))  # a what-if can put a value in their place
    assert not any(b.name == "q" for n in trace.nodes for b in n.names)
