"""The trace's pieces as plain dicts while the program runs, made from app/models.py's fields
(the one definition: templates, not a second schema), with the models' own keys in the models' own
order. Building pydantic objects per node is the tracer's largest cost on big graphs;
the document is validated once, as a whole, where it crosses the trust boundary."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..models import Binding, Edge, Error, Event, Module, Node, Output, Pass, Stats, Step, TensorData, Trace, TraceWarning


class _Shape:
    def __init__(self, model: type[BaseModel]) -> None:
        self.template: dict[str, Any] = {}
        self.lists: list[str] = []
        for name, field in model.model_fields.items():
            if field.default_factory is not None:
                self.template[name] = None
                self.lists.append(name)
            else:
                self.template[name] = field.default

    def __call__(self, **fields: Any) -> dict[str, Any]:
        return self.of(fields)

    def of(self, fields: dict[str, Any]) -> dict[str, Any]:
        """As calling it, from a dict the caller built already (the tracer's per-node path)."""
        d = {**self.template, **fields}
        for name in self.lists:
            if d[name] is None:
                d[name] = []
        return d


node = _Shape(Node)
edge = _Shape(Edge)
event = _Shape(Event)
step = _Shape(Step)
pass_ = _Shape(Pass)
stats = _Shape(Stats)
warning = _Shape(TraceWarning)
error = _Shape(Error)
trace = _Shape(Trace)
tensor = _Shape(TensorData)
binding = _Shape(Binding)
output = _Shape(Output)
module = _Shape(Module)
