"""One plain sentence for each classic autograd mistake, keyed by a stable id for translations."""

from __future__ import annotations

HINTS: dict[str, tuple[str, str]] = {
    # hint_id: (a fragment of PyTorch's message, the hint)
    "int_requires_grad": (
        "only tensors of floating point",
        "Only floating-point tensors can require gradients: write the values as floats "
        "(torch.tensor([1.0, 2.0, 3.0], requires_grad=True)) or pass dtype=torch.float32.",
    ),
    "nonscalar_backward": (
        "grad can be implicitly created only for scalar outputs",
        "backward() without an argument needs a single number: reduce the output first (y.sum()) "
        "or pass a gradient of the output's shape, e.g. y.backward(torch.ones_like(y)).",
    ),
    "backward_twice": (
        "backward through the graph a second time",
        "The first backward() freed the values this graph saved; pass retain_graph=True to the "
        "earlier call to go backward through the same graph again.",
    ),
    "inplace_saved": (
        "modified by an inplace operation",
        "A tensor autograd saved for the backward pass was changed in place afterwards; use an "
        "out-of-place version (x = x * 2 instead of x *= 2) or clone() it first.",
    ),
    "leaf_inplace": (
        "a leaf variable that requires grad is being used in an in-place operation",
        "A leaf that requires grad cannot be changed in place while autograd records; update it inside `with torch.no_grad():`.",
    ),
    "no_grad_fn": (
        "does not require grad and does not have a grad_fn",
        "Nothing here requires grad, so there is no graph to go backward through: create the inputs "
        "with requires_grad=True (and not inside torch.no_grad()).",
    ),
    "nonleaf_grad": (
        "the .grad attribute of a tensor that is not a leaf tensor is being accessed",
        "Only leaf tensors (made by you with requires_grad=True) keep .grad; autograd frees the "
        "gradients of intermediate results. Call .retain_grad() on it before backward() to keep it.",
    ),
    "out_of_memory": (
        "can't allocate memory",
        "The program asked for more memory than a run may use: make the tensors smaller.",
    ),
    "grad_dtype": (
        "only real floating point outputs",
        "Gradients exist only for floating-point results: make the tensors float.",
    ),
}


def hint_for(message: str) -> tuple[str | None, str | None]:
    """(hint_id, hint) for a PyTorch error or warning message, or (None, None)."""
    lowered = message.lower()
    for hint_id, (fragment, hint) in HINTS.items():
        if fragment in lowered:
            return hint_id, hint
    return None, None
