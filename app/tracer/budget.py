"""The trace's byte budget (max_trace_bytes): past it, the least useful values are replaced by their
stats, and the notice says so. Nothing is thrown away for size: the graph, the story and every
step stay, and a value left out keeps its shape, dtype and stats.

Values native.cpp left Unwritten (values.py) are sized from their elements before any is written, and
only those kept are written: a trace far past its budget never formats what it leaves out.

Least useful first, and within each kind the largest first:
1. the gradients backward steps got and sent at nodes other than leaves (Trace.tensors entries),
2. the values of grad and update events (a .grad zeroed, a parameter after optimizer.step()),
3. the forward values of operations (and of a multi-output node's outputs),
4. the gradients backward steps gave leaves,
5. the values and final .grad of leaves and constants, and the gradients passed to backward().
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import chain
from typing import Any

import orjson

from . import values
from .stats import dtype_of, stats_of

_NULL = 4  # len(b"null")
_NOTICE_BYTES = 200  # room for the notice this adds
# The estimate alone leaves values out of a trace past this times its budget (so a trace within it loses
# nothing to the estimate's error), down to _ESTIMATE_TARGET times it: most then need no second round.
_ESTIMATE_MARGIN = 1.1
_ESTIMATE_TARGET = 0.97
_STRIDE = 8  # the trace without its values is sized from every 8th item of its long lists (_without_values)
_LONG_LISTS = ("nodes", "edges", "events", "tensors")
_SLACK = 1.1  # once written, a trace still too big leaves out this much more than its excess: one more round, not several
_SAMPLE = 64  # values written out to learn the bytes per element of them all
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_FLOATING = frozenset({"float32", "float64", "float16", "bfloat16"})
_TENSOR_SHAPED = (values.TEXT, values.Unwritten)

NODE_BYTES = 500  # a node, its event and edges in the JSON, about (without its value)
ELEMENT_BYTES = 11  # a value's element, about: a float32's shortest decimal and its comma

Drop = Callable[[float], int]  # leaves a value out (given bytes per element); the bytes it saved, about
Candidate = tuple[int, int, Drop, dict[str, Any], str]  # (kind, elements, leave it out, holder, value key)


def fit(
    trace: dict[str, Any],
    max_bytes: int,
    dumps: Callable[[Any], bytes],
    aside: dict[tuple[int, str], Any] | None = None,
    unwritten: bool = True,
) -> bytes:
    """The trace as JSON, within max_bytes if leaving values out gets it there, least useful first.
    `aside`: (id(holder), value key) -> the value's stats, not written beside it.

    First from an estimate, before the values left Unwritten are written: the trace without its values,
    and each value's elements at the bytes per element of a sample (see _ESTIMATE_MARGIN). Then the values kept are written,
    and the trace with them; more are left out while it is still too big. The same decisions whether
    native.cpp or values.py read the values (they write the same text). Without `unwritten` (no value
    left Unwritten), a trace written whole within its budget is that (as in either way, nothing left out)."""
    if not unwritten:
        data = dumps(trace)
        if len(data) <= max_bytes:
            return data
    candidates = sorted(_candidates(trace, aside or {}), key=lambda c: (c[0], -c[1]))
    per_element = _bytes_per_element(candidates)  # writes the sample's values
    estimate = _without_values(trace, candidates, dumps) + sum(int(c[1] * per_element) for c in candidates)
    i, left_out = 0, 0
    if estimate > max_bytes * _ESTIMATE_MARGIN:  # too big beyond the estimate's error: down to just under the budget
        i, left_out = _leave_out(candidates, 0, estimate - max_bytes * _ESTIMATE_TARGET, per_element)
    _write([c for c in candidates if type(c[3][c[4]]) is values.Unwritten])
    note = trace["notice"]  # a truncation's, if any
    if left_out:
        _say(trace, max_bytes, left_out, note)
    data = dumps(trace)
    while len(data) > max_bytes and i < len(candidates):
        i, more = _leave_out(candidates, i, (len(data) - max_bytes) * _SLACK + _NOTICE_BYTES, per_element)
        left_out += more
        _say(trace, max_bytes, left_out, note)
        data = dumps(trace)
    return data


def _without_values(trace: dict[str, Any], candidates: list[Candidate], dumps: Callable[[Any], bytes]) -> int:
    """The trace's JSON size with `null` for every candidate's value, about: its long lists (nodes,
    edges, events, tensors, each pass's steps: items alike) measured on every _STRIDE-th item and scaled."""
    held = [(c[3], c[4], c[3][c[4]]) for c in candidates]
    for holder, key, _ in held:
        holder[key] = None
    try:
        rest = {**trace, "passes": [{**p, "steps": []} for p in trace["passes"]]}
        size = sum(_scaled(p["steps"], dumps) for p in trace["passes"])
        for key in _LONG_LISTS:
            size += _scaled(trace[key], dumps)
            rest[key] = []
        return size + len(dumps(rest))
    finally:
        for holder, key, value in held:
            holder[key] = value


def _scaled(items: list[Any], dumps: Callable[[Any], bytes]) -> int:
    """The JSON bytes of the items and their commas, from every _STRIDE-th item where they are many."""
    part = items[::_STRIDE] if len(items) > 4 * _STRIDE else items
    return (len(dumps(part)) - 1) * len(items) // max(1, len(part))


def _leave_out(candidates: list[Candidate], i: int, excess: float, per_element: float) -> tuple[int, int]:
    """Values left out from candidates[i], in order, until about `excess` bytes are saved: (the next
    candidate's index, how many were left out)."""
    left_out = 0
    while excess > 0 and i < len(candidates):
        saved = candidates[i][2](per_element)
        excess -= saved
        left_out += saved > 0
        i += 1
    return i, left_out


def _say(trace: dict[str, Any], max_bytes: int, left_out: int, before: str | None) -> None:
    note = f"the trace was larger than {max_bytes:,} bytes (max_trace_bytes): {left_out:,} tensor values were replaced by their stats"
    trace["notice"] = f"{before}; {note}" if before else note
    trace["truncated"] = True


def _write(candidates: list[Candidate]) -> None:
    """The values of these candidates, Unwritten until now, written as JSON text (one native call)."""
    if not candidates:
        return
    for c, text in zip(candidates, values.write([c[3][c[4]] for c in candidates])):
        c[3][c[4]] = text


def _bytes_per_element(candidates: list[Candidate]) -> float:
    """JSON bytes per element of the values, measured on a few spread over the candidates (writing
    those of them not written yet)."""
    sample = candidates[:: max(1, len(candidates) // _SAMPLE)][:_SAMPLE]
    _write([c for c in sample if type(c[3][c[4]]) is values.Unwritten])
    elements = sum(c[1] for c in sample)
    return sum(_size(c[3][c[4]]) + _NULL for c in sample) / elements if elements else float(ELEMENT_BYTES)


def estimate(nodes: int, elements: int) -> int:
    """The trace's JSON size, about, from its nodes and the elements of the values written so far."""
    return nodes * NODE_BYTES + elements * ELEMENT_BYTES


def _size(value: Any) -> int:
    """Bytes of a value in the trace's JSON, beyond the `null` that replaces it."""
    return len(orjson.dumps(value)) - _NULL


def _numel(value: Any) -> int:
    n = 1
    while isinstance(value, list):
        n *= len(value)
        value = value[0] if value else None
    return n


def _candidates(trace: dict[str, Any], aside: dict[tuple[int, str], Any]) -> list[Candidate]:
    """(kind, elements, leave it out) for every value the trace carries."""
    nodes = trace["nodes"]
    leaf_entries: set[int] = set()
    for p in trace["passes"]:
        for step in p["steps"]:
            if nodes[step["node"]]["kind"] == "leaf":
                leaf_entries.update(i for i in step["grad"] if i is not None)
    out: list[Candidate] = []

    def add(kind: int, holder: dict[str, Any], key: str, stats_key: str | None = None) -> None:
        value = holder[key]
        if value is not None:
            # a value written as JSON text or not written yet: its tensor's own shape
            numel = math.prod(holder["shape"]) if type(value) in _TENSOR_SHAPED else _numel(value)
            out.append((kind, numel, _dropper(holder, key, stats_key, aside.get((id(holder), key)), numel), holder, key))

    for i, entry in enumerate(trace["tensors"]):
        add(4 if i in leaf_entries else 1, entry, "value", "stats")
    for event in trace["events"]:
        add(2, event, "value")
    for node in nodes:
        add(3 if node["kind"] == "op" else 5, node, "value", "stats")
        add(5, node, "grad", "grad_stats")
        for output in node["outputs"] or ():
            add(3, output, "value", "stats")
    for p in trace["passes"]:
        add(5, p, "gradient")
    return out


def _dropper(holder: dict[str, Any], key: str, stats_key: str | None, stats: Any, numel: int) -> Drop:
    """Leave out holder[key], its stats (set aside, or computed from it) in holder[stats_key]."""

    def drop(per_element: float) -> int:
        value = holder[key]
        saved, known = int(numel * per_element), None
        if stats_key is not None and holder[stats_key] is None:
            known, dtype, shape = stats, holder.get("dtype"), holder.get("shape")
            if known is None and dtype in _FLOATING and shape is not None:
                known = stats_of(_flat(values.elements(value), len(shape)), dtype_of(dtype))
            if known is not None:
                saved -= _size(known)
        if saved <= 0:  # a small value takes less room than its stats: it stays
            return 0
        if known is not None and stats_key is not None:  # known only where there is a stats_key
            holder[stats_key] = known
        holder[key] = None
        return saved

    return drop


def _flat(value: Any, depth: int) -> list[float]:
    """A nested-list value of `depth` dimensions as one list of floats (NaN/Inf strings as floats)."""
    if depth == 0:
        value = [value]
    for _ in range(depth - 1):
        value = list(chain.from_iterable(value))
    return [_SPECIAL.get(x, math.nan) if type(x) is str else x for x in value]
