"""Run one program under the tracer and return its trace; the program's failures are part of it."""

from __future__ import annotations

import gc
import inspect
import sys
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.optim import optimizer as optimizer_module

from ..config import THREADS, TraceSettings
from ..models import Status, Trace
from . import budget, doc, failures, strict_json
from .capture import Capture, untraced
from .display import MAX_DISPLAY_CHARS, tensor_repr
from .graph import Graph
from .hints import hint_for
from .hooks import Passes
from .module_tree import named_parameters
from .modules import Modules
from .names import BIND, DISPLAY, LOOP, instrument
from .output import Output
from .overrides import Overrides
from .program import PROGRAM, raised_line, remember_source, running_line

_PLAIN = frozenset({int, float, bool, str, type(None)})
MAX_WARNINGS = 100  # warnings recorded, each with its event in the story
_NAMED_ITEMS = 64  # a list, tuple or dict of tensors bound to a name names this many: `ws[0]`, `grads['w']`
_CONTAINERS: dict[type, Any] = {list: list, tuple: tuple, dict: dict}  # Any: their unbound methods are called


def _scope_of(name: str, code: Any, scope: str | None) -> str | None:
    """None (module level) for a name a function declares `global`: it is not one of the function's own."""
    if scope is None or not code.co_flags & inspect.CO_OPTIMIZED:  # module or class body
        return scope
    if name in code.co_varnames or name in code.co_cellvars or name in code.co_freevars:
        return scope
    return None


def _container(kind: type) -> Any:
    """list, tuple or dict when `kind` is one of them or a subclass (a namedtuple), else None."""
    return next((base for base in (list, tuple, dict) if issubclass(kind, base)), None)


