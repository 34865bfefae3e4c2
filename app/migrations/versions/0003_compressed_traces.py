"""shares: the trace stored gzip-compressed, with its document version

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import gzip
import re

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 100
# As app.sandbox.boundary.html_safe (a migration keeps its own copy: it must not change with the app).
_HTML_SAFE = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"), (b"'", b"\\u0027"))
_VERSION = re.compile(rb'^\{"version":(\d+)')
shares = sa.table(
    "shares",
    sa.column("id", sa.String),
    sa.column("trace", sa.Text),
    sa.column("trace_gzip", sa.LargeBinary),
    sa.column("trace_version", sa.Integer),
)


def _ids(connection: sa.Connection) -> list[str]:
    return list(connection.execute(sa.select(shares.c.id).order_by(shares.c.id)).scalars())


def upgrade() -> None:
    with op.batch_alter_table("shares") as batch:
        batch.add_column(sa.Column("trace_gzip", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("trace_version", sa.Integer(), nullable=True))
    connection = op.get_bind()
    ids = _ids(connection)
    for start in range(0, len(ids), _BATCH):  # a batch at a time: a share may hold tens of MB
        rows = connection.execute(sa.select(shares.c.id, shares.c.trace).where(shares.c.id.in_(ids[start : start + _BATCH])))
        for share_id, trace in rows.all():
            data = trace.encode("utf-8")
            for raw, escaped in _HTML_SAFE:
                data = data.replace(raw, escaped)
            version = _VERSION.match(data)
            connection.execute(
                shares.update()
                .where(shares.c.id == share_id)
                .values(trace_gzip=gzip.compress(data, 6, mtime=0), trace_version=int(version[1]) if version else 1)
            )
    with op.batch_alter_table("shares") as batch:
        batch.drop_column("trace")
        batch.alter_column("trace_gzip", existing_type=sa.LargeBinary(), nullable=False)
        batch.alter_column("trace_version", existing_type=sa.Integer(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("shares") as batch:
        batch.add_column(sa.Column("trace", sa.Text(), nullable=True))
    connection = op.get_bind()
    ids = _ids(connection)
    for start in range(0, len(ids), _BATCH):
        rows = connection.execute(sa.select(shares.c.id, shares.c.trace_gzip).where(shares.c.id.in_(ids[start : start + _BATCH])))
        for share_id, packed in rows.all():
            connection.execute(shares.update().where(shares.c.id == share_id).values(trace=gzip.decompress(packed).decode("utf-8")))
    with op.batch_alter_table("shares") as batch:
        batch.drop_column("trace_version")
        batch.drop_column("trace_gzip")
        batch.alter_column("trace", existing_type=sa.Text(), nullable=False)
