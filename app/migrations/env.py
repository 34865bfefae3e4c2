"""Alembic environment: the URL comes from `Store.migrate()` (or GRADWALK_DATABASE_URL / data_dir)."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import context

# Alembic loads this file by path, not as a module of the package: Store.migrate() names the package
# it runs as; `alembic upgrade head` by hand finds it by where it lies (`app` in the repository).
_package = context.config.attributes.get("package") or Path(__file__).resolve().parents[1].name
_store = importlib.import_module(f"{_package}.store")
Store, metadata = _store.Store, _store.metadata

config = context.config


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    settings = importlib.import_module(f"{_package}.config").Settings()
    return _store.database_url(settings)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # handed over by Store.migrate(), already holding the migration lock
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    store = Store(_url())  # creates data_dir and sets SQLite's pragmas, as the app does
    with store.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    store.close()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
