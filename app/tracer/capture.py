"""Forward capture: every torch call the program makes, with its source line and output value.

A TorchFunctionMode sees each call (torch.*, Tensor methods, .grad get/set, nn.functional);
in-place calls on tensors, leaves and .grad are turned into the events the player shows.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import torch
from torch.optim import optimizer as optimizer_hooks
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.overrides import TorchFunctionMode

from . import values
from .calls import writes_in_place
from .graph import Graph
from .program import running_line

# The tracer's own torch calls outside the mode's handler (hooks, bindings, reading values): no
# dispatch to the mode at all, so nothing is recorded, and reading a tensor's attribute costs a
# fraction of a dispatched read (scripts/bench_choices.py). Inside __torch_function__ torch keeps the mode off.
untraced = torch._C.DisableTorchFunction

# The class attributes are torch's getset descriptors, which the stubs type as the instance's value.
_GRAD_GET = torch.Tensor.grad.__get__  # type: ignore[union-attr]  # a getset descriptor, typed as the value
_GRAD_SET = torch.Tensor.grad.__set__  # type: ignore[union-attr]  # as above
_DATA_GET = torch.Tensor.data.__get__  # type: ignore[attr-defined]  # as above
_ALIASES = ("data", "detach")  # calls whose result shares the tensor's memory, with no autograd link back
# Calls that only read metadata: answered without any bookkeeping.
_QUIET = frozenset(
    {
        torch.Tensor.size,
        torch.Tensor.dim,
        torch.Tensor.numel,
        torch.Tensor.__len__,
        torch.Tensor.__repr__,
        torch.Tensor.__format__,
        torch.Tensor.__str__,
        torch.Tensor.tolist,
        torch.Tensor.item,
        torch.Tensor.__bool__,
        torch.Tensor.__float__,
        torch.Tensor.__int__,
        torch.Tensor.__index__,
        torch.Tensor.__hash__,
        torch.Tensor.__iter__,
        torch.Tensor.__contains__,
        torch.Tensor.is_floating_point,
        torch.Tensor.is_complex,
        torch.Tensor.stride,
        torch.Tensor.data_ptr,
        torch.Tensor.storage_offset,
        torch.Tensor.is_contiguous,
        torch.is_complex,  # an optimizer asks it of every parameter at every step
        torch.is_floating_point,
        torch.numel,
    }
)

# Calls that hand out a tensor's memory (to numpy, DLPack, a storage) or replace it (`x.data = ...`,
# any property set): held values are read before them, as before an in-place call.
_EXPOSES_MEMORY = frozenset({"numpy", "__array__", "__dlpack__", "untyped_storage", "storage", "__set__"})


def _flat_tensors(obj: Any, out: list[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _flat_tensors(x, out)
    return out


_KEEPS_VALUE = frozenset({"requires_grad_", "detach_"})  # in place, yet the values stay as they were
_RECORDED = (torch.Tensor, list, tuple)  # what _record finds tensors in (subclasses too: torch.return_types, Parameter)
_PASS = object()  # metadata reads, .grad reads: answered without any bookkeeping
_GRAD_SETTER = object()  # `x.grad = ...`
_NONE: list = []  # no in-place targets (never appended to)
_KINDS: dict[Any, Any] = {}  # func -> _PASS, _GRAD_SETTER or (name, in place, exposes memory, plain)
_MAX_KINDS = 4_096
# Set on the tracer's per-run wrappers (hooks.py): cached, they would keep each run's graph alive.
NOT_CACHED = "__gradwalk_not_cached__"


def _kind_of(func: Any) -> Any:
    try:
        quiet = func in _QUIET
    except TypeError:  # an unhashable callable
        quiet = False
    if quiet or func == _GRAD_GET:  # a fresh method-wrapper per attribute access: equal, not identical
        return _PASS
    if func == _GRAD_SET:
        return _GRAD_SETTER
    name = "data" if func == _DATA_GET else getattr(func, "__name__", "")
    inplace, exposes = writes_in_place(name), name in _EXPOSES_MEMORY
    plain = not (inplace or exposes or name in _ALIASES or name == "retain_grad")  # no more than its output to record
    return name, inplace, exposes, plain


def _torch_step(optimizer: Any, args: tuple, kwargs: dict) -> bool:
    """Whether `optimizer.step(...)` runs only torch's own code: a torch optimizer's step, no closure
    (it runs the program's forward), no step hooks of the program's (its own or global), not
    differentiable (it makes nodes)."""
    owner = next((cls for cls in type(optimizer).__mro__ if "step" in cls.__dict__), None)
    return (
        owner is not None
        and owner.__module__.startswith("torch.optim")
        and not args[1:]
        and kwargs.get("closure") is None
        and not optimizer._optimizer_step_pre_hooks
        and not optimizer._optimizer_step_post_hooks
        and len(optimizer_hooks._global_optimizer_pre_hooks) == len(optimizer_hooks._global_optimizer_post_hooks) == 1  # ours
        and not optimizer.defaults.get("differentiable")
        # fused kernels write parameters without bumping their versions: traced call by call, each
        # `_fused_adam_(params, ...)` an update of each parameter it was given
        and not any(group.get("fused") for group in optimizer.param_groups)
    )


class _Step:
    """A torch optimizer's step() in progress: it runs without the tracer's per-call work (thousands
    of calls on the optimizer's own state), and its parameters' updates become one event each at its end."""

    def __init__(self, wrapper: FrameType, before: list[tuple[torch.Tensor, int, int, Any, int]]) -> None:
        self.wrapper = wrapper  # torch's step wrapper, which calls the hooks
        self.before = before  # (parameter, its node, its version, its .grad, that grad's version)

    def running(self, frame: FrameType | None) -> bool:
        """Whether `frame` is inside the step (the wrapper is among its callers): a step that raised is over."""
        while frame is not None:
            if frame is self.wrapper:
                return True
            frame = frame.f_back
        return False


class Capture(TorchFunctionMode):
    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self.paused = 0  # >0 while the program's own objects are shown (repr): their torch calls are not the program's
        self._aliases: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(w.data) -> (w.data, w)
        self._grad_owners: dict[int, int] = {}  # id(leaf.grad) -> the leaf's node id, while _grad_owners_key holds
        self._grad_owners_key: tuple[int, int] | None = None
        self._step: _Step | None = None
        self._step_hooks: list[Any] = []

    def __enter__(self) -> Capture:
        self._step_hooks = [
            register_optimizer_step_pre_hook(self._step_begins),
            register_optimizer_step_post_hook(self._step_ends),
        ]
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._step_ends(None, (), {})  # a step the program's error ended: what it changed is still shown
        for handle in self._step_hooks:
            handle.remove()
        super().__exit__(*exc)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if self.paused:
            step = self._step
            if step is None or step.running(sys._getframe(1)):
                return func(*args, **kwargs)
            self._step_ends(None, (), {})  # the step raised, and the program caught it
        try:
            kind = _KINDS[func]
        except KeyError:
            kind = _kind_of(func)
            if not getattr(func, NOT_CACHED, False):
                if len(_KINDS) >= _MAX_KINDS:  # callables made afresh by the program: a bounded cache
                    _KINDS.clear()
                _KINDS[func] = kind
        except TypeError:  # an unhashable callable
            kind = _kind_of(func)
        if kind is _PASS:
            return func(*args, **kwargs)
        if kind is _GRAD_SETTER:
            before = _GRAD_GET(args[0])
            out = func(*args, **kwargs)
            self.graph.grads_replaced += 1
            self._grad_changed(args[0], before, running_line(2))
            return out
        name, inplace, exposes, plain = kind
        if plain:
            out = func(*args, **kwargs)
            if type(out) is torch.Tensor:
                fn = out.grad_fn
                if fn is not None:  # the usual case: one output, made by autograd
                    g = self.graph
                    if g.node_of_fn(fn) is None:
                        line = running_line(2)
                        nid, free_slot = g.add_op(fn, out, line)
                        if nid is not None and free_slot:  # a constant may feed that slot
                            self._constant_inputs(fn, nid, args, kwargs, line)
                    return out
                if not out.requires_grad:  # made under no_grad (an optimizer's step), or from constants: nothing to record
                    return out
            elif not isinstance(out, _RECORDED):  # a bool, a device, a dtype: no tensor to record
                return out
            self._record(args, kwargs, out, _NONE, _NONE, name)
            return out
        if inplace or exposes:
            self.graph.deferred.flush()  # the values read so far, before anything can change them
        if inplace:  # torch.nn.init passes its tensor by keyword
            first = args[0] if args else next(iter(kwargs.values()), None)
            targets = _flat_tensors(first, [])
            before = [t.grad_fn for t in targets]
            out = func(*args, **kwargs)
            self._record(args, kwargs, out, targets, before, name)  # torch keeps the mode off in here
            return out
        out = func(*args, **kwargs)
        self._record(args, kwargs, out, _NONE, _NONE, name)
        return out

    def _step_begins(self, optimizer: Any, args: tuple, kwargs: dict) -> None:
        """Before a torch optimizer's step: the values held so far are read, and its parameters' versions noted."""
        if self.paused or not _torch_step(optimizer, args, kwargs):
            return  # a step of the program's own (or with its closure) is traced call by call
        g = self.graph
        with untraced():
            g.deferred.flush()
            before = []
            for group in optimizer.param_groups:
                for p in group["params"]:
                    nid = g.node_of_tensor(p)
                    if nid is not None:  # a parameter the program has used
                        grad = _GRAD_GET(p)
                        before.append((p, nid, p._version, grad, -1 if grad is None else grad._version))
        self._step = _Step(sys._getframe(1), before)
        self.paused += 1

    def _step_ends(self, optimizer: Any, args: tuple, kwargs: dict) -> None:
        """After it (or once it raised): an update event for each parameter it changed, a grad event for each .grad."""
        step = self._step
        if step is None:
            return
        self._step = None
        self.paused -= 1
        g, line = self.graph, running_line(2)
        with untraced():
            for p, nid, version, grad, grad_version in step.before:
                if p._version != version:
                    g.event(kind="update", node=nid, line=line, value=values.read(p, g.limits.max_value_elements))
                now = _GRAD_GET(p)
                if now is not grad or (now is not None and now._version != grad_version):
                    self._grad_event(nid, now, line)

    def _record(self, args: tuple, kwargs: dict, out: Any, targets: list, before: list, name: str) -> None:
        g = self.graph
        line: int | None = None
        if targets:
            for t, fn_before in zip(targets, before):
                if fn_before is None and t.grad_fn is None and self._untracked(t, name):
                    continue  # an optimizer's own state (exp_avg.lerp_(...)): nothing the trace shows
                line = line or running_line(3)
                self._mutated(t, fn_before, line, name)
            return
        outputs = (out,) if type(out) is torch.Tensor else _flat_tensors(out, [])
        for o in outputs:
            fn = o.grad_fn
            if fn is not None:
                known = g.node_of_fn(fn)
                if known is None:
                    line = line or running_line(3)
                    # split, chunk, unbind...: one node for the grad_fn, listing each output the call made
                    siblings = [x for x in outputs if x.grad_fn is fn] if len(outputs) > 1 else None
                    if siblings is not None and len(siblings) == 1 and not o.output_nr:
                        siblings = None
                    nid = g.walk(fn, line, output=o, outputs=siblings)
                    if nid is not None:
                        self._constant_inputs(fn, nid, args, kwargs, line)
                elif len(outputs) > 1 and g.nodes[known]["outputs"] is not None:
                    g.holder(o, line)  # an output the node does not list yet
            elif o.requires_grad and g.node_of_tensor(o) is None:
                line = line or running_line(3)  # a new leaf: torch.tensor(..., requires_grad=True)
                g.leaf(o, line)
        if name in _ALIASES and type(out) is torch.Tensor and args and isinstance(args[0], torch.Tensor):
            self._aliases[id(out)] = (out, args[0])  # `w.data -= ...` changes w
        if name == "retain_grad" and args and isinstance(args[0], torch.Tensor):
            nid = g.tensor(args[0], line or running_line(3))
            if nid is not None:
                g.nodes[nid]["retains_grad"] = True
                g.tensors[nid] = args[0]

    def _constant_inputs(self, fn: Any, nid: int, args: tuple, kwargs: dict, line: int | None) -> None:
        """Edges from inputs that do not require grad (autograd keeps no trace of them)."""
        nexts = fn.next_functions
        if all(child is not None for child, _ in nexts):
            return  # every slot has its autograd input: no constant feeds one
        inputs = _flat_tensors(args, [])
        if kwargs:
            _flat_tensors(list(kwargs.values()), inputs)
        consts = [t for t in inputs if not t.requires_grad]
        if not consts:
            return
        if len(inputs) == len(nexts):
            pairs = [(slot, t) for slot, t in enumerate(inputs) if not t.requires_grad]
        else:
            free = [slot for slot, (child, _) in enumerate(nexts) if child is None]
            if len(free) != len(consts):
                return
            pairs = list(zip(free, consts))
        for slot, t in pairs:
            if nexts[slot][0] is None:
                cid = self.graph.leaf(t, line)
                if cid is not None:
                    self.graph.edge(cid, nid, slot)

    def _mutated(self, t: torch.Tensor, fn_before: Any, line: int | None, name: str) -> None:
        g = self.graph
        if t.grad_fn is not None and t.grad_fn is not fn_before:
            base_of_view = t._base
            if base_of_view is not None and base_of_view.grad_fn is not None and g.node_of_fn(base_of_view.grad_fn) is None:
                # row.mul_(3) on row = b[1]: b is a new CopySlices node first, with b's value and name
                self._mutated(base_of_view, None, line, name)
            # b[0] = ... or x.add_(...) on a recorded tensor: a new node that inherits the name
            nid = g.walk(t.grad_fn, line, output=t, inplace=True)
            base = g.constant_of(t) if fn_before is None else None
            if nid is not None and base is not None and t.grad_fn.next_functions[0][0] is None:
                g.edge(base, nid, 0)  # the constant this tensor was before autograd took over
            name_of_t = g.names.get(id(t))
            if nid is not None and name_of_t is not None and not g.nodes[nid]["names"]:
                g.bind(name_of_t[0], t, line, name_of_t[1])
            return
        nid = g.node_of_tensor(t)
        if (
            name == "requires_grad_"
            and t.grad_fn is None
            and t.requires_grad
            and (nid is None or g.nodes[nid]["kind"] == "constant")
        ):
            nid = g.leaf(t, line)  # a.requires_grad_(): from now on a leaf
            if nid is not None:
                g.event(kind="update", node=nid, line=line, text="requires_grad")
            return
        if nid is not None and t.grad_fn is None:
            node = g.nodes[nid]
            if node["kind"] in ("leaf", "constant"):  # optimizer.step(), an update under torch.no_grad(), c.add_(1)
                g.event(kind="update", node=nid, line=line, value=values.read(t, g.limits.max_value_elements))
            return
        alias = self._aliases.get(id(t))
        if alias is not None and alias[0] is t and nid is None:  # w.data -= lr * w.grad: w's update
            self._mutated(alias[1], alias[1].grad_fn, line, name)
            return
        if name not in _KEEPS_VALUE:  # zero_grad(set_to_none=False) calls grad.requires_grad_(False) first
            self._grad_changed_by_identity(t, line)

    def _untracked(self, t: torch.Tensor, name: str) -> bool:
        """Whether writing into t (no grad_fn before or after) changes nothing the trace shows: t has no
        node, is no alias of a parameter's (`w.data`), no leaf's .grad, and does not become a leaf."""
        return (
            name != "requires_grad_"
            and self.graph.node_of_tensor(t) is None
            and id(t) not in self._aliases
            and self._grad_owner(t) is None
        )

    def _grad_changed_by_identity(self, t: torch.Tensor, line: int | None) -> None:
        """`a.grad.zero_()`: the mutated tensor is some leaf's .grad (an optimizer's own state is not)."""
        nid = self._grad_owner(t)
        if nid is not None:
            self._grad_event(nid, t, line)

    def _grad_owner(self, t: torch.Tensor) -> int | None:
        """The node of the leaf whose .grad t is, if any."""
        g = self.graph
        key = (g.grads_replaced, len(g.tensors))
        if self._grad_owners_key != key:  # .grad tensors were replaced since: look again
            self._grad_owners = {id(grad): nid for nid, owner in g.tensors.items() if (grad := _GRAD_GET(owner)) is not None}
            self._grad_owners_key = key
        nid = self._grad_owners.get(id(t))
        return nid if nid is not None and _GRAD_GET(g.tensors[nid]) is t else None

    def _grad_changed(self, owner: torch.Tensor, before: Any, line: int | None) -> None:
        nid = self.graph.node_of_tensor(owner)
        if nid is not None and nid in self.graph.tensors and not (before is None and _GRAD_GET(owner) is None):
            self._grad_event(nid, _GRAD_GET(owner), line)

    def _grad_event(self, nid: int, grad: torch.Tensor | None, line: int | None) -> None:
        v = None if grad is None else values.read(grad, self.graph.limits.max_value_elements)
        self.graph.event(kind="grad", node=nid, line=line, value=v)
