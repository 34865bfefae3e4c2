"""What if: a value put in place of what a line produced, before the program uses it.

`{"w1": 2.5}` writes 2.5 into the tensor the program first binds to `w1` (a leaf or a constant:
a tensor without grad_fn), in place, at that binding (names.py reports every binding to the
tracer): the same tensor object, so everything after the line sees the new value and autograd
treats it as the program's own. A module's parameters are reached by their paths
(`model.0.weight`, at the binding of `model`). Applied the same way in the traced run and in a
check's runs.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .module_tree import named_parameters
from .names import bound_names

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _number(v: Any) -> Any:
    if isinstance(v, list):
        return [_number(x) for x in v]
    return _SPECIAL.get(v, v) if isinstance(v, str) else v


class Overrides:
    """The values a request asked for, and what became of each (models.Override)."""

    def __init__(self, asked: dict[str, Any]) -> None:
        self.report: dict[str, dict[str, Any]] = {
            name: {"name": name, "value": value, "applied": False, "node": None, "line": None, "problem": "not_reached"}
            for name, value in asked.items()
        }
        self.tensors: dict[str, torch.Tensor] = {}  # name -> the tensor that took its value
        self._parameters = {name for name in asked if "." in name}
        self._owners = {name.split(".", 1)[0] for name in self._parameters}

    def known(self, source: str) -> bool:
        """Mark every name the program never binds; True when there is none (the run can go on)."""
        try:
            bound = set(bound_names(source))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return True  # the run reports why it does not compile
        unknown = [name for name in self.report if name.split(".", 1)[0] not in bound]
        for name in unknown:
            self.report[name]["problem"] = "unknown_name"
        return not unknown

    def apply(self, name: str, obj: Any, line: int) -> list[torch.Tensor]:
        """At the binding of `name` to `obj`: write what was asked into it; the tensors written."""
        written = []
        if name in self.report and name not in self._parameters:
            if self._write(self.report[name], obj, line):
                written.append(obj)
        elif name in self._owners and isinstance(obj, torch.nn.Module):
            for path, p in named_parameters(obj, name):
                entry = self.report.get(path)
                if entry is not None and self._write(entry, p, line):
                    written.append(p)
        return written

    def _write(self, entry: dict[str, Any], obj: Any, line: int) -> bool:
        if entry["applied"]:  # the first binding only: a loop's rebinding keeps what the program made
            return False
        if not isinstance(obj, torch.Tensor):
            entry["problem"] = "not_tensor"
            return False
        if obj.grad_fn is not None:
            entry["problem"] = "not_leaf"
            return False
        try:
            value = torch.as_tensor(_number(entry["value"]), dtype=obj.dtype)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            entry["problem"] = "shape"
            return False
        if value.shape != obj.shape and value.dim() != 0:
            entry["problem"] = "shape"
            return False
        # .data: no autograd record and no version change, as if the line had made this value (and no
        # torch.no_grad() here: the tracer follows grad mode through the calls it sees)
        obj.data.copy_(value)
        entry.update(applied=True, line=line, problem=None)
        self.tensors[entry["name"]] = obj
        return True

    def rejected(self) -> list[dict[str, Any]]:
        """The entries a request should not have asked for (a 422): names never bound, values that do not fit."""
        return [e for e in self.report.values() if e["problem"] in ("unknown_name", "not_tensor", "not_leaf", "shape")]

    def entries(self, node_of: Any = None) -> list[dict[str, Any]]:
        """The report (models.Override), with each applied value's node as `node_of(tensor)` finds it."""
        if node_of is not None:
            for name, t in self.tensors.items():
                self.report[name]["node"] = node_of(t)
        return list(self.report.values())
