"""The child's own pieces, in-process: its deadlines."""

from __future__ import annotations

import signal
import sys

import pytest

from app.config import SandboxSettings
from app.sandbox.child import _on_alarm
from app.tracer import Interrupted


def test_the_first_deadline_disarms_the_other() -> None:
    """The CPU and wall-clock limits can fire milliseconds apart; the second must not cut the first one's trace."""
    handler = _on_alarm(SandboxSettings(timeout_s=2.0, cpu_s=2, memory_mb=1024, max_processes=8, scratch_mb=16))
    saved = signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGXCPU)
    signal.signal(signal.SIGALRM, handler)
    signal.signal(signal.SIGXCPU, handler)
    signal.setitimer(signal.ITIMER_REAL, 60.0)
    try:
        with pytest.raises(Interrupted, match="CPU time"):
            handler(signal.SIGXCPU, sys._getframe())
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        assert signal.getsignal(signal.SIGALRM) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGXCPU) == signal.SIG_IGN
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, saved[0])
        signal.signal(signal.SIGXCPU, saved[1])
