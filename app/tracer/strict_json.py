"""The trace's bytes: strict UTF-8 JSON, whatever strings the program made."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(doc: dict[str, Any]) -> bytes:
    """`doc` as strict UTF-8 JSON. Values are strict already (NaN and Inf are strings, see values.py),
    so orjson's NaN-as-null never applies; orjson for its speed on big graphs (scripts/bench_trace.py)."""
    try:
        return orjson.dumps(doc)
    except orjson.JSONEncodeError:  # print("\ud800"): a lone surrogate has no UTF-8; show it escaped
        # orjson again, not json.dumps: values written as JSON text (values.TEXT) are orjson Fragments
        return orjson.dumps(_utf8(doc))


def _utf8(v: Any) -> Any:
    if isinstance(v, str):
        return v.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(v, list):
        return [_utf8(x) for x in v]
    if isinstance(v, dict):
        return {k: _utf8(x) for k, x in v.items()}
    return v
