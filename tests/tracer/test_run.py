"""A run of the tracer (app/tracer/run.py): the same bytes for the same program, nothing kept alive
after it unless the caller keeps it, the program compiled as Python would."""

from __future__ import annotations

from app.tracer import trace_json, trace_of
from app.tracer.graph import Graph
from tests.reference import PROGRAMS


def test_same_program_same_bytes() -> None:
    for path in PROGRAMS:
        source = path.read_text()
        first = trace_of(source).model_dump_json()
        if " at 0x" in first:  # the program prints object addresses
            continue
        assert trace_of(source).model_dump_json() == first, path.stem


def test_a_run_keeps_nothing_alive_after_it() -> None:
    """Nothing of a run (its graph, its tensors) outlives it: the sandbox forks a child per run, but
    the CLI, the tests and the benchmarks trace many programs in one process. (A module the program
    imports for the first time may keep the sys.stdout of its moment, and with it one run: once.)"""
    import gc

    def graphs_alive() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if type(o) is Graph)

    for path in PROGRAMS:  # the modules they import, imported
        trace_of(path.read_text())
    before = graphs_alive()
    for path in PROGRAMS:
        trace_of(path.read_text())
    assert graphs_alive() == before


def test_keep_leaves_the_run_to_the_caller() -> None:
    """trace_json(keep=...): the same answer; the run's objects are the caller's to free (the sandbox's child never does)."""
    import weakref

    source = "import torch\nx = torch.ones(3, requires_grad=True)\ny = (x * 2).sum()\ny.backward()\n"
    keep: list = []
    assert trace_json(source, keep=keep) == trace_json(source)
    x = keep[0].globals["x"]
    assert x.grad.tolist() == [2.0, 2.0, 2.0]
    gone = weakref.ref(keep[0])
    del keep[:], x
    assert gone() is None


def test_the_program_is_compiled_as_python_would() -> None:
    """Not with the tracer's own `from __future__ import annotations`: annotations stay objects."""
    trace = trace_of("x: int = 1\nprint(__annotations__)\n")
    assert trace.status == "ok" and trace.stdout == "{'x': <class 'int'>}\n"
