"""A program's strings in its trace are bounded (app/tracer/doc.text/name): names, module paths and
class names, op names of custom Functions, warnings and error messages. Programs that made each one
megabytes long lost their whole trace ("larger than the 33,554,432 byte limit", or SIGSEGV in the
sandbox) or came back as a 24 MB trace; each now comes back with its graph, the long strings cut."""

from __future__ import annotations

import json

import pytest

from app.models import Trace
from app.tracer import doc, trace_json
from tests.reference import run_reference
from tests.sandbox.conftest import IN_CI, SyncPool

BIG = 1_000_000
PROGRAMS = {
    "class names": f"""import torch
from torch import nn
Big = type("A" * {BIG}, (nn.Module,), {{"forward": lambda self, x: x * 2}})
x = torch.ones(2, requires_grad=True)
for m in [Big() for _ in range(20)]:
    x = m(x)
y = x.sum()
y.backward()
""",
    "module paths": f"""import torch
from torch import nn
d = nn.ModuleDict({{("k%d" % i) * {BIG // 2}: nn.Linear(2, 2) for i in range(10)}})
x = torch.ones(1, 2)
y = sum(m(x).sum() for m in d.values())
y.backward()
""",
    "names": f"""import torch
ws = {{("w%d" % i) * {BIG}: torch.ones(2, requires_grad=True) for i in range(8)}}
y = sum((w * 2).sum() for w in ws.values())
y.backward()
""",
    "custom functions": f"""import torch
x = torch.ones(2, requires_grad=True)
for i in range(20):
    F = type(("F%d" % i) * {BIG // 2}, (torch.autograd.Function,), {{
        "forward": staticmethod(lambda ctx, x: x * 2), "backward": staticmethod(lambda ctx, g: g * 2)}})
    x = F.apply(x)
x.sum().backward()
""",
    "warnings": f"""import torch, warnings
x = torch.ones(2, requires_grad=True)
for i in range(30):
    warnings.warn(("W%d" % i) * {BIG})
(x * 2).sum().backward()
""",
    "an error": f"""import torch
x = torch.ones(2, requires_grad=True)
(x * 2).sum().backward()
raise ValueError("E" * {40 * BIG})
""",
}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() if k != "source" for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize("kind", PROGRAMS)
def test_a_programs_long_strings_are_cut_and_its_graph_stays(path: str, kind: str) -> None:
    source = PROGRAMS[kind]
    body = trace_json(source)
    trace = Trace.model_validate_json(body)
    assert trace.status == ("error" if kind == "an error" else "ok"), trace.error
    assert len(body) < 400_000 and not trace.truncated
    assert max(len(s) for s in _strings(json.loads(body))) <= doc.MESSAGE_CHARS + len("ValueError: ")  # its story event
    ref = run_reference(source)  # torch, untraced: every leaf's gradient, in any order
    expected = sorted(json.dumps(g.tolist()) for entry in ref.passes for _, g in entry.values())
    assert sorted(json.dumps(n.grad) for n in trace.nodes if n.kind == "leaf" and n.grad is not None) == expected != []
    if kind == "module paths":
        paths = [m.path for m in trace.modules]
        assert len(set(paths)) == len(paths) == 11  # cut, and still one path per module
        assert all(m.parent is None or m.parent in paths for m in trace.modules)  # a child's path begins with its parent's
        assert {n.module for n in trace.nodes if n.module} <= set(paths)
    if kind == "names":
        names = {n.name for n in trace.nodes if n.kind == "leaf"}
        assert len(names) == 8 and all(len(s) <= doc.PART_CHARS for s in names)  # each still its own
    if kind == "an error":
        assert trace.error is not None and trace.error.type == "ValueError" and trace.error.line == 4
        assert trace.error.message.startswith("EEEE")


def test_the_names_are_the_programs_where_they_are_short(path: str) -> None:
    ref = run_reference(PROGRAMS["names"].replace(f"{BIG}", "3"))
    trace = Trace.model_validate_json(trace_json(PROGRAMS["names"].replace(f"{BIG}", "3")))
    names = sorted(n.name for n in trace.nodes if n.kind == "leaf" and n.name)
    assert names == sorted(f"ws[{k!r}]" for k in ref.namespace["ws"])


def test_a_class_named_by_a_megabyte_comes_back_whole_through_the_sandbox() -> None:
    from app.config import Settings

    pool = SyncPool(Settings(_env_file=None, sandbox_mode="strict" if IN_CI else "dev"))  # type: ignore[call-arg]
    try:
        document = pool.call(pool.pool.trace_document(PROGRAMS["class names"], "long-strings"))
    finally:
        pool.close()
    trace = document.trace()
    assert trace.status == "ok", trace.error
    assert len(trace.modules) == 20 and all(
        m.class_name.startswith("AAAA") and len(m.class_name) <= doc.TEXT_CHARS for m in trace.modules
    )
