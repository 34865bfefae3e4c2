"""Shared fixtures: settings, an app and its client, a real PostgreSQL server, a real `gradwalk serve` process.

Everything is real: the sandbox pool, SQLite files, a PostgreSQL server started from Debian's package,
uvicorn on a loopback port. A missing dependency skips on a developer machine and fails in CI (CI=true).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SERVER_START_S = 90.0  # a cold start imports torch in the sandbox's zygote


def need(what: str) -> None:
    """A dependency is missing: skip here, fail in CI, where a skip would hide a hole."""
    message = f"missing: {what} (`make system` installs it)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- settings, app, client -------------------------------------------------------------------


def settings_for(data_dir: Path | str, **overrides: object) -> Settings:
    """Settings for a test: its own data dir, no rate limit unless asked, nothing read from .env."""
    values: dict[str, object] = {"data_dir": str(data_dir), "rate_limit_per_minute": 0}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def make_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    """`make_settings(**overrides)`: settings with this test's own data dir."""
    return lambda **overrides: settings_for(tmp_path / "data", **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path / "data")


@pytest.fixture
def client(settings: Settings) -> Iterator[object]:
    """A TestClient over `create_app(settings)`, with its lifespan (the real sandbox pool and store) running."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def module_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """`module_client(**settings)`: a started TestClient shared by a module (a sandbox pool starts once)."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    with contextlib.ExitStack() as stack:

        def make(**overrides: object) -> TestClient:
            app = create_app(settings_for(tmp_path_factory.mktemp("data"), **overrides))
            return stack.enter_context(TestClient(app))

        yield make


# ---- PostgreSQL --------------------------------------------------------------------------------


@dataclass
class Postgres:
    host: str
    port: int
    admin_url: str  # psycopg conninfo of the maintenance database

    def create_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{name}"


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL server: initdb in a temp dir, loopback port, as a non-root user when we are root."""
    bindir = _postgres_bin()
    if bindir is None:
        need("PostgreSQL server (Debian package postgresql)")
    try:
        import psycopg  # noqa: F401 - imported only to see that it is installed
    except ImportError:
        need("psycopg (pip install -e '.[test]')")
    root = Path(tempfile.mkdtemp(prefix="gradwalk-pg-"))
    data, log = root / "data", root / "server.log"
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        as_user = ["runuser", "-u", "nobody", "--"]
        shutil.chown(root, "nobody")
    port = free_port()

    def run(*cmd: str | Path) -> None:
        result = subprocess.run([*as_user, *map(str, cmd)], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {result.stdout}{result.stderr}{log.read_text() if log.exists() else ''}")

    run(bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    run(bindir / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start")
    try:
        yield Postgres("127.0.0.1", port, f"host=127.0.0.1 port={port} user=postgres dbname=postgres")
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60
        )
        shutil.rmtree(root, ignore_errors=True)


# ---- a real server ---------------------------------------------------------------------------


@dataclass
class Server:
    """One `gradwalk serve` process on a loopback port."""

    port: int
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, workers: int = 1) -> Server:
        command = _gradwalk() + ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)]
        log = self.workdir / f"server-{self.port}-{len(self.logs)}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            # Its own session, so that kill() takes the sandbox's child processes down with it, as a container would.
            self.proc = subprocess.Popen(
                command, cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gradwalk serve exited {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gradwalk serve did not answer in {SERVER_START_S} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flush; what was acknowledged must already be durable."""
        if self.proc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # and whatever of its process group outlived it

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())


def _gradwalk() -> list[str]:
    script = Path(sys.executable).parent / "gradwalk"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


@contextlib.contextmanager
def serving(workdir: Path) -> Iterator[object]:
    """Yields `start(port=None, workers=1, **settings)`; every server it started is stopped on exit."""
    servers: list[Server] = []

    def start(port: int | None = None, workers: int = 1, **overrides: object) -> Server:
        values: dict[str, object] = {"data_dir": workdir / "data", "rate_limit_per_minute": 0}
        values.update(overrides)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRADWALK_")}
        env.update({f"GRADWALK_{k.upper()}": str(v) for k, v in values.items() if v is not None})
        server = Server(port or free_port(), env, workdir)
        servers.append(server)
        return server.start(workers)

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    """`serve(**settings)` starts a `gradwalk serve` process with those GRADWALK_* settings (a Server)."""
    with serving(tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def module_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Like `serve`, for servers shared by a whole test module."""
    with serving(tmp_path_factory.mktemp("serve")) as start:
        yield start
