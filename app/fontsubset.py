"""A woff2 face cut down to the characters a document shows (fontTools), for the files that inline fonts.

A bundled face holds a whole unicode-range slice: a Latin slice is ~35 kB, and the Chinese
interface alone falls into 13 Noto Sans SC slices of ~32 kB each. Cut to the characters shown,
the same faces come to ~1-20 kB each. Deterministic (no timestamp), so the same text gives the same bytes.

Cutting is slow (~0.3 s of CPU a face: fontTools decodes the woff2 and compiles it again), so each cut is
kept in CACHE_DIR under a name made of the face's bytes, the characters and the fontTools version: a
later export, in any process, reads it back in microseconds. Losing the cache loses nothing but time.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import tempfile
from pathlib import Path

CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradwalk" / "fonts"


@functools.lru_cache(maxsize=256)
def subset(path: Path, chars: frozenset[int]) -> bytes:
    """The woff2 file at `path` with only the glyphs `chars` need (and what shaping them needs): from the cache, or cut now."""
    from importlib.metadata import version

    key = hashlib.sha256(path.read_bytes())
    key.update(f"|{version('fonttools')}|{','.join(map(str, sorted(chars)))}".encode())
    cached = CACHE_DIR / f"{key.hexdigest()}.woff2"
    try:
        return cached.read_bytes()
    except OSError:
        pass
    data = _cut(path, chars)
    tmp: Path | None = None
    try:  # written whole or not at all: another export may read it at the same time
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=CACHE_DIR, suffix=".tmp", delete=False) as f:
            tmp = Path(f.name)
            f.write(data)
        os.replace(tmp, cached)
    except OSError:  # a read-only home: cut again next time
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return data


def _cut(path: Path, chars: frozenset[int]) -> bytes:
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
