"""A torch call as the numeric check's runs see it (replay.py): its tensors, whether it writes into
one, a backward call's roots and gradients, float64 in place of narrower floats, and where a
tensor's elements sit in its memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

WIDE = torch.float64
_functorch = torch._C._functorch
_NARROW = frozenset({torch.float32, torch.float16, torch.bfloat16})
_TOWIDE = {torch.Tensor.float, torch.Tensor.half, torch.Tensor.bfloat16}
_RETYPE = {torch.Tensor.to, torch.Tensor.type}
_DATA_SET = torch.Tensor.data.__set__  # type: ignore[attr-defined]  # a getset descriptor, typed as the value
# x += y and the like, and x[i] = y: calls that write into their first tensor (__invert__, __index__,
# __int__ and __iter__ start alike and write nothing)
_IN_PLACE_DUNDERS = frozenset(
    f"__i{op}__"
    for op in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor", "lshift", "rshift")
) | {"__setitem__"}
BACKWARD = {
    torch.Tensor.backward: "Tensor.backward",
    torch.autograd.backward: "torch.autograd.backward",
    torch.autograd.grad: "torch.autograd.grad",
}


@dataclass
class Backward:
    """A backward call's arguments, as every run reads them."""

    api: str
    roots: list[torch.Tensor]
    gradients: list[torch.Tensor | None]
    inputs: list[torch.Tensor] | None

    def batched(self) -> bool:
        """Whether a root or gradient is batched by torch.func.vmap (jacrev, hessian...): one objective per
        row, none to read."""
        return any(_vmapped(t) for t in (*self.roots, *self.gradients) if t is not None)

    def objective(self) -> float | None:
        """Σ root·gradient (the root itself when scalar without one): what the pass differentiates. None
        where torch will refuse the pass (a non-scalar root without a gradient), or under vmap (batched)."""
        if self.batched():
            return None
        total = 0.0
        for root, g in zip(self.roots, self.gradients):
            r = root.detach().to(WIDE)
            if g is None:
                if r.numel() != 1:
                    return None
                total += float(r.sum())
            else:
                total += float((r * g.detach().to(WIDE)).sum())
        return total


def _vmapped(t: torch.Tensor) -> bool:
    """A tensor batched by vmap at any of the torch.func levels it is wrapped in."""
    while _functorch.is_functorch_wrapped_tensor(t):
        if _functorch.is_batchedtensor(t):
            return True
        t = _functorch.get_unwrapped(t)
    return False


def unwrapped(t: torch.Tensor) -> torch.Tensor:
    """The tensor a torch.func transform wraps (grad(f)(w) differentiates a wrapper of w): w itself."""
    while _functorch.is_functorch_wrapped_tensor(t):
        t = _functorch.get_unwrapped(t)
    return t


def _listed(x: Any) -> list[Any]:
    if x is None:
        return []
    return [x] if isinstance(x, torch.Tensor) else list(x)


def backward_call(api: str, args: tuple, kwargs: dict[str, Any]) -> Backward | None:
    """The call's roots, gradients and inputs; None for a call torch refuses by its arguments."""
    try:
        if api == "Tensor.backward":
            roots = [args[0]]
            grads = _listed(args[1] if len(args) > 1 else kwargs.get("gradient"))
            inputs = args[4] if len(args) > 4 else kwargs.get("inputs")
        elif api == "torch.autograd.backward":
            roots = _listed(args[0] if args else kwargs["tensors"])
            grads = _listed(args[1] if len(args) > 1 else kwargs.get("grad_tensors"))
            inputs = kwargs.get("inputs")
        else:
            roots = _listed(args[0] if args else kwargs["outputs"])
            inputs = args[1] if len(args) > 1 else kwargs["inputs"]
            grads = _listed(args[2] if len(args) > 2 else kwargs.get("grad_outputs"))
    except (IndexError, KeyError, TypeError):
        return None
    if not roots or not all(isinstance(r, torch.Tensor) for r in roots):
        return None
    gradients: list[torch.Tensor | None] = [None] * len(roots)
    for i, g in enumerate(grads[: len(roots)]):
        gradients[i] = torch.as_tensor(g) if g is not None and not isinstance(g, torch.Tensor) else g
    listed = None if inputs is None else [t for t in _listed(inputs) if isinstance(t, torch.Tensor)]
    return Backward(api, roots, gradients, listed)


def widen(func: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[Any, tuple, dict[str, Any]]:
    """The same call in float64 where the program asked for a narrower float (dtype=, .float(), .to(torch.float32))."""
    if func in _TOWIDE:
        return torch.Tensor.double, args[:1], {}
    if kwargs.get("dtype") in _NARROW:
        kwargs = {**kwargs, "dtype": WIDE}
    if func in _RETYPE and any(a in _NARROW for a in args[1:]):
        args = tuple(WIDE if a in _NARROW else a for a in args)
    return func, args, kwargs


def flat(obj: Any, out: list[torch.Tensor]) -> list[torch.Tensor]:
    """The tensors in a call's arguments or result, in a fixed order."""
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            flat(x, out)
    elif isinstance(obj, dict):
        for x in obj.values():
            flat(x, out)
    return out


def inputs_of(args: tuple, kwargs: dict[str, Any]) -> list[torch.Tensor]:
    return flat(kwargs, flat(args, []))


def changes(func: Any, args: tuple, kwargs: dict[str, Any]) -> bool:
    """Whether the call writes into its first tensor argument (add_, w -= ..., x[0] = ..., w.data = ...)."""
    if func is _DATA_SET:
        return True
    return writes_in_place(getattr(func, "__name__", ""))


def writes_in_place(name: str) -> bool:
    """Whether a torch call of this name writes into its first tensor (add_, __iadd__, __setitem__)."""
    return name in _IN_PLACE_DUNDERS or (name.endswith("_") and not name.endswith("__"))


def changed_count(args: tuple, kwargs: dict[str, Any]) -> int:
    """How many of the call's first tensors it writes into: the first argument's (a list for _foreach_)."""
    if args:
        return len(flat(args[0], []))
    for key in ("self", "tensor", "input"):
        if key in kwargs:
            return len(flat(kwargs[key], []))
    return 0


def storage_key(t: torch.Tensor) -> int | None:
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError, TypeError):  # sparse, nested, meta...: no memory to nudge
        return None


@dataclass
class Geometry:
    """Where a tensor's elements sit in its memory: the view a nudge writes through."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int

    @classmethod
    def of(cls, t: torch.Tensor) -> Geometry:
        return cls(t.dtype, tuple(t.shape), tuple(t.stride()), t.storage_offset())  # type: ignore[arg-type]  # a real tensor's offset is an int

    def view(self, on: torch.Tensor) -> torch.Tensor | None:
        """This tensor's elements on `on`'s memory, without autograd or version counting (.data)."""
        if on.dtype != self.dtype:
            return None
        try:
            return on.data.as_strided(self.shape, self.stride, self.offset)
        except RuntimeError:
            return None


def index_of(flat_index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for size in reversed(shape):
        flat_index, i = divmod(flat_index, size)
        out.append(i)
    return tuple(reversed(out))
