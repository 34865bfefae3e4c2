"""A woff2 face cut down to the characters a document shows (fontTools), for the files that inline fonts.

A bundled face holds a whole unicode-range slice: a Latin slice is ~35 kB, and the Chinese
interface alone falls into 13 Noto Sans SC slices of ~32 kB each. Cut to the characters shown,
the same faces come to ~1-20 kB each. Deterministic (no timestamp), so the same text gives the same bytes.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path


@functools.lru_cache(maxsize=256)
def subset(path: Path, chars: frozenset[int]) -> bytes:
    """The woff2 file at `path` with only the glyphs `chars` need (and what shaping them needs)."""
    from fontTools import subset as ft_subset
    from fontTools.ttLib import TTFont

    font = TTFont(str(path), recalcTimestamp=False)
    options = ft_subset.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]  # kerning, ligatures, the variable faces' features: drawn as the page draws them
    subsetter = ft_subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(chars))
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()
