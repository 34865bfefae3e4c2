"""The example gallery: every program in app/examples/, with its title and explanation from catalog.json."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from pydantic import BaseModel, Field

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


class Text(BaseModel):
    en: str
    zh: str


class Example(BaseModel):
    id: str = Field(description="the program's file name without .py")
    title: Text
    explanation: Text
    source: str


@functools.cache
def examples() -> tuple[Example, ...]:
    """All example programs, in catalog order (the seed notebook's cells first), then any uncatalogued ones."""
    catalog: dict[str, dict] = json.loads((EXAMPLES_DIR / "catalog.json").read_text(encoding="utf-8"))
    files = {p.stem: p for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("_")}
    order = [name for name in catalog if name in files] + sorted(set(files) - set(catalog))
    out = []
    for name in order:
        entry = catalog.get(name, {})
        out.append(
            Example(
                id=name,
                title=Text(**entry.get("title", {"en": name, "zh": name})),
                explanation=Text(**entry.get("explanation", {"en": "", "zh": ""})),
                source=files[name].read_text(encoding="utf-8"),
            )
        )
    return tuple(out)
