"""The tracer's optional C++ part (native.cpp, built as `_native` by `make`): the one place that imports it.

`compiled` is that module, or None in a checkout where it was never built. The Python beside each
use (values.py, hooks._PythonSteps, graph.Graph's Python path) is then the tracer, and everywhere
the reference the tests hold the C++ to (tests/tracer/test_native.py sets `compiled` to None).
"""

from __future__ import annotations

import importlib
from types import ModuleType

compiled: ModuleType | None
try:
    compiled = importlib.import_module(f"{__package__}._native")
except ImportError:  # pragma: no cover - a checkout that was never built
    compiled = None
