"""A program's exception that cannot be printed (its __str__ raises, returns no str; its class's
metaclass lies about its name) is still the program's error, as Python's own traceback shows it,
with everything the program did before it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.tracer import trace_of
from tests.reference import assert_close, run_reference

PROGRAMS = {
    "str raises": "class E(Exception):\n    def __str__(self):\n        raise ValueError('no')\nprint('before')\nraise E()\n",
    "str returns an int": "class E(RuntimeError):\n    def __str__(self):\n        return 42\nprint('before')\nraise E()\n",
    "metaclass name raises": (
        "class M(type):\n    @property\n    def __name__(cls):\n        raise RuntimeError('x')\n"
        "class E(Exception, metaclass=M):\n    pass\nprint('before')\nraise E('hi')\n"
    ),
}


@pytest.mark.parametrize("name", PROGRAMS)
def test_the_error_reads_as_pythons_traceback(name: str) -> None:
    source = PROGRAMS[name]
    python = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True)
    last = python.stderr.strip().splitlines()[-1]  # "E: <exception str() failed>", "E: hi"
    trace = trace_of(source)
    assert trace.status == "error" and trace.error is not None
    assert f"{trace.error.type}: {trace.error.message}" == last
    assert trace.error.line == source.count("\n")
    assert trace.stdout == python.stdout == "before\n"


def test_a_backward_that_raises_one_is_recorded_and_the_program_goes_on() -> None:
    source = """import torch
class E(Exception):
    def __str__(self):
        raise ValueError('no')
w = torch.tensor([1.0, 2.0], requires_grad=True)
handle = w.register_hook(lambda g: (_ for _ in ()).throw(E()))
try:
    (w * 2).sum().backward()
except E:
    print('caught')
handle.remove()
(w * 3).sum().backward()
"""
    trace = trace_of(source)
    assert trace.status == "ok", trace.error
    assert trace.stdout == "caught\n"
    assert [p.error for p in trace.passes] == ["<exception str() failed>", None]
    w = next(n for n in trace.nodes if n.name == "w")
    assert_close(w.grad, run_reference(source).namespace["w"].grad, "w.grad")
