"""The graph being recorded: nodes keyed by grad_fn or tensor, ids in visit order, edges by slot.

A forward operation's new node is added by `add_op`, once per operation of the program: by
native.Ops (native.cpp) where it was built, else by `_add_usual_op`, its Python twin. Anything
else (an operation on tensors the graph has not seen, an in-place one, a pass's roots) takes the
general path, `walk`, which records a grad_fn and every node below it the graph has not seen.

Walking is iterative (an explicit stack), so a 100,000-node chain never meets
Python's recursion limit; a node's inputs always get smaller ids than the node itself.
"""

from __future__ import annotations

from typing import Any

import torch

from ..config import TraceSettings
from . import doc, native, values
from .bindings import Bindings

# What _add_usual_op (and native.Ops) copies: a node made by an operation (so it requires grad), the event of its making.
_OP_NODE = doc.node(id=-1, kind="op", label="", requires_grad=True)
_NODE_EVENT = doc.event(kind="node")

# The grad_fn of a leaf: the one node type that stands for a tensor, not an operation.
_ACCUMULATE_GRAD: type[Any] = type(torch.ones(1, requires_grad=True).expand(1).grad_fn.next_functions[0][0])  # type: ignore[union-attr]  # an expand of a leaf has a grad_fn


def _outputs(f: Any) -> int:
    """How many outputs grad_fn `f` has (a custom Function's apply is not seen by the mode: its outputs are met one by one)."""
    try:
        return len(f._input_metadata)
    except (AttributeError, RuntimeError):
        return 1


