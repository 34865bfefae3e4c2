"""Tensor → JSON value and stats. NaN and ±Inf become strings so the trace stays strict JSON; a
float is the shortest decimal that reads back as the same number of the tensor's dtype."""

from __future__ import annotations

from typing import Any

import orjson
import torch

from . import decimals, doc, native
from .decimals import number
from .stats import PYTHON_STATS_MAX, python_stats, repeated, torch_stats

# native.cpp writes the values of node, output and step-gradient tensors of one or more dimensions as
# their JSON text, in one of these (the bytes orjson.dumps would write for the nested lists): no
# Python float per element, and nothing to format again when the trace is dumped. budget.py reads
# a value's element count from its holder's shape, and its elements with `elements`.
TEXT = orjson.Fragment


class Unwritten:
    """A value read but not written yet: a copy of its tensor (one or more dimensions, at most
    max_value_elements), as native.cpp leaves it. budget.fit writes it as TEXT where the byte budget
    keeps it, and only there: a trace past its budget never formats the values it leaves out."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


def _fix(v: Any) -> Any:
    if isinstance(v, list):
        return [_fix(x) for x in v]
    return number(v)


_functorch = torch._C._functorch
# Dtypes whose elements torch cannot read back as numbers (tolist() raises "load_scalar: invalid
# type", which lost the whole trace): bit containers and sub-byte packings.
_NOT_NUMBERS = frozenset(
    getattr(torch, name)
    for name in (
        "bits1x8",
        "bits2x4",
        "bits4x2",
        "bits8",
        "bits16",
        "float4_e2m1fn_x2",
        *(f"int{b}" for b in range(1, 8)),
        *(f"uint{b}" for b in range(1, 8)),
    )
    if hasattr(torch, name)
)


_SPARSE_DENSE_MAX = 1 << 22  # elements: a sparse tensor (an nn.Embedding(sparse=True)'s grad) is read as dense up to this


def shape_of(t: torch.Tensor) -> list[int]:
    """t's shape; a nested tensor's ragged dimensions (no one size) as -1."""
    if not t.is_nested:
        return list(t.shape)
    sizes = []
    for d in range(t.dim()):
        try:
            size = t.size(d)
        except RuntimeError:  # a ragged dimension of torch.nested's strided layout
            size = -1
        sizes.append(size if type(size) is int else -1)  # the jagged layout's ragged one is a SymInt
    return sizes


def readable(t: torch.Tensor) -> torch.Tensor | None:
    """t as a tensor whose memory can be read: detached, lazy conjugate/negative views resolved,
    functorch's grad wrappers unwrapped, a sparse one made dense, a quantized one as torch prints it
    (dequantized); None for what has no one value here (a vmap batch, meta, nested, a sparse tensor too
    big to make dense, elements that are not numbers)."""
    if t.device.type == "meta" or t.is_nested or _functorch.is_legacy_batchedtensor(t) or t.dtype in _NOT_NUMBERS:
        return None  # (the third: a gradient of autograd.grad(is_grads_batched=True), one per row of its batch)
    if t.layout != torch.strided:
        try:
            if t.numel() > _SPARSE_DENSE_MAX:
                return None
            t = t.detach().to_dense()
        except (RuntimeError, NotImplementedError, TypeError):  # a nested tensor: no one dense value
            return None
    if t.is_quantized:
        t = t.dequantize()
    while _functorch.is_functorch_wrapped_tensor(t):
        if _functorch.is_batchedtensor(t):
            return None
        t = _functorch.get_unwrapped(t)
    t = t.detach()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    if t.is_complex():
        t = torch.view_as_real(t)
    return t


def encode(t: torch.Tensor, max_elements: int) -> tuple[Any, dict[str, Any] | None]:
    """(value, stats): nested lists (a bare number for 0-d) or None when too big; stats for floats."""
    r = readable(t)
    if r is None:
        return None, None
    n = r.numel()
    floating = r.is_floating_point() and not t.is_complex()
    if n > max_elements:
        return None, (torch_stats(r) if floating else None)
    v = r.tolist()
    if not floating:
        return decimals.written(r, v), None
    flat: list[float] = [v] if r.dim() == 0 else (v if r.dim() == 1 else r.reshape(-1).tolist())  # type: ignore[list-item]  # tolist() of a 0-d tensor is a number, typed as a list
    stats = python_stats(flat, r.dtype) if n <= PYTHON_STATS_MAX else torch_stats(r)
    v = decimals.written(r, v)
    if stats["nan_count"] or stats["inf_count"]:
        v = _fix(v)
    return v, stats


def elements(v: Any) -> Any:
    """A value as nested lists (NaN and ±Inf as strings): a TEXT read back, an Unwritten read, anything else as it is."""
    if type(v) is Unwritten:
        return value(v.tensor, v.tensor.numel())
    return orjson.loads(orjson.dumps(v)) if type(v) is TEXT else v


def write(unwritten: list[Unwritten]) -> list[Any]:
    """Their values as the trace writes them (TEXT)."""
    compiled = native.compiled
    assert compiled is not None  # only native.cpp leaves values unwritten
    return compiled.texts([u.tensor for u in unwritten], TEXT)


def value(t: torch.Tensor, max_elements: int) -> Any:
    """Just the value (gradients on edges need no stats)."""
    r = readable(t)
    if r is None or r.numel() > max_elements:
        return None
    v = r.tolist()
    if r.is_floating_point():
        flat: list[Any] | None = [v] if r.dim() == 0 else (v if r.dim() == 1 else None)
        finite = all(x - x == 0 for x in flat) if flat is not None else bool(torch.isfinite(r).all())
        v = decimals.written(r, v)
        if not finite:
            v = _fix(v)
    return v


_DTYPE_NAMES: dict[torch.dtype, str] = {}


def dtype_name(dtype: torch.dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


class Deferred:
    """Small tensors read later, many at once: one call into app/tracer/native.cpp per flush
    instead of a handful of torch and Python calls per tensor (most of a big trace's value cost).

    A tensor is held, with its version counter, until the next flush. The tracer flushes before
    anything can change a held tensor: before every in-place torch call, around backward passes,
    and at the end. Should a tensor still have changed, its value is left out rather than shown wrong.
    """

    _MAX_HELD_ELEMENTS = 1_000_000  # flush early beyond this: holding values must not cost real memory
    # Values left Unwritten (copies) until the byte budget decides, up to this many elements over the
    # run; past it they are written as they are read, as all were before (tens of MB at most, held).
    MAX_UNWRITTEN_ELEMENTS = 4_000_000

    def __init__(self, max_elements: int) -> None:
        self.max_elements = max_elements
        self._held: list[tuple[torch.Tensor, int, Any, Any, Any]] = []  # (tensor, its version, into, key, stats_key)
        self._held_elements = 0
        self.read_elements = 0  # over the run (budget.estimate)
        self.unwritten_elements = 0  # of the values left Unwritten so far

    def writing(self) -> dict[str, Any]:
        """How native.cpp writes the values it reads: its fragment and unwritten arguments."""
        if self.unwritten_elements > self.MAX_UNWRITTEN_ELEMENTS:
            return {"fragment": TEXT}
        return {"fragment": TEXT, "unwritten": self._unwritten}

    def _unwritten(self, t: torch.Tensor) -> Unwritten:
        """What native.cpp makes of a value it leaves unwritten (a copy of its tensor), counted."""
        self.unwritten_elements += t.numel()
        return Unwritten(t)

    def value(self, t: torch.Tensor, into: Any, key: Any, big_stats_key: Any = None) -> None:
        """into[key] = t's value (as `value`), at the next flush; a too-big tensor's stats go to big_stats_key now."""
        self._hold(t, into, key, None, big_stats_key)

    def encode(self, t: torch.Tensor, into: Any, key: Any, stats_key: Any) -> None:
        """into[key], into[stats_key] = t's value and stats (as `encode`), at the next flush."""
        n = t.numel()
        if n <= self.max_elements and self._held_elements + n <= self._MAX_HELD_ELEMENTS:  # the usual case, inline
            try:
                self._held.append((t, t._version, into, key, stats_key))
            except RuntimeError:  # an inference-mode tensor has no version to check later: read it now
                self._read_now(t, into, key, stats_key)
                return
            self._held_elements += n
        else:
            self._hold(t, into, key, stats_key, stats_key)

    def _hold(self, t: torch.Tensor, into: Any, key: Any, stats_key: Any, big_stats_key: Any) -> None:
        n = t.numel()
        if n > self.max_elements:  # stats only, computed now: a big tensor is never held
            into[key] = None
            if big_stats_key is not None:
                into[big_stats_key] = big_stats(t, self.max_elements)
            return
        try:
            self._held.append((t, t._version, into, key, stats_key))
        except RuntimeError:  # an inference-mode tensor, as in encode
            self._read_now(t, into, key, stats_key)
            return
        self._held_elements += n
        if self._held_elements > self._MAX_HELD_ELEMENTS:
            self.flush()

    def _read_now(self, t: torch.Tensor, into: Any, key: Any, stats_key: Any) -> None:
        self.read_elements += t.numel()
        into[key], stats = _python_encode(t, stats_key is not None, self.max_elements)
        if stats_key is not None:
            into[stats_key] = stats

    def flush(self) -> None:
        self.read_elements += self._held_elements
        held, self._held, self._held_elements = self._held, [], 0
        if not held:
            return
        # native.flush writes what it reads and hands back the rest (complex, sparse...); a value of
        # one or more dimensions as its JSON text (orjson.Fragment): see TEXT
        compiled = native.compiled
        left = held if compiled is None else compiled.flush(held, self.max_elements, **self.writing())
        for t, version, into, key, stats_key in left:
            if t._version == version:
                v, stats = _python_encode(t, stats_key is not None, self.max_elements)
            else:  # changed behind the tracer's back: no value rather than a wrong one
                v, stats = None, None
            into[key] = v
            if stats_key is not None:
                into[stats_key] = stats


_NATIVE_DTYPES = frozenset(
    (
        torch.float32,
        torch.float64,
        torch.float16,
        torch.bfloat16,
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
        torch.bool,
    )
)
_BITS = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.uint8}


