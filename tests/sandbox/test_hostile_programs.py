"""Hostile programs the first attack suite (test_attacks.py) did not try: leaving the runs' scheduling
group, and the tracer's own reading of what a program builds. Each goes through the path the API uses
(SandboxPool.run); PyTorch is the oracle for every value."""

from __future__ import annotations

from .conftest import SyncPool, assert_normal


def test_a_program_cannot_leave_the_runs_session(pool: SyncPool) -> None:
    """setsid() made the run a scheduling autogroup of its own, weighed like the web server's even at
    SCHED_IDLE; it is refused, and the run stays in the zygote's session and autogroup."""
    src = """\
import os
before = open("/proc/self/autogroup").read()
try:
    os.setsid()
    print("left")
except PermissionError:
    print("refused")
print(os.getsid(0) == 0, open("/proc/self/autogroup").read() == before)
"""
    t = pool.run(src)
    assert t.status == "ok", t.error
    assert t.stdout == "refused\nTrue True\n"
    assert_normal(pool)