class Graph:
    def __init__(self, limits: TraceSettings) -> None:
        self.limits = limits
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.truncated_by: str | None = None
        self._edge_keys: set[tuple[int, int, int]] = set()
        self.by_fn: dict[int, int] = {}  # id(grad_fn) -> node id
        self._by_tensor: dict[int, int] = {}  # id(leaf or constant tensor) -> node id
        self._keep: list[Any] = []  # strong refs: ids above stay valid for the whole run
        self.tensors: dict[int, torch.Tensor] = {}  # node id -> leaf / retain_grad tensor, for final .grad
        self.grads_replaced = 0  # counts the moments .grad tensors may have been replaced (a pass, `x.grad = ...`)
        self.names: dict[int, tuple[str, str | None]] = {}  # id(tensor) -> (name, scope) it was last bound to
        self.param_paths: dict[
            int, list[tuple[str, str | None, int | None]]
        ] = {}  # id(parameter) -> ("model.0.weight", scope, line)
        self.bindings = Bindings(self.nodes)
        self.deferred = values.Deferred(limits.max_value_elements)  # node values, read in batches
        self.outputs_listed = 0  # Output entries of multi-output nodes (at most max_nodes)
        self.tensor_data: list[dict[str, Any]] = []  # Trace.tensors: the backward steps' gradients
        # What the program is in when a node is made (Node.module, .iteration, .loop): set_context.
        # op_node is what _add_usual_op (and native.Ops) copy: the context is in it already.
        self.context: dict[str, Any] = {"module": None, "iteration": None, "loop": None}
        self.op_node = _OP_NODE.copy()
        # native.Ops (native.cpp), writing into the containers above; made at the first op, None without it
        self._ops: Any = False

    def __del__(self) -> None:
        # Let go of the grad_fns newest first: a consumer is freed while its inputs are still held,
        # so a 100,000-node chain is never torn down recursively from its root (a C++ stack overflow).
        keep = self._keep
        while keep:
            keep.pop()

    # -- events -------------------------------------------------------------------------------

    def event(self, **fields: Any) -> dict[str, Any] | None:
        return self.event_of(fields)

    def event_of(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        """As `event`, from a dict the caller built (the per-node path)."""
        if len(self.events) >= self.limits.max_events:
            self.truncate(f"the program's story was cut after {self.limits.max_events} events (max_events)")
            return None
        e = doc.event.of(fields)
        self.events.append(e)
        return e

    def set_context(self, **context: Any) -> None:
        """Module call (an index into modules.Modules.calls until the end), top-level loop iteration and line."""
        self.context.update(context)
        self.op_node.update(context)

    def truncate(self, notice: str) -> None:
        if self.truncated_by is None:
            self.truncated_by = notice

    # -- nodes --------------------------------------------------------------------------------

    def _add(self, fields: dict[str, Any], line: int | None, key_fn: Any = None, key_tensor: Any = None) -> int | None:
        """A new node from `fields` (the caller's dict, completed in place); its id, or None past max_nodes."""
        if len(self.nodes) >= self.limits.max_nodes:
            self.truncate(f"the graph was cut at {self.limits.max_nodes} nodes (max_nodes)")
            return None
        nid = len(self.nodes)
        fields["id"], fields["line"] = nid, line
        fields.update(self.context)
        self.nodes.append(doc.node.of(fields))
        if key_fn is not None:
            self.by_fn[id(key_fn)] = nid
            self._keep.append(key_fn)
        if key_tensor is not None:
            self._by_tensor[id(key_tensor)] = nid
            self._keep.append(key_tensor)
        self.event_of({"kind": "node", "node": nid, "line": line})
        return nid

    def _tensor_fields(self, t: torch.Tensor) -> dict[str, Any]:
        """What a node shows of its tensor; the value and stats follow from `_read_value` after _add."""
        return {"shape": values.shape_of(t), "dtype": values.dtype_name(t.dtype), "requires_grad": t.requires_grad}

    def _read_value(self, nid: int | None, t: torch.Tensor) -> None:
        if nid is not None:
            self.deferred.encode(t, self.nodes[nid], "value", "stats")

    def leaf(self, t: torch.Tensor, line: int | None) -> int | None:
        """The node of a tensor without grad_fn: a leaf if it requires grad, else a constant."""
        nid = self._by_tensor.get(id(t))
        if nid is not None:
            node = self.nodes[nid]
            if t.requires_grad and node["kind"] == "constant":  # a.requires_grad_() turned it into a leaf
                node.update(kind="leaf", op="AccumulateGrad", requires_grad=True)
                self.tensors[nid] = t
            return nid
        fields = self._tensor_fields(t)
        if t.requires_grad:
            fields.update(kind="leaf", op="AccumulateGrad")
        else:
            fields.update(kind="constant", op=None)
        fields["label"] = ""
        nid = self._add(fields, line, key_tensor=t)
        self._read_value(nid, t)
        if nid is not None:
            if t.requires_grad:
                self.tensors[nid] = t
            for named in self.param_paths.get(id(t), ()):
                self.bindings.add(self.nodes[nid], *named)
        return nid

    def walk(
        self, root: Any, line: int | None, output: torch.Tensor | None = None, inplace: bool = False, outputs: list | None = None
    ) -> int | None:
        """The general path: the node of any grad_fn, recording it and every unseen node below it
        (inputs first). `output` is the tensor it made; `outputs`, all those a multi-output grad_fn
        made in one call."""
        by_fn = self.by_fn
        known = by_fn.get(id(root))
        if known is not None:
            return known
        if len(self.nodes) >= self.limits.max_nodes:
            # Cut already: no node can be added, so none is looked for (below an op made after the cut
            # lie all the ops made since; walking them again for each new op made the run quadratic).
            self.truncate(f"the graph was cut at {self.limits.max_nodes} nodes (max_nodes)")
            return None
        children = root.next_functions  # a new tuple per call: read once per node
        if type(root) is not _ACCUMULATE_GRAD and all(child is None or id(child) in by_fn for child, _ in children):
            # the usual case: an operation on tensors the graph knows already
            return self._op_node(root, children, line, output, inplace, outputs)
        nexts: dict[int, tuple] = {id(root): children}
        stack: list[tuple[Any, bool]] = [(root, False)]
        f: Any
        while stack:
            f, expanded = stack.pop()
            if id(f) in by_fn:
                continue
            if not expanded:
                stack.append((f, True))
                if id(f) not in nexts:
                    nexts[id(f)] = f.next_functions
                for child, _ in reversed(nexts[id(f)]):
                    if child is not None and id(child) not in by_fn:
                        stack.append((child, False))
                continue
            if type(f) is _ACCUMULATE_GRAD:  # the leaf itself
                nid = self.leaf(f.variable, line)
                if nid is not None:
                    by_fn[id(f)] = nid
                    self._keep.append(f)
            elif f is root:
                nid = self._op_node(f, nexts[id(f)], line, output, inplace, outputs)
            else:
                nid = self._op_node(f, nexts[id(f)], line, None, False, None)
            if nid is None:
                return None
        return by_fn.get(id(root))

    def _op_node(
        self, f: Any, children: tuple, line: int | None, output: torch.Tensor | None, inplace: bool, outputs: list | None
    ) -> int | None:
        """A grad_fn node whose inputs are all registered, with its edges; its value is `output`'s, if given."""
        if outputs is None and output is not None and (output.output_nr or _outputs(f) > 1):
            outputs = [output]  # one output of several (the call returned one of them; a custom Function's)
        fields: dict[str, Any]
        if outputs:
            fields = {"requires_grad": True, "inplace": inplace}
        elif output is not None:
            fields = self._tensor_fields(output)
            fields["inplace"] = inplace
        else:
            fields = self._hidden_fields(f)
        fields["kind"], fields["op"], fields["label"] = "op", type(f).__name__, ""
        if outputs:
            listed = [self._output(t.output_nr, t) for t in sorted(outputs, key=lambda t: t.output_nr)]
            fields["outputs"] = [out for out in listed if out is not None]
        nid = self._add(fields, line, key_fn=f)
        if nid is None:
            return None
        if output is not None and not outputs:
            self._read_value(nid, output)
        by_fn = self.by_fn
        for slot, (child, nr) in enumerate(children):
            if child is not None:
                cid = by_fn.get(id(child))
                if cid is not None:
                    self.edge(cid, nid, slot, nr)
        return nid

    def _output(self, index: int, t: torch.Tensor | None, meta: Any = None) -> dict[str, Any] | None:
        """An Output of a multi-output node: from the tensor the program holds (its value read at the
        next flush), or from the grad_fn's metadata for one it never saw. None past max_nodes outputs."""
        if self.outputs_listed >= self.limits.max_nodes:  # x.unbind() of a long tensor: the first ones
            self.truncate(f"the outputs of multi-output operations were cut at {self.limits.max_nodes:,} (max_nodes)")
            return None
        self.outputs_listed += 1
        if t is not None:
            out = doc.output(index=index, label="", shape=values.shape_of(t), dtype=values.dtype_name(t.dtype))
            self.deferred.encode(t, out, "value", "stats")
            return out
        return doc.output(index=index, label="", shape=list(meta.shape), dtype=values.dtype_name(meta.dtype))

    def add_op(self, f: Any, output: torch.Tensor, line: int | None) -> tuple[int | None, bool]:
        """The node of `output`'s grad_fn `f`, new to the graph, and whether one of its slots has no
        autograd input (a constant may feed it). Runs once per operation of the program."""
        ops = self._ops
        if ops is False:
            compiled = native.compiled
            ops = self._ops = None if compiled is None else compiled.Ops(self, self.op_node, _NODE_EVENT, values.dtype_name)
        if ops is not None:
            made = ops.add(f, output, line)
            if made is not None:
                node, free = made
                self.deferred.encode(output, node, "value", "stats")
                return node["id"], free
        children = f.next_functions
        for child, _ in children:
            if child is None:
                return self._add_usual_op(f, children, output, line), True
        return self._add_usual_op(f, children, output, line), False

    def _add_usual_op(self, f: Any, children: tuple, output: torch.Tensor, line: int | None) -> int | None:
        """native.Ops.add in Python: the usual case (an operation on tensors the graph knows) done
        inline, as `_op_node` would, from copies of prepared dicts. Anything else goes to `walk`."""
        by_fn = self.by_fn
        for child, _ in children:  # f.next_functions
            if child is not None and id(child) not in by_fn:
                return self.walk(f, line, output=output)
        if output.output_nr:  # one of several outputs
            return self._op_node(f, children, line, output, False, None)
        nodes = self.nodes
        nid = len(nodes)
        if nid >= self.limits.max_nodes or len(self.events) >= self.limits.max_events:
            return self._op_node(f, children, line, output, False, None)  # truncates there
        node = self.op_node.copy()  # a copy and six stores: cheaper than a 16-key literal (scripts/bench_choices.py)
        node["id"] = nid
        node["op"] = node["label"] = type(f).__name__  # label_all renames it if the program names it
        node["line"] = line
        node["shape"] = values.shape_of(output)
        node["dtype"] = values.dtype_name(output.dtype)
        node["names"] = []  # its own list: the template's is shared
        nodes.append(node)
        by_fn[id(f)] = nid
        self._keep.append(f)
        event = _NODE_EVENT.copy()
        event["line"] = line
        event["node"] = nid
        self.events.append(event)
        self.deferred.encode(output, node, "value", "stats")
        edges, keys = self.edges, self._edge_keys
        for slot, (child, nr) in enumerate(children):
            if child is not None:
                cid = by_fn[id(child)]
                keys.add((cid, nid, slot))
                edges.append({"source": cid, "target": nid, "slot": slot, "output": nr})
        return nid

    def _hidden_fields(self, f: Any) -> dict[str, Any]:
        """A node the program never saw as a tensor (e.g. TBackward0 inside nn.Linear): shape only."""
        try:
            metas = f._input_metadata
            if len(metas) > 1:
                listed = [self._output(i, None, m) for i, m in enumerate(metas)]
                return {"requires_grad": True, "outputs": [out for out in listed if out is not None]}
            meta = metas[0]
            return {"shape": list(meta.shape), "dtype": values.dtype_name(meta.dtype), "requires_grad": True}
        except (AttributeError, IndexError, RuntimeError):
            return {"requires_grad": True}

    def tensor(self, t: torch.Tensor, line: int | None) -> int | None:
        """The node standing for tensor `t` right now."""
        if t.grad_fn is not None:
            return self.walk(t.grad_fn, line, output=t)
        return self.leaf(t, line)

    def node_of_fn(self, f: Any) -> int | None:
        return self.by_fn.get(id(f))

    def node_of_tensor(self, t: torch.Tensor) -> int | None:
        if t.grad_fn is not None:
            return self.by_fn.get(id(t.grad_fn))
        return self._by_tensor.get(id(t))

    def constant_of(self, t: torch.Tensor) -> int | None:
        """The constant node recorded for this tensor object, if any (even after it gained a grad_fn)."""
        nid = self._by_tensor.get(id(t))
        return nid if nid is not None and self.nodes[nid]["kind"] == "constant" else None

    def edge(self, source: int, target: int, slot: int, output: int = 0) -> None:
        key = (source, target, slot)
        if key not in self._edge_keys:
            self._edge_keys.add(key)
            self.edges.append(doc.edge.of({"source": source, "target": target, "slot": slot, "output": output}))

    # -- names --------------------------------------------------------------------------------

    def holder(self, t: torch.Tensor, line: int | None) -> dict[str, Any] | None:
        """What stands for `t` in the trace: its node, or its output of a multi-output node (recorded if new)."""
        nid = self.tensor(t, line)
        if nid is None:
            return None
        node = self.nodes[nid]
        outputs = node["outputs"]
        if outputs is None:
            return node
        index = t.output_nr
        for out in outputs:
            if out["index"] == index:
                return out
        out = self._output(index, t)
        if out is None:
            return None
        outputs.append(out)
        outputs.sort(key=lambda o: o["index"])
        return out

    def bind(self, name: str, t: torch.Tensor, line: int | None, scope: str | None) -> None:
        holder = self.holder(t, line)
        if holder is None:
            return
        self.bindings.add(holder, name, scope, line)
        self.names[id(t)] = (name, scope)
        self._keep.append(t)

    def name_parameter(self, p: torch.Tensor, path: str, scope: str | None, line: int | None) -> None:
        """`model.0.weight`: named now if already recorded, else when first used."""
        named = self.param_paths.get(id(p))
        if named is not None and (scope is not None or any(s is None for _, s, _ in named)):
            return  # named already; a module-level name still joins one made inside a function (m = build())
        if named is None:
            self.param_paths[id(p)] = named = []
            self._keep.append(p)
        named.append((path, scope, line))
        nid = self._by_tensor.get(id(p))
        if nid is not None:
            self.bindings.add(self.nodes[nid], path, scope, line)

    def name_element(self, t: torch.Tensor, name: str, scope: str | None, line: int | None) -> None:
        """`ws[0]`: a tensor held by a list, tuple or dict bound to a name."""
        if self.node_of_tensor(t) is None:
            if t.grad_fn is None:
                self.name_parameter(t, name, scope, line)  # named when first used
            return
        holder = self.holder(t, line)
        if holder is not None:
            self.bindings.add(holder, name, scope, line)