def _native_readable(t: torch.Tensor) -> bool:
    """What native.cpp's `readable` says of t (it hands back the rest)."""
    return (
        t.dtype in _NATIVE_DTYPES
        and t.layout == torch.strided
        and not t.is_nested
        and t.device.type == "cpu"
        and not (t.is_neg() or t.is_conj())
        and not _functorch.is_functorch_wrapped_tensor(t)
        and not _functorch.is_legacy_batchedtensor(t)  # no storage: native.cpp hands it back
    )


class Entries:
    """native.cpp's Entries in Python: Trace.tensors entries for one pass's gradients, each tensor
    written once, by object and by content (dtype, shape and bytes)."""

    def __init__(self, tensors: list[dict[str, Any]], max_elements: int) -> None:
        self.tensors, self.max_elements = tensors, max_elements
        self._by_id: dict[int, int] = {}
        self._by_content: dict[tuple, int] = {}
        self._keep: list[torch.Tensor] = []  # ids above stay valid while this lives
        self._stats_only: dict[int, torch.Tensor] = {}  # entry -> its tensor, whose value was not read

    def index(self, t: torch.Tensor | None, want_value: bool = True) -> int | None:
        """The entry's index; without want_value a small floating entry gets its stats only (the trace is
        past its byte budget), and a later want_value writes its value."""
        if t is None:
            return None
        i = self._by_id.get(id(t))
        if i is None:
            self._keep.append(t)
            i = self._by_id[id(t)] = self._add(t, want_value)
        elif want_value:
            self._write_value(i)
        return i

    def _write_value(self, i: int) -> None:
        t = self._stats_only.pop(i, None)
        if t is not None:
            self.tensors[i]["value"] = read(t, self.max_elements)

    def _add(self, t: torch.Tensor, want_value: bool) -> int:
        key = None
        if t.numel() <= self.max_elements and _native_readable(t):
            bits = t.detach().contiguous().view(_BITS[t.element_size()])
            key = (t.dtype, tuple(t.shape), tuple(bits.reshape(-1).tolist()))
            found = self._by_content.get(key)
            if found is not None:
                if want_value:
                    self._write_value(found)
                return found
        stats_only = key is not None and not want_value and t.is_floating_point()
        if stats_only:
            self.tensors.append(doc.tensor(shape=shape_of(t), dtype=dtype_name(t.dtype), stats=encode(t, -1)[1]))
        else:
            self.tensors.append(entry(t, self.max_elements))
        index = len(self.tensors) - 1
        if key is not None:
            self._by_content[key] = index
        if stats_only:
            self._stats_only[index] = t
        return index


