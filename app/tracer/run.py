"""Run one program under the tracer and return its trace; the program's failures are part of it."""

from __future__ import annotations

import gc
import json
import math
import sys
import warnings
from typing import Any

import orjson
import torch

from ..config import TraceLimits
from ..models import Trace
from . import doc
from .capture import PROGRAM, Capture, untraced, user_line
from .graph import Graph
from .hints import hint_for
from .hooks import Passes
from .names import BIND, DISPLAY, instrument

_DISPLAY_CHARS = 2_000
_TENSOR_REPR = torch.Tensor.__repr__
_PLAIN = frozenset({int, float, bool, str, type(None)})
_NAMED_ITEMS = 64  # a list, tuple or dict of tensors bound to a name names this many: `ws[0]`, `grads['w']`


class Interrupted(BaseException):
    """Raised into the program (e.g. by the sandbox's timer) to stop it with a status other than "error"."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Output:
    """Stands in for sys.stdout/sys.stderr: keeps the text, and one print event per line of output."""

    def __init__(self, tracer: _Tracer, stream: str) -> None:
        self.tracer, self.stream = tracer, stream
        self.encoding = "utf-8"

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.tracer.output(text, self.stream)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class _Tracer:
    def __init__(self, source: str, limits: TraceLimits) -> None:
        self.limits = limits
        self.graph = Graph(limits)
        self.capture = Capture(self.graph)
        self.passes = Passes(self.capture)
        self.trace = doc.trace(source=source, torch_version=torch.__version__)
        self._stdout: list[str] = []
        self._stdout_bytes = 0

    # -- hooks called by the rewritten program ----------------------------------------------

    def bind(self, line: int, *pairs: Any) -> None:
        """`__gw_bind__(line, "x", x, "y", y)`: the names a statement bound, each with its value."""
        g = self.graph
        with untraced():
            for i in range(0, len(pairs), 2):
                name, obj = pairs[i], pairs[i + 1]
                if isinstance(obj, torch.Tensor):
                    g.bind(name, obj, line)
                elif type(obj) in _PLAIN:  # a loop counter, a float: nothing to name
                    continue
                elif isinstance(obj, torch.nn.Module):
                    for path, p in obj.named_parameters():
                        g.name_parameter(p, f"{name}.{path}")
                elif isinstance(obj, (list, tuple, dict)) and len(obj) <= _NAMED_ITEMS:
                    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
                    for key, x in items:
                        if isinstance(x, torch.Tensor) and isinstance(key, (int, str)):
                            g.name_element(x, f"{name}[{key!r}]")

    def display(self, line: int, obj: Any) -> Any:
        if obj is None:
            return obj
        if type(obj) is torch.Tensor:  # no subclass's __torch_function__ to honour: torch's repr, direct
            with untraced():
                text = _small_tensor_repr(obj) or _TENSOR_REPR(obj)
        else:
            self.capture.paused += 1
            try:
                text = repr(obj)
            finally:
                self.capture.paused -= 1
        self.graph.event(kind="display", line=line, text=text[:_DISPLAY_CHARS])
        return obj

    def output(self, text: str, stream: str) -> None:
        if stream == "stdout":
            room = self.limits.max_stdout_bytes - self._stdout_bytes
            if room <= 0:
                self.graph.truncate(f"output was cut at {self.limits.max_stdout_bytes} bytes (max_stdout_bytes)")
                return
            data = text.encode("utf-8", "replace")
            if len(data) > room:
                text = data[:room].decode("utf-8", "ignore")
                self.graph.truncate(f"output was cut at {self.limits.max_stdout_bytes} bytes (max_stdout_bytes)")
            self._stdout.append(text)
            self._stdout_bytes += len(text.encode("utf-8", "replace"))
        events = self.graph.events
        last = events[-1] if events else None
        category = None if stream == "stdout" else stream
        if last is not None and last["kind"] == "print" and last["category"] == category and not last["text"].endswith("\n"):
            last["text"] += text
        else:
            self.graph.event(kind="print", line=user_line(3), text=text, category=category)

    def warn(self, message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        where = lineno if filename == PROGRAM else user_line(2)
        text = str(message)
        hint_id, hint = hint_for(text)
        if len(self.trace["warnings"]) < 100:
            self.trace["warnings"].append(
                doc.warning(category=category.__name__, message=text, line=where, hint=hint, hint_id=hint_id)
            )
        self.graph.event(kind="warning", line=where, text=text, category=category.__name__)

    # -- the run ------------------------------------------------------------------------------

    def run(self, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            code = instrument(self.trace["source"], PROGRAM)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as e:  # null bytes, absurd nesting
            if isinstance(e, SyntaxError):
                self._fail(e, e.lineno)
            else:
                self._fail(e, None, message=str(e) or "the program is nested too deeply to compile")
            return self._finish()
        # A notebook's cell runs in the kernel's own namespace (gradwalk.notebook): its names stay there.
        env: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__} if namespace is None else namespace
        self._name_earlier(env)
        env.update({BIND: self.bind, DISPLAY: self.display})
        self.globals = env  # the program's objects live as long as the tracer (see run_bytes' keep)
        saved = sys.stdout, sys.stderr, warnings.showwarning
        sys.stdout, sys.stderr = _Output(self, "stdout"), _Output(self, "stderr")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.showwarning = self.warn
                with self.passes.installed(), self.capture:
                    exec(code, env)
        except SystemExit as e:  # sys.exit(): the program ended, like a script does
            if e.code not in (None, 0):
                self._fail(e, _program_line(e), message=f"the program exited with sys.exit({e.code!r})")
        except Interrupted as e:
            self._fail(e, _program_line(e), status=e.status, message=e.message)
        except MemoryError as e:
            self._fail(e, _program_line(e), status="memory")
        except BaseException as e:  # KeyboardInterrupt, GeneratorExit...: still the program's own doing
            # torch's allocator reports a refused allocation as a RuntimeError, not MemoryError
            out_of_memory = isinstance(e, RuntimeError) and "can't allocate memory" in str(e)
            self._fail(e, _program_line(e), status="memory" if out_of_memory else "error")
        finally:
            sys.stdout, sys.stderr, warnings.showwarning = saved
            # The program's globals can outlive the run (a class it defined, kept by torch): they
            # must not keep the tracer, and through it the whole graph, alive with them.
            del env[BIND], env[DISPLAY]
        return self._finish()

    def _name_earlier(self, namespace: dict[str, Any]) -> None:
        """Tensors an earlier notebook cell bound keep their names in this cell's graph (a leaf, when first used)."""
        with untraced():
            for name, obj in list(namespace.items()):
                if name.startswith("_"):  # IPython's _, _i1, _oh...
                    continue
                if isinstance(obj, torch.Tensor):
                    self.graph.name_parameter(obj, name)
                elif isinstance(obj, torch.nn.Module):
                    for path, p in obj.named_parameters():
                        self.graph.name_parameter(p, f"{name}.{path}")

    def _fail(self, e: BaseException, line: int | None, status: str = "error", message: str | None = None) -> None:
        text = message or (e.msg if isinstance(e, SyntaxError) else str(e))
        hint_id, hint = hint_for(text)
        tb = None
        if not isinstance(e, SyntaxError):
            tb = _traceback_text(_program_frames(e), self.trace["source"].splitlines()) or None
        self.trace["status"] = status
        self.trace["error"] = doc.error(type=type(e).__name__, message=text, line=line, hint=hint, hint_id=hint_id, traceback=tb)
        self.graph.event(kind="error", line=line, text=f"{type(e).__name__}: {text}")

    def _finish(self) -> dict[str, Any]:
        g, trace = self.graph, self.trace
        for nid, t in g.tensors.items():
            grad = t.grad if (t.is_leaf or t.retains_grad) else None
            if grad is not None:
                g.deferred.encode(grad, g.nodes[nid], "grad", "grad_stats")
        g.deferred.flush()
        g.label_all()
        trace.update(nodes=g.nodes, edges=g.edges, events=g.events, passes=self.passes.passes, stdout="".join(self._stdout))
        if g.truncated_by is not None:
            trace.update(truncated=True, notice=g.truncated_by)
        return trace


