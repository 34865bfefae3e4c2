"""Runs one program and builds its trace. Imported by the sandbox child; never by the web process."""

from .failures import Interrupted
from .run import trace_json, trace_of

__all__ = ["Interrupted", "trace_json", "trace_of"]