def read(t: torch.Tensor, max_elements: int) -> Any:
    """t's value as the trace writes it, now: native.cpp's reading where it is built and reads t, else `value`."""
    compiled = native.compiled
    if compiled is not None and t.numel() <= max_elements and _native_readable(t):
        got = compiled.encode([t], [False], max_elements)[0]
        if type(got) is tuple:
            return got[0]
    return value(t, max_elements)


def entry(t: torch.Tensor, max_elements: int) -> dict[str, Any]:
    """t as a Trace.tensors entry: its value, or its stats where the value is too big to send."""
    v = read(t, max_elements)
    stats = big_stats(t, max_elements) if v is None and t.numel() > max_elements else None
    return doc.tensor(shape=shape_of(t), dtype=dtype_name(t.dtype), value=v, stats=stats)


def big_stats(t: torch.Tensor, max_elements: int) -> dict[str, Any] | None:
    """The stats of a tensor of more than max_elements (its value is not sent), read from its distinct
    elements: a view that repeats them (expand(), 10**12 elements of one float) costs what they do; None
    where reading it would cost more than the program's own tensors (overlapping views, a copy that
    does not fit in the run's memory), which failed the program's line with the tracer's MemoryError."""
    with torch._C.DisableTorchFunction():  # capture's untraced (capture imports this module)
        distinct = _distinct(t)
        if distinct is None:
            return None
        view, repeat = distinct
        try:
            compiled = native.compiled
            read = compiled.encode([view], [True], max_elements)[0] if compiled is not None and _native_readable(view) else None
            stats = read[1] if type(read) is tuple else encode(view, max_elements)[1]
        except (RuntimeError, MemoryError):
            return None
    return stats if repeat == 1 or stats is None else repeated(stats, repeat, t.dtype if t.is_floating_point() else torch.float64)


