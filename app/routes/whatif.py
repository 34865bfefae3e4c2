"""What if: the values a request puts in place of what a program's lines produced (`{"w1": 2.5}`), as
/api/trace and /api/check take them, and the 422 for any the run could not put in place."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, Field

from ..models import Job, Value
from ..sandbox import TraceDocument

MAX_OVERRIDES = 32  # names in one request
MAX_OVERRIDE_ELEMENTS = 10_000  # numbers in one value (the page's table edits up to about 100)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")  # w1, model.0.weight
# The run's answers that are the request's fault, and what the 422 says of each.
REFUSED = {
    "unknown_name": "the program does not bind {name}",
    "not_tensor": "{name} is not bound to a tensor",
    "not_leaf": "{name} is computed from other tensors: only a leaf or a constant can take a value",
    "shape": "the value does not fit {name}'s shape or dtype",
}


INT64 = range(-(2**63), 2**63)  # torch's widest integers; the trace's JSON (orjson) writes no wider


def _leaves(value: Any) -> list[Any]:
    return [leaf for v in value for leaf in _leaves(v)] if isinstance(value, list) else [value]


def _checked(overrides: dict[str, Any]) -> dict[str, Any]:
    if len(overrides) > MAX_OVERRIDES:
        raise ValueError(f"at most {MAX_OVERRIDES} names")
    for name, value in overrides.items():
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name[:80]!r} is not a name (w1) or a parameter path (model.0.weight)")
        leaves = [] if value is None else _leaves(value)
        if value is None or len(leaves) > MAX_OVERRIDE_ELEMENTS:
            raise ValueError(f"the value of {name} must be a number or nested lists of at most {MAX_OVERRIDE_ELEMENTS:,} numbers")
        # 10**30 ended the run with no trace; NaN and infinity went on as null ("does not fit w's shape").
        if any(isinstance(n, int) and n not in INT64 for n in leaves):
            raise ValueError(f"the value of {name} has an integer wider than 64-bit")
        if any(isinstance(n, float) and not math.isfinite(n) for n in leaves):
            raise ValueError(f"the value of {name} must hold finite numbers (no NaN or infinity)")
    return overrides


Overrides = Annotated[
    dict[str, Value],
    AfterValidator(_checked),
    Field(
        default_factory=dict,
        description="values put in place of what the program first binds to these names, before it uses them "
        '({"w1": 2.5}; a parameter by its path, "model.0.weight"): a number, or nested lists of the tensor\'s shape',
    ),
]


def job(overrides: dict[str, Any], check: bool = False, check_max_elements: int = 2_000) -> Job | None:
    """The sandbox job for a request; None for a plain trace."""
    if not overrides and not check:
        return None
    return Job(overrides=overrides, check=check, check_max_elements=check_max_elements)


def refuse_rejected(document: TraceDocument, asked: dict[str, Any]) -> None:
    """A 422 in the one error shape, a detail per name, for every value the run refused."""
    if not asked:
        return
    bad = [(o.name, o.problem) for o in document.trace().overrides if o.problem in REFUSED]
    if bad:
        raise RequestValidationError(
            [
                {"loc": ("body", "overrides", name), "msg": REFUSED[problem].format(name=name), "type": problem}
                for name, problem in bad
                if problem is not None
            ]
        )
