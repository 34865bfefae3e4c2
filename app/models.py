"""The trace: one document from the sandbox child to the browser, and its pieces.

The tracer builds it, the parent validates it at the trust boundary
(`Trace.model_validate_json`), the store saves it, the API returns it and the page plays it.
Tensor values are JSON: a bare number for 0-d, nested lists otherwise, and NaN / ±Inf as the
strings "NaN", "Infinity", "-Infinity" so that strict JSON parsers accept every trace.

This module is the document's only definition. The rest are views of it, never a second schema:
app/tracer/doc.py makes its pieces as plain dicts from these models' own fields (the tracer's fast
path), and app/schema.py prints its JSON Schema, published as docs/trace.schema.json (`make schema`;
a test fails when it is stale).
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

TRACE_VERSION = 1

Status = Literal["ok", "error", "timeout", "memory", "killed"]
NodeKind = Literal["leaf", "op", "constant"]
EventKind = Literal[
    "node",  # a node came to exist in the forward pass (op output, leaf or constant)
    "print",  # text the program wrote to stdout
    "display",  # a bare expression statement's value, shown like a notebook cell's output
    "warning",
    "backward_start",
    "backward_end",
    "grad",  # a .grad changed outside backward: zero_(), = None, optimizer.zero_grad()
    "update",  # a leaf's value changed in place (optimizer.step(), with torch.no_grad())
    "error",
]
BackwardApi = Literal["Tensor.backward", "torch.autograd.backward", "torch.autograd.grad"]

# A tensor value in JSON: nested lists of numbers (or NaN/Infinity strings, or bools).
Value = TypeAliasType("Value", Union[float, int, bool, str, None, list["Value"]])


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stats(_Doc):
    """Summary of a floating tensor; always present for floats, the only view of big ones."""

    numel: int
    min: Value = None
    max: Value = None
    mean: Value = None
    std: Value = None
    nan_count: int = 0
    inf_count: int = 0


class Node(_Doc):
    """A tensor or grad_fn node of the autograd graph."""

    id: int
    kind: NodeKind
    op: str | None = Field(None, description="grad_fn class name; 'AccumulateGrad' for leaves; null for constants")
    name: str | None = Field(None, description="Python variable bound to it, or a module parameter path")
    label: str = Field(description="what the page shows: the name (with its binding number when rebound) or the op")
    binding: int | None = Field(None, description="1-based count of bindings of this name (loop iterations)")
    line: int | None = None
    shape: list[int] | None = None
    dtype: str | None = None
    requires_grad: bool = False
    retains_grad: bool = False
    value: Value = None
    grad: Value = None
    stats: Stats | None = None
    grad_stats: Stats | None = None
    inplace: bool = Field(False, description="made by an in-place op on an existing tensor (b[0] = ..., x.add_())")


class Edge(_Doc):
    """Forward direction: source feeds target as its input number `slot`."""

    source: int
    target: int
    slot: int


class Event(_Doc):
    """One moment of the program's story, in program order."""

    kind: EventKind
    line: int | None = None
    node: int | None = None
    text: str | None = None
    category: str | None = None
    value: Value = None
    pass_index: int | None = None


class Step(_Doc):
    """One node the autograd engine executed, in engine order."""

    node: int
    grad: Value = Field(None, description="gradient w.r.t. this node's output in this pass")
    grad_stats: Stats | None = None
    grad_inputs: list[Value] = Field(
        default_factory=list,
        description="gradients this node sent to its inputs, by slot (the edge with that slot carries it)",
    )


class Pass(_Doc):
    """One call of a backward API."""

    index: int
    api: BackwardApi
    line: int | None = None
    root: int | None = None
    roots: list[int] = Field(default_factory=list)
    inputs: list[int] = Field(default_factory=list, description="autograd.grad inputs / backward(inputs=...)")
    gradient: Value = None
    retain_graph: bool = False
    create_graph: bool = False
    steps: list[Step] = Field(default_factory=list)
    error: str | None = None


class TraceWarning(_Doc):
    category: str
    message: str
    line: int | None = None
    hint: str | None = None
    hint_id: str | None = None


class Error(_Doc):
    type: str
    message: str
    line: int | None = None
    hint: str | None = None
    hint_id: str | None = Field(None, description="stable key of the hint, for translations")
    traceback: str | None = None


class Trace(_Doc):
    """Everything a program did to the autograd graph, for the player."""

    version: int = TRACE_VERSION
    status: Status = "ok"
    truncated: bool = False
    notice: str | None = None
    source: str = ""
    torch_version: str | None = None
    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    passes: list[Pass] = Field(default_factory=list)
    stdout: str = ""
    warnings: list[TraceWarning] = Field(default_factory=list)
    error: Error | None = None
