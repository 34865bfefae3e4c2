"""Runs one program and builds its trace. Imported by the sandbox child; never by the web process."""

from .run import Interrupted, run, run_bytes, run_json

__all__ = ["Interrupted", "run", "run_bytes", "run_json"]
