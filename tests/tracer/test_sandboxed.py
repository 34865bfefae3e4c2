"""Every model program through the real sandbox with the default limits (issue 11): `ok`, within the
byte budget and the sandbox's result limit, and the same document as the tracer gives in process
(tests/tracer/test_modules.py and test_tracer.py hold that one to torch)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.tracer import trace_json
from tests.sandbox.conftest import IN_CI, SyncPool

MODELS = Path(__file__).resolve().parents[2] / "tests" / "programs" / "models"
PROGRAMS = sorted(MODELS.glob("*.py"))


@pytest.fixture(scope="module")
def default_pool() -> Iterator[SyncPool]:
    """The sandbox as `gradwalk serve` starts it: the default limits (strict in CI)."""
    pool = SyncPool(Settings(_env_file=None, sandbox_mode="strict" if IN_CI else "dev"))  # type: ignore[call-arg]
    try:
        yield pool
    finally:
        pool.close()


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.stem)
def test_a_model_program_comes_back_whole_through_the_sandbox(default_pool: SyncPool, program: Path) -> None:
    source = program.read_text()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    document = default_pool.call(default_pool.pool.trace_document(source, "model-programs"))
    trace = document.trace()
    assert trace.status == "ok", trace.error
    assert len(document.json) <= settings.trace.max_trace_bytes <= settings.sandbox.max_result_bytes
    assert len(trace.nodes) > 40 and trace.modules and trace.passes
    assert json.loads(document.json) == json.loads(trace_json(source))  # one program, one trace, wherever it runs
