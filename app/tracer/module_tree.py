"""A module's submodules and parameters, as named_modules() and named_parameters() give them, walked
without recursion: a program that nests a module a thousand deep (`m = nn.Sequential(m)` in a loop)
gets torch's own error where torch gives it, not a RecursionError from the tracer at the binding.
Modules and parameters are told apart by identity (a module's __eq__ or __hash__ is the program's)."""

from __future__ import annotations

import torch


def named_modules(module: torch.nn.Module, prefix: str = "") -> list[tuple[str, torch.nn.Module]]:
    """module.named_modules(prefix=prefix), in its order."""
    out: list[tuple[str, torch.nn.Module]] = []
    seen: set[int] = set()
    todo = [(prefix, module)]
    while todo:
        path, m = todo.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        out.append((path, m))
        children = _own(m, "_modules")
        todo += reversed([(f"{path}.{n}" if path else n, c) for n, c in children.items() if c is not None])
    return out


def named_parameters(module: torch.nn.Module, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    """module.named_parameters(prefix=prefix), in its order: each parameter once, by its first path."""
    out: list[tuple[str, torch.Tensor]] = []
    seen: set[int] = set()
    for path, m in named_modules(module, prefix):
        for n, p in _own(m, "_parameters").items():
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                out.append((f"{path}.{n}" if path else n, p))
    return out


def child_name(parent: torch.nn.Module, child: torch.nn.Module) -> str | None:
    """The name under which `parent` holds `child` directly (its first, as named_children() gives it), or None."""
    return next((n for n, c in _own(parent, "_modules").items() if c is child), None)


def _own(m: torch.nn.Module, field: str) -> dict:
    held = vars(m).get(field)
    return held if isinstance(held, dict) else {}