class _Tracer:
    def __init__(self, source: str, limits: TraceSettings, overrides: Overrides | None = None) -> None:
        self.limits = limits
        self.overrides = overrides
        self.graph = Graph(limits)
        self.capture = Capture(self.graph)
        self.passes = Passes(self.graph)
        self.output = Output(self.graph, limits.max_stdout_bytes)
        self.modules = Modules(self.graph)
        self.doc = doc.trace(source=source, torch_version=torch.__version__)
        self.aside: dict[tuple[int, str], Any] = {}  # (id(holder), value key) -> stats not written (_set_stats_aside)
        self.named_modules: list[tuple[str, torch.nn.Module, str | None]] = []  # (name, module, scope) bound

    # -- hooks called by the rewritten program ----------------------------------------------

    def bind(self, line: int, *pairs: Any) -> None:
        """`__gw_bind__(line, "x", x, "y", y)`: the names a statement bound, each with its value."""
        g = self.graph
        code = sys._getframe(1).f_code
        scope = None if code.co_name == "<module>" else code.co_name  # the function the names were bound in
        with untraced():
            for i in range(0, len(pairs), 2):
                name, obj = pairs[i], pairs[i + 1]
                if self.overrides is not None:  # what if: its value before the program uses it
                    for t in self.overrides.apply(name, obj, line):
                        if (nid := g.node_of_tensor(t)) is not None:
                            g.deferred.encode(t, g.nodes[nid], "value", "stats")
                # By the object's real type, never its own methods: a __class__ property that claims
                # torch.Tensor, a list whose __len__ raises or whose __iter__ never ends, a key whose
                # __repr__ raises failed or hung the program at this line, where Python runs it.
                kind = type(obj)
                if kind in _PLAIN:  # a loop counter, a float: nothing to name
                    continue
                if issubclass(kind, torch.Tensor):
                    g.bind(name, obj, line, _scope_of(name, code, scope))
                elif issubclass(kind, torch.nn.Module):
                    self.modules.name(obj, name, scope is not None)
                    self.named_modules.append((name, obj, scope))
                    for path, p in named_parameters(obj, name):
                        g.name_parameter(p, path, scope, line)
                elif (base := _CONTAINERS.get(kind) or _container(kind)) is not None and base.__len__(obj) <= _NAMED_ITEMS:
                    items = dict.items(obj) if base is dict else enumerate(base.__iter__(obj))
                    for key, x in items:
                        if issubclass(type(x), torch.Tensor) and type(key) in (int, str):
                            g.name_element(x, f"{name}[{key!r}]", scope, line)

    def loop(self, line: int) -> None:
        """`__gw_loop__(line)`: an iteration of the top-level loop at `line` begins; line 0: the loop ended."""
        context = self.graph.context
        if not line:
            self.graph.set_context(iteration=None, loop=None)
        elif context["loop"] == line:
            self.graph.set_context(iteration=context["iteration"] + 1)
        else:
            self.graph.set_context(iteration=1, loop=line)

    def display(self, line: int, obj: Any) -> Any:
        """`__gw_display__(line, value)`: a bare expression's value, shown as a notebook would."""
        if obj is None:
            return obj
        if type(obj) is torch.Tensor:  # no subclass's __torch_function__ to honour: torch's repr, direct
            with untraced():
                text = tensor_repr(obj)
        else:
            self.capture.paused += 1
            try:
                text = repr(obj)
            except Exception as e:  # noqa: BLE001 - as a notebook shows it: the error, and the program goes on
                text = f"<repr() raised {type(e).__name__}>"
            finally:
                self.capture.paused -= 1
            if type(text) is not str:  # a str subclass's own methods would run below
                text = str.__str__(text)
        self.graph.event(kind="display", line=line, text=text[:MAX_DISPLAY_CHARS])
        return obj

    def warn(self, message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        """warnings.showwarning while the program runs."""
        where = lineno if filename == PROGRAM else running_line(2)
        text, category_name = doc.text(str(message)), doc.text(category.__name__)
        if len(self.doc["warnings"]) >= MAX_WARNINGS:  # a flood: the trace keeps the first ones and says so
            self.graph.truncate(f"the program's warnings were cut after {MAX_WARNINGS} (the rest are not recorded)")
            return
        hint_id, hint = hint_for(text)
        self.doc["warnings"].append(doc.warning(category=category_name, message=text, line=where, hint=hint, hint_id=hint_id))
        self.graph.event(kind="warning", line=where, text=text, category=category_name)

    # -- the run ------------------------------------------------------------------------------

    def run(self, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            code = instrument(self.doc["source"], PROGRAM)
            remember_source(self.doc["source"])
        except (SyntaxError, ValueError, RecursionError, MemoryError) as e:  # null bytes, absurd nesting
            if isinstance(e, SyntaxError):
                self._fail(e, e.lineno)
            else:
                self._fail(e, None, message=str(e) or "the program is nested too deeply to compile")
            return self._finish()
        if self.overrides is not None and not self.overrides.known(self.doc["source"]):
            return self._finish()  # a name the program never binds: the request is refused, nothing to run
        # A notebook's cell runs in the kernel's own namespace (gradwalk.notebook): its names stay there.
        env: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__} if namespace is None else namespace
        self._name_earlier(env)
        hooks: dict[str, Callable[..., Any]] = {BIND: self.bind, DISPLAY: self.display, LOOP: self.loop}
        env.update(hooks)
        self.globals = env  # the program's objects live as long as the tracer (see trace_json's keep)
        try:
            with self.output.redirected(), warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.showwarning = self.warn
                with self.passes.installed(), self.modules.installed(), self.capture:
                    exec(code, env)
        except BaseException as e:  # noqa: BLE001 - anything the program does ends in its trace (failures.outcome)
            outcome = failures.outcome(e)
            if outcome is not None:
                status, message = outcome
                self._fail(e, raised_line(e), status=status, message=message)
        finally:  # catch_warnings put showwarning back, redirected() sys.stdout and sys.stderr
            # The program's globals can outlive the run (a class it defined, kept by torch): they
            # must not keep the tracer, and through it the whole graph, alive with them.
            del env[BIND], env[DISPLAY], env[LOOP]
        return self._finish()

    def _name_earlier(self, namespace: dict[str, Any]) -> None:
        """Tensors an earlier notebook cell bound keep their names in this cell's graph (a leaf, when first used)."""
        with untraced():
            for name, obj in list(namespace.items()):
                if name.startswith("_"):  # IPython's _, _i1, _oh...
                    continue
                if isinstance(obj, torch.Tensor):
                    self.graph.name_parameter(obj, name, None, None)
                elif isinstance(obj, torch.nn.Module):
                    self.modules.name(obj, name, False)
                    for path, p in named_parameters(obj, name):
                        self.graph.name_parameter(p, path, None, None)

    def fit(self, document: dict[str, Any]) -> bytes:
        """The finished document as the trace's JSON, within its byte budget (budget.fit)."""
        unwritten = self.graph.deferred.unwritten_elements > 0
        return budget.fit(document, self.limits.max_trace_bytes, strict_json.dumps, self.aside, unwritten)

    def _name_added_parameters(self) -> None:
        """Parameters of modules added to a named model after its binding (`model.head = nn.Linear(...)`):
        named by their path in it now, as its own were when it was bound."""
        self.modules.name_added()
        with untraced():
            for name, module, scope in self.named_modules:
                for path, p in named_parameters(module, name):
                    self.graph.name_parameter(p, path, scope, None)

    def _set_stats_aside(self) -> None:
        """A tensor's stats are written only where its value is not (too big, or left out for size): the
        others wait in self.aside, for the byte budget, which puts them back where it leaves a value out."""
        g = self.graph
        holders: list[tuple[dict[str, Any], str, str]] = [(e, "value", "stats") for e in g.tensor_data]
        for node in g.nodes:
            holders += ((node, "value", "stats"), (node, "grad", "grad_stats"))
            holders += ((out, "value", "stats") for out in node["outputs"] or ())
        for holder, key, stats_key in holders:
            if holder[key] is not None and holder[stats_key] is not None:
                self.aside[(id(holder), key)] = holder[stats_key]
                holder[stats_key] = None

    def _fail(self, e: BaseException, line: int | None, status: str = "error", message: str | None = None) -> None:
        error = failures.error(e, line, self.doc["source"], message)
        self.doc["status"] = status
        self.doc["error"] = error
        self.graph.event(kind="error", line=line, text=f"{error['type']}: {error['message']}")

    def _finish(self) -> dict[str, Any]:
        g, document = self.graph, self.doc
        for nid, t in g.tensors.items():
            grad = t.grad if (t.is_leaf or t.retains_grad) else None
            if grad is not None:
                g.deferred.encode(grad, g.nodes[nid], "grad", "grad_stats")
        g.deferred.flush()
        self._set_stats_aside()
        self._name_added_parameters()
        g.bindings.label_all()
        document["modules"] = self.modules.finish(g.nodes)
        document.update(
            nodes=g.nodes,
            edges=g.edges,
            events=g.events,
            passes=self.passes.passes,
            tensors=g.tensor_data,
            stdout=self.output.stdout,
        )
        if g.truncated_by is not None:
            document.update(truncated=True, notice=g.truncated_by)
        if self.overrides is not None:
            document["overrides"] = self.overrides.entries(g.node_of_tensor)
        return document


def trace_json(
    source: str,
    settings: TraceSettings | None = None,
    keep: list[Any] | None = None,
    namespace: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> bytes:
    """Run `source` with tracing; its trace as strict UTF-8 JSON. Never raises for anything the program does.

    With `keep`, the run's objects (the program's tensors, the graph, the document) are appended to
    it instead of being freed before the answer: the sandbox's child sends the answer and exits,
    and freeing a big graph object by object is a sizeable part of its tracing time (scripts/bench_choices.py). With
    `namespace`, the program runs in that dict (a notebook kernel's) instead of a fresh one. With
    `overrides` ({"w1": 2.5}), those values are put in place of what the program binds (overrides.py).
    """
    # The recorded graph is many small long-lived objects: cyclic collections would walk all of
    # them again and again (scripts/bench_choices.py). A run is short; collect after.
    was_enabled = gc.isenabled()
    gc.disable()
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    settings_before = None if namespace is not None else _torch_settings()
    try:
        tracer = _Tracer(source, settings or TraceSettings(), None if overrides is None else Overrides(overrides))
        if keep is not None:
            keep.append(tracer)
        document = tracer.run(namespace)
        if keep is not None:
            keep.append(document)
        return tracer.fit(document)
    finally:
        torch.set_num_threads(threads)  # a notebook's kernel keeps its own
        if settings_before is not None:  # the next program in this process starts as in a fresh one
            _restore_torch_settings(settings_before)
        if was_enabled:
            gc.enable()


# torch's registries of global hooks (register_module_forward_hook, register_optimizer_step_pre_hook...)
_GLOBAL_HOOKS = [
    getattr(module, name)
    for module in (torch.nn.modules.module, optimizer_module)
    for name in dir(module)
    if name.startswith("_global_") and name.endswith("hooks") and isinstance(getattr(module, name), dict)
]


def _torch_settings() -> tuple[Any, ...]:
    """What a program can set for every later program of its process: `gradwalk trace a.py b.py` (and
    the sandbox zygote's warm-up) must not run b.py with a.py's print options, default dtype, grad
    mode or global module and optimizer hooks."""
    hooks = [dict(registry) for registry in _GLOBAL_HOOKS]
    return dict(vars(torch._tensor_str.PRINT_OPTS)), torch.get_default_dtype(), torch.is_grad_enabled(), hooks


def _restore_torch_settings(settings: tuple[Any, ...]) -> None:
    print_options, dtype, grad, hooks = settings
    vars(torch._tensor_str.PRINT_OPTS).update(print_options)
    torch.set_default_dtype(dtype)
    torch.set_grad_enabled(grad)
    for registry, before in zip(_GLOBAL_HOOKS, hooks, strict=True):
        registry.clear()
        registry.update(before)


def stuck_json(keep: list[Any], status: Status, message: str, line: int | None) -> bytes | None:
    """The trace so far of a run whose program is stuck in one native call past its deadline, for
    another thread to send (the sandbox child's watchdog): the unfinished tracer `keep` ends with,
    failed with `message` at `line`; None once it has finished (keep then ends with its document)."""
    tracer = keep[-1] if keep else None
    if not isinstance(tracer, _Tracer):
        return None
    with untraced():
        tracer._fail(failures.Interrupted(status, message), line, status=status, message=message)
        document = tracer._finish()
        return tracer.fit(document)


def trace_of(source: str, settings: TraceSettings | None = None) -> Trace:
    """Run `source` with tracing; its trace validated by the model, as the sandbox's parent does."""
    return Trace.model_validate_json(trace_json(source, settings))
