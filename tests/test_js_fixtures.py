"""The JS tests play real traces: the committed fixtures must be what the tracer makes today."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.js.fixtures.make_fixtures import HERE as FIXTURES
from tests.js.fixtures.make_fixtures import fixture_text, programs

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # printed grad_fn objects differ between runs


@pytest.mark.parametrize("path", programs(), ids=lambda p: p.stem)
def test_fixture_is_current(path: Path) -> None:
    committed = (FIXTURES / f"{path.stem}.json").read_text()
    fresh = fixture_text(path)
    assert _ADDRESS.sub("", fresh) == _ADDRESS.sub("", committed), "run tests/js/fixtures/make_fixtures.py"
