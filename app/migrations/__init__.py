"""Alembic migrations of the share store (run by `Store.migrate()`, or `alembic upgrade head`)."""
