"""Runs one program and builds its trace. Imported by the sandbox child; never by the web process."""

from .failures import Interrupted
from .run import run, run_bytes, run_json

__all__ = ["Interrupted", "run", "run_bytes", "run_json"]
