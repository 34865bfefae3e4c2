"""The trust boundary (app/sandbox/boundary.py): a forged result is held to the tracer's limits,
validated and written again by the model, HTML-safe; big ones are checked in a worker process.

A program owns its result pipe, so a forged result is not an attack on anyone else; what must hold
is that it costs the server no more than a real trace can."""

from __future__ import annotations

import asyncio
import json

import pytest

from app.models import Trace
from app.sandbox.boundary import INLINE_MAX_BYTES, Boundary, BoundaryLimits, check

from .conftest import SyncPool, assert_normal

LIMITS = BoundaryLimits(
    max_nodes=100,
    max_events=200,
    max_stdout_bytes=1_000,
    max_result_bytes=1_000_000,
    memory_mb=1_024,
    timeout_s=2.0,
    cpu_s=2,
    max_processes=64,
)
SOURCE = "print(1)\n"


def forged(nodes: int, label_chars: int) -> str:
    """A program that writes a valid trace of its own source (a quine) with `nodes` leaves to the
    result pipe, instead of letting the tracer write its real one."""
    template = (
        "import json, os\n"
        "T = %r\n"
        "S = T %% (T,)\n"
        f"nodes = [{{'id': i, 'kind': 'leaf', 'label': 'n' * {label_chars}}} for i in range({nodes})]\n"
        "os.write(3, json.dumps({'source': S, 'nodes': nodes}).encode())\n"
        "os._exit(0)\n"
    )
    return template % (template,)


def _doc(**fields: object) -> bytes:
    return json.dumps({"source": SOURCE, **fields}).encode()


@pytest.mark.parametrize(
    ("fields", "limit"),
    [
        ({"nodes": [{"id": i, "kind": "leaf", "label": "x"} for i in range(101)]}, "max_nodes"),
        ({"events": [{"kind": "print", "text": "x"} for _ in range(201)]}, "max_events"),
        ({"passes": [{"index": 0, "api": "Tensor.backward", "steps": [{"node": 0}] * 101}]}, "max_nodes"),
        ({"stdout": "x" * 6_001}, "max_stdout_bytes"),
    ],
    ids=["nodes", "events", "steps", "stdout"],
)
def test_a_result_over_a_tracer_limit_is_refused(fields: dict[str, object], limit: str) -> None:
    document = check(_doc(**fields), SOURCE, LIMITS)
    trace = Trace.model_validate_json(document.json)
    assert document.status == trace.status == "killed"
    assert trace.error is not None and limit in trace.error.message
    assert trace.nodes == [] and trace.source == SOURCE


def test_a_result_that_swells_past_the_byte_limit_is_refused() -> None:
    # 99 nodes of 2 bytes' worth each, whose defaults fill in to ~300 bytes each: past a 20 KB limit.
    small = BoundaryLimits(**{**LIMITS.__dict__, "max_result_bytes": 20_000})
    data = _doc(nodes=[{"id": i, "kind": "leaf", "label": ""} for i in range(99)])
    assert len(data) < 20_000
    trace = Trace.model_validate_json(check(data, SOURCE, small).json)
    assert trace.status == "killed" and trace.error is not None and "byte limit" in trace.error.message


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", _doc(nodes=[{"bogus": 1}]), json.dumps({"source": "other"}).encode()])
def test_anything_but_a_trace_of_this_source_is_refused(data: bytes) -> None:
    trace = Trace.model_validate_json(check(data, SOURCE, LIMITS).json)
    assert trace.status == "killed" and trace.error is not None and "not a valid trace" in trace.error.message


def test_the_document_is_the_models_own_writing_and_html_safe() -> None:
    sneaky = "</script><script>alert(1)</script> & 'quoted'"
    data = b'{"stdout": ' + json.dumps(sneaky).encode() + b',   "source": "print(1)\\n", "nodes": []}'
    document = check(data, SOURCE, LIMITS)
    assert document.status == "ok"
    for raw in (b"<", b">", b"&", b"'"):
        assert raw not in document.json
    trace = document.trace()
    assert trace.stdout == sneaky
    assert (
        document.json.decode().replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&").replace("\\u0027", "'")
        == trace.model_dump_json()
    )


def test_an_empty_memory_error_says_how_much_memory_was_allowed() -> None:
    data = _doc(status="memory", error={"type": "MemoryError", "message": ""})
    trace = check(data, SOURCE, LIMITS).trace()
    assert trace.error is not None and "1,024 MiB" in trace.error.message and "memory_mb" in trace.error.message


def test_big_results_are_checked_in_a_worker_process_with_the_same_answer() -> None:
    nodes = [{"id": i, "kind": "leaf", "label": "n" * 100} for i in range(100)]
    data = _doc(nodes=nodes, stdout="y" * INLINE_MAX_BYTES)
    limits = BoundaryLimits(**{**LIMITS.__dict__, "max_stdout_bytes": INLINE_MAX_BYTES})
    assert len(data) > INLINE_MAX_BYTES
    boundary = Boundary(limits)

    async def both() -> tuple[bytes, bytes, int | None]:
        in_worker = await boundary.check(data, SOURCE)
        worker = boundary._executor
        pid = next(iter(worker._processes)) if worker is not None else None
        return in_worker.json, check(data, SOURCE, limits).json, pid

    try:
        in_worker, in_place, worker_pid = asyncio.run(both())
    finally:
        boundary.close()
    assert worker_pid is not None  # a process of its own did it
    assert in_worker == in_place


def test_a_forged_trace_of_250000_nodes_is_refused_by_the_pool(pool: SyncPool) -> None:
    t = pool.run(forged(250_000, 1))
    assert t.status == "killed" and t.error is not None, t.error
    assert "250,000 nodes" in t.error.message and "max_nodes" in t.error.message
    assert t.nodes == []
    assert_normal(pool)


def test_a_forged_trace_within_the_limits_is_kept(pool: SyncPool) -> None:
    t = pool.run(forged(500, 10))
    assert t.status == "ok" and len(t.nodes) == 500 and t.nodes[0].label == "n" * 10