def _program_frames(e: BaseException) -> list[tuple[int | None, str]]:
    """(line, function name) of the program's own frames in the traceback, outermost first.

    What traceback.extract_tb gives for them, without its cost: it also finds every frame's
    column positions, torch's frames too, by scanning each code object's position table (35 µs
    for seed 2's error, and the failure path asked twice).
    """
    frames = []
    tb = e.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == PROGRAM:
            frames.append((tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return frames


_REPEATS_SHOWN = 3  # as Python's own tracebacks: the same frame thrice, then "[... repeated N more times]"
_FRAMES_SHOWN = 40  # at most, the first and last halves: a deep recursion's traceback stays readable


def _traceback_text(frames: list[tuple[int | None, str]], source_lines: list[str]) -> str:
    """The program's frames as Python prints them (`  line 3, in f` and the source line), repeats folded."""
    lines: list[str] = []  # one per frame shown, or a note
    i = 0
    while i < len(frames):
        j = i
        while j + 1 < len(frames) and frames[j + 1] == frames[i]:
            j += 1
        repeats = j - i + 1
        for lineno, name in frames[i : i + min(repeats, _REPEATS_SHOWN)]:
            text = source_lines[lineno - 1].strip() if lineno and lineno <= len(source_lines) else ""
            lines.append(f"  line {lineno}, in {name}\n    {text}\n")
        if repeats > _REPEATS_SHOWN:
            lines.append(f"  [Previous line repeated {repeats - _REPEATS_SHOWN} more times]\n")
        i = j + 1
    if len(lines) > _FRAMES_SHOWN:
        half = _FRAMES_SHOWN // 2
        lines[half:-half] = [f"  [... {len(lines) - 2 * half} more frames ...]\n"]
    return "".join(lines)


def _program_line(e: BaseException) -> int | None:
    frames = _program_frames(e)
    return frames[-1][0] if frames else None


_PRINT_OPTS = torch._tensor_str.PRINT_OPTS
_FLOATS = (torch.float32, torch.float64)
_REPR_DTYPES = frozenset((*_FLOATS, torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool))
_SMALL = 64  # elements at most: the small results tiny programs show, and what the tests compare


def _small_tensor_repr(t: torch.Tensor) -> str | None:
    """torch's repr of a small dense CPU tensor, character for character, in a few µs instead of
    ~100 µs (torch finds the number format through a dozen tensor ops); None wherever it could
    differ, for torch's own.

    It takes float32/64, int and bool dtypes, 1 to _SMALL elements (so nothing is summarized), and
    no dispatch mode, forward-AD level, functorch wrapper or negative bit in play. It follows
    torch/_tensor_str.py (_Formatter, _vector_str, _tensor_str_with_formatter, _str_intern,
    _add_suffixes) on the values as Python numbers, which are what torch formats too;
    tests/tracer/test_small_repr.py holds it to torch's text on many tensors and print options.
    """
    opts = _PRINT_OPTS
    dtype = t.dtype
    if (
        dtype not in _REPR_DTYPES
        or not 0 < t.numel() <= min(_SMALL, opts.threshold)
        or not opts.edgeitems  # torch adds a size= suffix then
        or t.layout != torch.strided
        or t.device.type != "cpu"
        or torch._C._get_default_device() != "cpu"
        or t.is_nested
        or t.is_neg()
        or t._is_zerotensor()
        or torch._C._len_torch_dispatch_stack()
        or torch.autograd.forward_ad._current_level >= 0
        or torch._C._functorch.is_functorch_wrapped_tensor(t)
        or torch._is_functional_tensor(t)
    ):
        return None
    try:
        return _format_small(t, dtype, opts)
    except Exception:  # print options torch would fail on too: let torch's repr say so
        return None


def _format_small(t: torch.Tensor, dtype: torch.dtype, opts: Any) -> str:
    grad_fn_name = None
    try:
        grad_fn = t.grad_fn
    except RuntimeError:  # a no-grad view changed in place
        grad_fn_name = "Invalid"
    if grad_fn_name is None and grad_fn is not None:
        grad_fn_name = type(grad_fn).__name__
        if grad_fn_name == "CppFunction":
            grad_fn_name = grad_fn.name().rsplit("::", 1)[-1]

    # _Formatter: one number format (and width) for every element
    values = t.tolist()
    dim = t.dim()
    flat = [values] if dim == 0 else values if dim == 1 else _flatten(values)
    precision = opts.precision
    floating = dtype in _FLOATS
    int_mode, sci_mode, width = True, False, 1
    if not floating:
        width = max(1, *(len(f"{v}") for v in flat))
    else:
        shown = [v for v in flat if math.isfinite(v) and v != 0]
        if shown:
            magnitudes = [abs(v) for v in shown]
            low, high = min(magnitudes), max(magnitudes)
            int_mode = all(v.is_integer() for v in shown)
            sci_mode = (high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4) if opts.sci_mode is None else opts.sci_mode
            if sci_mode:
                width = max(1, *(len(f"{v:.{precision}e}") for v in shown))
            elif int_mode:
                width = max(1, *(len(f"{v:.0f}") + 1 for v in shown))
            else:
                width = max(1, *(len(f"{v:.{precision}f}") for v in shown))

    def number(v: Any) -> str:
        if not floating:
            text = f"{v}"
        elif sci_mode:
            text = f"{v:{width}.{precision}e}"
        elif int_mode:
            text = f"{v:.0f}"
            if not (math.isinf(v) or math.isnan(v)):
                text += "."
        else:
            text = f"{v:.{precision}f}"
        return (width - len(text)) * " " + text

    def block(v: list, depth: int, indent: int) -> str:
        if depth == 1:  # _vector_str
            per_line = max(1, math.floor((opts.linewidth - indent) / (width + 2)))
            cells = [number(x) for x in v]
            lines = [", ".join(cells[i : i + per_line]) for i in range(0, len(cells), per_line)]
            return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
        rows = [block(x, depth - 1, indent + 1) for x in v]
        return "[" + ("," + "\n" * (depth - 1) + " " * (indent + 1)).join(rows) + "]"

    indent = len("tensor(")
    text = "tensor(" + (number(values) if dim == 0 else block(values, dim, indent))

    # _str_intern's suffixes, placed by _add_suffixes
    suffixes = []
    if dtype not in (torch.get_default_dtype(), torch.int64, torch.bool):
        suffixes.append(f"dtype={dtype}")
    if grad_fn_name is not None:
        suffixes.append(f"grad_fn=<{grad_fn_name}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    parts = [text]
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > opts.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def _flatten(values: list) -> list:
    if not isinstance(values[0], list):
        return values
    return [x for row in values for x in _flatten(row)]


def _utf8(v: Any) -> Any:
    if isinstance(v, str):
        return v.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(v, list):
        return [_utf8(x) for x in v]
    if isinstance(v, dict):
        return {k: _utf8(x) for k, x in v.items()}
    return v


def run_bytes(
    source: str, limits: TraceLimits | None = None, keep: list[Any] | None = None, namespace: dict[str, Any] | None = None
) -> bytes:
    """Run `source` with tracing and return the trace as strict UTF-8 JSON; never raises for anything the program does.

    With `keep`, the run's objects (the program's tensors, the graph, the document) are appended to
    it instead of being freed before the answer: the sandbox's child sends the answer and exits,
    and freeing a big graph object by object takes about a fifth of its tracing time. With
    `namespace`, the program runs in that dict (a notebook kernel's) instead of a fresh one.
    """
    # The recorded graph is many small long-lived objects: cyclic collections would walk all of
    # them again and again (a third of the time on a 5,000-node graph). A run is short; collect after.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        tracer = _Tracer(source, limits or TraceLimits())
        if keep is not None:
            keep.append(tracer)
        doc_ = tracer.run(namespace)
        if keep is not None:
            keep.append(doc_)
        try:
            # orjson: a fifth of json's time on big graphs (80 ms -> 13 ms on 5,000 nodes). Values are
            # already strict (NaN and Inf are strings, see values.py), so its NaN-as-null never applies.
            return orjson.dumps(doc_)
        except orjson.JSONEncodeError:  # print("\ud800"): a lone surrogate has no UTF-8; show it escaped
            return json.dumps(_utf8(doc_), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    finally:
        if was_enabled:
            gc.enable()


def run_json(source: str, limits: TraceLimits | None = None) -> str:
    """The trace as a JSON string (run_bytes, decoded)."""
    return run_bytes(source, limits).decode()


def run(source: str, limits: TraceLimits | None = None) -> Trace:
    """Run `source` with tracing; the trace validated by its model, as the sandbox's parent does."""
    return Trace.model_validate_json(run_json(source, limits))
