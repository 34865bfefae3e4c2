"""Backward passes: the three entry points are wrapped; hooks go on every node just before a pass
and come off right after, so each step is recorded in the order the engine really ran it."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch

from . import budget, doc, failures, native, values
from .capture import NOT_CACHED, untraced
from .graph import Graph
from .program import running_line

_ORIGINAL: dict[str, Callable[..., Any]] = {
    "Tensor.backward": torch.Tensor.backward,
    "torch.autograd.backward": torch.autograd.backward,
    "torch.autograd.grad": torch.autograd.grad,
}
_PARAMETERS = {api: tuple(inspect.signature(f).parameters) for api, f in _ORIGINAL.items()}


def _arguments(api: str, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The call's arguments by parameter name (as Signature.bind, without its cost: scripts/bench_choices.py);
    None for a call torch itself will refuse, so that torch says why."""
    names = _PARAMETERS[api]
    if len(args) > len(names) or any(k not in names or k in names[: len(args)] for k in kwargs):
        return None
    a = dict(zip(names, args))
    a.update(kwargs)
    return a if names[0] in a else None


def _tensors(x: Any) -> list[torch.Tensor]:
    if x is None:
        return []
    if isinstance(x, torch.Tensor):
        return [x]
    return [t for t in x if isinstance(t, torch.Tensor)]


