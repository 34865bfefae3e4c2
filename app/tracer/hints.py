"""One plain sentence for each classic autograd mistake, keyed by a stable id (its text is `hint.<id>` in app/i18n)."""

from __future__ import annotations

from ..i18n import table

ENGLISH = table("en")  # read at import: the sandbox's children open no files for it

# hint_id: a fragment of PyTorch's message that identifies the mistake
HINTS: dict[str, str] = {
    "int_requires_grad": "only tensors of floating point",
    "nonscalar_backward": "grad can be implicitly created only for scalar outputs",
    "backward_twice": "backward through the graph a second time",
    "inplace_saved": "modified by an inplace operation",
    "leaf_inplace": "a leaf variable that requires grad is being used in an in-place operation",
    "no_grad_fn": "does not require grad and does not have a grad_fn",
    "nonleaf_grad": "the .grad attribute of a tensor that is not a leaf tensor is being accessed",
    "out_of_memory": "can't allocate memory",
    "grad_dtype": "only real floating point outputs",
}


# A program that calls torch.compile and ran out of time: torch compiles first (35 s on a 2-core machine).
COMPILE_TIME = "compile_time"


def hint_for(message: str, source: str = "") -> tuple[str | None, str | None]:
    """(hint_id, hint in English) for a PyTorch error or warning message (and the program's source, for
    a time limit), or (None, None)."""
    lowered = message.lower()
    for hint_id, fragment in HINTS.items():
        if fragment in lowered:
            return hint_id, ENGLISH[f"hint.{hint_id}"]
    if message.startswith("Time limit") and "torch.compile" in source:
        return COMPILE_TIME, ENGLISH[f"hint.{COMPILE_TIME}"]
    return None, None
