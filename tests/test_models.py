"""app/models.py: a stored version-1 trace opens as the current document (models.load)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from app.models import TRACE_VERSION, Trace, load
from app.store import Store, shares

V1 = sorted((Path(__file__).resolve().parent / "v1_traces").glob("*.json"))


def _compact(doc: dict[str, Any]) -> str:
    """As the store keeps a trace: model_dump_json's compact form."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("path", V1, ids=lambda p: p.stem)
def test_a_version_1_trace_opens_as_the_current_document(path: Path) -> None:
    old = json.loads(path.read_text())
    assert old["version"] == 1
    trace = load(_compact(old))
    assert trace.version == TRACE_VERSION == 2
    assert [n.id for n in trace.nodes] == [n["id"] for n in old["nodes"]]
    for node, before in zip(trace.nodes, old["nodes"]):
        named = [(b.name, b.binding, b.scope) for b in node.names]
        assert named == ([(before["name"], before["binding"] or 1, None)] if before["name"] else [])
        assert (node.label, node.value, node.grad) == (before["label"], before["value"], before["grad"])
    value = [t.value for t in trace.tensors]
    for p, before in zip(trace.passes, old["passes"]):
        for step, was in zip(p.steps, before["steps"], strict=True):
            grads = [None if i is None else value[i] for i in step.grad]
            if was["grad_stats"] is not None:  # too big to send: the entry keeps the stats
                assert grads == [None] and trace.tensors[step.grad[0]].stats.model_dump() == was["grad_stats"]
            else:
                assert grads in ([was["grad"]], was["grad"])  # one output, or a list by output
            assert [None if i is None else value[i] for i in step.grad_inputs] == was["grad_inputs"]
    Trace.model_validate_json(trace.model_dump_json())  # and it is a valid current document


def test_a_split_in_version_1_had_a_gradient_per_output() -> None:
    trace = load((Path(__file__).resolve().parent / "v1_traces" / "split.json").read_text())
    split = next(n for n in trace.nodes if n.op == "SplitWithSizesBackward0")
    step = next(s for s in trace.passes[0].steps if s.node == split.id)
    assert [trace.tensors[i].value for i in step.grad] == [[2.0], [2.0, 4.0, 6.0, 8.0]]


def test_the_current_document_loads_as_it_is() -> None:
    doc = json.loads((Path(__file__).resolve().parent / "js" / "fixtures" / "seed_5_chain.json").read_text())
    assert doc["version"] == TRACE_VERSION
    assert load(_compact(doc)).model_dump() == Trace.model_validate(doc).model_dump()


def test_a_stored_version_1_share_opens(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'shares.sqlite3'}")
    store.migrate()
    try:
        old = (Path(__file__).resolve().parent / "v1_traces" / "seed_5_chain.json").read_text()
        with store.engine.begin() as connection:  # as an earlier version saved it
            row = {"id": "v1share00000", "title": "old", "source": "", "created_at": datetime.now(UTC)}
            row.update(trace_gzip=gzip.compress(_compact(json.loads(old)).encode()), trace_version=1)
            connection.execute(insert(shares).values(**row))

        share = store.load("v1share00000")
        assert share is not None
        trace = share.trace()
        assert trace.version == TRACE_VERSION and json.loads(share.trace_json)["version"] == TRACE_VERSION
        assert trace.tensors and all(isinstance(i, int) for s in trace.passes[0].steps for i in s.grad)
    finally:
        store.close()
