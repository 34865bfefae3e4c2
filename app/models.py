"""The trace: one document from the sandbox child to the browser, and its pieces.

The tracer builds it, the parent validates it at the trust boundary
(`Trace.model_validate_json`), the store saves it, the API returns it and the page plays it.
Tensor values are JSON: a bare number for 0-d, nested lists otherwise, and NaN / ±Inf as the
strings "NaN", "Infinity", "-Infinity" so that strict JSON parsers accept every trace. A float
is the shortest decimal that reads back as the same number of the tensor's own dtype (float32
0.018916626). The backward steps' gradients are written once, in `Trace.tensors`, and referred
to by index. `load` reads a stored document of any version (a version-1 share is upgraded).

This module is the document's only definition. The rest are views of it, never a second schema:
app/tracer/doc.py makes its pieces as plain dicts from these models' own fields (the tracer's fast
path), and app/schema.py prints its JSON Schema, published as docs/trace.schema.json (`make schema`;
a test fails when it is stale).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

TRACE_VERSION = 2

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
# Why a leaf was not nudged: over check_max_elements, out of time, not a float / complex tensor, never
# seen by the check's runs, a nudged run failed, or the program gives different results from the same seed.
CheckSkip = Literal["budget", "time", "not_float", "complex", "unseen", "nudge_failed", "not_repeatable"]
# the pass raised; a non-scalar root without gradient; NaN/inf; autograd.grad(is_grads_batched=True): one
# gradient per row of a batch of grad_outputs, where nudging finds the gradient of one objective
PassSkip = Literal["failed", "not_scalar", "not_finite", "batched"]
# A name the program never binds; bound only to non-tensors; to a computed tensor (not a leaf or a constant);
# a value that does not fit the tensor; a binding the run never reached.
OverrideProblem = Literal["unknown_name", "not_tensor", "not_leaf", "shape", "not_reached"]

# A tensor value in JSON: nested lists of numbers (or NaN/Infinity strings, or bools).
Value = TypeAliasType("Value", float | int | bool | str | None | list["Value"])  # type: ignore[misc]  # recursive: mypy cannot resolve it, pydantic does


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stats(_Doc):
    """Summary of a floating tensor whose value is not written: too big (max_value_elements), or left out for size."""

    numel: int
    min: Value = None
    max: Value = None
    mean: Value = None
    std: Value = None
    nan_count: int = 0
    inf_count: int = 0


class TensorData(_Doc):
    """A tensor written once in `Trace.tensors`, referred to by its index (a backward step's gradients)."""

    shape: list[int]
    dtype: str
    value: Value = Field(None, description="nested lists; null when too big (max_value_elements) or left out for size")
    stats: Stats | None = Field(None, description="for a floating tensor whose value is not written")


class Binding(_Doc):
    """One binding of a name to a tensor: `total = ...` at module level, `acc = ...` inside a function."""

    name: str = Field(description="the variable, a module parameter path (model.0.weight), or a place (ws[0])")
    binding: int = Field(description="1-based count of the bindings of this name in this scope (loop iterations)")
    scope: str | None = Field(None, description="the function the name was bound in; null at module level")
    line: int | None = None


class Output(_Doc):
    """One output of a multi-output grad_fn (split, chunk, unbind...) that the program held."""

    index: int = Field(description="the output's number (torch's output_nr): the `output` of edges leaving it")
    name: str | None = Field(None, description="the name the label shows (as Node.name)")
    label: str = Field(description="what the page shows: the name (with its binding number when rebound) or op[index]")
    names: list[Binding] = Field(default_factory=list, description="every name bound to this output, in program order")
    shape: list[int] | None = None
    dtype: str | None = None
    value: Value = None
    stats: Stats | None = None


class Node(_Doc):
    """A tensor or grad_fn node of the autograd graph."""

    id: int
    kind: NodeKind
    op: str | None = Field(None, description="grad_fn class name; 'AccumulateGrad' for leaves; null for constants")
    name: str | None = Field(
        None, description="the name the label shows: the first module-level binding, else the first binding (names[])"
    )
    label: str = Field(description="what the page shows: the name (with its binding number when rebound) or the op")
    binding: int | None = Field(None, description="`name`'s binding count (Binding.binding)")
    names: list[Binding] = Field(default_factory=list, description="every name bound to this node, in program order")
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
    outputs: list[Output] | None = Field(
        None,
        description="a multi-output grad_fn's outputs the program held (then value, shape and name above are null); "
        "null for a single output",
    )
    module: str | None = Field(
        None, description="path of the innermost nn.Module whose forward made it (model.blocks.3.attn.qkv); null outside"
    )
    module_call: int | None = Field(None, description="0-based call of that path (Module.call)")
    iteration: int | None = Field(None, description="1-based iteration of the enclosing top-level for/while loop")
    loop: int | None = Field(None, description="line of that loop")


class Edge(_Doc):
    """Forward direction: output `output` of source feeds target as its input number `slot`."""

    source: int
    target: int
    slot: int
    output: int = Field(0, description="which output of the source (Output.index; 0 for a single output)")


class Module(_Doc):
    """One call of an nn.Module (or a module of a called model that was not called itself: call null)."""

    path: str = Field(description="dotted path as in parameter names (model.blocks.3.attn); the class name if unbound")
    class_name: str
    parent: str | None = Field(None, description="path of the module that holds it; null at the top")
    call: int | None = Field(
        None,
        description="0-based call of this path, in the order the calls began (a model made again under one name, "
        "as in each trial of a loop, shares the path and counts on); null if it was never called",
    )
    params: list[int] = Field(default_factory=list, description="node ids of its own parameters (not its children's)")
    inputs: list[int] = Field(default_factory=list, description="node ids of the tensors passed to forward in this call")
    outputs: list[int] = Field(default_factory=list, description="node ids of the tensors forward returned in this call")


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
    """One node the autograd engine executed, in engine order. Gradients are indices into Trace.tensors."""

    node: int
    grad: list[int | None] = Field(
        default_factory=list,
        description="gradient w.r.t. each output of the node (by Output.index); null: none reached that output",
    )
    grad_inputs: list[int | None] = Field(
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
    iteration: int | None = Field(None, description="1-based iteration of the enclosing top-level for/while loop")
    loop: int | None = Field(None, description="line of that loop")


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


class LeafCheck(_Doc):
    """One leaf (or `inputs` tensor) of one backward pass: autograd's gradient beside the nudged estimate."""

    node: int | None = Field(None, description="its node in this trace; null where the check could not tell which")
    name: str | None = Field(None, description="what the page calls it: the node's label, else the name the program bound")
    shape: list[int]
    autograd: Value = Field(None, description="the gradient this pass sent it, computed by autograd in float64")
    numeric: Value = Field(None, description="(f(x+h) - f(x-h)) / 2h for each element x; null when not nudged")
    max_rel_diff: float | None = Field(
        None, description="largest |autograd - numeric| / max(1, |autograd|, |numeric|) over the elements; null when not compared"
    )
    worst: list[int] | None = Field(None, description="index of the element with that difference")
    ok: bool | None = Field(None, description="max_rel_diff <= Check.tolerance; null when not compared")
    skipped: CheckSkip | None = Field(None, description="why it was not nudged (null: it was)")


class PassCheck(_Doc):
    """One backward pass of the check: what it differentiates and each leaf it reached."""

    index: int = Field(description="the pass (Pass.index)")
    api: BackwardApi
    line: int | None = None
    objective: Value = Field(None, description="the value differentiated: the root, or sum(root * gradient) (a VJP)")
    leaves: list[LeafCheck] = Field(default_factory=list, description="in the order the engine reached them")
    skipped: PassSkip | None = Field(None, description="why the pass is not checked (null: it is)")


class Check(_Doc):
    """Each backward pass's gradients checked by nudging: the program run again in float64 per nudged element."""

    dtype: str = Field("float64", description="the runs' floating dtype (narrower floats the program asks for are widened)")
    eps: float = Field(description="relative step: h = eps * max(1, |x|)")
    tolerance: float = Field(description="largest max_rel_diff that counts as agreement")
    seed: int = Field(description="torch, random and numpy seed every run starts from")
    max_elements: int = Field(description="most elements nudged in one check (check_max_elements)")
    elements: int = Field(0, description="elements nudged")
    runs: int = Field(0, description="times the program ran")
    passes: list[PassCheck] = Field(default_factory=list)
    notice: str | None = Field(None, description="why nothing or not everything could be checked, in a sentence")


class Override(_Doc):
    """A value the request put in place of what a line produced (what if w1 were 2.5?)."""

    name: str = Field(description="the name as the program binds it (w1), or a parameter path (model.0.weight)")
    value: Value = Field(description="the value asked for: a number, or nested lists of the tensor's shape")
    applied: bool = Field(False, description="whether the run bound the name and took the value")
    node: int | None = Field(None, description="the node that got the value")
    line: int | None = Field(None, description="the line whose value it replaced")
    problem: OverrideProblem | None = Field(None, description="why it was not applied (null when it was)")


class Job(_Doc):
    """What the sandbox's child does with a program besides tracing it: values put in place (what if),
    and the numeric check. Sent with the program (app/sandbox/pool.py), read by the child."""

    overrides: dict[str, Value] = Field(default_factory=dict, description="name -> value put in place (Override)")
    check: bool = Field(False, description="check every pass's gradients by nudging (Trace.check)")
    check_max_elements: int = Field(2_000, description="most elements the check nudges")


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
    tensors: list[TensorData] = Field(default_factory=list, description="tensors written once, referred to by index")
    modules: list[Module] = Field(default_factory=list, description="nn.Module calls, in the order of the model's modules")
    stdout: str = ""
    warnings: list[TraceWarning] = Field(default_factory=list)
    error: Error | None = None
    check: Check | None = Field(None, description="the gradient check by nudging (POST /api/check); null otherwise")
    overrides: list[Override] = Field(default_factory=list, description="values the request put in place (what if)")


def load(data: str | bytes) -> Trace:
    """A stored trace of any version, as the current document (the one place documents are upgraded)."""
    head = data[:64] if isinstance(data, bytes) else data[:64].encode()
    if re.match(rb'\{\s*"version"\s*:\s*1\s*[,}]', head):  # how model_dump_json began a version-1 trace
        return Trace.model_validate(upgrade_v1(json.loads(data)))
    return Trace.model_validate_json(data)


def upgrade_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """A version-1 trace as version 2: names as bindings, step gradients written once in `tensors`."""
    doc = dict(doc, version=TRACE_VERSION)
    nodes = doc.get("nodes") or []
    for node in nodes:
        if node.get("name") is not None:
            binding = {"name": node["name"], "binding": node.get("binding") or 1, "scope": None, "line": node.get("line")}
            node["names"] = [binding]
    by_id = {n["id"]: n for n in nodes if isinstance(n, dict) and "id" in n}
    sources = {(e["target"], e["slot"]): e["source"] for e in doc.get("edges") or []}
    tensors: list[dict[str, Any]] = []

    def write(value: Any, like: dict[str, Any] | None, stats: Any = None) -> int | None:
        if value is None and stats is None:
            return None
        like = like or {}
        shape = _shape_of(value) if value is not None else like.get("shape")
        tensors.append({"shape": shape or [], "dtype": like.get("dtype") or "float32", "value": value, "stats": stats})
        return len(tensors) - 1

    for p in doc.get("passes") or []:
        for step in p.get("steps") or []:
            node = by_id.get(step.get("node"), {})
            grad, stats = step.pop("grad", None), step.pop("grad_stats", None)
            if stats is not None or grad is None or _shape_of(grad) == node.get("shape"):
                step["grad"] = [write(grad, node, stats)]  # the gradient w.r.t. its one output
            else:  # one per output slot
                step["grad"] = [write(g, None if g is None else {"dtype": node.get("dtype")}) for g in grad]
            step["grad_inputs"] = [
                write(g, by_id.get(sources.get((step.get("node"), slot)), node))
                for slot, g in enumerate(step.get("grad_inputs") or [])
            ]
    doc["tensors"] = tensors
    return doc


def _shape_of(value: Value) -> list[int] | None:
    """The shape of a nested-list value (None where the lists are ragged: not one tensor)."""
    if not isinstance(value, list):
        return []
    inner = [_shape_of(v) for v in value]
    first = inner[0] if inner else []
    if first is None or any(s != first for s in inner):
        return None
    return [len(value), *first]
