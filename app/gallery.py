"""The example gallery: every program in app/examples/, in catalog.json's order, with its title, explanation and
comments in each language from app/i18n (`example.<id>.title`, `example.<id>.explanation`, `comment.*`)."""

from __future__ import annotations

import functools
import json

from pydantic import BaseModel, Field

from .i18n import table
from .paths import EXAMPLES_DIR


class Text(BaseModel):
    en: str
    zh: str


class Example(BaseModel):
    id: str = Field(description="the program's file name without .py")
    title: Text
    explanation: Text
    source: str = Field(description="the program, its comments in English")
    sources: Text = Field(description="the program with its comments in each language (the code is the same)")


def _translated(source: str, lang: str) -> str:
    """The source with each whole `# comment` that the English table has as `comment.*` in `lang`."""
    english = {v: k for k, v in table("en").items() if k.startswith("comment.")}
    lines = []
    for line in source.splitlines(keepends=True):
        code, sep, comment = line.partition("# ")
        text = comment.rstrip("\n")
        if sep and text in english:
            line = f"{code}# {table(lang)[english[text]]}" + line[len(code) + 2 + len(text) :]
        lines.append(line)
    return "".join(lines)


def _text(name: str, field: str) -> Text:
    key, missing = f"example.{name}.{field}", name if field == "title" else ""
    return Text(en=table("en").get(key, missing), zh=table("zh").get(key, missing))


@functools.cache
def examples() -> tuple[Example, ...]:
    """All example programs, in catalog order (the seed notebook's cells first), then any uncatalogued ones."""
    catalog: list[str] = json.loads((EXAMPLES_DIR / "catalog.json").read_text(encoding="utf-8"))
    files = {p.stem: p for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("_")}
    order = [name for name in catalog if name in files] + sorted(set(files) - set(catalog))
    out = []
    for name in order:
        source = files[name].read_text(encoding="utf-8")
        out.append(
            Example(
                id=name,
                title=_text(name, "title"),
                explanation=_text(name, "explanation"),
                source=source,
                sources=Text(en=source, zh=_translated(source, "zh")),
            )
        )
    return tuple(out)