def _distinct(t: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    """(t without its broadcast dimensions, how many times t holds each of that view's elements), laid
    out without a copy where t is a permutation of a dense block; None where t's elements still
    overlap past its storage (as_strided), as (t, 1) where it is not a plain tensor."""
    if t.layout != torch.strided or t.is_nested or t.device.type == "meta" or _functorch.is_functorch_wrapped_tensor(t):
        return t, 1
    view, repeat = t.detach(), 1
    if view.is_contiguous():  # the usual case: no repeats, no overlap
        return view, 1
    for d, (size, stride) in enumerate(zip(view.shape, view.stride())):
        if stride == 0 and size > 1:
            view, repeat = view.narrow(d, 0, 1), repeat * size
    if view.numel() > view.untyped_storage().nbytes() // view.element_size():
        return None
    if not view.is_contiguous():  # a transpose: the same elements in another order, read in place
        dense = view.permute(sorted(range(view.dim()), key=view.stride, reverse=True))
        view = dense if dense.is_contiguous() else view
    return view, repeat


def _python_encode(t: torch.Tensor, with_stats: bool, max_elements: int) -> tuple[Any, dict[str, Any] | None]:
    """What native.encode gives for one tensor: (value, stats if wanted)."""
    return encode(t, max_elements) if with_stats else (value(t, max_elements), None)