class _PythonSteps:
    """native.Steps with Python hooks: the same records, read the same way, one Python call per node.
    The fallback where app/tracer/native.cpp was not built, and its reference in the tests."""

    def __init__(self) -> None:
        self._raw: list[tuple[int, tuple, tuple]] = []
        self._handles: list[Any] = []

    def add_below(self, roots: list[Any], by_fn: dict[int, int]) -> None:
        """A hook on each root and every node below it that the graph knows (by_fn: id(grad_fn) -> node id)."""
        stack = [f for f in roots if id(f) in by_fn]
        seen = {id(f) for f in stack}
        while stack:
            f = stack.pop()
            self._handles.append(f.register_hook(partial(self._record, by_fn[id(f)])))
            for child, _ in f.next_functions:
                if child is not None and id(child) in by_fn and id(child) not in seen:
                    seen.add(id(child))
                    stack.append(child)

    def _record(self, nid: int, grad_inputs: tuple, grad_outputs: tuple) -> None:
        self._raw.append((nid, grad_inputs, grad_outputs))

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def take(
        self,
        tensors: list[dict[str, Any]],
        max_elements: int,
        dtype_name: Any = None,
        values_for: Any = None,
        fragment: Any = None,
        unwritten: Any = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """native.Steps.take; its values are nested lists (`fragment`, `unwritten`: native.cpp's ways of writing them)."""
        raw, self._raw = self._raw, []
        entries = values.Entries(tensors, max_elements)
        steps = []
        for nid, grad_inputs, grad_outputs in raw:
            grad = [entries.index(x, values_for is None or nid in values_for) for x in grad_outputs]
            sent = [entries.index(x, values_for is None) for x in grad_inputs]
            steps.append(doc.step(node=nid, grad=grad, grad_inputs=sent))
        return steps, False


def _steps_recorder() -> Any:
    compiled = native.compiled
    return _PythonSteps() if compiled is None else compiled.Steps()


class Passes:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.passes: list[dict[str, Any]] = []
        self._active: dict[str, Any] | None = None
        self.steps = 0  # over all passes (max_steps)
        self.step_elements = 0  # elements of the step gradients written with their value (budget.estimate)

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Patch the backward entry points for the duration of the program."""
        torch.Tensor.backward = self._wrap("Tensor.backward")  # type: ignore[method-assign]  # the entry point is wrapped for the length of the program
        torch.autograd.backward = self._wrap("torch.autograd.backward")
        torch.autograd.grad = self._wrap("torch.autograd.grad")
        try:
            yield
        finally:
            torch.Tensor.backward = _ORIGINAL["Tensor.backward"]  # type: ignore[method-assign]  # and put back
            torch.autograd.backward = _ORIGINAL["torch.autograd.backward"]
            torch.autograd.grad = _ORIGINAL["torch.autograd.grad"]

    def _wrap(self, api: str) -> Callable[..., Any]:
        original = _ORIGINAL[api]

        def entry(*args: Any, **kwargs: Any) -> Any:
            if self._active is not None:  # Tensor.backward calls torch.autograd.backward: one pass
                return original(*args, **kwargs)
            line = running_line(2)
            arguments = _arguments(api, args, kwargs)
            if arguments is None:
                return original(*args, **kwargs)
            with untraced():
                p, recorder = self._begin(api, arguments, line)
            try:
                result = original(*args, **kwargs)
            except BaseException as e:
                self._end(p, recorder, None, failures.shown(str, e))
                raise
            self._end(p, recorder, result, None)
            return result

        entry.__name__ = original.__name__
        entry.__doc__ = original.__doc__
        setattr(entry, NOT_CACHED, True)  # torch hands it to the mode (Tensor.backward is looked up at call time)
        return entry

    def _begin(self, api: str, a: dict[str, Any], line: int | None) -> tuple[dict[str, Any], Any]:
        g = self.graph
        g.deferred.flush()  # the forward values, before the engine writes any .grad
        limit = g.limits.max_value_elements
        if api == "Tensor.backward":
            roots, gradient, inputs = [a["self"]], a.get("gradient"), a.get("inputs")
        elif api == "torch.autograd.backward":
            roots, gradient, inputs = _tensors(a.get("tensors")), a.get("grad_tensors"), a.get("inputs")
        else:
            roots, gradient, inputs = _tensors(a.get("outputs")), a.get("grad_outputs"), a.get("inputs")
        create_graph = bool(a.get("create_graph", False))
        retain = a.get("retain_graph")
        root_ids = [nid for t in roots if (nid := g.tensor(t, line)) is not None]
        input_ids = [nid for t in _tensors(inputs) if (nid := g.tensor(t, line)) is not None]
        grads = _tensors(gradient)
        p = doc.pass_(
            index=len(self.passes),
            api=api,
            line=line,
            root=root_ids[0] if root_ids else None,
            roots=root_ids,
            inputs=input_ids,
            gradient=(values.read(grads[0], limit) if len(grads) == 1 else [values.read(x, limit) for x in grads])
            if grads
            else None,
            retain_graph=create_graph if retain is None else bool(retain),
            create_graph=create_graph,
            iteration=g.context["iteration"],
            loop=g.context["loop"],
        )
        self.passes.append(p)
        self._active = p
        g.event(kind="backward_start", pass_index=p["index"], line=line)
        recorder = self._hook_all([t.grad_fn for t in roots if t.grad_fn is not None])
        self._inputs = _tensors(inputs)
        return p, recorder

    def _hook_all(self, roots: list[Any]) -> Any:
        """Hooks on every node of the graph below the roots (the roots recorded first, if new)."""
        g = self.graph
        recorder = _steps_recorder()
        recorder.add_below([f for f in roots if g.walk(f, None) is not None], g.by_fn)
        return recorder

    def _retained(self, inputs: list[torch.Tensor]) -> None:
        """backward(inputs=[h]) of a non-leaf h: torch retains h's .grad (as h.retain_grad() would)."""
        g = self.graph
        for t in inputs:
            if t.grad_fn is not None and t.retains_grad:
                nid = g.node_of_tensor(t)
                if nid is not None and g.nodes[nid]["outputs"] is None:
                    g.nodes[nid]["retains_grad"] = True
                    g.tensors[nid] = t

    def _returned(self, steps: list[dict[str, Any]], ran: set[int], result: Any, limit: int) -> None:
        """What autograd.grad returned for each input, as the step of its node: the engine runs neither
        AccumulateGrad nor the node of a non-leaf input it stops at. One step per node, each gradient at
        its output's index (split's outputs a and b); a node the engine ran on the way keeps its own step."""
        g = self.graph
        entries = values.Entries(g.tensor_data, limit)
        made: dict[int, dict[str, Any]] = {}
        for t, grad in zip(self._inputs, result):
            nid = g.node_of_tensor(t)
            if nid is None or grad is None or nid in ran:
                continue
            step = made.get(nid)
            if step is None:
                step = made[nid] = doc.step(node=nid, grad=[])
                steps.append(step)
            index = t.output_nr if g.nodes[nid]["outputs"] is not None else 0
            grads = step["grad"]
            grads.extend([None] * (index + 1 - len(grads)))
            if grads[index] is None:
                grads[index] = entries.index(grad)

    def _end(self, p: dict[str, Any], recorder: Any, result: Any, error: str | None) -> None:
        try:
            with untraced():
                self._close(p, recorder, result, error)
        finally:
            self._active = None

    def _close(self, p: dict[str, Any], recorder: Any, result: Any, error: str | None) -> None:
        recorder.remove()
        g, limits = self.graph, self.graph.limits
        limit = limits.max_value_elements
        tensors = g.tensor_data
        first = len(tensors)
        # Past the byte budget already (values read so far, estimated), the gradients of steps other
        # than leaves' get their stats only: what budget.fit would leave out first, not read at all.
        over = budget.estimate(len(g.nodes), g.deferred.read_elements + self.step_elements) > limits.max_trace_bytes
        taken, handed_back = recorder.take(
            tensors, limit, values.dtype_name, set(g.tensors) if over else None, **g.deferred.writing()
        )
        self.step_elements += sum(math.prod(e["shape"]) for e in tensors[first:] if e["value"] is not None)
        steps = p["steps"]
        room = min(limits.max_nodes - len(steps), limits.max_steps - self.steps)
        if len(taken) > room:
            self.graph.truncate(
                f"the backward steps were cut at {limits.max_steps:,} (max_steps) or {limits.max_nodes:,} in a pass"
            )
            taken = taken[: max(0, room)]
        self.steps += len(taken)
        if handed_back:  # tensors native.cpp does not read (complex, functorch's...): read here
            for i in range(first, len(tensors)):
                t = tensors[i]["value"]
                if isinstance(t, torch.Tensor):
                    tensors[i] = values.entry(t, limit)
        steps.extend(taken)
        if p["api"] == "torch.autograd.grad":
            if result is not None:
                self._returned(steps, {s["node"] for s in taken}, result, limit)
        else:
            self._retained(self._inputs)
        self.graph.deferred.flush()  # the pass's values, before the program can change any of them
        self.graph.grads_replaced += 1
        p["error"] = error
        self.graph.event(kind="backward_end", pass_index=p["index"], line=p["line"])
