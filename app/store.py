"""The share store: saved programs with their trace, through SQLAlchemy 2.

Contract: `save` returns only after the row is committed and durable (SQLite in WAL mode with
synchronous=FULL; PostgreSQL's own commit), so an acknowledged share survives the process being
killed right after. `load` returns None for an unknown or malformed id. Ids are 12 URL-safe
characters from `secrets` (72 random bits): unguessable, and never derived from content or time.
A share's trace is the document exactly as the trust boundary wrote it (canonical, HTML-safe JSON),
stored gzip-compressed in a form that responses splice as it is (app.splice) and loaded so: nothing
decompresses or parses it on the way to a reader, unless it was saved by an older version (then it
is validated, which upgrades it, and packed again).
Both calls block (compression, SQL): call them from a worker thread.
The schema is owned by Alembic (`app/migrations/`); `migrate` is safe to call from many processes
at once (a file lock for SQLite, an advisory lock for PostgreSQL).
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from . import splice
from .config import Settings
from .models import TRACE_VERSION, Trace
from .models import load as load_trace
from .sandbox.boundary import html_safe

MIGRATIONS = Path(__file__).parent / "migrations"
ID_BYTES = 9  # 72 bits -> 12 URL-safe characters
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
TITLE_MAX_CHARS = 200
MIGRATION_LOCK_KEY = 0x67726164  # "grad": the PostgreSQL advisory lock held while migrating

metadata = MetaData()
shares = Table(
    "shares",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("title", String(TITLE_MAX_CHARS), nullable=True),
    Column("source", Text, nullable=False),
    Column("trace_gzip", LargeBinary, nullable=False),  # the document as the trust boundary wrote it, splice.pack'ed
    Column("trace_version", Integer, nullable=False),  # its Trace.version: older ones are upgraded on load
    Column("created_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Share:
    id: str
    title: str | None
    source: str
    trace_gzip: bytes  # canonical, HTML-safe JSON of the trace (see app.sandbox.boundary), splice.pack'ed
    created_at: datetime

    @property
    def trace_json(self) -> bytes:
        """The document itself (decompresses it: responses splice `trace_gzip` instead)."""
        return splice.unpack(self.trace_gzip)

    def trace(self) -> Trace:
        """The trace as the model (parses it: only for callers that need the objects)."""
        return Trace.model_validate_json(self.trace_json)


def database_url(settings: Settings) -> str:
    """The configured URL, or a SQLite file under `data_dir`."""
    if settings.database_url:
        return settings.database_url
    path = Path(settings.data_dir).resolve() / "gradwalk.sqlite3"
    return f"sqlite:///{path}"


def new_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]  # SQLAlchemy's event passes a DBAPI connection, which has no type to name
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # WAL + FULL: a commit is on disk before save() returns
    cursor.execute("PRAGMA busy_timeout=10000")  # ms: writers from other workers wait instead of failing
    cursor.close()


class Store:
    """Saves and loads shares; one per process, shared by its requests (thread-safe)."""

    def __init__(self, url: str) -> None:
        self.url = url
        if make_url(url).get_backend_name() == "sqlite":
            db = make_url(url).database
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(database_url(settings))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to Alembic's head, or to `revision` (idempotent, serialized across processes)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._migration_lock(), self.engine.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            config.attributes["package"] = __package__  # app, or gradwalk (installed or editable)
            command.upgrade(config, revision)

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        db = self.engine.url.database if self.dialect == "sqlite" else None
        if not db or db == ":memory:":
            yield
            return
        with open(f"{db}.migrate-lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def save(self, source: str, title: str | None, trace_json: bytes) -> Share:
        """Store a share (its trace as the trust boundary's document) and return it once committed."""
        created_at = datetime.now(UTC)
        packed = splice.pack(trace_json)
        row = {
            "title": title,
            "source": source,
            "trace_gzip": packed,
            "trace_version": TRACE_VERSION,
            "created_at": created_at,
        }
        for attempt in range(3):
            share_id = new_id()
            try:
                with self.engine.begin() as connection:
                    connection.execute(insert(shares).values(id=share_id, **row))
            except IntegrityError:
                if attempt == 2:
                    raise
                continue  # an id collision (2^-72 per pair): draw another
            return Share(id=share_id, title=title, source=source, trace_gzip=packed, created_at=created_at)
        raise AssertionError("unreachable")

    def load(self, share_id: str) -> Share | None:
        """The share with this id, or None."""
        if not ID_PATTERN.fullmatch(share_id):
            return None
        with self.engine.connect() as connection:
            row = connection.execute(select(shares).where(shares.c.id == share_id)).one_or_none()
        if row is None:
            return None
        created_at = row.created_at
        if created_at.tzinfo is None:  # SQLite keeps no zone; we only ever write UTC
            created_at = created_at.replace(tzinfo=UTC)
        packed = row.trace_gzip
        if row.trace_version != TRACE_VERSION:  # saved by an older version: upgraded (models.load)
            packed = splice.pack(html_safe(load_trace(splice.unpack(packed)).model_dump_json().encode()))
        elif not splice.spliceable(packed):  # saved before splicing (one gzip stream): packed again
            packed = splice.pack(splice.unpack(packed))
        return Share(id=row.id, title=row.title, source=row.source, trace_gzip=packed, created_at=created_at)

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(text("count(*)")).select_from(shares)).scalar_one())

    def close(self) -> None:
        self.engine.dispose()
