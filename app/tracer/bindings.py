"""Every name bound to a node, or to one output of a multi-output node, and the labels they give.

A name's bindings are counted per scope (module level, or the function it was bound in), so `h #3`
is the third tensor bound to `h` at module level, and `acc #2 (accumulate)` the second inside
`accumulate`. A node shows its first module-level name, else its first name; the page lists the rest.
"""

from __future__ import annotations

from typing import Any

from . import doc


class Bindings:
    def __init__(self, nodes: list[dict[str, Any]]) -> None:
        self.nodes = nodes
        self._counts: dict[tuple[str | None, str], int] = {}  # (scope, name) -> bindings so far

    def add(self, holder: dict[str, Any], name: str, scope: str | None, line: int | None) -> None:
        """`name` (bound in `scope`) names `holder`, a node or an output, unless it does already."""
        names = holder["names"]
        name = doc.name(name)
        for b in names:
            if b["name"] == name and b["scope"] == scope:
                return
        key = (scope, name)
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        names.append(doc.binding(name=name, binding=count, scope=scope, line=line))

    def label_all(self) -> None:
        """Name, binding and label of every node and output, once every binding is known."""
        for node in self.nodes:
            kind, value = node["kind"], node["value"]
            if kind == "op" and len(node["op"] or "") > doc.TEXT_CHARS:  # a custom Function's class name
                node["op"] = doc.text(node["op"])
            if self._show(node):
                continue
            if kind == "op":
                node["label"] = node["op"] or "op"
            elif kind == "constant" and isinstance(value, (int, float)) and not isinstance(value, bool):
                node["label"] = f"{value:g}"
            else:
                node["label"] = "tensor" if kind == "constant" else "leaf"
            for out in node["outputs"] or ():
                if not self._show(out):
                    out["label"] = f"{node['op']}[{out['index']}]"

    def _show(self, holder: dict[str, Any]) -> bool:
        """Name the holder by its first module-level binding, else its first; False if it has none."""
        names = holder["names"]
        if not names:
            return False
        shown = next((b for b in names if b["scope"] is None), names[0])
        name = shown["name"]
        many = self._counts.get((shown["scope"], name), 0) > 1
        holder["name"] = name
        if "binding" in holder:  # a node; an output's binding is in its names
            holder["binding"] = shown["binding"]
        holder["label"] = f"{name} #{shown['binding']}" if many else name
        return True
