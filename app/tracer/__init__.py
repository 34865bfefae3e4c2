"""Runs one program and builds its trace. Imported by the sandbox child; never by the web process."""

from .check import check_json, job_json
from .failures import Interrupted
from .run import stuck_json, trace_json, trace_of

__all__ = ["Interrupted", "check_json", "job_json", "stuck_json", "trace_json", "trace_of"]
