"""Content-Security-Policy sources for inline code: what the Swagger page and the offline export allow by hash."""

from __future__ import annotations

import base64
import hashlib


def hash_source(text: str) -> str:
    """The CSP source that allows exactly this inline script or style: 'sha256-…'."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
