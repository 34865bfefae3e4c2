"""Backward passes: the three entry points are wrapped; hooks go on every node just before a pass
and come off right after, so each step is recorded in the order the engine really ran it."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from app.models import Pass, Step
from app.tracer import values
from app.tracer.capture import Capture, user_line

_ORIGINAL = {
    "Tensor.backward": torch.Tensor.backward,
    "torch.autograd.backward": torch.autograd.backward,
    "torch.autograd.grad": torch.autograd.grad,
}
_SIGNATURES = {api: inspect.signature(f) for api, f in _ORIGINAL.items()}


def _tensors(x: Any) -> list[torch.Tensor]:
    if x is None:
        return []
    if isinstance(x, torch.Tensor):
        return [x]
    return [t for t in x if isinstance(t, torch.Tensor)]


class Passes:
    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self.graph = capture.graph
        self.passes: list[Pass] = []
        self._active: Pass | None = None
        self._step_of: dict[int, Step] = {}

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Patch the backward entry points for the duration of the program."""
        torch.Tensor.backward = self._wrap("Tensor.backward")  # type: ignore[method-assign]
        torch.autograd.backward = self._wrap("torch.autograd.backward")
        torch.autograd.grad = self._wrap("torch.autograd.grad")
        try:
            yield
        finally:
            torch.Tensor.backward = _ORIGINAL["Tensor.backward"]  # type: ignore[method-assign]
            torch.autograd.backward = _ORIGINAL["torch.autograd.backward"]
            torch.autograd.grad = _ORIGINAL["torch.autograd.grad"]

    def _wrap(self, api: str) -> Callable[..., Any]:
        original = _ORIGINAL[api]

        def entry(*args: Any, **kwargs: Any) -> Any:
            if self._active is not None:  # Tensor.backward calls torch.autograd.backward: one pass
                return original(*args, **kwargs)
            line = user_line(2)
            try:
                bound = _SIGNATURES[api].bind(*args, **kwargs)
            except TypeError:
                return original(*args, **kwargs)
            self.capture.paused += 1
            try:
                p, handles = self._begin(api, bound.arguments, line)
            finally:
                self.capture.paused -= 1
            try:
                result = original(*args, **kwargs)
            except BaseException as e:
                self._end(p, handles, None, str(e))
                raise
            self._end(p, handles, result, None)
            return result

        entry.__name__ = original.__name__
        entry.__doc__ = original.__doc__
        return entry

    def _begin(self, api: str, a: dict[str, Any], line: int | None) -> tuple[Pass, list[Any]]:
        g = self.graph
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
        p = Pass(
            index=len(self.passes),
            api=api,  # type: ignore[arg-type]
            line=line,
            root=root_ids[0] if root_ids else None,
            roots=root_ids,
            inputs=input_ids,
            gradient=(values.value(grads[0], limit) if len(grads) == 1 else [values.value(x, limit) for x in grads])
            if grads
            else None,
            retain_graph=create_graph if retain is None else bool(retain),
            create_graph=create_graph,
        )
        self.passes.append(p)
        self._active = p
        self._step_of = {}
        g.event(kind="backward_start", pass_index=p.index, line=line)
        handles = self._hook_all([t.grad_fn for t in roots if t.grad_fn is not None])
        if api == "torch.autograd.grad":
            self._inputs = _tensors(inputs)
        return p, handles

    def _hook_all(self, roots: list[Any]) -> list[Any]:
        """Hooks on every node below the roots, walking the recorded graph (ints, not grad_fns)."""
        g = self.graph
        handles: list[Any] = []
        stack = [nid for f in roots if (nid := g.fn(f, None)) is not None]
        seen: set[int] = set(stack)
        while stack:
            nid = stack.pop()
            f = g.fns.get(nid)
            if f is None:
                continue
            handles.append(f.register_prehook(self._pre(nid)))
            handles.append(f.register_hook(self._post(nid)))
            for child in g.autograd_inputs.get(nid, ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return handles

    def _encode(self, grads: tuple) -> tuple[Any, Any]:
        limit = self.graph.limits.max_value_elements
        if len(grads) == 1 and isinstance(grads[0], torch.Tensor):
            return values.encode(grads[0], limit)
        return [None if x is None else values.value(x, limit) for x in grads], None

    def _pre(self, nid: int) -> Callable[[tuple], None]:
        def hook(grad_outputs: tuple) -> None:
            p = self._active
            if p is None or len(p.steps) >= self.graph.limits.max_nodes:
                return
            self.capture.paused += 1
            try:
                grad, stats = self._encode(grad_outputs)
                step = Step.model_construct(node=nid, grad=grad, grad_stats=stats, grad_inputs=[])
                p.steps.append(step)
                self._step_of[nid] = step
            finally:
                self.capture.paused -= 1

        return hook

    def _post(self, nid: int) -> Callable[[tuple, tuple], None]:
        limit = self.graph.limits.max_value_elements

        def hook(grad_inputs: tuple, grad_outputs: tuple) -> None:
            step = self._step_of.get(nid)
            if step is None:
                return
            self.capture.paused += 1
            try:
                step.grad_inputs = [None if x is None else values.value(x, limit) for x in grad_inputs]
            finally:
                self.capture.paused -= 1

        return hook

    def _end(self, p: Pass, handles: list[Any], result: Any, error: str | None) -> None:
        self.capture.paused += 1
        try:
            for h in handles:
                h.remove()
            if p.api == "torch.autograd.grad" and result is not None:
                # the engine does not run AccumulateGrad here: record what was returned for each input
                limit = self.graph.limits.max_value_elements
                for t, grad in zip(self._inputs, result):
                    nid = self.graph.node_of_tensor(t)
                    if nid is not None and grad is not None:
                        value, stats = values.encode(grad, limit)
                        p.steps.append(Step.model_construct(node=nid, grad=value, grad_stats=stats, grad_inputs=[]))
            p.error = error
            self.graph.event(kind="backward_end", pass_index=p.index, line=p.line)
        finally:
            self._active = None
            self._step_of = {}
            self.capture.paused -= 1
