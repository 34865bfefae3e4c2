"""The warm export (app/export_service.py): `gradwalk export-service` with the real sandbox and real Chromium,
and `gradwalk export` handing its work to it over the socket; the figures are the cold export's, byte for byte."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_export import tools  # noqa: F401 - the same skip-or-fail when Chromium or the bundle is missing

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "app" / "examples"

pytestmark = pytest.mark.slow


def gradwalk(runtime: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running export service; its XDG_RUNTIME_DIR."""
    runtime = tmp_path_factory.mktemp("run")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "export-service", "--idle", "600"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert "listening on" in proc.stdout.readline()
    yield runtime
    proc.terminate()
    assert proc.wait(timeout=60) == 0
    proc.stdout.close()
    assert not (runtime / "gradwalk" / "export.sock").exists()  # it takes its socket away


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_a_warm_export_is_the_cold_export(service: Path, tmp_path: Path, fmt: str) -> None:
    nowhere = tmp_path / "run"
    nowhere.mkdir()
    cold, warm = tmp_path / f"cold.{fmt}", tmp_path / "sub" / f"warm.{fmt}"
    warm.parent.mkdir()
    result = gradwalk(nowhere, "export", str(EXAMPLES / "seed_5_chain.py"), "--format", fmt, "-o", str(cold))
    assert result.returncode == 0 and "by the export service" not in result.stderr, result.stderr
    for _ in range(2):  # on the page loaded ahead, then on the next one
        # A relative -o, from another folder: the service writes where the client meant.
        env_cwd = warm.parent
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "export", str(EXAMPLES / "seed_5_chain.py"), "--format", fmt, "-o", warm.name],
            capture_output=True,
            text=True,
            cwd=env_cwd,
            env={**os.environ, "XDG_RUNTIME_DIR": str(service), "PYTHONPATH": str(ROOT)},
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        assert "1 figure from 1 program" in result.stderr and "by the export service" in result.stderr
        assert warm.read_bytes() == cold.read_bytes()
        warm.unlink()


def test_the_services_problems_reach_the_client(service: Path, tmp_path: Path) -> None:
    # A step out of range (exit 1, the other figure written), and a program that failed: drawn as far as it got.
    result = gradwalk(service, "export", str(EXAMPLES / "seed_3_scalar_backward.py"), "--step", "1,999", "-o", f"{tmp_path}/")
    assert result.returncode == 1
    assert "step 999 is out of range" in result.stderr and "by the export service" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["seed_3_scalar_backward-1.svg"]
    failing = tmp_path / "fails.py"
    failing.write_text("import torch\nx = torch.ones(2, requires_grad=True)\ny = (x * 2).sum()\nraise ValueError('no')\n")
    result = gradwalk(service, "export", str(failing), "-o", str(tmp_path / "fails.svg"))
    assert result.returncode == 0 and "the program did not finish (error)" in result.stderr, result.stderr


def test_the_socket_is_its_users_alone_and_a_bad_request_is_answered(service: Path) -> None:
    folder = service / "gradwalk"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(folder / "export.sock"))
        conn.sendall(b"not json\n")
        answer = conn.makefile("rb").read().splitlines()
    assert [json.loads(line) for line in answer] == [{"line": "gradwalk export-service: not an export request"}, {"status": 2}]


def test_an_idle_service_stops_and_a_missing_one_means_cold(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "export-service", "--idle", "1"], cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0 and time.monotonic() - t0 < 300
    assert not (tmp_path / "gradwalk" / "export.sock").exists()
    result = gradwalk(tmp_path, "export", str(EXAMPLES / "seed_5_chain.py"), "-o", str(tmp_path / "cold.svg"))
    assert result.returncode == 0 and "by the export service" not in result.stderr
