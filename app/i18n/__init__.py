"""The interface's text, one table per language (en.json, zh.json): the page, the embed, the offline
file, the error pages, the notebook's output, the tracer's hints and the example gallery all read it from here.

The page gets the tables as JSON (`page_data`), so static/js/i18n.js holds no text of its own. Keys are
the same in every table (a test checks); `{name}` placeholders are filled by the reader, as text.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Literal

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = ("en", "zh")
HERE = Path(__file__).resolve().parent
COOKIE = "lang"  # the language the student picked with the toggle; read by the server, written by i18n.js
COOKIE_MAX_AGE_S = 365 * 24 * 3600


@functools.cache
def table(lang: str) -> dict[str, str]:
    """Every string of one language, by key."""
    with open(HERE / f"{lang if lang in LANGS else 'en'}.json", encoding="utf-8") as f:
        return json.load(f)


def text(lang: str, key: str, **values: Any) -> str:
    """The string for `key` in `lang` (else English, else the key), with its {name} placeholders filled."""
    s = table(lang).get(key) or table("en").get(key) or key
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m[1]]) if m[1] in values else m[0], s, flags=re.ASCII)


def page_data(langs: tuple[str, ...] = LANGS) -> dict[str, Any]:
    """What static/js/i18n.js reads from a page: the tables of `langs`, and the cookie the language toggle writes."""
    return {"tables": {code: table(code) for code in langs}, "cookie": {"name": COOKIE, "max_age_s": COOKIE_MAX_AGE_S}}
