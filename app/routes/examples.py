"""The example gallery: every program in app/examples/, with its title and explanation from catalog.json."""

from __future__ import annotations

import functools
import json

from pydantic import BaseModel, Field

from ..paths import EXAMPLES_DIR


class Text(BaseModel):
    en: str
    zh: str


class Example(BaseModel):
    id: str = Field(description="the program's file name without .py")
    title: Text
    explanation: Text
    source: str = Field(description="the program, its comments in English")
    sources: Text = Field(description="the program with its comments in each language (the code is the same)")


def _translated(source: str, comments: dict[str, str]) -> str:
    """The source with each `# comment` of the table in the other language (whole comments only)."""
    lines = []
    for line in source.splitlines(keepends=True):
        code, sep, comment = line.partition("# ")
        text = comment.rstrip("\n")
        if sep and text in comments:
            line = f"{code}# {comments[text]}" + line[len(code) + 2 + len(text) :]
        lines.append(line)
    return "".join(lines)


@functools.cache
def examples() -> tuple[Example, ...]:
    """All example programs, in catalog order (the seed notebook's cells first), then any uncatalogued ones."""
    catalog: dict[str, dict] = json.loads((EXAMPLES_DIR / "catalog.json").read_text(encoding="utf-8"))
    files = {p.stem: p for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("_")}
    order = [name for name in catalog if name in files] + sorted(set(files) - set(catalog))
    out = []
    for name in order:
        entry = catalog.get(name, {})
        source = files[name].read_text(encoding="utf-8")
        zh = _translated(source, entry.get("comments", {}).get("zh", {}))
        out.append(
            Example(
                id=name,
                title=Text(**entry.get("title", {"en": name, "zh": name})),
                explanation=Text(**entry.get("explanation", {"en": "", "zh": ""})),
                source=source,
                sources=Text(en=source, zh=zh),
            )
        )
    return tuple(out)
