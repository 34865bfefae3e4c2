"""The tracer's two paths: its C++ part (app/tracer/native.cpp) and the pure-Python fallback."""

from __future__ import annotations

import pytest

from app.tracer import native
from tests.conftest import need


@pytest.fixture(params=["native", "python"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The tracer's C++ part, or its pure-Python fallback, for the length of one test."""
    if request.param == "native":
        if native.compiled is None:
            need("app/tracer/_native, built by `make native` (g++ and python3-dev)")
    else:
        monkeypatch.setattr(native, "compiled", None)
    return request.param
