"""Which nn.Module's forward made each node, and the trace's list of modules.

Global forward hooks (torch.nn.modules.module.register_module_forward_pre_hook / _hook) keep a
stack of the module calls in progress; a node records the innermost one. A call's path is the
module's place in the call it ran in, as named_modules() of the outermost model gives it
(`model.blocks.3.attn`): `model = nn.Sequential(encoder, decoder)` runs encoder's layers as
model.0.0. A call outside any module that holds it takes the path the program's names give the
module: every binding of an nn.Module names its submodules through named_modules(), a
module-level binding before one inside a function; a module no name reaches, its class name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.nn.modules import module as nn_module

from . import doc
from .capture import _flat_tensors, untraced
from .graph import Graph
from .module_tree import child_name, named_modules
from .program import running_line


def _within(path: str, name: str) -> bool:
    """`path` is the name or one of the modules under it."""
    return path == name or path.startswith(name + ".")


class _Call:
    __slots__ = ("caller", "inputs", "module", "outputs")

    def __init__(self, module: torch.nn.Module, caller: int | None, inputs: list[int]) -> None:
        self.module, self.caller, self.inputs = module, caller, inputs
        self.outputs: list[int] = []


class Modules:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.calls: list[_Call] = []  # every module call, in the order they began
        self._stack: list[tuple[int | None, torch.nn.Module]] = []  # calls in progress: (index into calls or None, module)
        self._named: dict[int, tuple[bool, str]] = {}  # id(module) -> (bound inside a function, path)
        self._roots: list[tuple[str, torch.nn.Module]] = []  # modules bound to a name, in binding order
        self._in_function: list[bool] = []  # beside each root: bound inside a function
        self._seen: set[tuple[int, str]] = set()  # (id(module), name) bound already
        self._keep: list[Any] = []  # ids above stay valid for the whole run

    @contextmanager
    def installed(self) -> Iterator[None]:
        """The global forward hooks, for the duration of the program."""
        pre = nn_module.register_module_forward_pre_hook(self._enter)
        post = nn_module.register_module_forward_hook(self._leave, always_call=True)
        try:
            yield
        finally:
            pre.remove()
            post.remove()

    def name(self, module: torch.nn.Module, name: str, in_function: bool) -> None:
        """`model = Net()`: the module and every submodule get their paths from this name."""
        key = (id(module), name)
        if key in self._seen:
            return
        self._seen.add(key)
        self._roots.append((name, module))
        self._in_function.append(in_function)
        self._keep.append(module)
        self._name_tree(module, name, in_function)

    def name_added(self) -> None:
        """Modules added to a named one after its binding (`model.head = nn.Linear(4, 2)`, add_module):
        named by their place in it at the end of the run, as if bound then."""
        for (name, module), in_function in zip(self._roots, self._in_function, strict=True):
            self._name_tree(module, name, in_function)

    def _name_tree(self, module: torch.nn.Module, name: str, in_function: bool) -> None:
        for path, m in named_modules(module, name):
            known = self._named.get(id(m))
            # A module-level name first, then the first one; a name bound again to a module that holds
            # what it named before (`m = nn.Sequential(m)`) gives those modules their places in it.
            rebound = known is not None and known[0] == in_function and _within(known[1], name)
            if known is None or (known[0] and not in_function) or rebound:
                self._named[id(m)] = (in_function, path)
                self._keep.append(m)

    # -- the hooks ----------------------------------------------------------------------------

    def _enter(self, module: torch.nn.Module, args: tuple) -> None:
        with untraced():
            g = self.graph
            if len(self.calls) >= g.limits.max_nodes:  # a module called in a long loop: the first calls only
                g.truncate(f"the module calls were cut at {g.limits.max_nodes:,} (max_nodes)")
                self._stack.append((None, module))
                return
            record = torch.is_grad_enabled()  # an input no op recorded (token ids) gets a node while a graph is built
            line = running_line(3) if record else None
            inputs = []
            for t in _flat_tensors(args, []):
                nid = g.tensor(t, line) if record else g.node_of_tensor(t)
                if nid is not None and nid not in inputs:
                    inputs.append(nid)
            self.calls.append(_Call(module, self._innermost(), inputs))
            self._stack.append((len(self.calls) - 1, module))
            g.set_context(module=len(self.calls) - 1)

    def _leave(self, module: torch.nn.Module, args: tuple, result: Any) -> None:
        with untraced():
            stack = self._stack
            if not stack or (stack[-1][1] is not module and not any(m is module for _, m in stack)):
                return
            while stack[-1][1] is not module:  # a forward that raised inside
                stack.pop()
            index, _ = stack.pop()
            if index is not None:
                c = self.calls[index]
                for t in _flat_tensors(result, []):
                    nid = self.graph.node_of_tensor(t)
                    if nid is not None and nid not in c.outputs:
                        c.outputs.append(nid)
            self.graph.set_context(module=self._innermost())

    def _innermost(self) -> int | None:
        """The innermost module call in progress that the trace records."""
        return next((index for index, _ in reversed(self._stack) if index is not None), None)

    # -- the document -------------------------------------------------------------------------

    def finish(self, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Node.module / module_call from the call each node recorded; the trace's list of modules.
        Two modules can share a path (`model = Net()` in each trial of a loop): a path's calls are
        numbered in the order they began, whichever of its modules made them."""
        paths = self._call_paths()
        number = []  # index into calls -> its call number for its path
        numbers: dict[str, int] = {}
        by_key: dict[tuple[str, int], list[int]] = {}  # (path, id(module)) -> its calls, in order
        for index, path in enumerate(paths):
            number.append(numbers.get(path, 0))
            numbers[path] = number[-1] + 1
            by_key.setdefault((path, id(self.calls[index].module)), []).append(index)
        cut = [doc.name(path) for path in paths]  # as the trace holds them
        for node in nodes:
            index = node["module"]
            if index is not None:
                node["module"], node["module_call"] = cut[index], number[index]
        out: list[dict[str, Any]] = []
        listed: set[tuple[str, int]] = set()  # (path, id(module)) listed
        uncalled: set[str] = set()  # paths listed without a call: once each

        def add(m: torch.nn.Module, path: str) -> None:
            listed.add((path, id(m)))
            calls = by_key.get((path, id(m)), [])
            if not calls:
                if path in uncalled:
                    return
                uncalled.add(path)
            out.extend(self._entries(m, path, [(number[i], self.calls[i]) for i in calls]))

        for name, root in self._roots:
            tree = named_modules(root, name)
            if any((path, id(m)) in by_key for path, m in tree):  # a model never called here: no boxes to draw
                for path, m in tree:
                    if (path, id(m)) not in listed:
                        add(m, path)
        for c, path in zip(self.calls, paths):  # called where no name reaches it
            if (path, id(c.module)) not in listed:
                add(c.module, path)
        return out

    def _entries(self, m: torch.nn.Module, path: str, calls: list[tuple[int, _Call]]) -> list[dict[str, Any]]:
        parent = path.rpartition(".")[0] or None
        params = [nid for p in m.parameters(recurse=False) if (nid := self.graph.node_of_tensor(p)) is not None]
        fields = {
            "path": doc.name(path),
            "class_name": doc.text(type(m).__name__),
            "parent": parent and doc.name(parent),
            "params": params,
        }
        if not calls:
            return [doc.module(**fields)]
        return [doc.module(**fields, call=n, inputs=c.inputs, outputs=c.outputs) for n, c in calls]

    def _call_paths(self) -> list[str]:
        """Each call's path: its place in the call it ran in, else its module's name, else its class."""
        named = {key: path for key, (_, path) in self._named.items()}
        taken = set(named.values())
        places: dict[tuple[int, int], str | None] = {}  # (id(caller's module), id(module)) -> child name
        out: list[str] = []
        for c in self.calls:  # callers begin before their callees: a caller's path is known first
            path = None
            if c.caller is not None:
                caller = self.calls[c.caller].module
                key = (id(caller), id(c.module))
                if key not in places:
                    places[key] = child_name(caller, c.module)
                child = places[key]
                if child is not None:
                    path = f"{out[c.caller]}.{child}"
            if path is None:
                path = named.get(id(c.module))
            if path is None:  # no name reaches it: its class name, told apart from the others
                base, n = type(c.module).__name__, 1
                path = base
                while path in taken:
                    n += 1
                    path = f"{base}#{n}"
                named[id(c.module)] = path
                taken.add(path)
            out.append(path)
        return out
