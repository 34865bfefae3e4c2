"""Backward passes: the three entry points are wrapped; hooks go on every node just before a pass
and come off right after, so each step is recorded in the order the engine really ran it."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from app.tracer import doc, values
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


def _grad_of(grads: tuple, limit: int) -> dict[str, Any]:
    """A step's gradient; stats only where the value itself is too big to carry."""
    if len(grads) == 1 and isinstance(grads[0], torch.Tensor):
        g = grads[0]
        if g.numel() <= limit:
            return {"grad": values.value(g, limit)}
        return {"grad": None, "grad_stats": values.encode(g, limit)[1]}
    return {"grad": [None if x is None else values.value(x, limit) for x in grads]}


class Passes:
    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self.graph = capture.graph
        self.passes: list[dict[str, Any]] = []
        self._active: dict[str, Any] | None = None

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

    def _begin(self, api: str, a: dict[str, Any], line: int | None) -> tuple[dict[str, Any], list[Any]]:
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
        p = doc.pass_(
            index=len(self.passes),
            api=api,
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
        g.event(kind="backward_start", pass_index=p["index"], line=line)
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
            handles.append(f.register_hook(self._hook(nid)))
            for child in g.autograd_inputs.get(nid, ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return handles

    def _hook(self, nid: int) -> Callable[[tuple, tuple], None]:
        """Runs right after the engine executed the node: the steps come in the engine's order."""
        limit = self.graph.limits.max_value_elements

        def hook(grad_inputs: tuple, grad_outputs: tuple) -> None:
            p = self._active
            if p is None or len(p["steps"]) >= self.graph.limits.max_nodes:
                return
            self.capture.paused += 1
            try:
                p["steps"].append(
                    doc.step(
                        node=nid,
                        grad_inputs=[None if x is None else values.value(x, limit) for x in grad_inputs],
                        **_grad_of(grad_outputs, limit),
                    )
                )
            finally:
                self.capture.paused -= 1

        return hook

    def _end(self, p: dict[str, Any], handles: list[Any], result: Any, error: str | None) -> None:
        self.capture.paused += 1
        try:
            for h in handles:
                h.remove()
            if p["api"] == "torch.autograd.grad" and result is not None:
                # the engine does not run AccumulateGrad here: record what was returned for each input
                limit = self.graph.limits.max_value_elements
                for t, grad in zip(self._inputs, result):
                    nid = self.graph.node_of_tensor(t)
                    if nid is not None and grad is not None:
                        p["steps"].append(doc.step(node=nid, **_grad_of((grad,), limit)))
            p["error"] = error
            self.graph.event(kind="backward_end", pass_index=p["index"], line=p["line"])
        finally:
            self._active = None
            self.capture.paused -= 1
