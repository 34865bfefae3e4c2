"""app/store.py against real SQLite files and a real PostgreSQL server (started by conftest)."""

from __future__ import annotations

import contextlib
import sqlite3
import string
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from app.config import Settings
from app.models import Edge, Node, Trace
from app.sandbox.boundary import html_safe
from app.store import ID_PATTERN, Store, database_url

SOURCE = "import torch\nx = torch.ones(2, requires_grad=True)\ny = (x * 3).sum()\ny.backward()\n"


def sample_trace(source: str = SOURCE) -> Trace:
    return Trace(
        source=source,
        torch_version="2.13.0",
        nodes=[
            Node(
                id=0,
                kind="leaf",
                op="AccumulateGrad",
                name="x",
                label="x",
                shape=[2],
                requires_grad=True,
                value=[1.0, 1.0],
                grad=[3.0, 3.0],
            ),
            Node(id=1, kind="op", op="SumBackward0", name="y", label="y", shape=[], value="NaN"),
        ],
        edges=[Edge(source=0, target=1, slot=0)],
        stdout="汉字 and \x00 and ünïcode\n",
    )


def document(trace: Trace) -> bytes:
    """The trace as the trust boundary writes it, which is what the store keeps."""
    return html_safe(trace.model_dump_json().encode())


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shares.sqlite3'}"
    pg = request.getfixturevalue("postgres")
    return pg.create_database()


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    s = Store(url)
    s.migrate()
    yield s
    s.close()


def test_save_then_load_round_trips_every_field(store: Store) -> None:
    trace = sample_trace()
    before = datetime.now(UTC)
    saved = store.save(SOURCE, "Chain rule 链式法则", document(trace))
    loaded = store.load(saved.id)
    assert loaded is not None
    assert (loaded.id, loaded.title, loaded.source) == (saved.id, "Chain rule 链式法则", SOURCE)
    assert loaded.trace_json == document(trace)  # byte-identical document, never parsed on the way
    assert loaded.trace() == trace
    assert loaded.created_at.tzinfo is not None
    assert before - timedelta(seconds=1) <= loaded.created_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert abs(loaded.created_at - saved.created_at) < timedelta(milliseconds=1)


def test_title_is_optional(store: Store) -> None:
    saved = store.save("print(1)", None, document(sample_trace("print(1)")))
    loaded = store.load(saved.id)
    assert loaded is not None and loaded.title is None


@pytest.mark.parametrize("share_id", ["nope00000000", "", "a" * 33, "../etc/passwd", "x' OR '1'='1", "名字", "\x00"])
def test_unknown_or_malformed_id_loads_none(store: Store, share_id: str) -> None:
    store.save("print(1)", None, document(sample_trace("print(1)")))
    assert store.load(share_id) is None


def test_ids_are_short_unguessable_and_url_safe(store: Store) -> None:
    ids = [store.save("pass", None, document(sample_trace("pass"))).id for _ in range(200)]
    assert len(set(ids)) == len(ids)
    alphabet = set(string.ascii_letters + string.digits + "-_")
    for share_id in ids:
        assert len(share_id) == 12 and set(share_id) <= alphabet and ID_PATTERN.fullmatch(share_id)
    # 72 random bits: no shared prefix structure like a counter or a timestamp would leave.
    assert len({share_id[:4] for share_id in ids}) > 190
    assert store.count() == 200


def test_migrate_is_idempotent_and_at_head(store: Store) -> None:
    store.migrate()
    store.migrate()
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0003"
    assert set(inspect(store.engine).get_table_names()) >= {"shares", "rate_buckets", "alembic_version"}


def test_a_share_saved_before_traces_were_compressed_still_opens(url: str) -> None:
    """Migration 0003 compresses the traces already stored, as the boundary writes them now."""
    old = Store(url)
    try:
        old.migrate("0002")
        trace = sample_trace()
        trace.stdout = "<script>alert(1)</script> & 'quotes'\n"  # stored before the boundary escaped them
        with old.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO shares (id, title, source, trace, created_at) VALUES (:id, :title, :source, :trace, :at)"),
                {
                    "id": "oldshare0001",
                    "title": "old",
                    "source": SOURCE,
                    "trace": trace.model_dump_json(),
                    "at": datetime.now(UTC),
                },
            )
        old.migrate()
        loaded = old.load("oldshare0001")
        assert loaded is not None and loaded.title == "old"
        assert loaded.trace_json == document(trace) and b"<script>" not in loaded.trace_json
        assert loaded.trace() == trace
    finally:
        old.close()


def test_many_processes_can_migrate_at_once(url: str) -> None:
    """Replicas start together against one database: their migrations must serialize, not collide."""
    stores = [Store(url) for _ in range(6)]
    failures: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def migrate(s: Store) -> None:
        try:
            barrier.wait()
            s.migrate()
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    saved = stores[0].save("pass", None, document(sample_trace("pass")))
    assert all(s.load(saved.id) is not None for s in stores)
    for s in stores:
        s.close()


def test_a_second_store_on_the_same_database_sees_every_share(store: Store, url: str) -> None:
    other = Store(url)
    try:
        saved = [store.save(f"print({i})", f"t{i}", document(sample_trace(f"print({i})"))) for i in range(5)]
        for s in saved:
            loaded = other.load(s.id)
            assert loaded is not None and loaded.source == s.source
    finally:
        other.close()


def test_concurrent_saves_from_threads_all_land(store: Store) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(10):
            share_id = store.save(f"print({n}, {i})", None, document(sample_trace())).id
            with lock:
                ids.append(share_id)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 80 and store.count() == 80


def test_default_is_sqlite_in_wal_mode_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=str(tmp_path / "nested" / "data"))  # type: ignore[call-arg]
    url = database_url(settings)
    assert url == f"sqlite:///{tmp_path / 'nested' / 'data' / 'gradwalk.sqlite3'}"
    s = Store.from_settings(settings)
    s.migrate()
    saved = s.save("pass", None, document(sample_trace("pass")))
    with s.engine.connect() as connection:
        assert connection.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
    s.close()
    db = tmp_path / "nested" / "data" / "gradwalk.sqlite3"
    with contextlib.closing(sqlite3.connect(db)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT count(*) FROM shares WHERE id = ?", (saved.id,)).fetchone()[0] == 1


def test_database_url_setting_wins(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(database_url="postgresql+psycopg://u@127.0.0.1:1/x")
    assert database_url(settings) == "postgresql+psycopg://u@127.0.0.1:1/x"


def test_alembic_command_line_migrates_the_configured_database(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADWALK_")}
    env["GRADWALK_DATA_DIR"] = str(tmp_path / "data")

    def alembic(*args: str) -> None:
        command = [sys.executable, "-m", "alembic", "-c", str(root / "alembic.ini"), *args]
        result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr

    db = tmp_path / "data" / "gradwalk.sqlite3"
    alembic("upgrade", "head")
    with contextlib.closing(sqlite3.connect(db)) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchone() == ("0003",)
    alembic("downgrade", "base")
    with contextlib.closing(sqlite3.connect(db)) as raw:
        assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name = 'shares'").fetchone() == (0,)
