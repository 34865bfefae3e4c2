"""The numeric check: each backward pass's leaf gradients against central differences, in float64.

For every pass whose objective is defined (a scalar root, or any root with a `gradient`: then the
objective is Σ root·gradient, whose gradient is the vector-Jacobian product autograd computes),
each element x of each leaf is nudged where the leaf got its value (replay.py) and the program is
run up to that pass again: numeric = (f(x+h) − f(x−h)) / 2h with h = EPS·max(1, |x|). Bounded by
`max_elements` nudged elements in all and by a deadline; what is left out says why. Every run
starts from the same seed, and one unnudged run first checks that the program repeats itself.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import torch

from ..config import TraceSettings
from ..models import Job
from . import failures, strict_json, values
from .calls import Geometry, index_of, unwrapped
from .failures import Interrupted
from .overrides import Overrides
from .program import running_line
from .replay import SEED, Event, Nudge, Outcome, Program, Record, Target
from .run import trace_json

EPS = 1e-6  # relative step: h = EPS·max(1, |x|) (torch.autograd.gradcheck's eps)
TOLERANCE = 1e-6  # largest |autograd − numeric| / max(1, |autograd|, |numeric|) that agrees, in float64
_MARGIN_S = 0.3  # of the sandbox's deadline, kept for writing the answer
_ACCUMULATE_GRAD = "AccumulateGrad"


@dataclass
class _Leaf:
    tensor: torch.Tensor
    grad: torch.Tensor  # autograd's, in float64
    event: Event | None
    geometry: Geometry


@dataclass
class _Pass:
    index: int
    api: str
    line: int | None
    objective: float | None
    leaves: list[_Leaf] = field(default_factory=list)
    error: str | None = None
    batched: bool = False  # autograd.grad(is_grads_batched=True)


def _accumulators(roots: list[torch.Tensor]) -> list[Any]:
    """The AccumulateGrad nodes below the roots (the leaves a pass can reach), in walk order."""
    stack = [r.grad_fn for r in roots if r.grad_fn is not None]
    seen = {id(f) for f in stack}
    found = []
    while stack:
        f = stack.pop()
        if type(f).__name__ == _ACCUMULATE_GRAD:
            found.append(f)
        for child, _ in f.next_functions:
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return found


class _Recording(Record):
    """The recording run: each backward pass's objective, and the gradient each leaf received, in engine order."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded: list[_Pass] = []

    def on_backward(self, index: int, b: Any, func: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        batched = b.batched() or (
            b.api == "torch.autograd.grad" and bool(args[7] if len(args) > 7 else kwargs.get("is_grads_batched"))
        )
        p = _Pass(index, b.api, running_line(1), None if batched else b.objective(), batched=batched)
        self.recorded.append(p)
        got: list[tuple[torch.Tensor, torch.Tensor]] = []
        handles = []
        if b.api != "torch.autograd.grad":
            for node in _accumulators(b.roots):
                leaf = node.variable
                handles.append(node.register_prehook(lambda grads, leaf=leaf: got.append((leaf, grads[0]))))
        try:
            result = func(*args, **kwargs)
        except BaseException as e:
            p.error = failures.shown(str, e) or type(e).__name__
            raise
        finally:
            for h in handles:
                h.remove()
        if b.api == "torch.autograd.grad":
            got = [(t, g) for t, g in zip(b.inputs or [], result) if isinstance(g, torch.Tensor)]
        for t, g in got:
            if g is not None and not batched:
                t = unwrapped(t)  # a torch.func.grad input: nudged where the program made it
                wide = _dense(g).to(torch.float64).clone()
                p.leaves.append(_Leaf(t, wide, self.event_of(t), Geometry.of(t)))
        return result


def deadline_from_timer(budget_s: float) -> float:
    """When the check must stop nudging: before the sandbox's own timer fires (if one is set), and within budget_s."""
    left = signal.getitimer(signal.ITIMER_REAL)[0]
    if left > 0:
        budget_s = min(budget_s, left - _MARGIN_S)
    return time.monotonic() + budget_s


class _Checker:
    def __init__(self, program: Program, max_elements: int, deadline: float, overrides: dict[str, Any] | None) -> None:
        self.program = program
        self.overrides = overrides
        self.left = max_elements
        self.deadline = deadline
        self.runs = 0
        self.elements = 0
        self.notice: str | None = None

    def run(self, mode: Any) -> Outcome:
        self.runs += 1
        outcome = self.program.run(mode, None if not self.overrides else Overrides(self.overrides).apply)
        if isinstance(outcome.error, Interrupted):  # the sandbox's timer fired first: nothing more is nudged
            self.deadline = -math.inf
        return outcome

    def repeats(self, recorded: list[_Pass], last: int) -> tuple[bool, float]:
        """Whether an unnudged run gives every objective up to pass `last` again; and its time."""
        started = time.monotonic()
        probe = Nudge(None, last)
        self.run(probe)
        elapsed = time.monotonic() - started
        again = probe.objectives
        same = len(again) == last + 1 and all(_same(a, p.objective) for a, p in zip(again, recorded[: last + 1]))
        return same, elapsed

    def numeric(self, p: _Pass, leaf: _Leaf) -> tuple[torch.Tensor | None, str | None]:
        """The leaf's gradient by central differences, or why there is none."""
        assert leaf.event is not None
        base = leaf.tensor.detach().to(torch.float64).reshape(-1).tolist()
        out = []
        for i, x in enumerate(base):
            if time.monotonic() > self.deadline:
                return None, "time"
            h = EPS * max(1.0, abs(x))
            ends = []
            for delta in (h, -h):
                at = Target(leaf.event, leaf.geometry, index_of(i, leaf.geometry.shape), delta, p.index)
                outcome = self.run(Nudge(at, p.index))
                if outcome.stopped is None or not math.isfinite(outcome.stopped):
                    return None, "nudge_failed"
                ends.append(outcome.stopped)
            out.append((ends[0] - ends[1]) / ((x + h) - (x - h)))
            self.elements += 1
        return torch.tensor(out, dtype=torch.float64).reshape(leaf.geometry.shape), None

    def leaf(self, p: _Pass, leaf: _Leaf, name: str | None, repeats: bool, run_s: float) -> dict[str, Any]:
        """One leaf's entry: autograd beside numeric, or why it was not nudged."""
        ld = _leaf_doc(leaf, name)
        n = math.prod(leaf.geometry.shape)
        why = _why_not(leaf) or (None if repeats else "not_repeatable")
        if why is None and n > self.left:
            why = "budget"
        if why is None and time.monotonic() + 2 * n * run_s > self.deadline:
            why = "time"
        if why is None:
            numeric, why = self.numeric(p, leaf)
            self.left -= n
            if numeric is not None:
                ld["numeric"] = _value(numeric)
                ld["max_rel_diff"], ld["worst"] = _compare(leaf.grad, numeric)
                ld["ok"] = ld["max_rel_diff"] is not None and ld["max_rel_diff"] <= TOLERANCE
        ld["skipped"] = why
        return ld


def _dense(g: torch.Tensor) -> torch.Tensor:
    """A gradient as one block of memory: a sparse one (nn.Embedding(sparse=True)) made dense."""
    g = g.detach()
    return g.to_dense() if g.layout != torch.strided and not g.is_nested else g


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-12 * abs(b)


def _compare(autograd: torch.Tensor, numeric: torch.Tensor) -> tuple[float | None, list[int] | None]:
    scale = torch.maximum(torch.maximum(autograd.abs(), numeric.abs()), torch.ones_like(autograd))
    rel = ((autograd - numeric).abs() / scale).reshape(-1)
    if rel.numel() == 0:
        return 0.0, None
    if not bool(torch.isfinite(rel).all()):
        return None, None
    worst = int(rel.argmax())
    return float(rel[worst]), list(index_of(worst, tuple(autograd.shape)))


def _value(t: torch.Tensor) -> Any:
    return values.value(t, t.numel())


def _leaf_doc(leaf: _Leaf, name: str | None) -> dict[str, Any]:
    return {
        "node": None,
        "name": name,
        "shape": list(leaf.geometry.shape),
        "autograd": _value(leaf.grad),
        "numeric": None,
        "max_rel_diff": None,
        "worst": None,
        "ok": None,
        "skipped": None,
    }


def _why_not(leaf: _Leaf) -> str | None:
    """Why this leaf cannot be nudged at all (before any budget)."""
    if leaf.tensor.is_complex():
        return "complex"
    if not leaf.tensor.is_floating_point():
        return "not_float"
    if leaf.event is None or leaf.tensor.layout != torch.strided or leaf.tensor.is_nested:
        return "unseen"
    return None


def check(source: str, max_elements: int, deadline: float, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The check document (models.Check) of one program (with `overrides` in place, as the trace has
    them); node ids are left for `join` to fill in."""
    doc: dict[str, Any] = {
        "dtype": "float64",
        "eps": EPS,
        "tolerance": TOLERANCE,
        "seed": SEED,
        "max_elements": max_elements,
        "elements": 0,
        "runs": 0,
        "passes": [],
        "notice": None,
    }
    try:
        program = Program(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        doc["notice"] = "The program does not compile, so nothing was checked."
        return doc
    checker = _Checker(program, max_elements, deadline, overrides)
    recording = _Recording()
    base = checker.run(recording)
    names = {tid: name for tid, (ref, name) in base.names.items() if ref() is not None}
    recorded = recording.recorded
    checkable = [p for p in recorded if _skipped(p) is None and p.leaves]
    repeats, run_s = True, 0.0
    if checkable and time.monotonic() < checker.deadline:
        repeats, run_s = checker.repeats(recorded, checkable[-1].index)
    if not repeats:
        doc["notice"] = (
            "The program does not give the same result twice from the same seed, so its gradients cannot be checked by nudging."
        )
    for p in recorded:
        pd = {
            "index": p.index,
            "api": p.api,
            "line": p.line,
            "objective": _number(p.objective),
            "leaves": [],
            "skipped": _skipped(p),
        }
        doc["passes"].append(pd)
        if pd["skipped"] is None:
            pd["leaves"] = [checker.leaf(p, leaf, names.get(id(leaf.tensor)), repeats, run_s) for leaf in p.leaves]
    doc["elements"], doc["runs"] = checker.elements, checker.runs
    return doc


def _skipped(p: _Pass) -> str | None:
    """Why a whole pass is not checked."""
    if p.error is not None:
        return "failed"
    if p.batched:
        return "batched"
    if p.objective is None:
        return "not_scalar"
    if not math.isfinite(p.objective):
        return "not_finite"
    return None


def _number(x: float | None) -> Any:
    return None if x is None else values.number(x)


def join(check_doc: dict[str, Any], trace_doc: dict[str, Any]) -> None:
    """Fill each checked leaf's node id and name from the trace of the same program (same passes,
    same leaves in the engine's order, matched by shape)."""
    nodes = {n["id"]: n for n in trace_doc.get("nodes", [])}
    passes = {p["index"]: p for p in trace_doc.get("passes", [])}
    for pd in check_doc["passes"]:
        p = passes.get(pd["index"])
        if p is None or p["api"] != pd["api"] or p["line"] != pd["line"]:
            continue
        if p.get("inputs"):
            candidates = list(p["inputs"])
        else:
            candidates = []
            for step in p.get("steps", []):
                n = nodes.get(step["node"])
                if n is not None and n["kind"] == "leaf" and step["node"] not in candidates:
                    candidates.append(step["node"])
        for ld in pd["leaves"]:
            for nid in candidates:
                n = nodes.get(nid)
                if n is not None and n.get("shape") == ld["shape"]:
                    # an unnamed node (a torch.func wrapper of `w`) keeps the name the check's run found (w)
                    ld["node"], ld["name"] = nid, (n.get("label") if n.get("name") else ld["name"] or n.get("label"))
                    candidates.remove(nid)
                    break


def check_json(
    source: str,
    settings: TraceSettings | None = None,
    keep: list[Any] | None = None,
    overrides: dict[str, Any] | None = None,
    max_elements: int = 2_000,
    budget_s: float = 5.0,
) -> bytes:
    """The program's trace (as trace_json) with its `check`: every pass's gradients nudged, within
    `max_elements` and before the sandbox's timer (or within `budget_s` where there is none)."""
    document = orjson.loads(trace_json(source, settings, keep, overrides=overrides))
    deadline = deadline_from_timer(budget_s)
    if any(o["problem"] == "unknown_name" for o in document.get("overrides", [])):
        return strict_json.dumps(document)  # refused: nothing ran, nothing to check
    result = check(source, max_elements, deadline, overrides)
    join(result, document)
    document["check"] = result
    return strict_json.dumps(document)


def job_json(source: str, job: Job, settings: TraceSettings | None = None, keep: list[Any] | None = None) -> bytes:
    """What the sandbox's child answers for a job: the trace, with the job's values in place, and its check if asked."""
    overrides = job.overrides or None
    if job.check:
        return check_json(source, settings, keep, overrides, job.check_max_elements)
    return trace_json(source, settings, keep, overrides=overrides)
