"""The trace's pieces as plain dicts while the program runs, made from app/models.py's fields
(the one definition: templates, not a second schema), with the models' own keys in the models' own
order. Building pydantic objects per node is the tracer's largest cost on big graphs;
the document is validated once, as a whole, where it crosses the trust boundary."""

from __future__ import annotations

import hashlib
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

TEXT_CHARS = 2_000  # one name, label, module path, class name, category or message of a trace, at most
PART_CHARS = 120  # one dotted part of a name or module path (`model.<part>.weight`), at most
MESSAGE_CHARS = 10_000  # an error's message (torch's can be long), at most


def text(s: str, n: int = TEXT_CHARS) -> str:
    """A program's string as a trace holds it: at most `n` characters. A longer one (a class named by a
    5 MB string) is cut and ends in "…" and a hash of the whole, so two that differ only at their
    ends stay two (module paths and names identify things)."""
    if len(s) <= n:
        return s
    digest = hashlib.blake2s(s.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()
    return s[: n - len(digest) - 1] + "…" + digest


def name(s: str) -> str:
    """A dotted name or module path, each part as text(part, PART_CHARS), so that a module's path
    still begins with its parent's; the whole as text()."""
    if len(s) <= PART_CHARS:
        return s
    return text(".".join(text(part, PART_CHARS) for part in s.split(".")))
